"""The flow_nf stage without papermill, on the tiny demo with a small Glow."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from vadlib.methods.flow_nf.pipeline import FlowNFModel
from vadlib.stages import flow_nf


def test_flow_nf_writes_every_output(repo, params_yaml):
    p = {**params_yaml["flow_nf"], "cache": str(repo.root / "data" / "flow"), "workers": 1, "calib_every": 2,
         "glow": {"K": 2, "hidden": 16, "epochs": 1, "batch_size": 64, "max_train": 2000},
         "pose": {"epochs": 1},
         "validation": {**params_yaml["flow_nf"]["validation"], "root": str(repo.root / "data" / "validation")}}
    res = flow_nf.run(p, repo.ctx("flow_nf"))
    assert repo.missing("flow_nf") == []
    out = repo.root / "reports" / "flow_nf"
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["results"]) == {"demo_a", "demo_b"} and m["results"]["demo_b"]["transfer"] == "demo_a → demo_b"
    assert m["params"]["glow"]["K"] == 2 and m["params"]["glow"]["L"] == 1    # merged with the defaults
    assert m["rows"] and m["params"]["seed"] == [0, 1, 2] and m["protocol"]["precision"] == "fp32"
    per = [json.loads((out / "seeds" / f"seed_{s}" / "metrics.json").read_text()) for s in (0, 1, 2)]
    vals = [x["results"]["demo_a"]["flow_nf"]["micro_auc"] for x in per]
    cell = m["results"]["demo_a"]["flow_nf"]
    assert cell["micro_auc"] == pytest.approx(sum(vals) / 3) and cell["n_seeds"] == 3
    assert cell["micro_auc_min"] == min(vals) and cell["micro_auc_max"] == max(vals)
    assert m["results"]["demo_a"]["naive"]["n_seeds"] == 1           # untrained: one value
    row = next(r for r in m["rows"] if r["method"] == "flow_nf: flow_nf" and r["dataset"] == "demo_a")
    assert row["micro_auc_std"] == cell["micro_auc_std"] and row["n_seeds"] == 3
    assert "seconds" not in (out / "metrics.json").read_text() + (out / "results.csv").read_text()
    assert set(json.loads((out / "timing.json").read_text())) == {"0", "1", "2"}
    table = pd.read_csv(out / "results.csv")
    assert set(table["test"]) == {"demo_a", "demo_b"} and "fusion" in set(table["method"])
    assert FlowNFModel.load(out / "model").source == "demo_a"
    names = {p.name for p in res["figures"]}
    assert names == {f"{k}_{d}.png" for k in ("loglik_hist", "timeline_fusion", "timeline_flow_nf")
                     for d in ("demo_a", "demo_b")}
    # validation: the held-out training videos fit nothing; their pseudo-anomaly AUCs are in metrics.json
    held = params_yaml["flow_nf"]["validation"]["videos"]["demo_a"]
    assert m["validation"]["held_out"] == held
    assert not set(held) & set(m["info"]["fit_videos"] + m["info"]["calib_videos"])
    v = m["validation"]
    assert set(v["fusion"]["per_kind"]) == set(params_yaml["flow_nf"]["validation"]["kinds"])
    v0 = json.loads((out / "seeds" / "seed_0" / "metrics.json").read_text())["validation"]   # one seed's block
    assert 0 <= v0["auc"] <= 1 and v0["auc"] == v0["fusion"]["key_auc"] and 0 <= v["velocity"]["micro_auc"] <= 1
    assert v["auc"] == pytest.approx(sum(v["auc_per_seed"].values()) / len(v["auc_per_seed"]))   # mean over seeds
    assert sorted(map(int, v["auc_per_seed"])) == sorted(m["params"]["seed"])
    assert v["fusion"]["set"]["videos"] == held and v["fusion"]["set"]["seed"] == 0
    choices = pd.read_csv(out / "validation_choices.csv")
    assert list(choices["seed"]) == m["params"]["seed"] and choices["chosen"].all()    # one candidate, per seed
    assert choices["sigma"].iloc[0] == m["params"]["sigma"]


def test_flow_nf_chooses_sigma_and_fusion_on_validation(repo, params_yaml, tmp_path):
    """Candidates are scored on the pseudo-anomaly set; the best key AUC is what the test set is scored with."""
    cands = {"sigma": [0, 2], "fusion": [{"flow_nf": 1.0, "velocity": 0.0}, {"flow_nf": 0.0, "velocity": 1.0}],
             "key_kinds": ["skip", "patch"]}
    p = {**params_yaml["flow_nf"], "cache": str(repo.root / "data" / "flow"), "workers": 1, "calib_every": 2,
         "glow": {"K": 2, "hidden": 16, "epochs": 1, "batch_size": 64, "max_train": 2000}, "pose": {"epochs": 1},
         "transfer": [], "seeds": [0], "validation": {**params_yaml["flow_nf"]["validation"], **cands,
                                        "root": str(repo.root / "data" / "validation")}}
    ctx = repo.ctx("flow_nf")
    ctx = dataclasses.replace(ctx, out_dir=tmp_path / "out")
    res = flow_nf.run(p, ctx, figures=False)
    table = pd.read_csv(tmp_path / "out" / "validation_choices.csv")
    assert len(table) == 4 and table["chosen"].sum() == 1
    best = table.loc[table["chosen"]].iloc[0]
    assert best["key_auc"] == table["key_auc"].max()
    assert abs(best["key_auc"] - (best["auc_skip"] + best["auc_patch"]) / 2) < 1e-12    # the key: mean of key_kinds
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["params"]["sigma"] == best["sigma"] == m["protocol"]["sigma"]
    assert json.dumps(m["params"]["fusion"], sort_keys=True) == best["fusion"]
    assert res["model"].params["fusion"] == m["params"]["fusion"]
