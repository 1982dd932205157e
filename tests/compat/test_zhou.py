"""Zhou et al.'s prompt checkpoint importer, reference-mode switches and zero-shot maps on frames
(random tiny weights; no figure is claimed)."""

import os
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vadlib.compat import zhou
from vadlib.errors import ConfigError, DataError
from vadlib.features import load_backbone
from vadlib.prompts.learning import PromptLearner, PromptLearnerConfig

torch.set_num_threads(1)
SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PED2 = SHARED / "datasets" / "ucsd_ped2"
CFG = PromptLearnerConfig(n_ctx=5, normal_suffix=zhou.NORMAL_SUFFIX, abnormal_suffix=zhou.ABNORMAL_SUFFIX,
                          deep_depth=2, deep_n_ctx=3)


@pytest.fixture(scope="module")
def backbone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("vadlib-tiny", "random")


@pytest.fixture(scope="module")
def learner(backbone):
    torch.manual_seed(1)
    pl = PromptLearner(backbone, CFG)
    with torch.no_grad():            # prompts large enough that the float16 rounding of deep ones shows
        for d in pl.deep:
            d.normal_(0, 1.0)
    return pl


def reference_layout(pl: PromptLearner) -> dict:
    """The reference's ``epoch_<k>.pth`` dict made from vadlib's own learner by renaming keys
    (names and shapes as the reference's ``AnomalyCLIP_PromptLearner.state_dict()``)."""
    e, w = pl.ctx.shape[1:]
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        emb = pl.clip.token_embedding(pl.tokens)
    sd = {"ctx_pos": pl.ctx[0].detach().clone().reshape(1, 1, e, w),
          "ctx_neg": pl.ctx[1].detach().clone().reshape(1, 1, e, w)}
    for j, d in enumerate(pl.deep):
        sd[f"compound_prompts_text.{j}"] = d.detach().clone()
        sd[f"compound_prompt_projections.{j}.weight"] = torch.randn(896, w, generator=g)
        sd[f"compound_prompt_projections.{j}.bias"] = torch.randn(896, generator=g)
    for s, row in (("pos", 0), ("neg", 1)):
        sd[f"token_prefix_{s}"] = emb[row, :1].reshape(1, 1, 1, w).clone()
        sd[f"token_suffix_{s}"] = emb[row, 1 + e:].reshape(1, 1, -1, w).clone()
        sd[f"tokenized_prompts_{s}"] = pl.tokens[row].to(torch.int32).reshape(1, 1, -1).clone()
    return {"prompt_learner": sd}


def test_import_into_identical_model(tmp_path, backbone, learner):
    path = tmp_path / "epoch_15.pth"
    torch.save(reference_layout(learner), path)
    got = zhou.load_prompt_checkpoint(path, backbone)
    assert got.cfg.n_ctx == CFG.n_ctx and got.cfg.deep_depth == CFG.deep_depth and got.cfg.deep_n_ctx == CFG.deep_n_ctx
    assert torch.equal(got.ctx, learner.ctx)
    assert len(got.deep) == len(learner.deep) == 1 and torch.equal(got.deep[0], learner.deep[0])
    torch.testing.assert_close(zhou.prompt_text_features(got), zhou.prompt_text_features(learner), rtol=0, atol=0)
    torch.testing.assert_close(zhou.prompt_text_features(got), learner().detach(), rtol=0, atol=1e-7)


def test_bad_keys_are_all_listed(tmp_path, backbone, learner):
    ck = reference_layout(learner)
    sd = ck["prompt_learner"]
    sd["surprise"] = torch.zeros(1)
    del sd["token_suffix_neg"]
    sd["compound_prompt_projections.0.bias"] = torch.zeros(895)
    path = tmp_path / "bad.pth"
    torch.save(ck, path)
    with pytest.raises(DataError) as exc:
        zhou.load_prompt_checkpoint(path, backbone)
    msg = str(exc.value)
    assert str(path) in msg and "surprise" in msg and "token_suffix_neg" in msg
    assert "compound_prompt_projections.0.bias: (895,)" in msg


def test_wrong_tokens_backbone_or_file_refused(tmp_path, backbone, learner):
    ck = reference_layout(learner)
    ck["prompt_learner"]["tokenized_prompts_neg"][0, 0, 3] += 1
    with pytest.raises(DataError, match="tokenized_prompts_neg"):
        zhou.load_prompt_checkpoint(ck, backbone)
    ck = reference_layout(learner)
    ck["prompt_learner"]["token_suffix_pos"] += 0.1
    with pytest.raises(DataError, match="another"):
        zhou.load_prompt_checkpoint(ck, backbone)
    assert zhou.load_prompt_checkpoint(ck, backbone, check_backbone=False).ctx.shape == learner.ctx.shape
    with pytest.raises(DataError, match="top-level"):
        zhou.load_prompt_checkpoint({"state_dict": {}}, backbone)
    with pytest.raises(DataError, match="does not exist"):
        zhou.load_prompt_checkpoint(tmp_path / "nope.pth", backbone)


