"""Score a method on a pseudo-anomaly validation set, and choose a setting by that score.

:func:`validation_metrics` is what a one-class stage writes into ``metrics.json`` under
``validation``: the micro frame AUC over the whole set, the macro AUC, and the micro AUC per kind
(each kind's videos together with the clean copies, so a kind's AUC asks "are this kind's
pseudo-anomalous frames scored above normal frames"). All AUCs come from
:func:`vadlib.metrics.evaluate_frames`.

:func:`choose` picks one of several candidate settings (σ, epochs, fusion weights …) by
validation AUC. Ties go to the candidate listed first (list the simplest / default first); a NaN
AUC ranks last. It never sees the test set: ``scores_fn`` is given a candidate and must score
the validation set only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vadlib.data.base import NORMAL, VideoDataset
from vadlib.errors import ConfigError, DataError
from vadlib.metrics import evaluate_frames


def validation_truth(dataset: VideoDataset) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({video: (T,) uint8 labels}, {video: kind})`` of a set loaded by the ``pseudo_anomalies`` adapter."""
    labels, kinds = {}, {}
    for v in dataset.videos("test"):
        if v.frame_labels is None or "kind" not in v.meta:
            raise DataError(dataset.root, f"video '{v.name}' has no labels or kind: load the set with "
                            "get_dataset('pseudo_anomalies', root)")
        labels[v.name] = v.frame_labels
        kinds[v.name] = v.meta["kind"]
    return labels, kinds


def validation_auc(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                   kinds: Mapping[str, str], sigma: float | None = None) -> dict:
    """Pseudo-anomaly AUCs of per-frame ``scores``.

    Args:
        scores: ``{video: (T,)}`` float, higher = more anomalous, for every video of the set.
        labels: ``{video: (T,)}`` 0/1 truth. kinds: ``{video: kind}`` (``"normal"`` for clean copies).
        sigma: per-video Gaussian smoothing (frames) before scoring, as the stage evaluates.

    Returns ``{"micro_auc", "macro_auc", "micro_ap", "per_kind": {kind: micro AUC}, "n_videos",
    "n_frames", "n_anomalous", "sigma"}`` (JSON-able; NaN where a kind has no anomalous frame).
    """
    if set(kinds) != set(labels):
        raise DataError(None, f"kinds and labels name different videos: {sorted(set(kinds) ^ set(labels))[:10]}")
    scores = dict(scores)
    res = evaluate_frames(scores, labels, sigma)  # checks the video sets and lengths
    clean = [n for n, k in kinds.items() if k == NORMAL]
    per_kind = {}
    for kind in sorted({k for k in kinds.values() if k != NORMAL}):
        names = [n for n, k in kinds.items() if k == kind] + clean
        sub = evaluate_frames({n: scores[n] for n in names}, {n: labels[n] for n in names}, sigma)
        per_kind[kind] = sub["micro_auc"]
    return {"micro_auc": res["micro_auc"], "macro_auc": res["macro_auc"], "micro_ap": res["micro_ap"],
            "per_kind": per_kind, "n_videos": res["n_videos"], "n_frames": res["n_frames"],
            "n_anomalous": res["n_anomalous"], "sigma": res["sigma"]}


def validation_metrics(scores: Mapping[str, np.ndarray], dataset: VideoDataset, sigma: float | None = None) -> dict:
    """:func:`validation_auc` against a loaded set, plus the set's ``seed``, ``kinds`` and source
    ``dataset`` (what goes into ``metrics.json`` under ``validation``)."""
    labels, kinds = validation_truth(dataset)
    out = validation_auc(scores, labels, kinds, sigma)
    cfg = dataset.meta.get("validation", {})
    out["set"] = {"dataset": cfg.get("dataset"), "videos": cfg.get("videos"), "kinds": cfg.get("kinds"),
                  "seed": cfg.get("seed")}
    return out


@dataclass
class Choice:
    """The outcome of :func:`choose`: the chosen candidate, its position, and the full table
    (one row per candidate, in the order given: ``candidate``, ``auc``, ``rank`` (1 = best),
    ``chosen``, and ``result`` when ``scores_fn`` returned a dict)."""

    best: Any
    index: int
    auc: float
    table: list[dict]


def choose(candidates: Sequence[Any], scores_fn: Callable[[Any], float | Mapping],
           key: str | Callable[[Mapping], float] = "micro_auc") -> Choice:
    """Pick the candidate with the highest validation AUC.

    Args:
        candidates: settings to try, simplest / default first (it wins ties).
        scores_fn: ``candidate -> AUC`` or ``-> dict`` holding ``key`` (e.g. :func:`validation_metrics`'s).
            It must score the validation set only.
        key: the dict entry to maximise, or ``result -> float`` (e.g. the mean AUC of the kinds a
            method is meant to see: ``lambda r: np.mean([r["per_kind"][k] for k in ("skip", "patch")])``).

    Ties (equal AUC) go to the earlier candidate; NaN ranks last; all NaN raises
    :class:`ConfigError`. Every candidate is scored once, in order.
    """
    candidates = list(candidates)
    if not candidates:
        raise ConfigError("choose: no candidates given")
    table = []
    for c in candidates:
        r = scores_fn(c)
        if isinstance(r, Mapping):
            if callable(key):
                auc = float(key(r))
            elif key in r:
                auc = float(r[key])
            else:
                raise ConfigError(f"choose: scores_fn returned a dict without '{key}' (has: {', '.join(map(str, r))})")
            row = {"candidate": c, "auc": auc, "result": dict(r)}
        else:
            row = {"candidate": c, "auc": float(r)}
        table.append(row)
    order = sorted(range(len(table)), key=lambda i: (math.isnan(table[i]["auc"]),
                                                      -table[i]["auc"] if not math.isnan(table[i]["auc"]) else 0.0, i))
    if math.isnan(table[order[0]]["auc"]):
        raise ConfigError("choose: every candidate's validation AUC is NaN (does the set have anomalous "
                          "and normal frames?)")
    for rank, i in enumerate(order, 1):
        table[i]["rank"] = rank
        table[i]["chosen"] = rank == 1
    best = order[0]
    return Choice(best=candidates[best], index=best, auc=table[best]["auc"], table=table)
