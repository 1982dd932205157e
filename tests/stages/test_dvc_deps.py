"""Every library file a DVC stage runs is among the stage's ``deps:`` in dvc.yaml, so editing it makes
``dvc status`` report the stage as changed (and ``dvc repro`` rerun it).

A stage runs ``python -m vadlib.pipeline <stage>`` (the runner), which executes ``notebooks/<stage>.py``,
which calls ``vadlib/stages/<stage>.py``. Their ``vadlib`` imports are followed transitively and
statically (``ast``; imports inside functions count, since the stage runs them); importing
``vadlib.a.b`` also runs ``vadlib/__init__.py`` and ``vadlib/a/__init__.py``. A directory dep
(``vadlib/features``) covers every file under it. The method registry is lazy (an entry's module is
imported on first use): a file that takes the registry or a by-name builder from ``vadlib.methods``
(``METHODS``, ``build``, ``config``, ``load``) can run every entry, so it counts as importing each
``register_lazy`` target of ``vadlib/methods/__init__.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _module_file(name: str) -> Path | None:
    """``vadlib.a.b`` → ``vadlib/a/b.py`` or ``vadlib/a/b/__init__.py`` (relative to ROOT), or None."""
    base = ROOT.joinpath(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand.relative_to(ROOT)
    return None


def _package_of(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    return ".".join(parts[:-1]) if parts[-1] != "__init__" else ".".join(parts[:-1])


#: the names of ``vadlib.methods`` that reach a method by its registered name
BY_NAME = {"METHODS", "build", "config", "load"}


def lazy_method_modules() -> set[str]:
    """The modules of the lazily registered methods (``METHODS.register_lazy(name, "module:attr")``)."""
    tree = ast.parse((ROOT / "vadlib" / "methods" / "__init__.py").read_text())
    return {node.args[1].value.partition(":")[0] for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "register_lazy"
            and len(node.args) == 2 and isinstance(node.args[1], ast.Constant)}


def imported_modules(path: Path) -> set[str]:
    """The ``vadlib`` modules ``path`` imports anywhere in its body (absolute and relative imports;
    ``from vadlib.a import b`` yields ``vadlib.a`` and, when ``b`` is a module, ``vadlib.a.b``)."""
    tree = ast.parse((ROOT / path).read_text(), filename=str(path))
    pkg = _package_of(path) if path.parts[0] == "vadlib" else ""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "vadlib")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "vadlib":
                continue
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names if _module_file(f"{mod}.{a.name}"))
            if mod == "vadlib.methods" and BY_NAME & {a.name for a in node.names}:
                out.update(lazy_method_modules())
    return out


def stage_files(stage: str) -> set[Path]:
    """The library files stage ``stage`` runs: the closure of the runner, its notebook and its module."""
    roots = [Path("vadlib/pipeline.py"), Path("notebooks") / f"{stage}.py"]
    if (ROOT / "vadlib" / "stages" / f"{stage}.py").is_file():
        roots.append(Path("vadlib/stages") / f"{stage}.py")
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for mod in imported_modules(f):
            parts = mod.split(".")
            for i in range(1, len(parts) + 1):          # vadlib/__init__.py, vadlib/a/__init__.py, ... run too
                mf = _module_file(".".join(parts[:i]))
                if mf is not None and mf not in seen:
                    todo.append(mf)
    return {f for f in seen if f.parts[0] in ("vadlib", "notebooks")}


def _stages() -> dict[str, list[str]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    return {name: list((s.get("do", s)).get("deps") or []) for name, s in stages.items()}


def _covered(f: Path, deps: list[str]) -> bool:
    return any(f == Path(d) or Path(d) in f.parents for d in deps)


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_library_file_a_stage_runs_is_a_dvc_dep(stage):
    deps = _stages()[stage]
    files = stage_files(stage)
    assert Path("notebooks") / f"{stage}.py" in files
    missing = sorted(str(f) for f in files if not _covered(f, deps))
    assert not missing, (f"dvc.yaml: stage '{stage}' runs these files but does not list them in deps "
                         f"(editing them would not rerun it); add: {missing}")
    # and no stale library dep: each listed vadlib module path holds a file the stage runs (data folders
    # such as vadlib/features/model_configs are read by the code, not imported)
    modules = [d for d in deps if d.startswith("vadlib") and (d.endswith(".py") or any((ROOT / d).rglob("*.py")))]
    stale = [d for d in modules if not any(f == Path(d) or Path(d) in f.parents for f in files)]
    assert not stale, f"dvc.yaml: stage '{stage}' lists deps it does not run: {stale}"


def test_the_import_walk_sees_lazy_relative_and_submodule_imports(tmp_path):
    # train_mil runs AnomalyCLIP's prompt learner only through an import inside a function of
    # methods/anomalyclip/model.py, and the store only through `from vadlib.features.store import ...`
    files = stage_files("train_mil")
    for f in ("vadlib/prompts/learning.py", "vadlib/features/store.py", "vadlib/results.py",
              "vadlib/report/plots.py", "vadlib/pipeline.py", "vadlib/__init__.py", "vadlib/stages/train_mil.py"):
        assert Path(f) in files, f
    # a file no stage imports is not reported
    assert Path("vadlib/cli.py") not in files
    assert "vadlib.detect.methods" in imported_modules(Path("vadlib/detect/__init__.py"))
    # train_mil builds its method by name through the lazy registry: every entry's module counts
    assert {"vadlib.methods.anomalyclip.method", "vadlib.methods.mil.method",
            "vadlib.methods.zeroshot.method"} <= lazy_method_modules()
    assert Path("vadlib/methods/mil/method.py") in files
    assert Path("vadlib/methods/mil/method.py") not in stage_files("zeroshot")
