"""AnomalyCLIP (Zanella et al., CVIU 2024; methods.md §1): video-level labels in, frame anomaly
scores and anomaly classes out.

Pieces (shapes: B videos, T = N·L frames, N segments, L frames per segment, D feature width,
C classes with ``normal`` = 0, A = C − 1 anomaly classes):

* normality prototype ``m`` (D,): mean raw feature of all frames of the normal training videos;
* text features ``t_c`` of the A anomaly classes from a text source (:class:`PromptText`: per-class
  CoOp contexts through the FROZEN open_clip text encoder with a trainable ``text_projection``, or
  :class:`EmbeddingText`: given class embeddings through a trainable projection initialised to the
  identity — used by the planted benchmark whose "text encoder" is not CLIP);
* class directions ``d_c = normalize(t_c − m)`` (A, D);
* selector ``z = BatchNorm1d(A, affine=False)((x − m) · d_c)`` (B, T, A);
* temporal model: axial transformer over the (N × L) grid → frame logit ``ℓ`` (B, T), ``p(A|x) = σ(ℓ)``;
* composition in LOG space: ``log p(c, A|x) = log_softmax(z)_c + logsigmoid(ℓ)``,
  ``log p(normal|x) = logsigmoid(−ℓ)`` (C-way, column 0 = normal);
* MIL selection (top-k / bottom-k segments by the selector) with dropout, and the seven loss terms.

Reference flaws (methods.md §1.12) fixed here (each fix that changes a number is a switch of
:class:`ReferenceSwitches`, config key ``reference``; all switches on = the reference's
computation, flaws included, checked by ``python -m vadlib.bench reference anomalyclip``):
  1. smoothness is computed per video and per segment (never across video or segment boundaries);
  2. no ``log`` of a product of probabilities: log-space composition, finite at saturation;
  3. text features are computed once per training step and CACHED for inference (``text_cache``);
  8. MIL dropout always keeps at least k segments, so a dropped segment is never selected.
(4 first-epoch-lr-0 and 6 test-as-validation are fixed in :mod:`vadlib.train`; 7 stale centroid:
the prototype is recomputed by every training run and stored in the checkpoint; 9 class order:
classes are looked up by name and unknown names raise.) Kept as in the reference (faithful):
5 wrap-around padding at test, 10 raw (unnormalised) features.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vadlib.errors import ConfigError, DataError
from vadlib.methods.base import read_presets

NORMAL_ID = 0


# ---------------------------------------------------------------------------------------------
# configuration
# ---------------------------------------------------------------------------------------------


@dataclass
class ReferenceSwitches:
    """Reference behaviour of lucazanella/AnomalyCLIP (snapshot ``6e58b6e``), flaws included.

    Each switch undoes one of vadlib's fixes of a methods.md §1.12 flaw; all False (default) =
    vadlib's fixed computation, all True = what the reference code computes. Fixes that change no
    number have no switch: text features cached at test (flaw 3; the frozen encoder gives the same
    features every time), the prototype recomputed per run (flaw 7; same value for the same
    features), classes looked up by name (flaw 9; a column permutation, undone by the importer
    :mod:`vadlib.compat.zanella`). Kept as in the reference without a switch: wrap-around padding
    at test (flaw 5), raw features (flaw 10).

    Attributes:
        smooth_across_videos: flaw 1 — ``L_smooth`` over the flattened abnormal half of the batch
            (ties the last frame of a video to the first of the next, and consecutive sampled
            segments), instead of per segment.
        log_without_eps: flaw 2 — ``log(softmax · σ)`` and ``log(1 − σ)`` computed as logs of
            products of probabilities (−inf / NaN once σ saturates in float32), instead of in log space.
        lr_zero_first_epoch: flaw 4 — warm-up + cosine stepped per EPOCH with warm-up from 0 (epoch 0
            makes no update), instead of per step from ``lr / warm-up steps``.
        mask_can_select_dropped: flaw 8 — plain Bernoulli MIL dropout (a video keeping fewer than k
            segments selects dropped ones), instead of always keeping at least k.
        narrow_segment_starts: not a listed flaw but a difference found by the reference check — the
            start of each training segment is drawn from ``[0, dist − L + 1]`` within its stretch
            (the reference's ``randint(dist − L + 2)``), instead of vadlib's ``[0, dist)``.
        no_validation_split: flaw 6 — train on ALL training videos and keep the last epoch (the
            reference evaluates ``last.ckpt``; its per-epoch validation is the test set), instead of
            selecting the epoch on a validation split of the training videos.
    """

    smooth_across_videos: bool = False
    log_without_eps: bool = False
    lr_zero_first_epoch: bool = False
    mask_can_select_dropped: bool = False
    narrow_segment_starts: bool = False
    no_validation_split: bool = False

    @classmethod
    def from_value(cls, v) -> "ReferenceSwitches":
        """``True`` / ``"all"`` = every switch on; ``False`` / ``None`` / ``"none"`` = none; a dict sets some."""
        if isinstance(v, cls):
            return v
        if v is True or v == "all":
            return cls(**{f.name: True for f in fields(cls)})
        if v is None or v is False or v == "none":
            return cls()
        if not isinstance(v, Mapping):
            raise ConfigError(f"anomalyclip.reference: give true/'all', false/'none' or a dict of switches, got {v!r}")
        known = {f.name for f in fields(cls)}
        bad = sorted(set(v) - known)
        if bad:
            raise ConfigError(f"anomalyclip.reference: unknown switches {bad}; known: {sorted(known)}")
        wrong = sorted(k for k, x in v.items() if not isinstance(x, bool))
        if wrong:
            raise ConfigError(f"anomalyclip.reference: switches {wrong} must be true or false")
        return cls(**v)

    def active(self) -> list[str]:
        """Names of the switches set to reference behaviour."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass
class AnomalyCLIPConfig:
    """Hyperparameters (defaults = the reference's ShanghaiTech values, methods.md §1.5–1.9)."""

    num_segments: int = 32
    seg_length: int = 16
    n_ctx: int = 8
    ctx_init_std: float = 0.02
    emb_size: int = 256
    depth: int = 2
    heads: int = 8
    concat_features: bool = True
    ff_kernel: int = 3            # 3 = faithful 3×3 conv feed-forward; 1 = cheaper pointwise variant
    ff_mult: int = 4
    recompute: bool = False       # activation recomputation (memory only; identical outputs)
    topk: int = 3
    bottomk: int = 3
    select_dropout: float = 0.7   # probability a segment is DROPPED before selection
    w_dir_abn: float = 1.0
    w_dir_nor: float = 1.0
    w_topk_abn: float = 1.0
    w_bottomk_abn: float = 1.0
    w_topk_nor: float = 1.0
    w_smooth: float = 8e-4
    w_sparse: float = 8e-3
    text_source: str = "prompts"  # prompts | embeddings
    # optimisation (used by vadlib.train)
    lr: float = 5e-4
    weight_decay: float = 0.2
    epochs: int = 100
    warmup_epochs: int = 10
    batch_size: int = 64          # half abnormal, half normal
    test_batch_grids: int = 16    # grids per forward at inference
    reference: ReferenceSwitches = field(default_factory=ReferenceSwitches)   # reference-mode switches
    precision: str = "fp32"       # fp32 | bf16 | auto: temporal model under bf16 autocast (CPU bf16 units, issue 15)

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "AnomalyCLIPConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ConfigError(f"anomalyclip config: unknown keys {bad}; known: {sorted(known)}")
        d["reference"] = ReferenceSwitches.from_value(d.get("reference"))
        cfg = cls(**d)
        cfg.check()
        return cfg

    def check(self) -> None:
        if self.emb_size % self.heads:
            raise ConfigError(f"anomalyclip: emb_size {self.emb_size} not divisible by heads {self.heads}")
        if self.ff_kernel not in (1, 3):
            raise ConfigError(f"anomalyclip: ff_kernel must be 1 or 3, got {self.ff_kernel}")
        if not (0 <= self.select_dropout < 1):
            raise ConfigError(f"anomalyclip: select_dropout must be in [0, 1), got {self.select_dropout}")
        if max(self.topk, self.bottomk) > self.num_segments:
            raise ConfigError("anomalyclip: topk/bottomk exceed num_segments")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ConfigError(f"anomalyclip: precision must be fp32, bf16 or auto, got {self.precision!r}")
        if self.text_source not in ("prompts", "embeddings"):
            raise ConfigError(f"anomalyclip: text_source must be 'prompts' or 'embeddings', got {self.text_source!r}")

    def to_dict(self) -> dict:
        return asdict(self)


# Presets as files (presets/*.yaml, as open_clip keeps model_configs/): the paper's hyperparameters per
# dataset (methods.md §1.5 table; losses/selection identical for the three), ``demo`` (fast, for the
# generated demo / CI) and ``reference`` (what the reference code computes, every switch on).
CONFIGS: dict[str, dict] = read_presets(Path(__file__).with_name("presets"))


def anomalyclip_config(name: str, **overrides) -> AnomalyCLIPConfig:
    """A named configuration from :data:`CONFIGS` with ``overrides`` applied."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown anomalyclip config '{name}'; known: {', '.join(sorted(CONFIGS))}")
    return AnomalyCLIPConfig.from_dict({**CONFIGS[name], **overrides})


# ---------------------------------------------------------------------------------------------
# text sources
# ---------------------------------------------------------------------------------------------


def encode_text_from_embeddings(clip: nn.Module, embeddings: torch.Tensor, tokens: torch.Tensor,
                                text_projection: torch.Tensor) -> torch.Tensor:
    """open_clip 3.3 ``CLIP.encode_text`` with injected token embeddings and an external projection.

    ``embeddings`` (K, 77, W), ``tokens`` (K, 77) (EOT = argmax pooling), ``text_projection``
    (W, D) → ``(K, D)`` raw text features.
    """
    from vadlib.prompts.learning import encode_text_with_embeddings

    return encode_text_with_embeddings(clip, embeddings, tokens, text_projection=text_projection)


class PromptText(nn.Module):
    """Class-specific CoOp prompts ``"X×n_ctx <class name>."`` through the frozen text encoder.

    Only the anomaly classes are encoded (the reference also encodes ``normal`` and then drops it,
    so its context never gets a gradient — identical outputs). Trainable: contexts ``(A, n_ctx, W)``
    (init N(0, std²)) and ``text_projection`` ``(W, D)`` (init from the backbone). The frozen tower
    is held outside ``state_dict`` (a checkpoint stores the trained parts and the text cache).
    """

    def __init__(self, backbone, anomaly_names: Sequence[str], n_ctx: int = 8, init_std: float = 0.02):
        super().__init__()
        from vadlib.features.backbones.base import text_clip_of

        clip = text_clip_of(backbone)   # open_clip's CLIP, or X-CLIP's / ActionCLIP's text tower seen as one
        clip.requires_grad_(False)
        self._clip = [clip]
        width = clip.token_embedding.weight.shape[1]
        texts = [" ".join(["X"] * n_ctx) + " " + n.replace("_", " ") + "." for n in anomaly_names]
        tokens = backbone.tokenizer(texts).to(backbone.device)
        if int(tokens.argmax(-1).min()) <= n_ctx + 1:
            raise ConfigError(f"n_ctx={n_ctx} does not fit the text context length")
        self.register_buffer("tokens", tokens, persistent=False)
        self.n_ctx = n_ctx
        self.ctx = nn.Parameter(torch.randn(len(anomaly_names), n_ctx, width) * init_std)
        proj = clip.text_projection
        proj = proj.weight.T if isinstance(proj, nn.Linear) else proj
        self.text_projection = nn.Parameter(proj.detach().clone().float())

    def forward(self) -> torch.Tensor:
        """→ ``(A, D)`` raw text features."""
        clip = self._clip[0]
        with torch.no_grad():
            emb = clip.token_embedding(self.tokens)
        emb = torch.cat([emb[:, :1], self.ctx.to(emb.dtype), emb[:, 1 + self.n_ctx:]], dim=1)
        return encode_text_from_embeddings(clip, emb, self.tokens, self.text_projection)


class CachedText(nn.Module):
    """Placeholder text source of a model loaded for inference only: the text features come from
    the checkpoint's ``text_cache``; asking for live text features raises."""

    available = False

    def forward(self) -> torch.Tensor:  # pragma: no cover - guarded by AnomalyCLIP.text_features
        raise ConfigError("anomalyclip: no text encoder loaded")


class EmbeddingText(nn.Module):
    """Given class embeddings ``(A, D)`` through a trainable projection ``(D, D)`` (init identity).

    The planted benchmark's stand-in for "CLIP text features of the class names": its generator
    plants text embeddings near the class directions (plus noise); the trainable projection plays
    the role of the trainable ``text_projection``.
    """

    def __init__(self, embeddings: torch.Tensor):
        super().__init__()
        e = torch.as_tensor(embeddings, dtype=torch.float32)
        self.register_buffer("embeddings", e.clone())
        self.text_projection = nn.Parameter(torch.eye(e.shape[1]))

    def forward(self) -> torch.Tensor:
        return self.embeddings @ self.text_projection


# ---------------------------------------------------------------------------------------------
# axial transformer (plain PyTorch rewrite of lucidrains AxialImageTransformer, as used by §1.5)
# ---------------------------------------------------------------------------------------------


class ChanLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``(B, C, H, W)`` (axial_attention's ChanLayerNorm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.b = nn.Parameter(torch.zeros(1, dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        std = torch.var(x, dim=1, unbiased=False, keepdim=True).sqrt()
        mean = torch.mean(x, dim=1, keepdim=True)
        return (x - mean) / (std + self.eps) * self.g + self.b


class AxialAttention(nn.Module):
    """Pre-LayerNorm multi-head self-attention along one spatial axis of ``(B, E, H, W)``.

    ``axis=2`` attends along H (segments), ``axis=3`` along W (frames). q and kv projections
    without bias, output projection with bias (as the reference).
    """

    def __init__(self, dim: int, heads: int, axis: int):
        super().__init__()
        self.heads, self.axis = heads, axis
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, E, H, W = x.shape
        # (B, E, H, W) → (B·other, seq, E)
        if self.axis == 2:
            t = x.permute(0, 3, 2, 1).reshape(B * W, H, E)
        else:
            t = x.permute(0, 2, 3, 1).reshape(B * H, W, E)
        t = self.norm(t)
        q = self.to_q(t)
        k, v = self.to_kv(t).chunk(2, dim=-1)
        b, n, _ = q.shape
        h = self.heads
        q, k, v = (u.reshape(b, n, h, E // h).transpose(1, 2) for u in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v)
        o = self.to_out(o.transpose(1, 2).reshape(b, n, E))
        if self.axis == 2:
            return o.reshape(B, W, H, E).permute(0, 3, 2, 1)
        return o.reshape(B, H, W, E).permute(0, 3, 1, 2)


class FeedForward(nn.Sequential):
    """ChanLayerNorm → Conv(E→mult·E, k×k) → LeakyReLU → Conv(mult·E→E, k×k), as the reference.

    Weights and activations are kept in ``channels_last`` memory layout (the same values; oneDNN's
    NHWC convolutions run ≈ 1.2× faster on CPU than NCHW for these shapes)."""

    def __init__(self, dim: int, mult: int, kernel: int):
        pad = kernel // 2
        super().__init__(ChanLayerNorm(dim), nn.Conv2d(dim, dim * mult, kernel, padding=pad),
                         nn.LeakyReLU(), nn.Conv2d(dim * mult, dim, kernel, padding=pad))
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.contiguous(memory_format=torch.channels_last))


def _feed_forward(dim: int, mult: int, kernel: int) -> nn.Sequential:
    return FeedForward(dim, mult, kernel)


class ReversibleBlock(nn.Module):
    """``y1 = x1 + f(x2)``, ``y2 = x2 + g(y1)`` on the two channel halves.

    The reference recomputes activations in backward (memory saving only); here ordinary
    autograd is used, or ``torch.utils.checkpoint`` when ``recompute`` — the outputs and
    gradients are the same.
    """

    def __init__(self, f: nn.Module, g: nn.Module, recompute: bool = False):
        super().__init__()
        self.f, self.g, self.recompute = f, g, recompute

    def _run(self, m: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.recompute and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            return checkpoint(m, x, use_reentrant=False)
        return m(x)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y1 = x1 + self._run(self.f, x2)
        y2 = x2 + self._run(self.g, y1)
        return y1, y2


class AxialTransformer(nn.Module):
    """``(B, E, N, L)`` → ``(B, E, N, L)``: axial positional embedding, then per depth one
    reversible attention block (f: along segments, g: along frames) and one reversible
    feed-forward block (two 3×3-conv nets); input duplicated, output = mean of the two halves."""

    def __init__(self, dim: int, depth: int, heads: int, shape: tuple[int, int], ff_kernel: int = 3,
                 ff_mult: int = 4, recompute: bool = False):
        super().__init__()
        self.pos_h = nn.Parameter(torch.randn(1, dim, shape[0], 1))
        self.pos_w = nn.Parameter(torch.randn(1, dim, 1, shape[1]))
        blocks = []
        for _ in range(depth):
            blocks.append(ReversibleBlock(AxialAttention(dim, heads, 2), AxialAttention(dim, heads, 3), recompute))
            blocks.append(ReversibleBlock(_feed_forward(dim, ff_mult, ff_kernel),
                                          _feed_forward(dim, ff_mult, ff_kernel), recompute))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pos_h + self.pos_w
        x1, x2 = x, x
        for blk in self.blocks:
            x1, x2 = blk(x1, x2)
        return (x1 + x2) / 2


# ---------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------


def check_finite(name: str, x: np.ndarray | torch.Tensor) -> None:
    """Raise :class:`DataError` naming the video if ``x`` holds NaN or inf."""
    ok = torch.isfinite(x).all() if isinstance(x, torch.Tensor) else np.isfinite(x).all()
    if not bool(ok):
        raise DataError(None, f"video '{name}': features contain NaN or inf")


class AnomalyCLIP(nn.Module):
    """AnomalyCLIP over raw per-frame CLIP features.

    Args:
        cfg: hyperparameters.
        class_names: C names, index 0 = ``normal``.
        feat_dim: D.
        text: the text source (:class:`PromptText` or :class:`EmbeddingText`) returning (A, D).
    """

    def __init__(self, cfg: AnomalyCLIPConfig, class_names: Sequence[str], feat_dim: int, text: nn.Module):
        super().__init__()
        cfg.check()
        if len(class_names) < 2 or class_names[NORMAL_ID] != "normal":
            raise ConfigError(f"anomalyclip: class_names must start with 'normal', got {list(class_names)}")
        self.cfg = cfg
        self.class_names = list(class_names)
        A = len(class_names) - 1
        self.num_anomaly = A
        self.text = text
        self.register_buffer("centroid", torch.zeros(feat_dim))
        self.register_buffer("text_cache", torch.zeros(A, feat_dim))
        self.register_buffer("text_cache_valid", torch.zeros((), dtype=torch.bool))
        self.selector_bn = nn.BatchNorm1d(A, affine=False)
        in_dim = feat_dim + (A if cfg.concat_features else 0)
        self.embed = nn.Linear(in_dim, cfg.emb_size)
        self.temporal = AxialTransformer(cfg.emb_size, cfg.depth, cfg.heads, (cfg.num_segments, cfg.seg_length),
                                         cfg.ff_kernel, cfg.ff_mult, cfg.recompute)
        self.head = nn.Sequential(nn.LayerNorm(cfg.emb_size), nn.Linear(cfg.emb_size, 1))
        from vadlib.features.precision import resolve_precision  # refuses bf16 on a CPU without bf16 units

        self.precision = resolve_precision(cfg.precision, "cpu").name

    # -- prototype and text -------------------------------------------------------------------
    def set_centroid(self, m: torch.Tensor | np.ndarray) -> None:
        """Set the normality prototype ``m`` (D,) (mean of all normal training frames)."""
        with torch.no_grad():
            self.centroid.copy_(torch.as_tensor(m, dtype=torch.float32))

    def text_features(self) -> torch.Tensor:
        """``(A, D)`` anomaly-class text features: live while training, cached in eval mode."""
        if self.training or not bool(self.text_cache_valid):
            if not getattr(self.text, "available", True):
                raise ConfigError("anomalyclip: this model was loaded without its text encoder (give the "
                                  "backbone to load_checkpoint to train it further) and has no cached text features")
            t = self.text()
            if not self.training:
                with torch.no_grad():
                    self.text_cache.copy_(t)
                    self.text_cache_valid.fill_(True)
            return t
        return self.text_cache

    def train(self, mode: bool = True):
        if mode:
            self.text_cache_valid.fill_(False)
        return super().train(mode)

    def directions(self, text: torch.Tensor | None = None) -> torch.Tensor:
        """``(A, D)`` unit class directions ``(t_c − m)/‖t_c − m‖``."""
        t = self.text_features() if text is None else text
        return F.normalize(t - self.centroid, dim=-1)

    # -- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, text: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``x`` (B, N·L, D) raw features on the segment grid (frame ``n·L + l``).

        Returns ``z`` (B, T, A) BN selector scores, ``logit`` (B, T) temporal logits,
        ``log_probs`` (B, T, C) log class probabilities (column 0 = normal).
        """
        cfg = self.cfg
        B, T, D = x.shape
        N, L = cfg.num_segments, cfg.seg_length
        if T != N * L:
            raise DataError(None, f"anomalyclip: expected {N}×{L}={N * L} frames per grid, got {T}")
        xc = x - self.centroid
        d = self.directions(text)
        s = xc @ d.T                                            # (B, T, A)
        z = self.selector_bn(s.reshape(B * T, -1)).reshape(B, T, -1)
        h = torch.cat([z, xc], -1) if cfg.concat_features else xc
        # the temporal model in bf16 autocast when precision says so (selector, BN and losses stay fp32)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=self.precision == "bf16"):
            h = self.embed(h)                                   # (B, T, E)
            h = h.reshape(B, N, L, -1).permute(0, 3, 1, 2)      # (B, E, N, L)
            h = self.temporal(h).permute(0, 2, 3, 1).reshape(B, T, -1)
            logit = self.head(h).squeeze(-1).float()            # (B, T)
        return {"z": z, "logit": logit,
                "log_probs": compose_log_probs(z, logit, unsafe_log=cfg.reference.log_without_eps)}

    # -- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, videos: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{video: (T, D)}`` → ``{video: (p(A|x) (T,), P (T, C))}``, all frames.

        Each video is padded to a multiple of N·L by wrap-around (as the reference) and split into
        S interleaved N×L grids (frame ``t = (n·S + s)·L + l``); grids of all videos are batched.
        Text features are encoded once and cached (reference flaw 3).
        """
        was = self.training
        self.eval()
        N, L = self.cfg.num_segments, self.cfg.seg_length
        G = N * L
        text = self.text_features()
        grids, owners = [], []
        for name, f in videos.items():
            f = np.asarray(f, dtype=np.float32)
            if f.ndim != 2 or f.shape[0] == 0:
                raise DataError(None, f"video '{name}': features must be (T, D) with T ≥ 1, got {f.shape}")
            check_finite(name, f)
            T = f.shape[0]
            S = max(1, math.ceil(T / G))
            idx = np.arange(S * G) % T
            g = f[idx].reshape(N, S, L, -1).transpose(1, 0, 2, 3).reshape(S, G, -1)
            grids.append(g)
            owners.append((name, T, S))
        allg = np.concatenate(grids) if grids else np.zeros((0, G, 1), np.float32)
        bs = max(1, self.cfg.test_batch_grids)
        scores, logps = [], []
        for i in range(0, len(allg), bs):
            out = self.forward(torch.from_numpy(np.ascontiguousarray(allg[i:i + bs])), text=text)
            scores.append(torch.sigmoid(out["logit"]).numpy())
            logps.append(out["log_probs"].exp().numpy())
        sc = np.concatenate(scores) if scores else np.zeros((0, G))
        pr = np.concatenate(logps) if logps else np.zeros((0, G, len(self.class_names)))
        res, k = {}, 0
        for name, T, S in owners:
            s = sc[k:k + S].reshape(S, N, L).transpose(1, 0, 2).reshape(-1)[:T]
            p = pr[k:k + S].reshape(S, N, L, -1).transpose(1, 0, 2, 3).reshape(S * G, -1)[:T]
            res[name] = (s.astype(np.float32), p.astype(np.float32))
            k += S
        self.train(was)
        return res


# ---------------------------------------------------------------------------------------------
# composition, sampling, selection, losses
# ---------------------------------------------------------------------------------------------


def compose_log_probs(z: torch.Tensor, logit: torch.Tensor, unsafe_log: bool = False) -> torch.Tensor:
    """Log of the C-way distribution (§1.6) in log space (fixes reference flaw 2).

    ``z`` (…, A) selector scores, ``logit`` (…) temporal logits →
    ``(…, C)`` with column 0 = ``log(1 − σ(ℓ))`` and column ``c`` = ``log_softmax(z)_{c−1} + log σ(ℓ)``.
    Finite for any finite input, also when σ(ℓ) saturates to 0 or 1 in float32.
    ``unsafe_log`` (reference switch ``log_without_eps``): ``log`` of the probabilities composed
    as the reference does, ``log(cat(1 − σ, softmax · σ))`` — −inf once σ saturates.
    """
    if unsafe_log:
        p = torch.sigmoid(logit).unsqueeze(-1)
        return torch.log(torch.cat([1 - p, torch.softmax(z, dim=-1) * p], dim=-1))
    return torch.cat([F.logsigmoid(-logit).unsqueeze(-1),
                      F.log_softmax(z, dim=-1) + F.logsigmoid(logit).unsqueeze(-1)], dim=-1)


def sample_grid_indices(T: int, num_segments: int, seg_length: int, rng: np.random.Generator,
                        narrow: bool = False) -> np.ndarray:
    """Training sample of §1.1: ``(N·L,)`` frame indices, L consecutive frames in each of N equal
    stretches, start drawn uniformly; videos shorter than N·L use the N·L spacing and wrap
    modulo ``T`` (the video loops, as the reference). Start offsets: ``[0, dist)``, or with
    ``narrow`` (reference switch ``narrow_segment_starts``) the reference's ``[0, dist − L + 1]``
    (at least ``{0}``; the reference raises when ``dist < L − 1``)."""
    N, L = num_segments, seg_length
    span = max(T, N * L)
    dist = max(1, (span - L + 1) // N)
    high = max(1, dist - L + 2) if narrow else dist
    starts = np.arange(N) * dist + rng.integers(0, high, size=N)
    return ((starts[:, None] + np.arange(L)[None]) % T).reshape(-1)


def mil_keep_mask(B: int, N: int, drop: float, k: int, gen: torch.Generator | None = None,
                  at_least_k: bool = True) -> torch.Tensor:
    """``(B, N)`` bool: each segment kept with probability ``1 − drop`` (one mask shared by top-k and
    bottom-k, as the reference), but always at least ``k`` kept per video (fixes reference flaw 8;
    ``at_least_k=False`` = the reference's plain Bernoulli mask)."""
    u = torch.rand(B, N, generator=gen)
    keep = u >= drop
    if not at_least_k:
        return keep
    rank = u.argsort(dim=1).argsort(dim=1)
    return keep | (rank >= N - k)


def select_segments(seg_scores: torch.Tensor, keep: torch.Tensor, k: int, largest: bool) -> torch.Tensor:
    """``(B, N)`` segment scores → ``(B, k)`` indices of the top (or bottom) k kept segments."""
    fill = -1e6 if largest else 1e6
    masked = torch.where(keep, seg_scores, torch.full_like(seg_scores, fill))
    return masked.topk(k, dim=1, largest=largest).indices


def _segment_frames(z_or_lp: torch.Tensor, seg_idx: torch.Tensor, N: int, L: int) -> torch.Tensor:
    """Gather all L frames of the selected segments: ``(B, N·L, K)`` + ``(B, k)`` → ``(B, k·L, K)``."""
    B = z_or_lp.shape[0]
    x = z_or_lp.reshape(B, N, L, -1)
    idx = seg_idx[:, :, None, None].expand(-1, -1, L, x.shape[-1])
    return x.gather(1, idx).reshape(B, -1, x.shape[-1])


def smoothness_per_segment(p: torch.Tensor, N: int, L: int) -> torch.Tensor:
    """``Σ (p_{l+1} − p_l)²`` over consecutive frames INSIDE each sampled segment of each video
    (``p`` (B, N·L)); nothing is compared across segments or videos (fixes reference flaw 1)."""
    q = p.reshape(p.shape[0], N, L)
    return ((q[..., 1:] - q[..., :-1]) ** 2).sum()


def smoothness_flattened(p: torch.Tensor) -> torch.Tensor:
    """Reference ``L_smooth`` (switch ``smooth_across_videos``, flaw 1): ``Σ (p_{i+1} − p_i)²`` over
    the FLATTENED scores ``p`` (B, N·L) of the abnormal videos, in batch order, across video and
    segment boundaries."""
    q = p.reshape(-1)
    return ((q[1:] - q[:-1]) ** 2).sum()


def anomalyclip_loss(out: Mapping[str, torch.Tensor], classes: torch.Tensor, cfg: AnomalyCLIPConfig,
                     gen: torch.Generator | None = None, keep: torch.Tensor | None = None,
                     return_tensors: bool = False) -> tuple[torch.Tensor, dict]:
    """The seven loss terms of §1.8 on a batch of grids.

    ``out``: :meth:`AnomalyCLIP.forward` output; ``classes`` (B,) class id per video (0 = normal;
    any mix of abnormal and normal videos); ``keep`` (B, N) bool: the MIL dropout mask to use
    (default: drawn with ``gen``). Returns (total, {term: value}); the values are tensors (with
    their graph) when ``return_tensors``.
    """
    z, logit, lp = out["z"], out["logit"], out["log_probs"]
    N, L = cfg.num_segments, cfg.seg_length
    B = z.shape[0]
    seg = z.reshape(B, N, L, -1).sum(2)                              # (B, N, A)
    abn = classes != NORMAL_ID
    nor = ~abn
    ref = cfg.reference
    if keep is None:
        keep = mil_keep_mask(B, N, cfg.select_dropout, max(cfg.topk, cfg.bottomk), gen,
                             at_least_k=not ref.mask_can_select_dropped)
    terms: dict[str, torch.Tensor] = {}
    zero = z.sum() * 0
    if abn.any():
        a_cls = classes[abn]
        own = seg[abn].gather(2, (a_cls - 1)[:, None, None].expand(-1, N, 1)).squeeze(-1)   # (Ba, N)
        top = select_segments(own, keep[abn], cfg.topk, True)
        bot = select_segments(own, keep[abn], cfg.bottomk, False)
        z_top = _segment_frames(z[abn], top, N, L)                  # (Ba, kL, A)
        lp_top = _segment_frames(lp[abn], top, N, L)                # (Ba, kL, C)
        lp_bot = _segment_frames(lp[abn], bot, N, L)
        ci = a_cls[:, None, None].expand(-1, z_top.shape[1], 1)
        terms["dir_abn"] = -z_top.gather(2, ci - 1).mean()
        terms["topk_abn"] = -lp_top.gather(2, ci).mean()
        terms["bottomk_abn"] = -lp_bot[..., NORMAL_ID].mean()
        p_abn = torch.sigmoid(logit[abn])
        terms["smooth"] = (smoothness_flattened(p_abn) if ref.smooth_across_videos
                           else smoothness_per_segment(p_abn, N, L))
        terms["sparse"] = p_abn.mean()
    else:
        for k in ("dir_abn", "topk_abn", "bottomk_abn", "smooth", "sparse"):
            terms[k] = zero
    if nor.any():
        terms["dir_nor"] = z[nor].max(-1).values.mean()
        top = select_segments(seg[nor].sum(-1), keep[nor], cfg.topk, True)
        terms["topk_nor"] = -_segment_frames(lp[nor], top, N, L)[..., NORMAL_ID].mean()
    else:
        terms["dir_nor"] = terms["topk_nor"] = zero
    w = {"dir_abn": cfg.w_dir_abn, "dir_nor": cfg.w_dir_nor, "topk_abn": cfg.w_topk_abn,
         "bottomk_abn": cfg.w_bottomk_abn, "topk_nor": cfg.w_topk_nor, "smooth": cfg.w_smooth,
         "sparse": cfg.w_sparse}
    total = sum(w[k] * terms[k] for k in w)
    if return_tensors:
        return total, terms
    return total, {k: float(v.detach()) for k, v in terms.items()}
