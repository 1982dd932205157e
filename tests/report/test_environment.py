"""capture_environment: versions, git commit + dirty flag, params, device."""

import json
import subprocess

import numpy as np
import pytest

from vadlib.report.environment import capture_environment, git_state


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@t")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "params.yaml").write_text("seed: 3\nzeroshot:\n  sigma: 2\n")
    _git(tmp_path, "add", "params.yaml")
    _git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_capture_clean_then_dirty(repo):
    env = capture_environment(repo / "params.yaml", cwd=repo)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert env["git"]["commit"] == head and env["git"]["dirty"] is False
    assert env["params"] == {"seed": 3, "zeroshot": {"sigma": 2}}
    assert env["packages"]["numpy"] == np.__version__
    assert env["device"]["cpu"] and env["device"]["cpu_count"] >= 1
    json.dumps(env)                                    # serialisable as environment.json
    (repo / "params.yaml").write_text("seed: 4\n")
    st = git_state(repo)
    assert st["dirty"] is True and st["changed"] == ["params.yaml"]


def test_outside_git_and_missing_params(tmp_path):
    env = capture_environment(tmp_path / "nope.yaml", cwd=tmp_path)
    assert env["git"]["commit"] is None
    assert env["params"] is None and "nope.yaml" in env["params_error"]
    assert "torch" in env["packages"] and env["packages"]["dvc"] is not None
