"""Published pre-extracted CLIP features into the feature store.

Two release layouts are read (both ViT-B/16 CLIP, OpenAI weights):

``anomalyclip`` (AnomalyCLIP, Zanella et al. 2024)::

    <features_root>/<Class>/<video>.npy          (frames * ncrops, 512), frame-major: row t*ncrops + c
    <annotations_root>/Anomaly_Train_Abnormal.txt, Anomaly_Train_Normal.txt, Anomaly_Test.txt
        one line per video: ``<Class>/<video> <start_frame> <end_frame (inclusive)> <label_id>``
    labels csv (``id,name``, e.g. ``data/ucf_labels.csv``) naming the label ids; ``Normal`` is normal

  One row per frame (stride 1) → store sampling ``"frame"``, crops = ``ncrops``.

``vadclip`` (VadCLIP, Wu et al. 2024; the RTFM-style multi-crop layout)::

    <features_root>/<Class>/<video>__<crop>.npy  (n_snippets, 512), one row per 16-frame snippet
    optional list csv(s) ``path,label`` (``ucf_CLIP_rgb.csv`` …): which files form each split

  → store sampling ``"snippet"`` (16), crops = number of crop files per video (or one chosen crop).

The store records ``source = "imported:<layout>"``, the backbone ``ViT-B-16``/``openai`` and
``real_weights = True``; the stores are keyed like extracted ones, so imported and self-extracted
features never mix.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from vadlib.errors import ConfigError, DataError
from vadlib.features.store import FeatureStore, store_dir
from vadlib.registry import Registry

log = logging.getLogger(__name__)

OPENAI_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_STD = [0.26862954, 0.26130258, 0.27577711]
ANOMALYCLIP_LISTS = {"Anomaly_Train_Abnormal.txt": "train", "Anomaly_Train_Normal.txt": "train",
                     "Anomaly_Test.txt": "test"}
_CROP_RE = re.compile(r"^(?P<video>.+)__(?P<crop>\d+)\.npy$")

LAYOUTS: Registry[Callable[..., FeatureStore]] = Registry("feature layout")


def _published_info(dataset: str, layout: str, backbone: str, pretrained: str, sampling: str, crops: int,
                    snippet_len: int | None) -> dict:
    return {"dataset": dataset, "backbone": backbone, "pretrained": pretrained, "real_weights": True,
            "source": f"imported:{layout}",
            "preprocessing": {"image_size": 224, "mean": OPENAI_MEAN, "std": OPENAI_STD,
                              "resize": "as published", "crop": "center" if crops == 1 else f"{crops} crops"},
            "sampling": sampling, "stride": 1, "snippet_len": snippet_len, "crops": int(crops),
            "dtype": "float32", "precision": "as published"}


def _load(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(path, f"cannot read the feature file ({exc.__class__.__name__}: {exc})") from exc
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DataError(path, f"expected a non-empty (rows, D) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise DataError(path, "feature file contains NaN or inf")
    return arr.astype(np.float32, copy=False)


def _handle(err: DataError, video: str, store: FeatureStore, on_error: str) -> None:
    if on_error == "raise":
        raise err
    log.warning("skipping video '%s': %s", video, err)
    store.mark_skipped(video, str(err))


def _check_on_error(on_error: str) -> None:
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', got '{on_error}'")


# ---------------------------------------------------------------------------------------------
# AnomalyCLIP


def read_labels_csv(path: str | Path) -> dict[int, str]:
    """``id,name`` csv → ``{id: name}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "labels file does not exist (AnomalyCLIP ships data/<dataset>_labels.csv)")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"id", "name"} <= set(rows[0]):
        raise DataError(path, "labels file must be a csv with columns id,name")
    return {int(r["id"]): r["name"].strip() for r in rows}


def read_anomalyclip_list(path: str | Path) -> list[tuple[str, int, int, int]]:
    """``<Class>/<video> start end label_id`` lines → ``[(rel, start, end, label_id)]``."""
    path = Path(path)
    out = []
    for no, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 4:
            raise DataError(path, f"line {no}: expected '<Class>/<video> start end label_id', got {line!r}")
        try:
            out.append((parts[0], int(parts[1]), int(parts[2]), int(parts[3])))
        except ValueError as exc:
            raise DataError(path, f"line {no}: start/end/label must be integers ({line!r})") from exc
    return out


