"""UCSD Ped1 and Ped2 adapters (``ucsd_ped1``, ``ucsd_ped2``).

Layouts (``layout="auto"`` picks the one found under ``root``):

* ``original``: the release ``UCSD_Anomaly_Dataset.v1p2`` — ``root`` is ``UCSDpedN/``, the
  release folder holding it, or the download folder holding the release folder: ``Train/TrainNNN/NNN.tif``, ``Test/TestNNN/NNN.tif`` (names from 1),
  pixel masks ``Test/TestNNN_gt/NNN.bmp`` (all 12 Ped2 videos; only some Ped1 videos — the
  others get no ``mask_loader``), frame GT ``Test/UCSDpedN.m``. AppleDouble ``._*`` files are skipped.
* ``frames``: the common frames mirror — ``training/frames/NN/NNN.jpg``,
  ``testing/frames/NN/NNN.jpg`` (JPEG names from 0), ``testing/TestNNN_gt/NNN.bmp`` masks
  (names from 1), frame GT in ``UCSDped2.m`` and/or ``ped2.mat``.

Frame-level GT (``gt``, looked up in ``gt_root`` if given, else ``root`` and ``root/Test``):

* ``UCSDpedN.m`` — the release's file (Ped2: 1,648 anomalous frames, agrees with the masks; default);
* ``pedN.mat`` — the frames mirror's cell ``gt`` of ``[start; end]`` (Ped2: 1,624);
* ``frame_labels_pedN.npy`` — MNAD-style concatenation of all test videos (Ped1: 36 × 200,
  4,045 anomalous — the stand-in for ``UCSDped1.m`` in ``../shared/ground_truth/ucsd_ped1``).

Which one was used is recorded in ``VideoDataset.gt_file`` and must be reported beside every figure.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset, labels_from_ranges
from vadlib.data.registry import register_dataset
from vadlib.data.release import (choose, count_images, find_path, frame_dirs, image_files, need_root,
                                 split_concatenated, strict_options)
from vadlib.errors import ConfigError, DataError

LAYOUTS = ("auto", "original", "frames")

UCSD_DESCRIPTIONS = {
    "anomaly": "a non-pedestrian on the walkway: a bicycle, a skateboard, a small cart or a wheelchair",
}


def parse_ucsd_m(path: str | Path) -> list[list[tuple[int, int]]]:
    """Parse ``UCSDpedN.m``: per test video (in file order) a list of inclusive 1-based ranges.

    Lines look like ``TestVideoFile{end+1}.gt_frame = [61:180];`` or, with several ranges,
    ``[1:50, 120:150]``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "GT file does not exist")
    videos: list[list[tuple[int, int]]] = []
    for line in path.read_text(errors="replace").splitlines():
        if "gt_frame" not in line or line.strip().startswith("%"):
            continue
        m = re.search(r"\[(.*?)\]", line)
        if not m:
            raise DataError(path, f"cannot parse GT line: {line.strip()!r}")
        ranges = [(int(a), int(b)) for a, b in re.findall(r"(\d+)\s*:\s*(\d+)", m.group(1))]
        if not ranges:
            raise DataError(path, f"no 'start:end' range in GT line: {line.strip()!r}")
        videos.append(ranges)
    if not videos:
        raise DataError(path, "no 'gt_frame' lines found; is this a UCSDpedN.m file?")
    return videos


