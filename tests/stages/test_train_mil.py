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
    first = str(trained["metrics"]["seeds"][0])     # the top-level model is the first seed's
    assert res["metrics"]["micro_auc"] == pytest.approx(trained["metrics"]["per_seed"][first]["micro_auc"])
    assert res["metrics"]["n_seeds"] == 1


def test_metrics_json_is_the_summary_of_the_per_seed_files(repo, trained):
    out = repo.root / "reports" / "train_mil" / "demo_a"
    m = json.loads((out / "metrics.json").read_text())
    seeds = m["seeds"]
    assert len(seeds) == m["n_seeds"] == 3
    per = [json.loads((out / "seeds" / f"seed_{s}" / "metrics.json").read_text()) for s in seeds]
    vals = [x["micro_auc"] for x in per]
    assert m["micro_auc"] == pytest.approx(sum(vals) / 3)
    assert m["micro_auc_min"] == min(vals) and m["micro_auc_max"] == max(vals)
    mean = sum(vals) / 3
    assert m["micro_auc_std"] == pytest.approx((sum((v - mean) ** 2 for v in vals) / 2) ** 0.5)
    assert [x["protocol"]["seed"] for x in per] == seeds
    assert len(set(vals)) > 1            # the seeds train different models
    assert (out / "model.pt").read_bytes() == (out / "seeds" / f"seed_{seeds[0]}" / "model.pt").read_bytes()


def test_wall_times_stay_out_of_the_tracked_outputs(repo, trained):
    out = repo.root / "reports" / "train_mil" / "demo_a"
    assert "seconds" not in (out / "metrics.json").read_text()
    assert set(json.loads((out / "timing.json").read_text())["train_seconds"]) == {"0", "1", "2"}


def test_a_preset_table_without_the_dataset_is_named(repo):
    with pytest.raises(ConfigError, match="train_mil.preset has no entry for dataset 'demo_a'"):
        train_mil.run({"method": "sultani", "preset": {"demo_b": "demo"}}, repo.ctx("train_mil_x", "demo_a"))


def test_a_saved_checkpoint_does_not_depend_on_its_temporary_name(tmp_path, trained):
    """torch.save of a path names the zip archive after the (random) temporary file; the checkpoint must
    be byte-identical when saved twice, so a hand re-run leaves model.pt unchanged."""
    method = trained["train"]["method"]
    a, b = method.save(tmp_path / "a" / "model.pt"), method.save(tmp_path / "b" / "model.pt")
    assert a.read_bytes() == b.read_bytes()
