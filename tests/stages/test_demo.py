"""The demo and extract stages write every output dvc.yaml lists for them (the `repo` fixture runs them)."""

from __future__ import annotations

import json


def test_demo_writes_its_outputs(repo):
    assert repo.missing("demo") == []
    assert sorted(p.name for p in (repo.root / "reports" / "demo").glob("*.png")) == [
        "demo_a_anomalies.png", "demo_b_anomalies.png"]
    assert (repo.root / "data" / "demo" / "manifest.json").is_file()


def test_extract_writes_its_outputs_and_records_the_store(repo):
    for item in ("demo_a", "demo_b"):
        assert repo.missing("extract", item) == [], item
        rec = json.loads((repo.root / "reports" / "extract" / item / "store.json").read_text())
        assert rec["dataset"] == item and rec["backbone"] == "vadlib-tiny" and rec["real_weights"] is False
        assert rec["videos"] > 0
