"""AnomalyCLIP: shapes, log-space composition, each loss term by hand, selection, prompts, planted bound."""

import numpy as np
import pytest
import torch

from vadlib.errors import DataError
from vadlib.methods.anomalyclip import model as ac


def _model(A=3, D=16, **over):
    cfg = ac.AnomalyCLIPConfig.from_dict({**ac.CONFIGS["demo"], "num_segments": 4, "seg_length": 4,
                                          "emb_size": 16, "heads": 2, "text_source": "embeddings", **over})
    torch.manual_seed(0)
    names = ["normal"] + [f"c{i}" for i in range(A)]
    return ac.AnomalyCLIP(cfg, names, D, ac.EmbeddingText(torch.randn(A, D)))


def test_forward_shapes_and_probabilities():
    m = _model()
    out = m(torch.randn(5, 16, 16))
    assert out["z"].shape == (5, 16, 3) and out["logit"].shape == (5, 16) and out["log_probs"].shape == (5, 16, 4)
    assert torch.allclose(out["log_probs"].exp().sum(-1), torch.ones(5, 16), atol=1e-5)
    with pytest.raises(DataError):
        m(torch.randn(2, 15, 16))


@pytest.mark.parametrize("ff_kernel", [1, 3])
def test_predict_pads_short_videos_by_wraparound(ff_kernel):
    m = _model(ff_kernel=ff_kernel)
    rng = np.random.default_rng(0)
    res = m.predict({"short": rng.normal(size=(5, 16)).astype(np.float32),
                     "long": rng.normal(size=(37, 16)).astype(np.float32)})
    assert res["short"][0].shape == (5,) and res["short"][1].shape == (5, 4)
    assert res["long"][0].shape == (37,) and np.allclose(res["long"][1].sum(1), 1, atol=1e-5)
    # a 5-frame video is the 16-frame grid of its frames looped: frame t == frame t+5 input
    f = rng.normal(size=(5, 16)).astype(np.float32)
    looped = np.concatenate([f, f, f, f])[:16]
    a = m.predict({"v": f})["v"][0]
    b = m.predict({"v": looped})["v"][0][:5]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_nan_features_name_the_video():
    m = _model()
    f = np.zeros((20, 16), np.float32)
    f[3, 2] = np.nan
    with pytest.raises(DataError, match="bad_video"):
        m.predict({"bad_video": f})


def test_log_space_composition_finite_at_saturation():
    z = torch.tensor([[1e4, -1e4, 0.0]])
    for logit in (torch.tensor([200.0]), torch.tensor([-200.0]), torch.tensor([0.0])):
        lp = ac.compose_log_probs(z, logit)
        assert torch.isfinite(lp).all()
        assert torch.allclose(torch.logsumexp(lp, -1), torch.zeros(1), atol=1e-5)
    # the reference's torch.log(softmax * sigmoid) is -inf here; ours is the exact value
    lp = ac.compose_log_probs(torch.zeros(1, 2), torch.tensor([-120.0]))
    assert torch.isclose(lp[0, 1], torch.tensor(np.log(0.5) - 120.0, dtype=torch.float32), atol=1e-3)


def test_keep_mask_always_keeps_k():
    g = torch.Generator().manual_seed(0)
    keep = ac.mil_keep_mask(500, 32, 0.999, 3, g)
    assert keep.sum(1).min() >= 3
    keep = ac.mil_keep_mask(2000, 32, 0.7, 3, g)
    assert abs(keep.float().mean().item() - 0.3) < 0.05   # still Bernoulli(0.3) otherwise
    scores = torch.arange(32.0)[None].repeat(4, 1)
    idx = ac.select_segments(scores, keep[:4], 3, True)
    assert keep[:4].gather(1, idx).all()


def test_sample_grid_indices():
    rng = np.random.default_rng(0)
    idx = ac.sample_grid_indices(1000, 32, 16, rng).reshape(32, 16)
    assert (np.diff(idx, axis=1) == 1).all() and idx.min() >= 0 and idx.max() < 1000
    assert (np.diff(idx[:, 0]) > 0).all()
    short = ac.sample_grid_indices(40, 32, 16, rng)
    assert short.shape == (512,) and short.max() < 40 and len(np.unique(short)) == 40


