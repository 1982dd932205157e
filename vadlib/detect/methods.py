"""The detection methods of ``vadlib detect``: one class per method, registered by name in
:data:`METHODS`; each scores every frame of one video (``frame_scores``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from vadlib.defaults import DEFAULT_FPS
from vadlib.detect.render import patch_heat_maps
from vadlib.errors import ConfigError, DataError
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
    #: what the method needs, declared so the CLI builds any method without knowing it by name:
    #: a CLIP backbone (and encodes with it), a ``--checkpoint`` (a stage output), the run's prompts
    needs_backbone = False
    needs_checkpoint = False
    #: the anomaly / normal prompts its scores depend on (prompt methods), recorded with a threshold
    prompts: list[str] | None = None
    normal_prompts: list[str] | None = None

    @classmethod
    def from_args(cls, name: str, args, backbone, cfg, checkpoint: Path | None) -> "DetectMethod":
        """Build the method registered as ``name`` from the ``vadlib detect`` arguments ``args``, the
        loaded ``backbone`` (None unless :attr:`needs_backbone`), the extraction config ``cfg`` and the
        resolved ``checkpoint`` (None unless :attr:`needs_checkpoint`)."""
        raise NotImplementedError

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError

    def _prompt_state(self, backbone, cfg, score: str, prompts, normal_prompts) -> None:
        """The state every prompt-scored method (zeroshot, transfer) keeps: backbone, extraction
        config, score name, the prompts as labels, and an empty heat map (``--heatmap`` sets it)."""
        self.backbone, self.cfg, self.score = backbone, cfg, score
        self.labels = list(prompts)
        self.prompts, self.normal_prompts = list(prompts), (list(normal_prompts) if normal_prompts else None)
        self.real_weights = bool(backbone.real_weights)
        self.heatmap = False
        self.heat: tuple[np.ndarray, np.ndarray] | None = None


class _FrameProgress:
    """A tqdm bar over the video's frames fed with encoded-frame counts (``update(k)``, as
    :func:`~vadlib.features.extract.iter_extract` calls it); shows frames/s and the real-time factor."""

    def __init__(self, name: str, n_frames: int, fps: float, stride: int):
        from tqdm.auto import tqdm

        self.n, self.fps, self.stride, self.encoded = int(n_frames), float(fps or DEFAULT_FPS), max(1, int(stride)), 0
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


def encode_video(video, backbone, cfg, progress: bool = True, with_aux: bool = False):
    """``(feats, frame_index)`` of one video (:func:`~vadlib.features.extract.extract_video`), with a
    progress bar (frames/s, real-time factor) on stderr when ``progress``; ``with_aux``: ``(feats,
    frame_index, aux)``, aux = the video backbone's per-clip array (X-CLIP's prompt tokens) or None."""
    from vadlib.features.extract import extract_video_result

    bar = (_FrameProgress(video.name, len(video.open()), video.fps, cfg.stride if cfg.sampling == "every" else 1)
           if progress else None)
    try:
        res = extract_video_result(video, backbone, cfg, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return (res.feats, res.frame_index, res.aux) if with_aux else (res.feats, res.frame_index)


@METHODS.register("zeroshot")
class ZeroShotMethod(DetectMethod):
    """CLIP zero-shot: softmax over [normal prompts; anomaly prompts] (``score="softmax"``) or
    ``S(t) = max_i cos`` (``score="max_cos"``)."""

    name = "zeroshot"
    needs_backbone = True

    @classmethod
    def from_args(cls, name, args, backbone, cfg, checkpoint=None) -> "ZeroShotMethod":
        prompts, normal = prompts_of(args)
        return cls(backbone, cfg, prompts=prompts, normal_prompts=normal, score=args.score or "softmax")

    def __init__(self, backbone, cfg, prompts: list[str], normal_prompts: list[str] | None = None,
                 templates: list[str] | None = None, tau: float = 0.01, score: str = "softmax", **_):
        from vadlib.prompts.text import PromptSet, resolve_templates
        from vadlib.methods.zeroshot.model import SCORES, ZeroShotScorer

        if not prompts:
            raise ConfigError("method 'zeroshot' needs at least one --prompt (or --prompt-file / --prompts-from)")
        if score not in SCORES:
            raise ConfigError(f"unknown score '{score}' (known: {', '.join(SCORES)})")
        ps = PromptSet(normal=list(normal_prompts or ["an ordinary scene with people walking"]),
                       anomaly={p: p for p in prompts}, templates=resolve_templates(templates, "--templates"))
        self.scorer = ZeroShotScorer(backbone, ps, tau=tau)
        self._prompt_state(backbone, cfg, score, prompts, normal_prompts)

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.features.store import expand_to_frames as _expand

        feats, frame_index, aux = encode_video(video, self.backbone, self.cfg, self.progress, with_aux=True)
        self.encoded_frames = int(len(frame_index))
        out = self.scorer.score(feats, aux if self.scorer.needs_aux else None)
        n = len(video.open())
        fired_rows = np.asarray(out.fired, np.int64)
        self.heat = (patch_heat_maps(self.backbone, video, frame_index, fired_rows, self.scorer.normal_text,
                                     self.scorer.anomaly_text, zhou_prompts=getattr(self, "heat_prompts", None))
                     if self.heatmap else None)
        return (_expand(getattr(out, self.score), frame_index, n), _expand(fired_rows, frame_index, n))


@METHODS.register("flow_nf")
class FlowNFMethod(DetectMethod):
    """The optical-flow normalizing flow (+ velocity GMM) of the ``flow_nf`` stage, applied
    without retraining; needs ``--checkpoint`` = the stage's saved model folder
    (``reports/flow_nf/model``). ``score`` is ``fusion`` (default), ``flow_nf`` or ``velocity``."""

    name = "flow_nf"
    needs_checkpoint = True

    @classmethod
    def from_args(cls, name, args, backbone, cfg, checkpoint) -> "FlowNFMethod":
        return cls(None, cfg, checkpoint=str(checkpoint), score=args.score or "fusion", flow_cache=args.flow_cache)

    def __init__(self, backbone=None, cfg=None, checkpoint: str | None = None, score: str = "fusion",
                 flow_cache: str | Path | None = None, **_):
        from vadlib.methods.flow_nf.pipeline import FlowNFModel

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
        from vadlib.methods.flow_nf.pipeline import apply_model

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


class TrainMILMethod(DetectMethod):
    """A ``train_mil`` checkpoint of a method of :data:`vadlib.methods.METHODS` (AnomalyCLIP, Sultani
    MIL, RTFM top-k, …) on the video's CLIP features, encoded as the checkpoint's training features
    were; read by the one checkpoint reader :func:`vadlib.methods.load`. ``fired`` (methods with class
    probabilities) = the most probable anomaly class of each frame. Registered below under every
    name of the method registry."""

    needs_backbone = True
    needs_checkpoint = True

    @classmethod
    def from_args(cls, name, args, backbone, cfg, checkpoint) -> "TrainMILMethod":
        return cls(backbone, cfg, checkpoint=checkpoint, requested=name)

    def __init__(self, backbone, cfg, checkpoint: Path, requested: str | None = None, **_):
        from vadlib.methods import load

        self.method = load(checkpoint)
        if requested is not None and self.method.name != requested:
            raise ConfigError(f"{checkpoint}: holds a '{self.method.name}' model, not '{requested}'; use "
                              f"--method {self.method.name} or the {requested} checkpoint")
        self.name = self.method.name
        self.backbone, self.cfg = backbone, cfg
        self.labels = list(self.method.class_names)
        self.real_weights = bool(backbone.real_weights)
        self.score = "p_anomaly"

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.features.store import average_crops, expand_to_frames

        feats, frame_index = encode_video(video, self.backbone, self.cfg, self.progress)
        feats = average_crops(np.asarray(feats, np.float32))
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
    needs_backbone = True
    needs_checkpoint = True

    @classmethod
    def from_args(cls, name, args, backbone, cfg, checkpoint) -> "TransferMethod":
        prompts, normal = prompts_of(args)
        return cls(backbone, cfg, checkpoint=checkpoint, prompts=prompts, normal_prompts=normal,
                   score=args.score or "calibrated")

    def __init__(self, backbone, cfg, checkpoint: Path, prompts: list[str], normal_prompts: list[str] | None = None,
                 score: str = "calibrated", **_):
        from vadlib.methods.transfer.model import load_transfer_model, text_encoder_for

        if not prompts:
            raise ConfigError("method 'transfer' needs at least one --prompt (or --prompt-file / --prompts-from)")
        if score not in ("calibrated", "max_cos"):
            raise ConfigError(f"transfer score must be calibrated or max_cos, got {score!r}")
        self.model, self.tcfg, ck = load_transfer_model(checkpoint, backbone)
        enc = text_encoder_for(backbone, self.tcfg.templates)
        self.text_n = enc(list(normal_prompts or [self.tcfg.generic_prompts["normal"]]))
        self.text_a = enc(list(prompts))
        self._prompt_state(backbone, cfg, score, prompts, normal_prompts)

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        from vadlib.features.store import expand_to_frames
        from vadlib.methods.transfer.model import score_video as transfer_scores

        feats, frame_index = encode_video(video, self.backbone, self.cfg, self.progress)
        self.encoded_frames = int(len(frame_index))
        out = transfer_scores(self.model, feats, self.text_n, self.text_a, self.tcfg.tau)
        n = len(video.open())
        fired_rows = np.asarray(out["fired"], np.int64)
        # the map: the frame's DPAM patches (frozen CLIP space, before the temporal module) against the
        # normal prompts and the target prompt the model found fired there
        self.heat = (patch_heat_maps(self.backbone, video, frame_index, fired_rows, self.text_n, self.text_a,
                                     zhou_prompts=getattr(self, "heat_prompts", None)) if self.heatmap else None)
        return (expand_to_frames(np.asarray(out[self.score], np.float64), frame_index, n),
                expand_to_frames(fired_rows, frame_index, n))


def as_prompt_list(value, name: str = "prompts") -> list[str]:
    """:func:`vadlib.prompts.text.prompt_list` (kept under this name for the notebooks)."""
    from vadlib.prompts.text import prompt_list

    return prompt_list(value, name, allow_empty=True)


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
        from vadlib.prompts.text import PromptSet
        from vadlib.config import load_params

        table = (load_params(params_file).get("zeroshot") or {}).get("prompts") or {}
        if prompts_from not in table:
            raise ConfigError(f"{params_file}: zeroshot.prompts has no dataset '{prompts_from}' "
                              f"(has: {', '.join(table) or 'none'})")
        ps = PromptSet.from_params(table[prompts_from], where=f"zeroshot.prompts.{prompts_from}")
        out += list(ps.anomaly.values())
        normal = ps.normal
    return out, normal


def prompts_of(args) -> tuple[list[str], list[str] | None]:
    """The anomaly prompts and the normal prompts (None: the method's default) of the ``vadlib detect``
    arguments: ``--prompt`` / ``--prompt-file`` / ``--prompts-from``, and ``--normal-prompt`` (else the
    normal prompts of ``--prompts-from``)."""
    prompts, normal = read_prompts(args.prompt, args.prompt_file, args.prompts_from, args.params)
    return prompts, list(args.normal_prompt or normal or []) or None


def checkpoint_features(checkpoint: Path, name: str) -> dict:
    """The feature spec (backbone, pretrained, sampling, stride) a CLIP method's checkpoint file records.
    Raises naming the checkpoint when it is a folder, unreadable with ``weights_only``, records no spec,
    or was made on snippet features."""
    from vadlib.io import read_checkpoint

    ck = read_checkpoint(checkpoint, None, missing=f"method '{name}' needs a checkpoint file (.pt), this is a folder",
                         unreadable="not a checkpoint written by a vadlib stage (torch.load with weights_only "
                                    "cannot read it)")
    saved = (ck.get("features") or (ck.get("meta") or {}).get("features") or {})
    if not saved:
        raise DataError(checkpoint, "checkpoint records no feature spec (backbone, sampling): retrain it with "
                        "this version's pipeline stage")
    if saved.get("sampling") not in (None, "every", "frame", "clip"):
        raise ConfigError(f"{checkpoint}: trained on '{saved['sampling']}' features; vadlib detect encodes "
                          "single frames (sampling every/frame) or a video backbone's clips (sampling clip)")
    return saved


def score_video(path: Path, method: DetectMethod, sigma: float = 0.0, progress: bool = True) -> dict:
    """Per-frame scores of one video; prints frames/s and the real-time factor."""
    from scipy.ndimage import gaussian_filter1d

    from vadlib.data import Video

    video = Video(name=path.stem, path=path, split="test")
    src = video.open()
    n, fps = len(src), float(src.fps or DEFAULT_FPS)
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


def _register_checkpoint_methods() -> None:
    """Every weakly supervised method of :data:`vadlib.methods.METHODS` (``weak``: trained by
    ``train_mil``) is a detection method reading its checkpoint; the others have their own class here."""
    from vadlib.methods import METHODS as TRAINED

    for name in TRAINED.names():
        if TRAINED.get(name).weak:
            METHODS.register(name)(TrainMILMethod)


_register_checkpoint_methods()

#: the registered methods that need a ``--checkpoint`` / a CLIP backbone (from their declarations)
CHECKPOINT_METHODS = tuple(n for n in METHODS.names() if METHODS.get(n).needs_checkpoint)
CLIP_METHODS = tuple(n for n in METHODS.names() if METHODS.get(n).needs_backbone)
