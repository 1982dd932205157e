"""Evaluation metrics (pure numpy / scipy / sklearn): frame-level micro/macro AUC and AP,
video-level AUC/AP, pixel AUROC and AUPRO, anomaly-recognition metrics, curve points.

Conventions (methods.md §7), recorded in every result dict so a figure can carry them:

* **Micro** = all frames of all videos concatenated, one ``roc_auc_score``; **macro** = mean of
  per-video values, single-class videos are SKIPPED (counted in ``macro_skipped``).
* **AP** = ``sklearn.metrics.average_precision_score`` (step-wise, no interpolation), never
  the trapezoid ``auc(recall, precision)``.
* Labels may be binary or class ids; a frame is anomalous iff its label is ``!= 0``.
* Smoothing (optional) is a per-video Gaussian (``vadlib.scoring.gaussian_smooth``), never
  across video boundaries; ``sigma`` is reported.
* Degenerate inputs (no anomalous or no normal frame at all) give NaN plus a ``warning``
  entry instead of an exception; malformed inputs (missing videos, length mismatch,
  NaN/inf scores) raise :class:`~vadlib.errors.DataError` naming the video.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from vadlib.errors import ConfigError, DataError
from vadlib.scoring import gaussian_smooth

AP_DEFINITION = "sklearn average_precision_score"


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _check_same_videos(scores: Mapping, labels: Mapping, what: str = "scores", ref: str = "labels") -> list[str]:
    s, l = set(scores), set(labels)
    if s != l:
        miss_s = sorted(l - s)
        miss_l = sorted(s - l)
        parts = []
        if miss_s:
            parts.append(f"{len(miss_s)} video(s) in {ref} but not in {what}: {miss_s[:20]}")
        if miss_l:
            parts.append(f"{len(miss_l)} video(s) in {what} but not in {ref}: {miss_l[:20]}")
        raise DataError(None, "video sets differ: " + "; ".join(parts))
    if not s:
        raise DataError(None, f"no videos given ({what} and {ref} are empty)")
    return list(scores)


def _frame_arrays(
    scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray]
) -> tuple[list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Validate and convert to ``{video: (T,) float64}`` scores and ``{video: (T,) bool}`` labels."""
    names = _check_same_videos(scores, labels)
    s_out: dict[str, np.ndarray] = {}
    l_out: dict[str, np.ndarray] = {}
    for name in names:
        s = np.asarray(scores[name], dtype=np.float64)
        l = np.asarray(labels[name])
        if s.ndim != 1:
            raise DataError(None, f"video '{name}': scores must be 1-D (T,), got shape {s.shape}")
        if l.ndim != 1:
            raise DataError(None, f"video '{name}': labels must be 1-D (T,), got shape {l.shape}")
        if s.shape[0] != l.shape[0]:
            raise DataError(None, f"video '{name}': {s.shape[0]} scores but {l.shape[0]} labels (lengths differ)")
        bad = ~np.isfinite(s)
        if bad.any():
            idx = np.flatnonzero(bad)
            raise DataError(None, f"video '{name}': {idx.size} NaN/inf score(s), first at frame {int(idx[0])}")
        if l.dtype.kind == "f" and not np.all(np.isfinite(l)):
            raise DataError(None, f"video '{name}': labels contain NaN/inf")
        s_out[name] = s
        l_out[name] = l != 0
    return names, s_out, l_out


def _auc_ap(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """AUC and AP of binary ``y`` vs scores ``s``; NaN when ``y`` has a single class."""
    if y.size == 0 or y.all() or not y.any():
        return math.nan, math.nan
    return float(roc_auc_score(y, s)), float(average_precision_score(y, s))


def frame_auc(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], sigma: float | None = None) -> float:
    """Micro frame AUC (all frames concatenated); NaN if only one class is present."""
    return evaluate_frames(scores, labels, sigma)["micro_auc"]


def frame_ap(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], sigma: float | None = None) -> float:
    """Micro frame AP (``average_precision_score``); NaN if only one class is present."""
    return evaluate_frames(scores, labels, sigma)["micro_ap"]


def evaluate_frames(
    scores: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    sigma: float | None = None,
) -> dict:
    """Frame-level metrics of per-video scores against per-frame labels.

    Args:
        scores: ``{video: (T,)}`` float, higher = more anomalous.
        labels: ``{video: (T,)}`` binary or class ids (anomalous iff ``!= 0``), same videos and lengths.
        sigma: Gaussian smoothing in frames applied per video before scoring (None/0 = none).

    Returns a dict with ``micro_auc``, ``macro_auc``, ``micro_ap``, ``macro_ap``, ``n_videos``,
    ``n_frames``, ``n_anomalous``, ``macro_n`` (videos used in macro), ``macro_skipped``
    (single-class videos skipped in macro), ``sigma``, ``ap_definition``, ``per_video``
    (``{video: {"auc", "ap", "n_frames", "n_anomalous"}}``, NaN for single-class videos) and
    ``warning`` (None, or a message when micro metrics are undefined because there is no
    anomalous frame — or no normal frame — at all; the AUC/AP values are then NaN).
    """
    names, s, l = _frame_arrays(scores, labels)
    if sigma:
        s = gaussian_smooth(s, sigma)
    y_all = np.concatenate([l[n] for n in names])
    s_all = np.concatenate([s[n] for n in names])
    n_frames, n_anom = int(y_all.size), int(y_all.sum())
    warnings: list[str] = []
    if n_frames == 0:
        warnings.append("no frames at all: every metric is undefined (NaN)")
    elif n_anom == 0:
        warnings.append("no anomalous frames at all: AUC/AP are undefined (NaN)")
    elif n_anom == n_frames:
        warnings.append("no normal frames at all: AUC/AP are undefined (NaN)")
    micro_auc, micro_ap = _auc_ap(y_all, s_all)

    per_video: dict[str, dict] = {}
    aucs, aps, skipped = [], [], []
    for n in names:
        auc, ap = _auc_ap(l[n], s[n])
        per_video[n] = {"auc": auc, "ap": ap, "n_frames": int(l[n].size), "n_anomalous": int(l[n].sum())}
        if math.isnan(auc):
            skipped.append(n)
        else:
            aucs.append(auc)
            aps.append(ap)
    if not aucs:
        warnings.append("no video contains both normal and anomalous frames: macro AUC/AP undefined (NaN)")
    return {
        "micro_auc": micro_auc,
        "macro_auc": float(np.mean(aucs)) if aucs else math.nan,
        "micro_ap": micro_ap,
        "macro_ap": float(np.mean(aps)) if aps else math.nan,
        "n_videos": len(names),
        "n_frames": n_frames,
        "n_anomalous": n_anom,
        "macro_n": len(aucs),
        "macro_skipped": len(skipped),
        "macro_skipped_videos": skipped,
        "sigma": float(sigma) if sigma else 0.0,
        "ap_definition": AP_DEFINITION,
        "macro_convention": "mean over videos with both classes; single-class videos skipped",
        "per_video": per_video,
        "warning": "; ".join(warnings) if warnings else None,
    }