def test_smoothness_never_crosses_segments_or_videos():
    # constant inside each segment, jumps between segments and videos → 0
    p = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.2, 0.2]])
    assert ac.smoothness_per_segment(p, 2, 2).item() == 0.0
    p = torch.tensor([[0.0, 1.0, 1.0, 1.0]])
    assert ac.smoothness_per_segment(p, 2, 2).item() == pytest.approx(1.0)


def test_each_loss_term_by_hand():
    cfg = ac.AnomalyCLIPConfig(num_segments=4, seg_length=2, topk=1, bottomk=1, select_dropout=0.0,
                               emb_size=8, heads=2, text_source="embeddings")
    rng = np.random.default_rng(1)
    z = torch.tensor(rng.normal(size=(2, 8, 2)), dtype=torch.float32)
    z[0, 4:6, 1] += 5          # abnormal video (class 2 = anomaly column 1): segment 2 is its top
    z[0, 0:2, 1] -= 5          # and segment 0 its bottom
    z[1, 6:8, :] += 3          # normal video: segment 3 has the largest sum over classes
    logit = torch.tensor(rng.normal(size=(2, 8)), dtype=torch.float32)
    lp = ac.compose_log_probs(z, logit)
    total, t = ac.anomalyclip_loss({"z": z, "logit": logit, "log_probs": lp}, torch.tensor([2, 0]), cfg)
    Z, P, S = z.numpy(), lp.exp().numpy(), torch.sigmoid(logit).numpy()
    assert t["dir_abn"] == pytest.approx(-Z[0, 4:6, 1].mean(), rel=1e-5)
    assert t["dir_nor"] == pytest.approx(Z[1].max(-1).mean(), rel=1e-5)
    assert t["topk_abn"] == pytest.approx(-np.log(P[0, 4:6, 2]).mean(), rel=1e-4)
    assert t["bottomk_abn"] == pytest.approx(-np.log(P[0, 0:2, 0]).mean(), rel=1e-4)
    assert t["topk_nor"] == pytest.approx(-np.log(P[1, 6:8, 0]).mean(), rel=1e-4)
    q = S[0].reshape(4, 2)
    assert t["smooth"] == pytest.approx(((q[:, 1] - q[:, 0]) ** 2).sum(), rel=1e-4)
    assert t["sparse"] == pytest.approx(S[0].mean(), rel=1e-5)
    expected = sum(t[k] for k in ("dir_abn", "dir_nor", "topk_abn", "bottomk_abn", "topk_nor")) \
        + 8e-4 * t["smooth"] + 8e-3 * t["sparse"]
    assert float(total) == pytest.approx(expected, rel=1e-5)


def test_prompt_text_matches_open_clip_and_trains(tiny_backbone):
    bb = tiny_backbone
    pt = ac.PromptText(bb, ["riding bike", "fighting"], n_ctx=4)
    clip = bb.model
    # with the contexts set to the embedding of the placeholder "X", the output is CLIP's own encode_text
    with torch.no_grad():
        pt.ctx.copy_(clip.token_embedding(pt.tokens)[:, 1:5])
        ref = clip.encode_text(pt.tokens)
    torch.testing.assert_close(pt(), ref, rtol=1e-4, atol=1e-5)
    pt().pow(2).sum().backward()
    assert pt.ctx.grad.abs().sum() > 0 and pt.text_projection.grad.abs().sum() > 0
    assert all(p.grad is None for p in clip.parameters())
    assert {n for n, _ in pt.named_parameters()} == {"ctx", "text_projection"}


def test_text_features_cached_at_eval(tiny_backbone):
    pt = ac.PromptText(tiny_backbone, ["a", "b"], n_ctx=2)
    m = ac.AnomalyCLIP(ac.AnomalyCLIPConfig(num_segments=4, seg_length=2, emb_size=8, heads=2), ["normal", "a", "b"],
                       64, pt)
    calls = []
    pt.register_forward_hook(lambda *a: calls.append(1))
    m.eval()
    m.predict({f"v{i}": np.random.default_rng(i).normal(size=(9, 64)).astype(np.float32) for i in range(4)})
    assert len(calls) == 1
    m.train()
    assert not bool(m.text_cache_valid)


