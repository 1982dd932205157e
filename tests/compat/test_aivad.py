"""AI-VAD (Reiss & Hoshen) velocity feature: reference-mode switches and, behind
VADLIB_REFERENCE_AIVAD, equality with the reference code."""

import os
from dataclasses import replace

import numpy as np
import pytest

from vadlib.compat import aivad
from vadlib.errors import ConfigError


def _flow(seed=0, h=60, w=80):
    rng = np.random.default_rng(seed)
    f = rng.normal(0, 2.0, (h, w, 2)).astype(np.float32)
    f[5:15, 5:20] = np.array([3.0, -1e-7], np.float32)      # an angle that rounds to 360° in float32 radians->degrees
    return f


BOXES = np.array([[2.4, 3.6, 30.2, 40.7], [40.0, 10.0, 75.0, 50.0]])


def test_presets_and_validation():
    assert aivad.AIVADSwitches.from_params("reference") == aivad.REFERENCE
    assert aivad.AIVADSwitches.from_params(None) == aivad.DEFAULT
    assert set(aivad.REFERENCE.reference_switches()) == set(aivad.DEFAULT.to_dict())
    with pytest.raises(ConfigError, match="unknown keys"):
        aivad.AIVADSwitches.from_params({"crop": 1})
    with pytest.raises(ConfigError, match="orientation"):
        aivad.AIVADSwitches(orientation="grad")


@pytest.mark.parametrize("field", sorted(aivad.DEFAULT.to_dict()))
def test_flipping_each_switch_changes_the_feature(field):
    f = _flow()
    for base, other in ((aivad.DEFAULT, aivad.REFERENCE), (aivad.REFERENCE, aivad.DEFAULT)):
        flipped = replace(base, **{field: getattr(other, field)})
        for bins in (1, 8):
            a = aivad.frame_velocities(f, BOXES, bins, base)
            b = aivad.frame_velocities(f, BOXES, bins, flipped)
            assert a.shape == b.shape == (2, bins)
            assert np.abs(a - b).max() > 1e-4, (field, base, bins)


def test_reference_behaviours_by_hand():
    f = np.zeros((20, 20, 2), np.float32)
    f[..., 0] = 3.0
    f[..., 1] = -1e-7                                         # angle 360° − ε
    box = (0, 0, 10, 10)
    # vadlib: into the last bin; the reference: in no bin
    assert aivad.velocity_feature(f, box, 8)[7] == pytest.approx(3.0, rel=1e-6)
    assert aivad.velocity_feature(f, box, 8, replace(aivad.DEFAULT, orientation="radians")).sum() == 0.0
    # fractional corners: floor vs ceil
    g = np.zeros((20, 20, 2), np.float32)
    g[:, 0, 0] = 10.0                                         # only column 0 moves
    assert aivad.velocity_feature(g, (0.5, 0, 4.5, 10), 1)[0] == pytest.approx(10.0 / 4)     # columns 0-3
    assert aivad.velocity_feature(g, (0.5, 0, 4.5, 10), 1, replace(aivad.DEFAULT, box_rounding="ceil"))[0] == 0.0
    # the 224 resize keeps a uniform field's mean; ShT's height scale divides it
    u = np.full((30, 40, 2), [1.0, 2.0], np.float32)
    assert aivad.velocity_feature(u, (0, 0, 40, 30), 1, aivad.REFERENCE)[0] == pytest.approx(3.0, rel=1e-6)
    assert aivad.velocity_feature(u, (0, 0, 40, 30), 1, aivad.DEFAULT, scale=30.0)[0] == pytest.approx(0.1, rel=1e-6)
    # no box: the whole frame
    assert aivad.frame_velocities(u, np.zeros((0, 4)), 1).shape == (1, 1)


REF = os.environ.get("VADLIB_REFERENCE_AIVAD")


@pytest.mark.skipif(not REF, reason="set VADLIB_REFERENCE_AIVAD to a clone of talreiss/Accurate-Interpretable-VAD "
                                    "to compare vadlib's velocity feature with the reference code")
def test_reference_mode_equals_the_reference_code():
    from vadlib.bench.reference_velocity import TARGET_REL, compare

    res = compare(REF)
    for case, (a, rel) in res["reference"].items():
        assert rel <= TARGET_REL, (case, a, rel)
    for field in aivad.DEFAULT.to_dict():
        assert max(r for _, r in res["fixes"][field].values()) > 1e-3, field