@LAYOUTS.register("anomalyclip")
def import_anomalyclip(features_root: str | Path, out_root: str | Path, dataset: str,
                       annotations_root: str | Path | None = None, labels_file: str | Path | None = None,
                       ncrops: int = 1, backbone: str = "ViT-B-16", pretrained: str = "openai",
                       on_error: str = "raise") -> FeatureStore:
    """Import AnomalyCLIP's per-frame features (see the module docstring).

    Args:
        features_root: ``Image-Features/`` (class folders of ``<video>.npy``).
        annotations_root: folder with the three annotation lists (default: ``features_root/../Annotations``).
        labels_file: ``id,name`` csv; without it, a video is normal when its class folder is ``Normal*``.
        ncrops: crops per frame in the files (rows = frames × ncrops, frame-major).
    Returns:
        the store (``sampling="frame"``, ``crops=ncrops``); rows ``(T, D)`` or ``(T, ncrops, D)``.
    """
    _check_on_error(on_error)
    features_root = Path(features_root)
    if not features_root.is_dir():
        raise DataError(features_root, "AnomalyCLIP features folder does not exist")
    ann = Path(annotations_root) if annotations_root else features_root.parent / "Annotations"
    lists = {name: ann / name for name in ANOMALYCLIP_LISTS if (ann / name).is_file()}
    if not lists:
        raise DataError(ann, f"no AnomalyCLIP annotation list found (looked for {', '.join(ANOMALYCLIP_LISTS)})")
    names = read_labels_csv(labels_file) if labels_file else {}
    info = _published_info(dataset, "anomalyclip", backbone, pretrained, "frame", int(ncrops), None)
    store = FeatureStore.create(store_dir(out_root, dataset, info), info)
    n_done = 0
    for list_name, list_path in lists.items():
        split = ANOMALYCLIP_LISTS[list_name]
        for rel, start, end, label_id in read_anomalyclip_list(list_path):
            video = Path(rel).name
            if store.has(video):
                continue
            cls = names.get(label_id, Path(rel).parent.name)
            normal = cls.lower().startswith("normal") or "normal" in Path(rel).parent.name.lower()
            f = features_root / f"{rel}.npy"
            try:
                if not f.is_file():
                    raise DataError(f, f"feature file of video '{video}' (listed in {list_path.name}) does not exist")
                arr = _load(f)
                n = end - start + 1
                if arr.shape[0] % ncrops:
                    raise DataError(f, f"{arr.shape[0]} rows is not a multiple of ncrops={ncrops}")
                if arr.shape[0] // ncrops != n:
                    raise DataError(f, f"{arr.shape[0] // ncrops} frames of features but {list_path.name} says "
                                    f"frames {start}..{end} ({n} frames)")
            except DataError as err:
                _handle(err, video, store, on_error)
                continue
            feats = arr.reshape(n, ncrops, -1)
            store.write(video, feats[:, 0] if ncrops == 1 else feats, np.arange(start, end + 1),
                        {"num_frames": end + 1, "split": split, "label": 0 if normal else 1,
                         "class_name": "normal" if normal else cls, "source_file": str(f)})
            n_done += 1
    log.info("imported %d AnomalyCLIP videos into %s", n_done, store.path)
    return FeatureStore.open(store.path)


# ---------------------------------------------------------------------------------------------
# VadCLIP / RTFM multi-crop


def scan_crop_files(features_root: str | Path) -> dict[str, dict[int, Path]]:
    """``<video>__<crop>.npy`` files under ``features_root`` → ``{video: {crop: path}}``."""
    out: dict[str, dict[int, Path]] = {}
    for p in sorted(Path(features_root).rglob("*.npy")):
        m = _CROP_RE.match(p.name)
        if m:
            out.setdefault(m["video"], {})[int(m["crop"])] = p
    return out


