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
