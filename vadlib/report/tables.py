"""The results table: every stage's ``metrics.json`` gathered into methods × datasets.

Measured rows come from ``reports/<stage>/[<item>/]metrics.json``; reference rows are the
published figures of :file:`vadlib/report/published.yaml`, always carried with
``kind = "quoted"`` and their source tag so they are never mistaken for measurements.

A trained stage run over several seeds (:mod:`vadlib.seeds`) gives the mean in the metric column and
its spread in ``spread`` (``{metric: [std, n]}``, std in the metric's unit); :func:`display_table` and
:func:`to_latex` print such a cell as ``mean ± std (n)``, untrained rows as one value, quoted rows as
quoted. Per-seed files (``<stage>/.../seeds/seed_<k>/metrics.json``) are not rows of their own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from vadlib.errors import DataError

METRICS = ["micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc", "map"]
PROTOCOL = ["sigma", "ap_definition", "gt_file", "backbone", "real_weights"]
COLUMNS = ["stage", "method", "dataset", "micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc",
           "sigma", "ap_definition", "gt_file", "backbone", "real_weights", "source"]
RESULT_COLUMNS = ["kind", "stage", "method", "dataset", "setting", *METRICS, *PROTOCOL, "source", "note", "ranges",
                  "spread"]
PUBLISHED = Path(__file__).with_name("published.yaml")

# other spellings a stage may use for the same metric
_ALIASES = {"micro_auc": ("micro_auc", "auc", "frame_auc"), "macro_auc": ("macro_auc",),
            "micro_ap": ("micro_ap", "ap", "frame_ap"), "macro_ap": ("macro_ap",),
            "mauc": ("mauc", "mAUC"), "map": ("map", "mAP")}
# published metric name -> results column
_PUBLISHED_METRIC = {"frame_auc": "micro_auc", "ap": "micro_ap", "mauc": "mauc", "map": "map"}
LABELS = {"kind": "Kind", "stage": "Stage", "method": "Method", "dataset": "Dataset", "setting": "Setting",
          "micro_auc": "µAUC", "macro_auc": "MAUC", "micro_ap": "µAP", "macro_ap": "MAP", "mauc": "mAUC",
          "map": "mAP", "sigma": "σ", "ap_definition": "AP def.", "gt_file": "GT file", "backbone": "Backbone",
          "real_weights": "Real weights", "source": "Source", "note": "Note"}


def _pick(d: Mapping, names: Iterable[str]) -> Any:
    for n in names:
        v = d.get(n)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _metric_files(reports: Path, exclude: Sequence[str]) -> list[tuple[str, Path]]:
    out = []
    for path in sorted(reports.glob("*/**/metrics.json")):
        stage = path.relative_to(reports).parts[0]
        parts = path.relative_to(reports).parts
        if stage not in exclude and not any(p.startswith(".") for p in parts) and "seeds" not in parts[1:-1]:
            out.append((stage, path))
    return out


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"metrics file is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise DataError(path, f"metrics file must hold a JSON object, found {type(data).__name__}")
    return data


def _spread(d: Mapping) -> dict | None:
    """``{metric: [std, n]}`` of a multi-seed result (``<key>_std`` and ``n_seeds`` > 1), else None."""
    n = d.get("n_seeds")
    if not isinstance(n, int) or n < 2:
        return None
    out = {}
    for k, names in _ALIASES.items():
        std = _pick(d, [f"{a}_std" for a in names])
        if std is not None and _pick(d, names) is not None:
            out[k] = [std, n]
    return out or None


def _pair_rows(data: dict, stage: str) -> list[dict]:
    """A transfer-style file (``"pairs": {"src->tgt": {variant: {metrics}}}``) as one row per pair × variant."""
    pairs = data.get("pairs")
    if not isinstance(pairs, dict):
        return []
    rows = []
    for pair, variants in pairs.items():
        if not isinstance(variants, dict):
            continue
        flat = all(not isinstance(v, dict) for v in variants.values())
        for variant, m in ({"": variants} if flat else variants).items():
            if isinstance(m, dict):
                name = f"{stage} ({variant})" if variant else stage
                rows.append({**m, "method": m.get("method", name), "dataset": m.get("dataset", pair.replace("->", "→"))})
    return rows


def measured_rows(reports: str | Path, exclude: Sequence[str] = ("report", "compare", "figures")) -> list[dict]:
    """One dict per result found under ``reports`` (missing keys become ``None``)."""
    reports = Path(reports)
    rows = []
    for stage, path in _metric_files(reports, exclude):
        data = _read_json(path)
        items = data.get("rows") if isinstance(data.get("rows"), list) else _pair_rows(data, stage) or [data]
        top_proto = data.get("protocol") if isinstance(data.get("protocol"), dict) else {}
        item_dir = path.parent.name if path.parent != reports / stage else None
        for d in items:
            if not isinstance(d, dict):
                raise DataError(path, "every entry of 'rows' must be a JSON object")
            proto = {**top_proto, **(d.get("protocol") if isinstance(d.get("protocol"), dict) else {})}
            rows.append({
                "kind": "measured", "stage": stage,
                "method": d.get("method", proto.get("method", stage)),
                "dataset": d.get("dataset", proto.get("dataset", item_dir)),
                "setting": d.get("setting", proto.get("setting")),
                **{k: _pick(d, names) for k, names in _ALIASES.items()},
                **{k: d.get(k, proto.get(k)) for k in PROTOCOL},
                "source": str(path.relative_to(reports)),
                "note": d.get("note", proto.get("note")),
                "spread": _spread(d),
            })
    return rows


def collect_metrics(reports: str | Path, exclude: tuple[str, ...] = ("report", "compare", "figures")) -> pd.DataFrame:
    """Read ``reports/<stage>/[<item>/]metrics.json`` files into one table (columns :data:`COLUMNS`).

    A metrics file may hold one result (flat keys plus ``protocol``) or several under
    ``"rows": [...]``. Protocol columns come from ``protocol``. Unreadable files raise
    :class:`DataError` naming the file; missing keys become empty cells.
    """
    return pd.DataFrame(measured_rows(reports, exclude), columns=COLUMNS)


def load_published(path: str | Path | None = None) -> pd.DataFrame:
    """The quoted figures as a long table: benchmark, dataset, method, setting, metric, value
    (single figure or ``None`` for a range), low, high (percent), source, note."""
    path = Path(path) if path else PUBLISHED
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(path, f"cannot read the published figures ({exc})") from exc
    rows = []
    for i, r in enumerate(data.get("rows", [])):
        missing = {"benchmark", "method", "setting", "metric", "value", "source"} - set(r)
        if missing:
            raise DataError(path, f"row {i} ({r.get('method')}) lacks {sorted(missing)}")
        v = r["value"]
        low, high = (float(v[0]), float(v[1])) if isinstance(v, list) else (float(v), float(v))
        rows.append({**r, "value": None if isinstance(v, list) else float(v), "low": low, "high": high,
                     "note": r.get("note") or ""})
    return pd.DataFrame(rows)


def quoted_rows(published: pd.DataFrame, datasets: Iterable[str] | None = None) -> list[dict]:
    """Published figures reshaped as result rows (kind ``"quoted"``, percent), one per
    benchmark × method × setting. ``datasets`` keeps only those registry names."""
    pub = published[published["metric"].isin(_PUBLISHED_METRIC)]
    if datasets is not None:  # a measured row without a dataset must not match unregistered benchmarks
        pub = pub[pub["dataset"].isin([d for d in datasets if isinstance(d, str) and d])]
    rows = []
    for (bench, method, setting), g in pub.groupby(["benchmark", "method", "setting"], sort=False):
        row = {"kind": "quoted", "stage": None, "method": method, "dataset": g["dataset"].iloc[0] or bench,
               "setting": setting, **{k: None for k in METRICS}, **{k: None for k in PROTOCOL},
               "source": ", ".join(f"[{s}]" for s in dict.fromkeys(g["source"])), "note": None, "ranges": None}
        notes = [f"benchmark: {bench}"]
        for _, r in g.iterrows():
            col = _PUBLISHED_METRIC[r["metric"]]
            if r["value"] is not None and not (isinstance(r["value"], float) and math.isnan(r["value"])):
                row[col] = r["value"]
            else:
                notes.append(f"{LABELS[col]} range {r['low']:g}–{r['high']:g}")
                row["ranges"] = {**(row["ranges"] or {}), col: f"{r['low']:g}–{r['high']:g}"}
            if r["note"]:
                notes.append(str(r["note"]))
        row["note"] = "; ".join(dict.fromkeys(notes))
        rows.append(row)
    return rows


def results_table(reports: str | Path, published: str | Path | pd.DataFrame | None = None,
                  quoted: str = "matching") -> pd.DataFrame:
    """Measured rows (metrics in percent) followed by quoted reference rows.

    ``quoted``: ``"matching"`` (published rows of the datasets that were measured), ``"all"`` or
    ``"none"``. Columns :data:`RESULT_COLUMNS`; ``kind`` is ``"measured"`` or ``"quoted"``.
    """
    meas = measured_rows(reports)
    for r in meas:
        for k in METRICS:
            if r[k] is not None:
                r[k] = 100.0 * r[k]
        if r.get("spread"):
            r["spread"] = {k: [100.0 * std, n] for k, (std, n) in r["spread"].items()}
    rows = list(meas)
    if quoted != "none":
        pub = published if isinstance(published, pd.DataFrame) else load_published(published)
        keep = None if quoted == "all" else {r["dataset"] for r in meas}
        rows += quoted_rows(pub, keep)
    df = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for k in METRICS:
        df[k] = pd.to_numeric(df[k], errors="coerce")
    return df


def results_matrix(df: pd.DataFrame, metric: str = "micro_auc") -> pd.DataFrame:
    """Methods × datasets matrix of one metric; quoted methods are suffixed `` (quoted)``."""
    d = df.dropna(subset=[metric]).copy()
    d["method"] = [m if k == "measured" else f"{m} (quoted)" for m, k in zip(d["method"], d["kind"])]
    d["_order"] = (d["kind"] != "measured").astype(int)
    order = d.sort_values("_order", kind="stable")["method"].drop_duplicates()
    return d.pivot_table(index="method", columns="dataset", values=metric, aggfunc="first").reindex(order)


def _fmt(v: Any, floatfmt: str) -> str:
    """One cell as text: ``--`` when missing, ``floatfmt`` for floats (``g`` for the rest)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "--"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "NO (random)"
    if isinstance(v, float):
        return format(v, floatfmt)
    return str(v)


