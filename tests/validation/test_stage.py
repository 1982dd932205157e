"""vadlib.validation.stage: held-out training videos, the set a stage's params make, the choice key."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vadlib.errors import ConfigError
from vadlib.validation.stage import ValidationParams, choice_rows, held_out, key_auc, prepare_set, without_videos


def _vcfg(root, **kw):
    from dataclasses import asdict

    return {**asdict(ValidationParams()), "videos": {"tiny": ["v0", "v1"]}, "root": str(root),
            "span": [6, 8], "margin": 2, **kw}


def test_without_videos_holds_out_training_videos_only(train_ds):
    kept = without_videos(train_ds, ["v0"])
    assert [v.name for v in kept.videos("train")] == ["v1", "v2"]
    assert [v.name for v in train_ds.videos("train")] == ["v0", "v1", "v2"]         # the original is untouched
    assert [v.name for v in kept.meta["full_splits"]["train"]] == ["v0", "v1", "v2"]  # position-indexed files
    assert kept.videos("test") == train_ds.videos("test")
    with pytest.raises(ConfigError, match=r"validation.videos.tiny: \['t0'\] are not training videos"):
        without_videos(train_ds, ["t0"])
    with pytest.raises(ConfigError, match="holds out every training video"):
        without_videos(train_ds, ["v0", "v1", "v2"])


def test_prepare_set_writes_once_per_config(train_ds, tmp_path):
    assert prepare_set(train_ds, _vcfg(tmp_path, videos={"other": ["v0"]})) is None
    assert held_out(_vcfg(tmp_path), "tiny") == ["v0", "v1"] and held_out(None, "tiny") == []
    a = prepare_set(train_ds, _vcfg(tmp_path, kinds=["skip", "patch"]))
    assert {v.meta["kind"] for v in a.videos("test")} == {"skip", "patch", "normal"}
    assert {v.meta["source_video"] for v in a.videos("test")} == {"v0", "v1"}
    again = prepare_set(train_ds, _vcfg(tmp_path, kinds=["skip", "patch"]))
    assert again.root == a.root and again.name == a.name
    other = prepare_set(train_ds, _vcfg(tmp_path, kinds=["skip", "patch"], seed=1))
    assert other.root != a.root and other.name != a.name           # another seed: another folder, another cache name


def test_key_auc_is_the_mean_over_the_key_kinds():
    r = {"per_kind": {"skip": 1.0, "freeze": 0.0, "patch": 0.8, "object": float("nan")}}
    assert key_auc(r, ["skip", "patch"]) == pytest.approx(0.9)
    assert key_auc(r, []) == pytest.approx(0.6)                    # every kind, NaN skipped
    assert math.isnan(key_auc(r, ["object"]))
    with pytest.raises(ConfigError, match=r"key_kinds: \['jump'\] are not kinds"):
        key_auc(r, ["jump"])


def test_choice_rows_flatten_the_table():
    from vadlib.validation import choose

    res = {0: {"key_auc": 0.6, "micro_auc": 0.7, "macro_auc": 0.5, "per_kind": {"skip": 0.6}},
           3: {"key_auc": 0.8, "micro_auc": 0.75, "macro_auc": 0.55, "per_kind": {"skip": 0.8}}}
    rows = choice_rows(choose([0, 3], res.__getitem__, key="key_auc"), lambda s: {"sigma": s})
    assert [(r["sigma"], r["rank"], r["chosen"], r["auc_skip"]) for r in rows] == [(0, 2, False, 0.6), (3, 1, True, 0.8)]
    assert np.isclose(rows[1]["key_auc"], 0.8)
