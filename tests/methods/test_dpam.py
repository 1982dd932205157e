"""DPAM patch maps: plumbing and mathematics with random weights (no figure is claimed)."""

import copy
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from vadlib.errors import ConfigError
from vadlib.features import load_backbone
from vadlib.metrics import aupro, pixel_auroc
from vadlib.methods.zeroshot.dpam import (DPAMEncoder, dice_loss, dpam_loss, evaluate_maps, focal_loss, frame_anomaly_maps, local_loss,
                                patch_probabilities, preprocess_frames, upsample_maps, video_anomaly_maps,
                                vv_attention)
from vadlib.prompts.learning import PromptLearner, PromptLearnerConfig

torch.set_num_threads(1)
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PED2 = SHARED / "datasets" / "ucsd_ped2"
needs_ped2 = pytest.mark.skipif(not PED2.exists(), reason="../shared (real benchmark data) not present")


@pytest.fixture(scope="module")
def backbone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        return load_backbone("vadlib-tiny", "random")


def test_global_path_equals_encode_image(backbone):
    enc = DPAMEncoder(backbone, n_layers=19)          # clipped to the tiny model's 2 blocks
    assert enc.n_layers == 2
    x = torch.randn(3, 3, 64, 64)
    out = enc(x)
    assert torch.allclose(out.image, backbone.model.encode_image(x), atol=1e-5)
    assert out.grid == (4, 4) and out.patches.shape == (3, 16, backbone.embed_dim)
    # the DPAM path is not the original path's patch tokens
    _, tokens = backbone.model.visual._pool(backbone.model.visual.transformer(backbone.model.visual._embeds(x)))
    assert not torch.allclose(out.patches, tokens @ backbone.model.visual.proj, atol=1e-3)
    # fewer DPAM layers → different patch tokens, same global embedding
    out1 = DPAMEncoder(backbone, n_layers=1)(x)
    assert torch.allclose(out1.image, out.image, atol=1e-6)
    assert not torch.allclose(out1.patches, out.patches, atol=1e-4)


def test_vv_attention_is_mha_with_q_k_v_all_value_projection(backbone):
    attn = backbone.model.visual.transformer.resblocks[-1].attn
    w = attn.embed_dim
    ref = copy.deepcopy(attn)
    with torch.no_grad():
        ref.in_proj_weight[:w] = attn.in_proj_weight[2 * w:]
        ref.in_proj_weight[w:2 * w] = attn.in_proj_weight[2 * w:]
        ref.in_proj_bias[:w] = attn.in_proj_bias[2 * w:]
        ref.in_proj_bias[w:2 * w] = attn.in_proj_bias[2 * w:]
    x = torch.randn(2, 17, w)
    # q = k = v = W_v x + b_v; MHA's projections of (x, x, x) with W_q = W_k = W_v give exactly that
    assert torch.allclose(vv_attention(attn, x), ref(x, x, x, need_weights=False)[0], atol=1e-5)


def test_patch_probabilities_layout_and_upsampling():
    """Constructed patch features: abnormal text on patches inside a square → the upsampled map
    is high exactly there (row-major grid, half-pixel alignment with the frame)."""
    tn, ta = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    grid = (4, 6)
    lab = torch.zeros(grid)
    lab[1:3, 4:6] = 1                          # rows 1-2, cols 4-5 of the patch grid
    patches = torch.where(lab.reshape(-1, 1) > 0, ta, tn)[None]          # (1, 24, 2)
    p = patch_probabilities(patches, torch.stack([tn, ta]), grid, tau=0.07)
    assert p.shape == (1, 2, 4, 6)
    torch.testing.assert_close(p[0, 1] > 0.5, lab > 0)
    torch.testing.assert_close(p.sum(1), torch.ones(1, 4, 6))
    up = upsample_maps(p, (40, 60))[0, 1].numpy()  # 10x10 px per patch
    mask = np.zeros((1, 40, 60), bool)
    mask[0, 10:30, 40:60] = True
    assert pixel_auroc(mask, up[None]) > 0.95
    assert pixel_auroc(mask, up[None, :, ::-1].copy()) < 0.6      # a flipped map does not align
    with pytest.raises(ConfigError):
        patch_probabilities(patches, torch.stack([tn, ta]), (5, 5))


