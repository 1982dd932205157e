"""The demo benchmark as datasets: ``demo_a`` and ``demo_b`` (the adapters), its class names and
descriptions, and its mask file format. The renderer that writes a demo root is
:mod:`vadlib.synthetic.demo` (``python -m vadlib.synthetic.demo`` runs it).

A demo root holds, per scene ``root/<scene>/``: ``videos/{train,test}/<name>.mp4`` and the same
frames as ``frames/{train,test}/<name>/000.jpg…``; ``annotations/<name>.npz`` (``frame_labels`` (T,)
uint8, ``frame_classes`` (T,) int64 into ``["normal", *DEMO_CLASSES]``) and ``<name>.npy`` for test
videos; ``masks/<name>.npz`` (:func:`save_masks`); ``index.json``; and at the root ``classes.json``,
``manifest.json`` and the marker ``demo.json``, written last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset
from vadlib.data.registry import register_dataset
from vadlib.data.release import count_images, strict_options
from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError

MARKER = "demo.json"
SCENES = ("a", "b")
DEMO_CLASSES = ("cyclist", "cart", "running", "falling", "loitering")
DEMO_DESCRIPTIONS = {
    "cyclist": "a person riding a bicycle on the walkway",
    "cart": "a small cart or vehicle driving on the walkway",
    "running": "a person running fast",
    "falling": "a person falling down and lying on the ground",
    "loitering": "a person leaving the flow of walkers and standing still, loitering",
}
CLASS_NAMES = [NORMAL, *DEMO_CLASSES]
SCENE_DESCRIPTIONS = {
    "a": "a paved plaza seen from a high camera: square paving tiles, grass at the edges, few people",
    "b": "an asphalt path through grass seen obliquely: the path converges into the distance, many people",
}


def save_masks(path: Path, masks: np.ndarray) -> None:
    """(T, H, W) bool → ``packed`` bits + ``shape`` in an .npz."""
    np.savez_compressed(path, packed=np.packbits(masks.reshape(-1)), shape=np.asarray(masks.shape, np.int64))


def load_masks(path: str | Path) -> np.ndarray:
    """Inverse of :func:`save_masks` → (T, H, W) bool."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "mask file does not exist")
    try:
        with np.load(path) as z:
            shape = tuple(int(v) for v in z["shape"])
            bits = np.unpackbits(z["packed"])[: int(np.prod(shape))]
    except Exception as exc:
        raise DataError(path, f"not a demo mask file ({exc.__class__.__name__}: {exc})") from exc
    return bits.reshape(shape).astype(bool)


# ----------------------------------------------------------------------------- dataset adapters

def _hint(root: Path) -> str:
    return f"run `python -m vadlib.synthetic.demo --root {root}` to generate the demo benchmark"


def scene_root(root: str | Path | None, scene: str) -> Path:
    """The folder of ``scene`` under a demo root (or ``root`` itself if it is that scene's folder)."""
    if root is None:
        raise DataError(None, f"demo_{scene} needs a root: set datasets.demo_{scene}.root in params.yaml")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(root, f"demo root does not exist; {_hint(root)}")
    if (root / MARKER).is_file() and (root / scene / "index.json").is_file():
        return root / scene
    if (root / "index.json").is_file() and (root.parent / MARKER).is_file():
        try:
            if json.loads((root / "index.json").read_text()).get("scene") == scene:
                return root
        except ValueError:
            pass
    if not (root / MARKER).is_file():
        raise DataError(root, f"not a complete demo root (no {MARKER} marker); {_hint(root)}")
    raise DataError(root / scene, f"scene '{scene}' was not generated in this demo root; {_hint(root)}")


def _load_index(sroot: Path) -> dict:
    path = sroot / "index.json"
    try:
        index = json.loads(path.read_text())
        index["videos"]["train"], index["videos"]["test"]  # noqa: B018
        return index
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DataError(path, f"unreadable demo index ({exc.__class__.__name__}: {exc}); {_hint(sroot.parent)}") from exc


