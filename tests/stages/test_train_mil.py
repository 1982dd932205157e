"""The train_mil stage without papermill: it (not the notebook) writes every dvc.yaml output,
including the checkpoint it evaluated."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from vadlib.errors import ConfigError
from vadlib.results import Predictions
from vadlib.stages import train_mil


@pytest.fixture(scope="module")
def trained(repo, params_yaml):
    p = {**params_yaml["train_mil"], "method": "sultani", "overrides": {"epochs": 2}}
    return train_mil.run(p, repo.ctx("train_mil", "demo_a"))


def test_train_mil_writes_every_output(repo, trained):
    assert repo.missing("train_mil", "demo_a") == []
    out = repo.root / "reports" / "train_mil" / "demo_a"
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["micro_auc"] <= 1.0 and m["protocol"]["method"] == "sultani"
    assert m["protocol"]["preset"] == "demo" and m["config"]["epochs"] == 2
    assert m["protocol"]["precision"] == "fp32"
    assert list(pd.read_csv(out / "roc.csv").columns)[:2] == ["fpr", "tpr"]
    assert set(Predictions.load(out / "predictions.npz").videos) == set(trained["labels"])
    assert {"training.png", "roc_pr.png", "timelines.png"} <= {p.name for p in (out / "figures").iterdir()}


def test_an_evaluated_checkpoint_becomes_the_stage_model(repo, trained, params_yaml):
    src = repo.root / "reports" / "train_mil" / "demo_a" / "model.pt"
    p = {**params_yaml["train_mil"], "method": "sultani", "checkpoint_in": str(src)}
    res = train_mil.run(p, repo.ctx("train_mil_eval", "demo_a"))
    out = repo.root / "reports" / "train_mil_eval" / "demo_a"
    assert (out / "model.pt").read_bytes() == src.read_bytes()
    assert res["metrics"]["micro_auc"] == pytest.approx(trained["metrics"]["micro_auc"])


def test_a_preset_table_without_the_dataset_is_named(repo):
    with pytest.raises(ConfigError, match="train_mil.preset has no entry for dataset 'demo_a'"):
        train_mil.run({"method": "sultani", "preset": {"demo_b": "demo"}}, repo.ctx("train_mil_x", "demo_a"))
