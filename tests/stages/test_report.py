"""The report stage module on the tiny repository (whatever stages have written there so far)."""

from __future__ import annotations

from vadlib.stages import report


def test_report_writes_every_output(repo, params_yaml):
    res = report.run({**params_yaml["report"], "quoted": "all"}, repo.ctx("report"))
    assert repo.missing("report") == []
    out = repo.root / "reports" / "report"
    assert {"results.csv", "results.md", "results.tex", "results_matrix.csv", "published.md", "environment.json",
            "index.html"} <= {p.name for p in out.iterdir()}
    assert "report/index.html" in (repo.root / "reports" / "index.html").read_text()
    assert res["page"] == out / "index.html"
    assert "quoted" in set(res["table"]["kind"])      # quoted: all -> the published rows are there


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
