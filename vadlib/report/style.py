"""Thesis figures: one style, two widths, vector PDF + PNG under stable names.

Every function takes plain arrays / DataFrames and returns a matplotlib ``Figure``; :func:`save`
writes ``<out_dir>/<name>.pdf`` and ``.png`` atomically. Widths follow a two-column paper:
:data:`SINGLE` (3.3 in) and :data:`DOUBLE` (7.0 in). Fonts are 8 pt (labels) / 7 pt (ticks,
legends) so a figure included at its natural width matches the body text of a 10 pt document.
Random-weight results pass ``real_weights=False`` and carry the RANDOM WEIGHTS banner.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vadlib.report.plots import mark_random, savefig_metadata  # noqa: E402

SINGLE = 3.3   # inches, one column
DOUBLE = 7.0   # inches, full text width
WIDTHS = {"single": SINGLE, "double": DOUBLE}
DPI = 300
FIGURES = Path("reports/figures")
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]  # Okabe-Ito
RC: dict[str, Any] = {
    "font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.frameon": False, "figure.titlesize": 9,
    "axes.linewidth": 0.6, "lines.linewidth": 1.1, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": False,
    "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
    "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",    # editable text in PDFs
    "savefig.dpi": DPI, "figure.dpi": 100, "image.cmap": "viridis",
    "svg.hashsalt": "vadlib",                                         # stable SVG ids (byte-identical files)
}


@contextlib.contextmanager
def thesis_style() -> Iterator[None]:
    """Context in which figures use the thesis rcParams."""
    with plt.rc_context(RC):
        yield


def figure(width: str | float = "single", aspect: float = 0.75, nrows: int = 1, ncols: int = 1, **kw):
    """``(fig, axes)`` of the given width (``"single"``, ``"double"`` or inches); height = width × aspect.

    ``constrained_layout`` keeps labels inside so the saved size is exactly the configured size.
    """
    w = WIDTHS.get(width, width) if isinstance(width, str) else float(width)
    with thesis_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(w, w * aspect), layout="constrained", **kw)
    return fig, axes


def save(fig, name: str, out_dir: str | Path = FIGURES, formats: Sequence[str] = ("pdf", "png"),
         dpi: int = DPI, close: bool = True) -> list[Path]:
    """Write ``<out_dir>/<name>.<fmt>`` for each format atomically; returns the paths.

    Files are saved at the figure's own size (no tight bbox), so a single-column figure is
    3.3 in wide in the PDF and ``3.3 × dpi`` pixels wide in the PNG.
    """
    from vadlib.io import atomic_path

    if "/" in name or name.startswith("."):
        raise ValueError(f"figure name {name!r}: use a plain stable name like 'roc_overlay_demo_a'")
    out_dir = Path(out_dir)
    paths = []
    with thesis_style():
        for fmt in formats:
            p = out_dir / f"{name}.{fmt}"
            with atomic_path(p) as tmp:
                fig.savefig(tmp, format=fmt, dpi=dpi, metadata=savefig_metadata(fmt))
            paths.append(p)
    if close:
        plt.close(fig)
    return paths


def _curve(obj, xcol: str, ycol: str) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(obj, pd.DataFrame):
        return obj[xcol].to_numpy(float), obj[ycol].to_numpy(float)
    x, y = obj
    return np.asarray(x, float), np.asarray(y, float)


def _area(x: np.ndarray, y: np.ndarray, step: bool = False) -> float:
    o = np.argsort(x, kind="stable")
    x, y = x[o], y[o]
    if step:
        return float(np.sum(np.diff(x) * y[1:]))
    return float(np.trapezoid(y, x)) if hasattr(np, "trapezoid") else float(np.trapz(y, x))


def roc_pr_overlay(rocs: Mapping[str, Any], prs: Mapping[str, Any] | None = None, width: str | float = "double",
                   title: str = "", real_weights: bool = True):
    """ROC (and PR) curves of several methods on shared axes.

    ``rocs``: name -> DataFrame with ``fpr, tpr`` (a ``roc.csv``) or ``(fpr, tpr)`` arrays;
    ``prs``: name -> DataFrame with ``recall, precision`` or ``(recall, precision)``. The legend
    shows the area under each curve as drawn.
    """
    n = 2 if prs else 1
    fig, axes = figure(width, aspect=0.42 if n == 2 else 0.9, ncols=n, squeeze=False)
    a1 = axes[0, 0]
    with thesis_style():
        for name, c in rocs.items():
            x, y = _curve(c, "fpr", "tpr")
            a1.plot(x, y, label=f"{name} ({_area(x, y):.3f})")
        a1.plot([0, 1], [0, 1], ls=":", color="0.6", lw=0.8)
        a1.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01), title="ROC")
        a1.legend(loc="lower right")
        if prs:
            a2 = axes[0, 1]
            for name, c in prs.items():
                x, y = _curve(c, "recall", "precision")
                a2.step(x, y, where="post", label=f"{name} ({_area(x, y, step=True):.3f})")
            a2.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01), title="precision–recall")
            a2.legend(loc="upper right")
        if title:
            fig.suptitle(title)
    mark_random(fig, real_weights)
    return fig


def shade_gt(ax, labels: np.ndarray, color: str = "#D55E00", alpha: float = 0.18) -> None:
    """Shade runs of ``labels > 0`` (``(T,)``) on a frame axis."""
    lab = np.asarray(labels) > 0
    if lab.any():
        edges = np.flatnonzero(np.diff(np.r_[0, lab.astype(int), 0]))
        for s, e in zip(edges[::2], edges[1::2]):
            ax.axvspan(s - 0.5, e - 0.5, color=color, alpha=alpha, lw=0)


def top_frames(scores: np.ndarray, k: int = 3, min_gap: int | None = None) -> list[int]:
    """Indices of the ``k`` highest scores of ``(T,)``, at least ``min_gap`` frames apart
    (default ``T // (2k)``), in frame order."""
    s = np.asarray(scores, float)
    gap = max(1, len(s) // (2 * k)) if min_gap is None else min_gap
    chosen: list[int] = []
    for i in np.argsort(-s, kind="stable"):
        if all(abs(int(i) - j) >= gap for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return sorted(chosen)


def load_frames(dataset, video: str, indices: Sequence[int]) -> np.ndarray:
    """``(k, H, W, 3)`` uint8 frames of ``video`` from a :class:`VideoDataset` (or its registry name is
    resolved by the caller with ``get_dataset``)."""
    return dataset.video(video).open().get(list(indices))


def score_timeline(scores: np.ndarray, labels: np.ndarray | None = None, frames: np.ndarray | None = None,
                   frame_indices: Sequence[int] | None = None, width: str | float = "double", title: str = "",
                   threshold: float | None = None, real_weights: bool = True):
    """Anomaly score over frames with GT anomalies shaded; thumbnails of chosen frames above.

    ``scores``: ``(T,)``; ``labels``: ``(T,)`` 0/1 (or class ids); ``frames``: ``(k, H, W, 3)``
    uint8 shown above the curve, ``frame_indices`` their positions (marked on the curve).
    """
    s = np.asarray(scores, float)
    k = 0 if frames is None else len(frames)
    if k and (frame_indices is None or len(frame_indices) != k):
        raise ValueError(f"{k} thumbnails need {k} frame_indices, got {frame_indices!r}")
    w = WIDTHS.get(width, width) if isinstance(width, str) else float(width)
    with thesis_style():
        fig = plt.figure(figsize=(w, w * (0.5 if k else 0.3)), layout="constrained")
        if k:
            gs = fig.add_gridspec(2, k, height_ratios=[1.0, 1.1])
            ax = fig.add_subplot(gs[1, :])
            for j, (img, fi) in enumerate(zip(frames, frame_indices)):
                t = fig.add_subplot(gs[0, j])
                t.imshow(img)
                t.set_axis_off()
                t.set_title(f"frame {fi} · {s[fi]:.2f}", fontsize=6)
        else:
            ax = fig.add_subplot(1, 1, 1)
        if labels is not None:
            shade_gt(ax, labels)
        ax.plot(np.arange(len(s)), s, color=PALETTE[0])
        if k:
            ax.plot(list(frame_indices), s[list(frame_indices)], "v", color=PALETTE[1], ms=4)
        if threshold is not None:
            ax.axhline(threshold, ls="--", lw=0.7, color="0.4")
        ax.set(xlabel="frame", ylabel="anomaly score", xlim=(0, max(1, len(s) - 1)))
        if title:
            fig.suptitle(title)
    mark_random(fig, real_weights)
    return fig


def class_bars(df: pd.DataFrame, value: str = "auc", cls: str = "class", hue: str | None = None,
               width: str | float = "single", ylabel: str | None = None, real_weights: bool = True):
    """Per-class bars: one bar per ``cls`` (grouped by ``hue``, e.g. method), height ``value``."""
    import seaborn as sns

    fig, ax = figure(width, aspect=0.7)
    with thesis_style():
        sns.barplot(data=df, x=cls, y=value, hue=hue, ax=ax, palette=PALETTE[: df[hue].nunique()] if hue else None,
                    color=None if hue else PALETTE[0])
        ax.set(xlabel="", ylabel=ylabel or value)
        ax.tick_params(axis="x", rotation=35)
        for t in ax.get_xticklabels():
            t.set_ha("right")
    mark_random(fig, real_weights)
    return fig


def transfer_heatmap(matrix: pd.DataFrame, width: str | float = "single", fmt: str = ".1f", label: str = "AUC (%)",
                     real_weights: bool = True, spread: pd.DataFrame | None = None):
    """Source (rows) × target (columns) heatmap, e.g. a ``transfer_matrix.csv`` read with ``index_col=0``.
    ``spread``: the std over seeds, same shape; cells then read ``mean ± std``."""
    import seaborn as sns

    m = matrix.apply(pd.to_numeric, errors="coerce")
    fig, ax = figure(width, aspect=0.85)
    with thesis_style():
        annot = True if spread is None else np.array(
            [[f"{a:{fmt}}\n± {b:{fmt}}" if np.isfinite(a) else "" for a, b in zip(ra, rb)]
             for ra, rb in zip(m.values.astype(float), spread.reindex_like(m).values.astype(float))], dtype=object)
        sns.heatmap(m, annot=annot, fmt=fmt if spread is None else "", cmap="viridis", ax=ax, cbar_kws={"label": label},
                    annot_kws={"fontsize": 6}, linewidths=0.4, linecolor="white")
        ax.set(xlabel=m.columns.name or "target", ylabel=m.index.name or "source")
        ax.tick_params(axis="x", rotation=30)
        ax.tick_params(axis="y", rotation=0)
    mark_random(fig, real_weights)
    return fig


def feature_space(features: np.ndarray, labels: np.ndarray, prototype: np.ndarray | None = None,
                  directions: Mapping[str, np.ndarray] | None = None, method: str = "pca",
                  class_names: Sequence[str] | None = None, width: str | float = "single", seed: int = 0,
                  max_points: int = 3000, real_weights: bool = True):
    """2-D view of ``features`` ``(N, D)`` coloured by ``labels`` ``(N,)`` (0 = normal, >0 anomaly class).

    ``prototype`` ``(D,)`` (the normality prototype) is drawn as a star; ``directions`` name ->
    ``(D,)`` (class directions, e.g. text embeddings minus the prototype) as arrows from it.
    ``method``: ``"pca"`` (linear: prototype and directions are projected exactly) or ``"tsne"``
    (prototype embedded with the points; directions are not drawn, they have no t-SNE image).
    """
    X = np.asarray(features, np.float64)
    y = np.asarray(labels).astype(int)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"features must be (N, D) with N = len(labels); got {X.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    if len(X) > max_points:
        keep = np.sort(rng.choice(len(X), max_points, replace=False))
        X, y = X[keep], y[keep]
    extra = [] if prototype is None else [np.asarray(prototype, np.float64)[None]]
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(2, random_state=seed).fit(X)
        Z = pca.transform(X)
        P = pca.transform(extra[0])[0] if extra else None
        axis = (f"PC1 ({pca.explained_variance_ratio_[0]:.0%})", f"PC2 ({pca.explained_variance_ratio_[1]:.0%})")
    elif method == "tsne":
        from sklearn.manifold import TSNE

        A = np.vstack([X, *extra])
        E = TSNE(2, random_state=seed, perplexity=min(30.0, max(2.0, (len(A) - 1) / 3)), init="pca").fit_transform(A)
        Z, P = E[: len(X)], (E[-1] if extra else None)
        axis, directions = ("t-SNE 1", "t-SNE 2"), None
    else:
        raise ValueError(f"method must be 'pca' or 'tsne', got {method!r}")
    fig, ax = figure(width, aspect=0.9)
    with thesis_style():
        colour = {}
        for c in np.unique(y):
            name = (class_names[c] if class_names is not None and c < len(class_names)
                    else ("normal" if c == 0 else f"anomaly {c}"))
            colour[name] = "0.6" if c == 0 else PALETTE[(c - 1) % len(PALETTE)]
            ax.scatter(Z[y == c, 0], Z[y == c, 1], s=3, alpha=0.35 if c == 0 else 0.7, lw=0,
                       color=colour[name], label=name)
        if P is not None:
            ax.scatter([P[0]], [P[1]], marker="*", s=90, color="black", label="normality prototype", zorder=5)
        if directions and P is not None and method == "pca":
            span = np.ptp(Z, axis=0).max() * 0.25
            for j, (name, d) in enumerate(directions.items()):
                v = pca.components_ @ np.asarray(d, np.float64)
                v = v / (np.linalg.norm(v) + 1e-12) * span
                ax.annotate("", xy=(P[0] + v[0], P[1] + v[1]), xytext=(P[0], P[1]),
                            arrowprops={"arrowstyle": "->", "lw": 0.9,
                                        "color": colour.get(name, PALETTE[j % len(PALETTE)])})
                ax.text(P[0] + v[0], P[1] + v[1], name, fontsize=6)
        ax.set(xlabel=axis[0], ylabel=axis[1])
        leg = ax.legend(loc="best")
        for h in getattr(leg, "legend_handles", getattr(leg, "legendHandles", [])):
            h.set_sizes([30 if h.get_label() == "normality prototype" else 12])
    mark_random(fig, real_weights)
    return fig


def loglik_histograms(groups: Mapping[str, np.ndarray], bins: int = 50, width: str | float = "single",
                      xlabel: str = "log-likelihood per dimension", density: bool = True, real_weights: bool = True):
    """Overlaid histograms of NF log-likelihoods, e.g. ``{"normal (test)": a, "anomalous (test)": b}``.

    Non-finite values are dropped and their count is written in the legend.
    """
    fig, ax = figure(width, aspect=0.7)
    finite = [np.asarray(v, float)[np.isfinite(np.asarray(v, float))] for v in groups.values()]
    lo = min((f.min() for f in finite if len(f)), default=0.0)
    hi = max((f.max() for f in finite if len(f)), default=1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    with thesis_style():
        for (name, v), f in zip(groups.items(), finite):
            dropped = len(np.asarray(v)) - len(f)
            ax.hist(f, bins=edges, density=density, alpha=0.55, histtype="stepfilled",
                    label=f"{name} (n={len(f)}{f', {dropped} non-finite' if dropped else ''})")
        ax.set(xlabel=xlabel, ylabel="density" if density else "count")
        ax.legend()
    mark_random(fig, real_weights)
    return fig
