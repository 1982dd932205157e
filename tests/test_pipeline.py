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
    assert params["backbone"] == {"name": "ViT-B-16", "pretrained": "openai", "device": "cpu", "precision": "auto"}


def _run(cmd: list[str], cwd: Path, timeout: float | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "HF_HUB_OFFLINE": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_workspace_sync_and_params(tmp_path):
    """The demo workspace: project files copied (not tests, params.yaml, dvc.lock), params merged,
    a changed file recopied, a deleted one removed, nothing rewritten when nothing changed."""
    from vadlib.workspace import main, merge, parse_set, project_files

    assert merge({"a": {"b": 1, "c": 2}, "d": 3}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 3}
    assert parse_set("demo.size=tiny") == {"demo": {"size": "tiny"}} and parse_set("x.y=[1, 2]") == {"x": {"y": [1, 2]}}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set("demo.size")
    files = project_files(ROOT)
    assert "dvc.yaml" in files and "vadlib/pipeline.py" in files and "notebooks/zeroshot.py" in files
    assert not any(f.startswith("tests/") or f in ("params.yaml", "dvc.lock") for f in files)
    dest = tmp_path / "ws"
    assert main([str(dest), "--root", str(ROOT), "--overrides", "params.demo.yaml", "--set", "demo.size=tiny"]) == 0
    params = yaml.safe_load((dest / "params.yaml").read_text())
    assert params["backbone"]["name"] == "vadlib-tiny" and params["backbone"]["pretrained"] == "random"
    assert params["backbone"]["precision"] == "fp32"   # the demo's figures must not depend on the CPU's bf16 units
    assert params["demo"]["size"] == "tiny" and params["zeroshot"] == load_params(ROOT / "params.yaml")["zeroshot"]
    ped2 = params["datasets"]["ucsd_ped2"]["root"]      # ../shared/… re-pointed from the workspace
    assert (dest / ped2).resolve() == (ROOT / load_params(ROOT / "params.yaml")["datasets"]["ucsd_ped2"]["root"]).resolve()
    assert (dest / ".dvc" / "config").is_file() and (dest / "dvc.yaml").read_bytes() == (ROOT / "dvc.yaml").read_bytes()
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*") if p.is_file() and ".dvc" not in p.parts}
    assert main([str(dest), "--root", str(ROOT), "--overrides", "params.demo.yaml", "--set", "demo.size=tiny"]) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before                         # nothing rewritten
    stale = dest / "vadlib" / "gone.py"
    stale.write_text("x")
    manifest = json.loads((dest / ".workspace-files.json").read_text())
    (dest / ".workspace-files.json").write_text(json.dumps(manifest + ["vadlib/gone.py"]))
    (dest / "vadlib" / "pipeline.py").write_text("changed")
    assert main([str(dest), "--root", str(ROOT), "--overrides", "params.demo.yaml"]) == 0
    assert not stale.exists() and (dest / "vadlib" / "pipeline.py").read_bytes() == (ROOT / "vadlib/pipeline.py").read_bytes()
    assert yaml.safe_load((dest / "params.yaml").read_text())["demo"]["size"] == load_params(ROOT / "params.yaml")["demo"]["size"]
    assert main([str(ROOT), "--root", str(ROOT)]) == 2                                   # never the project itself


def test_executed_notebook_run_metadata_stripped(tmp_path):
    import nbformat

    from vadlib.pipeline import strip_run_metadata

    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {"start_time": "t0", "end_time": "t1", "duration": 1.5, "input_path": "/tmp/x/a.ipynb",
                                "output_path": "/tmp/y", "parameters": {"a": 1}}
    cell = nbformat.v4.new_code_cell("1")
    cell.metadata["papermill"] = {"start_time": "t0", "end_time": "t1", "duration": 0.1, "status": "completed"}
    cell.metadata["execution"] = {"iopub.execute_input": "t0"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text="x:   0%|   | 0/600 [00:00<?, ?frame/s]\r"
                                           "x: 100%|███| 600/600 [00:01<00:00, 519.59frame/s, a_test_007]\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="RandomWeightsWarning: RANDOM WEIGHTS\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="10/20 [kept: stdout]\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="wall time: 3.2 s (timing.json)\n")]
    nb.cells.append(cell)
    path = tmp_path / "a.ipynb"
    nbformat.write(nb, path)
    strip_run_metadata(path, Path("notebooks/a.py"), Path("reports/a/a.ipynb"))
    out = nbformat.read(path, as_version=4)
    assert out.metadata["papermill"] == {"input_path": "notebooks/a.py", "output_path": "reports/a/a.ipynb",
                                         "parameters": {"a": 1}}
    assert out.cells[0].metadata == {"papermill": {"status": "completed"}} and out.cells[0].id == "cell-0"
    assert [o["text"] for o in out.cells[0].outputs] == ["RandomWeightsWarning: RANDOM WEIGHTS\n", "10/20 [kept: stdout]\n"]
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=t) for t in ("a\n", "b\n")]
    nbformat.write(nb, path)
    strip_run_metadata(path, Path("notebooks/a.py"), Path("reports/a/a.ipynb"))
    assert [o["text"] for o in nbformat.read(path, as_version=4).cells[0].outputs] == ["a\nb\n"]
    cell.outputs = [nbformat.v4.new_output("stream", name=n, text=t)      # interleaving depends on timing
                    for n, t in (("stdout", "1\n"), ("stderr", "w\n"), ("stdout", "2\n"))]
    nbformat.write(nb, path)
    strip_run_metadata(path, Path("notebooks/a.py"), Path("reports/a/a.ipynb"))
    assert [(o["name"], o["text"]) for o in nbformat.read(path, as_version=4).cells[0].outputs] == [
        ("stdout", "1\n2\n"), ("stderr", "w\n")]


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """What `make demo` does (vadlib.workspace with params.demo.yaml, then `dvc repro` there), on the
    tiny demo size, in a temporary workspace. Returns (workspace, first repro's result, project state)."""
    ws = tmp_path_factory.mktemp("demo") / "ws"
    watched = ("params.yaml", "dvc.yaml", "params.demo.yaml")
    before = {n: (ROOT / n).read_bytes() for n in watched}
    sync = _run([sys.executable, "-m", "vadlib.workspace", str(ws), "--overrides", "params.demo.yaml",
                 "--set", "demo.size=tiny"], ROOT)
    assert sync.returncode == 0, sync.stderr
    r = _run(["dvc", "repro"], ws)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    return ws, r, before


