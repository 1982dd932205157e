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
    ("load_method", "vadlib.methods:load"),
    ("detect_videos", "vadlib.detect.api:detect_videos"),
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
    assert {"anomalyclip", "sultani", "rtfm", "zeroshot"} <= set(vadlib.METHODS.names())
    m = vadlib.evaluate_frames({"a": np.array([0.1, 0.9, 0.2])}, {"a": np.array([0, 1, 0])})
    assert m["micro_auc"] == 1.0


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        vadlib.nope  # noqa: B018


def test_detect_and_search_are_callable_and_stay_the_modules():
    import vadlib.detect.cli  # noqa: F401  (importing a submodule rebinds vadlib.detect: still callable)
    import vadlib.search as search_module

    assert callable(vadlib.detect) and vadlib.detect is __import__("sys").modules["vadlib.detect"]
    assert callable(vadlib.search) and vadlib.search is search_module
    assert "detect" in vadlib.__all__ and "search" in vadlib.__all__


def test_vadlib_detect_is_the_command_as_a_function(tmp_path):
    """``vadlib.detect(...)`` runs what ``vadlib detect`` runs: the same scores and events in the same
    output files, returned as :class:`~vadlib.detect.api.Detection` s (random tiny weights: plumbing only)."""
    import json

    import numpy as np

    from vadlib.detect import main as detect_main
    from vadlib.errors import ConfigError
    from vadlib.synthetic.flow import write_video

    clip = write_video(tmp_path / "clip", n=16, size=(40, 56), seed=3, sq=10)
    common = dict(backbone="vadlib-tiny", pretrained="random", every=4, threshold=0.5, no_video=True)
    got = vadlib.detect([clip], method="zeroshot", prompts=["a square"], out=tmp_path / "fn", **common)
    assert list(got) == [str(clip)]
    d = got[str(clip)]
    assert d.out == tmp_path / "fn" / "clip" and d.n_frames == 16 and d.scores.shape == (16,)
    assert d.meta["real_weights"] is False and d.threshold.value == 0.5
    rc = detect_main([str(clip), "--method", "zeroshot", "--prompt", "a square", "--backbone", "vadlib-tiny",
                      "--pretrained", "random", "--every", "4", "--threshold", "0.5", "--no-video",
                      "--out", str(tmp_path / "cli")])
    assert rc == 0
    a = json.loads((tmp_path / "fn" / "clip" / "events.json").read_text())
    b = json.loads((tmp_path / "cli" / "clip" / "events.json").read_text())
    assert a["events"] == b["events"] and a["threshold"]["value"] == b["threshold"]["value"]
    assert len(a["events"]) == len(d.events)
    import pandas as pd

    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "cli" / "clip" / "scores.parquet")["score"], d.scores)
    # errors are raised (not an exit status), naming the option
    with pytest.raises(ConfigError, match="unknown option.*thresold"):
        vadlib.detect(clip, prompts="a square", out=tmp_path / "x", thresold=0.5)
    with pytest.raises(ConfigError, match="--prompt"):
        vadlib.detect(clip, out=tmp_path / "y", **common)
