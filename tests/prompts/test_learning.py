"""Prompt learner: the encode_text replica equals open_clip's, and only the contexts learn."""

import warnings

import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.features import load_backbone
from vadlib.prompts.learning import (PromptLearner, PromptLearnerConfig,
                                           encode_text_with_embeddings)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def backbone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("vadlib-tiny", "random")


def test_replica_equals_open_clip_encode_text(backbone):
    m = backbone.model
    tokens = backbone.tokenizer(["a photo of a damaged object.", "people walking"])
    ref = m.encode_text(tokens)
    out = encode_text_with_embeddings(m, m.token_embedding(tokens), tokens)
    assert torch.allclose(out, ref, atol=1e-5)


def test_contexts_set_to_real_words_reproduce_the_sentence(backbone):
    m = backbone.model
    cfg = PromptLearnerConfig(n_ctx=3)
    pl = PromptLearner(backbone, cfg)
    words_n, words_a = "a photo of", "a bad picture"
    tok = backbone.tokenizer([words_n, words_a])
    assert int(tok[0].argmax()) == 4 and int(tok[1].argmax()) == 4  # 3 word tokens each
    emb = m.token_embedding(tok)
    pl.set_contexts(emb[0, 1:4], emb[1, 1:4])
    ref = m.encode_text(backbone.tokenizer([f"{words_n} object.", f"{words_a} damaged object."]))
    ref = torch.nn.functional.normalize(ref, dim=-1)
    assert torch.allclose(pl(), ref, atol=1e-5)
    # a different suffix wording gives different features
    pl2 = PromptLearner(backbone, PromptLearnerConfig(n_ctx=3, abnormal_suffix="broken thing."))
    pl2.set_contexts(emb[0, 1:4], emb[1, 1:4])
    assert torch.allclose(pl2()[0], pl()[0], atol=1e-5)
    assert not torch.allclose(pl2()[1], pl()[1], atol=1e-3)


@pytest.mark.parametrize("depth", [0, 2])
def test_gradients_reach_only_the_contexts(backbone, depth):
    pl = PromptLearner(backbone, PromptLearnerConfig(n_ctx=4, deep_depth=depth, deep_n_ctx=2))
    names = {n for n, _ in pl.named_parameters()}
    assert names == {"ctx"} | {f"deep.{i}" for i in range(max(depth - 1, 0))}
    feats = pl()
    assert feats.shape == (2, backbone.embed_dim)
    (feats[1] - feats[0]).pow(2).sum().backward()
    assert pl.ctx.grad is not None and pl.ctx.grad.abs().sum() > 0
    for p in pl.deep:
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert all(p.grad is None for p in backbone.model.parameters())
    assert all(not p.requires_grad for p in backbone.model.parameters())


def test_deep_prompts_change_features(backbone):
    torch.manual_seed(0)
    pl = PromptLearner(backbone, PromptLearnerConfig(n_ctx=4, deep_depth=2, deep_n_ctx=2))
    a = pl().detach()
    with torch.no_grad():
        pl.deep[0].mul_(50)
    assert not torch.allclose(a, pl(), atol=1e-4)


def test_bad_config(backbone):
    with pytest.raises(ConfigError, match="deep_depth"):
        PromptLearner(backbone, PromptLearnerConfig(deep_depth=5))
    with pytest.raises(ConfigError, match="unknown key"):
        PromptLearnerConfig.from_params({"nctx": 3})
