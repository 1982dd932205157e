"""Validation AUC (micro and per kind) on hand-made scores, and choose()."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vadlib.data import get_dataset
from vadlib.errors import ConfigError, DataError
from vadlib.validation import choose, make_validation_set, validation_auc, validation_metrics

LABELS = {"c": np.array([0, 0, 0]), "a": np.array([0, 1, 1, 0]), "b": np.array([0, 1, 0])}
KINDS = {"c": "normal", "a": "skip", "b": "freeze"}
SCORES = {"c": np.array([0.1, 0.2, 0.3]), "a": np.array([0.0, 0.9, 0.8, 0.1]), "b": np.array([0.5, 0.05, 0.4])}


def test_auc_by_hand():
    r = validation_auc(SCORES, LABELS, KINDS)
    # positives 0.9, 0.8, 0.05 against 7 normals: 7 + 7 + 1 (0.05 > 0.0) pairs of 21
    assert r["micro_auc"] == pytest.approx(15 / 21)
    # skip: 0.9, 0.8 above every normal of the skip video and the clean copy
    assert r["per_kind"]["skip"] == pytest.approx(1.0)
    # freeze: 0.05 below all five normals of the freeze video and the clean copy
    assert r["per_kind"]["freeze"] == pytest.approx(0.0)
    assert set(r["per_kind"]) == {"skip", "freeze"}
    assert (r["n_videos"], r["n_frames"], r["n_anomalous"]) == (3, 10, 3)
    # macro: per-video AUCs of a (1.0) and b (0.0); the clean video has one class and is skipped
    assert r["macro_auc"] == pytest.approx(0.5)


def test_auc_with_smoothing_differs_and_is_reported():
    r = validation_auc(SCORES, LABELS, KINDS, sigma=1.0)
    assert r["sigma"] == 1.0
    assert r["micro_auc"] != pytest.approx(15 / 21)


def test_mismatched_inputs_raise():
    with pytest.raises(DataError, match="video sets differ"):
        validation_auc({k: v for k, v in SCORES.items() if k != "a"}, LABELS, KINDS)
    with pytest.raises(DataError, match="kinds and labels name different videos"):
        validation_auc(SCORES, LABELS, {"c": "normal", "a": "skip"})
    with pytest.raises(DataError):
        validation_auc({**SCORES, "a": np.zeros(5)}, LABELS, KINDS)


def test_metrics_on_a_written_set(train_ds, tmp_path):
    out = make_validation_set(train_ds, ["v0", "v1"], tmp_path / "s", ["skip", "patch"], seed=4, span=(5, 12), margin=3)
    ds = get_dataset("pseudo_anomalies", out)
    oracle = {v.name: v.frame_labels.astype(float) for v in ds.videos("test")}
    r = validation_metrics(oracle, ds)
    assert r["micro_auc"] == 1.0 and r["per_kind"] == {"patch": 1.0, "skip": 1.0}
    assert r["set"] == {"dataset": "tiny", "videos": ["v0", "v1"], "kinds": ["skip", "patch"], "seed": 4}
    # random scores land near chance
    rng = np.random.default_rng(0)
    noise = {n: rng.random(len(s)) for n, s in oracle.items()}
    r = validation_metrics(noise, ds)
    assert 0.2 < r["micro_auc"] < 0.8


def test_choose_picks_the_best_and_breaks_ties_by_order():
    aucs = {"a": 0.7, "b": 0.9, "c": 0.9, "d": math.nan}
    seen = []

    def fn(c):
        seen.append(c)
        return aucs[c]

    ch = choose(["a", "b", "c", "d"], fn)
    assert seen == ["a", "b", "c", "d"]
    assert (ch.best, ch.index, ch.auc) == ("b", 1, 0.9)
    assert [r["rank"] for r in ch.table] == [3, 1, 2, 4]
    assert [r["chosen"] for r in ch.table] == [False, True, False, False]
    # the tie goes the other way when the order does
    assert choose(["c", "b"], lambda c: aucs[c]).best == "c"


def test_choose_with_dict_results_and_settings():
    cands = [{"sigma": s} for s in (0, 3, 6)]
    ch = choose(cands, lambda c: {"micro_auc": 1 - abs(c["sigma"] - 3) / 10, "per_kind": {}})
    assert ch.best == {"sigma": 3}
    assert ch.table[0]["result"]["micro_auc"] == pytest.approx(0.7)
    # a key function: the mean over chosen kinds
    res = {0: {"micro_auc": 0.9, "per_kind": {"skip": 0.5, "patch": 0.6}},
           1: {"micro_auc": 0.6, "per_kind": {"skip": 0.9, "patch": 0.8}}}
    ch = choose([0, 1], res.get, key=lambda r: np.mean(list(r["per_kind"].values())))
    assert (ch.best, ch.auc) == (1, pytest.approx(0.85))
    assert choose([0, 1], res.get).best == 0
    with pytest.raises(ConfigError, match="without 'macro_auc'"):
        choose(cands, lambda c: {"micro_auc": 0.5}, key="macro_auc")


def test_choose_bad_input():
    with pytest.raises(ConfigError, match="no candidates"):
        choose([], lambda c: 0.5)
    with pytest.raises(ConfigError, match="NaN"):
        choose([1, 2], lambda c: math.nan)
