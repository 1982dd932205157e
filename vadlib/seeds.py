"""Multi-seed runs of the trained stages (``train_mil``, ``transfer``, the Glow/pose flows of ``flow_nf``):
each seed's outputs under ``<stage out>/seeds/seed_<k>/`` and the spread of every headline number.

The stage's ``metrics.json`` keeps its headline keys (``micro_auc`` ...) as the **mean over seeds**, so
``dvc exp show``, ``compare`` and the report read it unchanged, and adds beside each of them
``<key>_std`` (sample standard deviation, ``ddof=1``; 0 for one seed), ``<key>_min``, ``<key>_max``,
plus ``n_seeds``, ``seeds`` (the list) and ``per_seed`` (``{"<seed>": {key: value}}``), the numbers the
mean was taken over. A run with one seed writes the same keys with ``_std`` 0 and ``n_seeds`` 1.

Wall times are not results: they go to ``timing.json`` beside ``metrics.json`` (not a DVC output), so
re-running a stage by hand leaves every DVC-tracked output byte-identical.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from vadlib.io import write_json

#: the suffixes of the spread keys written beside every headline key
SPREAD_SUFFIXES = ("_std", "_min", "_max")


def seed_dir(out: Path, seed: int) -> Path:
    """``<out>/seeds/seed_<seed>``: where one seed's outputs go (created)."""
    d = Path(out) / "seeds" / f"seed_{int(seed)}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool) and math.isfinite(float(v))


def summarize(per_seed: Mapping[int, Mapping[str, float]], keys: Iterable[str]) -> dict:
    """Mean and spread over seeds of each of ``keys``.

    ``per_seed``: ``{seed: {key: value}}``. Returns ``{key: mean, key_std, key_min, key_max, ...,
    "n_seeds": n, "seeds": [..], "per_seed": {"<seed>": {key: value}}}``; a key with no finite value
    in any seed gives ``None`` (and no spread keys). ``key_std`` is the sample standard deviation
    (``ddof=1``), 0 for one seed."""
    keys = list(keys)
    out: dict = {}
    for k in keys:
        vals = np.array([float(m[k]) for m in per_seed.values() if _finite(m.get(k))])
        if not len(vals):
            out[k] = None
            continue
        out[k] = float(vals.mean())
        out[k + "_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out[k + "_min"], out[k + "_max"] = float(vals.min()), float(vals.max())
    out["n_seeds"] = len(per_seed)
    out["seeds"] = [int(s) for s in per_seed]
    out["per_seed"] = {str(s): {k: m.get(k) for k in keys} for s, m in per_seed.items()}
    return out


def format_spread(mean: float | None, std: float | None = None, n: int | None = None, digits: int = 3) -> str:
    """``"0.812 ± 0.013 (3)"`` for a multi-seed number, ``"0.812"`` for a single value (``n`` None or 1
    and no ``std``); ``""`` for a missing mean."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if n is None or std is None or (isinstance(std, float) and math.isnan(std)) or int(n) <= 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({int(n)})"


def resolve_seeds(seeds: Sequence[int] | None, default: int) -> list[int]:
    """The seeds a stage trains with: ``seeds`` if given (non-empty), else ``[default]`` (the global seed)."""
    return [int(s) for s in seeds] if seeds else [int(default)]


def write_timing(out: Path, timing: Mapping) -> Path:
    """``<out>/timing.json``: wall times of a run (not a DVC output; differs on every run)."""
    path = Path(out) / "timing.json"
    write_json(path, dict(timing))
    return path
