"""``vadlib detect``: your own video in, an explained anomaly timeline out.

For each input video (any file decord reads, or a frames folder): features streamed through
the extractor, per-frame scores from the chosen method, events above a threshold that was
given or calibrated on *normal* reference footage, and an output folder with

* ``scores.csv`` / ``scores.parquet`` — frame, time, score, the prompt/class that fired;
* ``events.json`` — start, end, peak frame, peak score, label, the threshold and its source;
* ``timeline.png`` — score over time, events shaded, thumbnails of each event's peak frame;
* ``annotated.mp4`` — the input with a score bar and the event label drawn on each frame.

Methods: ``zeroshot`` (prompts), ``transfer`` (the transfer stage's VideoAnomalyCLIP of one source,
with the target's anomalies as prompts), ``flow_nf`` (the flow_nf stage's model), ``anomalyclip`` /
``sultani`` / ``rtfm`` (a train_mil checkpoint; AnomalyCLIP also names the class that fired), and
fusions ``a+b`` of them. A checkpoint is a path or a stage output name (``train_mil@demo_a``,
``transfer@demo_a``, ``flow_nf``). Features are encoded as the checkpoint's were (backbone, weights, sampling); asking
for anything else is an error. Thresholds calibrated on normal footage are saved beside the
checkpoint and reused when no threshold is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from vadlib.errors import ConfigError, DataError, VadlibError
from vadlib.events import Threshold, calibrate_threshold, find_events
from vadlib.io import file_key
from vadlib.registry import Registry

Scorer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]
METHODS: Registry[Callable[..., "DetectMethod"]] = Registry("detection method")


class DetectMethod:
    """Scores every frame of one video: ``frame_scores(video) -> (scores (T,), fired (T,) | None)``;
    ``fired`` indexes ``labels`` (the prompt or class that fired). ``progress``: show a progress bar."""

    name = "base"
    labels: list[str] | None = None
    real_weights = True
    encoded_frames = 0
    progress = True

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


class _FrameProgress:
    """A tqdm bar over the video's frames fed with encoded-frame counts (``update(k)``, as
    :func:`~vadlib.features.extract.iter_extract` calls it); shows frames/s and the real-time factor."""

    def __init__(self, name: str, n_frames: int, fps: float, stride: int):
        from tqdm.auto import tqdm

        self.n, self.fps, self.stride, self.encoded = int(n_frames), float(fps or 25.0), max(1, int(stride)), 0
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=self.n, unit="frame", desc=name[-24:], file=sys.stderr, dynamic_ncols=True,
                        mininterval=0.5, leave=False)

    def update(self, k: int) -> None:
        self.encoded += int(k)
        pos = min(self.n, self.encoded * self.stride)
        wall = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"{pos / self.fps / wall:.2f}x real time", refresh=False)
        self.bar.update(pos - self.bar.n)

    def close(self) -> None:
        self.bar.close()


def encode_video(video, backbone, cfg, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(feats, frame_index)`` of one video (:func:`~vadlib.features.extract.extract_video`), with a
    progress bar (frames/s, real-time factor) on stderr when ``progress``."""
    from vadlib.features.extract import extract_video

    if not progress:
        return extract_video(video, backbone, cfg)
    bar = _FrameProgress(video.name, len(video.open()), video.fps, cfg.stride if cfg.sampling == "every" else 1)
    try:
        return extract_video(video, backbone, cfg, progress=bar)
    finally:
        bar.close()


@METHODS.register("zeroshot")
class ZeroShotMethod(DetectMethod):
    """CLIP zero-shot: softmax over [normal prompts; anomaly prompts] (``score="softmax"``) or
    ``S(t) = max_i cos`` (``score="max_cos"``)."""

    name = "zeroshot"

    def __init__(self, backbone, cfg, prompts: list[str], normal_prompts: list[str] | None = None,
                 templates: list[str] | None = None, tau: float = 0.01, score: str = "softmax", **_):
        from vadlib.models.prompts import DEFAULT_TEMPLATES, PromptSet
        from vadlib.models.zeroshot import SCORES, ZeroShotScorer

        if not prompts:
            raise ConfigError("method 'zeroshot' needs at least one --prompt (or --prompt-file / --prompts-from)")
        if score not in SCORES:
            raise ConfigError(f"unknown score '{score}' (known: {', '.join(SCORES)})")
        ps = PromptSet(normal=list(normal_prompts or ["an ordinary scene with people walking"]),
                       anomaly={p: p for p in prompts}, templates=list(templates or DEFAULT_TEMPLATES))
        self.scorer = ZeroShotScorer(backbone, ps, tau=tau)
        self.backbone, self.cfg, self.score = backbone, cfg, score
        self.labels = list(prompts)
        self.real_weights = bool(backbone.real_weights)
        self.heatmap = False
        self.heat: tuple[np.ndarray, np.ndarray] | None = None

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.features.store import expand_to_frames as _expand

        feats, frame_index = encode_video(video, self.backbone, self.cfg, self.progress)
        self.encoded_frames = int(len(frame_index))
        out = self.scorer.score(feats)
        n = len(video.open())
        fired_rows = np.asarray(out.fired, np.int64)
        self.heat = (patch_heat_maps(self.backbone, video, frame_index, fired_rows, self.scorer.normal_text,
                                     self.scorer.anomaly_text) if self.heatmap else None)
        return (_expand(getattr(out, self.score), frame_index, n), _expand(fired_rows, frame_index, n))


