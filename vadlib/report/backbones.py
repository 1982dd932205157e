"""The backbone comparison of the report: the ``backbones`` stage's entries
(``<reports>/backbones/<key>/metrics.json``, :mod:`vadlib.stages.backbones`) as one table and one figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def comparison_table(reports: str | Path):
    """The entries under ``<reports>/backbones/*/metrics.json`` as one DataFrame (one row per backbone:
    key, backbone, kind, text path, sampling, precision, real weights, µAUC/MAUC/µAP in %). Empty when
    the stage has not run."""
    import json

    import pandas as pd

    rows = []
    for f in sorted(Path(reports).glob("backbones/*/metrics.json")):
        d = json.loads(f.read_text())
        pr = d.get("protocol") or {}
        rows.append({"key": pr.get("backbone_key", f.parent.name), "backbone": pr.get("backbone"),
                     "kind": pr.get("kind"), "text_path": pr.get("text_path"), "sampling": pr.get("sampling"),
                     "precision": pr.get("precision"), "real_weights": pr.get("real_weights"),
                     "dataset": pr.get("dataset"), "method": (pr.get("method") or "").split(" · ")[0],
                     **{k: None if d.get(k) is None else 100.0 * d[k] for k in ("micro_auc", "macro_auc", "micro_ap")}})
    return pd.DataFrame(rows, columns=["key", "backbone", "kind", "text_path", "sampling", "precision", "real_weights",
                                       "dataset", "method", "micro_auc", "macro_auc", "micro_ap"])


def plot_comparison(table, title: str = "backbone comparison"):
    """A bar per backbone (µAUC and µAP, %); random-weight backbones hatched and labelled RANDOM."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.8 + 1.5 * max(len(table), 1), 3.2))
    x = np.arange(len(table))
    for j, (col, label) in enumerate((("micro_auc", "µAUC"), ("micro_ap", "µAP"))):
        vals = table[col].astype(float).fillna(0).to_numpy()
        bars = ax.bar(x + (j - 0.5) * 0.38, vals, 0.38, label=label)
        for b, real in zip(bars, table["real_weights"]):
            if real is False or real == False:  # noqa: E712
                b.set_hatch("//")
    names = [f"{k}\n{(b or '').split('/')[0]}" + ("" if r is not False else "\nRANDOM")
             for k, b, r in zip(table["key"], table["backbone"], table["real_weights"])]
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("%")
    ax.set_ylim(0, 100)
    ax.axhline(50, color="grey", lw=0.6, ls=":")
    ds = ", ".join(sorted({str(d) for d in table["dataset"]})) if len(table) else ""
    ax.set_title(f"{title} — {ds}" + ("  (hatched: RANDOM WEIGHTS)" if (table["real_weights"] == False).any() else ""),  # noqa: E712
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig
