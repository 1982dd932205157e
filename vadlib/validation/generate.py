"""Write a pseudo-anomaly validation set, made from held-out TRAINING videos, like a dataset.

:func:`make_validation_set` plants one event of each requested kind (:mod:`vadlib.validation.kinds`)
in each chosen training video and writes, in one folder built under a temporary name and renamed
when complete (so a half-written set never looks finished)::

    out_dir/
      frames/<name>/000.png …     the frames (lossless PNG; grey when the source is grey)
      labels/<name>.npy           (T,) uint8 per-frame truth
      manifest.json               the `manifest` adapter's format: every video is a TEST video whose
                                  scene and class are its kind ("normal" for the clean copies)
      index.json                  the config (dataset, videos, kinds, seed, options), and per video
                                  its source video, kind, frame counts, events and source-frame index

Video names are ``<source video>_<kind>`` (``<source video>_normal`` for the clean copies).
Each event is drawn from ``np.random.default_rng([seed, crc32(video), crc32(kind)])``, so an event
does not depend on which other videos or kinds are in the set; another seed gives other events, the
same seed byte-identical files. Load the set with :func:`vadlib.validation.load_validation_set`,
or through the dataset registry: ``get_dataset("pseudo_anomalies", out_dir)`` (or ``"manifest"``).

The chosen videos must be held out of every model's training (a stage trains on the others), and
they must come from the ``train`` split: a test video is refused, the point being never to look
at the test set.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset
from vadlib.data.pseudo_anomalies import GENERATOR_VERSION, INDEX, MANIFEST
from vadlib.errors import ConfigError, DataError
from vadlib.io import atomic_dir, write_json
from vadlib.validation.kinds import DEFAULT_MARGIN, DEFAULT_SPAN, KINDS, SPATIAL, PseudoVideo

SCENE = "validation"
IMAGE_FORMATS = (".png", ".jpg")


def event_rng(seed: int, video: str, kind: str) -> np.random.Generator:
    """The generator of one (video, kind) event: independent of the rest of the set."""
    return np.random.default_rng([int(seed), zlib.crc32(video.encode()), zlib.crc32(kind.encode())])


def read_frames(video: Video) -> np.ndarray:
    """All frames of ``video`` as ``(T, H, W, 3)`` uint8 RGB."""
    src = video.open()
    n = len(src)
    frames = src.get(range(n))
    if frames.shape[0] != n:
        raise DataError(video.path, f"read {frames.shape[0]} of {n} frames of video '{video.name}'")
    return frames


def _write_frames(folder: Path, frames: np.ndarray, ext: str) -> None:
    import cv2

    folder.mkdir(parents=True)
    digits = max(3, len(str(len(frames) - 1)))
    grey = bool((frames[..., 0] == frames[..., 1]).all() and (frames[..., 0] == frames[..., 2]).all())
    params = [cv2.IMWRITE_PNG_COMPRESSION, 3] if ext == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 95]
    for i, f in enumerate(frames):
        img = f[..., 0] if grey else cv2.cvtColor(f, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(ext, img, params)
        if not ok:
            raise DataError(folder, f"OpenCV could not encode frame {i} as {ext}")
        (folder / f"{i:0{digits}d}{ext}").write_bytes(buf.tobytes())


def _config(dataset: VideoDataset, videos: Sequence[str], kinds: Sequence[str], seed: int, span, margin,
            options: Mapping, donors: Sequence[str] | None, include_clean: bool, image_format: str) -> dict:
    return {"generator_version": GENERATOR_VERSION, "dataset": dataset.name, "split": "train",
            "videos": list(videos), "kinds": list(kinds), "seed": int(seed), "span": [int(x) for x in span],
            "margin": int(margin), "options": {k: dict(v) for k, v in sorted(options.items())},
            "donors": list(donors) if donors else None, "include_clean": bool(include_clean),
            "image_format": image_format}


def _pick_videos(dataset: VideoDataset, names: Sequence[str], what: str) -> list[Video]:
    train = {v.name: v for v in dataset.videos("train")}
    out = []
    for n in names:
        if n not in train:
            other = [v.name for s, vs in dataset.splits.items() if s != "train" for v in vs]
            if n in other:
                raise DataError(dataset.root, f"{what} '{n}' is not a training video of '{dataset.name}'; "
                                "pseudo-anomalies are made from normal training footage only, never test videos")
            raise DataError(dataset.root, f"dataset '{dataset.name}' has no training video '{n}' "
                            f"(has: {', '.join(list(train)[:20])})")
        out.append(train[n])
    return out


def make_validation_set(dataset: VideoDataset, videos: Sequence[str], out_dir: str | Path,
                        kinds: Sequence[str] = ("skip", "reverse", "freeze", "patch", "object"), seed: int = 0, *,
                        span: tuple[int, int] = DEFAULT_SPAN, margin: int = DEFAULT_MARGIN,
                        options: Mapping[str, Mapping] | None = None, donors: Sequence[str] | None = None,
                        include_clean: bool = True, image_format: str = ".png", force: bool = False) -> Path:
    """Plant one event of each of ``kinds`` in each of ``videos`` and write the set to ``out_dir``.

    Args:
        dataset: the source dataset; ``videos`` are names of its ``train`` split (held out of training).
        kinds: names in :data:`~vadlib.validation.kinds.KINDS`; unknown names list the known ones.
        seed: draws every span, position, factor, patch and path.
        span, margin: span length range (frames, inclusive) and normal frames kept before and after.
        options: per-kind keyword options, e.g. ``{"skip": {"factor": [2, 3]}, "patch": {"speed": [1, 4]}}``.
        donors: training videos the spatial kinds paste from (default: the next of ``videos``, cyclically).
        include_clean: also write each source video unchanged (all frames normal).
        image_format: ``".png"`` (lossless, default) or ``".jpg"``.
        force: regenerate even if ``out_dir`` already holds a set of the same config.

    Returns ``out_dir``. An existing ``out_dir`` of the same config is kept as is; one of another
    config is replaced once the new set is complete; a non-empty folder that is not a validation
    set raises :class:`DataError` (nothing is deleted).
    """
    out_dir = Path(out_dir)
    kinds = list(kinds)
    if not kinds:
        raise ConfigError("make_validation_set: give at least one kind (known: " + ", ".join(KINDS.names()) + ")")
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"make_validation_set: kinds repeat: {kinds}")
    if NORMAL in kinds:
        raise ConfigError(f"make_validation_set: '{NORMAL}' is not a kind (the clean copies are written "
                          "with include_clean=True)")
    fns = {k: KINDS.get(k) for k in kinds}
    options = dict(options or {})
    for k in options:
        if k not in fns:
            raise ConfigError(f"options given for kind '{k}', which is not among the requested kinds {kinds}")
    if image_format not in IMAGE_FORMATS:
        raise ConfigError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
    if not videos:
        raise ConfigError("make_validation_set: give at least one training video")
    if len(set(videos)) != len(videos):
        raise ConfigError(f"make_validation_set: videos repeat: {list(videos)}")
    chosen = _pick_videos(dataset, videos, "video")
    spatial = [k for k in kinds if k in SPATIAL]
    if donors:
        donor_videos = _pick_videos(dataset, donors, "donor video")
    elif spatial and len(chosen) < 2:
        raise ConfigError(f"kinds {spatial} paste from another training video: choose at least two videos "
                          "or pass donors=[...]")
    else:
        donor_videos = chosen[1:] + chosen[:1]
    # as index.json will hold it (tuples become lists), so that a reuse check compares like with like
    cfg = json.loads(json.dumps(_config(dataset, videos, kinds, seed, span, margin, options, donors, include_clean,
                                        image_format)))

    if out_dir.exists():
        idx = out_dir / INDEX
        if not idx.is_file():
            if any(out_dir.iterdir()):
                raise DataError(out_dir, f"folder exists, is not empty and holds no {INDEX}, so it is not a "
                                "validation set; choose another out_dir (nothing was deleted)")
        elif not force:
            try:
                if json.loads(idx.read_text()).get("config") == cfg:
                    return out_dir
            except ValueError:
                pass

    donor_cache: dict[str, np.ndarray] = {}

    def donor_frames(i: int) -> np.ndarray:
        v = donor_videos[i % len(donor_videos)]
        if v.name not in donor_cache:
            donor_cache.clear()
            donor_cache[v.name] = read_frames(v)
        return donor_cache[v.name]

    records, manifest = [], []
    with atomic_dir(out_dir) as tmp:
        (tmp / "labels").mkdir()
        for i, video in enumerate(chosen):
            frames = read_frames(video)
            made: list[tuple[str, PseudoVideo]] = []
            if include_clean:
                made.append((NORMAL, PseudoVideo(frames, np.zeros(len(frames), np.uint8),
                                                 np.arange(len(frames), dtype=np.int64))))
            for kind in kinds:
                kw = dict(options.get(kind, {}))
                donor = donor_frames(i) if kind in SPATIAL else None
                try:
                    pv = fns[kind](frames, event_rng(seed, video.name, kind), span=span, margin=margin,
                                   donor=donor, **kw)
                except DataError as exc:
                    raise DataError(video.path, f"video '{video.name}': {exc.problem}") from exc
                except TypeError as exc:
                    raise ConfigError(f"kind '{kind}': bad options {kw} ({exc})") from exc
                if kind in SPATIAL:
                    for e in pv.events:
                        e["donor"] = donor_videos[i % len(donor_videos)].name
                made.append((kind, pv))
            for kind, pv in made:
                name = f"{video.name}_{kind}"
                _write_frames(tmp / "frames" / name, pv.frames, image_format)
                with open(tmp / "labels" / f"{name}.npy", "wb") as fh:
                    np.save(fh, pv.labels.astype(np.uint8))
                anomalous = int(pv.labels.any())
                manifest.append({"video_path": f"frames/{name}", "anomaly": anomalous, "name": name,
                                 "gt_path": f"labels/{name}.npy", "fps": float(video.fps),
                                 **({"class_name": kind} if anomalous else {})})
                records.append({"name": name, "source_video": video.name, "kind": kind,
                                "n_frames": int(len(pv.labels)), "n_source_frames": int(len(frames)),
                                "n_anomalous": int(pv.labels.sum()), "events": pv.events,
                                "source_index": pv.source.tolist()})
        write_json(tmp / MANIFEST, {"train": {}, "test": {SCENE: manifest}, "class_names": [NORMAL, *kinds],
                                    "descriptions": {k: (KINDS.get(k).__doc__ or "").strip().splitlines()[0]
                                                     for k in kinds}})
        write_json(tmp / INDEX, {"config": cfg, "videos": records,
                                 "truth": "labels/<name>.npy; temporal kinds: label[t] = source_index[t] - "
                                          "source_index[t-1] != 1; spatial kinds: frame pixels differ from the "
                                          "source frame"})
    return out_dir