def patch_heat_maps(backbone, video, frame_index: np.ndarray, fired: np.ndarray, normal_text, anomaly_text,
                    tau: float = 0.07, max_values: int = 200_000_000) -> tuple[np.ndarray, np.ndarray] | None:
    """DPAM patch-level maps (Zhou et al.; :mod:`vadlib.models.dpam`) of the encoded frames
    ``frame_index (N,)``, each against [the mean normal text, the anomaly text ``anomaly_text[fired[i]]``]
    (``normal_text (Kn, D)``, ``anomaly_text (Ka, D)``, frozen CLIP space).

    Returns ``(frame_index (N,), maps (N, H, W) float16 in [0, 1])`` (red = anomalous patches), or
    None when ``N·H·W`` exceeds ``max_values`` (said on stderr)."""
    import torch

    from vadlib.models.dpam import DPAMEncoder, frame_anomaly_maps

    src = video.open()
    h, w = src.size
    frame_index = np.asarray(frame_index, np.int64)
    fired = np.asarray(fired, np.int64)
    if len(frame_index) * h * w > max_values:
        print(f"{video.name}: heat map skipped ({len(frame_index)} maps of {h}x{w} would not fit)", file=sys.stderr)
        return None
    enc = DPAMEncoder(backbone)
    normal_text = torch.as_tensor(normal_text, dtype=torch.float32)
    anomaly_text = torch.as_tensor(anomaly_text, dtype=torch.float32)
    normal = torch.nn.functional.normalize(normal_text.reshape(-1, normal_text.shape[-1]).mean(0), dim=-1)
    maps = np.zeros((len(frame_index), h, w), np.float16)
    for j in np.unique(fired):
        rows = np.flatnonzero(fired == j)
        text = torch.stack([normal, torch.nn.functional.normalize(anomaly_text[int(j)], dim=-1)])
        for k in range(0, len(rows), 16):
            r = rows[k:k + 16]
            m, _ = frame_anomaly_maps(enc, src.get([int(frame_index[i]) for i in r]), text,
                                      backbone.image_size, backbone.mean, backbone.std, tau)
            maps[r] = np.clip(m, 0.0, 1.0)
    return frame_index, maps


@METHODS.register("flow_nf")
class FlowNFMethod(DetectMethod):
    """The optical-flow normalizing flow (+ velocity GMM) of the ``flow_nf`` stage, applied
    without retraining; needs ``--checkpoint`` = the stage's saved model folder
    (``reports/flow_nf/model``). ``score`` is ``fusion`` (default), ``flow_nf`` or ``velocity``."""

    name = "flow_nf"

    def __init__(self, backbone=None, cfg=None, checkpoint: str | None = None, score: str = "fusion",
                 flow_cache: str | Path | None = None, **_):
        from vadlib.flow.pipeline import FlowNFModel

        if not checkpoint:
            raise ConfigError("method 'flow_nf' needs --checkpoint (the flow_nf stage's model folder, "
                              "e.g. reports/flow_nf/model)")
        self.model = FlowNFModel.load(checkpoint)
        self.score = "fusion" if score == "softmax" else score
        self.labels = None
        # never the cache path recorded at training time (another machine's, e.g. /tmp/...)
        self.flow_cache = str(flow_cache or default_flow_cache())

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.data import VideoDataset
        from vadlib.flow.pipeline import apply_model

        # the flow cache is keyed by dataset and video name: key it by the file's identity too, so two
        # different videos of the same name never share a cached flow
        ds = VideoDataset(name=f"detect_{video.name}_{file_key(Path(video.path))}", root=Path(video.path).parent,
                          splits={"test": [video]})
        res = apply_model(self.model, ds, "test", pose=False, params_override={"cache": self.flow_cache, "workers": 1})
        if self.score not in res["scores"]:
            raise ConfigError(f"flow_nf score '{self.score}' unknown (known: {', '.join(res['scores'])})")
        self.encoded_frames = len(video.open())
        return np.asarray(res["scores"][self.score][video.name], np.float64), None


