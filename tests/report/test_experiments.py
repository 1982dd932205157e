"""Experiments table from a real temporary git + DVC repo with two `dvc exp run -S` experiments."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from vadlib.errors import DataError, VadlibError
from vadlib.report import style
from vadlib.report.experiments import (experiments_frame, experiments_table, metric_columns, param_columns,
                                       plot_metric_vs_param, read_csv_at_rev, roc_overlay_runs, select_runs)

STEP = """
import json, pathlib, yaml
x = yaml.safe_load(open("params.yaml"))["train"]["x"]
out = pathlib.Path("reports/s/a"); out.mkdir(parents=True, exist_ok=True)
json.dump({"micro_auc": 0.5 + 0.1 * x, "protocol": {"sigma": x}}, open(out / "metrics.json", "w"))
open(out / "roc.csv", "w").write(f"fpr,tpr\\n0,0\\n0.5,{min(1, 0.5 + 0.1 * x)}\\n1,1\\n")
"""
DVC_YAML = """stages:
  s:
    cmd: {python} step.py
    deps: [step.py]
    params: [train.x]
    metrics:
      - reports/s/a/metrics.json:
          cache: false
    plots:
      - reports/s/a/roc.csv:
          cache: false
"""


def _run(cwd, *args):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    r = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"{args}: {r.stdout[-1000:]} {r.stderr[-2000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    d = tmp_path_factory.mktemp("exprepo")
    dvc = [sys.executable, "-m", "dvc"]
    _run(d, "git", "init", "-q")
    _run(d, "git", "config", "user.email", "t@t")
    _run(d, "git", "config", "user.name", "t")
    _run(d, *dvc, "init", "-q")
    _run(d, *dvc, "config", "core.analytics", "false")
    (d / "params.yaml").write_text("train:\n  x: 1\n  name: base\n")
    (d / "step.py").write_text(STEP)
    (d / "dvc.yaml").write_text(DVC_YAML.format(python=sys.executable))
    _run(d, *dvc, "repro", "-q")
    _run(d, "git", "add", "-A")
    _run(d, "git", "commit", "-qm", "baseline")
    _run(d, *dvc, "exp", "run", "-q", "-S", "train.x=2", "-n", "x2")
    _run(d, *dvc, "exp", "run", "-q", "-S", "train.x=3", "-n", "x3")
    return d


def test_experiments_table(repo):
    df = experiments_table(repo)
    exps = df[df["kind"] == "experiment"].set_index("name")
    assert set(exps.index) == {"x2", "x3"}
    (col,) = metric_columns(df, "micro_auc")
    assert col == "reports/s/a/metrics.json:micro_auc"
    assert exps.loc["x2", col] == pytest.approx(0.7) and exps.loc["x3", "train.x"] == 3
    base = df[df["kind"] == "baseline"].iloc[0]
    assert base[col] == pytest.approx(0.6) and (exps["baseline"] == base["rev"]).all()
    assert "train.x" in param_columns(df) and "train.name" not in param_columns(df)
    assert df.loc[df["kind"] == "workspace", "name"].iloc[0] == "workspace"

    # the ROC committed in each experiment, read back at its revision
    roc = read_csv_at_rev(repo, exps.loc["x2", "rev"], "reports/s/a/roc.csv")
    assert list(roc.columns) == ["fpr", "tpr"] and roc["tpr"].iloc[1] == pytest.approx(0.7)
    runs = select_runs(df, ["x2", "x3", base["rev"][:8]])
    fig, missing = roc_overlay_runs(repo, runs, "reports/s/a/roc.csv")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[:2] == ["x2 (0.600)", "x3 (0.650)"] and not missing   # trapezoid area of each run's curve
    assert style.save(fig, "roc_runs", repo / "figs")[1].stat().st_size > 1000
    with pytest.raises(VadlibError, match="known"):
        select_runs(df, ["nope"])
    with pytest.raises(DataError, match="absent in every chosen run"):
        roc_overlay_runs(repo, runs, "reports/s/a/missing.csv")

    fig = plot_metric_vs_param(df[df["kind"] != "workspace"], "train.x", col)
    xs = sorted(fig.axes[0].collections[0].get_offsets()[:, 0])
    assert xs == [1, 2, 3]


def test_frame_handles_queued_and_failed_records():
    recs = [{"rev": "workspace", "name": None, "data": {"params": {"params.yaml": {"data": {"a": 1}}}, "metrics": {}},
             "error": None, "experiments": None},
            {"rev": "abc", "name": "main", "data": {"params": {"params.yaml": {"data": {"a": 1}}}, "metrics": {}},
             "error": None,
             "experiments": [{"revs": [{"rev": "q1", "name": "queued-1", "data": None, "error": None}],
                              "executor": "dvc-task", "name": "queued-1"},
                             {"revs": [{"rev": "f1", "name": "bad", "data": {}, "error": {"msg": "boom"}}],
                              "executor": None, "name": "bad"}]}]
    df = experiments_frame(recs)
    assert list(df["kind"]) == ["workspace", "baseline", "experiment", "experiment"]
    assert df.set_index("name").loc["queued-1", "state"] == "dvc-task"
    assert df.set_index("name").loc["bad", "error"] == "boom"


def test_spread_columns_and_error_bars_of_multi_seed_metrics():
    from vadlib.report.experiments import plot_metric_vs_param, spread_columns

    f = "reports/train_mil/demo_a/metrics.json"
    df = pd.DataFrame({"name": ["a", "b"], "kind": ["experiment"] * 2, "train_mil.val_fraction": [0.1, 0.2],
                       f"{f}:micro_auc": [0.7, 0.8], f"{f}:micro_auc_std": [0.02, 0.05],
                       f"{f}:micro_auc_max": [0.72, 0.85], f"{f}:n_seeds": [3, 3],
                       "reports/zeroshot/demo_a/metrics.json:micro_auc": [0.6, 0.6]})
    assert spread_columns(df) == [f"{f}:micro_auc_std", f"{f}:micro_auc_max", f"{f}:n_seeds"]
    fig = plot_metric_vs_param(df, "train_mil.val_fraction", f"{f}:micro_auc")
    bars = [c for c in fig.axes[0].containers if c.__class__.__name__ == "ErrorbarContainer"]
    assert len(bars) == 1
    segs = bars[0].lines[2][0].get_segments()
    assert [s[1][1] - s[0][1] for s in segs] == pytest.approx([0.04, 0.10])
