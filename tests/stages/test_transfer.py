"""The transfer stage without papermill: every dvc.yaml output (matrix, models, predictions, heat map)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from vadlib.data import get_dataset
from vadlib.stages import transfer


def test_transfer_writes_every_output(repo, params_yaml):
    p = {**params_yaml["transfer"], "train": {"epochs": 2}}
    res = transfer.run(p, repo.ctx("transfer"))
    assert repo.missing("transfer") == []
    out = repo.root / "reports" / "transfer"
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["pairs"]) == {"demo_a->demo_b", "demo_b->demo_a"}
    assert set(m["pairs"]["demo_a->demo_b"]) == set(p["variants"])
    assert m["protocol"]["real_weights"] is False and m["protocol"]["train"]["epochs"] == 2
    assert m["protocol"]["precision"] == {"demo_a": "fp32", "demo_b": "fp32"}
    table = pd.read_csv(out / "transfer_matrix.csv")
    assert {"source", "target", "variant", "score", "micro_auc"} <= set(table.columns)
    assert "RANDOM WEIGHTS" in (out / "transfer_matrix.md").read_text()
    assert sorted(p.name for p in (out / "model").iterdir()) == ["demo_a.pt", "demo_b.pt"]
    ck = torch.load(out / "model" / "demo_a.pt", map_location="cpu", weights_only=True)
    assert ck["features"]["backbone"] == "vadlib-tiny"
    assert len(list((out / "predictions").glob("*.npz"))) == len(res["result"].predictions)


def test_transfer_matrix_is_the_mean_of_the_per_seed_matrices(repo, params_yaml):
    p = {**params_yaml["transfer"], "train": {"epochs": 2}, "variants": ["full", "clip_zeroshot"], "seeds": [0, 1]}
    transfer.run(p, repo.ctx("transfer_seeds"))
    out = repo.root / "reports" / "transfer_seeds"
    m = json.loads((out / "metrics.json").read_text())
    per = [json.loads((out / "seeds" / f"seed_{s}" / "metrics.json").read_text()) for s in (0, 1)]
    cell, vals = m["pairs"]["demo_a->demo_b"]["full"], [x["pairs"]["demo_a->demo_b"]["full"]["micro_auc"] for x in per]
    assert cell["n_seeds"] == 2 and cell["micro_auc"] == pytest.approx(sum(vals) / 2)
    assert cell["micro_auc_std"] == pytest.approx(abs(vals[0] - vals[1]) / 2 ** 0.5)
    w = [torch.load(out / "seeds" / f"seed_{s}" / "model" / "demo_a.pt", weights_only=True)["state_dict"] for s in (0, 1)]
    assert any(not torch.equal(w[0][k], w[1][k]) for k in w[0])   # the seeds train different models
    assert m["pairs"]["demo_a->demo_b"]["clip_zeroshot"]["micro_auc_std"] == 0.0   # untrained variant
    assert " ± " in (out / "transfer_matrix.md").read_text()
    assert "seconds" not in (out / "transfer_matrix.csv").read_text() + (out / "metrics.json").read_text()
    assert set(json.loads((out / "timing.json").read_text())["training_seconds"]) == {"0", "1"}


def test_transfer_validates_each_pair_and_chooses_sigma_before_test(repo, params_yaml, capsys):
    """transfer.validation: the listed training videos are never trained on, each pair's set is made from
    the target's (normal) listed videos, σ is chosen among the candidates on the full variant's key AUC
    and the pair's test scores use it."""
    v = {**params_yaml["transfer"]["validation"], "sigma": [0, 3], "root": str(repo.root / "data" / "validation")}
    p = {**params_yaml["transfer"], "train": {"epochs": 2}, "variants": ["full", "clip_zeroshot"], "seeds": [0],
         "validation": v}
    res = transfer.run(p, repo.ctx("transfer_val"), figures=False)
    m = json.loads((repo.root / "reports" / "transfer_val" / "metrics.json").read_text())
    block = m["validation"]["pairs"]["demo_a->demo_b"]
    assert block["made_from"] == "demo_b" and block["held_out"] == v["videos"]["demo_b"]
    assert set(block["variants"]) == {"full", "clip_zeroshot"} and block["variant"] == "full"
    cands = block["candidates"]
    assert [c["sigma"] for c in cands] == [0.0, 3.0] and sum(c["chosen"] for c in cands) == 1
    best = max(cands, key=lambda c: (c["key_auc"], -c["sigma"]))
    assert block["sigma"] == best["sigma"] and block["auc"] == best["key_auc"]
    assert m["validation"]["auc"] == sum(b["auc"] for b in m["validation"]["pairs"].values()) / 2
    n_train = {d: len(get_dataset(d, **repo.datasets[d]).videos("train")) for d in ("demo_a", "demo_b")}
    out = capsys.readouterr().out
    assert f"training 'temporal' on demo_a ({n_train['demo_a'] - 2} videos)" in out   # the listed two left out
    pr = res["result"].predictions[("demo_a", "demo_b", "full")]
    assert pr.meta["sigma"] == block["sigma"]        # the test scores were smoothed with the choice


def test_validation_source_prefers_normal_target_videos(repo, params_yaml):
    data = {d: get_dataset(d, **repo.datasets[d]) for d in ("demo_a", "demo_b")}
    vids = params_yaml["transfer"]["validation"]["videos"]
    assert transfer.validation_source({"videos": vids}, data, "demo_a", "demo_b") == "demo_b"
    assert transfer.validation_source({"videos": {"demo_a": vids["demo_a"]}}, data, "demo_a", "demo_b") == "demo_a"
    assert transfer.validation_source({"videos": {}}, data, "demo_a", "demo_b") is None
    abnormal = [v.name for v in data["demo_b"].videos("train") if v.label == 1][:1]
    assert transfer.validation_source({"videos": {"demo_b": abnormal}}, data, "demo_a", "demo_b") is None
