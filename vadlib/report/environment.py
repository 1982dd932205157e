"""What produced a report: package versions, git commit (dirty flag), params and device."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

PACKAGES = ("vadlib", "torch", "open_clip_torch", "numpy", "scipy", "scikit-learn", "pandas", "matplotlib",
            "seaborn", "opencv-python", "opencv-python-headless", "decord", "dvc", "dvclive", "papermill",
            "jupytext", "pyarrow")


def package_versions(names=PACKAGES) -> dict[str, str | None]:
    """Installed distribution versions (``None`` when not installed)."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def _git(args: list[str], cwd: Path, strip: bool = True) -> str | None:
    try:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        return None
    return r.stdout.strip() if strip else r.stdout


def git_state(cwd: str | Path = ".") -> dict[str, Any]:
    """``{"commit", "branch", "dirty", "changed"}`` of the repository holding ``cwd`` (``None`` outside git).

    ``changed`` lists the modified tracked paths (at most 50) so a dirty run says what differed.
    """
    cwd = Path(cwd)
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "changed": []}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd, strip=False) or ""
    changed = [line[3:] for line in status.splitlines() if line.strip()]
    return {"commit": commit, "branch": _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd),
            "dirty": bool(changed), "changed": changed[:50]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info() -> dict[str, Any]:
    """CPU model and core count; GPU names and CUDA version when torch sees CUDA."""
    import os

    info: dict[str, Any] = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "gpus": [], "cuda": None}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda"] = torch.version.cuda
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as exc:  # torch missing or broken: still report the rest
        info["torch_error"] = repr(exc)
    return info


def capture_environment(params_path: str | Path | None = "params.yaml", cwd: str | Path = ".") -> dict[str, Any]:
    """Everything needed to say what produced a report.

    Returns ``{"python", "platform", "packages", "git", "device", "params"}``;
    ``params`` is the parsed ``params_path`` (``None`` when absent or unreadable — the reason
    is kept in ``params_error``). No clock time: the git commit says when, and an unchanged
    report re-run writes byte-identical files (so ``dvc status`` stays clean).
    """
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git": git_state(cwd),
        "device": device_info(),
        "params": None,
    }
    if params_path is not None:
        p = Path(params_path)
        try:
            env["params"] = yaml.safe_load(p.read_text())
            env["params_file"] = str(p)
        except (OSError, yaml.YAMLError) as exc:
            env["params_error"] = f"{p}: {exc}"
    return env
