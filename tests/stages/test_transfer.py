"""The transfer stage without papermill: every dvc.yaml output (matrix, models, predictions, heat map)."""

from __future__ import annotations

import json

import pandas as pd
import torch

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
