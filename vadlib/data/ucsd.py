"""UCSD Ped2 (and Ped1) adapters.

Layouts:

* ``frames``: the common frames mirror — ``training/frames/NN/NNN.jpg``,
  ``testing/frames/NN/NNN.jpg`` (JPEG names from 0), ``testing/TestNNN_gt/NNN.bmp`` masks
  (names from 1), frame GT in ``UCSDped2.m`` and/or ``ped2.mat``.

Frame-level GT: ``gt="UCSDped2.m"`` (the release's file, 1,648 anomalous frames, agrees
with the masks; default) or ``gt="ped2.mat"`` (the frames mirror's, 1,624). Which one was used
is recorded in ``VideoDataset.gt_file`` and must be reported beside every figure.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset, labels_from_ranges
from vadlib.data.registry import register_dataset
from vadlib.data.video import IMAGE_EXTENSIONS, _natural_key
from vadlib.errors import DataError

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


def _frame_dirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(folder, "expected folder is missing")
    dirs = sorted((d for d in folder.iterdir() if d.is_dir()), key=_natural_key)
    if not dirs:
        raise DataError(folder, "holds no video folders")
    return dirs


def _count_frames(d: Path) -> int:
    n = sum(1 for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if n == 0:
        raise DataError(d, "frames folder holds no image files")
    return n


def _mask_loader(mask_dir: Path, n_frames: int):
    def load() -> np.ndarray:
        import cv2

        if not mask_dir.is_dir():
            raise DataError(mask_dir, "pixel-mask folder is missing")
        files = sorted((p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key)
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


def load_ucsd_frames(root: Path, name: str, ped: int, gt: str, fps: float = 10.0) -> VideoDataset:
    """UCSD PedN in the frames layout (see module docstring)."""
    root = Path(root)
    gt_path = root / gt
    if gt.endswith(".m"):
        ranges = parse_ucsd_m(gt_path)
    elif gt.endswith(".mat"):
        ranges = parse_ped_mat(gt_path)
    else:
        raise DataError(gt_path, "unknown GT file type; use 'UCSDped{N}.m' or 'ped{N}.mat'")
    train = [
        Video(name=f"Train{int(d.name):03d}", path=d, split="train", label=0, class_name=NORMAL,
              num_frames=_count_frames(d), fps=fps)
        for d in _frame_dirs(root / "training" / "frames")
    ]
    test_dirs = _frame_dirs(root / "testing" / "frames")
    if len(ranges) != len(test_dirs):
        raise DataError(gt_path, f"GT lists {len(ranges)} test videos but "
                        f"{root / 'testing' / 'frames'} has {len(test_dirs)}")
    test = []
    for d, rng in zip(test_dirs, ranges):
        n = _count_frames(d)
        if max(e for _, e in rng) > n:
            raise DataError(gt_path, f"GT range {rng} of test video {d.name} exceeds its {n} frames")
        lab = labels_from_ranges(n, rng, one_based=True)
        vname = f"Test{int(d.name):03d}"
        test.append(Video(
            name=vname, path=d, split="test", label=int(lab.any()),
            class_name="anomaly" if lab.any() else NORMAL,
            frame_labels=lab, frame_classes=lab.astype(np.int64), num_frames=n, fps=fps,
            mask_loader=_mask_loader(root / "testing" / f"{vname}_gt", n),
            meta={"gt_path": str(gt_path), "mask_dir": str(root / "testing" / f"{vname}_gt")},
        ))
    return VideoDataset(name=name, root=root, splits={"train": train, "test": test},
                        class_names=[NORMAL, "anomaly"], descriptions=dict(UCSD_DESCRIPTIONS),
                        gt_file=gt, meta={"layout": "frames", "fps": fps})


@register_dataset("ucsd_ped2")
def ucsd_ped2(root: str | Path | None, gt: str = "UCSDped2.m", layout: str = "frames", fps: float = 10.0) -> VideoDataset:
    """UCSD Ped2: 16 training videos (normal only) and 12 test videos with frame GT and masks."""
    if root is None:
        raise DataError(None, "ucsd_ped2 needs a root: set datasets.ucsd_ped2.root in params.yaml "
                        "(e.g. ../shared/datasets/ucsd_ped2)")
    if layout != "frames":
        raise DataError(root, f"unknown UCSD layout '{layout}' (known: frames)")
    return load_ucsd_frames(Path(root), "ucsd_ped2", 2, gt, fps=fps)
