"""The ``flow_nf`` stage logic: flow → regions → features → density models → frame scores.

:func:`train_flow_nf` trains on a source dataset's TRAINING videos and scores its test videos;
:func:`apply_model` scores any registered dataset with a saved model without retraining
(:mod:`vadlib.stages.flow_nf` runs the whole stage and writes its outputs).

Protocol (fixed a priori, nothing looks at test labels or test statistics):

* Training videos are split by position: every ``calib_every``-th one is a **calibration**
  video (never used to fit a density model); the others fit the models. Min-max normalisers
  (quantiles ``norm_quantiles``) are fitted on the calibration videos' frame scores, and
  frames without regions get the lowest calibration region score (they are "normal").
* Region score = −log-likelihood (Glow: nats/dim of the flow patch; velocity: GMM); frame score
  = max over the frame's regions. Pose: max over the pose file's objects of the frame.
* Fusion = weighted sum of the normalised scores; every method is evaluated after a per-video
  Gaussian with σ = ``sigma`` (micro and macro AUC, ``vadlib.metrics.evaluate_frames``).
* Naive baseline: per frame, mean of the top ``naive_top`` flow magnitudes (no training).
* Cross-dataset: frames are resized to the model's reference size before flow, so regions,
  patches and velocities are in the source's pixel units.
"""

from __future__ import annotations

import copy
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np

from vadlib.config import bounded, check, check_value, section_dict, to_plain
from vadlib.errors import ConfigError, DataError
from vadlib.flow.descriptors import flow_patch, load_pose, normalize_pose, top_magnitude, velocity_descriptor
from vadlib.flow.optical import (FlowConfig, compute_dataset_flow, frame_flow_index, load_flow, read_gray_video,
                                 video_ref)
from vadlib.flow.regions import RegionConfig, propose_regions
from vadlib.io import atomic_dir, write_json
from vadlib.validation.stage import ValidationParams

METHODS = ("naive", "flow_nf", "velocity", "pose", "fusion")

@dataclass
class FlowSection:
    """``flow_nf.flow``: how optical flow is computed (:class:`~vadlib.flow.optical.FlowConfig`)."""

    method: str = "dis"
    preset: str = "medium"
    ref_size: Union[tuple[int, int], None] = None
    quant: int = bounded(32, min=1)
    options: dict[str, Any] = field(default_factory=dict)
    upscale: float = bounded(1.0, min=1)


@dataclass
class PatchSection:
    """``flow_nf.patch``: the flow patch of a region."""

    size: int = bounded(8, min=1)
    stack: int = bounded(1, min=1)
    rescale: bool = False


@dataclass
class GlowSection:
    """``flow_nf.glow``: the Glow density of flow patches."""

    K: int = bounded(8, min=1)
    L: int = bounded(1, min=1)
    hidden: int = bounded(64, min=1)
    epochs: int = bounded(12, min=0)
    batch_size: int = bounded(256, min=1)
    lr: float = bounded(1e-3, gt=0)
    noise: float = bounded(0.03, min=0)
    max_train: int = bounded(30000, min=1)


@dataclass
class VelocitySection:
    """``flow_nf.velocity``: the velocity GMM."""

    bins: int = bounded(1, min=1)
    n_components: int = bounded(2, min=1)
    crop_size: Union[int, None] = None   # None: the box's native pixels; 224: Reiss & Hoshen's resized crop


@dataclass
class PoseSection:
    """``flow_nf.pose``: the pose density (``files``: ``{dataset: {split: path}}``)."""

    model: str = "pose_flow"
    normalize: str = "none"
    files: dict[str, dict[str, str]] = field(default_factory=dict)
    K: int = bounded(8, min=1)
    hidden: int = bounded(64, min=1)
    epochs: int = bounded(20, min=0)
    k: int = bounded(1, min=1)