def _mask_loader(path: Path, n: int, name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        m = load_masks(path)
        if len(m) != n:
            raise DataError(path, f"masks of video '{name}' have {len(m)} frames but the video has {n}")
        return m

    return load


def load_demo(root: str | Path | None, scene: str, layout: str = "video") -> VideoDataset:
    """The demo scene ``scene`` as a :class:`VideoDataset` (``layout``: ``"video"`` or ``"frames"``)."""
    if layout not in ("video", "videos", "frames"):
        raise ConfigError(f"dataset 'demo_{scene}': layout={layout!r} is not one of 'video', 'frames'")
    layout = "frames" if layout == "frames" else "videos"
    sroot = scene_root(root, scene)
    index = _load_index(sroot)
    fps = float(index.get("fps", DEFAULT_FPS))
    splits: dict[str, list[Video]] = {}
    for split in ("train", "test"):
        vids = []
        for e in index["videos"][split]:
            name = e["name"]
            path = sroot / layout / split / (name if layout == "frames" else f"{name}.mp4")
            if layout == "frames":
                if not path.is_dir():
                    raise DataError(path, f"frames folder of video '{name}' is missing; {_hint(sroot.parent)}")
                n = count_images(path)
            else:
                if not path.is_file():
                    raise DataError(path, f"video file is missing; {_hint(sroot.parent)}")
                if path.stat().st_size == 0:
                    raise DataError(path, "video file is empty (0 bytes)")
                n = int(e["num_frames"])
            if layout == "frames" and n != int(e["num_frames"]):
                raise DataError(path, f"frames folder holds {n} images but index.json says {e['num_frames']}")
            v = Video(name=name, path=path, split=split, label=int(e["label"]), class_name=e["class_name"],
                      num_frames=n, fps=fps, meta={"scene": scene, "classes": e.get("classes", []),
                                                    "weak": split == "train" and int(e["label"]) == 1})
            if split == "test":
                ann = sroot / "annotations" / f"{name}.npz"
                if not ann.is_file():
                    raise DataError(ann, f"annotation of test video '{name}' is missing; {_hint(sroot.parent)}")
                try:
                    with np.load(ann) as z:
                        v.frame_labels = np.asarray(z["frame_labels"], np.uint8)
                        v.frame_classes = np.asarray(z["frame_classes"], np.int64)
                except Exception as exc:
                    raise DataError(ann, f"unreadable annotation ({exc.__class__.__name__}: {exc})") from exc
                v.meta["gt_path"] = str(ann)
                v.meta["events"] = e.get("events", [])
                v.check_labels(n)
                v.mask_loader = _mask_loader(sroot / "masks" / f"{name}.npz", n, name)
            vids.append(v)
        splits[split] = vids
    return VideoDataset(name=f"demo_{scene}", root=sroot, splits=splits, class_names=list(CLASS_NAMES),
                        descriptions=dict(DEMO_DESCRIPTIONS), gt_file="annotations/<video>.npz",
                        meta={"scene": scene, "fps": fps, "layout": layout,
                              "scene_description": index.get("description", ""),
                              "size": [index.get("height"), index.get("width")]})


@register_dataset("demo_a")
@strict_options("demo_a")
def demo_a(root: str | Path | None, layout: str = "video") -> VideoDataset:
    """Demo scene ``a`` (paved plaza, high camera, few people); ``root`` = the demo root."""
    return load_demo(root, "a", layout)


@register_dataset("demo_b")
@strict_options("demo_b")
def demo_b(root: str | Path | None, layout: str = "video") -> VideoDataset:
    """Demo scene ``b`` (path through grass, oblique camera, many people); ``root`` = the demo root."""
    return load_demo(root, "b", layout)


def motion_stats(dataset: VideoDataset, split: str = "test") -> dict[str, dict[str, float]]:
    """Sanity check that anomalies differ in motion: per class, the mean absolute frame difference
    and mean Farneback flow magnitude (px/frame) inside the anomaly masks; ``"normal"`` = the same
    over moving foreground pixels (differing from the video's temporal median) outside any mask."""
    import cv2

    acc: dict[str, list[list[float]]] = {}
    for v in dataset.videos(split):
        if v.frame_labels is None:
            continue
        src = v.open()
        fr = src.get(list(range(len(src)))).astype(np.float32)
        masks = v.masks() if v.mask_loader is not None else np.zeros(fr.shape[:3], bool)
        gray = fr.mean(-1)
        fg = np.abs(fr - np.median(fr, 0)).sum(-1) > 40
        grown = np.stack([cv2.dilate(m.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0 for m in masks])
        for t in range(1, len(fr)):
            diff = np.abs(gray[t] - gray[t - 1])
            flow = cv2.calcOpticalFlowFarneback(gray[t - 1].astype(np.uint8), gray[t].astype(np.uint8), None,
                                                0.5, 2, 9, 3, 5, 1.1, 0)
            mag = np.linalg.norm(flow, axis=-1)
            cid = int(v.frame_classes[t])
            for key, sel in ((CLASS_NAMES[cid], masks[t] & masks[t - 1]) if cid else (None, None),
                             (NORMAL, fg[t] & ~grown[t] & ~grown[t - 1])):
                if key is not None and sel.sum() >= 3:
                    acc.setdefault(key, []).append([float(diff[sel].mean()), float(mag[sel].mean())])
    return {k: {"diff": float(np.mean([x[0] for x in v])), "flow": float(np.mean([x[1] for x in v])),
                "frames": len(v)} for k, v in acc.items()}