def test_switch_presets():
    assert zhou.ZhouSwitches.from_params("default") == zhou.DEFAULT
    assert zhou.ZhouSwitches.from_params("reference") == zhou.REFERENCE
    assert zhou.DEFAULT.reference_switches() == []
    assert set(zhou.REFERENCE.reference_switches()) == set(zhou.DEFAULT.to_dict())
    with pytest.raises(ConfigError, match="unknown keys"):
        zhou.ZhouSwitches.from_params({"nope": 1})
    with pytest.raises(ConfigError, match="resize"):
        zhou.ZhouSwitches(resize="nearest")


def _frames(n=3, h=40, w=56):
    rng = np.random.default_rng(3)
    return rng.integers(0, 255, (n, h, w), np.uint8)


@pytest.mark.parametrize("field", sorted(zhou.DEFAULT.to_dict()))
def test_flipping_each_switch_changes_the_output(backbone, learner, field):
    """Every switch alone, from the default and from the reference preset, changes the maps or
    the scores of the same frames."""
    frames = _frames()
    for base in (zhou.DEFAULT, zhou.REFERENCE):
        flipped = replace(base, **{field: getattr(zhou.REFERENCE if base == zhou.DEFAULT else zhou.DEFAULT, field)})
        a = zhou.ZhouZeroShot(backbone, learner, base, sigma=2.0, n_layers=2)
        b = zhou.ZhouZeroShot(backbone, learner, flipped, sigma=2.0, n_layers=2)
        (ma, sa), (mb, sb) = a.frame_maps(frames), b.frame_maps(frames)
        assert ma.shape == mb.shape == frames.shape
        assert max(np.abs(ma - mb).max(), np.abs(sa - sb).max()) > 1e-7, (field, base)


def test_zero_shot_maps_of_an_imported_checkpoint_on_video_frames(tmp_path, backbone, learner):
    path = tmp_path / "epoch_1.pth"
    torch.save(reference_layout(learner), path)

    class Src:
        def __init__(self, frames):
            self.frames = frames
            self.size = frames.shape[1:3]

        def __len__(self):
            return len(self.frames)

        def get(self, idx):
            return self.frames[list(idx)]

    class Video:
        name = "v"

        def __init__(self, frames):
            self.src = Src(frames)

        def open(self):
            return self.src

    frames = _frames(5, 36, 48)
    # detect's heat-map hook (--heatmap --heatmap-prompts epoch_<k>.pth): detect's heat format
    from vadlib.detect import patch_heat_maps

    idx, heat = patch_heat_maps(backbone, Video(frames), np.array([0, 3]), np.zeros(2, np.int64), None, None,
                                zhou_prompts=str(path))
    assert idx.tolist() == [0, 3] and heat.shape == (2, 36, 48) and heat.dtype == np.float16
    ref_maps, _ = zhou.ZhouZeroShot(backbone, learner, image_size=zhou.ZHOU_IMAGE_SIZE).frame_maps(frames[[0, 3]])
    np.testing.assert_allclose(heat.astype(np.float32), ref_maps, atol=2e-3)
    for sw in (zhou.DEFAULT, zhou.REFERENCE):
        model = zhou.ZhouZeroShot.from_checkpoint(path, backbone, sw, image_size=96, n_layers=2)
        maps, scores = model.video_maps(Video(frames), batch_size=2)
        assert maps.shape == (5, 36, 48) and scores.shape == (5,)
        assert np.isfinite(maps).all() and 0 <= maps.min() and maps.max() <= 1 and ((0 <= scores) & (scores <= 1)).all()
        # frame by frame equals the batch (no cross-frame leakage), and the same frames give the same maps
        m2, s2 = model.frame_maps(frames[2:3])
        np.testing.assert_allclose(m2[0], maps[2], atol=1e-5)
        np.testing.assert_allclose(s2[0], scores[2], atol=1e-6)
        assert model.settings()["switches"] == sw.to_dict() and model.settings()["image_size"] == 96


@pytest.mark.skipif(not PED2.exists(), reason="../shared/datasets/ucsd_ped2 (real frames) not present")
def test_maps_on_real_ped2_frames_align_with_masks(backbone, learner):
    from vadlib.data import get_dataset

    video = get_dataset("ucsd_ped2", str(PED2)).videos("test")[0]
    model = zhou.ZhouZeroShot(backbone, learner, zhou.REFERENCE, n_layers=2)
    maps, scores = model.video_maps(video, frames=[60, 61, 62])
    assert maps.shape == video.masks()[[60, 61, 62]].shape and scores.shape == (3,)


REF_DPAM = os.environ.get("VADLIB_REFERENCE_DPAM")


@pytest.mark.skipif(not REF_DPAM, reason="set VADLIB_REFERENCE_DPAM to a clone of zqhang/AnomalyCLIP to compare "
                                         "vadlib with the reference code on identical random weights")
def test_reference_mode_equals_the_reference_code():
    from vadlib.bench.reference_dpam import TARGET_REL, compare

    res = compare(REF_DPAM, "small")
    for label, (a, rel) in res["reference"].items():
        assert rel <= TARGET_REL, (label, a, rel)
    # every fix changes what it should: the global score, the text, the input, the frame map
    fixes = res["fixes"]
    assert fixes["global_ln_post"]["image score (same input)"][1] > 1e-3
    assert fixes["deep_prompts_fp32"]["text features"][1] > 1e-6
    assert fixes["resize"]["input (frames -> S x S tensor)"][1] > 1e-3
    assert fixes["blur_at"]["anomaly map on the frame (H x W)"][1] > 1e-3
