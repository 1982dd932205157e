"""The zeroshot stage without papermill: every dvc.yaml output, in the formats the report reads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vadlib.errors import ConfigError
from vadlib.results import Predictions
from vadlib.stages import zeroshot


def test_zeroshot_writes_every_output(repo, params_yaml):
    res = zeroshot.run(params_yaml["zeroshot"], repo.ctx("zeroshot", "demo_a"))
    assert repo.missing("zeroshot", "demo_a") == []
    out = repo.root / "reports" / "zeroshot" / "demo_a"
    m = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= m["micro_auc"] <= 1.0 and "max_cos_micro_auc" in m
    assert m["protocol"]["real_weights"] is False and m["protocol"]["dataset"] == "demo_a"
    assert m["protocol"]["precision"] == "fp32" and m["protocol"]["precision_reason"]  # from the store index
    assert list(pd.read_csv(out / "roc.csv").columns)[:2] == ["fpr", "tpr"]
    assert list(pd.read_csv(out / "pr.csv").columns)[:2] == ["recall", "precision"]
    preds = Predictions.load(out / "predictions.npz")
    assert set(preds.videos) == set(res["labels"])
    assert np.isclose(m["micro_auc"], res["results"]["softmax"]["micro_auc"])
    assert {p.name for p in (out / "figures").iterdir()} >= {"roc_pr.png", "timelines.png"}


def test_zeroshot_refuses_a_dataset_without_prompts(repo):
    with pytest.raises(ConfigError, match="zeroshot.prompts has no entry for dataset 'demo_a'"):
        zeroshot.run({"prompts": {}}, repo.ctx("zeroshot_noprompts", "demo_a"))
