"""One module per DVC stage (``dvc.yaml``): ``vadlib.stages.<stage>.run(params, ctx)`` writes every
output ``dvc.yaml`` lists for the stage, so a stage runs and is tested without papermill; the stage's
notebook (``notebooks/<stage>.py``) calls it, then narrates and shows what it wrote.

Each module has a ``Params`` dataclass whose defaults are the only defaults of its ``params.yaml``
section, and ``run_notebook_params(params)`` = what its notebook calls with papermill's ``params``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vadlib.errors import ConfigError

STAGES = ("demo", "extract", "zeroshot", "flow_nf", "train_mil", "transfer", "backbones", "report")


def get_stage(name: str) -> ModuleType:
    """The module of stage ``name`` (``vadlib.stages.<name>``); unknown names list the known ones."""
    if name not in STAGES:
        raise ConfigError(f"unknown stage '{name}'; known: {', '.join(STAGES)}")
    return importlib.import_module(f"vadlib.stages.{name}")


def parameter_names(name: str) -> set[str]:
    """The keys of stage ``name``'s ``params.yaml`` section (its ``Params`` fields)."""
    import dataclasses

    return {f.name for f in dataclasses.fields(get_stage(name).Params)}