def default_flow_cache() -> Path:
    """Where ``detect`` caches optical flow of scored videos: ``$XDG_CACHE_HOME/vadlib/flow``
    (``~/.cache/vadlib/flow`` when unset)."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vadlib" / "flow"


def resolve_checkpoint(spec: str, reports: str | Path = "reports") -> Path:
    """A checkpoint path, or a stage output name: ``train_mil@DATASET`` → ``reports/train_mil/DATASET/model.pt``,
    ``transfer@SOURCE`` → ``reports/transfer/model/SOURCE.pt``, ``flow_nf`` → ``reports/flow_nf/model``."""
    p = Path(spec)
    if p.exists():
        return p
    stage, _, item = spec.partition("@")
    named = {"train_mil": Path(reports) / "train_mil" / item / "model.pt" if item else None,
             "transfer": Path(reports) / "transfer" / "model" / f"{item}.pt" if item else None,
             "flow_nf": Path(reports) / "flow_nf" / "model"}
    if stage in named and named[stage] is not None:
        if not named[stage].exists():
            raise DataError(named[stage], f"checkpoint '{spec}' not found: run the {stage} stage first (dvc repro)")
        return named[stage]
    raise DataError(p, "checkpoint does not exist (give a path, or train_mil@DATASET / transfer@SOURCE / flow_nf)")


def check_features(checkpoint: Path, saved: dict, requested: dict) -> dict:
    """The checkpoint's feature spec with the user's explicit requests checked against it.

    ``requested`` holds only what the user gave (``backbone``, ``pretrained``, ``stride``); a
    difference raises naming the checkpoint and both values. Returns the spec to encode with."""
    bad = [f"{k}: checkpoint {saved[k]!r}, requested {v!r}" for k, v in requested.items()
           if v is not None and k in saved and saved[k] is not None and str(saved[k]) != str(v)]
    if bad:
        raise ConfigError(f"{checkpoint}: the checkpoint was trained on features made differently from the "
                          f"ones requested ({'; '.join(bad)}); drop the option to use the checkpoint's, or use "
                          "a checkpoint trained on such features")
    return saved


@METHODS.register("anomalyclip")
@METHODS.register("sultani")
@METHODS.register("rtfm")
class TrainMILMethod(DetectMethod):
    """A ``train_mil`` checkpoint (AnomalyCLIP, Sultani MIL or RTFM top-k) on the video's CLIP features,
    encoded as the checkpoint's training features were. AnomalyCLIP's ``fired`` = the most probable
    anomaly class of each frame."""

    def __init__(self, backbone, cfg, checkpoint: Path, requested: str | None = None, **_):
        from vadlib.train import load_checkpoint

        self.method = load_checkpoint(checkpoint)
        if requested is not None and self.method.name != requested:
            raise ConfigError(f"{checkpoint}: holds a '{self.method.name}' model, not '{requested}'; use "
                              f"--method {self.method.name} or the {requested} checkpoint")
        self.name = self.method.name
        self.backbone, self.cfg = backbone, cfg
        self.labels = list(self.method.class_names)
        self.real_weights = bool(backbone.real_weights)
        self.score = "p_anomaly"

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.features.store import expand_to_frames

        feats, frame_index = encode_video(video, self.backbone, self.cfg, self.progress)
        feats = np.asarray(feats, np.float32)
        if feats.ndim == 3:
            feats = feats.mean(1)
        self.encoded_frames = int(len(frame_index))
        s, p = self.method.predict({video.name: feats})[video.name]
        n = len(video.open())
        fired = None
        if p is not None:
            fired = expand_to_frames(np.asarray(p)[:, 1:].argmax(1) + 1, frame_index, n).astype(np.int64)
        return expand_to_frames(np.asarray(s, np.float64), frame_index, n), fired


@METHODS.register("transfer")
class TransferMethod(DetectMethod):
    """VideoAnomalyCLIP (the ``transfer`` stage's model of one source): temporal module + the
    target's anomalies described in words (``--prompt``); ``score`` = ``calibrated`` (log-odds of the
    anomaly prompts, default) or ``max_cos`` (``S(t) = max_i cos(V_t, T_i)``)."""

    name = "transfer"

    def __init__(self, backbone, cfg, checkpoint: Path, prompts: list[str], normal_prompts: list[str] | None = None,
                 score: str = "calibrated", **_):
        from vadlib.models.transfer import load_transfer_model, text_encoder_for

        if not prompts:
            raise ConfigError("method 'transfer' needs at least one --prompt (or --prompt-file / --prompts-from)")
        if score not in ("calibrated", "max_cos"):
            raise ConfigError(f"transfer score must be calibrated or max_cos, got {score!r}")
        self.model, self.tcfg, ck = load_transfer_model(checkpoint, backbone)
        enc = text_encoder_for(backbone, self.tcfg.templates)
        self.text_n = enc(list(normal_prompts or [self.tcfg.generic_prompts["normal"]]))
        self.text_a = enc(list(prompts))
        self.backbone, self.cfg, self.score = backbone, cfg, score
        self.labels = list(prompts)
        self.real_weights = bool(backbone.real_weights)
        self.heatmap = False
        self.heat: tuple[np.ndarray, np.ndarray] | None = None

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.features.store import expand_to_frames
        from vadlib.models.transfer import score_video as transfer_scores

        feats, frame_index = encode_video(video, self.backbone, self.cfg, self.progress)
        self.encoded_frames = int(len(frame_index))
        out = transfer_scores(self.model, feats, self.text_n, self.text_a, self.tcfg.tau)
        n = len(video.open())
        fired_rows = np.asarray(out["fired"], np.int64)
        # the map: the frame's DPAM patches (frozen CLIP space, before the temporal module) against the
        # normal prompts and the target prompt the model found fired there
        self.heat = (patch_heat_maps(self.backbone, video, frame_index, fired_rows, self.text_n, self.text_a)
                     if self.heatmap else None)
        return (expand_to_frames(np.asarray(out[self.score], np.float64), frame_index, n),
                expand_to_frames(fired_rows, frame_index, n))


class FusionMethod(DetectMethod):
    """Weighted mean of several methods' scores, each min-max normalised with statistics of NORMAL
    calibration footage (never of the scored video). ``fired`` is taken from the first component
    that names what fired."""

    def __init__(self, parts: list[DetectMethod], weights: list[float] | None = None):
        if len(parts) < 2:
            raise ConfigError("a fusion needs at least two methods (e.g. --method zeroshot+flow_nf)")
        weights = list(weights or [1.0] * len(parts))
        if len(weights) != len(parts) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"--weights: need {len(parts)} non-negative weights, got {weights}")
        self.parts, self.weights = parts, weights
        self.name = "+".join(m.name for m in parts)
        self.labels = next((m.labels for m in parts if m.labels), None)
        self.real_weights = all(getattr(m, "real_weights", True) for m in parts)
        self.score = "fusion"
        self.norm: dict[str, tuple[float, float]] | None = None

    def part_scores(self, video) -> tuple[list[np.ndarray], np.ndarray | None]:
        outs = [m.frame_scores(video) for m in self.parts]
        self.encoded_frames = max(m.encoded_frames for m in self.parts)
        fired = next((f for (s, f), m in zip(outs, self.parts) if f is not None and m.labels is self.labels), None)
        return [np.asarray(s, np.float64) for s, _ in outs], fired

    def fit_norm(self, reference: list[list[np.ndarray]]) -> dict:
        """Min/max of each component over the normal reference videos' frames."""
        self.norm = {}
        for i, m in enumerate(self.parts):
            x = np.concatenate([r[i] for r in reference])
            lo, hi = float(np.min(x)), float(np.max(x))
            self.norm[f"{i}:{m.name}"] = (lo, hi if hi > lo else lo + 1.0)
        return self.norm

    def combine(self, parts: list[np.ndarray]) -> np.ndarray:
        if self.norm is None:
            raise ConfigError("fusion needs normal calibration footage (--calibrate NORMAL…) or a threshold file "
                              "saved by an earlier fused calibration, to put the methods on one scale")
        out = np.zeros_like(parts[0])
        for (lo, hi), w, x in zip(self.norm.values(), self.weights, parts):
            out += w * (x - lo) / (hi - lo)
        return out / sum(self.weights)

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        parts, fired = self.part_scores(video)
        return self.combine(parts), fired


