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
corresponds to frame pixel (i, j) after upsampling. ``image_size`` may differ from the encoder's
native size (Zhou: 518 on a 336-px ViT-L/14): the positional embedding of the patch grid is then
bilinearly interpolated, as the reference does.

Where vadlib deviates from the reference code (``zqhang/AnomalyCLIP``) each deviation is a
keyword here (``global_ln_post``, ``resize``, ``blur_at``); :mod:`vadlib.compat.zhou` names them
as reference-mode switches. Loss where pixel masks exist:
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


def interpolate_pos_embed(pos: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """``(1 + g·g, W)`` ViT positional embedding (class token first, square grid) → ``(1 + gh·gw, W)``
    by bilinear interpolation of the grid part (``align_corners=False``, no antialias: Zhou's
    inference-time resize); unchanged when the grid already has that size."""
    side = int(round((pos.shape[0] - 1) ** 0.5))
    if side * side != pos.shape[0] - 1:
        raise ConfigError(f"positional embedding of {pos.shape[0] - 1} patch tokens is not a square grid")
    if (side, side) == tuple(grid):
        return pos
    w = pos.shape[1]
    g = pos[1:].reshape(1, side, side, w).permute(0, 3, 1, 2)
    g = F.interpolate(g, size=tuple(grid), mode="bilinear", align_corners=False)
    return torch.cat([pos[:1], g.reshape(w, -1).T], dim=0)


class DPAMEncoder(nn.Module):
    """Dual-path forward over a frozen open_clip ViT.

    Args:
        backbone: a :class:`~vadlib.features.backbones.open_clip.Backbone` (or anything with ``.model.visual``).
        n_layers: how many of the last blocks get the V–V path (Zhou: 19 of 24 for ViT-L/14;
            clipped to the encoder's depth). Zhou's ``DPAM_layer = 20`` means ``n_layers = 19``.
        global_ln_post: True (vadlib) = the global embedding is ``encode_image``'s (``ln_post``
            then ``proj`` of the class token); False = the reference's: the class token of the
            original path times ``proj`` WITHOUT ``ln_post``.
    """

    def __init__(self, backbone, n_layers: int = 19, global_ln_post: bool = True):
        super().__init__()
        visual = backbone.model.visual
        _check_visual(visual)
        self._visual = [visual]
        depth = len(visual.transformer.resblocks)
        if n_layers < 1:
            raise ConfigError(f"dpam n_layers must be >= 1 (got {n_layers})")
        self.n_layers = min(n_layers, depth)
        self.first = depth - self.n_layers
        self.global_ln_post = bool(global_ln_post)

    @property
    def visual(self) -> nn.Module:
        return self._visual[0]

    def forward(self, images: torch.Tensor) -> DPAMOutput:
        """``images (B, 3, S, S)`` preprocessed → :class:`DPAMOutput`."""
        vis = self.visual
        b, _, hgt, wid = images.shape
        grid = (hgt // vis.patch_size[0], wid // vis.patch_size[1])
        x = self._embeds(images.to(vis.conv1.weight.dtype), grid)  # a bf16-cast tower (backbone.precision) takes bf16
        dpam = None
        for i, blk in enumerate(vis.transformer.resblocks):
            if i >= self.first:
                if dpam is None:
                    dpam = x
                dpam = dpam + blk.ls_1(vv_attention(blk.attn, blk.ln_1(x)))
            x = blk(x)
        if self.global_ln_post:
            pooled, _ = vis._pool(x)
        else:
            pooled = x[:, 0]
        if vis.proj is not None:
            pooled = pooled @ vis.proj
        tokens = vis.ln_post(dpam[:, 1:])
        if vis.proj is not None:
            tokens = tokens @ vis.proj
        return DPAMOutput(image=pooled.float(), patches=tokens.float(), grid=grid)

    def _embeds(self, images: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """open_clip's ``VisionTransformer._embeds`` with the positional embedding interpolated
        to ``grid`` when the input size is not the encoder's native one."""
        vis = self.visual
        native = tuple(vis.grid_size)
        if tuple(grid) == native:
            return vis._embeds(images)
        if getattr(vis, "patch_dropout", None) is not None and vis.training and not isinstance(vis.patch_dropout, nn.Identity):
            raise ConfigError("DPAM at a non-native input size does not support patch dropout in training mode")
        x = vis.conv1(images)
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
        cls = vis.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1)
        x = x + interpolate_pos_embed(vis.positional_embedding, grid).to(x.dtype)
        return vis.ln_pre(x)


RESIZES = ("bilinear", "pil_bicubic")


def preprocess_frames(frames: np.ndarray, image_size: int, mean: Sequence[float], std: Sequence[float],
                      resize: str = "bilinear") -> torch.Tensor:
    """``(T, H, W, 3)`` or ``(T, H, W)`` uint8 → ``(T, 3, S, S)`` float: whole-frame resize to
    ``S×S`` (no crop, so maps align with frames), grayscale replicated to 3 channels, CLIP
    normalisation.

    ``resize``: ``"bilinear"`` (vadlib: antialiased bilinear in float, no rounding) or
    ``"pil_bicubic"`` (the reference's: PIL bicubic on the uint8 image, result rounded to uint8).
    """
    if resize not in RESIZES:
        raise ConfigError(f"unknown frame resize '{resize}' (known: {', '.join(RESIZES)})")
    arr = np.asarray(frames)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ConfigError(f"frames must be (T, H, W[, 3]) images, got shape {tuple(np.shape(frames))}")
    if resize == "pil_bicubic":
        from PIL import Image

        if arr.dtype != np.uint8:
            raise ConfigError(f"resize 'pil_bicubic' needs uint8 frames, got {arr.dtype}")
        arr = np.stack([np.asarray(Image.fromarray(f).resize((image_size, image_size), Image.BICUBIC))
                        for f in arr])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0
    else:
        x = torch.as_tensor(arr).permute(0, 3, 1, 2).float() / 255.0
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


BLUR_AT = ("frame", "input")


def image_scores(image: torch.Tensor, text: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """``P_g[abnormal]``: ``image (B, D)`` global embeddings, ``text (2, D)`` → ``(B,)``."""
    logits = F.normalize(image.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T / tau
    return torch.softmax(logits, -1)[:, 1]


@torch.no_grad()
def image_anomaly_maps(encoder: DPAMEncoder, images: torch.Tensor, text: torch.Tensor, tau: float = 0.07,
                       sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Zhou's inference on preprocessed ``images (B, 3, S, S)``: ``(maps (B, S, S) float32,
    scores (B,))`` where ``maps`` = ``S_a`` upsampled to ``S×S`` then Gaussian-blurred (σ in
    input pixels; Zhou σ = 4) and ``scores`` = ``P_g[abnormal]``."""
    o = encoder(images)
    p = patch_probabilities(o.patches.float(), text.float(), o.grid, tau)
    maps = upsample_maps(p, tuple(images.shape[-2:]))[:, 1].cpu().numpy().astype(np.float32)
    return gaussian_blur_maps(maps, sigma), image_scores(o.image, text, tau).cpu().numpy()


@torch.no_grad()
def frame_anomaly_maps(encoder: DPAMEncoder, frames: np.ndarray, text: torch.Tensor, image_size: int,
                       mean: Sequence[float], std: Sequence[float], tau: float = 0.07,
                       batch_size: int = 16, sigma: float = 0.0, resize: str = "bilinear",
                       blur_at: str = "frame") -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(T, H, W[, 3])`` uint8 → ``(maps (T, H, W) float32 = S_a`` at frame resolution,
    ``global (T,)`` = P_g[abnormal] per frame).``

    ``resize``: see :func:`preprocess_frames`. ``blur_at``: ``"frame"`` (vadlib: the patch map is
    upsampled straight to ``H×W`` and blurred there, σ in frame pixels) or ``"input"`` (the
    reference's: upsampled to ``S×S``, blurred there, σ in input pixels, then resized bilinearly
    to ``H×W``; identical to the reference's output when ``H = W = S``).
    """
    if blur_at not in BLUR_AT:
        raise ConfigError(f"unknown blur_at '{blur_at}' (known: {', '.join(BLUR_AT)})")
    t = len(frames)
    h, w = np.asarray(frames).shape[1:3]
    dev = text.device
    out_maps, out_glob = [], []
    for i in range(0, t, batch_size):
        x = preprocess_frames(frames[i:i + batch_size], image_size, mean, std, resize).to(dev)
        if blur_at == "input":
            m, g = image_anomaly_maps(encoder, x, text, tau, sigma)
            if (h, w) != tuple(m.shape[-2:]):
                m = upsample_maps(torch.from_numpy(m)[:, None], (h, w))[:, 0].numpy()
            out_maps.append(m)
            out_glob.append(g)
            continue
        o = encoder(x)
        p = patch_probabilities(o.patches.float(), text.float(), o.grid, tau)
        out_maps.append(upsample_maps(p, (h, w))[:, 1].cpu().numpy())
        out_glob.append(image_scores(o.image, text, tau).cpu().numpy())
    maps = np.concatenate(out_maps).astype(np.float32) if out_maps else np.zeros((0, h, w), np.float32)
    glob = np.concatenate(out_glob) if out_glob else np.zeros(0, np.float32)
    return (gaussian_blur_maps(maps, sigma) if blur_at == "frame" else maps), glob


def video_anomaly_maps(encoder: DPAMEncoder, video, text: torch.Tensor, backbone, tau: float = 0.07,
                       batch_size: int = 16, sigma: float = 0.0, frames: Sequence[int] | None = None,
                       image_size: int | None = None, resize: str = "bilinear", blur_at: str = "frame"
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps ``(T, H, W)`` and global scores ``(T,)`` for a dataset :class:`Video`
    (every frame, or ``frames``), aligned with ``video.masks()``. ``image_size`` defaults to
    the backbone's; ``resize`` / ``blur_at`` as :func:`frame_anomaly_maps`."""
    src = video.open()
    idx = list(range(len(src))) if frames is None else list(frames)
    maps, glob = [], []
    for i in range(0, len(idx), batch_size):
        m, g = frame_anomaly_maps(encoder, src.get(idx[i:i + batch_size]), text, image_size or backbone.image_size,
                                  backbone.mean, backbone.std, tau, batch_size, sigma, resize, blur_at)
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