def spread_cell(mean: Any, spread: Any, col: str, floatfmt: str) -> str | None:
    """``"81.20 ± 1.30 (3)"`` when ``spread`` (a row's ``{metric: [std, n]}``) has ``col``, else None."""
    if not isinstance(spread, dict) or col not in spread or _fmt(mean, floatfmt) == "--":
        return None
    std, n = spread[col]
    return f"{format(float(mean), floatfmt)} ± {format(float(std), floatfmt)} ({int(n)})"


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4f", index: bool = False) -> str:
    """Markdown table (needs ``tabulate``); missing values print as ``--``; quoted rows keep their ``kind``."""
    d = df.astype(object).where(df.notna(), None)
    return d.to_markdown(index=index, floatfmt=floatfmt, missingval="--")


_TEX_ESC = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
            "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}",
            "σ": r"$\sigma$", "µ": r"$\mu$", "–": "--", "→": r"$\to$", "≈": r"$\approx$", "†": r"$^\dagger$",
            "×": r"$\times$", "§": r"\S{}", "—": "---", "·": r"$\cdot$", "±": r"$\pm$"}


def latex_escape(text: str) -> str:
    """Escape LaTeX specials (and map σ, µ, –, → to math) so the text compiles in pdflatex."""
    return "".join(_TEX_ESC.get(c, c) for c in str(text))