def test_metric_values_on_constructed_maps():
    rng = np.random.default_rng(0)
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:8, 3:9] = True
    masks[2, 10:18, 20:28] = True
    perfect = masks.astype(np.float32) + 0.01 * rng.random(masks.shape)
    assert pixel_auroc(masks, perfect) == pytest.approx(1.0)
    assert aupro(masks, perfect) == pytest.approx(1.0, abs=1e-3)
    assert pixel_auroc(masks, 1.0 - perfect) == pytest.approx(0.0)
    big = np.repeat(np.repeat(masks, 8, 1), 8, 2)        # 6,400 anomalous pixels: AUC s.d. ≈ 0.004
    assert pixel_auroc(big, rng.random(big.shape)) == pytest.approx(0.5, abs=0.02)
    # a map that finds one of two regions; the other scores like normal pixels, so its overlap
    # equals the FPR: PRO(f) = (1 + f) / 2 → AUPRO = (0.3 + 0.3²/2) / 2 / 0.3 = 0.575
    half = np.zeros(masks.shape, np.float32)
    half[0] = masks[0]
    assert aupro(masks, half + 0.001 * rng.random(masks.shape)) == pytest.approx(0.575, abs=0.03)


def test_local_loss_mathematics():
    mask = torch.zeros(1, 4, 4)
    mask[0, :2] = 1
    perfect = torch.stack([1 - mask, mask], 1)
    wrong = torch.stack([mask, 1 - mask], 1)
    assert float(local_loss(perfect, mask)) < 0.05
    assert float(local_loss(wrong, mask)) > 1.5
    # dice by hand: p = 0.5 everywhere, t = 8 of 16 pixels → 1 − (2·4 + 1)/(8 + 8 + 1)
    assert float(dice_loss(torch.full((1, 4, 4), 0.5), mask)) == pytest.approx(1 - 9 / 17)
    # focal by hand: pt = 0.5 (+1e-5) everywhere → (1 − pt)² · (−log pt)
    pt = 0.5 + 1e-5
    assert float(focal_loss(torch.full((1, 2, 4, 4), 0.5), mask)) == pytest.approx((1 - pt) ** 2 * -np.log(pt), rel=1e-3)


