"""Files written before the methods moved into ``vadlib/methods/`` still load (``vadlib._moved``)."""

from __future__ import annotations

import sys
from pathlib import Path

import joblib
import numpy as np

from vadlib._moved import MOVED, old_module_paths
from vadlib.methods.flow_nf import density

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_ped2_velocity_model_names_the_old_path_and_loads_as_the_new_class():
    path = ROOT / "reports" / "flow_nf_ped2" / "model" / "velocity.joblib"
    assert b"vadlib.models.density" in path.read_bytes()       # written before the move
    m = density.load_density(path)
    assert type(m) is density.GMMDensity                        # the moved class, not a stale copy
    assert density.GMMDensity.load(path).gmm_.n_components == m.gmm_.n_components
    assert "vadlib.models" not in sys.modules and "vadlib.models.density" not in sys.modules


def test_a_pickle_naming_an_old_module_path_loads(tmp_path):
    gmm = density.GMMDensity(n_components=1).fit(np.random.default_rng(0).normal(size=(40, 3)))
    path = gmm.save(tmp_path / "new.joblib")
    old = tmp_path / "old.joblib"
    joblib.dump(gmm, old, protocol=2)                            # protocol 2 names classes as text lines
    raw = old.read_bytes()
    assert b"vadlib.methods.flow_nf.density" in raw
    old.write_bytes(raw.replace(b"vadlib.methods.flow_nf.density", b"vadlib.models.density"))
    back = density.load_density(old)
    assert type(back) is density.GMMDensity
    x = np.random.default_rng(1).normal(size=(5, 3))
    np.testing.assert_array_equal(back.score_samples(x), density.load_density(path).score_samples(x))


def test_every_new_path_imports_and_the_aliases_are_gone_afterwards():
    import importlib

    with old_module_paths():
        for old, new in MOVED.items():
            assert importlib.import_module(old).__doc__ == f"moved to {new}"
        assert sys.modules["vadlib.models.zeroshot"].ZeroShotScorer is importlib.import_module(
            "vadlib.methods.zeroshot.model").ZeroShotScorer
    assert not any(k in sys.modules for k in MOVED if k.startswith("vadlib.models"))
