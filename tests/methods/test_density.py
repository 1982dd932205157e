"""Density models: ordering of in/out-of-distribution scores, save/load, bad input."""

import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError, DataError
from vadlib.methods.flow_nf.density import GMMDensity, KNNDensity, PoseFlowDensity, load_density, make_density

torch.set_num_threads(1)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.normal(0, 0.3, (300, 3)), rng.normal(3, 0.3, (300, 3))])
    inside = np.concatenate([rng.normal(0, 0.3, (50, 3)), rng.normal(3, 0.3, (50, 3))])
    outside = rng.normal(1.5, 0.3, (100, 3))
    return train, inside, outside


@pytest.mark.parametrize("kind,params", [("gmm", {"n_components": 2}), ("knn", {"k": 1}), ("knn", {"k": 5})])
def test_sklearn_models_rank_and_roundtrip(kind, params, tmp_path):
    train, inside, outside = _data()
    m = make_density(kind, **params).fit(train)
    s_in, s_out = m.score_samples(inside), m.score_samples(outside)
    assert s_in.shape == (100,) and s_out.shape == (100,)
    assert np.mean(s_in[:, None] > s_out[None, :]) > 0.95
    p = m.save(tmp_path / f"{kind}.joblib")
    assert np.allclose(load_density(p).score_samples(inside), s_in)


def test_knn_exclude_self():
    train, _, _ = _data()
    m = KNNDensity(k=1).fit(train)
    assert np.allclose(m.score_samples(train), 0)
    assert np.all(m.score_samples(train, exclude_self=True) < 0)


def test_pose_flow_ranks(tmp_path):
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 34)
    train = base + rng.normal(0, 0.2, (800, 34))
    inside = base + rng.normal(0, 0.2, (60, 34))
    outside = base + rng.normal(0, 0.2, (60, 34)) + rng.normal(0, 1.5, 34)
    m = PoseFlowDensity(K=2, hidden=16, epochs=6, seed=0).fit(train)
    s_in, s_out = m.score_samples(inside), m.score_samples(outside)
    assert np.mean(s_in[:, None] > s_out[None, :]) > 0.95
    p = m.save(tmp_path / "pose.pt")
    assert np.allclose(load_density(p).score_samples(inside), s_in, atol=1e-5)


def test_bad_input():
    with pytest.raises(ConfigError, match="before fit"):
        GMMDensity().score_samples(np.zeros((2, 2)))
    with pytest.raises(DataError, match="NaN"):
        GMMDensity().fit(np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]))
    with pytest.raises(DataError, match="components"):
        GMMDensity(n_components=5).fit(np.zeros((3, 2)))
    with pytest.raises(ConfigError):
        KNNDensity(k=0)
