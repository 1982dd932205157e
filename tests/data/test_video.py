from pathlib import Path

import cv2
import numpy as np
import pytest

from vadlib.data import FrameFolder, VideoFile, get_dataset, iter_batches, open_video
from vadlib.errors import ConfigError, DataError


def _write_video(path: Path, n: int = 12, size=(48, 64)) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (size[1], size[0]))
    for i in range(n):
        w.write(np.full((*size, 3), i * 20 % 255, np.uint8))
    w.release()
    return path


def test_video_file_reads_all_frames_in_batches(tmp_path):
    v = open_video(_write_video(tmp_path / "v.mp4", n=12))
    assert isinstance(v, VideoFile) and len(v) == 12 and v.size == (48, 64)
    got = [f for _, f in iter_batches(v, range(12), batch_size=5)]
    assert [len(f) for f in got] == [5, 5, 2]
    frames = np.concatenate(got)
    assert frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    assert frames[:, 0, 0, 0].argmax() > frames[:, 0, 0, 0].argmin()  # content varies over time


def test_frame_folder_natural_order_and_gray_to_rgb(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i in (0, 1, 2, 10):  # 10 must come after 2
        cv2.imwrite(str(d / f"{i}.png"), np.full((8, 8), i * 10, np.uint8))
    v = open_video(d)
    assert isinstance(v, FrameFolder) and len(v) == 4
    frames = v.get([0, 3])
    assert frames.shape == (2, 8, 8, 3)
    assert frames[1, 0, 0].tolist() == [100, 100, 100]


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_empty_or_corrupt_video_names_the_file(tmp_path, content):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(DataError, match="bad.mp4"):
        open_video(p)


def test_unreadable_frame_and_mixed_sizes(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    cv2.imwrite(str(d / "000.png"), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(d / "001.png"), np.zeros((9, 8), np.uint8))
    (d / "002.png").write_bytes(b"garbage")
    v = FrameFolder(d)
    with pytest.raises(DataError, match="different sizes"):
        v.get([0, 1])
    with pytest.raises(DataError, match="002.png"):
        v.get([2])


def test_missing_things_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_dataset("ucsd_ped2", root=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="unknown dataset 'nope'.*ucsd_ped2"):
        get_dataset("nope")
    with pytest.raises(DataError, match="frames folder holds no image"):
        FrameFolder(tmp_path)


def test_png_frames_stay_readable_after_a_video_was_opened(tmp_path):
    """decord bundles its own zlib: imported first, it breaks cv2's PNG decoding. vadlib imports it
    through `import_decord`, which initialises OpenCV's PNG decoder first (fresh process: import order)."""
    import subprocess
    import sys

    import cv2

    png = tmp_path / "000.png"
    cv2.imwrite(str(png), np.full((8, 8), 7, np.uint8))
    code = ("import cv2, sys\n"
            "from vadlib.data.video import import_decord\n"
            "import_decord()\n"
            f"img = cv2.imread({str(png)!r})\n"
            "sys.exit(0 if img is not None and img[0, 0, 0] == 7 else 3)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _mp4_bytes(tmp_path: Path, n: int = 30) -> bytes:
    import cv2

    p = tmp_path / "full.mp4"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    rng = np.random.default_rng(0)
    for _ in range(n):
        w.write(rng.integers(0, 255, (48, 64, 3), np.uint8))
    w.release()
    return p.read_bytes()


@pytest.mark.parametrize("keep", [0.5, -40])
def test_truncated_mp4_says_truncated(tmp_path, keep):
    data = _mp4_bytes(tmp_path)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:keep])
    with pytest.raises(DataError, match=r"cut.mp4: truncated or corrupt mp4 video: its '\w+' box at byte \d+ "
                                        r"declares \d+ bytes but the file ends \d+ bytes early"):
        open_video(cut)
    assert len(open_video(tmp_path / "full.mp4")) == 30                 # the intact file is fine


def test_truncated_avi_says_truncated(tmp_path):
    import cv2

    p = tmp_path / "full.avi"
    w = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 25, (32, 24))
    for i in range(20):
        w.write(np.full((24, 32, 3), 10 * i, np.uint8))
    w.release()
    data = p.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[:len(data) // 2])      # decord alone would open it with fewer frames
    with pytest.raises(DataError, match=r"cut.avi: truncated or corrupt avi video: its RIFF header declares "
                                        rf"{len(data)} bytes but the file has {len(data) // 2}"):
        open_video(tmp_path / "cut.avi")


def test_corrupt_frames_in_an_intact_container_say_truncated_or_corrupt(tmp_path):
    data = bytearray(_mp4_bytes(tmp_path))
    data[200:len(data) // 2] = bytes(len(data) // 2 - 200)             # payload zeroed, box sizes intact
    (tmp_path / "bad.mp4").write_bytes(bytes(data))
    v = open_video(tmp_path / "bad.mp4")
    with pytest.raises(DataError, match=r"bad.mp4: truncated or corrupt video: the container opens \(30 frames\) "
                                        r"but frames 0..29 fail to decode"):
        v.get(list(range(30)))


def test_a_text_file_named_mp4_is_not_a_video(tmp_path):
    (tmp_path / "notes.mp4").write_text("these are my notes\nnot a video\n")
    with pytest.raises(DataError, match=r"notes.mp4: not a video file \(it starts with text: 'these are my notes'\)"):
        open_video(tmp_path / "notes.mp4")
    (tmp_path / "noise.avi").write_bytes(bytes(range(7, 200)))
    with pytest.raises(DataError, match=r"noise.avi: not a video file \(its first bytes 07 08 09"):
        open_video(tmp_path / "noise.avi")


def test_an_empty_frames_folder_is_named(tmp_path):
    (tmp_path / "clip").mkdir()
    (tmp_path / "clip" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match="clip: frames folder holds no image files"):
        open_video(tmp_path / "clip")
