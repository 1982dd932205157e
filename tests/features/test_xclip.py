"""X-CLIP through transformers (xclip-tiny, random weights) and the backbone registry's dispatch."""

from __future__ import annotations

import sys
import types
import warnings

import pytest
import torch

from vadlib.errors import ConfigError, WeightsUnavailableError
from vadlib.features import RandomWeightsWarning, load_backbone
from vadlib.features.backbones import ClipBackbone, family_of, list_backbones
from vadlib.features.backbones.base import PROMPT_GENERATOR, is_clip_backbone

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def xclip_tiny():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("xclip-tiny", "random")


def test_xclip_tiny_conforms_to_the_clip_protocol(xclip_tiny):
    bb = xclip_tiny
    assert isinstance(bb, ClipBackbone) and is_clip_backbone(bb)
    assert (bb.kind, bb.clip_len, bb.embed_dim, bb.image_size, bb.text_path) == ("clip", 8, 32, 30, PROMPT_GENERATOR)
    assert not bb.real_weights and bb.precision == "fp32" and bb.tag == "xclip-tiny/random"
    feats = bb.encode_clips(torch.randn(3, 8, 3, 30, 30))
    assert feats.shape == (3, 32) and feats.dtype == torch.float32
    with pytest.warns(RandomWeightsWarning):
        bb.warn_if_random()


def test_prompt_scoring_is_xclip_forward(xclip_tiny):
    """encode_clips_aux + condition_text reproduce XCLIPModel.forward's text and video embeddings."""
    bb = xclip_tiny
    x = torch.randn(2, 8, 3, 30, 30, generator=torch.Generator().manual_seed(0))
    texts = ["a person riding a bicycle", "a person walking", "a car"]
    video, tokens = bb.encode_clips_aux(x)
    cond = bb.condition_text(bb.encode_text(texts, normalize=False), tokens)
    ids = bb.tokenizer(texts)
    with torch.no_grad():
        out = bb.model(input_ids=ids, pixel_values=x, attention_mask=(ids != 0).long())
    torch.testing.assert_close(cond, out.text_embeds, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.nn.functional.normalize(video, dim=-1), out.video_embeds, rtol=1e-4, atol=1e-5)
    # the video conditioning really changes the prompts per clip (else it would be the text tower)
    assert not torch.allclose(cond[0], cond[1])


def test_local_checkpoint_directory_round_trip(tmp_path, xclip_tiny):
    xclip_tiny.model.save_pretrained(tmp_path / "xclip-local")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)   # a checkpoint is real weights: no warning
        bb = load_backbone("xclip", str(tmp_path / "xclip-local"))
    assert bb.real_weights and bb.clip_len == 8
    x = torch.randn(1, 8, 3, 30, 30)
    torch.testing.assert_close(bb.encode_clips(x), xclip_tiny.encode_clips(x))


def test_bad_xclip_choices_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="random weights only"):
        load_backbone("xclip-tiny", "microsoft/xclip-base-patch32")
    with pytest.raises(ConfigError, match="give a hub id"):
        load_backbone("xclip", "")
    with pytest.raises(WeightsUnavailableError, match=r"(?s)no X-CLIP checkpoint directory.*from_pretrained\('microsoft/xclip-base-patch32'\)\.save_pretrained"):
        load_backbone("xclip", str(tmp_path / "nowhere"))
    with pytest.raises(WeightsUnavailableError, match="microsoft/xclip-base-patch32-16-frames"):
        load_backbone("xclip", "someone/not-a-model-here")   # offline (HF_HUB_OFFLINE=1 in conftest)


def test_registry_dispatches_by_name(monkeypatch):
    assert [family_of(n) for n in ("ViT-B-16", "xclip", "xclip-tiny", "actionclip/ViT-B-16")] == \
        ["open_clip", "xclip", "xclip", "actionclip"]
    assert list_backbones()[:3] == ["xclip", "xclip-tiny", "actionclip/<open_clip arch>"]
    seen = {}
    fake = types.ModuleType("vadlib.features.backbones.actionclip")
    fake.load_actionclip = lambda arch, pretrained, **kw: seen.update(arch=arch, pretrained=pretrained, **kw) or "bb"
    monkeypatch.setitem(sys.modules, "vadlib.features.backbones.actionclip", fake)
    assert load_backbone("actionclip/vadlib-tiny", "random", random_seed=3, clip_len=8) == "bb"
    assert seen == {"arch": "vadlib-tiny", "pretrained": "random", "device": "cpu", "random_seed": 3,
                    "precision": "fp32", "clip_len": 8}
    with pytest.raises(ConfigError, match="needs an open_clip architecture"):
        load_backbone("actionclip/", "random")


def test_unknown_names_list_every_family():
    with pytest.raises(ConfigError, match=r"unknown backbone 'xclipp'.*xclip \(a hub id or local directory\), "
                                          r"xclip-tiny \(random\) and actionclip/<open_clip arch>"):
        load_backbone("xclipp", "random")
    with pytest.raises(ConfigError, match="encodes single frames; clip_len 8 applies to video backbones"):
        load_backbone("vadlib-tiny", "random", clip_len=8)


def test_bf16_casts_the_vision_tower_only_and_stays_close_to_fp32(xclip_tiny):
    from vadlib.features import precision as P

    if not P.cpu_bf16_support().supported:
        pytest.skip("this CPU has no bf16 units: load_backbone refuses bf16 here")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bf = load_backbone("xclip-tiny", "random", precision="bf16")
    assert bf.precision == "bf16" and next(bf.model.vision_model.parameters()).dtype == torch.bfloat16
    assert next(bf.model.text_model.parameters()).dtype == torch.float32
    x = torch.randn(4, 8, 3, 30, 30, generator=torch.Generator().manual_seed(1))
    a, b = xclip_tiny.encode_clips(x), bf.encode_clips(x)
    assert b.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.99
