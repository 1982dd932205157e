"""Temporal transformer over CLIP frame features (methods.md §2.1).

``V_t = normalize(x_t + g(x)_t)`` where ``x_t`` is the L2-normalised CLIP embedding of frame t and
``g`` is a pre-norm transformer encoder over a clip of ``clip_length`` frames followed by a
zero-initialised output projection, so that at initialisation ``V_t = x_t``: the model *is*
CLIP zero-shot and the alignment with the text tower is preserved.

Whole videos are processed by :func:`sliding_window_forward`: windows of ``clip_length`` rows
with ``stride`` (default 16 / 8); the tail is padded by repeating the last row, padded rows are
masked out of the attention and dropped; a video shorter than one window is one padded window.
Each row is covered by one or more windows and its outputs are averaged, so every row gets
exactly one output.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vadlib.errors import ConfigError
from vadlib.registry import Registry

POS_ENCODINGS: Registry = Registry("temporal position encoding")
MIXINGS = ("similarity_pool", "attention_pool", "residual")


@dataclass
class TemporalConfig:
    """Hyperparameters of :class:`TemporalTransformer` (params.yaml ``transfer.temporal``).

    Attributes:
        layers: encoder layers (2). heads: attention heads (8; must divide D).
        clip_length: frames per window (16). stride: window stride at inference (8).
        pos_encoding: ``learned`` | ``sinusoidal`` | ``none``.
        ff_mult: feed-forward width = ff_mult · D. dropout: in the encoder layers.
        mixing: how the encoder output ``h`` becomes ``g(x)`` (both zero at initialisation):
            ``residual`` — ``g = W_out · LN(h)``, a free ``(D, D)`` projection zero-initialised
            (the design as specified in methods.md §2.1);
            ``attention_pool`` — ``g_t = λ · Σ_s A_ts x_s`` with attention weights ``A`` computed
            from ``h`` (query zero-initialised: the window mean) and a gate ``λ = exp(w) − 1``, ``w = 0`` at
            initialisation (log scale: Adam reaches λ ≈ 10 in a few hundred steps): only *which frames to pool* is
            learned, so ``V`` stays in the span of the window's CLIP features (semantic text
            alignment preserved by construction; see the planted transfer benchmark).
    """

    layers: int = 2
    heads: int = 8
    clip_length: int = 16
    stride: int = 8
    pos_encoding: str = "learned"
    ff_mult: int = 4
    dropout: float = 0.1
    mixing: str = "similarity_pool"

    @classmethod
    def from_params(cls, p: Mapping | None) -> "TemporalConfig":
        from vadlib.config import check

        cfg = check(cls, p, "transfer.temporal")     # unknown keys and wrong types raise ConfigError
        if cfg.clip_length < 1 or not 1 <= cfg.stride <= cfg.clip_length:
            raise ConfigError(f"transfer.temporal: need clip_length >= 1 and 1 <= stride <= clip_length "
                              f"(got clip_length={cfg.clip_length}, stride={cfg.stride})")
        POS_ENCODINGS.get(cfg.pos_encoding)
        if cfg.mixing not in MIXINGS:
            raise ConfigError(f"transfer.temporal.mixing '{cfg.mixing}' unknown (known: {', '.join(MIXINGS)})")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


@POS_ENCODINGS.register("learned")
class LearnedPositions(nn.Module):
    """A learned ``(L, D)`` table initialised N(0, 0.02²)."""

    def __init__(self, length: int, dim: int):
        super().__init__()
        self.table = nn.Parameter(torch.randn(length, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


@POS_ENCODINGS.register("sinusoidal")
class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encoding (Vaswani et al.)."""

    def __init__(self, length: int, dim: int):
        super().__init__()
        pos = torch.arange(length, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(length, dim)
        table[:, 0::2] = torch.sin(pos * freq)
        table[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]]