def to_latex(df: pd.DataFrame, caption: str = "", label: str = "tab:results",
             columns: Sequence[str] | None = None, floatfmt: str = ".2f", fit: bool = True) -> str:
    """A ``booktabs`` LaTeX table (needs ``\\usepackage{booktabs}``; with ``fit`` also ``graphicx``,
    whose ``\\resizebox`` scales a wide table down to the text width).

    With a ``kind`` column, measured rows come first and quoted rows follow under their own
    ``\\midrule`` heading, each quoted method marked with a dagger and explained in the caption.
    Missing values print as ``--``. The result pastes into a document unchanged.
    """
    cols = [c for c in (columns or df.columns) if c in df.columns and c not in ("kind", "ranges", "spread")]
    has_kind = "kind" in df.columns
    align = "".join("r" if pd.api.types.is_numeric_dtype(df[c]) and df[c].dtype != bool else "l" for c in cols)
    head = " & ".join(latex_escape(LABELS.get(c, c)) for c in cols) + r" \\"
    lines = [r"% needs \usepackage{booktabs}" + (r" and \usepackage{graphicx}" if fit else ""),
             r"\begin{table}[tbp]", r"\centering", r"\small"]
    if fit:
        lines.append(r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule", head, r"\midrule"]

    def body(d: pd.DataFrame, mark: bool) -> list[str]:
        out = []
        for _, r in d.iterrows():
            cells = []
            ranges = r.get("ranges") if isinstance(r.get("ranges"), dict) else {}
            for c in cols:
                spread = spread_cell(r[c], r.get("spread"), c, floatfmt)
                if spread is not None:          # mean ± std (n seeds)
                    s = latex_escape(spread)
                elif c in ranges and _fmt(r[c], "g") == "--":
                    s = latex_escape(ranges[c])
                else:
                    s = latex_escape(_fmt(r[c], floatfmt if c in METRICS or c not in PROTOCOL else "g"))
                if mark and c == "method":
                    s += r"$^\dagger$"
                cells.append(s)
            out.append(" & ".join(cells) + r" \\")
        return out

    if has_kind:
        meas, quot = df[df["kind"] == "measured"], df[df["kind"] != "measured"]
        lines += body(meas, False)
        if len(quot):
            if len(meas):
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{{len(cols)}}}{{l}}{{\emph{{Quoted from published work (not measured here)}}}} \\")
            lines += body(quot, True)
    else:
        lines += body(df, False)
    cap = latex_escape(caption)
    if has_kind and (df["kind"] != "measured").any():
        cap += (r" Figures in \%. $^\dagger$Quoted from the cited source (source tags: [repo] official "
                r"repository, [page] project page, [sec] secondary compilation, [notes] research notes, "
                r"[unverified] not checked); protocols (GT file, split, micro/macro AUC, features) may differ.")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if fit:
        lines[-1] += "}"
    if cap.strip():
        lines.append(rf"\caption{{{cap.strip()}}}")
    lines += [rf"\label{{{label}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def display_table(df: pd.DataFrame, floatfmt: str = ".2f") -> pd.DataFrame:
    """``df`` for reading (Markdown/HTML): quoted rows' ``kind`` spelled ``quoted [tag]``, published
    ranges written into their metric cells, multi-seed cells as ``mean ± std (n)`` (``floatfmt``),
    random-weight rows flagged, ``ranges`` and ``spread`` dropped."""
    d = df.copy()
    if "spread" in d:
        for i, sp in d["spread"].items():
            for c in (sp if isinstance(sp, dict) else ()):
                text = spread_cell(d.at[i, c], sp, c, floatfmt) if c in d else None
                if text is not None:
                    if d[c].dtype != object:   # the column turns text: its single values keep floatfmt
                        d[c] = [v if _fmt(v, floatfmt) == "--" else format(float(v), floatfmt) for v in d[c]]
                        d[c] = d[c].astype(object).where(df[c].notna(), None)
                    d.at[i, c] = text
        d = d.drop(columns="spread")
    if "ranges" in d:
        for c in METRICS:
            if c in d:
                d[c] = d[c].astype(object)
        for i, rg in d["ranges"].items():
            for c, text in (rg.items() if isinstance(rg, dict) else ()):
                if c in d and pd.isna(d.at[i, c]):
                    d.at[i, c] = text
        d = d.drop(columns="ranges")
    if "kind" in d:
        d["kind"] = [k if k == "measured" else f"quoted {s}" for k, s in zip(d["kind"], d["source"])]
    if "real_weights" in d:
        d["real_weights"] = [("yes" if v else "NO (random)") if isinstance(v, (bool, np.bool_)) else v for v in d["real_weights"]]
    return d
