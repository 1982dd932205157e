"""The results table: every stage's ``metrics.json`` gathered into methods × datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from vadlib.errors import DataError

COLUMNS = ["stage", "method", "dataset", "micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc",
           "sigma", "ap_definition", "gt_file", "backbone", "real_weights", "source"]


def collect_metrics(reports: str | Path, exclude: tuple[str, ...] = ("report",)) -> pd.DataFrame:
    """Read ``reports/<stage>/[<item>/]metrics.json`` files into one table.

    A metrics file may hold one result (flat keys plus ``protocol``) or several under
    ``"rows": [...]``. Protocol columns come from ``protocol``. Unreadable files raise
    :class:`DataError` naming the file.
    """
    reports = Path(reports)
    rows = []
    for path in sorted(reports.glob("*/**/metrics.json")):
        stage = path.relative_to(reports).parts[0]
        if stage in exclude:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(path, f"metrics file is not valid JSON ({exc})") from exc
        items = data.get("rows") if isinstance(data.get("rows"), list) else [data]
        for d in items:
            proto = {**data.get("protocol", {}), **d.get("protocol", {})}
            rows.append({
                "stage": stage,
                "method": d.get("method", proto.get("method", stage)),
                "dataset": d.get("dataset", proto.get("dataset", path.parent.name)),
                **{k: d.get(k) for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc")},
                **{k: proto.get(k) for k in ("sigma", "ap_definition", "gt_file", "backbone", "real_weights")},
                "source": str(path.relative_to(reports)),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """Markdown table (needs ``tabulate``)."""
    return df.to_markdown(index=False, floatfmt=floatfmt)


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "tab:results") -> str:
    """A ``booktabs`` LaTeX table."""
    return df.to_latex(index=False, float_format="%.4f", caption=caption or None, label=label,
                       escape=True, na_rep="--")
