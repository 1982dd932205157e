"""The report stage's thesis figures, made from whatever the ``reports/`` folder holds.

Each ``*_figures`` function looks for its inputs, writes PDF + PNG with :mod:`vadlib.report.style`
under stable names in ``out`` and returns ``(paths, skipped)``: the PNGs written and, for what
could not be made, one sentence saying why. :func:`make_figures` runs them all; a failure of one
is reported, never fatal.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from vadlib.report import style

Made = tuple[list[Path], list[str]]


def _slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(s)).strip("_") or "x"


def _metrics_near(path: Path) -> dict:
    m = path.parent / "metrics.json"
    try:
        return json.loads(m.read_text()) if m.exists() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _stage_item(reports: Path, path: Path) -> tuple[str, str | None]:
    parts = path.relative_to(reports).parts
    return parts[0], (parts[1] if len(parts) > 2 else None)


def roc_figures(reports: Path, out: Path, **_: Any) -> Made:
    """One ROC/PR overlay per dataset from every ``reports/<stage>/<item>/roc.csv`` (+ ``pr.csv``)."""
    groups: dict[str, dict[str, tuple]] = {}
    real: dict[str, bool] = {}
    for roc in sorted(reports.glob("*/**/roc.csv")):
        stage, item = _stage_item(reports, roc)
        if stage in ("report", "compare"):
            continue
        proto = _metrics_near(roc).get("protocol") or {}
        dataset = proto.get("dataset") or item or stage
        label = proto.get("method") or stage
        pr = roc.with_name("pr.csv")
        groups.setdefault(dataset, {})[label] = (pd.read_csv(roc), pd.read_csv(pr) if pr.exists() else None)
        real[dataset] = real.get(dataset, True) and proto.get("real_weights", True) is not False
    if not groups:
        return [], ["ROC/PR overlays: no reports/<stage>/<item>/roc.csv found"]
    paths = []
    for ds, curves in groups.items():
        prs = {k: v[1] for k, v in curves.items() if v[1] is not None}
        fig = style.roc_pr_overlay({k: v[0] for k, v in curves.items()}, prs or None,
                                   width="double" if prs else "single",
                                   title=ds, real_weights=real[ds])
        paths.append(style.save(fig, f"roc_pr_{_slug(ds)}", out)[-1])
    return paths, []


def timeline_figures(reports: Path, out: Path, datasets: Mapping[str, Mapping] | None = None,
                     videos_per_item: int = 1, thumbnails: int = 3, **_: Any) -> Made:
    """Score timeline of the test video with the highest peak score per ``predictions.npz``, GT shaded,
    thumbnails of its highest-scoring frames (frames read from the dataset in ``datasets``)."""
    from vadlib.data import get_dataset
    from vadlib.results import Predictions

    preds = [p for p in sorted(reports.glob("*/*/predictions.npz")) if _stage_item(reports, p)[0] not in ("report",)]
    if not preds:
        return [], ["score timelines: no reports/<stage>/<item>/predictions.npz found"]
    paths, skipped = [], []
    for p in preds:
        stage, item = _stage_item(reports, p)
        if not datasets or item not in datasets:
            skipped.append(f"timeline {stage}/{item}: dataset '{item}' not in params 'datasets'")
            continue
        try:
            ds = get_dataset(item, **datasets[item])
            pr = Predictions.load(p)
            real = (pr.meta or {}).get("real_weights", True) is not False
            test = {v.name: v for v in ds.videos("test")}
            names = sorted((v for v in pr.scores() if v in test), key=lambda v: -float(np.max(pr[v].scores)))
            for v in names[:videos_per_item]:
                s = np.asarray(pr[v].scores, float)
                idx = style.top_frames(s, thumbnails)
                try:
                    frames = test[v].open().get(idx)
                except Exception as exc:  # frames missing: timeline without thumbnails
                    frames, idx = None, None
                    skipped.append(f"thumbnails {stage}/{item}/{v}: frames not readable ({exc})")
                fig = style.score_timeline(s, test[v].frame_labels, frames, idx, title=f"{stage} — {item} — {v}",
                                           real_weights=real)
                paths.append(style.save(fig, f"timeline_{_slug(stage)}_{_slug(item)}_{_slug(v)}", out)[-1])
        except Exception as exc:
            skipped.append(f"timeline {stage}/{item}: {type(exc).__name__}: {exc}")
    return paths, skipped


def _matrix_from_csv(path: Path, metric: str | None = None) -> pd.DataFrame:
    """Source × target matrix (percent) of ``metric`` (default ``micro_auc``) of a ``transfer_matrix.csv``."""
    df = pd.read_csv(path)
    if {"source", "target"} <= set(df.columns):
        metric = metric or ("micro_auc" if "micro_auc" in df.columns else df.select_dtypes("number").columns[0])
        if "variant" in df.columns:
            df = df[df["variant"] == ("full" if (df["variant"] == "full").any() else df["variant"].iloc[0])]
        if "score" in df.columns:
            score = (_metrics_near(path).get("protocol") or {}).get("score")
            df = df[df["score"] == (score if score in set(df["score"]) else df["score"].iloc[0])]
        m = df.pivot_table(index="source", columns="target", values=metric, aggfunc="first")
        return m * 100 if metric.endswith("_std") or m.max().max() <= 1.0 else m
    return pd.read_csv(path, index_col=0)


def transfer_figures(reports: Path, out: Path, **_: Any) -> Made:
    """Source × target heatmap from every ``transfer_matrix.csv`` (long table or matrix); a table of means
    over seeds (``micro_auc_std`` column) gives cells ``mean ± std``. Per-seed tables (``seeds/``) are skipped."""
    found = sorted(f for f in reports.glob("*/**/transfer_matrix.csv") if "seeds" not in f.relative_to(reports).parts)
    if not found:
        return [], ["transfer heatmap: no reports/<stage>/transfer_matrix.csv found"]
    paths = []
    for f in found:
        m = _matrix_from_csv(f)
        sd = _matrix_from_csv(f, "micro_auc_std") if "micro_auc_std" in pd.read_csv(f, nrows=0).columns else None
        real = (_metrics_near(f).get("protocol") or {}).get("real_weights", True) is not False
        name = "transfer_matrix" if len(found) == 1 else f"transfer_matrix_{_slug(f.parent.relative_to(reports))}"
        paths.append(style.save(style.transfer_heatmap(m, real_weights=real, spread=sd), name, out)[-1])
    return paths, []


def _per_class_from_metrics(reports: Path) -> dict[str, tuple[pd.DataFrame, bool]]:
    """``per_class_auc`` dicts found in metrics.json files (flat or under ``rows``), by dataset."""
    by_ds: dict[str, list[dict]] = {}
    real: dict[str, bool] = {}
    for m in sorted(reports.glob("*/**/metrics.json")):
        stage, item = _stage_item(reports, m)
        if stage in ("report", "compare"):
            continue
        try:
            data = json.loads(m.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        top = data.get("protocol") if isinstance(data.get("protocol"), dict) else {}
        for d in data.get("rows") if isinstance(data.get("rows"), list) else [data]:
            pc = d.get("per_class_auc") if isinstance(d, dict) else None
            if not isinstance(pc, dict):
                continue
            proto = {**top, **(d.get("protocol") or {})}
            ds = d.get("dataset") or proto.get("dataset") or item or stage
            method = d.get("method") or proto.get("method") or stage
            by_ds.setdefault(ds, []).extend({"class": c, "auc": 100 * float(v), "method": method}
                                            for c, v in pc.items() if isinstance(v, (int, float)))
            real[ds] = real.get(ds, True) and proto.get("real_weights", True) is not False
    return {ds: (pd.DataFrame(rows), real[ds]) for ds, rows in by_ds.items() if rows}


def class_bar_figures(reports: Path, out: Path, **_: Any) -> Made:
    """Per-class bars from ``per_class_auc`` in metrics.json files (one figure per dataset, a bar group
    per method) and from every ``per_class.csv`` (columns ``class``, a metric, optional ``method``)."""
    found = sorted(reports.glob("*/**/per_class.csv"))
    from_metrics = _per_class_from_metrics(reports)
    if not found and not from_metrics:
        return [], ["per-class bars: no 'per_class_auc' in any metrics.json and no per_class.csv found"]
    paths = []
    for ds, (df, real) in from_metrics.items():
        fig = style.class_bars(df, value="auc", hue="method", ylabel="one-vs-rest AUC (%)", real_weights=real)
        paths.append(style.save(fig, f"per_class_auc_{_slug(ds)}", out)[-1])
    for f in found:
        df = pd.read_csv(f)
        value = next((c for c in ("auc", "AUC", "ap", "AP") if c in df.columns), df.select_dtypes("number").columns[0])
        real = (_metrics_near(f).get("protocol") or {}).get("real_weights", True) is not False
        fig = style.class_bars(df, value=value, hue="method" if "method" in df.columns else None, real_weights=real)
        paths.append(style.save(fig, f"per_class_{_slug(f.parent.relative_to(reports))}", out)[-1])
    return paths, []


def feature_space_figures(reports: Path, out: Path, datasets: Mapping[str, Mapping] | None = None,
                          max_points: int = 2000, method: str = "pca", seed: int = 0, **_: Any) -> Made:
    """PCA of test features (normal vs each anomaly class) per feature store in
    ``reports/extract/<item>/store.json``; the normality prototype is the mean TRAINING feature; class
    directions are (test class mean − prototype), drawn for illustration only."""
    from vadlib.data import get_dataset
    from vadlib.features.store import FeatureStore

    found = sorted(reports.glob("extract/*/store.json"))
    if not found:
        return [], ["feature-space views: no reports/extract/<item>/store.json found"]
    paths, skipped = [], []
    rng = np.random.default_rng(seed)
    for f in found:
        item = f.parent.name
        try:
            store = FeatureStore.open(json.loads(f.read_text())["store"])
            if not datasets or item not in datasets:
                raise KeyError(f"dataset '{item}' not in params 'datasets'")
            ds = get_dataset(item, **datasets[item])

            def rows(video) -> np.ndarray:
                from vadlib.features.store import average_crops

                return average_crops(store.load(video.name))

            train = [v for v in ds.videos("train") if store.has(v.name)]
            test = [v for v in ds.videos("test") if store.has(v.name)]
            if not train or not test:
                raise ValueError("the store lacks train or test videos")
            proto = np.concatenate([rows(v) for v in train]).mean(0)
            X, y = [], []
            for v in test:
                fi = store.frame_index(v.name)
                cls = v.frame_classes if v.frame_classes is not None else v.frame_labels
                if cls is None:
                    continue
                X.append(rows(v))
                y.append(np.asarray(cls)[np.clip(fi, 0, len(cls) - 1)])
            X, y = np.concatenate(X), np.concatenate(y).astype(int)
            if len(X) > max_points:
                keep = np.sort(rng.choice(len(X), max_points, replace=False))
                X, y = X[keep], y[keep]
            names = list(ds.class_names) if max(y) < len(ds.class_names) else None
            dirs = {(names[c] if names else f"class {c}"): X[y == c].mean(0) - proto for c in np.unique(y) if c > 0}
            fig = style.feature_space(X, y, prototype=proto, directions=dirs, method=method, class_names=names,
                                      real_weights=bool(store.info.get("real_weights", True)), seed=seed)
            paths.append(style.save(fig, f"feature_space_{_slug(item)}", out)[-1])
        except Exception as exc:
            skipped.append(f"feature space {item}: {type(exc).__name__}: {exc}")
    return paths, skipped


def loglik_figures(reports: Path, out: Path, **_: Any) -> Made:
    """NF log-likelihood histograms from every ``loglik*.npz`` (one array per group, e.g. ``normal``,
    ``anomalous``)."""
    found = sorted(reports.glob("*/**/loglik*.npz"))
    if not found:
        drawn = [p for p in sorted(reports.glob("*/**/loglik*.png")) if _stage_item(reports, p)[0] not in ("report", "figures")]
        if drawn:   # the stage drew its own histograms (shown with its figures): nothing is missing
            return [], []
        return [], ["NF log-likelihood histograms: no reports/<stage>/<item>/loglik*.npz (arrays per group) "
                    "and no stage histogram figure (loglik*.png) found"]
    paths = []
    for f in found:
        with np.load(f, allow_pickle=False) as z:
            groups = {k: z[k] for k in z.files if not k.startswith("__")}
        real = (_metrics_near(f).get("protocol") or {}).get("real_weights", True) is not False
        name = f"nf_loglik_{_slug(f.parent.relative_to(reports))}_{_slug(f.stem)}"
        paths.append(style.save(style.loglik_histograms(groups, real_weights=real), name, out)[-1])
    return paths, []


MAKERS: dict[str, Callable[..., Made]] = {
    "ROC / PR overlays": roc_figures,
    "Score timelines": timeline_figures,
    "Per-class results": class_bar_figures,
    "Transfer matrix": transfer_figures,
    "Feature space": feature_space_figures,
    "NF log-likelihoods": loglik_figures,
}


def make_figures(reports: str | Path, out: str | Path, datasets: Mapping[str, Mapping] | None = None,
                 only: list[str] | None = None, **options: Any) -> tuple[dict[str, list[Path]], list[str]]:
    """Run every figure maker (or the sections in ``only``); returns ``({section: [png paths]}, skipped)``."""
    reports, out = Path(reports), Path(out)
    made, skipped = {}, []
    for section, fn in MAKERS.items():
        if only and section not in only:
            continue
        try:
            paths, skip = fn(reports, out, datasets=datasets, **options)
        except Exception as exc:
            paths, skip = [], [f"{section}: failed — {type(exc).__name__}: {exc}"]
            traceback.print_exc()
        made[section] = paths
        skipped += skip
    return made, skipped
