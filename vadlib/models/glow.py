"""Glow (Kingma & Dhariwal 2018) in plain PyTorch, and a sklearn-style density wrapper.

Structure (methods.md §5.1): for each of ``L`` levels: squeeze (2×2 space-to-depth,
``C,H,W → 4C,H/2,W/2``; optional) → ``K`` flow steps (ActNorm → invertible 1×1 conv (LU option)
→ affine coupling with ``scale = sigmoid(h + 2)``) → except at the last level, split off half
the channels and score them under a Gaussian whose mean / log-std come from a zero-initialised
conv of the kept half. Top prior: a learned (zero-initialised) diagonal Gaussian.

``log p(x) = log N(z) + Σ log|det J|`` exactly. Inputs are continuous (optical flow, pose), so
there is no dequantisation term; :meth:`Glow.log_prob` is in nats per sample and
:class:`GlowDensity` reports nats per dimension.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vadlib.errors import ConfigError, DataError
from vadlib.io import atomic_path

LOG2PI = math.log(2 * math.pi)


def gaussian_logp(x: torch.Tensor, mean: torch.Tensor, logs: torch.Tensor) -> torch.Tensor:
    """Per-sample ``Σ log N(x; mean, exp(logs)²)`` over all non-batch dims → ``(B,)``."""
    lp = -0.5 * (LOG2PI + 2 * logs + (x - mean) ** 2 * torch.exp(-2 * logs))
    return lp.flatten(1).sum(1)


def squeeze2d(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) → (B, 4C, H/2, W/2)``."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, c * 4, h // 2, w // 2)


def unsqueeze2d(x: torch.Tensor) -> torch.Tensor:
    """``(B, 4C, H, W) → (B, C, 2H, 2W)`` (inverse of :func:`squeeze2d`)."""
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, h * 2, w * 2)


class ActNorm(nn.Module):
    """Per-channel ``y = (x + b)·exp(logs)``; data-dependent init on the first forward pass
    (zero mean, unit variance per channel); ``log|det| = H·W·Σ logs``."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True, unbiased=False) if x.numel() // x.shape[1] > 1 else torch.ones_like(mean)
        self.bias.data.copy_(-mean)
        self.logs.data.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x: torch.Tensor, logdet: torch.Tensor, reverse: bool = False):
        if not self.initialized and not reverse:
            self.initialize(x)
        hw = x.shape[2] * x.shape[3]
        if not reverse:
            return (x + self.bias) * torch.exp(self.logs), logdet + hw * self.logs.sum()
        return x * torch.exp(-self.logs) - self.bias, logdet - hw * self.logs.sum()


class InvConv1x1(nn.Module):
    """Invertible 1×1 convolution, ``W`` initialised as a random rotation (QR).

    ``lu=True``: ``W = P·L·(U + diag(sign(s)·exp(log|s|)))`` with ``P`` fixed, ``L`` unit lower,
    ``U`` strictly upper; ``log|det| = H·W·Σ log|s|``. Otherwise ``log|det| = H·W·log|det W|``.
    """

    def __init__(self, channels: int, lu: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
        self.lu = lu
        if lu:
            p, l, u = torch.linalg.lu(q)
            s = torch.diagonal(u)
            self.register_buffer("p", p)
            self.register_buffer("sign_s", torch.sign(s))
            self.register_buffer("l_mask", torch.tril(torch.ones(channels, channels), -1))
            self.register_buffer("eye", torch.eye(channels))
            self.l = nn.Parameter(l)
            self.log_s = nn.Parameter(torch.log(torch.abs(s)))
            self.u = nn.Parameter(torch.triu(u, 1))
        else:
            self.weight = nn.Parameter(q)

    def _weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.lu:
            l = self.l * self.l_mask + self.eye
            u = self.u * self.l_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
            return self.p @ l @ u, self.log_s.sum()
        return self.weight, torch.slogdet(self.weight)[1]

    def forward(self, x: torch.Tensor, logdet: torch.Tensor, reverse: bool = False):
        w, dlog = self._weight()
        hw = x.shape[2] * x.shape[3]
        if not reverse:
            return F.conv2d(x, w[:, :, None, None]), logdet + hw * dlog
        return F.conv2d(x, torch.inverse(w)[:, :, None, None]), logdet - hw * dlog


class ZeroConv2d(nn.Module):
    """3×3 conv initialised to zero, output multiplied by ``exp(3·logs)`` (Glow's Conv2dZeros)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv.weight.data.zero_()
        self.conv.bias.data.zero_()
        self.logs = nn.Parameter(torch.zeros(1, cout, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * torch.exp(self.logs * 3)


class ConvActNorm(nn.Module):
    """Conv (no bias) → ActNorm (Glow's Conv2d with actnorm)."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.conv.weight.data.normal_(0.0, 0.05)
        self.norm = ActNorm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x), x.new_zeros(()))[0]