def test_dpam_loss_trains_only_the_prompt_contexts(backbone):
    enc = DPAMEncoder(backbone, n_layers=1)
    pl = PromptLearner(backbone, PromptLearnerConfig(n_ctx=4))
    images = torch.randn(2, 3, 64, 64)
    masks = torch.zeros(2, 64, 64)
    masks[1, 16:48, 16:48] = 1
    opt = torch.optim.Adam(pl.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        loss = dpam_loss(enc, pl(), images, torch.tensor([0, 1]), masks)
        opt.zero_grad()
        loss.backward()
        losses.append(float(loss.detach()))
        opt.step()
    assert pl.ctx.grad is not None and pl.ctx.grad.abs().sum() > 0
    assert all(p.grad is None for p in backbone.model.parameters())
    assert losses[-1] < losses[0]


def test_preprocess_grayscale_and_shapes(backbone):
    gray = np.random.default_rng(0).integers(0, 255, (2, 24, 36), np.uint8)
    x = preprocess_frames(gray, 64, backbone.mean, backbone.std)
    assert x.shape == (2, 3, 64, 64)
    assert torch.allclose(x[:, 0] * backbone.std[0] + backbone.mean[0], x[:, 1] * backbone.std[1] + backbone.mean[1], atol=1e-5)
    with pytest.raises(ConfigError):
        preprocess_frames(np.zeros((2, 3), np.uint8), 64, backbone.mean, backbone.std)


@needs_ped2
def test_ped2_maps_align_with_masks(backbone):
    """Random weights: the maps of real Ped2 frames have the masks' exact shape and frame count;
    a map built from the masks at patch resolution and brought back through the same upsampling
    scores a high pixel AUROC / AUPRO (the geometry is right); the random-weight maps are only
    checked for range."""
    from vadlib.data import get_dataset

    video = get_dataset("ucsd_ped2", str(PED2)).videos("test")[0]
    masks = video.masks()
    frames = list(range(60, 80))                       # anomalous frames of Test001 (bicycle)
    m = masks[frames]
    assert m.any()
    enc = DPAMEncoder(backbone, n_layers=1)
    text = backbone.encode_text(["a normal scene", "an abnormal event"])
    maps, glob = video_anomaly_maps(enc, video, text, backbone, batch_size=10, frames=frames)
    assert maps.shape == m.shape and glob.shape == (len(frames),)
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1
    pa = pixel_auroc(m, maps)
    assert 0 <= pa <= 1                                # random weights: no figure claimed
    # the geometric path: mask → frame resize to S×S → patch grid → upsampled back to the frame
    g = 64 // 16
    small = F.interpolate(torch.tensor(m[:, None], dtype=torch.float32), size=(64, 64), mode="bilinear",
                          align_corners=False, antialias=True)
    patch = F.avg_pool2d(small, 16)                   # (T, 1, 4, 4): fraction of each patch anomalous
    assert patch.shape[-2:] == (g, g)
    back = upsample_maps(patch, m.shape[1:])[:, 0].numpy()
    assert pixel_auroc(m, back) > 0.9
    assert aupro(m, back) > 0.5
    assert pixel_auroc(m, back[:, :, ::-1].copy()) < pixel_auroc(m, back) - 0.2
    # the evaluation helper runs on the real masks (value: random weights, no claim)
    res = evaluate_maps(enc, [video], text, backbone, max_frames=6)
    assert res["n_frames"] == 6 and 0 <= res["pixel_auroc"] <= 1 and 0 <= res["aupro"] <= 1


def test_non_native_input_size_interpolates_the_positional_embedding(backbone):
    from vadlib.methods.zeroshot.dpam import interpolate_pos_embed

    pos = backbone.model.visual.positional_embedding
    assert interpolate_pos_embed(pos, (4, 4)) is pos                   # native 4x4 grid: unchanged
    const = torch.cat([torch.zeros(1, 3), torch.ones(16, 3) * 2.5])
    big = interpolate_pos_embed(const, (6, 6))
    assert big.shape == (37, 3) and torch.allclose(big[1:], torch.full((36, 3), 2.5)) and torch.equal(big[0], const[0])
    # a ramp along x stays a monotone ramp along x (row-major layout kept)
    ramp = torch.cat([torch.zeros(1, 1), torch.arange(4.0).repeat(4)[:, None]])
    r = interpolate_pos_embed(ramp, (8, 8))[1:].reshape(8, 8)
    assert (r.diff(dim=1) >= 0).all() and torch.allclose(r[0], r[5])
    enc = DPAMEncoder(backbone, n_layers=2)
    out = enc(torch.randn(2, 3, 96, 96))
    assert out.grid == (6, 6) and out.patches.shape == (2, 36, backbone.embed_dim)


def test_global_embedding_without_ln_post_is_the_reference_flaw(backbone):
    x = torch.randn(2, 3, 64, 64)
    vis = backbone.model.visual
    fixed = DPAMEncoder(backbone, n_layers=2)(x).image
    flawed = DPAMEncoder(backbone, n_layers=2, global_ln_post=False)(x).image
    raw = vis.transformer(vis._embeds(x))[:, 0] @ vis.proj
    assert torch.allclose(flawed, raw, atol=1e-5)
    assert not torch.allclose(fixed, flawed, atol=1e-3)
