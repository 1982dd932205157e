"""The house's layers: no vadlib module imports from a layer above its own (issue 19).

Modules of one layer may import each other (lazily, where they would cycle); a module may import any
layer below. The layers, lowest first, are those of the README's layout section.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "vadlib"

LAYERS: list[set[str]] = [
    {"errors", "io", "registry", "defaults", "_moved"},                          # plumbing
    {"config", "data", "scoring", "metrics", "results", "events", "seeds", "significance", "workspace"},
    {"features", "flow", "validation"},                                          # what is read from video
    {"prompts"},                                                                 # text, learned contexts
    {"methods", "compat", "train", "synthetic"},                                 # the methods
    {"report"},                                                                  # tables, figures, page
    {"stages", "pipeline", "detect", "search"},                                  # what a user runs
    {"bench", "cli", "__init__", "__main__"},                                    # entry points
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _top(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    return rel[0].removesuffix(".py")


def _imports(path: Path) -> list[tuple[str, int]]:
    """``(top-level vadlib package, line)`` of every ``vadlib.X`` import in ``path`` (lazy ones too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
                 else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
        out += [(n.split(".")[1], node.lineno) for n in names if n.startswith("vadlib.")]
    return out


FILES = sorted(ROOT.rglob("*.py"))


def test_every_top_level_module_has_a_layer():
    tops = {_top(f) for f in FILES}
    assert tops - set(LEVEL) == set(), "give these vadlib modules a layer in tests/test_layers.py"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_from_a_layer_above(path):
    src = _top(path)
    up = [f"{path.relative_to(ROOT.parent)}:{line} imports vadlib.{dst} (layer {LEVEL[dst]} > {LEVEL[src]})"
          for dst, line in _imports(path) if dst in LEVEL and LEVEL[dst] > LEVEL[src]]
    assert up == []
