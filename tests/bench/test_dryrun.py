"""``python -m vadlib.bench dryrun``: the four stages through their real code with a random-weight
checkpoint FILE, every output marked RANDOM WEIGHTS; the dry run's weak Ped2 split; the guard on --out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vadlib.bench.dryrun import MARKER, main, weak_split_manifest
from vadlib.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PED2 = ROOT.parent / "shared" / "datasets" / "ucsd_ped2"
needs_ped2 = pytest.mark.skipif(not PED2.exists(), reason=f"{PED2} (real UCSD Ped2 in ../shared) not present")


@pytest.mark.shared
@needs_ped2
def test_weak_split_is_disjoint_and_weakly_labelled(tmp_path):
    m = json.loads(weak_split_manifest(PED2, tmp_path).read_text())
    train, test = m["train"]["ped2"], m["test"]["ped2"]
    names = [e["name"] for e in train]
    assert names[:16] == [f"Train{i:03d}" for i in range(1, 17)]
    assert names[16:] == [f"Test{i:03d}" for i in range(1, 13, 2)]           # video labels only
    assert all(e["anomaly"] == 1 and "gt_path" not in e for e in train[16:])
    assert [e["name"] for e in test] == [f"Test{i:03d}" for i in range(2, 13, 2)]
    assert all(Path(e["gt_path"]).is_file() for e in test)
    assert "NOT a published protocol" in m["note"]


@pytest.mark.slow      # five processes, each importing torch (minutes on a loaded 2-core machine)
@pytest.mark.shared
@needs_ped2
def test_tiny_dry_run_runs_every_stage_and_says_random_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["--root", str(PED2), "--params", str(ROOT / "params.yaml"), "--backbone", "vadlib-tiny",
                 "--stride", "60", "--epochs", "1", "--seeds", "0", "--preset", "demo", "--out", "dr"]) == 0
    out = tmp_path / "dr"
    printed = capsys.readouterr().out
    rows = json.loads((out / "dryrun.json").read_text())["rows"]
    assert [r["stage"] for r in rows] == ["weights", "extract", "zeroshot", "train_mil", "transfer"]
    assert all(r["peak_rss_gb"] > 0 and r["wall_seconds"] > 0 for r in rows)
    assert all(r["real_weights"] is False for r in rows)
    assert rows[1]["precision"] in {"fp32", "bf16"} and rows[1]["sampling"] == "every stride 60"
    assert "RANDOM WEIGHTS" in printed and "| train_mil |" in printed
    side = out / "weights" / "vadlib-tiny-random-seed0.pt.vadlib.json"
    assert json.loads(side.read_text())["random_weights"] is True
    reports = out / "reports"
    assert json.loads((reports / "extract" / "ucsd_ped2" / "store.json").read_text())["real_weights"] is False
    for f in ("zeroshot/ucsd_ped2/metrics.json", "train_mil/manifest/metrics.json", "transfer/metrics.json"):
        assert json.loads((reports / f).read_text())["protocol"]["real_weights"] is False, f


def test_out_that_is_not_a_dry_run_folder_is_refused(tmp_path, monkeypatch):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=rf"--out .*mine.*{MARKER}"):
        main(["--root", str(tmp_path), "--params", str(ROOT / "params.yaml"), "--out", "mine"])
    assert (tmp_path / "mine" / "keep.txt").is_file()
