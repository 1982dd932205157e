"""The notebook runner, and the whole DVC pipeline end to end on a tiny demo (offline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vadlib.errors import ConfigError
from vadlib.pipeline import load_params, notebook_parameters

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_notebook_parameters_merge_shared_sections():
    params = {"seed": 1, "backbone": {"name": "x"}, "datasets": {"d": {}}, "zeroshot": {"tau": 0.1}, "other": 1}
    p = notebook_parameters(params, "zeroshot", item="d")
    assert p["tau"] == 0.1 and p["seed"] == 1 and p["backbone"] == {"name": "x"}
    assert p["out_dir"] == os.path.join("reports", "zeroshot", "d") and p["item"] == "d"
    assert "other" not in p
    with pytest.raises(ConfigError, match="no section 'nope'"):
        notebook_parameters(params, "nope")


def test_bad_params_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("a: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_every_stage_has_its_notebook_and_params():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for name in stages:
        assert (ROOT / "notebooks" / f"{name}.py").is_file(), name
        assert name in params, name
    assert params["backbone"] == {"name": "ViT-B-16", "pretrained": "openai", "device": "cpu"}


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_pipeline_end_to_end(tmp_path):
    """`dvc repro` of the whole pipeline offline on a tiny demo; then a no-op second run."""
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, work / name)
    for d in ("notebooks", "vadlib", "reports/flow_nf_ped2"):  # + the committed real-data result the report reads
        shutil.copytree(ROOT / d, work / d, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["backbone"].update(name="vadlib-tiny", pretrained="random")
    params["demo"]["size"] = "tiny"
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        assert _run(cmd, work).returncode == 0
    r = _run(["dvc", "repro"], work)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    for ds in params["zeroshot"]["run_on"]:
        m = json.loads((work / "reports" / "zeroshot" / ds / "metrics.json").read_text())
        assert 0.0 <= m["micro_auc"] <= 1.0
        assert m["protocol"]["real_weights"] is False
        assert (work / "reports" / "zeroshot" / ds / "zeroshot.html").stat().st_size > 10_000
        assert (work / "reports" / "zeroshot" / ds / "figures" / "timelines.png").is_file()
    assert "zeroshot" in (work / "reports" / "report" / "results.md").read_text()
    status = _run(["dvc", "status"], work)
    assert "up to date" in status.stdout, status.stdout
    again = _run(["dvc", "repro"], work)
    assert again.returncode == 0 and "didn't change" in again.stdout and "Running stage" not in again.stdout
