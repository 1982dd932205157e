"""The `report` stage notebook on a fake reports folder (jupytext -> papermill, as the pipeline does: the
stage's parameters as one ``params`` dict)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _w(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_report_notebook_end_to_end(tmp_path):
    r = tmp_path / "reports"
    _w(r / "zeroshot" / "demo_a" / "metrics.json",
       {"micro_auc": 0.61, "macro_auc": 0.55, "micro_ap": 0.3, "macro_ap": 0.25,
        "protocol": {"method": "zeroshot (softmax)", "dataset": "demo_a", "gt_file": "generated", "sigma": 0,
                     "ap_definition": "sklearn average_precision_score", "backbone": "vadlib-tiny/random",
                     "real_weights": False}, "per_class_auc": {"cyclist": 0.7, "cart": 0.4}})
    (r / "zeroshot" / "demo_a" / "roc.csv").write_text("fpr,tpr\n0,0\n0.3,0.7\n1,1\n")
    (r / "zeroshot" / "demo_a" / "zeroshot.html").write_text("<html>nb</html>")
    _w(r / "flow_nf" / "metrics.json", {"rows": [{"method": "flow_nf", "dataset": "ucsd_ped2", "micro_auc": 0.88}]})
    np.savez(r / "flow_nf" / "loglik_ucsd_ped2.npz", normal=np.linspace(0, 1, 50), anomalous=np.linspace(-2, 0, 20))
    (r / "transfer").mkdir()
    (r / "transfer" / "transfer_matrix.csv").write_text(
        "source,target,variant,score,micro_auc\ndemo_a,demo_b,full,calibrated,0.7\ndemo_b,demo_a,full,calibrated,0.6\n")
    nb = tmp_path / "report.ipynb"
    subprocess.run([sys.executable, "-m", "jupytext", "--to", "ipynb", "-o", str(nb), str(ROOT / "notebooks/report.py")],
                   check=True, capture_output=True)
    out, figs = r / "report", r / "figures"
    res = subprocess.run([sys.executable, "-m", "papermill", "-k", "python3", "--language", "python", str(nb), str(tmp_path / "out.ipynb"),
                          "-y", json.dumps({"params": {"reports": str(r), "out_dir": str(out), "figures_dir": str(figs),
                                                       "params_file": str(tmp_path / "no_params.yaml")}})],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]

    table = pd.read_csv(out / "results.csv")
    assert set(table["kind"]) == {"measured", "quoted"}
    assert set(table.loc[table["kind"] == "quoted", "dataset"]) == {"ucsd_ped2"}     # only measured benchmarks
    tex = (out / "results.tex").read_text()
    assert r"\toprule" in tex and "Quoted from published work" in tex and "NO (random)" in tex
    for name in ("roc_pr_demo_a", "transfer_matrix", "per_class_auc_demo_a", "nf_loglik_flow_nf_loglik_ucsd_ped2"):
        assert (figs / f"{name}.png").read_bytes()[:4] == b"\x89PNG" and (figs / f"{name}.pdf").exists(), name
    env = json.loads((out / "environment.json").read_text())
    assert env["git"]["commit"] and env["packages"]["pandas"] == pd.__version__
    page = (out / "index.html").read_text()
    assert "src='../figures/roc_pr_demo_a.png'" in page and "href='../zeroshot/demo_a/zeroshot.html'" in page
    assert "no reports/extract/&lt;item&gt;/store.json" in page and "Not made" in page        # absent inputs are said, not silently dropped
