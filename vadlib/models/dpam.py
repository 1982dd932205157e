"""Patch-level anomaly maps with DPAM (Zhou et al., ICLR 2024; methods.md §3.1–3.3).

DPAM = a second, V–V self-attention path in the last ``n_layers`` blocks of the open_clip ViT
image encoder (open_clip 3.3 ``VisionTransformer`` / ``ResidualAttentionBlock``, re-implemented
forward, same weights):

* the original path runs the blocks unchanged (→ the global image embedding, identical to
  ``model.encode_image``);
* the DPAM path starts as the original tokens entering the first DPAM block and, at every DPAM
  block, adds ``ls_1(VV(ln_1(x_orig)))`` where ``VV`` is multi-head attention with
  ``q = k = v = W_v · x + b_v`` followed by the block's ``out_proj`` (no MLP on this path);
* patch tokens of the DPAM path → ``ln_post`` → ``proj`` → cosine with the normal / abnormal
  text features → 2-way softmax at τ = 0.07 → bilinear upsampling to the frame size.

Frames are resized whole (no centre crop) to the encoder's input size, so map pixel (i, j)
corresponds to frame pixel (i, j) after upsampling. Loss where pixel masks exist:
focal (γ = 2) + Dice(S_a, M) + Dice(S_n, 1 − M) (:func:`local_loss`), total
``L_global + λ · L_local`` with λ = 4 (:func:`dpam_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from vadlib.errors import ConfigError


def _check_visual(visual: nn.Module) -> None:
    from open_clip.transformer import ResidualAttentionBlock, VisionTransformer

    if not isinstance(visual, VisionTransformer):
        raise ConfigError(f"DPAM needs an open_clip VisionTransformer image encoder, got {type(visual).__name__}")
    if getattr(visual, "attn_pool", None) is not None:
        raise ConfigError("DPAM: attentional-pooling ViTs (CoCa) are not supported")
    if not visual.transformer.batch_first:
        raise ConfigError("DPAM: the ViT transformer must be batch_first (open_clip >= 2.24 default)")
    for blk in visual.transformer.resblocks:
        if not isinstance(blk, ResidualAttentionBlock) or not isinstance(blk.attn, nn.MultiheadAttention):
            raise ConfigError("DPAM: only open_clip ResidualAttentionBlock with nn.MultiheadAttention is supported")


def vv_attention(attn: nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
    """V–V self-attention with ``attn``'s weights: ``x (B, N, W)`` → ``(B, N, W)``."""
    b, n, w = x.shape
    h = attn.num_heads
    hd = w // h
    wv = attn.in_proj_weight[2 * w:]
    bv = attn.in_proj_bias[2 * w:] if attn.in_proj_bias is not None else None
    v = F.linear(x, wv, bv).view(b, n, h, hd).transpose(1, 2)            # (B, h, N, hd)
    a = torch.softmax(v @ v.transpose(-1, -2) * hd ** -0.5, dim=-1)       # (B, h, N, N)
    out = (a @ v).transpose(1, 2).reshape(b, n, w)
    return attn.out_proj(out)


@dataclass
class DPAMOutput:
    """``image (B, D)`` global embeddings (= ``encode_image``), ``patches (B, P, D)`` projected
    DPAM patch tokens, ``grid (gh, gw)`` with ``P = gh · gw`` (row-major)."""

    image: torch.Tensor
    patches: torch.Tensor
    grid: tuple[int, int]


