"""VideoAnomalyCLIP: zero-shot cross-dataset transfer (methods.md §2).

Train once on a *source* dataset's CLIP features, test on a *target* with no target data:

* visual side: :class:`~vadlib.methods.transfer.temporal.TemporalTransformer` (``V_t = normalize(x_t + g(x)_t)``,
  CLIP zero-shot at initialisation), applied to whole videos by sliding windows;
* text side during training (generic mode): a normal and an abnormal prompt, either learned
  object-agnostic contexts (:class:`~vadlib.prompts.learning.PromptLearner`) or fixed
  generic texts ("a normal scene" / "an abnormal event");
* objective on the source (registry :data:`OBJECTIVES`): ``mil`` — weak video labels, the top-k
  frames of an abnormal video → abnormal prompt, every frame of a normal video → normal prompt
  (cross-entropy on the 2-way softmax at ``tau_train``); ``normal_only`` — every (normal) frame →
  normal prompt, i.e. pulled to the normal prompt and pushed from the abnormal one; ``auto``
  picks ``mil`` when the source has labelled abnormal training videos. Both add
  ``identity_weight · mean(1 − cos(V_t, x_t))`` which keeps ``V`` in CLIP's space (the semantic
  test prompts are never seen in training);
* test (semantic mode): the target's prompts from params. ``S(t) = max_i cos(V_t, T_i)`` over the
  semantic anomaly prompts (``max_cos``) and the calibrated score
  ``a_t = Σ_{i∈A} softmax_i([cos(V_t, N); cos(V_t, A)] / τ)`` (``calibrated``, τ = 0.01), the
  anomaly prompt that fired per frame and its margin to the best normal prompt.

:func:`run_transfer` computes the transfer matrix for (source, target) pairs with the ablation
rows of :data:`VARIANTS`: ``full``, ``no_temporal``, ``generic_prompts``, ``clip_zeroshot``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vadlib.errors import ConfigError, DataError
from vadlib.features.store import average_crops, expand_to_frames
from vadlib.prompts.learning import PromptLearner, PromptLearnerConfig
from vadlib.methods.transfer.temporal import TemporalConfig, TemporalTransformer, sliding_window_forward
from vadlib.registry import Registry
from vadlib.results import Predictions, VideoScores

OBJECTIVES: Registry = Registry("transfer objective")
VARIANTS: Registry = Registry("transfer variant")
SCORES = ("calibrated", "max_cos")
GENERIC_PROMPTS = {"normal": "a normal scene", "abnormal": "an abnormal event"}


# --------------------------------------------------------------------------- data
@dataclass
class VideoFeatures:
    """One video's CLIP features for transfer.

    Attributes:
        name: video name. feats: ``(N, D)`` float32 rows (crops averaged).
        frame_index: ``(N,)`` frame of each row. n_frames: frames in the video.
        label: video-level label (1 abnormal, 0 normal, -1 unknown).
        frame_labels: ``(n_frames,)`` per-frame GT (test videos) or None.
    """

    name: str
    feats: np.ndarray
    frame_index: np.ndarray
    n_frames: int
    label: int = -1
    frame_labels: np.ndarray | None = None


def load_videos(store, videos: Sequence) -> list[VideoFeatures]:
    """Features of ``videos`` (``Video`` records of a dataset split) from a feature store."""
    out = []
    for v in videos:
        if not store.has(v.name):
            raise DataError(getattr(store, "path", None), f"feature store has no features for video '{v.name}'")
        n = int(store.num_frames(v.name))
        v.check_labels(n)
        x = average_crops(np.asarray(store.load(v.name), np.float32))
        out.append(VideoFeatures(v.name, x, np.asarray(store.frame_index(v.name)), n, int(v.label),
                                 None if v.frame_labels is None else np.asarray(v.frame_labels)))
    return out


# --------------------------------------------------------------------------- config
@dataclass
class TrainConfig:
    """params.yaml ``transfer.train``.

    Attributes:
        objective: ``auto`` | ``mil`` | ``normal_only``.
        epochs, lr, weight_decay, videos_per_step: the optimiser loop (AdamW).
        topk: MIL top-k fraction of an abnormal video's rows (k = max(1, ceil(topk · N))).
        tau_train: temperature of the 2-way training softmax (0.07).
        identity_weight: weight of ``mean(1 − cos(V, x))`` (0 by default: the pooling mixings stay
            in CLIP's span by construction). ``temporal.mixing=residual`` needs it (about 1; training
            refuses 0): without it the free projection carries ``V`` away from the CLIP feature
            (cos(V, x) ≈ 0.2 on the planted benchmark) and the semantic test prompts rank the target's
            anomalies *below* its normal frames (calibrated AUC 0.16–0.17 on seeds 11, 12).
        rotation_augment: rotate features and text by one random orthogonal matrix per step
            (cosines unchanged; discourages basis-specific mappings). Off by default.
        seed: torch seed of initialisation and shuffling.
    """

    objective: str = "auto"
    epochs: int = 50
    lr: float = 5e-3
    weight_decay: float = 1e-4
    videos_per_step: int = 8
    topk: float = 0.1
    tau_train: float = 0.07
    identity_weight: float = 0.0
    rotation_augment: bool = False
    seed: int = 0

    @classmethod
    def from_params(cls, p: Mapping | None) -> "TrainConfig":
        from vadlib.config import check

        cfg = check(cls, p, "transfer.train")     # unknown keys and wrong types raise ConfigError
        if cfg.objective != "auto":
            OBJECTIVES.get(cfg.objective)
        return cfg


@dataclass
class TransferConfig:
    """Everything :func:`run_transfer` needs besides data (params.yaml ``transfer``)."""

    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    prompt_learning: PromptLearnerConfig | None = field(default_factory=PromptLearnerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    generic_prompts: dict = field(default_factory=lambda: dict(GENERIC_PROMPTS))
    templates: list = field(default_factory=lambda: ["{}."])
    tau: float = 0.01
    sigma: float = 0.0
    variants: list = field(default_factory=lambda: ["full", "no_temporal", "generic_prompts", "clip_zeroshot"])
    device: str = "cpu"

    @classmethod
    def from_params(cls, p: Mapping) -> "TransferConfig":
        """From the ``transfer`` params section (unknown keys of sub-sections raise)."""
        pl = dict(p.get("prompt_learning") or {})
        enabled = pl.pop("enabled", True)
        cfg = cls(temporal=TemporalConfig.from_params(p.get("temporal")),
                  prompt_learning=PromptLearnerConfig.from_params(pl) if enabled else None,
                  train=TrainConfig.from_params(p.get("train")),
                  generic_prompts=dict(p.get("generic_prompts") or GENERIC_PROMPTS),
                  templates=_templates(p.get("templates") or ["{}."]),
                  tau=float(p.get("tau", 0.01)), sigma=float(p.get("sigma") or 0.0),
                  variants=list(p.get("variants") or cls().variants),
                  device=str(p.get("device", "cpu")))
        for v in cfg.variants:
            VARIANTS.get(v)
        if set(cfg.generic_prompts) != {"normal", "abnormal"}:
            raise ConfigError("transfer.generic_prompts needs exactly the keys 'normal' and 'abnormal'")
        if cfg.tau <= 0:
            raise ConfigError(f"transfer.tau must be > 0 (got {cfg.tau})")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- model
class VideoAnomalyCLIP(nn.Module):
    """Temporal transformer (optional) + generic training prompts (learned or fixed).

    Args:
        dim: CLIP embedding width D.
        temporal: :class:`TemporalConfig`, or None for no temporal module (``V = x``).
        prompt_learner: a :class:`PromptLearner`, or None to use ``fixed_text``.
        fixed_text: ``(2, D)`` normalised generic text features (normal, abnormal).
    """

    def __init__(self, dim: int, temporal: TemporalConfig | None = None,
                 prompt_learner: PromptLearner | None = None, fixed_text: torch.Tensor | None = None):
        super().__init__()
        if prompt_learner is None and fixed_text is None:
            raise ConfigError("VideoAnomalyCLIP needs a prompt learner or fixed generic text features")
        self.dim = dim
        self.temporal_cfg = temporal
        self.temporal = TemporalTransformer(dim, temporal) if temporal is not None else None
        self.prompt_learner = prompt_learner
        self.register_buffer("fixed_text", None if fixed_text is None else F.normalize(fixed_text.float(), dim=-1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, D)`` rows of one video → ``(T, D)`` normalised ``V`` (sliding windows)."""
        if self.temporal is None:
            return F.normalize(x, dim=-1)
        c = self.temporal_cfg
        return sliding_window_forward(self.temporal, x, c.clip_length, c.stride)

    def generic_text(self) -> torch.Tensor:
        """``(2, D)`` normalised generic prompt features: row 0 normal, row 1 abnormal."""
        return self.prompt_learner() if self.prompt_learner is not None else self.fixed_text