def as_prompt_list(value, name: str = "prompts") -> list[str]:
    """A list of descriptions from a parameter that may arrive as a string (``papermill -p``): a
    JSON/YAML list, or one description. Raises :class:`ConfigError` naming ``name`` otherwise."""
    if isinstance(value, str):
        import yaml

        try:
            parsed = yaml.safe_load(value) if value.strip().startswith("[") else value
        except yaml.YAMLError as exc:
            raise ConfigError(f"`{name}`: not a list ({exc}): {value!r}") from exc
        value = [parsed] if isinstance(parsed, str) else parsed
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p.strip() for p in value):
        raise ConfigError(f"`{name}` must be a list of descriptions, got {value!r}")
    return [p.strip() for p in value]


def read_prompts(prompts: list[str] | None, prompt_file: str | None, prompts_from: str | None,
                 params_file: str = "params.yaml") -> tuple[list[str], list[str] | None]:
    """Anomaly prompts from ``--prompt`` (repeated), a text file (one per line) or a dataset's
    prompt list in params.yaml (``--prompts-from ucsd_ped2``). Returns (anomaly, normal or None)."""
    out = list(prompts or [])
    normal = None
    if prompt_file:
        p = Path(prompt_file)
        if not p.is_file():
            raise DataError(p, "prompt file does not exist")
        out += [ln.strip() for ln in p.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if prompts_from:
        from vadlib.models.prompts import PromptSet
        from vadlib.pipeline import load_params

        table = (load_params(params_file).get("zeroshot") or {}).get("prompts") or {}
        if prompts_from not in table:
            raise ConfigError(f"{params_file}: zeroshot.prompts has no dataset '{prompts_from}' "
                              f"(has: {', '.join(table) or 'none'})")
        ps = PromptSet.from_params(table[prompts_from], where=f"zeroshot.prompts.{prompts_from}")
        out += list(ps.anomaly.values())
        normal = ps.normal
    return out, normal


def score_video(path: Path, method: DetectMethod, sigma: float = 0.0, progress: bool = True) -> dict:
    """Per-frame scores of one video; prints frames/s and the real-time factor."""
    from scipy.ndimage import gaussian_filter1d

    from vadlib.data import Video

    video = Video(name=path.stem, path=path, split="test")
    src = video.open()
    n, fps = len(src), float(src.fps or 25.0)
    video.fps = fps
    for m in getattr(method, "parts", [method]):
        m.progress = progress
    t0 = time.perf_counter()
    scores, fired = method.frame_scores(video)
    wall = time.perf_counter() - t0
    if len(scores) != n:
        raise DataError(path, f"method '{method.name}' returned {len(scores)} scores for {n} frames")
    if sigma:
        scores = gaussian_filter1d(np.asarray(scores, np.float64), sigma, mode="nearest")
    rtf = (n / fps) / wall if wall > 0 else float("inf")
    if progress:
        print(f"{path.name}: {n} frames in {wall:.1f} s = {n / wall:.1f} frames/s, {rtf:.2f}x real time "
              f"({method.encoded_frames} frames encoded)", file=sys.stderr)
    return {"scores": np.asarray(scores, np.float64), "fired": fired, "fps": fps, "n_frames": n,
            "heat": getattr(method, "heat", None),
            "seconds": wall, "realtime_factor": rtf, "frames_encoded": method.encoded_frames}


def write_outputs(out: Path, path: Path, res: dict, events, threshold: Threshold, labels, meta: dict,
                  video_out: bool = True) -> None:
    """scores.csv/.parquet, events.json, timeline.png, annotated.mp4 into ``out`` (a fresh folder)."""
    import pandas as pd

    from vadlib.io import write_json

    n, fps = res["n_frames"], res["fps"]
    df = pd.DataFrame({"frame": np.arange(n), "time_s": np.arange(n) / fps, "score": res["scores"]})
    if res["fired"] is not None and labels:
        df["fired"] = [labels[i] for i in res["fired"]]
    df.to_csv(out / "scores.csv", index=False)
    df.to_parquet(out / "scores.parquet", index=False)
    write_json(out / "events.json", {"video": str(path), "fps": fps, "n_frames": n,
                                     "threshold": asdict(threshold), "events": [asdict(e) for e in events],
                                     **meta})
    plot_timeline(out / "timeline.png", path, res["scores"], events, threshold, fps, meta)
    if video_out:
        annotate_video(out / "annotated.mp4", path, res["scores"], events, threshold, heat=res.get("heat"))


def plot_timeline(target: Path, path: Path, scores: np.ndarray, events, threshold: Threshold, fps: float,
                  meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from vadlib.data import open_video
    from vadlib.report.plots import mark_random

    k = min(len(events), 6)
    fig = plt.figure(figsize=(10, 3.2 + (1.6 if k else 0)))
    ax = fig.add_axes([0.09, 0.38 if k else 0.15, 0.88, 0.55 if k else 0.75])   # room for the y label
    t = np.arange(len(scores)) / fps
    ax.plot(t, scores, lw=1.2)
    source = threshold.source if len(threshold.source) <= 90 else threshold.source[:87] + "..."
    ax.axhline(threshold.value, ls="--", color="tab:red", lw=1, label=f"threshold {threshold.value:.4g} ({source})")
    for e in events:
        ax.axvspan(e.start_s, e.end_s, color="tab:red", alpha=0.15, lw=0)
    ax.set(xlabel="time (s)", ylabel="anomaly score", title=f"{path.name} — {meta.get('method')}")
    ax.legend(fontsize=7, loc="upper right")
    if k:
        src = open_video(path)
        frames = src.get([e.peak_frame for e in events[:k]])
        for i, (e, fr) in enumerate(zip(events[:k], frames)):
            a = fig.add_axes([0.09 + i * 0.15, 0.02, 0.14, 0.24])
            a.imshow(fr)
            a.set_title(f"{e.peak_frame / fps:.1f}s {e.label or ''}"[:40], fontsize=6)
            a.axis("off")
    mark_random(fig, bool(meta.get("real_weights", True)))
    fig.savefig(target, dpi=120)
    plt.close(fig)


def annotate_video(target: Path, path: Path, scores: np.ndarray, events, threshold: Threshold,
                   batch_size: int = 64, heat: tuple[np.ndarray, np.ndarray] | None = None,
                   alpha: float = 0.45) -> None:
    """Write the input with a score bar and the event label per frame (same frame count); with
    ``heat = (frame_index, maps)`` the patch-level map of the last encoded frame at or before each
    frame is blended in as a colour map (JET; red = anomalous patches)."""
    import cv2

    from vadlib.data import iter_batches, open_video

    src = open_video(path)
    h, w = src.size
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), float(src.fps or 25.0), (w, h))
    if not writer.isOpened():
        raise DataError(target, "OpenCV cannot open an mp4v writer here")
    label_at = {}
    for e in events:
        for f in range(e.start, e.end + 1):
            label_at[f] = e.label or "anomaly"
    hi = max(float(np.max(scores)), threshold.value, 1e-9)
    lo = min(float(np.min(scores)), 0.0)
    try:
        for idx, frames in iter_batches(src, range(len(src)), batch_size):
            for i, fr in zip(idx, frames):
                img = cv2.cvtColor(fr, cv2.COLOR_RGB2BGR)
                if heat is not None:
                    k = int(np.searchsorted(heat[0], i, side="right")) - 1
                    m = np.clip(np.asarray(heat[1][max(k, 0)], np.float32), 0, 1)
                    col = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)
                    img = cv2.addWeighted(img, 1 - alpha, col, alpha, 0)
                frac = (scores[i] - lo) / (hi - lo + 1e-12)
                bar_h = max(4, h // 30)
                cv2.rectangle(img, (0, h - bar_h), (int(frac * (w - 1)), h - 1),
                              (0, 0, 255) if i in label_at else (0, 200, 0), -1)
                tx = int((threshold.value - lo) / (hi - lo + 1e-12) * (w - 1))
                cv2.line(img, (tx, h - bar_h), (tx, h - 1), (255, 255, 255), 1)
                if i in label_at:
                    cv2.putText(img, label_at[i][:40], (4, max(12, h // 12)), cv2.FONT_HERSHEY_SIMPLEX,
                                max(0.3, w / 900), (0, 0, 255), 1, cv2.LINE_AA)
                writer.write(img)
    finally:
        writer.release()


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vadlib detect", description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="+", help="video files or frames folders")
    ap.add_argument("--method", default="zeroshot",
                    help=f"one of: {', '.join(METHODS.names())}; or a fusion joined by '+' (e.g. zeroshot+flow_nf), "
                         "whose scores are min-max normalised on the --calibrate footage")
    ap.add_argument("--weights", type=float, nargs="+", help="fusion weights, one per method (default equal)")
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="a model produced by a pipeline stage: a path, train_mil@DATASET, transfer@SOURCE or flow_nf "
                         "(repeat, in --method order, for a fusion of several checkpoint methods)")
    ap.add_argument("--reports", default="reports", help="where stage outputs live (for stage-name checkpoints)")
    ap.add_argument("--prompt", action="append", default=[], help="an anomaly description (repeat)")
    ap.add_argument("--normal-prompt", action="append", default=[], help="a normal-scene description (repeat)")
    ap.add_argument("--prompt-file", help="text file, one anomaly description per line")
    ap.add_argument("--prompts-from", help="a dataset's prompt list in params.yaml (zeroshot.prompts.<name>)")
    ap.add_argument("--score", default=None,
                    help="zeroshot: softmax (default) | max_cos; transfer: calibrated (default) | max_cos; "
                         "flow_nf: fusion (default) | flow_nf | velocity")
    ap.add_argument("--backbone", default=None, help="open_clip model (default ViT-B-16, or the checkpoint's)")
    ap.add_argument("--pretrained", default=None,
                    help="tag, local checkpoint, or 'random' (plumbing only); default openai, or the checkpoint's")
    ap.add_argument("--every", type=int, default=None, help="encode every n-th frame (default 8, or the checkpoint's)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="CLIP image encoder precision: auto = bf16 on CPUs with AMX / AVX-512-BF16, fp16 on CUDA, "
                         "else fp32 (vadlib.features.precision)")
    ap.add_argument("--flow-cache", default=None,
                    help="optical-flow cache of --method flow_nf (default $XDG_CACHE_HOME/vadlib/flow or ~/.cache/vadlib/flow)")
    ap.add_argument("--sigma", type=float, default=0.0, help="Gaussian smoothing of scores (frames)")
    th = ap.add_mutually_exclusive_group()
    th.add_argument("--threshold", type=float, help="a given threshold")
    th.add_argument("--threshold-file", help="a threshold.json saved by an earlier calibration (a fusion's holds its "
                                             "normalisation too)")
    th.add_argument("--calibrate", nargs="+", metavar="NORMAL",
                    help="normal reference videos/folders (never the scored video): the threshold is the score "
                         "exceeded on --false-alarm-rate of their frames; a fusion's per-method min/max come from "
                         "them too. Saved to OUT/threshold.json and beside each checkpoint "
                         "(<checkpoint>.threshold.json), reused when no threshold option is given")
    ap.add_argument("--false-alarm-rate", type=float, default=0.01, help="for --calibrate")
    ap.add_argument("--min-event", type=int, default=3, help="shortest event (frames)")
    ap.add_argument("--merge-gap", type=int, default=8, help="merge events closer than this (frames)")
    ap.add_argument("--out", required=True, help="output folder (one sub-folder per video)")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--no-video", action="store_true", help="skip the annotated MP4")
    ap.add_argument("--heatmap", action=argparse.BooleanOptionalAction, default=False,
                    help="zeroshot, transfer: overlay the DPAM patch-level heat map of the prompt that fired in the "
                         "MP4, held between encoded frames (one more encoder pass over the sampled frames: ≈ 0.7x "
                         "instead of 1.5x real time for ViT-B-16 on 2 CPU cores; off by default; ignored with "
                         "--no-video)")
    ap.add_argument("--params", default="params.yaml")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except VadlibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


CHECKPOINT_METHODS = ("flow_nf", "transfer", "anomalyclip", "sultani", "rtfm")
CLIP_METHODS = ("zeroshot", "transfer", "anomalyclip", "sultani", "rtfm")


def build_methods(args) -> tuple[DetectMethod, dict, list[Path]]:
    """The method (or fusion) of ``args``, the run's metadata and the checkpoints it uses."""
    from vadlib.features import load_backbone
    from vadlib.features.extract import ExtractConfig

    names = [n.strip() for n in args.method.split("+") if n.strip()]
    for n in names:
        METHODS.get(n)                                   # unknown names raise, listing the known ones
    need_ckpt = [n for n in names if n in CHECKPOINT_METHODS]
    if len(args.checkpoint) != len(need_ckpt):
        raise ConfigError(f"--method {args.method} needs {len(need_ckpt)} --checkpoint (one per method of "
                          f"{', '.join(need_ckpt) or 'none'}), got {len(args.checkpoint)}")
    ckpts = dict(zip(need_ckpt, [resolve_checkpoint(c, args.reports) for c in args.checkpoint]))
    # the feature spec: from the CLIP checkpoint when there is one, else the options / defaults
    requested = {"backbone": args.backbone, "pretrained": args.pretrained, "stride": args.every}
    spec = {"backbone": args.backbone or "ViT-B-16", "pretrained": args.pretrained or "openai",
            "stride": args.every or 8}
    clip_ckpts = [n for n in names if n in ("transfer", "anomalyclip", "sultani", "rtfm")]
    for n in clip_ckpts:
        import torch

        if not ckpts[n].is_file():
            raise DataError(ckpts[n], f"method '{n}' needs a checkpoint file (.pt), this is a folder")
        try:
            ck = torch.load(ckpts[n], map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(ckpts[n], f"not a checkpoint written by a vadlib stage (torch.load with weights_only "
                                      f"cannot read it: {type(exc).__name__})") from exc
        ck = ck if isinstance(ck, dict) else {}
        saved = (ck.get("features") or (ck.get("meta") or {}).get("features") or {})
        if not saved:
            raise DataError(ckpts[n], "checkpoint records no feature spec (backbone, sampling): retrain it with "
                            "this version's pipeline stage")
        if saved.get("sampling") not in (None, "every", "frame"):
            raise ConfigError(f"{ckpts[n]}: trained on '{saved['sampling']}' features; vadlib detect encodes "
                              "single frames (sampling every/frame)")
        saved = check_features(ckpts[n], saved, requested)
        # every CLIP checkpoint of a fusion must agree with the first one
        requested = {"backbone": saved.get("backbone"), "pretrained": saved.get("pretrained"),
                     "stride": saved.get("stride") if saved.get("sampling") == "every" else 1}
        spec = {"backbone": saved.get("backbone", spec["backbone"]), "pretrained": saved.get("pretrained", spec["pretrained"]),
                "stride": int(saved.get("stride") or 1) if saved.get("sampling") == "every" else 1}
    cfg = ExtractConfig(sampling="every", stride=int(spec["stride"]), batch_size=args.batch_size, device=args.device)
    bb = None
    if any(n in CLIP_METHODS for n in names):
        bb = load_backbone(spec["backbone"], spec["pretrained"], device=args.device,
                           precision=getattr(args, "precision", "auto"))
    parts: list[DetectMethod] = []
    prompts: list[str] = []
    normal_prompts: list[str] | None = None
    for n in names:
        factory = METHODS.get(n)
        if n == "zeroshot":
            prompts, normal = read_prompts(args.prompt, args.prompt_file, args.prompts_from, args.params)
            if not prompts:
                raise ConfigError("method 'zeroshot' needs at least one --prompt (or --prompt-file / --prompts-from)")
            normal_prompts = list(args.normal_prompt or normal or []) or None
            parts.append(factory(bb, cfg, prompts=prompts, normal_prompts=normal_prompts,
                                 score=args.score or "softmax"))
        elif n == "flow_nf":
            parts.append(factory(None, cfg, checkpoint=str(ckpts[n]), score=args.score or "fusion",
                                 flow_cache=args.flow_cache))
        elif n == "transfer":
            prompts, normal = read_prompts(args.prompt, args.prompt_file, args.prompts_from, args.params)
            normal_prompts = list(args.normal_prompt or normal or []) or None
            parts.append(factory(bb, cfg, checkpoint=ckpts[n], prompts=prompts,
                                 normal_prompts=normal_prompts, score=args.score or "calibrated"))
        else:
            parts.append(factory(bb, cfg, checkpoint=ckpts[n], requested=n))
    for m in parts:
        if hasattr(m, "heatmap"):
            m.heatmap = bool(args.heatmap and not args.no_video)
    method = parts[0] if len(parts) == 1 else FusionMethod(parts, args.weights)
    if len(parts) == 1 and args.weights:
        raise ConfigError("--weights is for fusions (--method a+b)")
    meta = {"method": method.name, "score": getattr(method, "score", None),
            "checkpoint": [str(c) for c in ckpts.values()] or None,
            "backbone": bb.name if bb else None, "pretrained": bb.pretrained if bb else None,
            "real_weights": bool(bb.real_weights) if bb else True, "sampling": f"every {cfg.stride}",
            "precision": bb.precision if bb else None,
            "sigma": args.sigma, "prompts": prompts, "normal_prompts": normal_prompts}
    return method, meta, list(ckpts.values())


def threshold_beside(checkpoint: Path, fusion: str | None = None) -> Path:
    """Where a calibrated threshold is saved beside a checkpoint: the sibling ``<name>.threshold.json``
    of the file or model folder — never inside it, so a stage's (DVC-tracked) output stays unchanged.
    A fusion's (``fusion="zeroshot+flow_nf"``) goes to ``<name>.<fusion>.threshold.json``, so it never
    replaces the checkpoint's own method's."""
    checkpoint = Path(checkpoint)
    name = checkpoint.stem if checkpoint.is_file() else checkpoint.name
    return checkpoint.parent / (f"{name}.{fusion}.threshold.json" if fusion else f"{name}.threshold.json")


def _matches(th: Threshold, meta: dict) -> bool:
    """The saved threshold was made by the same method, score, sampling, backbone and prompts as this run
    (a prompt method's scores depend on its prompts: a threshold of other prompts means nothing here)."""
    return (th.method == meta["method"] and th.score == meta["score"] and th.sampling in (None, meta["sampling"])
            and th.backbone in (None, meta["backbone"]) and th.pretrained in (None, meta["pretrained"])
            and (th.prompts is None or list(th.prompts) == list(meta.get("prompts") or []))
            and (th.prompts is None or (th.normal_prompts or None) == (meta.get("normal_prompts") or None)))


def _describe(th: Threshold | dict) -> str:
    d = th if isinstance(th, dict) else asdict(th)
    out = (f"method {d['method']!r} / score {d['score']!r} / {d['sampling']!r} / "
           f"backbone {d['backbone']!r} ({d['pretrained']!r})")
    if d.get("prompts"):
        out += f" / prompts {list(d['prompts'])!r}"
        if d.get("normal_prompts"):
            out += f" / normal prompts {list(d['normal_prompts'])!r}"
    return out


def _stamp(th: Threshold, meta: dict) -> Threshold:
    """Record on ``th`` what its scores were made with (method, score, sampling, backbone, prompts)."""
    th.method, th.score, th.sampling = meta["method"], meta["score"], meta["sampling"]
    th.backbone, th.pretrained = meta["backbone"], meta["pretrained"]
    th.prompts = list(meta["prompts"]) if meta.get("prompts") else None
    th.normal_prompts = list(meta["normal_prompts"]) if meta.get("prompts") and meta.get("normal_prompts") else None
    return th


def reference_videos(specs: list[str], params_file: str = "params.yaml") -> tuple[list[Path], str]:
    """The normal reference footage of ``--calibrate``: video files, frames folders, folders of videos
    (every video file / frames folder under it) or a registered dataset's split
    (``dataset:NAME[:SPLIT]``, default split ``train``; only its videos labelled normal).
    Returns ``(paths, description)``; every path is checked to be a readable, non-empty video."""
    from vadlib.data.video import IMAGE_EXTENSIONS

    paths: list[Path] = []
    said: list[str] = []
    for spec in specs:
        if spec.startswith("dataset:"):
            from vadlib.data import get_dataset
            from vadlib.pipeline import load_params

            _, name, *rest = spec.split(":")
            split = rest[0] if rest and rest[0] else "train"
            opts = (load_params(params_file).get("datasets") or {}).get(name, {})
            ds = get_dataset(name, **opts)
            if split not in ds.splits:
                raise ConfigError(f"--calibrate {spec}: dataset {name!r} has no split {split!r} "
                                  f"(has: {', '.join(ds.splits)})")
            normal = [Path(v.path) for v in ds.videos(split) if int(v.label) == 0]
            if not normal:
                raise ConfigError(f"--calibrate {spec}: no video of {name}/{split} is labelled normal")
            paths += normal
            said.append(f"{spec}: {len(normal)} normal videos")
            continue
        p = Path(spec)
        if p.is_dir() and not any(c.suffix.lower() in IMAGE_EXTENSIONS for c in p.iterdir()):
            from vadlib.search import collection_videos

            try:
                _, vids = collection_videos(str(p))
            except DataError as exc:
                raise DataError(p, "calibration folder holds no video files, frames folders or images") from exc
            paths += [Path(v.path) for v in vids]
            said.append(f"{p.name}/: {len(vids)} videos")
        else:
            paths.append(p)
            said.append(p.name)
    for p in paths:
        check_video(p, "calibration video")
    return paths, ", ".join(said)


def check_video(path: Path, what: str = "input video") -> None:
    """Raise :class:`DataError` naming ``path`` unless it is a readable video with frames (checked
    before any model is loaded or anything is written)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, f"{what} does not exist")
    try:
        n = len(_video(path).open())
    except DataError:
        raise
    except Exception as exc:                                # decoders raise their own types
        raise DataError(path, f"cannot read the {what} ({type(exc).__name__}: {exc})") from exc
    if n <= 0:
        raise DataError(path, f"{what} has no frames")


def _run(args) -> int:
    from vadlib.io import atomic_dir

    out_root = Path(args.out)
    videos = [Path(v) for v in args.videos]
    for v in videos:
        if not v.exists():
            raise DataError(v, "input video does not exist")
    targets = {v: out_root / v.stem for v in videos}
    if len(set(targets.values())) < len(targets):
        raise ConfigError("two input videos have the same name (their output folders would clash): "
                          f"{', '.join(sorted(str(v) for v in videos))}")
    if not args.overwrite:
        for t in targets.values():
            if t.exists():
                raise DataError(t, "output folder exists; pass --overwrite to replace it")
    # every input (and the calibration footage) must be readable before a model is loaded or a file written
    for v in videos:
        check_video(v)
    ref, ref_said = reference_videos(args.calibrate, args.params) if args.calibrate else ([], "")
    clash = {p.resolve() for p in ref} & {v.resolve() for v in videos}
    if clash:
        raise ConfigError(f"calibration footage must not be the video being scored: {sorted(map(str, clash))}")
    method, meta, ckpts = build_methods(args)
    if not meta["real_weights"]:
        print("WARNING — RANDOM WEIGHTS: scores check the plumbing only.", file=sys.stderr)
    fusion = isinstance(method, FusionMethod)
    if args.threshold is not None:
        if fusion:
            raise ConfigError("a fusion's scores have no fixed scale: calibrate it (--calibrate NORMAL…) or give "
                              "the --threshold-file its calibration saved")
        threshold = _stamp(Threshold(value=args.threshold, source="given (--threshold)"), meta)
    elif args.calibrate:
        heat_on = [(m, m.heatmap) for m in getattr(method, "parts", [method]) if hasattr(m, "heatmap")]
        for m, _ in heat_on:            # no heat maps of the reference footage
            m.heatmap = False
        if fusion:
            reference = [method.part_scores(_video(p))[0] for p in ref]
            method.fit_norm(reference)
            ref_scores = [method.combine(r) for r in reference]
        else:
            ref_scores = [score_video(p, method, 0.0)["scores"] for p in ref]
        if args.sigma:
            from scipy.ndimage import gaussian_filter1d

            ref_scores = [gaussian_filter1d(r, args.sigma, mode="nearest") for r in ref_scores]
        for m, on in heat_on:
            m.heatmap = on
        threshold = _stamp(calibrate_threshold(ref_scores, args.false_alarm_rate, method=method.name,
                                               source=f"normal footage ({ref_said})"), meta)
        threshold.norm = method.norm if fusion else None
        if ckpts:
            for c in ckpts:
                beside = threshold_beside(c, method.name if fusion else None)
                threshold.save(beside)
                print(f"calibrated threshold {threshold.value:.4g} saved beside the checkpoint: {beside}",
                      file=sys.stderr)
    else:
        path = Path(args.threshold_file) if args.threshold_file else None
        if path is None:
            beside = [threshold_beside(c, method.name if fusion else None) for c in ckpts]
            saved = [b for b in beside if b.is_file()]
            path = saved[0] if saved else None
        if path is None:
            raise ConfigError("give a threshold: --threshold VALUE, --threshold-file FILE, or --calibrate "
                              "NORMAL_VIDEO… (a calibration is then saved beside the checkpoint and reused)")
        threshold = Threshold.load(path)
        if not _matches(threshold, meta):
            raise ConfigError(f"{path}: threshold calibrated for {_describe(threshold)}, but this run is "
                              f"{_describe(meta)}; recalibrate with --calibrate")
        if fusion:
            if not threshold.norm:
                raise ConfigError(f"{path}: holds no fusion calibration (norm); recalibrate with --calibrate")
            method.norm = {k: tuple(v) for k, v in threshold.norm.items()}
        if not args.threshold_file:
            threshold.source = f"{threshold.source}; saved beside the checkpoint ({path})"
    for v in videos:
        res = score_video(v, method, args.sigma)
        events = find_events(res["scores"], threshold.value, res["fps"], method.labels, res["fired"],
                             min_length=args.min_event, merge_gap=args.merge_gap)
        with atomic_dir(targets[v]) as tmp:
            write_outputs(tmp, v, res, events, threshold, method.labels,
                          {**meta, "frames_per_second": res["n_frames"] / res["seconds"],
                           "realtime_factor": res["realtime_factor"]}, video_out=not args.no_video)
        print(f"{v.name}: {len(events)} event(s) -> {targets[v]}")
    if args.calibrate:
        threshold.save(out_root / "threshold.json")
    return 0


def _video(path: Path):
    from vadlib.data import Video

    v = Video(name=path.stem, path=path, split="test")
    v.fps = float(v.open().fps or 25.0)
    return v


if __name__ == "__main__":
    raise SystemExit(main())
