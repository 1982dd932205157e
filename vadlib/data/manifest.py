"""JSON manifest adapter (``manifest``): any collection of videos listed in one file.

Format (the seed design's)::

    {"train": {"<scene>": [{"video_path": "a/videos/train/x.mp4", "anomaly": 0}, ...]},
     "test":  {"<scene>": [{"video_path": "...", "anomaly": 1, "gt_path": "a/annotations/x.npy"}, ...]}}

* ``video_path``: a video file or a frames folder; relative paths are relative to the manifest file.
* ``anomaly``: the video-level label, 0 or 1 (training videos with 1 are weakly labelled, for MIL).
* ``gt_path`` (test videos): per-frame 0/1 labels — ``.npy`` (any shape, flattened), ``.txt`` (one
  label per line, or whitespace separated), or ``.json`` (a list). A normal test video may omit it
  (all frames normal); an anomalous test video must have it. Training entries need none.
* optional per entry: ``name`` (default: the file stem; prefixed with the scene when stems collide),
  ``class_name`` (default ``"anomaly"`` for anomalous videos); optional top level: ``class_names``
  (``["normal", ...]``) and ``descriptions`` (``{class: text}``).

Frame classes are the video's class on its anomalous frames. Frame counts of video files are
only known after decoding: :meth:`Video.check_labels` compares them with the GT then; frames
folders are counted at load time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset
from vadlib.data.registry import register_dataset
from vadlib.data.release import count_images, strict_options
from vadlib.config import bounded, check
from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError

SPLITS = ("train", "test")


@dataclass
class ManifestEntry:
    """One manifest entry (checked by :func:`vadlib.config.check`: unknown keys and wrong types raise)."""

    video_path: str
    anomaly: int
    gt_path: Optional[str] = None
    name: Optional[str] = None
    class_name: Optional[str] = None
    fps: Optional[float] = bounded(None, gt=0)


def load_frame_labels(path: str | Path) -> np.ndarray:
    """A per-frame label file (.npy, .txt or .json list of 0/1) → ``(T,)`` uint8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "frame-label file does not exist")
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif path.suffix == ".json":
            arr = np.asarray(json.loads(path.read_text()), dtype=np.float64)
        else:
            arr = np.asarray(path.read_text().split(), dtype=np.float64)
    except Exception as exc:
        raise DataError(path, f"cannot read frame labels ({exc.__class__.__name__}: {exc})") from exc
    arr = np.asarray(arr).reshape(-1)
    if arr.size == 0:
        raise DataError(path, "frame-label file is empty")
    if not np.isin(arr, (0, 1)).all():
        bad = arr[~np.isin(arr, (0, 1))][:3].tolist()
        raise DataError(path, f"frame labels must be 0 or 1 (found {bad})")
    return arr.astype(np.uint8)