class AffineCoupling(nn.Module):
    """``(z1, z2) → (z1, (z2 + shift)·sigmoid(raw + 2))``, ``shift, raw`` = interleaved channels of
    ``NN(z1)``; NN = Conv3×3 → ReLU → Conv1×1 → ReLU → zero-init Conv3×3."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        if channels < 2:
            raise ConfigError(f"affine coupling needs >= 2 channels, got {channels}")
        self.c1 = channels // 2
        c2 = channels - self.c1
        self.nn = nn.Sequential(ConvActNorm(self.c1, hidden, 3), nn.ReLU(), ConvActNorm(hidden, hidden, 1), nn.ReLU(),
                                ZeroConv2d(hidden, 2 * c2))

    def forward(self, x: torch.Tensor, logdet: torch.Tensor, reverse: bool = False):
        z1, z2 = x[:, :self.c1], x[:, self.c1:]
        h = self.nn(z1)
        shift, raw = h[:, 0::2], h[:, 1::2]
        scale = torch.sigmoid(raw + 2.0) + 1e-6
        dlog = torch.log(scale).flatten(1).sum(1)
        if not reverse:
            return torch.cat([z1, (z2 + shift) * scale], 1), logdet + dlog
        return torch.cat([z1, z2 / scale - shift], 1), logdet - dlog


class FlowStep(nn.Module):
    def __init__(self, channels: int, hidden: int, lu: bool, generator: torch.Generator | None):
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(channels), InvConv1x1(channels, lu, generator),
                                     AffineCoupling(channels, hidden)])

    def forward(self, x, logdet, reverse: bool = False):
        for layer in (reversed(self.layers) if reverse else self.layers):
            x, logdet = layer(x, logdet, reverse)
        return x, logdet


class Split(nn.Module):
    """Keep half the channels; score the other half under ``N(mean, exp(logs))`` from a zero conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.keep = channels // 2
        self.prior = ZeroConv2d(self.keep, 2 * (channels - self.keep))

    def forward(self, x):
        z1, z2 = x[:, :self.keep], x[:, self.keep:]
        h = self.prior(z1)
        mean, logs = h[:, 0::2], h[:, 1::2]
        return z1, z2, gaussian_logp(z2, mean, logs)

    def reverse(self, z1, z2):
        return torch.cat([z1, z2], 1)


@dataclass
class GlowConfig:
    """``in_shape = (C, H, W)``; ``K`` steps per level, ``L`` levels; ``squeeze=False`` keeps the
    spatial size (e.g. vectors as ``(D, 1, 1)``, where every conv acts as a linear layer)."""

    in_shape: tuple[int, int, int]
    K: int = 8
    L: int = 1
    hidden: int = 128
    lu: bool = True
    squeeze: bool = True
    seed: int = 0


