"""Standard figures: score timelines with GT shaded, ROC and PR curves.

Every figure of a random-weight run carries a visible "RANDOM WEIGHTS" banner
(:func:`mark_random`), and :func:`protocol_caption` writes the protocol beside the figure.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RANDOM_BANNER = "RANDOM WEIGHTS — plumbing check, not a result"

# Byte-identical figure files when nothing changed (a re-run stage leaves `dvc status` clean):
# no creation date in PDF / SVG / EPS, and SVG element ids from a fixed salt instead of a random one.
matplotlib.rcParams["svg.hashsalt"] = "vadlib"


def savefig_metadata(fmt: str) -> dict | None:
    """``metadata=`` for ``fig.savefig(format=fmt)`` without the time-dependent entries.

    PDF: no ``CreationDate``; SVG: no ``Date``; PNG's ``Software`` entry names the matplotlib
    version, which is stable. Other formats: ``None`` (matplotlib's default).
    """
    return {"pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt.lower().lstrip("."))


def mark_random(fig, real_weights: bool) -> None:
    """Stamp a red banner across ``fig`` when the backbone's weights were not real."""
    if not real_weights:
        size = max(6.0, min(14.0, 1.6 * fig.get_figwidth()))   # fits single-column (3.3 in) figures too
        fig.text(0.5, 0.5, RANDOM_BANNER, ha="center", va="center", fontsize=size, color="red",
                 alpha=0.35, rotation=20, transform=fig.transFigure, weight="bold")


def protocol_caption(meta: Mapping) -> str:
    """One line naming the protocol: dataset, GT file, σ, AP definition, backbone, weights."""
    keys = [("dataset", "dataset"), ("gt_file", "GT"), ("sigma", "σ"), ("ap_definition", "AP"),
            ("backbone", "backbone"), ("real_weights", "real weights"), ("score", "score")]
    return " · ".join(f"{label}: {meta[k]}" for k, label in keys if k in meta and meta[k] is not None)


def _finish(fig, title: str, caption: str, real_weights: bool, bottom: float, top: float):
    """Title, protocol caption, layout and the random-weights stamp shared by every figure."""
    if title:
        fig.suptitle(title, fontsize=10)
    if caption:
        fig.text(0.01, 0.005, caption, fontsize=6, color="0.3")
    fig.tight_layout(rect=(0, bottom, 1, top if title else 1))
    mark_random(fig, real_weights)
    return fig


def _shade(ax, labels: np.ndarray, color: str = "tab:red", alpha: float = 0.15) -> None:
    lab = np.asarray(labels).astype(bool)
    if not lab.any():
        return
    edges = np.flatnonzero(np.diff(np.r_[0, lab.astype(int), 0]))
    for s, e in zip(edges[::2], edges[1::2]):
        ax.axvspan(s - 0.5, e - 0.5, color=color, alpha=alpha, lw=0)


def plot_timelines(scores: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray],
                   videos: Sequence[str] | None = None, classes: Mapping[str, np.ndarray] | None = None,
                   class_names: Sequence[str] | None = None, ncols: int = 2, title: str = "",
                   real_weights: bool = True, caption: str = ""):
    """Grid of score-over-frames plots, GT anomalies shaded; optional predicted class strip."""
    videos = list(videos or scores)
    nrows = max(1, int(np.ceil(len(videos) / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 2.0 * nrows), squeeze=False)
    for ax, v in zip(axes.flat, videos):
        s = np.asarray(scores[v])
        ax.plot(np.arange(len(s)), s, lw=1.2, color="tab:blue")
        if v in labels and labels[v] is not None:
            _shade(ax, labels[v])
        if classes is not None and v in classes and class_names is not None:
            c = np.asarray(classes[v])
            for k in np.unique(c[c > 0]):
                idx = np.flatnonzero(c == k)
                ax.scatter(idx, np.full(len(idx), s.max() * 1.05 if len(s) else 1), s=2, label=class_names[k])
            if (c > 0).any():
                ax.legend(fontsize=6, loc="upper left", markerscale=3)
        ax.set_title(v, fontsize=9)
        ax.set_xlabel("frame", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(videos):]:
        ax.axis("off")
    return _finish(fig, title, caption, real_weights, bottom=0.02, top=0.97)


def plot_roc_pr(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "",
                real_weights: bool = True, caption: str = ""):
    """ROC and PR side by side. ``curves``: name -> (scores, labels) over all frames."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.8))
    for name, (s, y) in curves.items():
        s, y = np.asarray(s), np.asarray(y).astype(int)
        if y.min() == y.max():
            continue
        fpr, tpr, _ = roc_curve(y, s)
        p, r, _ = precision_recall_curve(y, s)
        a1.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
        a2.step(r, p, where="post", label=f"{name} (AP {average_precision_score(y, s):.3f})")
    a1.plot([0, 1], [0, 1], ls=":", color="0.6")
    a1.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    a2.set(xlabel="recall", ylabel="precision", title="PR (AP = sklearn average_precision_score)")
    for a in (a1, a2):
        a.legend(fontsize=7)
    return _finish(fig, title, caption, real_weights, bottom=0.03, top=0.95)


def save_figure(fig, path) -> None:
    """Save PNG (and PDF beside it) atomically."""
    from pathlib import Path

    from vadlib.io import atomic_path

    path = Path(path)
    for suffix in (".png", ".pdf"):
        with atomic_path(path.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", format=suffix[1:], metadata=savefig_metadata(suffix))
    plt.close(fig)


def validation_signal(history) -> bool:
    """Whether a training history (DataFrame of epoch rows) holds a finite validation score to
    choose an epoch on (``val_score``, else ``val_auc``). NaN everywhere (e.g. one validation
    video: its frame AUC is undefined) is no signal."""
    for col in ("val_score", "val_auc"):
        if col in getattr(history, "columns", ()):
            return bool(np.isfinite(np.asarray(history[col], float)).any())
    return False


def plot_training(history, best_epoch: int | None = None, n_val: int | None = None, title: str = "",
                  real_weights: bool = True, caption: str = ""):
    """Loss terms per epoch, and the validation scores with the chosen epoch marked.

    ``history``: DataFrame with ``epoch``, loss-term columns and optional ``val_*`` columns.
    Without a validation signal (:func:`validation_signal`) there is no validation panel; the
    figure says so, and that no epoch was chosen (the last one is kept).
    """
    signal = validation_signal(history)
    vals = [c for c in history.columns if c.startswith("val_") and np.isfinite(np.asarray(history[c], float)).any()]
    terms = [c for c in history.columns if c not in ("epoch", "lr", "seconds") and not c.startswith("val_")]
    fig, axes = plt.subplots(1, 2 if signal else 1, figsize=(10, 3.5) if signal else (6, 3.5), squeeze=False)
    ax = axes[0, 0]
    for c in terms:
        ax.plot(history["epoch"], history[c], label=c)
    ax.set(xlabel="epoch", title="training loss terms")
    if terms:
        ax.legend(fontsize=6, ncol=3 if len(terms) > 4 else 1, loc="upper right", framealpha=0.7)
    if signal:
        a2 = axes[0, 1]
        for c in vals:
            a2.plot(history["epoch"], history[c], marker=".", label=c)
        if best_epoch is not None and best_epoch >= 0:
            a2.axvline(best_epoch, color="0.3", ls="--", lw=1)
            a2.annotate(f"chosen: epoch {best_epoch}", (best_epoch, 0.02), xycoords=("data", "axes fraction"),
                        fontsize=7, ha="right", rotation=90)
        a2.set(xlabel="epoch", title=f"validation ({n_val if n_val is not None else '?'} held-out TRAINING videos)")
        a2.legend(fontsize=7)
    else:
        why = ("no validation videos" if not n_val else
               f"validation score undefined on {n_val} held-out training video{'s' if n_val != 1 else ''}")
        fig.text(0.5, 0.07, f"No validation signal ({why}):\nno epoch was chosen; the last epoch is kept.",
                 ha="center", va="center", fontsize=8, color="tab:red")
    return _finish(fig, title, caption, real_weights, bottom=0.03 if signal else 0.14, top=0.93)