def _zeros(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(n, np.uint8), np.zeros(n, np.int64)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse and check the top level of a manifest file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "manifest file does not exist")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(path, f"manifest is not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(k in data for k in SPLITS):
        have = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataError(path, f"manifest needs top-level keys 'train' and 'test' (has: {have})")
    for split in SPLITS:
        if not isinstance(data[split], dict):
            raise DataError(path, f"'{split}' must map scene names to lists of entries, "
                            f"got {type(data[split]).__name__}")
        for scene, entries in data[split].items():
            if not isinstance(entries, list):
                raise DataError(path, f"{split}/{scene}: must be a list of entries, got {type(entries).__name__}")
    return data


@register_dataset("manifest")
@strict_options("manifest")
def manifest_dataset(root: str | Path | None, manifest: str = "manifest.json", scene: str | None = None,
                     fps: float = DEFAULT_FPS, name: str = "manifest") -> VideoDataset:
    """Videos listed in a JSON manifest (``root`` = its folder, or the manifest file itself);
    ``scene`` keeps one scene only."""
    if root is None:
        raise DataError(None, "the manifest dataset needs a root (the manifest file or its folder)")
    root = Path(root).expanduser()
    path = root if root.is_file() else root / manifest
    data = read_manifest(path)
    base = path.parent
    scenes = sorted({s for split in SPLITS for s in data[split]})
    if scene is not None:
        if scene not in scenes:
            raise DataError(path, f"no scene '{scene}' in the manifest (has: {', '.join(scenes) or 'none'})")
        scenes = [scene]

    class_names = list(data.get("class_names") or [NORMAL])
    if not class_names or class_names[0] != NORMAL:
        raise DataError(path, f"'class_names' must start with '{NORMAL}' (got {class_names[:3]})")
    raw: list[tuple[str, str, int, dict]] = []
    for split in SPLITS:
        for sc in scenes:
            for i, e in enumerate(data[split].get(sc, [])):
                raw.append((split, sc, i, e))

    def where(split: str, sc: str, i: int, e: Any) -> str:
        vp = e.get("video_path") if isinstance(e, dict) else None
        return f"entry {split}/{sc}[{i}]" + (f" ({vp})" if vp else "")

    stems = [Path(str(e.get("name") or e.get("video_path", ""))).stem if isinstance(e, dict) else "" for *_, e in raw]
    collide = len(set(stems)) != len(stems)
    splits: dict[str, list[Video]] = {s: [] for s in SPLITS}
    for (split, sc, i, e), stem in zip(raw, stems):
        at = where(split, sc, i, e)
        if not isinstance(e, dict) or "video_path" not in e or "anomaly" not in e:
            raise DataError(path, f"{at}: needs 'video_path' and 'anomaly' (got {e!r})")
        if not isinstance(e["anomaly"], (int, float)) or e["anomaly"] not in (0, 1):
            raise DataError(path, f"{at}: 'anomaly' must be 0 or 1, got {e['anomaly']!r}")
        try:
            check(ManifestEntry, e, at)
        except ConfigError as exc:
            raise DataError(path, str(exc)) from None
        label = int(e["anomaly"])
        vpath = Path(e["video_path"]).expanduser()
        vpath = vpath if vpath.is_absolute() else base / vpath
        if not vpath.exists():
            raise DataError(path, f"{at}: video file does not exist: {vpath}")
        if vpath.is_file() and vpath.stat().st_size == 0:
            raise DataError(path, f"{at}: video file is empty (0 bytes): {vpath}")
        n = count_images(vpath) if vpath.is_dir() else None
        cls = str(e.get("class_name") or ("anomaly" if label else NORMAL))
        if label and cls == NORMAL:
            raise DataError(path, f"{at}: anomaly=1 but class_name is '{NORMAL}'")
        if cls not in class_names:
            class_names.append(cls)
        v = Video(name=f"{sc}_{stem}" if collide else stem, path=vpath, split=split, label=label,
                  class_name=cls if label else NORMAL, num_frames=n, fps=float(e.get("fps", fps)),
                  meta={"scene": sc, "manifest": str(path), "entry": at, "weak": split == "train" and label == 1})
        gt = e.get("gt_path")
        if split == "test":
            if gt is None:
                if label:
                    raise DataError(path, f"{at}: anomalous test video has no 'gt_path' (per-frame labels)")
                v.label_builder = _zeros
            else:
                gpath = Path(gt).expanduser()
                gpath = gpath if gpath.is_absolute() else base / gpath
                if not gpath.is_file():
                    raise DataError(path, f"{at}: GT file does not exist: {gpath}")
                try:
                    lab = load_frame_labels(gpath)
                except DataError as exc:
                    raise DataError(path, f"{at}: {exc}") from exc
                if bool(lab.any()) != bool(label):
                    raise DataError(path, f"{at}: anomaly={label} but its GT {gpath.name} has "
                                    f"{int(lab.sum())} anomalous frames")
                v.frame_labels = lab
                v.frame_classes = lab.astype(np.int64) * class_names.index(v.class_name)
                v.meta["gt_path"] = str(gpath)
                if n is not None:
                    v.check_labels(n)
        elif gt is not None:
            v.meta["gt_path"] = str(gt)  # kept but not exposed as frame labels (training video)
        splits[split].append(v)
    if not splits["test"]:
        raise DataError(path, "manifest lists no test videos" + (f" for scene '{scene}'" if scene else ""))
    names = [v.name for vs in splits.values() for v in vs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(path, f"video name '{dup[0]}' is used by two entries; give them distinct 'name's")
    descriptions = {str(k): str(v) for k, v in (data.get("descriptions") or {}).items()}
    return VideoDataset(name=name, root=base, splits=splits, class_names=class_names, descriptions=descriptions,
                        gt_file=path.name, meta={"manifest": str(path), "scenes": scenes, "fps": fps})