@dataclass
class ValidationSection(ValidationParams):
    """``flow_nf.validation``: :class:`~vadlib.validation.stage.ValidationParams` (the set, held-out
    videos, ``key_kinds``, σ candidates) plus ``fusion``: candidate fusion-weight dicts (``[]`` = the
    fixed ``flow_nf.fusion``); every (σ, fusion) pair is scored on the set and the best fusion key
    AUC is what the test set is scored with. Magnitude scores cannot see ``freeze``/``reverse``:
    set ``key_kinds`` to the kinds the method should detect."""

    fusion: list[dict[str, float]] = field(default_factory=list)


@dataclass
class FlowNFParams:
    """The ``flow_nf`` parameters (``params.yaml: flow_nf`` + the shared ``seed``): their types, bounds
    and defaults, the only ones: the stage (:mod:`vadlib.stages.flow_nf`), its notebook and
    :func:`merge_params` use these. The dict sections stay dicts (their defaults and checks come from
    the ``*Section`` classes above); ``regions`` is checked field by field by :func:`region_config`.
    Meanings: see ``params.yaml`` and the module docstring."""

    dataset: str = "demo_a"
    transfer: list[str] = field(default_factory=lambda: ["demo_b"])
    model_in: Union[str, None] = None
    cache: str = "data/flow"
    workers: int = bounded(2, min=0)
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])   # the stage trains once per seed ([] = `seed`)
    sigma: float = bounded(3, min=0)
    calib_every: int = bounded(5, min=1)
    norm_quantiles: list[float] = field(default_factory=lambda: [0.0, 0.999])   # two: see _config_check
    naive_top: float = bounded(0.01, gt=0, max=1)
    flow: dict = section_dict(FlowSection)
    regions: dict[str, Any] = field(default_factory=dict)
    patch: dict = section_dict(PatchSection)
    glow: dict = section_dict(GlowSection)
    velocity: dict = section_dict(VelocitySection)
    pose: dict = section_dict(PoseSection)
    fusion: dict[str, float] = field(default_factory=lambda: {"flow_nf": 1.0, "velocity": 1.0, "pose": 1.0})
    validation: dict = section_dict(ValidationSection)

    def _config_check(self, path: str, source: str | None) -> None:
        """``norm_quantiles`` is a pair (kept a list, as given); :func:`vadlib.config.check` calls this."""
        check_value(tuple[float, float], self.norm_quantiles, f"{path}.norm_quantiles", source)


#: :class:`FlowNFParams`' defaults as a dict (the form :func:`merge_params` returns)
DEFAULTS: dict[str, Any] = asdict(FlowNFParams())


