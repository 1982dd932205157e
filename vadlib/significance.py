"""Is method A better than method B on the same test set? A paired bootstrap over test videos of the
frame-AUC difference (micro and macro, the conventions of :func:`vadlib.metrics.evaluate_frames`).

Each resample draws ``n`` test videos with replacement (``n`` = the number of test videos); the SAME
draw is applied to both methods (paired), and ``AUC_A − AUC_B`` is computed on it:

* micro: one ``roc_auc_score`` over the frames of the drawn videos concatenated (a video drawn twice
  counts twice);
* macro: the mean of the drawn videos' per-video AUCs, single-class videos skipped (as in
  ``evaluate_frames``).

The interval is the percentile interval ``[q(α/2), q(1−α/2)]`` of the resampled differences (95 % by
default); A "beats" B when the whole interval lies above 0. Resamples whose drawn videos hold a single
class (micro) or no two-class video (macro) are dropped and counted.

Several seeds: give a method as a list of score dicts, one per seed; its AUC on a resample is then the
mean over its seeds of the AUC on that resample (the number the results table prints), so the interval
covers the seed-averaged difference on the same test videos.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from sklearn.metrics import roc_auc_score


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else math.nan


def bootstrap_resamples(n_videos: int, n_boot: int = 2000, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_videos)`` int array: video indices drawn with replacement, one row per resample."""
    return np.random.default_rng(seed).integers(0, n_videos, size=(n_boot, n_videos))


def paired_bootstrap_auc(
    scores_a: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
    scores_b: Mapping[str, np.ndarray] | Sequence[Mapping[str, np.ndarray]],
    labels: Mapping[str, np.ndarray],
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
    resamples: np.ndarray | Sequence[Sequence[int]] | None = None,
) -> dict:
    """Paired bootstrap over test videos of ``AUC(A) − AUC(B)``, micro and macro.

    ``scores_a``, ``scores_b``: ``{video: (T,) float}`` per-frame scores of the two methods, or a list of
    such dicts (one per seed: the method's AUC is the mean over its seeds);
    ``labels``: ``{video: (T,) 0/1}``; all three on the same videos (sorted by name; ``KeyError``
    naming a missing video). ``resamples``: an explicit ``(B, n)`` array of video indices (into the
    sorted names) instead of ``n_boot`` draws from ``seed``.

    Returns ``{"micro": {...}, "macro": {...}, "n_videos", "n_boot", "level"}``, each of micro/macro
    ``{"a", "b", "diff" (on the full test set), "low", "high" (the interval), "p_le_0" (share of
    resampled differences ≤ 0), "n_valid" (resamples used), "a_beats_b", "b_beats_a"}``."""
    names = sorted(labels)
    ys = [np.asarray(labels[v]).astype(int).ravel() for v in names]

    def per_seed(what, sc):          # [seed][video] -> (T,) float
        seeds = [sc] if isinstance(sc, Mapping) else list(sc)
        out = []
        for k, s in enumerate(seeds):
            missing = [v for v in names if v not in s]
            if missing:
                raise KeyError(f"{what}{'' if len(seeds) == 1 else f'[{k}]'} has no scores for test video(s) "
                               f"{missing[:3]}: compare on the same test set")
            out.append([np.asarray(s[v], dtype=float).ravel() for v in names])
            for v, y, a in zip(names, ys, out[-1]):
                if len(y) != len(a):
                    raise ValueError(f"video '{v}': {len(y)} labels but {len(a)} scores in {what}")
        return out

    sa, sb = per_seed("scores_a", scores_a), per_seed("scores_b", scores_b)
    va = np.array([[_auc(y, a) for y, a in zip(ys, s)] for s in sa])   # (seeds, videos) AUC; NaN: single-class
    vb = np.array([[_auc(y, b) for y, b in zip(ys, s)] for s in sb])
    idx = (bootstrap_resamples(len(names), n_boot, seed) if resamples is None
           else np.asarray(resamples, dtype=int).reshape(len(resamples), -1))

    def micro(rows) -> tuple[float, float]:
        y = np.concatenate([ys[i] for i in rows])
        return tuple(float(np.mean([_auc(y, np.concatenate([s[i] for i in rows])) for s in m])) for m in (sa, sb))

    def macro(rows) -> tuple[float, float]:
        rows = [i for i in rows if not math.isnan(va[0, i])]
        return ((float(va[:, rows].mean(1).mean()), float(vb[:, rows].mean(1).mean())) if rows
                else (math.nan, math.nan))

    alpha = 1.0 - level
    out = {"n_videos": len(names), "n_boot": int(len(idx)), "level": level}
    for name, fn in (("micro", micro), ("macro", macro)):
        a, b = fn(range(len(names)))
        diffs = np.array([x - y for x, y in (fn(r) for r in idx)])
        diffs = diffs[np.isfinite(diffs)]
        low, high = ((float(np.quantile(diffs, alpha / 2)), float(np.quantile(diffs, 1 - alpha / 2)))
                     if len(diffs) else (math.nan, math.nan))
        out[name] = {"a": a, "b": b, "diff": a - b, "low": low, "high": high,
                     "p_le_0": float(np.mean(diffs <= 0)) if len(diffs) else math.nan, "n_valid": int(len(diffs)),
                     "a_beats_b": bool(low > 0), "b_beats_a": bool(high < 0)}
    return out


def comparison_sentence(name_a: str, name_b: str, res: Mapping, which: str = "micro") -> str:
    """One line for a report: ``"zeroshot vs train_mil (demo_a): micro AUC difference +0.041, 95 % CI
    [+0.012, +0.070] over 8 test videos (paired bootstrap, 2000 resamples): zeroshot is better."``"""
    r = res[which]
    verdict = (f"{name_a} is better" if r["a_beats_b"] else f"{name_b} is better" if r["b_beats_a"]
               else "no significant difference")
    return (f"{name_a} vs {name_b}: {which} AUC difference {r['diff']:+.3f}, {round(100 * res['level'])} % CI "
            f"[{r['low']:+.3f}, {r['high']:+.3f}] over {res['n_videos']} test videos (paired bootstrap, "
            f"{r['n_valid']} resamples): {verdict}.")
