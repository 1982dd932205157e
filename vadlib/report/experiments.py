"""All DVC experiments as one pandas table, metric-vs-parameter plots and ROC overlays of runs.

Reads ``dvc exp show --json`` (run as ``python -m dvc`` of this interpreter). One row per
workspace / baseline commit / experiment; parameter columns are the dotted ``params.yaml`` keys
(``zeroshot.sigma``), metric columns ``<metrics file>:<dotted key>``
(``reports/zeroshot/demo_a/metrics.json:micro_auc``). Files committed in an experiment (a
``roc.csv``) are read with ``git show <rev>:<path>``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from vadlib.errors import DataError, VadlibError

META = ["name", "rev", "kind", "baseline", "timestamp", "state", "error"]


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, Mapping):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(d, list):
        out[prefix] = json.dumps(d)          # lists (prompt sets, run_on) kept as one comparable string
    else:
        out[prefix] = d
    return out


def exp_show_json(repo: str | Path = ".", all_commits: bool = False, num: int = 1, timeout: float = 600) -> list:
    """The parsed output of ``dvc exp show --json`` in ``repo``."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json", "-n", str(num)]
    if all_commits:
        cmd.append("-A")
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise VadlibError(f"{Path(repo).resolve()}: `dvc exp show --json` failed: {r.stderr.strip()[-1500:]}")
    text = r.stdout[r.stdout.find("[") :] if "[" in r.stdout else r.stdout
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VadlibError(f"{Path(repo).resolve()}: `dvc exp show --json` printed no JSON ({exc})") from exc


def _row(rec: Mapping, kind: str, baseline: str | None) -> dict[str, Any]:
    data = rec.get("data") or {}
    row: dict[str, Any] = {"name": rec.get("name") or (rec.get("rev") if kind != "workspace" else "workspace"),
                           "rev": rec.get("rev"), "kind": kind, "baseline": baseline,
                           "timestamp": data.get("timestamp"), "state": None,
                           "error": (rec.get("error") or {}).get("msg") if isinstance(rec.get("error"), Mapping)
                           else rec.get("error")}
    for pfile, p in (data.get("params") or {}).items():
        for k, v in _flatten((p or {}).get("data") or {}).items():
            key = k if pfile == "params.yaml" else f"{pfile}:{k}"
            row[key] = v
    for mfile, m in (data.get("metrics") or {}).items():
        for k, v in _flatten((m or {}).get("data") or {}).items():
            row[f"{mfile}:{k}"] = v
    return row


def experiments_frame(records: Sequence[Mapping]) -> pd.DataFrame:
    """Flatten ``dvc exp show --json`` records into one row per workspace / baseline / experiment.

    ``kind``: ``workspace``, ``baseline`` or ``experiment`` (``state`` holds the executor of a
    queued or running one); ``baseline`` is the commit an experiment branched from.
    """
    rows = []
    for rec in records:
        is_ws = rec.get("rev") == "workspace"
        rows.append(_row(rec, "workspace" if is_ws else "baseline", None))
        for group in rec.get("experiments") or []:
            for rev in group.get("revs") or []:
                row = _row(rev, "experiment", None if is_ws else rec.get("rev"))
                row["name"] = rev.get("name") or group.get("name") or row["name"]
                row["state"] = group.get("executor")
                rows.append(row)
    df = pd.DataFrame(rows)
    front = [c for c in META if c in df.columns]
    return df[front + [c for c in df.columns if c not in front]]


def experiments_table(repo: str | Path = ".", all_commits: bool = False, num: int = 1) -> pd.DataFrame:
    """All DVC experiments of ``repo`` (see :func:`experiments_frame`)."""
    return experiments_frame(exp_show_json(repo, all_commits=all_commits, num=num))


def metric_columns(df: pd.DataFrame, key: str = "micro_auc") -> list[str]:
    """Metric columns ending in ``:<key>`` (one per metrics file)."""
    return [c for c in df.columns if ":" in c and c.rsplit(":", 1)[1] == key]


def spread_columns(df: pd.DataFrame, key: str = "micro_auc") -> list[str]:
    """The spread over seeds beside each metric column of ``key`` (:mod:`vadlib.seeds`): the columns
    ``<file>:<key>_std``, ``_min``, ``_max`` and ``<file>:n_seeds`` that exist, in that order per file."""
    out = []
    for c in metric_columns(df, key):
        f = c.rsplit(":", 1)[0]
        out += [x for x in (f"{c}_std", f"{c}_min", f"{c}_max", f"{f}:n_seeds") if x in df.columns]
    return out


def param_columns(df: pd.DataFrame) -> list[str]:
    """Parameter columns whose value differs between rows (what an experiment changed)."""
    cols = [c for c in df.columns if c not in META and ":" not in c]
    return [c for c in cols if df[c].astype(str).nunique(dropna=False) > 1]


