"""The zeroshot stage without papermill: every dvc.yaml output, in the formats the report reads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vadlib.errors import ConfigError
from vadlib.results import Predictions
from vadlib.stages import zeroshot


def _params(params_yaml, repo, **validation):
    v = {**params_yaml["zeroshot"]["validation"], "root": str(repo.root / "data" / "validation"), **validation}
    return {**params_yaml["zeroshot"], "validation": v}


def test_zeroshot_writes_every_output(repo, params_yaml):
    res = zeroshot.run(_params(params_yaml, repo), repo.ctx("zeroshot", "demo_a"))
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
    v = m["validation"]   # the pseudo-anomaly set of the held-out training videos, scored the same way
    assert v["held_out"] == params_yaml["zeroshot"]["validation"]["videos"]["demo_a"]
    assert set(v["softmax"]["per_kind"]) == set(params_yaml["zeroshot"]["validation"]["kinds"])
    assert v["auc"] == v["softmax"]["key_auc"] and 0 <= v["max_cos"]["micro_auc"] <= 1 and v["real_weights"] is False
    assert len(pd.read_csv(out / "validation_choices.csv")) == 1


def test_zeroshot_chooses_sigma_on_validation(repo, params_yaml):
    zeroshot.run(_params(params_yaml, repo, sigma=[0, 1, 4], key_kinds=["patch", "object"]),
                 repo.ctx("zeroshot_sigma", "demo_a"), figures=False)
    out = repo.root / "reports" / "zeroshot_sigma" / "demo_a"
    table = pd.read_csv(out / "validation_choices.csv")
    m = json.loads((out / "metrics.json").read_text())
    best = table.loc[table["chosen"]].iloc[0]
    assert list(table["sigma"]) == [0, 1, 4] and best["key_auc"] == table["key_auc"].max()
    assert np.isclose(best["key_auc"], (best["auc_patch"] + best["auc_object"]) / 2)
    assert m["protocol"]["sigma"] == best["sigma"] == m["validation"]["chosen"]["sigma"]


def test_zeroshot_refuses_a_dataset_without_prompts(repo):
    with pytest.raises(ConfigError, match="zeroshot.prompts has no entry for dataset 'demo_a'"):
        zeroshot.run({"prompts": {}}, repo.ctx("zeroshot_noprompts", "demo_a"))


def test_zeroshot_encodes_its_validation_set_in_the_store_precision(repo, params_yaml, tmp_path):
    """A bf16 store: the validation set is encoded by the bf16-cast image tower (as the store was),
    not by fp32 weights under torch.autocast (slower on CPU, and not the store's features)."""
    import dataclasses
    import warnings

    from vadlib.features.precision import cpu_bf16_support
    from vadlib.features.store import FeatureStore
    from vadlib.stages import extract

    if not cpu_bf16_support().supported:
        pytest.skip("this CPU has no bf16 units (backbone.precision bf16 is refused)")
    reports = tmp_path / "reports"

    def ctx(stage, item):
        c = repo.ctx(stage, item)
        return dataclasses.replace(c, out_dir=reports / stage / item, reports=reports,
                                   backbone={**c.backbone, "precision": "bf16"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extract.run({"out": str(tmp_path / "features")}, ctx("extract", "demo_a"))
        zeroshot.run(_params(params_yaml, repo, root=str(tmp_path / "validation")), ctx("zeroshot", "demo_a"),
                     figures=False)
    [index] = (tmp_path / "validation" / "features").rglob("index.json")
    info = FeatureStore.open(index.parent).info
    assert info["precision"] == "bf16" and "autocast" not in info["precision_reason"]
