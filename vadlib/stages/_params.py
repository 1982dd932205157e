"""Typed stage parameters: one dataclass per ``params.yaml`` section holds the defaults (the one
source of each default), and :func:`from_section` checks a section against it (unknown keys and
wrong types raise, naming ``params.yaml: <stage>.<key>``)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, TypeVar

from vadlib.errors import ConfigError

P = TypeVar("P")

#: keys every stage receives from the runner (:func:`vadlib.pipeline.notebook_parameters`) beside its section
RUNNER_KEYS = ("seed", "backbone", "datasets", "item", "out_dir", "stage", "reports")


@dataclass
class StageContext:
    """What the runner gives every stage beside its own section: the shared ``params.yaml`` sections
    (``seed``, ``backbone``, ``datasets``), the foreach ``item`` ("" for single stages), the output
    folder ``out_dir`` (``reports/<stage>[/<item>]``) and ``reports`` (where earlier stages wrote)."""

    out_dir: Path
    item: str = ""
    seed: int = 0
    backbone: dict = field(default_factory=lambda: {"name": "ViT-B-16", "pretrained": "openai", "device": "cpu"})
    datasets: dict = field(default_factory=dict)
    reports: Path = Path("reports")

    def __post_init__(self):
        self.out_dir, self.reports = Path(self.out_dir), Path(self.reports)

    @property
    def device(self) -> str:
        return str(self.backbone.get("device", "cpu"))


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    base = origin or tp
    if base is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, base)


def from_section(cls: type[P], section: Mapping | None, where: str) -> P:
    """``cls`` (a dataclass of defaults) updated with the ``params.yaml`` section ``where``.

    A dict-valued field with non-empty defaults is updated one level deep (``{glow: {K: 3}}`` keeps
    the other Glow defaults); any other value replaces the default. Raises :class:`ConfigError`
    naming ``params.yaml: <where>.<key>`` for a key the stage does not have (a typo papermill would
    silently ignore) or a value of the wrong type."""
    if section is not None and not isinstance(section, Mapping):
        raise ConfigError(f"params.yaml: section '{where}' must be a mapping, got {type(section).__name__}")
    section = dict(section or {})
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(section) - set(names))
    if unknown:
        raise ConfigError(f"params.yaml: {where}.{unknown[0]} is not a parameter of stage '{where}' "
                          f"(its parameters: {', '.join(names)})")
    hints = typing.get_type_hints(cls)
    defaults = cls()
    kw = {}
    for k, v in section.items():
        if not _type_ok(v, hints[k]):
            raise ConfigError(f"params.yaml: {where}.{k} = {v!r} has the wrong type "
                              f"(expected {getattr(hints[k], '__name__', None) or hints[k]})")
        d = getattr(defaults, k)
        kw[k] = {**d, **v} if isinstance(d, dict) and d and isinstance(v, Mapping) else v
    return cls(**kw)


def split_params(params: Mapping, stage: str) -> tuple[dict, StageContext]:
    """The papermill ``params`` dict of a stage notebook split into its own section and the
    :class:`StageContext`."""
    ctx = {k: params[k] for k in RUNNER_KEYS if k in params and k != "stage"}
    ctx.setdefault("out_dir", Path(params.get("reports", "reports")) / stage / (params.get("item") or ""))
    return {k: v for k, v in params.items() if k not in RUNNER_KEYS}, StageContext(**ctx)


def notebook_params(params: Mapping | None, stage: str, item: str | None = None,
                    params_file: str | Path = "params.yaml") -> dict:
    """The parameters a stage notebook runs with: those papermill injected (``params``), or, when
    the notebook is run by hand (``params`` empty), ``params_file``'s section and shared sections,
    for ``item`` (default: the section's first ``run_on`` dataset) — exactly what ``dvc repro`` would
    pass."""
    if params:
        return dict(params)
    from vadlib.pipeline import load_params, notebook_parameters

    all_params = load_params(params_file)
    if item is None:
        run_on = (all_params.get(stage) or {}).get("run_on")
        item = run_on[0] if run_on else None
    return notebook_parameters(all_params, stage, item)
