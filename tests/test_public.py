"""The public face: ``import vadlib`` is light, and the names a notebook needs resolve to the real objects."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vadlib


def test_import_vadlib_stays_light():
    code = ("import sys, vadlib; heavy = [m for m in ('torch', 'open_clip', 'cv2', 'pandas', 'vadlib.train') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, target", [
    ("get_dataset", "vadlib.data.registry:get_dataset"),
    ("load_backbone", "vadlib.features.backbones:load_backbone"),
    ("FeatureStore", "vadlib.features.store:FeatureStore"),
    ("evaluate_frames", "vadlib.metrics:evaluate_frames"),
    ("METHODS", "vadlib.methods:METHODS"),
    ("search_collection", "vadlib.search:search_collection"),
])
def test_public_names_are_the_library_objects(name, target):
    import importlib

    module, _, attr = target.partition(":")
    assert getattr(vadlib, name) is getattr(importlib.import_module(module), attr)
    assert name in vadlib.__all__ and name in dir(vadlib)


def test_public_objects_work():
    import numpy as np

    assert "demo_a" in vadlib.list_datasets()
    assert {"anomalyclip", "sultani", "rtfm"} <= set(vadlib.METHODS.names())
    m = vadlib.evaluate_frames({"a": np.array([0.1, 0.9, 0.2])}, {"a": np.array([0, 1, 0])})
    assert m["micro_auc"] == 1.0


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vadlib.nope  # noqa: B018