class Glow(nn.Module):
    """Multi-scale Glow; :meth:`log_prob` is the exact log-likelihood ``(B,)`` in nats."""

    def __init__(self, cfg: GlowConfig):
        super().__init__()
        self.cfg = cfg
        c, h, w = cfg.in_shape
        if cfg.squeeze and (h % (2 ** cfg.L) or w % (2 ** cfg.L)):
            raise ConfigError(f"Glow with L={cfg.L} squeezes need H and W divisible by {2 ** cfg.L}, got {h}×{w}")
        if cfg.K < 1 or cfg.L < 1:
            raise ConfigError(f"Glow needs K >= 1 and L >= 1, got K={cfg.K}, L={cfg.L}")
        gen = torch.Generator().manual_seed(cfg.seed)
        self.levels = nn.ModuleList()
        self.splits = nn.ModuleList()
        for lvl in range(cfg.L):
            if cfg.squeeze:
                c, h, w = c * 4, h // 2, w // 2
            self.levels.append(nn.ModuleList([FlowStep(c, cfg.hidden, cfg.lu, gen) for _ in range(cfg.K)]))
            if lvl < cfg.L - 1:
                self.splits.append(Split(c))
                c = c // 2
        self.top_shape = (c, h, w)
        self.top = nn.Parameter(torch.zeros(1, 2 * c, h, w))  # learned top prior (zero init)

    def forward(self, x: torch.Tensor):
        """``x (B, C, H, W)`` → (list of latents, ``log|det|`` ``(B,)``, prior log-density ``(B,)``)."""
        logdet = x.new_zeros(x.shape[0])
        logp = x.new_zeros(x.shape[0])
        zs = []
        for lvl, steps in enumerate(self.levels):
            if self.cfg.squeeze:
                x = squeeze2d(x)
            for step in steps:
                x, logdet = step(x, logdet)
            if lvl < len(self.splits):
                x, z2, lp = self.splits[lvl](x)
                zs.append(z2)
                logp = logp + lp
        mean, logs = self.top[:, 0::2], self.top[:, 1::2]
        logp = logp + gaussian_logp(x, mean.expand_as(x), logs.expand_as(x))
        zs.append(x)
        return zs, logdet, logp

    def reverse(self, zs: list[torch.Tensor]) -> torch.Tensor:
        """Latents (as returned by :meth:`forward`) → ``x``."""
        x = zs[-1]
        logdet = x.new_zeros(x.shape[0])
        for lvl in reversed(range(len(self.levels))):
            if lvl < len(self.splits):
                x = self.splits[lvl].reverse(x, zs[lvl])
            for step in reversed(self.levels[lvl]):
                x, logdet = step(x, logdet, reverse=True)
            if self.cfg.squeeze:
                x = unsqueeze2d(x)
        return x

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact ``log p(x)`` ``(B,)`` in nats (no dequantisation term: continuous inputs)."""
        _, logdet, logp = self(x)
        return logp + logdet


class GlowDensity:
    """sklearn-style density model on ``(N, C, H, W)`` (or ``(N, D)``, treated as ``(D, 1, 1)``
    without squeeze) arrays: :meth:`fit`, :meth:`score_samples` → ``(N,)`` log-likelihood in nats
    per dimension, higher = more normal.

    Inputs are divided by a global ``scale`` (std of the training data, a training statistic).
    ``val_fraction`` of the training samples is held out to pick the best epoch by NLL.
    ``noise``: std of Gaussian noise (input units) added to training batches — dequantisation
    for inputs stored on a grid (cached flow is quantised to 1/32 px, and exact zeros of static
    pixels would otherwise let the flow put density spikes on the grid).
    """

    def __init__(self, K: int = 8, L: int = 1, hidden: int = 128, lu: bool = True, squeeze: bool = True,
                 epochs: int = 10, batch_size: int = 256, lr: float = 1e-3, weight_decay: float = 5e-5,
                 val_fraction: float = 0.1, max_grad_norm: float = 100.0, noise: float = 0.0, seed: int = 0,
                 verbose: bool = False):
        self.K, self.L, self.hidden, self.lu, self.squeeze = K, L, hidden, lu, squeeze
        self.epochs, self.batch_size, self.lr, self.weight_decay = epochs, batch_size, lr, weight_decay
        self.val_fraction, self.max_grad_norm, self.seed, self.verbose = val_fraction, max_grad_norm, seed, verbose
        self.noise = noise
        self.model_: Glow | None = None
        self.scale_: float = 1.0
        self.history_: list[dict] = []

    def _params(self) -> dict:
        return {k: getattr(self, k) for k in ("K", "L", "hidden", "lu", "squeeze", "epochs", "batch_size", "lr",
                                              "weight_decay", "val_fraction", "max_grad_norm", "noise", "seed")}

    def _prep(self, X) -> torch.Tensor:
        X = np.asarray(X, np.float32)
        if X.ndim == 2:
            X = X[:, :, None, None]
        if X.ndim != 4:
            raise DataError(None, f"GlowDensity expects (N, C, H, W) or (N, D) samples, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise DataError(None, "GlowDensity: samples contain NaN/inf")
        return torch.from_numpy(X / self.scale_)

    def fit(self, X) -> "GlowDensity":
        """Maximum-likelihood training on normal samples ``X``; returns self."""
        X = np.asarray(X, np.float32)
        if len(X) < 2:
            raise DataError(None, f"GlowDensity.fit needs at least 2 samples, got {len(X)}")
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.scale_ = float(np.std(X)) or 1.0
        x = self._prep(X)
        perm = rng.permutation(len(x))
        n_val = int(round(self.val_fraction * len(x))) if len(x) >= 20 else 0
        val, tr = x[perm[:n_val]], x[perm[n_val:]]
        shape = tuple(x.shape[1:])
        squeeze = self.squeeze and shape[1] > 1
        self.model_ = Glow(GlowConfig(shape, self.K, self.L, self.hidden, self.lu, squeeze, self.seed))
        model = self.model_
        with torch.no_grad():  # data-dependent ActNorm init on up to 512 samples
            model(tr[torch.from_numpy(rng.permutation(len(tr))[:512])])
        opt = torch.optim.Adamax(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        n_batches = max(1, math.ceil(len(tr) / self.batch_size))
        warm = max(1, n_batches)  # linear warm-up over the first epoch
        best, best_state, step = math.inf, None, 0
        dims = float(np.prod(shape))
        for ep in range(self.epochs):
            model.train()
            order = torch.from_numpy(rng.permutation(len(tr)))
            tot = 0.0
            for b in range(n_batches):
                xb = tr[order[b * self.batch_size:(b + 1) * self.batch_size]]
                if self.noise:  # dequantisation: Gaussian noise of std `noise` (input units)
                    xb = xb + torch.randn_like(xb) * (self.noise / self.scale_)
                for g in opt.param_groups:
                    g["lr"] = self.lr * min(1.0, (step + 1) / warm)
                loss = -model.log_prob(xb).mean() / dims
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), self.max_grad_norm)
                opt.step()
                step += 1
                tot += float(loss.detach()) * len(xb)
            rec = {"epoch": ep + 1, "train_nll": tot / len(tr)}
            if n_val:
                rec["val_nll"] = -float(self._score(val).mean())
                if rec["val_nll"] < best:
                    best = rec["val_nll"]
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            self.history_.append(rec)
            if self.verbose:
                print(f"glow epoch {ep + 1}: " + ", ".join(f"{k}={v:.4f}" for k, v in rec.items() if k != "epoch"))
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return self

    @torch.no_grad()
    def _score(self, x: torch.Tensor, batch: int = 1024) -> np.ndarray:
        self.model_.eval()
        dims = float(np.prod(x.shape[1:]))
        out = [self.model_.log_prob(x[i:i + batch]) / dims for i in range(0, len(x), batch)]
        return (torch.cat(out) if out else torch.zeros(0)).numpy().astype(np.float64) + math.log(self.scale_) * -1.0

    def score_samples(self, X) -> np.ndarray:
        """``(N,)`` log-likelihood per dimension (nats/dim) of the ORIGINAL-scale samples."""
        if self.model_ is None:
            raise ConfigError("GlowDensity.score_samples called before fit")
        return self._score(self._prep(X))

    def state(self) -> dict:
        """A ``torch.load(weights_only=True)``-compatible dict: tensors and plain Python values."""
        cfg = asdict(self.model_.cfg)
        cfg["in_shape"] = list(cfg["in_shape"])
        return {"kind": "glow", "params": self._params(), "config": cfg, "scale": self.scale_,
                "state_dict": self.model_.state_dict(), "history": self.history_}

    @classmethod
    def from_state(cls, state: dict) -> "GlowDensity":
        obj = cls(**state["params"])
        cfg = dict(state["config"])
        cfg["in_shape"] = tuple(cfg["in_shape"])
        obj.model_ = Glow(GlowConfig(**cfg))
        obj.model_.load_state_dict(state["state_dict"])
        obj.model_.eval()
        obj.scale_ = float(state["scale"])
        obj.history_ = list(state.get("history", []))
        return obj

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:   # a file object: the archive is named "archive", not after the temp file
                torch.save(self.state(), fh)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "GlowDensity":
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "Glow model file does not exist")
        return cls.from_state(torch.load(path, map_location="cpu", weights_only=True))