def test_planted_benchmark_lower_bound():
    """AnomalyCLIP (demo config, planted class embeddings as text) on the planted benchmark."""
    from vadlib.metrics import evaluate_frames, recognition_metrics
    from vadlib.synthetic.planted_mil import make_planted_mil
    from vadlib.methods import WeakVideo
    from vadlib.methods import build as build_method
    from vadlib.methods import config as method_config
    from vadlib.train import fit, split_validation

    torch.set_num_threads(1)
    pb = make_planted_mil("test", seed=0)
    vids = [WeakVideo(v.name, v.features, v.class_id) for v in pb.train]
    tr, va = split_validation(vids, 0.2, 0)
    m = build_method("anomalyclip", method_config("anomalyclip", "demo", {"text_source": "embeddings"}),
                     pb.class_names, 64, text_embeddings=pb.text_embeddings, seed=0)
    fit(m, tr, va, seed=0, log=None)
    pred = m.predict({v.name: v.features for v in pb.test})
    auc = evaluate_frames({k: p[0] for k, p in pred.items()}, {v.name: v.frame_labels for v in pb.test})["micro_auc"]
    rec = recognition_metrics({v.name: v.frame_classes for v in pb.test}, {k: p[1] for k, p in pred.items()},
                              pb.class_names)
    assert auc >= 0.95, auc
    assert rec["mAUC"] >= 0.90, rec["mAUC"]


def test_feed_forward_channels_last_same_values_and_flop_count():
    from torch.utils.flop_counter import FlopCounterMode

    from vadlib.bench.anomalyclip import ffn_flop_per_step

    torch.manual_seed(0)
    ff = ac.FeedForward(8, 4, 3)
    plain = torch.nn.Sequential(ac.ChanLayerNorm(8), torch.nn.Conv2d(8, 32, 3, padding=1), torch.nn.LeakyReLU(),
                                torch.nn.Conv2d(32, 8, 3, padding=1))   # NCHW reference
    plain.load_state_dict({k: v.contiguous() for k, v in ff.state_dict().items()})
    assert plain[1].weight.is_contiguous() and ff[1].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(2, 8, 32, 16)
    assert torch.allclose(ff(x), plain(x), atol=1e-5)
    # the bench's FLOP formula equals what PyTorch counts for the feed-forward convolutions
    tr = ac.AxialTransformer(8, depth=1, heads=2, shape=(32, 16))
    xin = torch.randn(1, 8, 32, 16, requires_grad=True)
    with FlopCounterMode(display=False) as fc:
        tr(xin).sum().backward()
    counts = fc.get_flop_counts()["Global"]
    conv = sum(v for k, v in counts.items() if "convolution" in str(k))
    assert conv == ffn_flop_per_step(emb=8, depth=1, frames=512)


# ---------------------------------------------------------------------------------------------
# reference mode (issue 14): every switch changes the output, all on = the reference's formulas
# ---------------------------------------------------------------------------------------------


def _loss_with(switches: dict, logit_shift: float = 0.0, seed: int = 3):
    cfg = ac.AnomalyCLIPConfig.from_dict({"num_segments": 4, "seg_length": 2, "topk": 2, "bottomk": 2,
                                          "select_dropout": 0.7, "emb_size": 8, "heads": 2,
                                          "text_source": "embeddings", "reference": switches})
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(4, 8, 3, generator=g)
    logit = torch.randn(4, 8, generator=g) * 3 + logit_shift
    lp = ac.compose_log_probs(z, logit, unsafe_log=cfg.reference.log_without_eps)
    return ac.anomalyclip_loss({"z": z, "logit": logit, "log_probs": lp}, torch.tensor([1, 3, 0, 0]), cfg,
                               torch.Generator().manual_seed(seed))


def test_reference_switches_parse_and_reject_unknown():
    from vadlib.errors import ConfigError

    assert ac.AnomalyCLIPConfig.from_dict({"reference": True}).reference.active() == [
        "smooth_across_videos", "log_without_eps", "lr_zero_first_epoch", "mask_can_select_dropped",
        "narrow_segment_starts", "no_validation_split"]
    assert ac.AnomalyCLIPConfig.from_dict({}).reference.active() == []
    cfg = ac.AnomalyCLIPConfig.from_dict({"reference": {"log_without_eps": True}})
    assert ac.AnomalyCLIPConfig.from_dict(cfg.to_dict()).reference == cfg.reference   # round trip
    with pytest.raises(ConfigError, match="unknown switches"):
        ac.AnomalyCLIPConfig.from_dict({"reference": {"smooth": True}})
    with pytest.raises(ConfigError, match="true or false"):
        ac.AnomalyCLIPConfig.from_dict({"reference": {"log_without_eps": 1}})


