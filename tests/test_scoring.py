"""Tests for vadlib.scoring: per-video smoothing, training-only normalisation, fusion."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from vadlib.errors import ConfigError, DataError
from vadlib.scoring import MinMaxNormalizer, fuse, gaussian_smooth


def test_smoothing_does_not_leak_across_videos():
    v1 = np.zeros(20)
    v1[-1] = 100.0  # spike at the very end of video 1
    v2 = np.linspace(0, 1, 15)
    both = gaussian_smooth({"v1": v1, "v2": v2}, sigma=4)
    alone = gaussian_smooth({"v2": v2}, sigma=4)
    np.testing.assert_array_equal(both["v2"], alone["v2"])
    # and the spike is really smoothed inside video 1 (so sigma did something)
    assert both["v1"][-1] < 100 and both["v1"][-2] > 0
    # concatenating first WOULD leak: the check above is not vacuous
    leaked = gaussian_filter1d(np.r_[v1, v2], 4, mode="nearest")[20:]
    assert not np.allclose(leaked, alone["v2"])


def test_smoothing_matches_scipy_nearest_and_none_is_identity():
    x = np.random.default_rng(0).normal(size=50)
    np.testing.assert_allclose(gaussian_smooth({"a": x}, 2.5)["a"], gaussian_filter1d(x, 2.5, mode="nearest"))
    for s in (None, 0):
        out = gaussian_smooth({"a": x}, s)["a"]
        np.testing.assert_array_equal(out, x)
        assert out is not x


def test_smoothing_rejects_bad_sigma_and_shape():
    with pytest.raises(ConfigError):
        gaussian_smooth({"a": np.zeros(3)}, -1)
    with pytest.raises(DataError, match="'a'"):
        gaussian_smooth({"a": np.zeros((3, 2))}, 1)


# ------------------------------------------------------------------ MinMaxNormalizer


def test_normalizer_uses_training_statistics_only():
    train = {"t1": np.array([2.0, 4.0]), "t2": np.array([6.0])}
    test = {"x": np.array([100.0, 200.0]), "y": np.array([4.0])}
    n = MinMaxNormalizer().fit(train)
    assert n.stats["lo"] == 2.0 and n.stats["hi"] == 6.0 and n.stats["n_fit"] == 3
    out = n.transform(test)
    # (x - 2) / 4 with TRAINING range; a test-fitted min-max would give [1.0, ...] for video x max
    np.testing.assert_allclose(out["x"], [24.5, 49.5])
    np.testing.assert_allclose(out["y"], [0.5])
    # transforming test data did not refit
    assert n.stats["lo"] == 2.0 and n.stats["hi"] == 6.0
    # per video, no per-video min-max: a video's own range is not used
    assert out["x"].min() != 0.0


def test_normalizer_quantiles_array_input_and_errors():
    x = np.arange(101.0)
    n = MinMaxNormalizer(lo_q=0.1, hi_q=0.9).fit(x)
    assert n.lo_ == pytest.approx(10.0) and n.hi_ == pytest.approx(90.0)
    np.testing.assert_allclose(n.transform(np.array([10.0, 50.0, 90.0])), [0.0, 0.5, 1.0])
    with pytest.raises(ConfigError, match="before fit"):
        MinMaxNormalizer().transform({"a": np.zeros(2)})
    with pytest.raises(ConfigError):
        MinMaxNormalizer(lo_q=0.9, hi_q=0.1)
    with pytest.raises(DataError, match="NaN"):
        MinMaxNormalizer().fit(np.array([1.0, np.nan]))
    # constant training scores: shift only, no division by zero
    c = MinMaxNormalizer().fit(np.full(4, 3.0))
    np.testing.assert_allclose(c.transform(np.array([3.0, 4.0])), [0.0, 1.0])


# ------------------------------------------------------------------ fuse


def test_fuse_weighted_sum_and_training_normalisation():
    a = {"v1": np.array([0.0, 1.0]), "v2": np.array([2.0])}
    b = {"v1": np.array([10.0, 30.0]), "v2": np.array([20.0])}
    out = fuse([a, b], weights=[0.25, 0.75])
    np.testing.assert_allclose(out["v1"], [7.5, 22.75])
    np.testing.assert_allclose(out["v2"], [15.5])
    # default equal weights
    np.testing.assert_allclose(fuse([a, b])["v2"], [11.0])
    # normalised with TRAINING ranges: a in [0, 2] -> /2, b in [10, 50] -> (x-10)/40
    out = fuse([a, b], train_scores=[np.array([0.0, 2.0]), np.array([10.0, 50.0])])
    np.testing.assert_allclose(out["v1"], [0.5 * 0 + 0.5 * 0, 0.5 * 0.5 + 0.5 * 0.5])
    np.testing.assert_allclose(out["v2"], [0.5 * 1.0 + 0.5 * 0.25])
    # explicit normalizers, None = already on scale
    na = MinMaxNormalizer().fit(np.array([0.0, 4.0]))
    np.testing.assert_allclose(fuse([a, a], normalizers=[na, None])["v2"], [0.5 * 0.5 + 0.5 * 2.0])


def test_fuse_rejects_mismatched_inputs():
    a = {"v1": np.zeros(3), "v2": np.zeros(2)}
    with pytest.raises(DataError, match="v2"):
        fuse([a, {"v1": np.zeros(3)}])
    with pytest.raises(DataError, match=r"'v1'.*length"):
        fuse([a, {"v1": np.zeros(4), "v2": np.zeros(2)}])
    with pytest.raises(ConfigError, match="weights"):
        fuse([a, a], weights=[1.0])
    with pytest.raises(ConfigError):
        fuse([])
