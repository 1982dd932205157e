"""Shared fixtures: the ../shared data location and a tiny random-weight backbone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PED2 = SHARED / "datasets" / "ucsd_ped2"

needs_ped2 = pytest.mark.skipif(not PED2.exists(), reason=f"{PED2} (real UCSD Ped2 data in ../shared) not present")


@pytest.fixture(scope="session")
def tiny_backbone():
    import warnings

    from vadlib.features import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("vadlib-tiny", "random")


@pytest.fixture(autouse=True)
def _user_cache_in_tmp(tmp_path_factory, monkeypatch):
    """User-level caches (e.g. `vadlib detect`'s optical-flow cache) go to a temporary folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg_cache"))
