"""The feature store: one ``.npy`` per video plus an ``index.json`` that records how it was made.

Layout of one store (a folder)::

    <out_root>/<dataset>/<backbone>__<pretrained>__<sampling><stride>__c<crops>__<hash8>/
        index.json               config (dataset, backbone, tag, real_weights, preprocessing,
                                 sampling, crops, dtype) + per video n_rows/num_frames/fps/split/label
        index.part-R-of-W.json   partial index written by rank R of a W-process run (merged by rank 0)
        <video>.npy              (N, D) float32, or (N, crops, D)
        <video>.frames.npy       (N,) int64: the first frame each row covers
        <video>.spans.npy        (N, 2) int64 [start, end) frame span of each clip (sampling "clip")
        <video>.<aux>.npy        per-row auxiliary array of a clip store whose backbone's prompt scoring
                                 needs it (X-CLIP: ``prompt_tokens`` (N, P, D) float16, the visual tokens
                                 its prompt generator attends to)

Sampling ``clip`` (video backbones: X-CLIP, ActionCLIP): one row per clip of ``clip_len`` consecutive
frames, clips starting every ``clip_stride`` frames until the last frame is covered; a clip that runs
past the video's end (a video shorter than one clip, or the tail) is padded by repeating the last
frame, as the X-CLIP / ActionCLIP authors' samplers do (each video's ``padded_frames`` says how many
frames were repeated). ``clip_len``, ``clip_stride`` and ``aux`` are part of the config hash.

The folder name carries a hash of the config, so extracting with any other backbone, tag,
preprocessing, sampling or crops makes a different store: features are never silently mixed.
A video is *finished* only once it is listed in an index; files are written atomically
(temporary name + rename) in the order features → frame index → index, so an interrupted run
never leaves something that looks finished.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

import numpy as np

from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError
from vadlib.io import save_npy, write_json

INDEX = "index.json"
FORMAT = 1
SAMPLINGS = ("frame", "every", "snippet", "clip")
CROPS = (1, 5, 10)
# Keys of ``info`` that define the store (hashed into its folder name); everything else is bookkeeping.
CONFIG_KEYS = ("dataset", "backbone", "pretrained", "real_weights", "source", "preprocessing", "sampling",
               "stride", "snippet_len", "crops", "dtype", "precision", "clip_len", "clip_stride", "aux")
_PART_RE = re.compile(r"^index\.part-(\d+)-of-(\d+)\.json$")


def _norm(obj: Any) -> Any:
    """JSON round trip (tuples → lists, numpy scalars → Python) so configs compare equal."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))


# config keys added with clip sampling: left out of the config while unset, so frame stores keep their hash
_CLIP_KEYS = ("clip_len", "clip_stride", "aux")


def store_config(info: dict) -> dict:
    """The part of ``info`` that identifies a store (see :data:`CONFIG_KEYS`)."""
    return _norm({k: info.get(k) for k in CONFIG_KEYS if k not in _CLIP_KEYS or info.get(k) is not None})


