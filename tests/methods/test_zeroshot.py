import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.prompts.text import PromptSet, encode_prompts
from vadlib.methods.zeroshot.model import ZeroShotScorer

PROMPTS = {"normal": ["people walking"], "anomaly": {"cyclist": "a person riding a bicycle", "cart": "a cart"}}


def test_prompt_set_validation():
    ps = PromptSet.from_params(PROMPTS, templates=["{}", "a photo of {}."])
    assert ps.texts == ["people walking", "a person riding a bicycle", "a cart"]
    assert PromptSet.from_params({"normal": "x", "anomaly": ["y", "z"]}).anomaly_names == ["prompt0", "prompt1"]
    with pytest.raises(ConfigError, match="needs 'normal'"):
        PromptSet.from_params({"anomaly": ["y"]})
    with pytest.raises(ConfigError, match="exactly one"):
        PromptSet.from_params(PROMPTS, templates=["no slot"])


def test_encode_prompts_normalised_ensemble(tiny_backbone):
    t = encode_prompts(tiny_backbone, ["a", "b"], templates=["{}", "x {}"])
    assert t.shape == (2, tiny_backbone.embed_dim)
    assert torch.allclose(t.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_scores_follow_the_text_directions(tiny_backbone):
    """Features planted on a prompt's text direction score as that prompt (the maths, not CLIP)."""
    scorer = ZeroShotScorer(tiny_backbone, PromptSet.from_params(PROMPTS, templates=["{}"]), tau=0.01)
    tn, ta = scorer.normal_text.numpy(), scorer.anomaly_text.numpy()
    feats = np.stack([tn[0], ta[0], ta[1]]) * 3.0  # raw (unnormalised) features are fine
    out = scorer.score(feats)
    assert out.softmax[0] < 0.5 < out.softmax[1] and out.softmax[2] > 0.5
    assert out.fired[1:].tolist() == [0, 1]
    assert out.class_probs.argmax(1).tolist() == [0, 1, 2]
    np.testing.assert_allclose(out.class_probs.sum(1), 1.0, atol=1e-5)
    # S(t) = max_i cos(f_t, T_i)
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    np.testing.assert_allclose(out.max_cos, (f @ ta.T).max(1), atol=1e-5)
    assert scorer.class_names == ["normal", "cyclist", "cart"]


def test_crops_are_averaged(tiny_backbone):
    scorer = ZeroShotScorer(tiny_backbone, PromptSet.from_params(PROMPTS, templates=["{}"]))
    x = np.random.default_rng(0).normal(size=(4, 5, tiny_backbone.embed_dim)).astype(np.float32)
    a = scorer.score(x).softmax
    b = scorer.score(torch.nn.functional.normalize(torch.as_tensor(x).mean(1), dim=-1).numpy()).softmax
    np.testing.assert_allclose(a, b, atol=1e-6)
