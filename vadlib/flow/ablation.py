"""The feature ablation of ``flow_nf`` in Reiss & Hoshen's format (AI-VAD, TMLR Table 3): each stream
alone and every combination, micro and macro frame AUC on the test set, the pseudo-anomaly
validation AUC in its own column, and AI-VAD's own rows quoted beside them.

A combination is the unweighted sum of its members' min-max normalised scores (the stage's
calibration statistics, training videos only), as AI-VAD fuses; a single stream is its raw score
(min-max does not change an AUC). Every row uses the σ the stage chose on validation. Pose has no
scores on the validation set (the set has no pose file), so rows with pose have no validation AUC.

:data:`AIVAD_PED2` quotes ``shared/reference/published_numbers.md`` (their Table 3, Ped2, micro /
macro): their third stream is CLIP features of object crops ("deep"), which needs CLIP weights, not
the flow NF; their pose rows are empty on Ped2 (resolution too low).
"""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import numpy as np

#: the streams of flow_nf, in table order
STREAMS = ("velocity", "flow_nf", "pose")
LABELS = {"velocity": "velocity", "flow_nf": "flow NF", "pose": "pose", "deep": "deep (CLIP)"}
#: AI-VAD's Ped2 rows (TMLR Table 3; micro / macro frame AUC, %); None = not reported on Ped2
AIVAD_PED2: dict[tuple[str, ...], tuple[float, float] | None] = {
    ("velocity",): (98.8, 99.6), ("deep",): (96.4, 95.3), ("pose",): None,
    ("velocity", "deep"): (99.1, 99.9), ("velocity", "pose"): None, ("velocity", "deep", "pose"): None,
}
AIVAD_SOURCE = "Reiss & Hoshen, AI-VAD (TMLR), Table 3; Mask R-CNN boxes, FlowNet2 flow"


def combinations(present: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty combination of the ``present`` streams, singles first, in :data:`STREAMS` order."""
    s = [m for m in STREAMS if m in present]
    return [c for r in range(1, len(s) + 1) for c in itertools.combinations(s, r)]


def combo_scores(raw: Mapping[str, Mapping[str, np.ndarray]], combo: Sequence[str],
                 normalizers: Mapping) -> dict[str, np.ndarray]:
    """``{video: (T,)}`` score of a combination: the raw score of a single stream, else the sum of the
    members' ``normalizers[m].transform`` scores (fitted on training videos)."""
    from vadlib.scoring import fuse

    if len(combo) == 1:
        return {v: np.asarray(s, np.float64) for v, s in raw[combo[0]].items()}
    return fuse([raw[m] for m in combo], weights=[1.0] * len(combo), normalizers=[normalizers[m] for m in combo])


def ablation_rows(raw_test: Mapping[str, Mapping[str, np.ndarray]], labels: Mapping[str, np.ndarray],
                  normalizers: Mapping, sigma: float | None, raw_val: Mapping | None = None, val_dataset=None,
                  key_kinds: Sequence[str] = (), quoted: Mapping = AIVAD_PED2) -> list[dict]:
    """One row per combination of the streams in ``raw_test`` (``{stream: {video: (T,)}}``, test videos
    with ``labels``): ``streams``, ``micro_auc``, ``macro_auc`` (test), ``val_auc`` (the key AUC on the
    validation set ``val_dataset`` scored as ``raw_val``; NaN for rows with a stream it lacks),
    ``aivad_micro``, ``aivad_macro`` (quoted, NaN where AI-VAD reports none), then AI-VAD's rows with a
    stream not run here (``deep``) with empty measured cells."""
    from vadlib.metrics import evaluate_frames
    from vadlib.validation import validation_metrics
    from vadlib.validation.stage import key_auc

    nan = float("nan")
    rows = []
    for combo in combinations(list(raw_test)):
        m = evaluate_frames(combo_scores(raw_test, combo, normalizers), labels, sigma=sigma or None)
        val = nan
        if raw_val is not None and val_dataset is not None and all(c in raw_val for c in combo):
            val = key_auc(validation_metrics(combo_scores(raw_val, combo, normalizers), val_dataset, sigma or None),
                          key_kinds)
        q = quoted.get(combo)
        rows.append({"streams": " + ".join(LABELS[c] for c in combo), "micro_auc": m["micro_auc"],
                     "macro_auc": m["macro_auc"], "val_auc": val,
                     "aivad_micro": q[0] / 100 if q else nan, "aivad_macro": q[1] / 100 if q else nan})
    for combo, q in quoted.items():
        if any(c not in STREAMS for c in combo):
            rows.append({"streams": " + ".join(LABELS[c] for c in combo) + " (not run here)", "micro_auc": nan,
                         "macro_auc": nan, "val_auc": nan,
                         "aivad_micro": q[0] / 100 if q else nan, "aivad_macro": q[1] / 100 if q else nan})
    return rows


def ablation_markdown(rows: Sequence[Mapping], caption: str = "") -> str:
    """The table as Markdown (AUCs in %, one decimal; ``±`` spreads when rows carry ``<col>_std``)."""

    def cell(r, k):
        v = r.get(k)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        sd = r.get(f"{k}_std")
        return f"{100 * v:.1f}" + (f" ± {100 * sd:.1f}" if sd is not None and not math.isnan(sd) and sd > 0 else "")

    head = ("| streams | micro AUC | macro AUC | validation AUC | AI-VAD micro (quoted) | AI-VAD macro (quoted) |\n"
            "|---|---|---|---|---|---|\n")
    body = "".join(f"| {r['streams']} | " + " | ".join(cell(r, k) for k in ("micro_auc", "macro_auc", "val_auc",
                                                                            "aivad_micro", "aivad_macro")) + " |\n"
                   for r in rows)
    return head + body + (f"\n{caption}\n" if caption else "")
