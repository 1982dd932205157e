"""A separate DVC workspace for another configuration of the pipeline (what ``make demo`` runs).

``python -m vadlib.workspace build/demo --overrides params.demo.yaml [--set KEY=VALUE ...]``

The repository's own workspace belongs to ``params.yaml`` (the real configuration, ``make real``)
and its ``dvc.lock``. Running the offline demo there, e.g. ``dvc exp run -S backbone.name=…``,
rewrites ``params.yaml`` and ``dvc.lock``: tracked files change, and the real run then believes it
is up to date. So the demo runs in a workspace of its own:

1. the project's files (what git tracks plus new files it does not ignore; not ``tests/``, not
   ``params.yaml``, ``dvc.lock`` or ``.dvc/``) are synced into ``DEST``; a file is rewritten only
   when its bytes differ, and a file copied earlier whose source is gone is removed;
2. ``DEST/params.yaml`` = ``params.yaml`` with the override file and ``--set`` values merged in
   (dataset roots outside the project, e.g. ``../shared/…``, are rewritten relative to ``DEST``);
3. ``DEST`` is made a DVC project without git (``dvc init --no-scm``) on first use.

``cd DEST && dvc repro`` then runs the unchanged ``dvc.yaml`` with its own ``dvc.lock`` and
outputs; a second ``dvc repro`` does nothing, and nothing tracked in the repository changes.
"""

from __future__ import annotations

import argparse
import copy
import filecmp
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from vadlib.errors import ConfigError
from vadlib.io import atomic_path

MANIFEST = ".workspace-files.json"
NOT_COPIED = ("params.yaml", "dvc.lock")
NOT_COPIED_DIRS = ("tests", ".dvc", ".git", ".ci", "build")


def project_files(root: str | Path = ".") -> list[str]:
    """Paths (relative, POSIX) of the project's files: git-tracked plus untracked-but-not-ignored."""
    root = Path(root)
    try:
        r = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigError(f"{root.resolve()}: cannot list the project's files with git ({exc}); "
                          "the demo workspace is copied from a git checkout") from exc
    out = []
    for name in sorted(set(r.stdout.split("\0"))):
        if not name or name in NOT_COPIED or name.split("/", 1)[0] in NOT_COPIED_DIRS:
            continue
        if (root / name).is_file():          # deleted-but-tracked files are skipped
            out.append(name)
    return out


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``over`` replaces ``base``'s value."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def parse_set(item: str) -> dict[str, Any]:
    """``a.b.c=VALUE`` (VALUE read as YAML) -> ``{"a": {"b": {"c": VALUE}}}``."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. demo.size=tiny")
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = yaml.safe_load(value)
    return out


def workspace_params(root: Path, dest: Path, overrides: list[dict[str, Any]]) -> dict[str, Any]:
    """``root/params.yaml`` with ``overrides`` merged in, dataset roots outside the project re-pointed."""
    from vadlib.config import load_params

    params = load_params(root / "params.yaml")
    for o in overrides:
        params = merge(params, o)
    for name, ds in (params.get("datasets") or {}).items():
        r = ds.get("root") if isinstance(ds, dict) else None
        if isinstance(r, str) and not os.path.isabs(r) and r.split("/", 1)[0] == "..":
            ds["root"] = os.path.relpath((root / r).resolve(), dest.resolve())
    return params


def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def sync(root: str | Path, dest: str | Path, overrides: list[dict[str, Any]]) -> dict[str, int]:
    """Make ``dest`` a workspace of ``root``'s project with ``overrides`` (see module docstring).

    Returns counts: ``copied`` (new or changed files), ``removed``, ``unchanged``.
    """
    root, dest = Path(root).resolve(), Path(dest)
    if dest.resolve() == root:
        raise ConfigError(f"{dest}: the workspace must be another folder than the project (e.g. build/demo)")
    dest.mkdir(parents=True, exist_ok=True)
    files = project_files(root)
    counts = {"copied": 0, "removed": 0, "unchanged": 0}
    for name in files:
        src, dst = root / name, dest / name
        if dst.is_file() and filecmp.cmp(src, dst, shallow=False):
            counts["unchanged"] += 1
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        counts["copied"] += 1
    manifest = dest / MANIFEST
    before = json.loads(manifest.read_text()) if manifest.is_file() else []
    for name in sorted(set(before) - set(files)):
        if (dest / name).is_file():
            (dest / name).unlink()
            counts["removed"] += 1
    _write_if_changed(manifest, (json.dumps(files, indent=0) + "\n").encode())
    params = workspace_params(root, dest, overrides)
    header = ("# Written by `python -m vadlib.workspace` (make demo): the repository's params.yaml with\n"
              "# the overrides merged in. Edit those files, not this one.\n")
    _write_if_changed(dest / "params.yaml",
                      (header + yaml.safe_dump(params, sort_keys=False, allow_unicode=True)).encode())
    if not (dest / ".dvc").is_dir():
        dvc = [sys.executable, "-m", "dvc"]
        for cmd in (["init", "--no-scm", "-q"], ["config", "core.analytics", "false"]):
            r = subprocess.run(dvc + cmd, cwd=dest, capture_output=True, text=True)
            if r.returncode != 0:
                raise ConfigError(f"{dest}: `dvc {' '.join(cmd)}` failed: {r.stderr.strip() or r.stdout.strip()}")
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.workspace", description=__doc__.split("\n\n")[0])
    ap.add_argument("dest", help="workspace folder, e.g. build/demo")
    ap.add_argument("--root", default=".", help="the project (default: the current folder)")
    ap.add_argument("--overrides", action="append", default=[],
                    help="YAML file merged into params.yaml (repeatable), e.g. params.demo.yaml")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="one more override, e.g. demo.size=tiny (value read as YAML)")
    args = ap.parse_args(argv)
    try:
        overrides = []
        for f in args.overrides:
            p = Path(args.root) / f if not Path(f).is_absolute() else Path(f)
            if not p.is_file():
                raise ConfigError(f"{f}: override file not found")
            data = yaml.safe_load(p.read_text()) or {}
            if not isinstance(data, dict):
                raise ConfigError(f"{f}: top level must be a mapping of params.yaml sections")
            overrides.append(data)
        overrides += [parse_set(s) for s in args.sets]
        counts = sync(args.root, args.dest, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"workspace {args.dest}: {counts['copied']} file(s) copied, {counts['removed']} removed, "
          f"{counts['unchanged']} unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
