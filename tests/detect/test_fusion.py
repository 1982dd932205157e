"""FusionMethod: components min-max normalised on normal footage, then a weighted mean."""

from __future__ import annotations

import numpy as np
import pytest

from vadlib.detect import DetectMethod, FusionMethod
from vadlib.errors import ConfigError


class _Part(DetectMethod):
    def __init__(self, name):
        self.name = name


def test_fusion_normalises_each_part_on_the_reference_and_averages_by_weight():
    f = FusionMethod([_Part("a"), _Part("b")], weights=[3.0, 1.0])
    # reference: a spans [0, 2], b spans [10, 20] over two videos
    norm = f.fit_norm([[np.array([0.0, 1.0]), np.array([10.0, 12.0])],
                       [np.array([2.0]), np.array([20.0])]])
    assert norm == {"0:a": (0.0, 2.0), "1:b": (10.0, 20.0)}
    out = f.combine([np.array([1.0, 4.0]), np.array([15.0, 10.0])])
    # hand-worked: a -> [0.5, 2.0], b -> [0.5, 0.0]; (3a + b) / 4
    np.testing.assert_allclose(out, [0.5, 1.5])


def test_a_constant_reference_gets_a_unit_scale_and_a_missing_calibration_is_named():
    f = FusionMethod([_Part("a"), _Part("b")])
    assert f.fit_norm([[np.array([1.0, 1.0]), np.array([0.0, 2.0])]])["0:a"] == (1.0, 2.0)
    np.testing.assert_allclose(f.combine([np.array([3.0]), np.array([1.0])]), [(2.0 + 0.5) / 2])
    g = FusionMethod([_Part("a"), _Part("b")])
    with pytest.raises(ConfigError, match="--calibrate"):
        g.combine([np.zeros(2), np.zeros(2)])
    with pytest.raises(ConfigError, match="at least two"):
        FusionMethod([_Part("a")])
