"""Typed stage parameters: each stage's ``Params`` dataclass is the one declaration of its
``params.yaml`` section (types, bounds, choices and the one source of each default), and
:func:`from_section` checks a section against it with :func:`vadlib.config.check` (unknown keys, wrong
types and out-of-range values raise, naming ``params.yaml: <stage>.<key>``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, TypeVar

from vadlib.config import check

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


def from_section(cls: type[P], section: Mapping | None, where: str, source: str | None = "params.yaml") -> P:
    """``cls`` (a stage's ``Params``: the one declaration of its section) from the ``params.yaml``
    section ``where``, checked by :func:`vadlib.config.check` (unknown keys with close matches, types,
    bounds, choices; :class:`ConfigError` naming ``params.yaml: <where>.<key>``).

    A dict-valued field with non-empty defaults is updated one level deep (``{glow: {K: 3}}`` keeps
    the other Glow defaults); any other value replaces the default."""
    if section is not None and isinstance(section, Mapping):
        defaults = cls()
        names = {f.name for f in dataclasses.fields(cls)}
        merged = {}
        for k, v in section.items():
            d = getattr(defaults, k) if k in names else None
            merged[k] = {**d, **v} if isinstance(d, dict) and d and isinstance(v, Mapping) else v
        section = merged
    return check(cls, section, where, source)


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
