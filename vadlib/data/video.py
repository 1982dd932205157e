"""Readers for the two ways a video is stored: a file decord reads, or a folder of frames.

Both give RGB ``uint8`` frames ``(B, H, W, 3)`` in batches, so memory does not grow with
video length. Grayscale frames (UCSD) are replicated to three channels.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np

from vadlib.defaults import DEFAULT_FPS  # noqa: F401  (re-exported: vadlib.data.DEFAULT_FPS)
from vadlib.errors import DataError

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class VideoSource(Protocol):
    """What every reader offers."""

    path: Path

    def __len__(self) -> int: ...

    @property
    def fps(self) -> float: ...

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the frames."""
        ...

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` as ``(B, H, W, 3)`` uint8 RGB."""
        ...


def _natural_key(p: Path) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name))


class FrameFolder:
    """A folder of image files, one per frame, in natural name order (``000.jpg``, ``001.jpg``…)."""

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS):
        self.path = Path(path)
        if not self.path.is_dir():
            raise DataError(self.path, "frames folder does not exist")
        self.files = sorted(
            (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
             and not p.name.startswith(".")),  # skip macOS AppleDouble "._001.tif" of some archives
            key=_natural_key,
        )
        if not self.files:
            raise DataError(self.path, "frames folder holds no image files "
                            f"(looked for {', '.join(IMAGE_EXTENSIONS)})")
        self._fps = fps
        self._size: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self.files)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            self._size = self._read(0).shape[:2]
        return self._size

    def _read(self, i: int) -> np.ndarray:
        import cv2

        f = self.files[i]
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)  # grayscale files are replicated to 3 channels
        if img is None:
            raise DataError(f, "image file cannot be read (corrupt, empty or not an image)")
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices``; every frame must have the size of the folder's first frame (checked
        per frame, so the answer does not depend on how frames are batched)."""
        frames = [self._read(int(i)) for i in indices]
        size = self.size
        for i, fr in zip(indices, frames):
            if fr.shape[:2] != size:
                raise DataError(self.path, f"frames of different sizes within one video: {self.files[int(i)].name} "
                                f"is {fr.shape[1]}x{fr.shape[0]} but {self.files[0].name} is {size[1]}x{size[0]} "
                                "(width x height); resize the frames to one size")
        return np.stack(frames) if frames else np.zeros((0, *size, 3), np.uint8)


def import_decord():
    """``import decord`` after OpenCV's PNG decoder is initialised.

    decord's wheel bundles its own zlib; imported first, it makes every later ``cv2.imread`` of a
    PNG fail ("libpng error: bad parameters to zlib"), so frames folders of PNGs would become
    unreadable once a video file had been opened. Decoding one tiny PNG first binds OpenCV's libpng
    to the right zlib (measured on decord 0.6 + opencv 4/5 wheels)."""
    import cv2

    ok, buf = cv2.imencode(".png", np.zeros((2, 2), np.uint8))
    cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    import decord

    return decord


_MP4_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot", b"uuid", b"styp", b"moof", b"sidx"}


def container_of(head: bytes) -> str | None:
    """The container a file's first bytes announce (``mp4``, ``avi``, ``matroska``, ``mpeg-ps``,
    ``mpeg-ts``, ``flv``, ``asf``), or None when they announce no video container."""
    if len(head) >= 8 and head[4:8] in _MP4_BOXES:
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return "mpeg-ps"
    if head[:1] == b"\x47" and len(head) > 188 and head[188:189] == b"\x47":
        return "mpeg-ts"
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    return None


def truncation(path: Path) -> str | None:
    """Why ``path`` looks cut short, from the sizes its container header declares (MP4 top-level
    boxes, the AVI RIFF chunk), or None when the sizes fit the file (or cannot be checked)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(512)
        kind = container_of(head)
        if kind == "avi":
            declared = int.from_bytes(head[4:8], "little") + 8
            if declared > size:
                return f"its RIFF header declares {declared} bytes but the file has {size}"
        elif kind == "mp4":
            pos = 0
            while pos + 8 <= size:
                fh.seek(pos)
                hdr = fh.read(16)
                n, box = int.from_bytes(hdr[:4], "big"), hdr[4:8]
                if n == 1 and len(hdr) >= 16:
                    n = int.from_bytes(hdr[8:16], "big")
                elif n == 0:                                  # box runs to the end of the file
                    return None
                if n < 8:
                    return f"its '{box.decode('latin-1')}' box at byte {pos} has an impossible size {n}"
                if pos + n > size:
                    return (f"its '{box.decode('latin-1')}' box at byte {pos} declares {n} bytes but the file "
                            f"ends {pos + n - size} bytes early")
                pos += n
    return None


def _not_a_video(path: Path, head: bytes) -> str:
    text = head[:64]
    if text and all(32 <= b < 127 or b in (9, 10, 13) for b in text):
        what = f"it starts with text: {text.decode('ascii', 'replace').splitlines()[0][:40]!r}"
    else:
        what = f"its first bytes {head[:8].hex(' ')} announce no video container (mp4, avi, mkv, …)"
    return f"not a video file ({what})"


class VideoFile:
    """A video file read with decord (mp4, avi, …)."""

    def __init__(self, path: str | Path, num_threads: int = 1):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "video file does not exist")
        if self.path.stat().st_size == 0:
            raise DataError(self.path, "video file is empty (0 bytes)")
        decord = import_decord()

        with open(self.path, "rb") as fh:
            head = fh.read(512)
        kind = container_of(head)
        cut = truncation(self.path) if kind else None
        if cut:
            raise DataError(self.path, f"truncated or corrupt {kind} video: {cut} (an interrupted download or "
                            "copy? fetch it again)")
        try:
            self._vr = decord.VideoReader(str(self.path), ctx=decord.cpu(0), num_threads=num_threads)
        except Exception as exc:  # decord raises DECORDError / RuntimeError
            said = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else 'no message'}"
            if kind is None and self.path.suffix.lower() in VIDEO_EXTENSIONS:
                raise DataError(self.path, _not_a_video(self.path, head)) from exc
            if kind is not None:
                raise DataError(self.path, f"truncated or corrupt {kind} video: the container is recognised "
                                f"but decord cannot open it ({said})") from exc
            raise DataError(self.path, f"decord cannot open the video ({said})") from exc
        if len(self._vr) == 0:
            raise DataError(self.path, "video has no frames")

    def __len__(self) -> int:
        return len(self._vr)

    @property
    def fps(self) -> float:
        try:
            return float(self._vr.get_avg_fps())
        except Exception:
            return DEFAULT_FPS

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self._vr[0].shape[:2])  # type: ignore[return-value]

    def get(self, indices: Sequence[int]) -> np.ndarray:
        idx = [int(i) for i in indices]
        if not idx:
            h, w = self.size
            return np.zeros((0, h, w, 3), np.uint8)
        try:
            return self._vr.get_batch(idx).asnumpy()
        except Exception as exc:
            raise DataError(self.path, f"truncated or corrupt video: the container opens ({len(self)} frames) but "
                            f"frames {idx[0]}..{idx[-1]} fail to decode "
                            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from exc


def open_video(path: str | Path, fps: float = DEFAULT_FPS) -> VideoSource:
    """Open a video file (decord) or a frames folder, chosen by what ``path`` is."""
    p = Path(path)
    if p.is_dir():
        return FrameFolder(p, fps=fps)
    if p.suffix.lower() in VIDEO_EXTENSIONS or p.is_file():
        return VideoFile(p)
    raise DataError(p, "neither a video file nor a frames folder (does the path exist?)")


def iter_batches(source: VideoSource, indices: Sequence[int], batch_size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(indices, frames)`` in batches of at most ``batch_size`` frames."""
    idx = np.asarray(indices, dtype=np.int64)
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        yield chunk, source.get(chunk.tolist())