@pytest.mark.slow
def test_pipeline_end_to_end(demo_run):
    """`make demo`'s pipeline offline: outputs marked random, the project untouched, a second run a no-op."""
    ws, _, before = demo_run
    params = yaml.safe_load((ws / "params.yaml").read_text())
    for ds in params["zeroshot"]["run_on"]:
        m = json.loads((ws / "reports" / "zeroshot" / ds / "metrics.json").read_text())
        assert 0.0 <= m["micro_auc"] <= 1.0
        assert m["protocol"]["real_weights"] is False
        assert (ws / "reports" / "zeroshot" / ds / "zeroshot.html").stat().st_size > 10_000
        assert (ws / "reports" / "zeroshot" / ds / "figures" / "timelines.png").is_file()
    assert "zeroshot" in (ws / "reports" / "report" / "results.md").read_text()
    assert {n: (ROOT / n).read_bytes() for n in before} == before          # params.yaml etc. of the project unchanged
    assert not (ROOT / "dvc.lock").exists() or "vadlib-tiny" not in (ROOT / "dvc.lock").read_text()
    status = _run(["dvc", "status"], ws)
    assert "up to date" in status.stdout, status.stdout
    again = _run(["dvc", "repro"], ws)
    assert again.returncode == 0 and "Running stage" not in again.stdout, again.stdout


@pytest.mark.slow
def test_hand_run_stage_is_byte_identical(demo_run):
    """A stage run again by hand (as the README suggests) writes the same bytes: figures (PNG/PDF),
    executed notebook, HTML, the report page; so `dvc status` stays clean."""
    ws, _, _ = demo_run
    outs = {"demo": ws / "reports" / "demo", "report": ws / "reports" / "report"}
    first = {k: _tree_bytes(v) for k, v in outs.items()}
    assert any(n.endswith(".pdf") for n in first["demo"]) and "demo.ipynb" in first["demo"]
    for stage in outs:
        r = _run([sys.executable, "-m", "vadlib.pipeline", stage], ws)
        assert r.returncode == 0, r.stderr[-3000:]
    for k, v in outs.items():
        second = _tree_bytes(v)
        assert second.keys() == first[k].keys()
        assert [n for n in second if second[n] != first[k][n]] == [], k
    status = _run(["dvc", "status"], ws)
    assert "up to date" in status.stdout, status.stdout


BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(b)), None)


@pytest.mark.slow
@pytest.mark.skipif(BROWSER is None, reason="no chromium installed (.ci/run installs it: apt-get install -y chromium)")
def test_generated_report_renders_in_chromium(demo_run, tmp_path):
    """The page `make demo` generates, rendered by headless Chromium at 1400 px: its tables, every
    image, the random-weights marking, and every local link."""
    import re

    ws, _, _ = demo_run
    page = ws / "reports" / "report" / "index.html"
    base = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--allow-file-access-from-files",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--window-size=1400,2400"]
    r = subprocess.run(base + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    dom = r.stdout
    check = re.search(r'<div id="load-check"[^>]*>', dom)
    assert check, r.stderr[-2000:]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', check.group(0)))
    assert int(attrs["tables"]) >= 2 and int(attrs["rows"]) >= 4, attrs              # demo block + quoted block
    assert int(attrs["images"]) >= 10 and attrs["images-ok"] == attrs["images"], attrs  # every figure decoded
    assert "id=\"results-table-demo\"" in dom and "id=\"results-table-quoted\"" in dom
    demo_rows = dom.split('id="results-table-demo"')[1].split("</table>")[0].split("<tr")[2:]
    assert demo_rows and all("RANDOM" in row for row in demo_rows if "vadlib-tiny" in row)
    html = page.read_text()
    for href in re.findall(r"(?:href|src)='([^'#]+)'", html):
        assert (page.parent / href).exists(), href
    shot = tmp_path / "report.png"
    subprocess.run(base + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 50_000