# --------------------------------------------------------------------------- objectives
@OBJECTIVES.register("mil")
def mil_loss(logits: torch.Tensor, label: int, topk: float) -> torch.Tensor:
    """``logits (T, 2)``: abnormal video → CE of its top-k rows (by abnormal logit margin) to
    class 1; normal video → CE of every row to class 0."""
    if label == 1:
        k = max(1, math.ceil(topk * logits.shape[0]))
        idx = (logits[:, 1] - logits[:, 0]).topk(min(k, logits.shape[0])).indices
        return F.cross_entropy(logits[idx], torch.ones(len(idx), dtype=torch.long, device=logits.device))
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


@OBJECTIVES.register("normal_only")
def normal_only_loss(logits: torch.Tensor, label: int, topk: float) -> torch.Tensor:
    """Every row → normal prompt (pull to normal, push from abnormal); abnormal videos skipped."""
    if label == 1:
        return logits.sum() * 0.0
    return F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device))


def choose_objective(name: str, videos: Sequence[VideoFeatures]) -> str:
    """``auto`` → ``mil`` if any training video is labelled abnormal, else ``normal_only``."""
    if name != "auto":
        OBJECTIVES.get(name)
        if name == "mil" and not any(v.label == 1 for v in videos):
            raise ConfigError("transfer.train.objective=mil needs abnormal (label 1) training videos; "
                              "the source has none: use normal_only or auto")
        return name
    return "mil" if any(v.label == 1 for v in videos) else "normal_only"


