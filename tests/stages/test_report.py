"""The report stage module without papermill: on the tiny repository (whatever stages have written there
so far) and on a reports folder holding one measured random-weight result."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from vadlib.stages import report

ROOT = Path(__file__).resolve().parents[2]


def test_report_writes_every_output(repo, params_yaml):
    res = report.run({**params_yaml["report"], "quoted": "all"}, repo.ctx("report"))
    assert repo.missing("report") == []
    out = repo.root / "reports" / "report"
    assert {"results.csv", "results.md", "results.tex", "results_matrix.csv", "published.md", "environment.json",
            "index.html"} <= {p.name for p in out.iterdir()}
    assert "report/index.html" in (repo.root / "reports" / "index.html").read_text()
    assert res["page"] == out / "index.html"
    assert "quoted" in set(res["table"]["kind"])      # quoted: all -> the published rows are there


def test_report_on_one_measured_result(empty_repo, tmp_path):
    r = empty_repo
    item = r.root / "reports" / "zeroshot" / "demo_a"
    item.mkdir(parents=True)
    (item / "metrics.json").write_text(json.dumps(
        {"micro_auc": 0.61, "macro_auc": 0.55, "micro_ap": 0.3, "macro_ap": 0.25,
         "protocol": {"method": "zeroshot (softmax)", "dataset": "demo_a", "gt_file": "generated", "sigma": 0,
                      "ap_definition": "sklearn average_precision_score", "backbone": "vadlib-tiny/random",
                      "real_weights": False}}))
    (item / "roc.csv").write_text("fpr,tpr\n0,0\n0.3,0.7\n1,1\n")
    res = report.run({"quoted": "none", "params_file": str(tmp_path / "params.yaml")}, r.ctx("report"))

    assert r.missing("report") == []                                   # every output dvc.yaml lists
    for out in ("reports/report/index.html", "reports/figures", "reports/index.html"):
        assert (r.root / out).exists(), out
    table = pd.read_csv(r.root / "reports" / "report" / "results.csv")
    assert list(table["kind"]) == ["measured"]                           # quoted: none
    assert table.loc[0, "micro_auc"] == pytest.approx(61)                 # in %
    assert (r.root / "reports" / "figures" / "roc_pr_demo_a.png").read_bytes()[:4] == b"\x89PNG"
    page = res["page"].read_text()
    assert "RANDOM WEIGHTS" in page and "Not made" in page
    assert any("store.json" in s for s in res["skipped"])               # absent inputs are said, not dropped
    assert "demo_a" in res["matrix"].columns


def test_the_notebook_holds_no_report_logic():
    # one implementation: notebooks/report.py calls vadlib.stages.report and only shows what it returns
    tree = ast.parse((ROOT / "notebooks" / "report.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "vadlib.stages" in imported
    assert not imported & {"vadlib.report.page", "vadlib.report.figures", "vadlib.io", "vadlib.report.environment"}
    assert "run_notebook_params(params)" in (ROOT / "notebooks" / "report.py").read_text()


def test_the_page_states_the_zeroshot_vs_train_mil_bootstrap(tmp_path, repo):
    """Planted predictions: train_mil (two seeds) scores = the labels (+ noise), zeroshot = reversed labels;
    the page line must say train_mil is better, with the interval of vadlib.significance."""
    import json

    import numpy as np

    from vadlib.data import get_dataset
    from vadlib.results import Predictions, VideoScores
    from vadlib.significance import paired_bootstrap_auc

    reports = tmp_path / "reports"
    test = [v for v in get_dataset("demo_a", **repo.datasets["demo_a"]).videos("test") if v.frame_labels is not None]
    rng = np.random.default_rng(0)
    labels = {v.name: v.frame_labels for v in test}
    mil = [{k: y + 0.5 * rng.random(len(y)) for k, y in labels.items()} for _ in range(2)]
    zs = {k: 1.0 - y + 0.5 * rng.random(len(y)) for k, y in labels.items()}
    for s, sc in enumerate(mil):
        Predictions({k: VideoScores(v) for k, v in sc.items()}).save(
            reports / "train_mil" / "demo_a" / "seeds" / f"seed_{s}" / "predictions.npz")
    Predictions({k: VideoScores(v) for k, v in zs.items()}).save(reports / "zeroshot" / "demo_a" / "predictions.npz")
    lines, res, skipped = report.significance_notes(reports, repo.datasets, n_boot=200)
    assert skipped == [] and set(res) == {"demo_a"}
    assert lines[0].startswith("demo_a: train_mil (2 seeds) vs zeroshot: micro AUC") and "train_mil" in lines[0].split(": ")[-1]
    want = paired_bootstrap_auc(mil, zs, labels, n_boot=200, seed=0)
    assert res["demo_a"]["micro"]["low"] == want["micro"]["low"] and want["micro"]["a_beats_b"]
    assert json.dumps(res)   # what significance.json holds