def merge_params(params: Mapping | None) -> dict:
    """``DEFAULTS`` updated (one level deep for dict sections) with ``params`` (checked: unknown keys,
    wrong types and out-of-range values raise ConfigError; values as plain YAML/JSON types)."""
    checked = check(FlowNFParams, params, "flow_nf")
    out = copy.deepcopy(DEFAULTS)
    for k in params or {}:
        v = to_plain(getattr(checked, k))
        if isinstance(out[k], dict) and isinstance(v, Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


# ----------------------------------------------------------------------------------------------
# per-video features
# ----------------------------------------------------------------------------------------------


@dataclass
class RegionFeatures:
    """Regions of one video and their features. ``frame (R,)``, ``boxes (R, 4)``,
    ``patches (R, C, s, s)`` float16, ``velocity (R, B)``, ``naive (T,)``."""

    name: str
    n_frames: int
    frame: np.ndarray
    boxes: np.ndarray
    patches: np.ndarray
    velocity: np.ndarray
    naive: np.ndarray


def video_features(video, flow_file: Path, flow_cfg: FlowConfig, rcfg: RegionConfig, patch: Mapping,
                   vel_bins: int, naive_top: float, vel_crop: int | None = None) -> RegionFeatures:
    """Regions and features of every frame of ``video`` from its cached flow (``vel_crop``: the
    velocity's ``crop_size``, :func:`~vadlib.flow.descriptors.velocity_descriptor`)."""
    import cv2

    cv2.setNumThreads(1)
    flows = load_flow(flow_file)
    gray = read_gray_video(video, flow_cfg.ref_size)
    n = gray.shape[0]
    if flows.shape[0] != n - 1 or flows.shape[1:3] != gray.shape[1:]:
        raise DataError(flow_file, f"cached flow {flows.shape} does not match video '{video.name}' "
                        f"({n} frames of {gray.shape[1:]}); delete the cache to recompute")
    fidx = frame_flow_index(n)
    frames, boxes, patches, vels, naive = [], [], [], [], np.zeros(n)
    for t in range(n):
        f = flows[fidx[t]]
        naive[t] = top_magnitude(f, naive_top)
        a, b = (t - 1, t) if t > 0 else (0, 1)
        for box in propose_regions(f, gray[a], gray[b], rcfg):
            frames.append(t)
            boxes.append(box)
            patches.append(flow_patch(flows, int(fidx[t]), box, int(patch["size"]), int(patch["stack"]),
                                      bool(patch["rescale"])).astype(np.float16))
            vels.append(velocity_descriptor(f, box, vel_bins, crop_size=vel_crop))
    c, s = 2 * int(patch["stack"]), int(patch["size"])
    return RegionFeatures(
        video.name, n, np.asarray(frames, np.int64), np.asarray(boxes, np.int64).reshape(-1, 4),
        np.stack(patches) if patches else np.zeros((0, c, s, s), np.float16),
        np.stack(vels) if vels else np.zeros((0, vel_bins), np.float32), naive)


#: ``{key: {video: RegionFeatures}}`` while a multi-seed stage runs (:func:`feature_memo`); None = off.
#: The features do not depend on the seed, so the seeds after the first reuse them.
_FEATURE_MEMO: dict | None = None


class feature_memo:
    """``with feature_memo():`` — :func:`dataset_features` computes each video set's features once inside."""

    def __enter__(self):
        global _FEATURE_MEMO
        self._outer, _FEATURE_MEMO = _FEATURE_MEMO, ({} if _FEATURE_MEMO is None else _FEATURE_MEMO)
        return self

    def __exit__(self, *exc):
        global _FEATURE_MEMO
        _FEATURE_MEMO = self._outer
        return False


def dataset_features(videos: Sequence, cache_dir: Path, flow_cfg: FlowConfig, rcfg: RegionConfig, patch: Mapping,
                     vel_bins: int, naive_top: float, workers: int = 2,
                     vel_crop: int | None = None) -> dict[str, RegionFeatures]:
    """Flow (cached) then features of all ``videos`` (process pool); ``{video: RegionFeatures}``
    (reused inside :class:`feature_memo`)."""
    key = (tuple(str(getattr(v, "path", v.name)) for v in videos), str(cache_dir), repr(flow_cfg), repr(rcfg),
           repr(sorted(dict(patch).items())), int(vel_bins), float(naive_top), vel_crop)
    if _FEATURE_MEMO is not None and key in _FEATURE_MEMO:
        return _FEATURE_MEMO[key]
    out = _dataset_features(videos, cache_dir, flow_cfg, rcfg, patch, vel_bins, naive_top, workers, vel_crop)
    if _FEATURE_MEMO is not None:
        _FEATURE_MEMO[key] = out
    return out


def _dataset_features(videos: Sequence, cache_dir: Path, flow_cfg: FlowConfig, rcfg: RegionConfig, patch: Mapping,
                      vel_bins: int, naive_top: float, workers: int = 2,
                      vel_crop: int | None = None) -> dict[str, RegionFeatures]:
    from tqdm.auto import tqdm

    cache = compute_dataset_flow(videos, cache_dir, flow_cfg, workers=workers)
    args = [(video_ref(v), cache.path(v), flow_cfg, rcfg, dict(patch), vel_bins, naive_top, vel_crop) for v in videos]
    t0 = time.perf_counter()
    if workers <= 1:
        feats = [video_features(*a) for a in tqdm(args, desc="regions+features", unit="video")]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            feats = list(tqdm(pool.map(_vf_star, args), total=len(args), desc="regions+features", unit="video"))
    n_reg = sum(len(f.frame) for f in feats)
    n_fr = sum(f.n_frames for f in feats)
    print(f"regions+features: {n_reg} regions in {n_fr} frames ({n_reg / max(n_fr, 1):.2f}/frame)")
    print(f"wall time: regions+features {time.perf_counter() - t0:.1f} s")
    return {f.name: f for f in feats}


def _vf_star(a):
    return video_features(*a)


def frame_max(region_scores: np.ndarray, frame: np.ndarray, n_frames: int, empty: float) -> np.ndarray:
    """``(T,)`` max over each frame's region scores; frames with no region get ``empty``."""
    out = np.full(n_frames, -np.inf)
    np.maximum.at(out, frame, region_scores)
    out[~np.isfinite(out)] = empty
    return out


# ----------------------------------------------------------------------------------------------
# model bundle
# ----------------------------------------------------------------------------------------------


@dataclass
class FlowNFModel:
    """Trained density models plus everything needed to apply them elsewhere.

    ``models``: ``{"flow_nf": GlowDensity, "velocity": GMMDensity, "pose": ...}`` (pose optional);
    ``empty``: anomaly score given to frames without regions/objects, per method;
    ``norm``: min-max statistics per method (fitted on calibration TRAINING videos).
    """

    params: dict
    models: dict
    empty: dict = field(default_factory=dict)
    norm: dict = field(default_factory=dict)
    source: str = ""

    def save(self, path: str | Path) -> Path:
        """Folder with ``config.json`` + one file per model (torch weights_only state or joblib)."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            files = {}
            for name, m in self.models.items():
                fname = f"{name}.pt" if hasattr(m, "model_") else f"{name}.joblib"
                m.save(tmp / fname)
                files[name] = fname
            write_json(tmp / "config.json", {"source": self.source, "params": self.params, "empty": self.empty,
                                             "norm": self.norm, "files": files})
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FlowNFModel":
        from vadlib.methods.flow_nf.density import load_density

        path = Path(path)
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise DataError(path, "not a saved flow_nf model (no config.json); train one with the flow_nf stage")
        cfg = json.loads(cfg_file.read_text())
        models = {name: load_density(path / f) for name, f in cfg["files"].items()}
        return cls(cfg["params"], models, cfg["empty"], cfg["norm"], cfg.get("source", ""))

    def normalizers(self) -> dict:
        from vadlib.scoring import MinMaxNormalizer

        out = {}
        for k, st in self.norm.items():
            n = MinMaxNormalizer(st["lo_q"], st["hi_q"])
            n.lo_, n.hi_, n.n_fit_ = st["lo"], st["hi"], st["n_fit"]
            out[k] = n
        return out


def region_config(regions: Mapping | None, source: str) -> RegionConfig:
    """The region policy of the SOURCE dataset: ``regions[source]`` when ``regions`` is keyed by
    dataset name, else ``regions`` itself (RegionConfig fields); ``{}`` or a dataset without an
    entry = Reiss & Hoshen's Ped2 motion boxes (the RegionConfig defaults). Applying a model to
    another dataset keeps the source's policy."""
    from dataclasses import fields

    regions = dict(regions or {})
    names = {f.name for f in fields(RegionConfig)}
    flat = {k: v for k, v in regions.items() if k in names}
    keyed = {k: v for k, v in regions.items() if k not in names}
    bad = [k for k, v in keyed.items() if not isinstance(v, Mapping)]
    if bad:
        raise ConfigError(f"flow_nf.regions: unknown field(s) {bad} (RegionConfig fields: {', '.join(sorted(names))}; "
                          "or give one dict of fields per dataset name)")
    return check(RegionConfig, {**flat, **dict(keyed.get(source) or {})}, f"flow_nf.regions.{source}")


def _configs(p: Mapping, source: str) -> tuple[FlowConfig, RegionConfig]:
    fl = dict(p["flow"])
    if fl.get("ref_size") is not None:
        fl["ref_size"] = tuple(int(x) for x in fl["ref_size"])
    return FlowConfig(**fl), region_config(p["regions"], source)


def _flow_cache_dir(p: Mapping, dataset_name: str, fcfg: FlowConfig) -> Path:
    return Path(p["cache"]) / dataset_name / fcfg.folder_name()


def _pose_vectors(dataset, p: Mapping, split: str) -> dict[str, list[np.ndarray]] | None:
    """Pose vectors of ``split`` from ``pose.files`` (``{dataset: {split: path}}`` or
    ``{split: path}``; relative paths are under the dataset root), or None when none is given."""
    files = p["pose"].get("files") or {}
    if dataset.name in files:  # per-dataset form {dataset: {split: path}}
        files = files[dataset.name] or {}
    if split not in files:
        return None
    path = Path(files[split])
    path = path if path.is_absolute() else Path(dataset.root) / path
    # a pose file covers the whole split by position, also when validation videos are held out of it
    raw = load_pose(path, (dataset.meta.get("full_splits") or {}).get(split) or dataset.videos(split))
    keep = {v.name for v in dataset.videos(split)}
    return {k: [normalize_pose(o, p["pose"]["normalize"]) if len(o) else o for o in v] for k, v in raw.items()
            if k in keep}


def _pose_region_scores(model, pose: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    frame = np.concatenate([np.full(len(o), t) for t, o in enumerate(pose)]).astype(np.int64) if pose else np.zeros(0, np.int64)
    X = np.concatenate([o for o in pose if len(o)]) if any(len(o) for o in pose) else np.zeros((0, 34), np.float32)
    return (-model.score_samples(X) if len(X) else np.zeros(0)), frame


def score_videos(model: FlowNFModel, feats: Mapping[str, RegionFeatures],
                 pose: Mapping[str, list[np.ndarray]] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Raw anomaly scores (higher = more anomalous) ``{method: {video: (T,)}}`` plus region-level
    ``{"flow_nf_regions": {video: (R,)}}`` (−log-likelihood per region, for histograms)."""
    out: dict[str, dict[str, np.ndarray]] = {"naive": {}, "flow_nf": {}, "velocity": {}, "flow_nf_regions": {}}
    for name, f in feats.items():
        out["naive"][name] = f.naive
        r_nf = -model.models["flow_nf"].score_samples(f.patches.astype(np.float32)) if len(f.frame) else np.zeros(0)
        r_vel = -model.models["velocity"].score_samples(f.velocity) if len(f.frame) else np.zeros(0)
        out["flow_nf_regions"][name] = r_nf
        out["flow_nf"][name] = frame_max(r_nf, f.frame, f.n_frames, model.empty["flow_nf"])
        out["velocity"][name] = frame_max(r_vel, f.frame, f.n_frames, model.empty["velocity"])
    if pose is not None and "pose" in model.models:
        out["pose"] = {}
        for name, f in feats.items():
            r, fr = _pose_region_scores(model.models["pose"], pose[name])
            out["pose"][name] = frame_max(r, fr, f.n_frames, model.empty["pose"])
    return out


def fuse_scores(model: FlowNFModel, raw: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Weighted sum of the normalised method scores present in ``raw`` (weights: ``fusion``)."""
    from vadlib.scoring import fuse

    norms = model.normalizers()
    names = [k for k, w in model.params["fusion"].items() if w and k in raw and k in norms]
    if not names:
        raise ConfigError("flow_nf.fusion: no method with a non-zero weight has scores")
    return fuse([raw[k] for k in names], weights=[float(model.params["fusion"][k]) for k in names],
                normalizers=[norms[k] for k in names])


# ----------------------------------------------------------------------------------------------
# training / applying
# ----------------------------------------------------------------------------------------------


def train_flow_nf(dataset, p: Mapping) -> tuple[FlowNFModel, dict]:
    """Fit the density models on ``dataset``'s training videos (calibration ones held out)."""
    import torch

    from vadlib.methods.flow_nf.density import make_density
    from vadlib.methods.flow_nf.glow import GlowDensity
    from vadlib.scoring import MinMaxNormalizer

    torch.manual_seed(int(p["seed"]))
    fcfg, rcfg = _configs(p, dataset.name)
    train = dataset.videos("train")
    every = int(p["calib_every"])
    if every < 2 or len(train) < 2:
        raise ConfigError(f"flow_nf: need calib_every >= 2 and >= 2 training videos (got {every}, {len(train)})")
    calib = [v for i, v in enumerate(train) if i % every == every - 1] or train[-1:]
    fit = [v for v in train if v not in calib]
    feats = dataset_features(train, _flow_cache_dir(p, dataset.name, fcfg), fcfg, rcfg, p["patch"],
                             int(p["velocity"]["bins"]), float(p["naive_top"]), int(p["workers"]),
                             p["velocity"].get("crop_size"))
    fit_f = [feats[v.name] for v in fit]
    patches = np.concatenate([f.patches for f in fit_f]).astype(np.float32)
    vel = np.concatenate([f.velocity for f in fit_f])
    if len(patches) < 10:
        raise DataError(dataset.root, f"only {len(patches)} moving regions in the fitting videos: lower regions.diff_thresh (or tau_mag with use_flow) or min_area")
    rng = np.random.default_rng(int(p["seed"]))
    g = dict(p["glow"])
    max_train = int(g.pop("max_train", 0) or 0)
    if max_train and len(patches) > max_train:
        patches = patches[np.sort(rng.choice(len(patches), max_train, replace=False))]
    t0 = time.perf_counter()
    glow = GlowDensity(**g, seed=int(p["seed"]), verbose=True).fit(patches)
    t_glow = time.perf_counter() - t0
    gmm = make_density("gmm", n_components=int(p["velocity"]["n_components"]), random_state=int(p["seed"])).fit(vel)
    models = {"flow_nf": glow, "velocity": gmm}
    pose = _pose_vectors(dataset, p, "train")
    if pose is not None:
        X = np.concatenate([o for v in fit for o in pose[v.name] if len(o)])
        pp = p["pose"]
        if pp["model"] == "knn":
            models["pose"] = make_density("knn", k=int(pp["k"])).fit(X)
        elif pp["model"] == "pose_flow":
            models["pose"] = make_density("pose_flow", K=int(pp["K"]), hidden=int(pp["hidden"]),
                                          epochs=int(pp["epochs"]), seed=int(p["seed"])).fit(X)
        else:
            raise ConfigError(f"flow_nf.pose.model must be 'pose_flow' or 'knn', got {pp['model']!r}")
    model = FlowNFModel(dict(p), models, source=dataset.name)
    # calibration: region scores of held-out training videos → empty-frame value and min-max stats
    cal_f = {v.name: feats[v.name] for v in calib}
    model.empty = {"flow_nf": 0.0, "velocity": 0.0, "pose": 0.0}
    cal_regions = {
        "flow_nf": np.concatenate([-glow.score_samples(f.patches.astype(np.float32)) for f in cal_f.values() if len(f.frame)] or [np.zeros(0)]),
        "velocity": np.concatenate([-gmm.score_samples(f.velocity) for f in cal_f.values() if len(f.frame)] or [np.zeros(0)]),
    }
    if "pose" in models:
        cal_regions["pose"] = np.concatenate([_pose_region_scores(models["pose"], pose[v.name])[0] for v in calib])
    for k, r in cal_regions.items():
        if len(r) == 0:
            raise DataError(dataset.root, f"no {k} regions in the calibration videos {[v.name for v in calib]}")
        model.empty[k] = float(r.min())
    cal_raw = score_videos(model, cal_f, {v.name: pose[v.name] for v in calib} if pose is not None else None)
    lo_q, hi_q = (float(x) for x in p["norm_quantiles"])
    model.norm = {k: MinMaxNormalizer(lo_q, hi_q).fit(cal_raw[k]).stats for k in ("naive", "flow_nf", "velocity", "pose")
                  if k in cal_raw}
    info = {"fit_videos": [v.name for v in fit], "calib_videos": [v.name for v in calib],
            "n_train_patches": int(len(patches)), "n_train_velocity": int(len(vel)),
            "glow_seconds": t_glow, "glow_history": glow.history_,
            "n_train_pose": int(sum(len(o) for v in fit for o in pose[v.name])) if pose is not None else 0}
    return model, info


def apply_model(model: FlowNFModel, dataset, split: str = "test", pose: bool = True,
                params_override: Mapping | None = None) -> dict:
    """Score ``dataset``'s ``split`` with a trained model, no retraining.

    Flow is computed at the model's reference size (``flow.ref_size``, or the source's native
    size recorded at training) so units match the source. Returns ``{"raw": {method: {video:
    (T,)}}, "scores": {method: {video: (T,)}}}`` where ``scores`` adds ``fusion`` (normalised
    with the SOURCE's calibration statistics) and ``labels`` ``{video: (T,)}``.
    """
    p = copy.deepcopy(model.params)
    if params_override:
        for k in ("cache", "workers"):
            if k in params_override:
                p[k] = params_override[k]
    fcfg, rcfg = _configs(p, model.source)
    videos = dataset.videos(split)
    feats = dataset_features(videos, _flow_cache_dir(p, dataset.name, fcfg), fcfg, rcfg, p["patch"],
                             int(p["velocity"]["bins"]), float(p["naive_top"]), int(p["workers"]),
                             p["velocity"].get("crop_size"))
    pv = _pose_vectors(dataset, p, split) if pose and "pose" in model.models and dataset.name == model.source else None
    raw = score_videos(model, feats, pv)
    scores = {k: raw[k] for k in ("naive", "flow_nf", "velocity", "pose") if k in raw}
    scores["fusion"] = fuse_scores(model, scores)
    labels = {v.name: v.frame_labels for v in videos if v.frame_labels is not None}
    region_labels = {n: (labels[n][f.frame] if n in labels else np.zeros(len(f.frame), np.uint8))
                     for n, f in feats.items()}
    return {"raw": raw, "scores": scores, "labels": labels, "region_labels": region_labels,
            "n_regions": {n: len(f.frame) for n, f in feats.items()}}


def evaluate_all(scores: Mapping[str, Mapping[str, np.ndarray]], labels: Mapping[str, np.ndarray],
                 sigma: float | None) -> dict[str, dict]:
    """``{method: evaluate_frames(...)}`` for every method in ``scores``."""
    from vadlib.metrics import evaluate_frames

    return {k: evaluate_frames({v: s[v] for v in labels}, labels, sigma=sigma or None) for k, s in scores.items()}


def report_rows(metrics: Mapping) -> list[dict]:
    """One results-table row per (test dataset, method) of a flow_nf ``metrics.json``."""
    proto = metrics["protocol"]
    rows = []
    for name, r in metrics["results"].items():
        for meth, m in r.items():
            if not isinstance(m, Mapping):
                continue
            rows.append({"method": f"flow_nf: {meth}",
                         "dataset": name if r["transfer"] == "in-domain" else f"{proto['source']}→{name}",
                         **{k: m.get(k) for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap")},
                         "protocol": {"sigma": proto["sigma"], "gt_file": r["gt_file"],
                                      "ap_definition": m.get("ap_definition"),
                                      "backbone": "none (optical flow, DIS)", "real_weights": True}})
    return rows