def random_rotation(dim: int, gen: torch.Generator) -> torch.Tensor:
    """A Haar-random ``(dim, dim)`` orthogonal matrix (QR of a Gaussian matrix, sign-fixed)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=gen))
    return q * torch.sign(torch.diagonal(r))[None]


def train_source(model: VideoAnomalyCLIP, videos: Sequence[VideoFeatures], cfg: TrainConfig,
                 device: str | torch.device = "cpu", log: Callable[[str], None] | None = None) -> dict:
    """Train ``model`` on the source videos; returns ``{"objective", "losses", "seconds"}``."""
    if not videos:
        raise ConfigError("no source training videos")
    objective = choose_objective(cfg.objective, videos)
    tc = model.temporal_cfg
    if tc is not None and tc.mixing == "residual" and not cfg.identity_weight > 0:
        raise ConfigError("transfer.temporal.mixing=residual needs transfer.train.identity_weight > 0 (about 1): "
                          "without it the free (D, D) projection carries V away from the CLIP features and the "
                          "semantic test prompts lose their meaning (anomalies score below normal frames)")
    loss_fn = OBJECTIVES.get(objective)
    params = [p for p in model.parameters() if p.requires_grad]
    t0 = time.time()
    if not params:
        return {"objective": objective, "losses": [], "seconds": 0.0}
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    xs = [torch.as_tensor(v.feats, dtype=torch.float32, device=device) for v in videos]
    model.train()
    losses = []
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(videos), generator=gen).tolist()
        total = 0.0
        for i in range(0, len(order), cfg.videos_per_step):
            batch = order[i:i + cfg.videos_per_step]
            text = model.generic_text()
            rot = None
            if cfg.rotation_augment:
                rot = random_rotation(text.shape[1], gen).to(device)
                text = text @ rot
            loss = 0.0
            for j in batch:
                x = F.normalize(xs[j] if rot is None else xs[j] @ rot, dim=-1)
                v = model.encode(x)
                logits = v @ text.T / cfg.tau_train
                loss = loss + loss_fn(logits, videos[j].label, cfg.topk)
                if cfg.identity_weight:
                    loss = loss + cfg.identity_weight * (1 - (v * x).sum(-1)).mean()
            loss = loss / len(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        losses.append(total / len(videos))
        if log:
            log(f"epoch {epoch + 1}/{cfg.epochs} loss {losses[-1]:.4f}")
    model.eval()
    return {"objective": objective, "losses": losses, "seconds": time.time() - t0}


# --------------------------------------------------------------------------- scoring
@torch.no_grad()
def score_video(model: VideoAnomalyCLIP | None, feats: np.ndarray, text_normal: torch.Tensor,
                text_anomaly: torch.Tensor, tau: float = 0.01) -> dict[str, np.ndarray]:
    """Rows ``(N, D)`` of one video against ``text_normal (Kn, D)``, ``text_anomaly (Ka, D)``.

    Returns per row: ``calibrated (N,)``, ``max_cos (N,)``, ``fired (N,)`` (anomaly prompt index),
    ``margin (N,)`` (best anomaly cos − best normal cos) and ``probs (N, Kn + Ka)``.
    ``model=None`` is plain CLIP zero-shot (``V = normalize(x)``).
    """
    dev = text_normal.device
    x = average_crops(torch.as_tensor(np.asarray(feats), dtype=torch.float32, device=dev))
    v = F.normalize(x, dim=-1) if model is None else model.encode(x)
    cos_n, cos_a = v @ text_normal.T, v @ text_anomaly.T
    logits = torch.cat([cos_n, cos_a], 1).double() / tau
    p = torch.softmax(logits, dim=1)
    kn = cos_n.shape[1]
    # log-odds of a_t = sum_A p: monotone in a_t, without float saturation at 0 / 1 (ties)
    log_odds = torch.logsumexp(logits[:, kn:], 1) - torch.logsumexp(logits[:, :kn], 1)
    return {"calibrated": log_odds.float().cpu().numpy(), "calibrated_prob": torch.sigmoid(log_odds).float().cpu().numpy(), "max_cos": cos_a.max(1).values.cpu().numpy(),
            "fired": cos_a.argmax(1).cpu().numpy(), "margin": (cos_a.max(1).values - cos_n.max(1).values).cpu().numpy(),
            "probs": p.float().cpu().numpy()}


def predict(model: VideoAnomalyCLIP | None, videos: Sequence[VideoFeatures], text_normal: torch.Tensor,
            text_anomaly: torch.Tensor, tau: float = 0.01, class_names: Sequence[str] | None = None,
            meta: dict | None = None) -> dict[str, Predictions]:
    """Per-frame predictions of every score in :data:`SCORES` for ``videos``.

    ``class_probs`` columns: ``[p(normal) summed over normal prompts, p(anomaly prompt i)…]``;
    ``fired`` = the anomaly prompt with the highest cosine per frame.
    """
    names = ["normal", *(class_names or [f"prompt{i}" for i in range(text_anomaly.shape[0])])]
    kn = text_normal.shape[0]
    preds = {s: Predictions(class_names=names, meta={**(meta or {}), "score": s}) for s in SCORES}
    if model is not None:
        model.eval()
    for vid in videos:
        out = score_video(model, vid.feats, text_normal, text_anomaly, tau)
        probs = np.concatenate([out["probs"][:, :kn].sum(1, keepdims=True), out["probs"][:, kn:]], 1)
        fi, n = vid.frame_index, vid.n_frames
        cp, fired = expand_to_frames(probs, fi, n), expand_to_frames(out["fired"], fi, n)
        for s in SCORES:
            preds[s].videos[vid.name] = VideoScores(scores=expand_to_frames(out[s], fi, n).astype(np.float32),
                                                    class_probs=cp.astype(np.float32), fired=fired.astype(np.int64))
    return preds


# --------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """An ablation row: which model is trained on the source and which prompts are used at test.

    ``train``: ``temporal`` (temporal module + generic prompts), ``prompts`` (generic prompts
    only, no temporal module) or ``none`` (plain CLIP). ``test``: ``semantic`` or ``generic``.
    ``mixing`` / ``identity_weight`` override ``temporal.mixing`` / ``train.identity_weight``.
    """

    train: str
    test: str
    description: str
    mixing: str | None = None
    identity_weight: float | None = None   # overrides ``train.identity_weight`` (None: the config's)


for _name, _v in {
    "full": Variant("temporal", "semantic", "temporal transformer trained on the source, target semantic prompts"),
    "no_temporal": Variant("prompts", "semantic", "no temporal module (V = CLIP feature), target semantic prompts"),
    "generic_prompts": Variant("temporal", "generic", "temporal transformer, generic learned prompts at test"),
    "clip_zeroshot": Variant("none", "semantic", "plain CLIP zero-shot with the target semantic prompts"),
    "temporal_residual": Variant("temporal", "semantic", "free residual transformer (mixing=residual, the "
                                 "design as first specified) kept near CLIP by the identity term (weight 1), "
                                 "target semantic prompts", mixing="residual", identity_weight=1.0),
    "temporal_attention": Variant("temporal", "semantic", "content-attention pooling (mixing=attention_pool), "
                                  "target semantic prompts", mixing="attention_pool"),
}.items():
    VARIANTS.register(_name)(_v)


TextEncoder = Callable[[Sequence[str]], torch.Tensor]


def _templates(value) -> list[str]:
    from vadlib.prompts.text import resolve_templates

    return resolve_templates(value, "transfer.templates")


def text_encoder_for(backbone, templates: Sequence[str] | str = ("{}.",)) -> TextEncoder:
    """Texts → ``(K, D)`` normalised prompt-ensemble features with a frozen backbone (``templates``: a
    list, or a template set name such as ``"actionclip"``, :func:`vadlib.prompts.text.resolve_templates`)."""
    from vadlib.prompts.text import encode_prompts, resolve_templates

    tmpl = resolve_templates(templates, "transfer templates")

    def enc(texts: Sequence[str]) -> torch.Tensor:
        return encode_prompts(backbone, list(texts), tmpl).float()

    return enc


def build_model(kind: str, dim: int, cfg: TransferConfig, encode_text: TextEncoder, backbone=None,
                mixing: str | None = None) -> VideoAnomalyCLIP | None:
    """The model a variant's ``train`` kind needs (None for ``none``); ``mixing`` overrides
    ``cfg.temporal.mixing``."""
    if kind == "none":
        return None
    temporal = cfg.temporal if mixing is None else replace(cfg.temporal, mixing=mixing)
    torch.manual_seed(cfg.train.seed)
    pl = None
    fixed = None
    if cfg.prompt_learning is not None:
        if backbone is None:
            raise ConfigError("prompt learning needs the backbone's text encoder (pass backbone=)")
        pl = PromptLearner(backbone, cfg.prompt_learning)
    else:
        fixed = encode_text([cfg.generic_prompts["normal"], cfg.generic_prompts["abnormal"]])
    return VideoAnomalyCLIP(dim, temporal if kind == "temporal" else None, pl, fixed).to(cfg.device)


@dataclass
class TargetPrompts:
    """The target's semantic prompts: normal descriptions and ``{class: description}`` anomalies."""

    normal: list
    anomaly: dict

    @classmethod
    def from_params(cls, p, default_normal: Sequence[str] = ("a normal scene",), where: str = "prompts") -> "TargetPrompts":
        """A list of anomaly descriptions, or ``{"normal": [...], "anomaly": {name: text} | [...]}``."""
        from vadlib.prompts.text import anomaly_prompts, prompt_list

        if isinstance(p, Mapping):
            normal, anomaly = p.get("normal", list(default_normal)), p.get("anomaly")
        else:
            normal, anomaly = list(default_normal), p
        if anomaly is None:
            raise ConfigError(f"{where}: no anomaly prompts")
        return cls(normal=prompt_list(normal, f"{where}.normal"),
                   anomaly=anomaly_prompts(anomaly, f"{where}.anomaly", name=lambda i, text: text))


