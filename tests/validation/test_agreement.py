"""vadlib.validation.agreement: the points of flow_nf runs and Spearman's rho between validation and test AUC."""

from __future__ import annotations

import json

import pytest

from vadlib.errors import DataError
from vadlib.validation.agreement import agreement_rows, spearman


def _metrics(path, val: dict, test: dict, naive=(0.6, 0.9)):
    block = {m: {"micro_auc": v, "key_auc": v / 2, "per_kind": {"skip": v, "freeze": 0.5}} for m, v in val.items()}
    block["naive"] = {"micro_auc": naive[0], "key_auc": 0.3, "per_kind": {"skip": 1.0, "freeze": 0.0}}
    res = {m: {"micro_auc": t, "macro_auc": t} for m, t in test.items()}
    res["naive"] = {"micro_auc": naive[1], "macro_auc": naive[1]}
    path.write_text(json.dumps({"validation": {"auc": 0.5, **block}, "protocol": {"sigma": 3},
                                "results": {"ped2": {"transfer": "in-domain", **res}}}))
    return path


def test_points_and_rank_correlation(tmp_path):
    a = _metrics(tmp_path / "a.json", {"flow_nf": 0.7, "velocity": 0.8}, {"flow_nf": 0.85, "velocity": 0.95})
    b = _metrics(tmp_path / "b.json", {"flow_nf": 0.75, "fusion": 0.65}, {"flow_nf": 0.88, "fusion": 0.80})
    rows = agreement_rows({"a": a, "b": b}, "ped2")
    # the naive point repeats in both runs and is kept once; 'fusion' absent from run a is skipped
    assert [(r["run"], r["method"]) for r in rows] == [("a", "naive"), ("a", "flow_nf"), ("a", "velocity"),
                                                      ("b", "flow_nf"), ("b", "fusion")]
    assert rows[1]["val_skip"] == 0.7 and rows[1]["val_key_auc"] == 0.35 and rows[1]["test_macro_auc"] == 0.85
    # validation ranks (rows in order) 1 3 5 4 2, test ranks 4 2 5 3 1: sum d² = 12, rho = 1 - 6·12/(5·24)
    r = spearman(rows, "val_micro_auc")
    assert r["n"] == 5 and r["rho"] == pytest.approx(0.4)
    flipped = [{**x, "test_micro_auc": -x["val_micro_auc"]} for x in rows]
    assert spearman(flipped, "val_micro_auc")["rho"] == pytest.approx(-1.0)


def test_a_run_without_validation_is_named(tmp_path):
    p = tmp_path / "m.json"
    p.write_text(json.dumps({"validation": {"note": "no set"}, "results": {"ped2": {}}}))
    with pytest.raises(DataError, match="no validation block"):
        agreement_rows({"x": p}, "ped2")
