"""CUHK Avenue adapter (``avenue``).

Layouts (``layout="auto"`` picks the one under ``root``; ``root`` may also be the folder that
holds ``Avenue Dataset/``):

* ``videos`` — the release ``Avenue Dataset/``: ``training_videos/NN.avi`` (16, normal only),
  ``testing_videos/NN.avi`` (21), pixel masks in ``ground_truth_demo/testing_label_mask/N_label.mat``
  (variable ``volLabel``, a 1×T cell of 360×640 masks; the separate ``ground_truth_demo`` download).
* ``frames`` — the frames mirror: ``training/frames/NN/*.jpg``, ``testing/frames/NN/*.jpg``.

Frame-level GT (``gt``; looked up in ``gt_root`` if given, else ``root``):

* ``avenue.mat`` (default) — 21 variables ``'01'``…``'21'``, one 0/1 entry per frame; derived
  from the pixel masks: 15,324 frames, **3,712** anomalous. The interval-style ``avenue.mat`` of the
  ano_pred tarballs (a cell ``gt`` of ``[start; end]``, 1-based) is recognised too.
* ``frame_labels_avenue.npy`` — MNAD's concatenation (ano_pred intervals): **3,867** anomalous.
* ``testing_label_mask`` — derive frame labels from the official pixel masks (any pixel > 0).

Video names are ``Train01``…``Train16`` and ``Test01``…``Test21``. For video files the frame count
is only known after decoding (``num_frames=None``); :meth:`Video.check_labels` compares it with
the GT then.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset, labels_from_ranges
from vadlib.data.registry import register_dataset
from vadlib.data.release import (check_length, choose, count_images, find_path, frame_dirs, need_root,
                                 split_concatenated, strict_options, video_files)
from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError

# Frames per test video 01..21 (the release; ../shared/ground_truth/avenue/README.md). Used only to
# split a concatenated .npy GT when the frame counts cannot be read from frames folders.
AVENUE_TEST_LENGTHS = (1439, 1211, 923, 947, 1007, 1283, 605, 36, 1175, 841, 472, 1271, 549, 507,
                       1001, 740, 426, 294, 248, 273, 76)
AVENUE_DESCRIPTIONS = {
    "anomaly": "a person running, throwing an object, loitering, walking the wrong way or carrying an "
               "unusual object in front of a building",
}
LAYOUTS = ("auto", "videos", "frames")
MASK_FOLDER = "testing_label_mask"


def _loadmat(path: Path) -> dict:
    import scipy.io

    if not path.is_file():
        raise DataError(path, "GT file does not exist")
    try:
        return scipy.io.loadmat(path)
    except NotImplementedError as exc:  # MATLAB v7.3 = HDF5
        raise DataError(path, "MATLAB v7.3 (HDF5) file; re-save it as v7 or earlier") from exc
    except Exception as exc:
        raise DataError(path, f"not a readable MATLAB file ({exc})") from exc


def parse_avenue_mat(path: str | Path, lengths: Sequence[int] | None = None) -> dict[str, np.ndarray]:
    """Frame GT of an Avenue ``.mat`` → ``{"01": (T,) uint8, …}`` in video order.

    Per-video variables ``'01'``… hold one 0/1 entry per frame. The interval style (cell ``gt``
    of 1-based ``[start; end]`` columns) needs ``lengths`` (frames per test video).
    """
    path = Path(path)
    mat = _loadmat(path)
    keys = sorted((k for k in mat if k.isdigit()), key=int)
    if keys:
        return {f"{int(k):02d}": (np.asarray(mat[k]).reshape(-1) > 0).astype(np.uint8) for k in keys}
    if "gt" in mat:
        from vadlib.data.ucsd import parse_ped_mat

        ranges = parse_ped_mat(path)
        if lengths is None:
            raise DataError(path, "interval-style avenue.mat (cell 'gt') needs the frame count of each video")
        if len(ranges) != len(lengths):
            raise DataError(path, f"GT lists {len(ranges)} videos but {len(lengths)} were given")
        out = {}
        for i, (rng, n) in enumerate(zip(ranges, lengths), 1):
            if max(e for _, e in rng) > n:
                raise DataError(path, f"GT range {rng} of test video {i:02d} exceeds its {n} frames")
            out[f"{i:02d}"] = labels_from_ranges(n, rng, one_based=True)
        return out
    raise DataError(path, "neither per-video variables '01', '02', … nor a cell 'gt' found; "
                    f"has: {[k for k in mat if not k.startswith('__')]}")


def parse_avenue_intervals(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Interval-style ``avenue.mat`` → ``{"01": [(start, end), …]}`` (1-based, inclusive)."""
    from vadlib.data.ucsd import parse_ped_mat

    return {f"{i:02d}": r for i, r in enumerate(parse_ped_mat(path), 1)}


def load_avenue_mask(path: str | Path) -> np.ndarray:
    """One ``N_label.mat`` of ``testing_label_mask`` → ``(T, H, W)`` bool."""
    path = Path(path)
    mat = _loadmat(path)
    if "volLabel" not in mat:
        raise DataError(path, f"no variable 'volLabel' (has: {[k for k in mat if not k.startswith('__')]})")
    cells = np.ravel(mat["volLabel"])
    try:
        return np.stack([np.asarray(c) > 0 for c in cells])
    except ValueError as exc:
        raise DataError(path, f"masks of different sizes ({exc})") from exc


def parse_avenue_label_masks(folder: str | Path, videos: Sequence[str]) -> dict[str, np.ndarray]:
    """Frame GT from the pixel masks: a frame is anomalous iff its mask has a positive pixel."""
    folder = Path(folder)
    out = {}
    for v in videos:
        m = load_avenue_mask(folder / f"{int(v)}_label.mat")
        out[v] = m.reshape(len(m), -1).any(1).astype(np.uint8)
    return out