def read_at_rev(repo: str | Path, rev: str, path: str) -> str:
    """Text of ``path`` as committed in ``rev`` (``"workspace"`` = the file on disk).

    Uses ``git show``; falls back to ``dvc.api.read`` for DVC-cached files.
    """
    repo = Path(repo)
    if rev in (None, "workspace"):
        p = repo / path
        if not p.exists():
            raise DataError(p, "not found in the workspace")
        return p.read_text()
    r = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=repo, capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout
    try:
        import dvc.api

        return dvc.api.read(path, repo=str(repo), rev=rev)
    except Exception as exc:  # noqa: BLE001 - report both failures
        raise DataError(repo / path, f"not readable at revision {rev[:12]} (git: {r.stderr.strip()}; dvc: {exc})") from exc


def read_csv_at_rev(repo: str | Path, rev: str, path: str) -> pd.DataFrame:
    """``read_at_rev`` parsed as CSV (e.g. a ``roc.csv`` with ``fpr, tpr``)."""
    return pd.read_csv(io.StringIO(read_at_rev(repo, rev, path)))


def select_runs(df: pd.DataFrame, names: Iterable[str] | None = None, limit: int = 6) -> pd.DataFrame:
    """Rows for ``names`` (experiment names or revision prefixes); default: the baseline and the
    newest experiments, at most ``limit`` rows. Unknown names raise, listing the known ones."""
    if names:
        out = []
        for n in names:
            hit = df[(df["name"] == n) | df["rev"].astype(str).str.startswith(str(n))]
            if hit.empty:
                raise VadlibError(f"no experiment named {n!r}; known: {', '.join(map(str, df['name']))}")
            out.append(hit.iloc[0])
        return pd.DataFrame(out)
    base = df[df["kind"] == "baseline"].head(1)
    exps = df[df["kind"] == "experiment"].sort_values("timestamp", ascending=False, na_position="last")
    return pd.concat([base, exps]).head(limit)


def plot_metric_vs_param(df: pd.DataFrame, param: str, metric: str, hue: str | None = None,
                         width: str | float = "single", real_weights: bool = True):
    """Metric against a parameter over experiments: points (one per run) and the mean per value; a
    run's spread over seeds (the ``<metric>_std`` column, when present) as an error bar."""
    from vadlib.report import style

    for c in (param, metric) + ((hue,) if hue else ()):
        if c not in df.columns:
            raise VadlibError(f"column {c!r} not in the experiments table; columns: {', '.join(map(str, df.columns))}")
    std = f"{metric}_std" if f"{metric}_std" in df.columns else None
    d = df[[param, metric] + ([hue] if hue else []) + ([std] if std else [])].dropna(subset=[metric])
    d = d.assign(**{metric: pd.to_numeric(d[metric], errors="coerce")}).dropna(subset=[metric])
    x = pd.to_numeric(d[param], errors="coerce")
    numeric = x.notna().all() and len(x)
    fig, ax = style.figure(width, aspect=0.75)
    with style.thesis_style():
        groups = d.groupby(hue) if hue else [(None, d)]
        for j, (h, g) in enumerate(groups):
            gx = pd.to_numeric(g[param], errors="coerce") if numeric else g[param].astype(str)
            ax.scatter(gx, g[metric], s=12, color=style.PALETTE[j % len(style.PALETTE)], label=h, zorder=3)
            if std:                   # ± std over seeds of each run
                ax.errorbar(gx, g[metric], yerr=pd.to_numeric(g[std], errors="coerce").fillna(0).values, fmt="none",
                            ecolor=style.PALETTE[j % len(style.PALETTE)], elinewidth=0.7, capsize=2, zorder=2)
            if numeric:
                mean = g.assign(_x=gx).groupby("_x")[metric].mean().sort_index()
                ax.plot(mean.index, mean.values, color=style.PALETTE[j % len(style.PALETTE)], lw=0.9)
        ax.set(xlabel=param, ylabel=metric.rsplit(":", 1)[-1])
        if hue:
            ax.legend(title=hue)
    from vadlib.report.plots import mark_random

    mark_random(fig, real_weights)
    return fig


def roc_overlay_runs(repo: str | Path, runs: pd.DataFrame, roc_path: str, pr_path: str | None = None,
                     width: str | float | None = None, title: str = "", real_weights: bool = True):
    """ROC (and PR) overlay of the chosen runs, each curve read from its own revision.

    Returns ``(fig, missing)``: ``missing`` lists ``"<run>: <reason>"`` for runs without the file.
    """
    from vadlib.report import style

    rocs, prs, missing = {}, {}, []
    for _, r in runs.iterrows():
        label = str(r["name"]) if r["kind"] != "baseline" else f"{str(r['name'])[:12]} (baseline)"
        try:
            rocs[label] = read_csv_at_rev(repo, r["rev"], roc_path)
            if pr_path:
                prs[label] = read_csv_at_rev(repo, r["rev"], pr_path)
        except DataError as exc:
            missing.append(f"{label}: {exc}")
    if not rocs:
        raise DataError(Path(repo) / roc_path, "absent in every chosen run: " + "; ".join(missing))
    width = width or ("double" if prs else "single")
    return style.roc_pr_overlay(rocs, prs or None, width=width, title=title, real_weights=real_weights), missing
