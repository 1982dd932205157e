"""Weakly supervised MIL baselines over per-frame features (methods.md §4.2–4.3).

* :class:`SultaniMIL` — Sultani et al. CVPR 2018: each video = a bag of 32 segment features
  (mean of the L2-normalised frame features of 32 equal stretches); MLP ``D→512→32→1``
  (dropout 0.6, sigmoid); loss = ranking hinge ``max(0, 1 − max s(a) + max s(n))`` summed over
  abnormal bags and averaged over normal bags + sparsity ``8e-5·Σ s(a)`` + smoothness
  ``8e-5·Σ (s(a_i) − s(a_{i+1}))²`` (inside each bag only) + L2 ``1e-3·Σ‖W‖²``; Adagrad lr 0.01.
  Test: the 32 segment scores are given to the frames of their segment.
* :class:`RTFM` — RTFM-style feature-magnitude top-k (Tian et al. ICCV 2021), SIMPLIFIED: the
  multi-scale temporal network keeps the three dilated Conv1d (d = 1, 2, 4) + 1×1 branch, the
  fusing Conv1d and the residual, but omits the non-local block; classifier ``D→512→128→1``,
  dropout 0.7. Selection: top-k (k = 3) segments by the L2 norm of the embedded features, with
  dropout 0.7 on the selection (always ≥ k kept). Loss: BCE of the mean top-k score vs the video
  label + ``α·(|m − ‖mean_topk f_abn‖| + ‖mean_topk f_nor‖)²`` (α = 1e-4, m = 100) + smoothness
  8e-4 (per video; the reference's cross-video tie is not reproduced) + sparsity 8e-3 on abnormal
  scores; Adam lr 1e-3, weight decay 5e-3. Test: 16-frame snippets over the whole video.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vadlib.errors import ConfigError, DataError
from vadlib.methods.base import read_presets


@dataclass
class MILConfig:
    """Hyperparameters of the MIL baselines (defaults = Sultani's)."""

    num_segments: int = 32
    hidden: int = 512
    dropout: float = 0.6
    normalize_frames: bool = True
    w_smooth: float = 8e-5
    w_sparse: float = 8e-5
    w_l2: float = 1e-3
    # RTFM-only
    topk: int = 3
    select_dropout: float = 0.7
    alpha: float = 1e-4
    margin: float = 100.0
    snippet: int = 16
    # optimisation (vadlib.train)
    optimizer: str = "adagrad"    # adagrad | adam
    lr: float = 0.01
    weight_decay: float = 0.0
    epochs: int = 50
    warmup_epochs: int = 0
    schedule: str = "constant"    # constant | cosine
    batch_size: int = 60

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "MILConfig":
        from vadlib.config import check

        cfg = check(cls, d, "MIL config")         # unknown keys and wrong types raise ConfigError
        if cfg.optimizer not in ("adagrad", "adam"):
            raise ConfigError(f"MIL config: optimizer must be adagrad or adam, got {cfg.optimizer!r}")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


# the papers' settings, as preset files (presets/sultani.yaml, presets/rtfm.yaml)
_PRESETS = read_presets(Path(__file__).with_name("presets"))
SULTANI: dict = _PRESETS["sultani"]
RTFM_CFG: dict = _PRESETS["rtfm"]


def segment_means(f: np.ndarray, n: int = 32, normalize: bool = False) -> np.ndarray:
    """``(T, D)`` frame features → ``(n, D)``: mean over n equal stretches (a stretch of a video
    shorter than n frames is its nearest frame, i.e. frames repeat)."""
    f = np.asarray(f, np.float32)
    if normalize:
        f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    T = f.shape[0]
    edges = np.linspace(0, T, n + 1)
    out = np.empty((n, f.shape[1]), np.float32)
    for i in range(n):
        a = int(np.floor(edges[i]))
        b = max(a + 1, int(np.floor(edges[i + 1])))
        out[i] = f[min(a, T - 1):min(b, T)].mean(0)
    return out


def segment_of_frame(T: int, n: int) -> np.ndarray:
    """``(T,)`` segment id of each frame for n equal stretches (consistent with :func:`segment_means`)."""
    edges = np.linspace(0, T, n + 1)
    seg = np.searchsorted(edges, np.arange(T), side="right") - 1
    return np.clip(seg, 0, n - 1)


def smooth_within(s: torch.Tensor) -> torch.Tensor:
    """``Σ (s_{i+1} − s_i)²`` along the last axis of ``(B, N)``, never across rows (videos)."""
    return ((s[:, 1:] - s[:, :-1]) ** 2).sum()


class SultaniNet(nn.Module):
    """``(…, D)`` → ``(…)`` scores in (0, 1)."""

    def __init__(self, dim: int, hidden: int = 512, dropout: float = 0.6):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(dim, hidden), nn.Linear(hidden, 32), nn.Linear(32, 1)
        self.drop = nn.Dropout(dropout)
        for m in (self.fc1, self.fc2, self.fc3):
            nn.init.xavier_normal_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(F.relu(self.fc1(x)))
        h = self.drop(self.fc2(h))
        return torch.sigmoid(self.fc3(h)).squeeze(-1)


def sultani_loss(s_abn: torch.Tensor, s_nor: torch.Tensor, cfg: MILConfig,
                 net: nn.Module | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Sultani ranking loss on bag scores ``s_abn`` (Ba, N), ``s_nor`` (Bn, N)."""
    hinge = F.relu(1.0 - s_abn.max(1).values[:, None] + s_nor.max(1).values[None, :])   # (Ba, Bn)
    terms = {"hinge": hinge.mean(1).sum(), "sparse": s_abn.sum(), "smooth": smooth_within(s_abn)}
    l2 = sum((m.weight ** 2).sum() for m in net.modules() if isinstance(m, nn.Linear)) if net is not None \
        else s_abn.sum() * 0
    terms["l2"] = l2
    total = terms["hinge"] + cfg.w_sparse * terms["sparse"] + cfg.w_smooth * terms["smooth"] + cfg.w_l2 * l2
    return total, {k: float(v.detach()) for k, v in terms.items()}


class MTN(nn.Module):
    """RTFM's multi-scale temporal network without the non-local block: ``(B, N, D)`` → ``(B, N, D)``."""

    def __init__(self, dim: int, width: int = 512):
        super().__init__()
        self.d1 = nn.Conv1d(dim, width, 3, padding=1, dilation=1)
        self.d2 = nn.Conv1d(dim, width, 3, padding=2, dilation=2)
        self.d4 = nn.Conv1d(dim, width, 3, padding=4, dilation=4)
        self.p = nn.Conv1d(dim, width, 1)
        self.fuse = nn.Conv1d(4 * width, dim, 3, padding=1)
        self.bn = nn.ModuleList([nn.BatchNorm1d(width) for _ in range(3)] + [nn.BatchNorm1d(dim)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        b = [F.relu(bn(c(h))) for c, bn in zip((self.d1, self.d2, self.d4), self.bn)]
        cat = torch.cat(b + [F.relu(self.p(h))], 1)
        out = F.relu(self.bn[3](self.fuse(cat))) + h
        return out.transpose(1, 2)


class RTFMNet(nn.Module):
    """``(B, N, D)`` → (scores (B, N), embedded features (B, N, D))."""

    def __init__(self, dim: int, hidden: int = 512, dropout: float = 0.7):
        super().__init__()
        self.mtn = MTN(dim, hidden)
        self.drop = nn.Dropout(dropout)
        self.cls = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.drop(self.mtn(x))
        return torch.sigmoid(self.cls(f)).squeeze(-1), f


def topk_by_magnitude(feats: torch.Tensor, k: int, drop: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """``(B, N, D)`` → ``(B, k)`` indices of the k largest-norm segments among those kept by a
    dropout mask (always ≥ k kept, so a dropped segment is never selected)."""
    from vadlib.methods.anomalyclip.model import mil_keep_mask, select_segments

    B, N, _ = feats.shape
    keep = mil_keep_mask(B, N, drop, k, gen)
    return select_segments(feats.norm(dim=-1), keep, k, largest=True)


def rtfm_loss(s_abn, f_abn, s_nor, f_nor, cfg: MILConfig, gen: torch.Generator | None = None):
    """RTFM loss on scores (B, N) and embedded features (B, N, D) of the two halves."""
    k = cfg.topk
    ia = topk_by_magnitude(f_abn, k, cfg.select_dropout, gen)
    inn = topk_by_magnitude(f_nor, k, cfg.select_dropout, gen)
    sa = s_abn.gather(1, ia).mean(1)
    sn = s_nor.gather(1, inn).mean(1)
    fa = f_abn.gather(1, ia[..., None].expand(-1, -1, f_abn.shape[-1])).mean(1).norm(dim=-1)
    fn = f_nor.gather(1, inn[..., None].expand(-1, -1, f_nor.shape[-1])).mean(1).norm(dim=-1)
    scores = torch.cat([sa, sn]).clamp(1e-7, 1 - 1e-7)
    y = torch.cat([torch.ones_like(sa), torch.zeros_like(sn)])
    terms = {"bce": F.binary_cross_entropy(scores, y),
             "magnitude": ((torch.abs(cfg.margin - fa) + fn) ** 2).mean(),
             "smooth": smooth_within(s_abn), "sparse": s_abn.mean()}
    total = terms["bce"] + cfg.alpha * terms["magnitude"] + cfg.w_smooth * terms["smooth"] \
        + cfg.w_sparse * terms["sparse"]
    return total, {k_: float(v.detach()) for k_, v in terms.items()}


def _check(name: str, f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, np.float32)
    if f.ndim != 2 or f.shape[0] == 0:
        raise DataError(None, f"video '{name}': features must be (T, D) with T ≥ 1, got {f.shape}")
    if not np.isfinite(f).all():
        raise DataError(None, f"video '{name}': features contain NaN or inf")
    return f


@torch.no_grad()
def predict_sultani(net: SultaniNet, videos: Mapping[str, np.ndarray], cfg: MILConfig) -> dict[str, np.ndarray]:
    """``{video: (T, D)}`` → ``{video: (T,)}``: each frame gets its segment's score."""
    net.eval()
    out = {}
    for name, f in videos.items():
        f = _check(name, f)
        s = net(torch.from_numpy(segment_means(f, cfg.num_segments, cfg.normalize_frames))).numpy()
        out[name] = s[segment_of_frame(f.shape[0], cfg.num_segments)].astype(np.float32)
    return out


@torch.no_grad()
def predict_rtfm(net: RTFMNet, videos: Mapping[str, np.ndarray], cfg: MILConfig) -> dict[str, np.ndarray]:
    """``{video: (T, D)}`` → ``{video: (T,)}``: scores of 16-frame snippets over the whole video."""
    net.eval()
    out = {}
    for name, f in videos.items():
        f = _check(name, f)
        T = f.shape[0]
        n = max(1, int(np.ceil(T / cfg.snippet)))
        x = segment_means(f, n, cfg.normalize_frames)
        s, _ = net(torch.from_numpy(x)[None])
        out[name] = s[0].numpy()[segment_of_frame(T, n)].astype(np.float32)
    return out