def test_switch_smooth_across_videos_changes_smoothness():
    _, base = _loss_with({})
    _, ref = _loss_with({"smooth_across_videos": True})
    assert ref["smooth"] != pytest.approx(base["smooth"], rel=1e-3)
    p = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.5, 0.5, 0.2, 0.2]])
    # per segment 0; flattened: (1-0)² + (0.5-1)² + (0.2-0.5)² = 1.34
    assert ac.smoothness_flattened(p).item() == pytest.approx(1.34, rel=1e-6)


def test_switch_log_without_eps_is_inf_at_saturation_and_equal_otherwise():
    z, logit = torch.randn(5, 3), torch.tensor([-3.0, 0.0, 2.0, 120.0, -120.0])
    safe, unsafe = ac.compose_log_probs(z, logit), ac.compose_log_probs(z, logit, unsafe_log=True)
    assert torch.allclose(safe[:3], unsafe[:3], atol=1e-5)
    assert torch.isfinite(safe).all() and not torch.isfinite(unsafe).all()
    _, base = _loss_with({}, logit_shift=40.0)
    _, ref = _loss_with({"log_without_eps": True}, logit_shift=40.0)
    assert np.isfinite(base["bottomk_abn"]) and not np.isfinite(ref["bottomk_abn"])


def test_switch_mask_can_select_dropped():
    gen = lambda: torch.Generator().manual_seed(0)      # noqa: E731
    fixed = ac.mil_keep_mask(2000, 8, 0.7, 3, gen())
    plain = ac.mil_keep_mask(2000, 8, 0.7, 3, gen(), at_least_k=False)
    assert (fixed.sum(1) >= 3).all() and (plain.sum(1) < 3).any()
    assert (plain <= fixed).all()                      # the fix only adds kept segments


def test_switch_lr_zero_first_epoch():
    from vadlib.train import lr_factor, lr_factor_epoch

    assert lr_factor_epoch(0, 10, 2) == 0.0 and lr_factor_epoch(1, 10, 2) == 0.5
    assert lr_factor_epoch(2, 10, 2) == 1.0 and lr_factor_epoch(10, 10, 2) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 100, 20) > 0


def test_reference_mode_matches_the_reference_formulas_by_hand():
    """All switches on: the losses are those written in methods.md §1.8 with the reference's log(P)
    and flattened smoothness."""
    cfg = ac.AnomalyCLIPConfig.from_dict({"num_segments": 4, "seg_length": 2, "topk": 1, "bottomk": 1,
                                          "select_dropout": 0.0, "emb_size": 8, "heads": 2,
                                          "text_source": "embeddings", "reference": True})
    g = torch.Generator().manual_seed(5)
    z, logit = torch.randn(4, 8, 2, generator=g), torch.randn(4, 8, generator=g)
    lp = ac.compose_log_probs(z, logit, unsafe_log=True)
    _, t = ac.anomalyclip_loss({"z": z, "logit": logit, "log_probs": lp}, torch.tensor([1, 2, 0, 0]), cfg)
    s = torch.sigmoid(logit[:2]).reshape(-1)
    assert t["smooth"] == pytest.approx(float(((s[1:] - s[:-1]) ** 2).sum()), rel=1e-5)
    P = torch.cat([1 - torch.sigmoid(logit)[..., None], torch.softmax(z, -1) * torch.sigmoid(logit)[..., None]], -1)
    seg = z[2:].reshape(2, 4, 2, 2).sum(2).sum(-1).argmax(1)      # normal videos: top segment over all classes
    want = -torch.stack([torch.log(P[2 + i].reshape(4, 2, 3)[seg[i], :, 0]) for i in range(2)]).mean()
    assert t["topk_nor"] == pytest.approx(float(want), rel=1e-5)



def test_switch_narrow_segment_starts():
    rng = lambda: np.random.default_rng(0)      # noqa: E731
    T, N, L = 1000, 8, 16
    dist = (T - L + 1) // N
    wide = np.stack([ac.sample_grid_indices(T, N, L, r)[::L] for r in [rng()] for _ in range(400)])
    r = rng()
    narrow = np.stack([ac.sample_grid_indices(T, N, L, r, narrow=True)[::L] for _ in range(400)])
    off_w, off_n = wide - np.arange(N) * dist, narrow - np.arange(N) * dist
    assert off_n.min() == 0 and off_n.max() == dist - L + 1          # the reference's randint(dist - L + 2)
    assert off_w.max() > dist - L + 1 and off_w.max() < dist
