"""What a one-class stage does with its ``validation`` params: hold the chosen TRAINING videos out
of fitting, write (or reuse) the pseudo-anomaly set made from them, and name the key it chooses by.

A stage's ``validation`` section (e.g. ``flow_nf.validation``) has ``videos`` (``{dataset: [training
video names]}``), ``kinds``, ``seed``, ``root``, ``span``, ``margin`` and ``key_kinds`` (the kinds whose
mean per-kind AUC is the choice key; ``[]`` = every kind of the set).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from vadlib.config import bounded
from vadlib.data.base import VideoDataset
from vadlib.errors import ConfigError


@dataclasses.dataclass
class ValidationParams:
    """A one-class stage's ``validation`` section (``flow_nf.validation``, ``zeroshot.validation``).

    ``videos``: ``{dataset: [training video names]}``; a dataset's entry is held out of everything
    the stage fits (and of calibration) and made into its pseudo-anomaly set (no entry = no set, no
    ``validation`` block). ``kinds``, ``seed``, ``span`` (``[min, max]`` frames), ``margin``:
    :func:`~vadlib.validation.make_validation_set`'s; the set is written under ``root``.
    ``key_kinds``: the kinds whose mean per-kind micro AUC is the choice key (``[]`` = every kind).
    ``sigma``: candidate σ values chosen on the set (``[]`` = the stage's fixed ``sigma``)."""

    videos: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    kinds: list[str] = dataclasses.field(default_factory=lambda: ["skip", "reverse", "freeze", "patch", "object"])
    seed: int = 0
    root: str = "data/validation"
    span: list[int] = dataclasses.field(default_factory=lambda: [16, 40])
    margin: int = bounded(8, min=0)
    key_kinds: list[str] = dataclasses.field(default_factory=list)
    sigma: list[float] = dataclasses.field(default_factory=list)


def held_out(vcfg: Mapping | None, dataset: str) -> list[str]:
    """The training videos of ``dataset`` the ``validation`` section holds out (``[]``: none)."""
    return list(((vcfg or {}).get("videos") or {}).get(dataset) or [])


def without_videos(dataset: VideoDataset, names: Sequence[str]) -> VideoDataset:
    """A copy of ``dataset`` whose ``train`` split lacks ``names`` (each must be a training video)."""
    train = dataset.videos("train")
    missing = sorted(set(names) - {v.name for v in train})
    if missing:
        raise ConfigError(f"validation.videos.{dataset.name}: {missing} are not training videos of "
                          f"'{dataset.name}' (has: {', '.join(v.name for v in train[:20])})")
    kept = [v for v in train if v.name not in set(names)]
    if not kept:
        raise ConfigError(f"validation.videos.{dataset.name} holds out every training video; keep some to train on")
    # files indexed by position over the whole split (pose files) still need the full list
    return dataclasses.replace(dataset, splits={**dataset.splits, "train": kept},
                               meta={**dataset.meta, "full_splits": {**dataset.meta.get("full_splits", {}),
                                                                     "train": train}})


def set_config(vcfg: Mapping, dataset: str) -> dict:
    """The generator config of the set ``vcfg`` makes from ``dataset`` (what its folder name hashes)."""
    return {"dataset": dataset, "videos": held_out(vcfg, dataset), "kinds": list(vcfg["kinds"]),
            "seed": int(vcfg["seed"]), "span": [int(x) for x in vcfg["span"]], "margin": int(vcfg["margin"])}


def prepare_set(dataset: VideoDataset, vcfg: Mapping) -> VideoDataset | None:
    """Write (or reuse) the validation set of ``dataset`` under ``vcfg['root']/<dataset>/<seed>-<hash>``
    and load it (named ``<dataset>_val_<hash>``, so flow caches of different sets never mix). None
    when ``vcfg`` holds out no video of ``dataset``."""
    from vadlib.data.pseudo_anomalies import load_validation_set
    from vadlib.validation.generate import make_validation_set

    cfg = set_config(vcfg, dataset.name)
    if not cfg["videos"]:
        return None
    if len(cfg["span"]) != 2:
        raise ConfigError(f"validation.span must be [min, max] frames, got {cfg['span']}")
    h = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:8]
    out = Path(vcfg["root"]) / dataset.name / f"seed{cfg['seed']}-{h}"
    make_validation_set(dataset, cfg["videos"], out, cfg["kinds"], cfg["seed"], span=tuple(cfg["span"]),
                        margin=cfg["margin"])
    return load_validation_set(out, name=f"{dataset.name}_val_{h}")


def key_auc(result: Mapping, key_kinds: Sequence[str] | None = None) -> float:
    """Mean per-kind micro AUC over ``key_kinds`` (all kinds of ``result`` when empty) of a
    :func:`~vadlib.validation.validation_metrics` result; NaN kinds are skipped."""
    per = result["per_kind"]
    kinds = list(key_kinds) or list(per)
    unknown = [k for k in kinds if k not in per]
    if unknown:
        raise ConfigError(f"validation.key_kinds: {unknown} are not kinds of the set (has: {', '.join(per)})")
    vals = [per[k] for k in kinds if not math.isnan(per[k])]
    return float(np.mean(vals)) if vals else float("nan")


def choice_rows(choice, describe=lambda c: {"candidate": str(c)}) -> list[dict]:
    """The candidate table of a :class:`~vadlib.validation.Choice` as flat CSV rows: the candidate's
    columns, ``key_auc``, the micro/macro AUC and each kind's AUC, ``rank``, ``chosen``."""
    rows = []
    for r in choice.table:
        res = r.get("result") or {}
        rows.append({**describe(r["candidate"]), "key_auc": r["auc"], "micro_auc": res.get("micro_auc"),
                     "macro_auc": res.get("macro_auc"),
                     **{f"auc_{k}": v for k, v in (res.get("per_kind") or {}).items()},
                     "rank": r["rank"], "chosen": r["chosen"]})
    return rows