class DPAMEncoder(nn.Module):
    """Dual-path forward over a frozen open_clip ViT.

    Args:
        backbone: a :class:`~vadlib.features.backbone.Backbone` (or anything with ``.model.visual``).
        n_layers: how many of the last blocks get the V–V path (Zhou: 19 of 24 for ViT-L/14;
            clipped to the encoder's depth).
    """

    def __init__(self, backbone, n_layers: int = 19):
        super().__init__()
        visual = backbone.model.visual
        _check_visual(visual)
        self._visual = [visual]
        depth = len(visual.transformer.resblocks)
        if n_layers < 1:
            raise ConfigError(f"dpam n_layers must be >= 1 (got {n_layers})")
        self.n_layers = min(n_layers, depth)
        self.first = depth - self.n_layers

    @property
    def visual(self) -> nn.Module:
        return self._visual[0]

    def forward(self, images: torch.Tensor) -> DPAMOutput:
        """``images (B, 3, S, S)`` preprocessed → :class:`DPAMOutput`."""
        vis = self.visual
        b, _, hgt, wid = images.shape
        x = vis._embeds(images.to(vis.conv1.weight.dtype))  # a bf16-cast tower (backbone.precision) takes bf16
        dpam = None
        for i, blk in enumerate(vis.transformer.resblocks):
            if i >= self.first:
                if dpam is None:
                    dpam = x
                dpam = dpam + blk.ls_1(vv_attention(blk.attn, blk.ln_1(x)))
            x = blk(x)
        pooled, _ = vis._pool(x)
        if vis.proj is not None:
            pooled = pooled @ vis.proj
        tokens = vis.ln_post(dpam[:, 1:])
        if vis.proj is not None:
            tokens = tokens @ vis.proj
        grid = (hgt // vis.patch_size[0], wid // vis.patch_size[1])
        return DPAMOutput(image=pooled.float(), patches=tokens.float(), grid=grid)


def preprocess_frames(frames: np.ndarray, image_size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(T, H, W, 3)`` or ``(T, H, W)`` uint8 → ``(T, 3, S, S)`` float: whole-frame bilinear resize
    (no crop, so maps align with frames), grayscale replicated to 3 channels, CLIP normalisation."""
    x = torch.as_tensor(np.asarray(frames))
    if x.ndim == 3:
        x = x[..., None].expand(*x.shape, 3)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ConfigError(f"frames must be (T, H, W[, 3]) images, got shape {tuple(x.shape)}")
    if x.shape[-1] == 1:
        x = x.expand(*x.shape[:3], 3)
    x = x.permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    m = torch.tensor(mean, dtype=x.dtype)[None, :, None, None]
    s = torch.tensor(std, dtype=x.dtype)[None, :, None, None]
    return (x - m) / s


def patch_probabilities(patches: torch.Tensor, text: torch.Tensor, grid: tuple[int, int],
                        tau: float = 0.07) -> torch.Tensor:
    """``patches (B, P, D)``, ``text (2, D)`` (normal, abnormal) → ``(B, 2, gh, gw)`` softmax over
    ``[cos(f_p, F_n), cos(f_p, F_a)] / tau``."""
    b, p, _ = patches.shape
    if p != grid[0] * grid[1]:
        raise ConfigError(f"{p} patch tokens do not fill a {grid[0]}x{grid[1]} grid")
    logits = F.normalize(patches, dim=-1) @ F.normalize(text, dim=-1).T / tau     # (B, P, 2)
    return torch.softmax(logits, -1).transpose(1, 2).reshape(b, 2, *grid)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, C, gh, gw)`` → ``(B, C, H, W)`` bilinear (half-pixel centres, as the frame resize)."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def gaussian_blur_maps(maps: np.ndarray, sigma: float) -> np.ndarray:
    """Per-frame 2-D Gaussian (Zhou: σ = 4 px) of ``(T, H, W)`` maps; σ = 0 → unchanged."""
    if not sigma:
        return maps
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(m, sigma) for m in maps]).astype(maps.dtype)


@torch.no_grad()
def frame_anomaly_maps(encoder: DPAMEncoder, frames: np.ndarray, text: torch.Tensor, image_size: int,
                       mean: Sequence[float], std: Sequence[float], tau: float = 0.07,
                       batch_size: int = 16, sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(T, H, W[, 3])`` uint8 → ``(maps (T, H, W) float32 = S_a`` at frame resolution,
    ``global (T,)`` = P_g[abnormal] per frame).``"""
    t = len(frames)
    h, w = np.asarray(frames).shape[1:3]
    dev = text.device
    out_maps, out_glob = [], []
    for i in range(0, t, batch_size):
        x = preprocess_frames(frames[i:i + batch_size], image_size, mean, std).to(dev)
        o = encoder(x)
        p = patch_probabilities(o.patches.float(), text.float(), o.grid, tau)
        out_maps.append(upsample_maps(p, (h, w))[:, 1].cpu().numpy())
        g = torch.softmax(F.normalize(o.image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T / tau, -1)
        out_glob.append(g[:, 1].cpu().numpy())
    maps = np.concatenate(out_maps).astype(np.float32) if out_maps else np.zeros((0, h, w), np.float32)
    return gaussian_blur_maps(maps, sigma), (np.concatenate(out_glob) if out_glob else np.zeros(0, np.float32))


def video_anomaly_maps(encoder: DPAMEncoder, video, text: torch.Tensor, backbone, tau: float = 0.07,
                       batch_size: int = 16, sigma: float = 0.0, frames: Sequence[int] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps ``(T, H, W)`` and global scores ``(T,)`` for a dataset :class:`Video`
    (every frame, or ``frames``), aligned with ``video.masks()``."""
    src = video.open()
    idx = list(range(len(src))) if frames is None else list(frames)
    maps, glob = [], []
    for i in range(0, len(idx), batch_size):
        m, g = frame_anomaly_maps(encoder, src.get(idx[i:i + batch_size]), text, backbone.image_size,
                                  backbone.mean, backbone.std, tau, batch_size, sigma)
        maps.append(m)
        glob.append(g)
    return np.concatenate(maps), np.concatenate(glob)


# --------------------------------------------------------------------------- losses
def focal_loss(probs: torch.Tensor, mask: torch.Tensor, gamma: float = 2.0, smooth: float = 1e-5) -> torch.Tensor:
    """Focal loss on softmax ``probs (B, 2, H, W)`` vs binary ``mask (B, H, W)`` (Zhou's
    ``FocalLoss``: one-hot targets clamped to [smooth, 1 − smooth], ``pt = Σ onehot·p + smooth``)."""
    tgt = mask.long().clamp(0, 1)
    onehot = F.one_hot(tgt, 2).permute(0, 3, 1, 2).to(probs.dtype).clamp(smooth, 1.0 - smooth)
    pt = (onehot * probs).sum(1) + smooth
    return (-(1 - pt) ** gamma * pt.log()).mean()


def dice_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary Dice loss ``1 − (2·Σ p·t + 1) / (Σ p + Σ t + 1)`` per image, averaged; ``(B, H, W)``."""
    p, t = pred.flatten(1), target.flatten(1).to(pred.dtype)
    return (1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)).mean()


def local_loss(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Focal(S, M) + Dice(S_a, M) + Dice(S_n, 1 − M) for ``probs (B, 2, H, W)``, ``mask (B, H, W)``."""
    m = (mask > 0).to(probs.dtype)
    return focal_loss(probs, m) + dice_loss(probs[:, 1], m) + dice_loss(probs[:, 0], 1 - m)


def dpam_loss(encoder: DPAMEncoder, text: torch.Tensor, images: torch.Tensor, labels: torch.Tensor,
              masks: torch.Tensor | None = None, tau: float = 0.07, lam: float = 4.0) -> torch.Tensor:
    """Zhou's objective for one batch: CE of the global 2-way softmax vs image ``labels (B,)``
    plus ``lam`` · :func:`local_loss` of the upsampled patch map vs ``masks (B, S, S)`` (omitted
    when None). ``text (2, D)`` comes from a :class:`PromptLearner` (gradients reach its contexts)."""
    o = encoder(images)
    t = F.normalize(text, dim=-1)
    logits = F.normalize(o.image, dim=-1) @ t.T / tau
    loss = F.cross_entropy(logits, labels.long())
    if masks is not None:
        p = upsample_maps(patch_probabilities(o.patches, text, o.grid, tau), tuple(masks.shape[-2:]))
        loss = loss + lam * local_loss(p, masks)
    return loss


def evaluate_maps(encoder: DPAMEncoder, videos: Sequence, text: torch.Tensor, backbone, tau: float = 0.07,
                  sigma: float = 0.0, batch_size: int = 16, max_frames: int | None = None) -> dict:
    """Pixel AUROC and AUPRO (``vadlib.metrics``, exact-to-0.3 AUPRO) of DPAM maps against the
    pixel masks of ``videos`` (dataset :class:`Video` records with ``masks()``).

    ``max_frames``: evenly spaced frames per video (None = all). Returns ``pixel_auroc``,
    ``aupro``, ``n_frames``, ``videos`` and the settings.
    """
    from vadlib.metrics import aupro, pixel_auroc

    maps, masks = {}, {}
    for v in videos:
        m = v.masks()
        idx = np.arange(len(m)) if not max_frames or len(m) <= max_frames else \
            np.linspace(0, len(m) - 1, max_frames).round().astype(int)
        maps[v.name], _ = video_anomaly_maps(encoder, v, text, backbone, tau, batch_size, sigma, frames=idx)
        masks[v.name] = m[idx]
    return {"pixel_auroc": float(pixel_auroc(masks, maps)), "aupro": float(aupro(masks, maps)),
            "n_frames": int(sum(len(m) for m in masks.values())), "videos": list(maps),
            "dpam_layers": encoder.n_layers, "tau": tau, "sigma": sigma,
            "aupro_definition": "exact to FPR 0.3, /0.3 (vadlib.metrics.aupro)"}