def config_hash(info: dict) -> str:
    """8 hex digits of the SHA-256 of the canonical JSON of :func:`store_config`."""
    blob = json.dumps(store_config(info), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _slug(s: Any) -> str:
    s = Path(str(s)).name if s is not None else "none"  # a checkpoint path → its file name
    return re.sub(r"[^A-Za-z0-9._-]+", "-", s).strip("-") or "none"


def store_dir(out_root: str | Path, dataset: str, info: dict) -> Path:
    """``<out_root>/<dataset>/<backbone>__<pretrained>__<sampling><stride>__c<crops>[__bf16]__<hash8>``
    (a reduced-precision store — ``precision`` bf16 / fp16 — says so in its name as well as its hash)."""
    validate_info(info)
    samp = info["sampling"]
    step = {"every": info.get("stride", 1), "snippet": info.get("snippet_len", 16), "frame": "",
            "clip": f"{info.get('clip_len')}s{info.get('clip_stride')}"}[samp]
    name = (f"{_slug(str(info['backbone']).replace('/', '-'))}__{_slug(info['pretrained'])}__{samp}{step}"
            f"__c{int(info.get('crops', 1))}{_precision_tag(info)}__{config_hash(info)}")
    return Path(out_root) / _slug(dataset) / name


def _precision_tag(info: dict) -> str:
    p = info.get("precision")
    return f"__{p}" if p in ("bf16", "fp16") else ""


def validate_info(info: dict) -> None:
    """Raise :class:`ConfigError` if ``info`` lacks a required key or has an unknown value."""
    for key in ("dataset", "backbone", "pretrained", "sampling", "crops"):
        if info.get(key) in (None, ""):
            raise ConfigError(f"feature store info lacks '{key}' (has: {', '.join(sorted(info))})")
    if info["sampling"] not in SAMPLINGS:
        raise ConfigError(f"unknown sampling '{info['sampling']}'; known: {', '.join(SAMPLINGS)}")
    if info.get("precision") == "auto":
        raise ConfigError("feature store info has precision 'auto': record the resolved precision "
                          "(Backbone.precision: fp32, bf16 or fp16), so stores of different precisions never mix")
    if int(info["crops"]) not in CROPS:
        raise ConfigError(f"crops must be one of {CROPS}, got {info['crops']}")
    if info["sampling"] == "every" and int(info.get("stride", 1)) < 1:
        raise ConfigError(f"stride must be >= 1, got {info.get('stride')}")
    if info["sampling"] == "snippet" and int(info.get("snippet_len", 16)) < 1:
        raise ConfigError(f"snippet_len must be >= 1, got {info.get('snippet_len')}")
    if info["sampling"] == "clip":
        for key in ("clip_len", "clip_stride"):
            if not isinstance(info.get(key), int) or info[key] < 1:
                raise ConfigError(f"a clip store needs {key} >= 1 (an int), got {info.get(key)!r}")
        if int(info["crops"]) != 1:
            raise ConfigError(f"clip features take one centre crop (crops 1), got crops {info['crops']}")


def video_file_stem(video: str) -> str:
    """File-name-safe stem for a video name (``/`` and other odd characters are %-escaped)."""
    return quote(video, safe="-_.,+=@() ")


def part_name(rank: int, world: int) -> str:
    return f"index.part-{int(rank)}-of-{int(world)}.json"


class FeatureStore:
    """Read/write access to one feature store folder (see the module docstring)."""

    def __init__(self, path: Path, info: dict, videos: dict[str, dict], skipped: dict[str, str],
                 part: str | None = None):
        self.path = Path(path)
        self._info = info
        self._videos = videos
        self._skipped = skipped
        self._part = part  # the partial index this writer appends to (None = index.json)

    # ------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path: str | Path, info: dict, rank: int = 0, world: int = 1) -> "FeatureStore":
        """Open ``path`` for writing, creating it with ``info`` if new.

        An existing store must have the same config (:func:`store_config`), else
        :class:`ConfigError` — a store never mixes features made differently.
        ``rank``/``world`` > 1 make this writer record its videos in its own partial index.
        """
        validate_info(info)
        path = Path(path)
        info = _norm({**{k: v for k, v in info.items() if k not in ("videos", "skipped")}, "format": FORMAT})
        if (path / INDEX).is_file():
            store = cls.open(path, expect=info)
        else:
            path.mkdir(parents=True, exist_ok=True)
            write_json(path / INDEX, {**info, "videos": {}, "skipped": {}})
            store = cls.open(path)
        if world > 1:
            store._part = part_name(rank, world)
        return store

    @classmethod
    def open(cls, path: str | Path, expect: dict | None = None) -> "FeatureStore":
        """Open an existing store (its ``index.json`` plus any partial indexes not merged yet).

        ``expect``: a config the store must match; a mismatch raises :class:`ConfigError`
        naming the differing keys.
        """
        path = Path(path)
        idx = path / INDEX
        if not idx.is_file():
            raise DataError(path, "not a feature store (no index.json); extract features first: "
                            "python -m vadlib.features.extract --dataset ... --out ...")
        try:
            data = json.loads(idx.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(idx, f"feature store index is not valid JSON ({exc})") from exc
        videos = dict(data.pop("videos", {}) or {})
        skipped = dict(data.pop("skipped", {}) or {})
        for part in sorted(path.glob("index.part-*-of-*.json")):
            try:
                pdata = json.loads(part.read_text())
            except json.JSONDecodeError as exc:
                raise DataError(part, f"partial feature index is not valid JSON ({exc})") from exc
            videos.update(pdata.get("videos", {}))
            skipped.update(pdata.get("skipped", {}))
        for v in videos:
            skipped.pop(v, None)
        if expect is not None:
            have, want = store_config(data), store_config(expect)
            diff = [k for k in CONFIG_KEYS if have.get(k) != want.get(k)]
            if diff:
                detail = "; ".join(f"{k}: store has {have.get(k)!r}, asked for {want.get(k)!r}" for k in diff)
                raise ConfigError(f"{path}: feature store was made with a different config ({detail}); "
                                  "use the store folder store_dir() gives for this config")
        return cls(path, data, videos, skipped)

    # ------------------------------------------------------------------ reading
    @property
    def info(self) -> dict:
        """The store config plus ``videos`` (per-video metadata) and ``skipped`` ({video: reason})."""
        return {**self._info, "videos": dict(self._videos), "skipped": dict(self._skipped)}

    @property
    def skipped(self) -> dict[str, str]:
        return dict(self._skipped)

    def videos(self, split: str | None = None) -> list[str]:
        """Names of finished videos (of ``split`` if given), in index order."""
        return [v for v, m in self._videos.items() if split is None or m.get("split") == split]

    def has(self, video: str) -> bool:
        """True once ``video`` is finished (listed in an index and its files exist)."""
        m = self._videos.get(video)
        return m is not None and all((self.path / m[k]).is_file() for k in ("file", "frames_file", "spans_file",
                                                                             "aux_file") if m.get(k))

    def meta(self, video: str) -> dict:
        """Per-video metadata: ``n_rows, num_frames, fps, split, label, file, frames_file``."""
        if video not in self._videos:
            raise DataError(self.path, f"feature store has no features for video '{video}' "
                            f"({len(self._videos)} videos stored)")
        return dict(self._videos[video])

    def load(self, video: str, mmap: bool = False) -> np.ndarray:
        """``(N, D)`` float32 features, or ``(N, crops, D)`` for multi-crop stores."""
        m = self.meta(video)
        f = self.path / m["file"]
        try:
            arr = np.load(f, mmap_mode="r" if mmap else None)
        except (OSError, ValueError) as exc:
            raise DataError(f, f"cannot read features of video '{video}' ({exc})") from exc
        if arr.shape[0] != m["n_rows"]:
            raise DataError(f, f"has {arr.shape[0]} rows but the index says {m['n_rows']}")
        return arr

    def frame_index(self, video: str) -> np.ndarray:
        """``(N,)`` int64: the first frame covered by each row."""
        m = self.meta(video)
        f = self.path / m["frames_file"]
        try:
            return np.load(f).astype(np.int64, copy=False)
        except (OSError, ValueError) as exc:
            raise DataError(f, f"cannot read the frame index of video '{video}' ({exc})") from exc

    def frame_spans(self, video: str) -> np.ndarray:
        """``(N, 2)`` int64 ``[start, end)`` frames each row covers: a clip store's recorded spans
        (padding excluded: ``end <= num_frames``); otherwise from row starts to the next row's start."""
        m = self.meta(video)
        if m.get("spans_file"):
            f = self.path / m["spans_file"]
            try:
                return np.load(f).astype(np.int64, copy=False)
            except (OSError, ValueError) as exc:
                raise DataError(f, f"cannot read the frame spans of video '{video}' ({exc})") from exc
        fi = self.frame_index(video)
        return np.stack([fi, np.append(fi[1:], int(m["num_frames"]))], 1)

    def load_aux(self, video: str) -> np.ndarray:
        """The per-row auxiliary array (``info["aux"]``, e.g. X-CLIP's ``prompt_tokens`` ``(N, P, D)``) as float32."""
        m = self.meta(video)
        if not m.get("aux_file"):
            raise DataError(self.path, f"feature store has no aux array for video '{video}' (aux: "
                            f"{self._info.get('aux')!r}); re-extract with a backbone whose text path needs one")
        f = self.path / m["aux_file"]
        try:
            arr = np.load(f)
        except (OSError, ValueError) as exc:
            raise DataError(f, f"cannot read the aux array of video '{video}' ({exc})") from exc
        if arr.shape[0] != m["n_rows"]:
            raise DataError(f, f"has {arr.shape[0]} rows but the index says {m['n_rows']}")
        return arr.astype(np.float32)

    def num_frames(self, video: str) -> int:
        """Frame count of the source video."""
        return int(self.meta(video)["num_frames"])

    def __len__(self) -> int:
        return len(self._videos)

    def __repr__(self) -> str:
        return (f"FeatureStore({self.path}, {len(self)} videos, {self._info.get('backbone')}/"
                f"{self._info.get('pretrained')}, {self._info.get('sampling')})")

    # ------------------------------------------------------------------ writing
    def _index_path(self) -> Path:
        return self.path / (self._part or INDEX)

    def _write_index(self, videos: dict[str, dict], skipped: dict[str, str]) -> None:
        if self._part is None:
            write_json(self.path / INDEX, {**self._info, "videos": videos, "skipped": skipped})
        else:
            mine = self._part_data()
            write_json(self.path / self._part, {"videos": {**mine["videos"], **videos},
                                                "skipped": {**mine["skipped"], **skipped}})

    def _part_data(self) -> dict:
        p = self.path / self._part if self._part else None
        if p is not None and p.is_file():
            d = json.loads(p.read_text())
            return {"videos": d.get("videos", {}), "skipped": d.get("skipped", {})}
        return {"videos": {}, "skipped": {}}

    def write(self, video: str, feats: np.ndarray, frame_index: np.ndarray, meta: dict | None = None,
              spans: np.ndarray | None = None, aux: np.ndarray | None = None) -> None:
        """Store one finished video atomically: features, aux, spans, frame index, then the index entry.

        Args:
            feats: ``(N, D)`` or ``(N, crops, D)``; stored as the store's dtype (float32).
            frame_index: ``(N,)`` first frame of each row (non-decreasing).
            meta: ``num_frames`` (required), ``fps``, ``split``, ``label`` and anything else.
            spans: ``(N, 2)`` ``[start, end)`` of each row (clip stores: required); ``start == frame_index``.
            aux: ``(N, ...)`` the store's aux array (required when ``info["aux"]`` names one; stored float16).
        """
        meta = dict(meta or {})
        feats = np.asarray(feats, dtype=self._info.get("dtype", "float32"))
        frame_index = np.asarray(frame_index, dtype=np.int64)
        crops = int(self._info.get("crops", 1))
        want_ndim = 2 if crops == 1 else 3
        if feats.ndim != want_ndim or (crops > 1 and feats.shape[1] != crops):
            raise DataError(self.path, f"features of '{video}' have shape {feats.shape}; this store holds "
                            + ("(N, D)" if crops == 1 else f"(N, {crops}, D)"))
        if len(frame_index) != len(feats):
            raise DataError(self.path, f"'{video}': {len(feats)} feature rows but {len(frame_index)} frame indices")
        if "num_frames" not in meta:
            raise ConfigError(f"write('{video}'): meta needs num_frames")
        if len(frame_index) and (np.any(np.diff(frame_index) < 0) or frame_index[0] < 0
                                 or frame_index[-1] >= int(meta["num_frames"])):
            raise DataError(self.path, f"'{video}': frame index must be non-decreasing within "
                            f"[0, {meta['num_frames']})")
        clip = self._info.get("sampling") == "clip"
        if clip and spans is None:
            raise ConfigError(f"write('{video}'): a clip store needs the (N, 2) frame spans of its clips")
        if spans is not None:
            spans = np.asarray(spans, dtype=np.int64)
            if spans.shape != (len(feats), 2) or not np.array_equal(spans[:, 0], frame_index) \
                    or np.any(spans[:, 1] <= spans[:, 0]) or np.any(spans[:, 1] > int(meta["num_frames"])):
                raise DataError(self.path, f"'{video}': spans must be (N, 2) [start, end) with start = the frame "
                                f"index and start < end <= num_frames, got shape {spans.shape}")
        want_aux = self._info.get("aux")
        if bool(want_aux) != (aux is not None) or (aux is not None and len(aux) != len(feats)):
            raise DataError(self.path, f"'{video}': this store's aux array is {want_aux!r}; got "
                            + ("none" if aux is None else f"shape {np.shape(aux)}") + f" for {len(feats)} rows")
        stem = video_file_stem(video)
        extra_files = {}
        if aux is not None:
            extra_files["aux_file"] = f"{stem}.{_slug(want_aux)}.npy"
            save_npy(self.path / extra_files["aux_file"], np.asarray(aux, dtype=np.float16))
        if spans is not None:
            extra_files["spans_file"] = f"{stem}.spans.npy"
            save_npy(self.path / extra_files["spans_file"], spans)
        entry = {"n_rows": int(len(feats)), "num_frames": int(meta.pop("num_frames")),
                 "fps": float(meta.pop("fps", DEFAULT_FPS) or DEFAULT_FPS), "split": meta.pop("split", None),
                 "label": int(meta.pop("label", -1)), "file": f"{stem}.npy", "frames_file": f"{stem}.frames.npy",
                 "dim": int(feats.shape[-1]), **extra_files, **meta}
        save_npy(self.path / entry["file"], feats)
        save_npy(self.path / entry["frames_file"], frame_index)
        self._videos[video] = _norm(entry)
        self._skipped.pop(video, None)
        if self._part is None:
            self._write_index(self._videos, self._skipped)
        else:
            mine = self._part_data()
            mine["videos"][video] = self._videos[video]
            mine["skipped"].pop(video, None)
            write_json(self.path / self._part, mine)

    def mark_skipped(self, video: str, reason: str) -> None:
        """Record that ``video`` was skipped (listed under ``skipped`` in the index)."""
        self._skipped[video] = str(reason)
        if self._part is None:
            self._write_index(self._videos, self._skipped)
        else:
            mine = self._part_data()
            mine["skipped"][video] = str(reason)
            write_json(self.path / self._part, mine)

    def update_info(self, **extra: Any) -> None:
        """Add bookkeeping keys (not config keys) to index.json, e.g. timings or the source."""
        bad = [k for k in extra if k in CONFIG_KEYS]
        if bad:
            raise ConfigError(f"cannot change config keys {bad} of an existing store")
        self._info.update(_norm(extra))
        if self._part is None:
            self._write_index(self._videos, self._skipped)


def merge_indexes(path: str | Path) -> FeatureStore:
    """Fold every partial index ``index.part-R-of-W.json`` into ``index.json`` (idempotent).

    The merged index is written atomically before the parts are removed, so an interruption
    at any point loses nothing.
    """
    path = Path(path)
    store = FeatureStore.open(path)
    parts = sorted(p for p in path.glob("index.part-*-of-*.json") if _PART_RE.match(p.name))
    if not parts:
        return store
    write_json(path / INDEX, {**store._info, "videos": store._videos, "skipped": store._skipped})
    for p in parts:
        p.unlink(missing_ok=True)
    return FeatureStore.open(path)


def average_crops(x):
    """Rows of a store entry as ``(N, D)``: ``(N, crops, D)`` → the mean of the crops' embeddings
    (one row per sampled frame); ``(N, D)`` is returned as is. numpy arrays or torch tensors."""
    return x.mean(1) if x.ndim == 3 else x


def expand_to_frames(row_scores: np.ndarray, frame_index: np.ndarray, n_frames: int) -> np.ndarray:
    """Per-row values → ``(n_frames,)`` (or ``(n_frames, ...)``) per-frame values.

    Each frame takes the value of the last row starting at or before it: for stride n, frames
    i..i+n-1 take row i's value; for 16-frame snippets, the snippet's 16 frames; tail frames
    take the last row; frames before the first row take the first row.
    """
    row_scores = np.asarray(row_scores)
    frame_index = np.asarray(frame_index, dtype=np.int64)
    if len(row_scores) != len(frame_index):
        raise ConfigError(f"expand_to_frames: {len(row_scores)} scores but {len(frame_index)} frame indices")
    if len(row_scores) == 0:
        raise ConfigError("expand_to_frames: no rows to expand")
    n_frames = int(n_frames)
    row_of_frame = np.searchsorted(frame_index, np.arange(n_frames), side="right") - 1
    return row_scores[np.clip(row_of_frame, 0, len(row_scores) - 1)]


def iter_features(store: FeatureStore, videos: Iterable[str] | None = None):
    """Yield ``(video, feats, frame_index, num_frames)`` for ``videos`` (default: all)."""
    for v in (store.videos() if videos is None else videos):
        yield v, store.load(v), store.frame_index(v), store.num_frames(v)
