"""Modules that moved, for artifacts that name them: joblib / pickle files written before the move
(e.g. ``reports/flow_nf_ped2/model/velocity.joblib`` names ``vadlib.models.density.GMMDensity``).

:data:`MOVED` maps each old module path to its new one; :func:`old_module_paths` makes the old paths
resolve to the new modules while a file is unpickled, and removes them again afterwards, so nothing
else can import an old path.
"""

from __future__ import annotations

import importlib
import sys
import types
from contextlib import contextmanager
from typing import Iterator

#: old module path -> new module path (issue 19: one package per method, prompts below the methods)
MOVED: dict[str, str] = {
    "vadlib.models.zeroshot": "vadlib.methods.zeroshot.model",
    "vadlib.models.dpam": "vadlib.methods.zeroshot.dpam",
    "vadlib.models.transfer": "vadlib.methods.transfer.model",
    "vadlib.models.temporal": "vadlib.methods.transfer.temporal",
    "vadlib.models.glow": "vadlib.methods.flow_nf.glow",
    "vadlib.models.density": "vadlib.methods.flow_nf.density",
    "vadlib.flow.pipeline": "vadlib.methods.flow_nf.pipeline",
    "vadlib.models.prompts": "vadlib.prompts.text",
    "vadlib.models.prompt_learning": "vadlib.prompts.learning",
}


class _Alias(types.ModuleType):
    """An old module path whose attributes are looked up in the new module (imported on first use)."""

    def __init__(self, old: str, new: str):
        super().__init__(old, f"moved to {new}")
        self._new = new

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module(self._new), name)


@contextmanager
def old_module_paths() -> Iterator[None]:
    """Within the block, ``import vadlib.models.density`` (and every path in :data:`MOVED`) gives the
    moved module; the previous ``sys.modules`` entries are restored on exit."""
    aliases: dict[str, types.ModuleType] = {old: _Alias(old, new) for old, new in MOVED.items()}
    pkg = types.ModuleType("vadlib.models", "the old package of the methods (see vadlib._moved)")
    pkg.__path__ = []                          # vadlib.flow still exists: only its pipeline moved
    aliases["vadlib.models"] = pkg
    saved = {name: sys.modules.get(name) for name in aliases}
    sys.modules.update(aliases)
    try:
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
