"""The flow_nf stage without papermill, on the tiny demo with a small Glow."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vadlib.flow.pipeline import FlowNFModel
from vadlib.stages import flow_nf


def test_flow_nf_writes_every_output(repo, params_yaml):
    p = {**params_yaml["flow_nf"], "cache": str(repo.root / "data" / "flow"), "workers": 1, "calib_every": 2,
         "glow": {"K": 2, "hidden": 16, "epochs": 1, "batch_size": 64, "max_train": 2000},
         "pose": {"epochs": 1}}
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
