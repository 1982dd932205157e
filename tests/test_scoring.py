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
