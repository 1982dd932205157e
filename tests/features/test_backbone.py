"""The open_clip backbone wrapper (no network: only the tiny config, tags and local files)."""

from __future__ import annotations

import sys
import warnings

import pytest
import torch

from vadlib.errors import ConfigError, WeightsUnavailableError
from vadlib.features import RandomWeightsWarning, list_backbones, load_backbone


def test_tiny_random_loads_through_open_clip_and_warns():
    import open_clip

    with pytest.warns(RandomWeightsWarning, match="RANDOM WEIGHTS: backbone 'vadlib-tiny'"):
        bb = load_backbone("vadlib-tiny", "random")
    assert isinstance(bb.model, open_clip.CLIP)
    assert bb.real_weights is False and bb.pretrained == "random"
    assert bb.embed_dim == 64 and bb.image_size == 64
    assert bb.mean == tuple(open_clip.OPENAI_DATASET_MEAN) and bb.std == tuple(open_clip.OPENAI_DATASET_STD)
    assert not any(p.requires_grad for p in bb.model.parameters()) and not bb.model.training
    img = bb.encode_images(torch.zeros(2, 3, 64, 64))
    assert img.shape == (2, 64)
    txt = bb.encode_text(["a photo of a street", "a fight"])
    assert txt.shape == (2, 64)
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(2))
    assert bb.tag == "vadlib-tiny/random"
    with pytest.raises(ConfigError, match="empty prompt list"):
        bb.encode_text([])


def test_list_backbones_has_tiny_and_real_architectures():
    names = list_backbones()
    assert "vadlib-tiny" in names and "ViT-B-16" in names and "ViT-B-32" in names


def test_unknown_name_lists_close_models():
    with pytest.raises(ConfigError, match=r"unknown backbone 'vit-b-1'; open_clip knows \d+ models, e\.g\. .*ViT-B-16"):
        load_backbone("vit-b-1", "openai")
    with pytest.raises(ConfigError, match="unknown backbone 'nothing-like-it'.*list_backbones"):
        load_backbone("nothing-like-it", "openai")


def test_unknown_tag_lists_known_tags():
    with pytest.raises(ConfigError, match=r"'ViT-B-32' has no pretrained tag 'not-a-tag' \(known: .*openai"):
        load_backbone("ViT-B-32", "not-a-tag")


def test_empty_tag_is_refused():
    with pytest.raises(ConfigError, match="give a pretrained tag, a checkpoint path, or 'random'"):
        load_backbone("vadlib-tiny", "")


def test_missing_checkpoint_path_gives_remedies(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)   # a command line, not a stage's kernel
    missing = tmp_path / "clip.pt"
    with pytest.raises(WeightsUnavailableError) as err:
        load_backbone("vadlib-tiny", str(missing))
    msg = str(err.value)
    assert str(missing) in msg and "Remedies" in msg
    assert "pre-download" in msg and "local checkpoint" in msg and "--pretrained random" in msg


def test_local_checkpoint_loads_as_real_weights(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        torch.manual_seed(3)
        src = load_backbone("vadlib-tiny", "random")
    ckpt = tmp_path / "tiny.pt"
    torch.save(src.model.state_dict(), ckpt)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RandomWeightsWarning)  # a file of weights is not "random"
        bb = load_backbone("vadlib-tiny", str(ckpt))
    assert bb.real_weights is True and bb.tag == "vadlib-tiny/tiny.pt"
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(bb.encode_images(x), src.encode_images(x))


def test_corrupt_checkpoint_gives_remedies(tmp_path):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsUnavailableError, match=r"(?s)cannot load weights .*broken\.pt.*Remedies"):
        load_backbone("vadlib-tiny", str(bad))


def test_random_weights_are_the_same_in_every_process():
    """Stages load the backbone separately: random weights must agree (and not touch the caller's RNG)."""
    import warnings

    import torch

    from vadlib.features import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(123)
        a = load_backbone("vadlib-tiny", "random")
        after = torch.rand(1)
        torch.manual_seed(123)
        b = load_backbone("vadlib-tiny", "random")
        assert torch.equal(after, torch.rand(1))
        c = load_backbone("vadlib-tiny", "random", random_seed=1)
    x = torch.randn(2, 3, a.image_size, a.image_size)
    assert torch.equal(a.encode_images(x), b.encode_images(x))
    assert not torch.equal(a.encode_images(x), c.encode_images(x))
