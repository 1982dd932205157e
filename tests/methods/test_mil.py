"""MIL baselines: segment features, Sultani ranking loss by hand, RTFM top-k, planted sanity."""

import numpy as np
import pytest
import torch

from vadlib.errors import DataError
from vadlib.methods.mil import model as mil


def test_segment_means_and_frame_assignment():
    f = np.arange(64, dtype=np.float32).reshape(64, 1)
    s = mil.segment_means(f, 32)
    np.testing.assert_allclose(s[:, 0], np.arange(32) * 2 + 0.5)
    seg = mil.segment_of_frame(64, 32)
    assert seg[0] == 0 and seg[1] == 0 and seg[2] == 1 and seg[-1] == 31
    short = mil.segment_means(np.ones((5, 3), np.float32), 32)      # shorter than the bag: frames repeat
    assert short.shape == (32, 3) and np.isfinite(short).all()
    n = mil.segment_means(np.full((10, 2), 3.0, np.float32), 4, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, rtol=1e-6)


def test_sultani_loss_by_hand():
    cfg = mil.MILConfig(w_smooth=0.1, w_sparse=0.01, w_l2=0.0)
    sa = torch.tensor([[0.1, 0.9, 0.2], [0.3, 0.4, 0.2]])
    sn = torch.tensor([[0.2, 0.5, 0.1], [0.0, 0.1, 0.05]])
    total, t = mil.sultani_loss(sa, sn, cfg)
    # hinge: a1 max .9 vs n max .5/.1 → .6, .2 → mean .4; a2 max .4 → 1.1, .7 → .9; sum 1.3
    assert t["hinge"] == pytest.approx(1.3, rel=1e-6)
    assert t["sparse"] == pytest.approx(2.1, rel=1e-6)
    assert t["smooth"] == pytest.approx(0.64 + 0.49 + 0.01 + 0.04, rel=1e-5)   # never across the two bags
    assert float(total) == pytest.approx(1.3 + 0.01 * 2.1 + 0.1 * 1.18, rel=1e-5)


def test_smooth_within_ignores_video_boundaries():
    s = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    assert mil.smooth_within(s).item() == 0.0


def test_rtfm_topk_by_magnitude_and_loss():
    g = torch.Generator().manual_seed(0)
    f = torch.zeros(3, 32, 4)
    f[:, 5, 0] = 10.0
    idx = mil.topk_by_magnitude(f, 3, 0.0, g)
    assert (idx[:, 0] == 5).all()
    idx = mil.topk_by_magnitude(torch.randn(64, 32, 4), 3, 0.999, g)
    assert idx.shape == (64, 3)
    net = mil.RTFMNet(8, 16, 0.7)
    sa, fa = net(torch.randn(4, 32, 8))
    sn, fn = net(torch.randn(4, 32, 8))
    total, t = mil.rtfm_loss(sa, fa, sn, fn, mil.MILConfig.from_dict(mil.RTFM_CFG), g)
    assert torch.isfinite(total) and set(t) == {"bce", "magnitude", "smooth", "sparse"}
    total.backward()


def test_predict_rejects_nan_naming_video():
    net = mil.SultaniNet(4, 8)
    f = np.ones((40, 4), np.float32)
    f[7] = np.inf
    with pytest.raises(DataError, match="cam_07"):
        mil.predict_sultani(net, {"cam_07": f}, mil.MILConfig())
    out = mil.predict_rtfm(mil.RTFMNet(4, 8), {"v": np.ones((40, 4), np.float32)}, mil.MILConfig(snippet=16))
    assert out["v"].shape == (40,)


@pytest.mark.parametrize("method", ["sultani", "rtfm"])
def test_planted_sanity(method):
    """The baselines learn something on the planted benchmark (lower bound well below AnomalyCLIP's)."""
    from vadlib.metrics import evaluate_frames
    from vadlib.synthetic.planted_mil import make_planted_mil
    from vadlib.methods import WeakVideo
    from vadlib.methods import build as build_method
    from vadlib.methods import config as method_config
    from vadlib.train import fit

    torch.set_num_threads(1)
    pb = make_planted_mil("test", seed=0)
    m = build_method(method, method_config(method, "demo", {"epochs": 40}), pb.class_names, 64, seed=0)
    fit(m, [WeakVideo(v.name, v.features, v.class_id) for v in pb.train], seed=0, log=None)
    pred = m.predict({v.name: v.features for v in pb.test})
    auc = evaluate_frames({k: p[0] for k, p in pred.items()}, {v.name: v.frame_labels for v in pb.test})["micro_auc"]
    assert auc >= 0.6, auc