@dataclass
class TransferResult:
    """``table``: one row per (source, target, variant, score) with micro AUC/AP;
    ``predictions[(source, target, variant)]``: the calibrated :class:`Predictions`;
    ``training[(source, kind, mixing[, identity_weight when a variant overrides it])]``: the training log."""

    table: "object"
    predictions: dict
    training: dict
    models: dict = field(default_factory=dict)   # {source: trained model of the "full" variant}
    validation: dict = field(default_factory=dict)   # {(source, target): what run_transfer's validate returned}


def _micro(preds: Predictions, videos: Sequence[VideoFeatures], sigma: float) -> dict:
    from vadlib.metrics import evaluate_frames

    labels = {v.name: v.frame_labels for v in videos}
    m = evaluate_frames(preds.scores(), labels, sigma=sigma or None)
    return {k: m[k] for k in ("micro_auc", "micro_ap", "macro_auc", "n_frames", "n_anomalous")}


def run_transfer(pairs: Sequence[Sequence[str]], load: Callable[[str, str], list[VideoFeatures]],
                 prompts: Mapping[str, TargetPrompts], cfg: TransferConfig, encode_text: TextEncoder,
                 backbone=None, log: Callable[[str], None] | None = print,
                 validate: Callable[[str, str, Mapping[str, tuple]], Mapping] | None = None) -> TransferResult:
    """The transfer matrix: for each ``(source, target)`` train on the source's training videos
    (``load(source, "train")``) and score the target's test videos (``load(target, "test")``,
    frame labels required) — no target data enters training, τ, σ or normalisation.

    Args:
        pairs: ``[(source, target), ...]``.
        load: ``(dataset, split) → [VideoFeatures]``.
        prompts: ``{target: TargetPrompts}`` — the semantic test prompts.
        cfg: :class:`TransferConfig`. encode_text: frozen text tower (:func:`text_encoder_for`).
        backbone: needed when ``cfg.prompt_learning`` is set.
        validate: ``(source, target, {variant: (model, text_normal, text_anomaly, class names)}) →
            {"sigma": σ, ...}``, called once per pair after its models are trained and BEFORE its test
            videos are scored; the test scores of the pair are smoothed with the σ it returns (the
            stage's pseudo-anomaly validation, :func:`vadlib.stages.transfer.validate_pair`). Its
            return values are in ``TransferResult.validation[(source, target)]``.
    """
    import pandas as pd

    pairs = [tuple(p) for p in pairs]
    for p in pairs:
        if len(p) != 2:
            raise ConfigError(f"transfer.pairs: each pair is [source, target], got {list(p)}")
    variants = {name: VARIANTS.get(name) for name in cfg.variants}
    cache: dict = {}
    models: dict = {}
    training: dict = {}
    rows, predictions, validation = [], {}, {}

    def data(name: str, split: str):
        if (name, split) not in cache:
            cache[(name, split)] = load(name, split)
            if not cache[(name, split)]:
                raise DataError(None, f"dataset '{name}' has no {split} videos with features")
        return cache[(name, split)]

    for src, tgt in pairs:
        if tgt not in prompts:
            raise ConfigError(f"transfer.prompts has no semantic prompts for target '{tgt}'")
        tp = prompts[tgt]
        test = data(tgt, "test")
        missing = [v.name for v in test if v.frame_labels is None]
        if missing:
            raise DataError(None, f"target '{tgt}': test videos without frame labels: {missing[:5]}")
        text_n = encode_text(tp.normal).to(cfg.device)
        text_a = encode_text(list(tp.anomaly.values())).to(cfg.device)
        prepared = {}
        for vname, var in variants.items():
            mixing = var.mixing if var.train == "temporal" else None
            train_cfg = cfg.train if var.identity_weight is None else replace(cfg.train,
                                                                              identity_weight=var.identity_weight)
            key = (src, var.train, mixing or cfg.temporal.mixing if var.train == "temporal" else None)
            if train_cfg.identity_weight != cfg.train.identity_weight:
                key += (train_cfg.identity_weight,)
            if key not in models:
                train = data(src, "train")
                dim = train[0].feats.shape[-1]
                model = build_model(var.train, dim, cfg, encode_text, backbone, mixing)
                used_generic = any(v.train == var.train and v.test == "generic" for v in variants.values())
                if model is not None and var.train == "prompts" and not used_generic:
                    # no temporal module and semantic test prompts: nothing trained on the source can
                    # change the scores (V = x, frozen text tower), so the row equals CLIP zero-shot
                    # by construction and training is skipped
                    training[key] = {"objective": "skipped (no effect on semantic-prompt scores)", "losses": [],
                                     "seconds": 0.0}
                elif model is not None:
                    if log:
                        log(f"training '{var.train}' on {src} ({len(train)} videos)")
                    training[key] = train_source(model, train, train_cfg, cfg.device)
                    if log:
                        log(f"  objective {training[key]['objective']}, final loss "
                            f"{training[key]['losses'][-1] if training[key]['losses'] else float('nan'):.4f}")
                models[key] = model
            model = models[key]
            if var.test == "generic":
                if model is None:
                    raise ConfigError(f"variant '{vname}': generic prompts need a trained model")
                with torch.no_grad():
                    g = model.generic_text()
                tn, ta, names = g[:1], g[1:], ["generic_abnormal"]
            else:
                tn, ta, names = text_n, text_a, list(tp.anomaly)
            prepared[vname] = (model, tn, ta, names)
        sigma = cfg.sigma
        if validate is not None:     # chosen before the pair's test videos are scored
            validation[(src, tgt)] = dict(validate(src, tgt, prepared))
            sigma = float(validation[(src, tgt)].get("sigma", sigma))
        for vname, (model, tn, ta, names) in prepared.items():
            meta = {"method": "videoanomalyclip", "variant": vname, "source": src, "target": tgt, "tau": cfg.tau,
                    "sigma": sigma}
            preds = predict(model, test, tn, ta, cfg.tau, names, meta)
            predictions[(src, tgt, vname)] = preds["calibrated"]
            for score, p in preds.items():
                rows.append({"source": src, "target": tgt, "variant": vname, "score": score,
                             **_micro(p, test, sigma)})
    table = pd.DataFrame(rows)
    full = {k[0]: m for k, m in models.items() if m is not None and k[1] == "temporal" and k[2] == cfg.temporal.mixing
            and len(k) == 3}
    return TransferResult(table=table, predictions=predictions, training=training, models=full, validation=validation)


