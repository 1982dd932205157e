"""ShanghaiTech Campus adapter (``shanghaitech``).

Release layout (``root`` = the folder holding ``training/`` and ``testing/``):

* ``training/videos/<scene>_<clip>.avi`` — 330 normal training videos (some mirrors ship
  ``training/frames/<video>/`` instead; both are accepted);
* ``testing/frames/<scene>_<clip>/NNN.jpg`` — 107 test clips;
* ``testing/test_frame_mask/<video>.npy`` — ``(T,)`` 0/1 frame GT (40,791 frames, 17,326 anomalous);
* ``testing/test_pixel_mask/<video>.npy`` — ``(T, H, W)`` pixel masks (optional).

``gt_root`` is a folder holding ``test_frame_mask/`` (and optionally ``test_pixel_mask/``), for a GT
downloaded separately (e.g. ``../shared/ground_truth/shanghaitech``).

Splits (``split``):

* ``official`` — one-class: train = the 330 normal videos, test = the 107 clips.
* ``weakly`` — Zhong et al.'s re-split used by weakly supervised methods: 238 train (63 anomalous)
  / 199 test (44 anomalous). Read from ``SH_Train_new.txt``/``SH_Test_NEW.txt`` (``id,label[,n_frames]``)
  or RTFM's ``SH_Train.txt``/``SH_Test.txt`` (ids only; a video is anomalous iff it has a frame mask),
  looked up in ``split_root`` (default: ``gt_root/weakly_split/{zhong_mist,rtfm}``, ``gt_root``,
  ``root``). Anomalous videos are test clips (frames), normal ones training videos. Training
  videos carry only their video-level label (no frame labels: weak supervision). Normal test
  videos are all-normal; their length is checked when they are decoded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset
from vadlib.data.registry import register_dataset
from vadlib.data.release import (check_length, choose, count_images, find_path, frame_dirs, need_root,
                                 require_dir, strict_options, video_files)
from vadlib.data.video import VIDEO_EXTENSIONS
from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import DataError

SPLITS = ("official", "weakly")
SPLIT_FILES = {"zhong": ("SH_Train_new.txt", "SH_Test_NEW.txt"), "rtfm": ("SH_Train.txt", "SH_Test.txt")}
SHT_DESCRIPTIONS = {
    "anomaly": "on a university campus walkway: a cyclist, skateboarder, car or cart, people fighting, "
               "chasing, running, jumping, throwing objects or falling",
}


def parse_sht_frame_masks(folder: str | Path) -> dict[str, np.ndarray]:
    """``test_frame_mask/*.npy`` → ``{video: (T,) uint8}`` in sorted name order."""
    folder = require_dir(Path(folder), "frame-mask folder (test_frame_mask)")
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise DataError(folder, "holds no <video>.npy frame masks")
    out = {}
    for f in files:
        try:
            a = np.load(f)
        except Exception as exc:
            raise DataError(f, f"cannot read the frame mask ({exc})") from exc
        a = np.asarray(a).reshape(-1)
        if not set(np.unique(a).tolist()) <= {0, 1}:
            raise DataError(f, "frame mask holds values other than 0/1")
        out[f.stem] = a.astype(np.uint8)
    return out


def parse_sht_split_list(path: str | Path) -> list[tuple[str, int | None, int | None]]:
    """A weakly split list → ``[(video, label or None, n_frames or None), …]``.

    Zhong/MIST lines are ``id,label`` (train) or ``id,label,n_frames`` (test, ``-1`` = see the
    frame mask); RTFM lines are just ``id``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "split list does not exist")
    out = []
    for k, line in enumerate(path.read_text().splitlines(), 1):
        parts = [p.strip() for p in line.strip().split(",")]
        if not parts[0]:
            continue
        try:
            label = int(parts[1]) if len(parts) > 1 else None
            n = int(parts[2]) if len(parts) > 2 else None
        except ValueError:
            raise DataError(path, f"line {k}: expected 'video[,label[,n_frames]]', got {line.strip()!r}") from None
        out.append((parts[0], label, None if n is None or n < 0 else n))
    if not out:
        raise DataError(path, "split list is empty")
    return out


def _pixel_loader(path: Path, n: int, video: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        if not path.is_file():
            raise DataError(path, f"pixel mask of video '{video}' is missing")
        m = np.load(path)
        if m.ndim != 3:
            raise DataError(path, f"pixel mask must be (T, H, W), got shape {m.shape}")
        check_length(path, video, len(m), n)
        return m > 0

    return load


def _zeros(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, np.uint8), np.zeros(n, np.int64)


class _Release:
    """Where the parts of one ShanghaiTech release are."""

    def __init__(self, root: Path, gt: str, gt_root: Path | None, fps: float):
        self.root, self.fps = root, fps
        self.gt_dir = find_path(gt, [gt_root, root / "testing"], f"ShanghaiTech frame GT folder '{gt}'", kind="dir")
        self.gt = parse_sht_frame_masks(self.gt_dir)
        pix = [d / "test_pixel_mask" for d in (gt_root, root / "testing") if d is not None]
        self.pixel_dir = next((d for d in pix if d.is_dir()), None)
        self.test_frames = root / "testing" / "frames"
        tv, tf = root / "training" / "videos", root / "training" / "frames"
        self.train_dir = tv if tv.is_dir() or not tf.is_dir() else tf

    def train_sources(self) -> dict[str, Path]:
        if self.train_dir.name == "videos":
            return {p.stem: p for p in video_files(self.train_dir, "training videos folder")}
        return {d.name: d for d in frame_dirs(self.train_dir, "training frames folder")}

    def normal_path(self, vid: str) -> Path:
        if self.train_dir.name == "frames":
            return require_dir(self.train_dir / vid, f"frames folder of normal video '{vid}'")
        for ext in VIDEO_EXTENSIONS:
            if (self.train_dir / f"{vid}{ext}").is_file():
                return self.train_dir / f"{vid}{ext}"
        raise DataError(self.train_dir / f"{vid}.avi", f"normal video '{vid}' of the split list is missing")

    def test_clip(self, vid: str, split: str, with_frame_gt: bool = True) -> Video:
        d = self.test_frames / vid
        require_dir(self.test_frames, "testing frames folder")
        if not d.is_dir():
            raise DataError(d, f"frames folder of test clip '{vid}' is missing")
        n = count_images(d)
        lab = self.gt[vid]
        gt_file = self.gt_dir / f"{vid}.npy"
        check_length(gt_file, vid, len(lab), n, d)
        pix = None if self.pixel_dir is None else self.pixel_dir / f"{vid}.npy"
        return Video(name=vid, path=d, split=split, label=int(lab.any()),
                     class_name="anomaly" if lab.any() else NORMAL,
                     frame_labels=lab if with_frame_gt else None,
                     frame_classes=lab.astype(np.int64) if with_frame_gt else None,
                     num_frames=n, fps=self.fps,
                     mask_loader=None if pix is None or not with_frame_gt else _pixel_loader(pix, n, vid),
                     meta={"gt_path": str(gt_file), "scene": vid.split("_")[0]})

    def normal_video(self, vid: str, split: str, n_frames: int | None = None,
                     list_path: Path | None = None) -> Video:
        p = self.normal_path(vid)
        n = count_images(p) if p.is_dir() else None
        v = Video(name=vid, path=p, split=split, label=0, class_name=NORMAL, num_frames=n, fps=self.fps,
                  meta={"scene": vid.split("_")[0]})
        if split == "test":
            if n_frames is not None:
                v.frame_labels, v.frame_classes = _zeros(n_frames)
                v.meta["gt_path"] = str(list_path)   # the n_frames column of the split list
                if n is not None:
                    check_length(list_path, vid, n_frames, n, p)
            else:
                v.label_builder = _zeros
        return v


def _split_files(split_root, gt_root, root: Path) -> tuple[Path, Path]:
    folders = [split_root] if split_root is not None else [
        *(Path(gt_root) / "weakly_split" / s for s in ("zhong_mist", "rtfm") if gt_root is not None),
        gt_root, root]
    for f in folders:
        if f is None:
            continue
        for tr, te in SPLIT_FILES.values():
            if (Path(f) / tr).is_file() and (Path(f) / te).is_file():
                return Path(f) / tr, Path(f) / te
    first = next(Path(f) for f in folders if f is not None)
    raise DataError(first / SPLIT_FILES["zhong"][0], "weakly split lists are missing (looked for "
                    f"{' / '.join('+'.join(v) for v in SPLIT_FILES.values())} in "
                    f"{', '.join(str(f) for f in folders if f is not None)}); set split_root")


@register_dataset("shanghaitech")
@strict_options("shanghaitech")
def shanghaitech(root: str | Path | None, split: str = "official", gt: str = "test_frame_mask",
                 gt_root: str | Path | None = None, split_root: str | Path | None = None,
                 fps: float = DEFAULT_FPS) -> VideoDataset:
    """ShanghaiTech Campus in its release layout; ``split`` = ``official`` or ``weakly`` (238/199)."""
    root = need_root(root, "shanghaitech")
    choose(split, SPLITS, "split", "shanghaitech")
    gt_root = None if gt_root is None else Path(gt_root)
    rel = _Release(root, gt, gt_root, fps)
    meta = {"split": split, "fps": fps, "gt_path": str(rel.gt_dir)}
    if split == "official":
        require_dir(rel.test_frames, "testing frames folder")
        train = [Video(name=k, path=p, split="train", label=0, class_name=NORMAL, fps=fps,
                       num_frames=count_images(p) if p.is_dir() else None, meta={"scene": k.split("_")[0]})
                 for k, p in rel.train_sources().items()]
        clips = [d.name for d in frame_dirs(rel.test_frames, "testing frames folder")]
        missing = [c for c in clips if c not in rel.gt]
        if missing:
            raise DataError(rel.gt_dir / f"{missing[0]}.npy", f"frame GT of test clip(s) {missing[:5]} is missing")
        test = [rel.test_clip(c, "test") for c in clips]
    else:
        tr_path, te_path = _split_files(split_root, gt_root, root)
        meta["split_files"] = [str(tr_path), str(te_path)]
        splits = {}
        for name, path in (("train", tr_path), ("test", te_path)):
            vids = []
            for vid, label, n in parse_sht_split_list(path):
                anomalous = vid in rel.gt
                if label is not None and label != int(anomalous):
                    raise DataError(path, f"video '{vid}' has label {label} but "
                                    f"{'has' if anomalous else 'has no'} frame mask in {rel.gt_dir}")
                vids.append(rel.test_clip(vid, name, with_frame_gt=name == "test") if anomalous
                            else rel.normal_video(vid, name, n, path))
            splits[name] = vids
        train, test = splits["train"], splits["test"]
        clash = {v.name for v in train} & {v.name for v in test}
        if clash:
            raise DataError(te_path, f"videos in both train and test lists: {sorted(clash)[:5]}")
    return VideoDataset(name="shanghaitech", root=root, splits={"train": train, "test": test},
                        class_names=[NORMAL, "anomaly"], descriptions=dict(SHT_DESCRIPTIONS),
                        gt_file=gt, meta=meta)