def _mask_loader(path: Path, n: int, video: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        m = load_avenue_mask(path)
        check_length(path, video, len(m), n)
        return m

    return load


def _release_root(root: Path) -> Path:
    if not (root / "testing_videos").is_dir() and (root / "Avenue Dataset" / "testing_videos").is_dir():
        return root / "Avenue Dataset"
    return root


def detect_layout(root: Path) -> str:
    if (root / "testing_videos").is_dir():
        return "videos"
    if (root / "testing" / "frames").is_dir():
        return "frames"
    raise DataError(root, f"neither the Avenue release ({root / 'testing_videos'}) nor the frames layout "
                    f"({root / 'testing' / 'frames'}) is here")


def _number(p: Path) -> str:
    stem = p.stem if p.is_file() else p.name
    if not stem.isdigit():
        raise DataError(p, "Avenue video names are numbers (01, 02, …)")
    return f"{int(stem):02d}"


@register_dataset("avenue")
@strict_options("avenue")
def avenue(root: str | Path | None, gt: str = "avenue.mat", layout: str = "auto",
           gt_root: str | Path | None = None, fps: float = DEFAULT_FPS) -> VideoDataset:
    """CUHK Avenue: 16 normal training videos, 21 test videos with frame GT (and pixel masks
    when ``testing_label_mask`` is present)."""
    root = _release_root(need_root(root, "avenue"))
    choose(layout, LAYOUTS, "layout", "avenue")
    if layout == "auto":
        layout = detect_layout(root)
    if layout == "videos":
        train_src = video_files(root / "training_videos", "training videos folder")
        test_src = video_files(root / "testing_videos", "testing videos folder")
        lengths = None
    else:
        train_src = frame_dirs(root / "training" / "frames", "training frames folder")
        test_src = frame_dirs(root / "testing" / "frames", "testing frames folder")
        lengths = [count_images(d) for d in test_src]
    names = [_number(p) for p in test_src]
    mask_dir = next((d / MASK_FOLDER for d in (gt_root, root / "ground_truth_demo", root)
                     if d is not None and (Path(d) / MASK_FOLDER).is_dir()), None)

    builders: dict[str, Callable] = {}
    if gt == MASK_FOLDER:
        if mask_dir is None:
            raise DataError(Path(gt_root or root / "ground_truth_demo") / MASK_FOLDER,
                            "pixel-mask folder is missing (gt='testing_label_mask')")
        gt_path = mask_dir
        labels = parse_avenue_label_masks(mask_dir, names)
    else:
        gt_path = find_path(gt, [gt_root, root], f"Avenue GT file '{gt}'")
        if gt_path.suffix == ".npy":
            split = split_concatenated(np.load(gt_path), lengths or AVENUE_TEST_LENGTHS, gt_path)
            if len(split) != len(names):
                raise DataError(gt_path, f"GT has {len(split)} videos but {len(names)} test videos were found")
            labels = dict(zip(names, split))
        elif gt_path.suffix == ".mat":
            mat_vars = _loadmat(gt_path)
            if lengths is None and "gt" in mat_vars and not any(k.isdigit() for k in mat_vars):
                labels = {}
                for v, rng in parse_avenue_intervals(gt_path).items():
                    builders[v] = (lambda n, rng=rng, v=v: _from_ranges(gt_path, v, n, rng))
            else:
                labels = parse_avenue_mat(gt_path, lengths)
        else:
            raise ConfigError(f"avenue: gt={gt!r} is neither a .mat, a concatenated .npy nor 'testing_label_mask'")
    gt_videos = set(labels) | set(builders)
    if gt_videos != set(names):
        raise DataError(gt_path, f"GT covers videos {sorted(gt_videos)} but the test videos are {names}")

    train = [Video(name=f"Train{_number(p)}", path=p, split="train", label=0, class_name=NORMAL,
                   num_frames=None if lengths is None else count_images(p), fps=fps)
             for p in train_src]
    test = []
    for i, (p, v) in enumerate(zip(test_src, names)):
        n = None if lengths is None else lengths[i]
        lab = labels.get(v)
        if lab is not None and n is not None:
            check_length(gt_path, f"Test{v}", len(lab), n, p)
        mfile = None if mask_dir is None else mask_dir / f"{int(v)}_label.mat"
        n_ref = n if n is not None else (None if lab is None else len(lab))
        test.append(Video(
            name=f"Test{v}", path=p, split="test",
            label=-1 if lab is None else int(lab.any()),
            class_name=None if lab is None else ("anomaly" if lab.any() else NORMAL),
            frame_labels=lab, frame_classes=None if lab is None else lab.astype(np.int64),
            num_frames=n, fps=fps,
            mask_loader=None if mfile is None or n_ref is None else _mask_loader(mfile, n_ref, f"Test{v}"),
            label_builder=builders.get(v),
            meta={"gt_path": str(gt_path), "mask_file": None if mfile is None else str(mfile)},
        ))
    return VideoDataset(name="avenue", root=root, splits={"train": train, "test": test},
                        class_names=[NORMAL, "anomaly"], descriptions=dict(AVENUE_DESCRIPTIONS),
                        gt_file=gt, meta={"layout": layout, "fps": fps, "gt_path": str(gt_path)})


def _from_ranges(gt_path: Path, v: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    if max(e for _, e in rng) > n:
        raise DataError(gt_path, f"GT range {rng} of test video Test{v} exceeds its {n} frames")
    lab = labels_from_ranges(n, rng, one_based=True)
    return lab, lab.astype(np.int64)