def parse_ped_mat(path: str | Path, var: str = "gt") -> list[list[tuple[int, int]]]:
    """Parse a ``ped2.mat``-style file: cell ``gt`` of ``[start; end]`` columns (1-based)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "GT file does not exist")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:
        raise DataError(path, f"not a readable MATLAB file ({exc})") from exc
    if var not in mat:
        raise DataError(path, f"MATLAB file has no variable '{var}' (has: {[k for k in mat if not k.startswith('__')]})")
    out = []
    for cell in np.ravel(mat[var]):
        arr = np.asarray(cell, dtype=np.int64)
        if arr.ndim == 1:
            arr = arr.reshape(2, -1)
        if arr.shape[0] != 2:
            arr = arr.T
        out.append([(int(s), int(e)) for s, e in zip(arr[0], arr[1])])
    return out



def _mask_loader(mask_dir: Path, n_frames: int):
    def load() -> np.ndarray:
        import cv2

        if not mask_dir.is_dir():
            raise DataError(mask_dir, "pixel-mask folder is missing")
        files = image_files(mask_dir)
        if len(files) != n_frames:
            raise DataError(mask_dir, f"{len(files)} mask files for a video of {n_frames} frames")
        masks = []
        for f in files:
            m = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
            if m is None:
                raise DataError(f, "mask file cannot be read")
            masks.append(m > 0)
        return np.stack(masks)

    return load


def ucsd_test_labels(gt_path: str | Path, lengths: list[int], names: list[str]) -> list[np.ndarray]:
    """Per-test-video ``(T,)`` uint8 labels from a ``.m``, ``.mat`` or concatenated ``.npy`` GT file.

    ``lengths``/``names``: frame counts and names of the test videos in order. A GT file for a
    different number of videos, or a range past a video's end, raises DataError naming it.
    """
    gt_path = Path(gt_path)
    if gt_path.suffix == ".npy":
        if not gt_path.is_file():
            raise DataError(gt_path, "GT file does not exist")
        return split_concatenated(np.load(gt_path), lengths, gt_path)
    if gt_path.suffix == ".m":
        ranges = parse_ucsd_m(gt_path)
    elif gt_path.suffix == ".mat":
        ranges = parse_ped_mat(gt_path)
    else:
        raise ConfigError(f"{gt_path}: unknown UCSD GT file type; use 'UCSDpedN.m', 'pedN.mat' or a "
                          "concatenated 'frame_labels_pedN.npy'")
    if len(ranges) != len(lengths):
        raise DataError(gt_path, f"GT lists {len(ranges)} test videos but {len(lengths)} were found")
    out = []
    for rng, n, name in zip(ranges, lengths, names):
        if max(e for _, e in rng) > n:
            raise DataError(gt_path, f"GT range {rng} of test video {name} exceeds its {n} frames")
        out.append(labels_from_ranges(n, rng, one_based=True))
    return out


def _dataset(name: str, root: Path, train: list[Video], test_dirs: list[Path], test_names: list[str],
             mask_dirs: list[Path], gt_path: Path, gt: str, fps: float, layout: str,
             masks_required: bool) -> VideoDataset:
    lengths = [count_images(d) for d in test_dirs]
    labels = ucsd_test_labels(gt_path, lengths, test_names)
    test = []
    for d, vname, n, lab, mdir in zip(test_dirs, test_names, lengths, labels, mask_dirs):
        has_masks = masks_required or mdir.is_dir()
        test.append(Video(
            name=vname, path=d, split="test", label=int(lab.any()),
            class_name="anomaly" if lab.any() else NORMAL,
            frame_labels=lab, frame_classes=lab.astype(np.int64), num_frames=n, fps=fps,
            mask_loader=_mask_loader(mdir, n) if has_masks else None,
            meta={"gt_path": str(gt_path), "mask_dir": str(mdir) if has_masks else None},
        ))
    return VideoDataset(name=name, root=root, splits={"train": train, "test": test},
                        class_names=[NORMAL, "anomaly"], descriptions=dict(UCSD_DESCRIPTIONS),
                        gt_file=gt, meta={"layout": layout, "fps": fps, "gt_path": str(gt_path)})


def load_ucsd_frames(root: Path, name: str, ped: int, gt: str, fps: float = 10.0,
                     gt_root: str | Path | None = None) -> VideoDataset:
    """UCSD PedN in the frames layout (see module docstring)."""
    root = Path(root)
    train = [
        Video(name=f"Train{int(d.name):03d}", path=d, split="train", label=0, class_name=NORMAL,
              num_frames=count_images(d), fps=fps)
        for d in frame_dirs(root / "training" / "frames", "training frames folder")
    ]
    test_dirs = frame_dirs(root / "testing" / "frames", "testing frames folder")
    names = [f"Test{int(d.name):03d}" for d in test_dirs]
    gt_path = find_path(gt, [gt_root, root], f"UCSD Ped{ped} GT file '{gt}'")
    return _dataset(name, root, train, test_dirs, names, [root / "testing" / f"{n}_gt" for n in names],
                    gt_path, gt, fps, "frames", masks_required=True)


_ORIG = re.compile(r"^(Train|Test)(\d+)$")


def _original_dirs(folder: Path, prefix: str) -> list[Path]:
    dirs = [d for d in frame_dirs(folder, f"{prefix} folder")
            if (m := _ORIG.match(d.name)) and m.group(1) == prefix]
    if not dirs:
        raise DataError(folder, f"holds no {prefix}NNN video folders")
    return dirs


def load_ucsd_original(root: Path, name: str, ped: int, gt: str, fps: float = 10.0,
                       gt_root: str | Path | None = None) -> VideoDataset:
    """UCSD PedN in the original release layout ``UCSDpedN/{Train,Test}/…`` (see module docstring)."""
    root = Path(root)
    if not (root / "Test").is_dir() and (root / f"UCSDped{ped}" / "Test").is_dir():
        root = root / f"UCSDped{ped}"
    train = [Video(name=d.name, path=d, split="train", label=0, class_name=NORMAL,
                   num_frames=count_images(d), fps=fps)
             for d in _original_dirs(root / "Train", "Train")]
    test_dirs = _original_dirs(root / "Test", "Test")
    names = [d.name for d in test_dirs]
    gt_path = find_path(gt, [gt_root, root / "Test", root], f"UCSD Ped{ped} GT file '{gt}'")
    return _dataset(name, root, train, test_dirs, names, [root / "Test" / f"{n}_gt" for n in names],
                    gt_path, gt, fps, "original", masks_required=False)


RELEASE_FOLDER = "UCSD_Anomaly_Dataset.v1p2"


def _candidates(root: Path, ped: int) -> list[tuple[Path, str]]:
    """Where PedN may be under ``root``: the ``UCSDpedN`` folder itself, the release folder
    ``UCSD_Anomaly_Dataset.v1p2`` holding it, or the download folder one level up holding that;
    for the frames mirror ``root`` itself or its ``pedN``/``ucsd_pedN`` folder."""
    inner = f"UCSDped{ped}"
    orig = [root, root / inner, root / RELEASE_FOLDER / inner]
    frames = [root, root / f"ped{ped}", root / f"ucsd_ped{ped}"]
    return [(p, "original") for p in orig] + [(p, "frames") for p in frames]


def find_ped_root(root: Path, ped: int, layout: str = "auto") -> tuple[Path, str]:
    """``(folder, layout)``: the folder holding ``Test/`` (original) or ``testing/frames`` (frames);
    ``root`` itself when a given ``layout`` is found nowhere (its loader then names what is missing)."""
    looked: dict[str, list[str]] = {"original": [], "frames": []}
    for p, lay in _candidates(root, ped):
        if layout not in ("auto", lay):
            continue
        marker = p / "Test" if lay == "original" else p / "testing" / "frames"
        looked[lay].append(str(marker.relative_to(root)))
        if marker.is_dir():
            return p, lay
    if layout != "auto":            # the loader names the first missing part of the asked-for layout
        return root, layout
    said = [f"the {lay} UCSD layout ({' or '.join(m)})" for lay, m in looked.items() if m]
    raise DataError(root, f"neither {' nor '.join(said)} is here" if len(said) > 1 else f"{said[0]} is not here")


def detect_layout(root: Path, ped: int) -> str:
    """``original`` if ``root`` (or ``root/UCSDpedN``, ``root/UCSD_Anomaly_Dataset.v1p2/UCSDpedN``) has
    ``Test/``, ``frames`` if it (or ``root/pedN``) has ``testing/frames``."""
    return find_ped_root(root, ped)[1]


def _load(name: str, ped: int, root, gt: str, layout: str, fps: float, gt_root) -> VideoDataset:
    root = need_root(root, name)
    choose(layout, LAYOUTS, "layout", name)
    root, layout = find_ped_root(root, ped, layout)
    loader = load_ucsd_original if layout == "original" else load_ucsd_frames
    return loader(root, name, ped, gt, fps=fps, gt_root=gt_root)


@register_dataset("ucsd_ped2")
@strict_options("ucsd_ped2")
def ucsd_ped2(root: str | Path | None, gt: str = "UCSDped2.m", layout: str = "auto", fps: float = 10.0,
              gt_root: str | Path | None = None) -> VideoDataset:
    """UCSD Ped2: 16 training videos (normal only) and 12 test videos with frame GT and masks."""
    return _load("ucsd_ped2", 2, root, gt, layout, fps, gt_root)


@register_dataset("ucsd_ped1")
@strict_options("ucsd_ped1")
def ucsd_ped1(root: str | Path | None, gt: str = "UCSDped1.m", layout: str = "auto", fps: float = 10.0,
              gt_root: str | Path | None = None) -> VideoDataset:
    """UCSD Ped1: 34 training videos (normal only) and 36 test videos of 200 frames with frame GT;
    pixel masks for the test videos whose ``TestNNN_gt`` folder exists."""
    return _load("ucsd_ped1", 1, root, gt, layout, fps, gt_root)