# --------------------------------------------------------------------------- checkpoints
CHECKPOINT_FORMAT = "vadlib.transfer/1"


def save_transfer_model(path, model: VideoAnomalyCLIP, params: Mapping, source: str, features: Mapping) -> "Path":
    """The trained VideoAnomalyCLIP of one source (weights, the ``transfer`` params it was built
    from, the source name and its feature spec), written atomically; ``torch.load(weights_only=True)``."""
    from pathlib import Path

    from vadlib.io import atomic_path

    ck = {"format": CHECKPOINT_FORMAT, "source": source, "dim": int(model.dim), "params": json_params(params),
          "features": dict(features), "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
    with atomic_path(path, suffix=".pt") as tmp:
        with open(tmp, "wb") as fh:   # a file object: the archive is named "archive", not after the temp file
            torch.save(ck, fh)
    return Path(path)


def json_params(p: Mapping) -> dict:
    """A JSON-safe copy of a params mapping (what torch's weights_only loader accepts)."""
    import json

    return json.loads(json.dumps(dict(p), default=str))


def load_transfer_model(path, backbone) -> tuple[VideoAnomalyCLIP, TransferConfig, dict]:
    """``(model, cfg, checkpoint)`` from :func:`save_transfer_model`; ``backbone`` supplies the frozen
    text tower of the learned prompts."""
    from vadlib.io import read_checkpoint

    ck = read_checkpoint(path, CHECKPOINT_FORMAT, missing="transfer checkpoint does not exist",
                         unreadable="not a checkpoint written by the transfer stage (torch.load with weights_only "
                                    "cannot read it)",
                         wrong=f"not a VideoAnomalyCLIP checkpoint (format {CHECKPOINT_FORMAT!r} missing)")
    cfg = TransferConfig.from_params({**ck["params"], "device": "cpu"})
    model = build_model("temporal", int(ck["dim"]), cfg, text_encoder_for(backbone, cfg.templates), backbone)
    missing, unexpected = model.load_state_dict(ck["state_dict"], strict=False)
    if unexpected or [k for k in missing if not k.endswith("tokens")]:
        raise DataError(path, f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    model.eval()
    return model, cfg, ck


# --------------------------------------------------------------------------- reporting helpers
def transfer_matrix(table, score: str = "calibrated", metric: str = "micro_auc"):
    """``table`` of :func:`run_transfer` → DataFrame, rows = variant, columns = ``source→target``."""
    t = table[table.score == score].copy()
    t["pair"] = t.source + "→" + t.target
    order = list(dict.fromkeys(t.variant))
    return t.pivot(index="variant", columns="pair", values=metric).loc[order]


def source_target_matrix(table, variant: str = "full", score: str = "calibrated", metric: str = "micro_auc"):
    """Rows = source, columns = target for one variant (NaN where a pair was not run)."""
    t = table[(table.score == score) & (table.variant == variant)]
    return t.pivot(index="source", columns="target", values=metric)


def fired_summary(preds: Predictions, videos: Sequence[VideoFeatures]):
    """Which prompt fired on the GT-anomalous frames and on the normal frames (fractions).
    ``fired`` is the top anomaly prompt; it counts only where the calibrated probability of the
    anomaly prompts exceeds the normal prompts' (else the frame is predicted ``normal``)."""
    import pandas as pd

    names = preds.class_names or []
    counts = {"anomalous": np.zeros(len(names)), "normal": np.zeros(len(names))}
    for v in videos:
        p = preds[v.name]
        pred = np.where(p.class_probs[:, 0] >= 0.5, 0, p.fired + 1)
        lab = np.asarray(v.frame_labels).astype(bool)
        counts["anomalous"] += np.bincount(pred[lab], minlength=len(names))[:len(names)]
        counts["normal"] += np.bincount(pred[~lab], minlength=len(names))[:len(names)]
    df = pd.DataFrame(counts, index=names)
    return df / df.sum(0).replace(0, np.nan)


def plot_transfer(table, score: str = "calibrated", real_weights: bool = True, caption: str = "",
                  spread: bool = False):
    """Two heatmaps: source × target AUC of the ``full`` model, and variant × pair AUC/AP. ``spread``:
    ``table`` holds means over seeds with ``<metric>_std`` columns; each cell then reads ``mean ± std``."""
    import matplotlib.pyplot as plt

    st = source_target_matrix(table, "full", score)
    auc = transfer_matrix(table, score, "micro_auc")
    ap = transfer_matrix(table, score, "micro_ap")
    fig, axes = plt.subplots(1, 3, figsize=(5 + 2.2 * (st.shape[1] + 2 * auc.shape[1]), 1.5 + 0.6 * max(len(st), len(auc))),
                             gridspec_kw={"width_ratios": [max(st.shape[1], 1), auc.shape[1], ap.shape[1]],
                                          "wspace": 0.6})
    sds = ((source_target_matrix(table, "full", score, "micro_auc_std"), transfer_matrix(table, score, "micro_auc_std"),
            transfer_matrix(table, score, "micro_ap_std")) if spread else (None, None, None))
    for k, (ax, m, title) in enumerate(((axes[0], st, f"full model, micro AUC ({score})"), (axes[1], auc, "micro AUC"),
                                        (axes[2], ap, "micro AP"))):
        sd = sds[k]
        im = ax.imshow(m.values.astype(float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(m.shape[1]), list(m.columns), rotation=30, ha="right")
        ax.set_yticks(range(m.shape[0]), list(m.index) if k < 2 else [])
        for (i, j), val in np.ndenumerate(m.values.astype(float)):
            if np.isfinite(val):
                ax.text(j, i, f"{val:.3f}" + ("" if sd is None else f"\n± {float(sd.values[i, j]):.3f}"), ha="center", va="center", color="w" if val < 0.6 else "k", fontsize=9)
        ax.set_title(title, fontsize=10)
    axes[0].set_xlabel("target")
    axes[0].set_ylabel("source")
    fig.colorbar(im, ax=axes, shrink=0.8)
    if caption:
        fig.text(0.01, -0.12, caption, fontsize=7, ha="left", va="top", wrap=True)
    if not real_weights:
        fig.suptitle("RANDOM WEIGHTS — plumbing check, not a result", color="red", fontsize=12)
    return fig