def read_vadclip_list(path: str | Path) -> list[tuple[str, str]]:
    """``path,label`` csv → ``[(file name, label)]`` (the authors' absolute paths are reduced to names)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "VadCLIP list file does not exist")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"path", "label"} <= set(rows[0]):
        raise DataError(path, "VadCLIP list must be a csv with columns path,label")
    return [(Path(r["path"].replace("\\", "/")).name, r["label"].strip()) for r in rows]


def _is_normal_label(label: str) -> bool:
    lab = label.strip().lower()
    return lab in ("normal", "a", "0")  # UCF 'Normal'; XD-Violence 'A' (no violence)


@LAYOUTS.register("vadclip")
def import_vadclip(features_root: str | Path, out_root: str | Path, dataset: str,
                   lists: Mapping[str, str | Path] | None = None, crop: int | None = None,
                   snippet_len: int = 16, num_frames: Mapping[str, int] | None = None,
                   splits: Mapping[str, str] | None = None, backbone: str = "ViT-B-16",
                   pretrained: str = "openai", on_error: str = "raise") -> FeatureStore:
    """Import VadCLIP/RTFM-layout snippet features (see the module docstring).

    Args:
        lists: ``{split: list csv}`` (e.g. ``{"train": "ucf_CLIP_rgb.csv", "test": "ucf_CLIP_rgbtest.csv"}``);
            the files they name form the splits, their labels the video labels. Without lists
            every ``*__<k>.npy`` under ``features_root`` is taken, split from ``splits`` (else None).
        crop: keep only this crop index (a 1-crop store); default: all crops of each video
            (their number, 1, 5 or 10, must be the same for every video).
        num_frames: ``{video: frame count}`` where known (checked against the snippet count:
            ``ceil(T/16)`` or ``floor(T/16)``); otherwise ``rows × 16`` is recorded.
    Returns:
        the store: ``sampling="snippet"``, rows ``(N, D)`` or ``(N, crops, D)``, frame index ``16·i``.
    """
    _check_on_error(on_error)
    features_root = Path(features_root)
    if not features_root.is_dir():
        raise DataError(features_root, "VadCLIP features folder does not exist")
    files = scan_crop_files(features_root)
    if not files:
        raise DataError(features_root, "no '<video>__<crop>.npy' feature files found")
    meta: dict[str, dict] = {}
    if lists:
        for split, list_path in lists.items():
            for name, label in read_vadclip_list(list_path):
                m = _CROP_RE.match(name)
                if not m:
                    raise DataError(Path(list_path), f"'{name}' is not a '<video>__<crop>.npy' file name")
                rec = meta.setdefault(m["video"], {"split": split, "label": label, "listed": set()})
                rec["listed"].add(int(m["crop"]))
    else:
        for video, crops in files.items():
            cls = next(iter(crops.values())).parent.name
            meta[video] = {"split": (splits or {}).get(video), "label": cls, "listed": set(crops)}
    if crop is not None:
        n_crops = 1
    else:
        counts = sorted({len(files.get(v, {})) for v in meta} - {0})
        if len(counts) != 1 or counts[0] not in (1, 5, 10):
            raise DataError(features_root, f"videos have different or unsupported crop counts {counts}; "
                            "pass crop=<index> to import one crop")
        n_crops = counts[0]
    info = _published_info(dataset, "vadclip", backbone, pretrained, "snippet", n_crops, int(snippet_len))
    if crop is not None:
        info["preprocessing"]["crop"] = f"crop {crop} of the published crops"
    store = FeatureStore.create(store_dir(out_root, dataset, info), info)
    n_done = 0
    for video, rec in meta.items():
        if store.has(video):
            continue
        have = files.get(video, {})
        want = [crop] if crop is not None else sorted(have)
        try:
            missing = [k for k in want if k not in have]
            if missing or not have:
                raise DataError(features_root, f"video '{video}': crop files {missing or want} not found "
                                f"(have crops {sorted(have)})")
            if crop is None and len(have) != n_crops:
                raise DataError(have[want[0]], f"video '{video}' has {len(have)} crops, the others {n_crops}")
            arrs = [_load(have[k]) for k in want]
            rows = {a.shape for a in arrs}
            if len(rows) != 1:
                raise DataError(have[want[0]], f"crops of video '{video}' differ in shape: {sorted(rows)}")
            n = arrs[0].shape[0]
            t = (num_frames or {}).get(video)
            if t is not None and n not in (-(-int(t) // snippet_len), int(t) // snippet_len):
                raise DataError(have[want[0]], f"{n} snippets of {snippet_len} frames do not fit the video's "
                                f"{t} frames (expected {int(t) // snippet_len} or {-(-int(t) // snippet_len)})")
        except DataError as err:
            _handle(err, video, store, on_error)
            continue
        feats = arrs[0] if len(arrs) == 1 else np.stack(arrs, 1)
        n_frames = int(t) if t is not None else n * snippet_len
        normal = _is_normal_label(rec["label"]) or rec["label"].lower().startswith("normal") \
            or "normal" in rec["label"].lower()
        store.write(video, feats, np.arange(n) * snippet_len,
                    {"num_frames": max(n_frames, (n - 1) * snippet_len + 1), "split": rec["split"],
                     "label": 0 if normal else 1, "class_name": "normal" if normal else rec["label"],
                     "source_file": str(have[want[0]])})
        n_done += 1
    log.info("imported %d VadCLIP-layout videos into %s", n_done, store.path)
    return FeatureStore.open(store.path)


def import_features(layout: str, *args, **kwargs) -> FeatureStore:
    """``import_features("anomalyclip" | "vadclip", features_root, out_root, dataset, ...)``."""
    return LAYOUTS.get(layout)(*args, **kwargs)


def layouts() -> Sequence[str]:
    return LAYOUTS.names()