@POS_ENCODINGS.register("none")
class NoPositions(nn.Module):
    def __init__(self, length: int, dim: int):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class TemporalTransformer(nn.Module):
    """``(B, L, D)`` frame features → ``(B, L, D)`` L2-normalised ``V``; identity (after
    normalisation) at initialisation.

    Args:
        dim: feature width D. cfg: :class:`TemporalConfig`.
    """

    def __init__(self, dim: int, cfg: TemporalConfig | None = None):
        super().__init__()
        cfg = cfg or TemporalConfig()
        if dim % cfg.heads:
            raise ConfigError(f"transfer.temporal.heads={cfg.heads} must divide the feature width {dim}")
        self.cfg = cfg
        self.dim = dim
        self.pos = POS_ENCODINGS.get(cfg.pos_encoding)(cfg.clip_length, dim)
        layer = nn.TransformerEncoderLayer(dim, cfg.heads, dim_feedforward=cfg.ff_mult * dim, dropout=cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        if cfg.mixing == "residual":
            self.out = nn.Linear(dim, dim)
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)
        elif cfg.mixing == "similarity_pool":
            self.sharpness = nn.Parameter(torch.zeros(()))
            self.offset_bias = nn.Parameter(torch.zeros(cfg.clip_length))
            self.gate = nn.Parameter(torch.zeros(()))
        else:
            # zero query: the pooling starts as the window mean (key random, so both learn); gate closed
            self.query = nn.Linear(dim, dim)
            self.key = nn.Linear(dim, dim)
            nn.init.zeros_(self.query.weight)
            nn.init.zeros_(self.query.bias)
            self.gate = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x (B, L, D)``, ``pad_mask (B, L)`` bool True = padded row → ``V (B, L, D)``."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ConfigError(f"temporal transformer expects (B, L, {self.dim}) features, got {tuple(x.shape)}")
        if x.shape[1] > self.cfg.clip_length:
            raise ConfigError(f"window of {x.shape[1]} rows is longer than clip_length={self.cfg.clip_length}")
        x = F.normalize(x, dim=-1)
        if self.cfg.mixing == "similarity_pool":
            ln = x.shape[1]
            off = (torch.arange(ln, device=x.device)[:, None] - torch.arange(ln, device=x.device)[None]).abs()
            att = 10 * self.sharpness * (x @ x.transpose(1, 2)) + self.offset_bias[off]
            if pad_mask is not None:
                att = att.masked_fill(pad_mask[:, None, :], float("-inf"))
            return F.normalize(x + 10 * self.gate * (torch.softmax(att, dim=-1) @ x), dim=-1)
        h = self.norm(self.encoder(self.pos(x), src_key_padding_mask=pad_mask))
        if self.cfg.mixing == "residual":
            return F.normalize(x + self.out(h), dim=-1)
        att = self.query(h) @ self.key(h).transpose(1, 2) / math.sqrt(self.dim)     # (B, L, L)
        if pad_mask is not None:
            att = att.masked_fill(pad_mask[:, None, :], float("-inf"))
        pooled = torch.softmax(att, dim=-1) @ x
        return F.normalize(x + 10 * self.gate * pooled, dim=-1)


def window_starts(n: int, clip_length: int, stride: int) -> list[int]:
    """Start rows of the sliding windows covering ``n`` rows (the last may run past the end)."""
    if n < 1:
        raise ConfigError("cannot window an empty video (0 rows)")
    starts = [0]
    while starts[-1] + clip_length < n:
        starts.append(starts[-1] + stride)
    return starts


def make_windows(x: torch.Tensor, clip_length: int, stride: int) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """``x (T, D)`` → windows ``(W, L, D)``, pad mask ``(W, L)`` (True = padding, repeats the
    last row) and the start row of each window."""
    n = x.shape[0]
    starts = window_starts(n, clip_length, stride)
    total = starts[-1] + clip_length
    idx = torch.arange(total).clamp(max=n - 1)
    padded = torch.arange(total) >= n
    ar = torch.arange(clip_length)
    rows = torch.stack([idx[s + ar] for s in starts])
    mask = torch.stack([padded[s + ar] for s in starts])
    return x[rows.to(x.device)], mask.to(x.device), starts


def sliding_window_forward(model: nn.Module, x: torch.Tensor, clip_length: int, stride: int,
                           batch_windows: int = 256) -> torch.Tensor:
    """Apply ``model`` (``(B, L, D), pad_mask → (B, L, D)``) over a whole video ``x (T, D)``.

    Overlapping outputs are averaged (then re-normalised); padded rows are dropped, so the result
    is ``(T, D)`` with exactly one output per row. Differentiable (used in training too).
    """
    n, d = x.shape
    wins, mask, starts = make_windows(x, clip_length, stride)
    outs = [model(wins[i:i + batch_windows], mask[i:i + batch_windows]) for i in range(0, len(starts), batch_windows)]
    out = torch.cat(outs)                                            # (W, L, D)
    rows = (torch.tensor(starts)[:, None] + torch.arange(clip_length)[None]).reshape(-1).to(x.device)
    keep = ~mask.reshape(-1)
    acc = torch.zeros(n, d, dtype=out.dtype, device=out.device).index_add(0, rows[keep], out.reshape(-1, d)[keep])
    cnt = torch.zeros(n, dtype=out.dtype, device=out.device).index_add(
        0, rows[keep], torch.ones(int(keep.sum()), dtype=out.dtype, device=out.device))
    return F.normalize(acc / cnt[:, None], dim=-1)


def coverage(n: int, clip_length: int, stride: int) -> np.ndarray:
    """How many windows cover each of ``n`` rows (padding excluded): ``(n,)`` int."""
    c = np.zeros(n, int)
    for s in window_starts(n, clip_length, stride):
        c[s:min(s + clip_length, n)] += 1
    return c
