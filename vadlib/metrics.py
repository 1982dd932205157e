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


# ---------------------------------------------------------------------------------------------
# video level
# ---------------------------------------------------------------------------------------------


def _reduce_video(name: str, s: np.ndarray, reduce: str, k: int | None) -> float:
    if s.size == 0:
        raise DataError(None, f"video '{name}': no scores (0 frames)")
    if reduce == "max":
        return float(s.max())
    if reduce == "topk_mean":
        kk = min(int(k), s.size)  # type: ignore[arg-type]
        return float(np.partition(s, s.size - kk)[s.size - kk:].mean())
    raise ConfigError(f"unknown video reduction {reduce!r}; known: 'max', 'topk_mean'")


def video_level_metrics(
    scores: Mapping[str, np.ndarray],
    video_labels: Mapping[str, object],
    reduce: str = "max",
    k: int | None = None,
    sigma: float | None = None,
) -> dict:
    """Video-level AUC/AP: one score per video (max, or mean of the top-``k`` frame scores).

    Args:
        scores: ``{video: (T,)}`` frame scores.
        video_labels: ``{video: label}``; a scalar (0 = normal) or a ``(T,)`` frame-label array
            (the video is abnormal iff any frame label is ``!= 0``).
        reduce: ``"max"`` or ``"topk_mean"`` (needs ``k >= 1``; videos shorter than ``k`` use all frames).
        sigma: optional per-video Gaussian smoothing before reducing.

    Only defined when both normal and abnormal videos exist (methods.md §7: not on Ped2, Avenue or
    ShanghaiTech's official split); otherwise ``video_auc``/``video_ap`` are NaN and ``note`` says why.
    """
    if reduce == "topk_mean" and (k is None or int(k) < 1):
        raise ConfigError(f"reduce='topk_mean' needs an integer k >= 1, got k={k!r}")
    if reduce not in ("max", "topk_mean"):
        raise ConfigError(f"unknown video reduction {reduce!r}; known: 'max', 'topk_mean'")
    names = _check_same_videos(scores, video_labels, ref="video_labels")
    s_dict = {}
    for n in names:
        s = np.asarray(scores[n], dtype=np.float64)
        if s.ndim != 1:
            raise DataError(None, f"video '{n}': scores must be 1-D (T,), got shape {s.shape}")
        if not np.all(np.isfinite(s)):
            raise DataError(None, f"video '{n}': NaN/inf score(s)")
        s_dict[n] = s
    if sigma:
        s_dict = gaussian_smooth(s_dict, sigma)
    vs = np.array([_reduce_video(n, s_dict[n], reduce, k) for n in names])
    y = np.array([bool(np.any(np.asarray(video_labels[n]) != 0)) for n in names])
    auc, ap = _auc_ap(y, vs)
    note = None
    if math.isnan(auc):
        note = ("video-level metrics undefined: " +
                ("no normal test video" if y.all() else "no abnormal test video") + " (NaN)")
    return {
        "video_auc": auc,
        "video_ap": ap,
        "n_videos": len(names),
        "n_abnormal": int(y.sum()),
        "n_normal": int((~y).sum()),
        "reduce": reduce,
        "k": None if reduce == "max" else int(k),  # type: ignore[arg-type]
        "sigma": float(sigma) if sigma else 0.0,
        "ap_definition": AP_DEFINITION,
        "video_scores": dict(zip(names, vs.tolist())),
        "note": note,
    }


# ---------------------------------------------------------------------------------------------
# pixel level
# ---------------------------------------------------------------------------------------------

#: Above this many pixels in total, pixel metrics switch from the exact sort-based
#: computation to the streaming histogram/threshold computation (memory ~ one frame).
MAX_EXACT_PIXELS = 4_000_000


def _as_video_list(x, what: str) -> list[tuple[str, object]]:
    if isinstance(x, Mapping):
        return list(x.items())
    if isinstance(x, np.ndarray):
        return [("0", x)]
    if isinstance(x, (list, tuple)):
        return [(str(i), v) for i, v in enumerate(x)]
    raise DataError(None, f"{what}: expected a dict or list of (T, H, W) arrays, got {type(x).__name__}")


def _pixel_pairs(masks, maps) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Validate ``masks``/``maps`` (dicts with equal keys, or lists of equal length) and pair them.

    Each entry is ``(T, H, W)`` (or ``(H, W)`` for one frame); masks are binarised with ``!= 0``.
    """
    m_list, p_list = _as_video_list(masks, "masks"), _as_video_list(maps, "maps")
    if isinstance(masks, Mapping) and isinstance(maps, Mapping):
        _check_same_videos(maps, masks, what="maps", ref="masks")
        p_d = dict(p_list)
        p_list = [(n, p_d[n]) for n, _ in m_list]
    elif len(m_list) != len(p_list):
        raise DataError(None, f"{len(m_list)} mask videos but {len(p_list)} map videos")
    if not m_list:
        raise DataError(None, "no videos given (masks and maps are empty)")
    out = []
    for (name, m), (_, p) in zip(m_list, p_list):
        m = np.asarray(m)
        p = np.asarray(p)
        if m.ndim == 2:
            m = m[None]
        if p.ndim == 2:
            p = p[None]
        if m.ndim != 3 or p.ndim != 3:
            raise DataError(None, f"video '{name}': masks and maps must be (T, H, W), got {m.shape} and {p.shape}")
        if m.shape != p.shape:
            raise DataError(None, f"video '{name}': mask shape {m.shape} != map shape {p.shape} "
                                  "(resize the maps first, e.g. with vadlib.metrics.resize_maps)")
        if not np.all(np.isfinite(p)):
            raise DataError(None, f"video '{name}': anomaly maps contain NaN/inf")
        out.append((name, m != 0, p))
    return out


def resize_maps(maps, size: tuple[int, int], order: int = 1):
    """Resize anomaly maps ``(T, h, w) -> (T, H, W)`` (``size = (H, W)``), bilinear by default.

    Accepts one array, a list or a dict of arrays and returns the same container type.
    Uses ``scipy.ndimage.zoom`` over the spatial axes only (frames are never mixed).
    """
    from scipy.ndimage import zoom

    def one(a):
        a = np.asarray(a, dtype=np.float32)
        squeeze = a.ndim == 2
        if squeeze:
            a = a[None]
        h, w = a.shape[1:]
        H, W = int(size[0]), int(size[1])
        if (h, w) == (H, W):
            r = a.copy()
        else:
            r = zoom(a, (1.0, H / h, W / w), order=order, mode="nearest", grid_mode=True)
            r = r[:, :H, :W]
        return r[0] if squeeze else r

    if isinstance(maps, Mapping):
        return {k: one(v) for k, v in maps.items()}
    if isinstance(maps, (list, tuple)):
        return [one(v) for v in maps]
    return one(maps)


def _value_range(pairs) -> tuple[float, float]:
    lo = min(float(p.min()) for _, _, p in pairs if p.size)
    hi = max(float(p.max()) for _, _, p in pairs if p.size)
    return lo, hi


def _bin_index(p: np.ndarray, lo: float, hi: float, n_bins: int) -> np.ndarray:
    if hi <= lo:
        return np.zeros(p.shape, dtype=np.int64)
    idx = np.floor((p.astype(np.float64) - lo) * (n_bins / (hi - lo))).astype(np.int64)
    np.clip(idx, 0, n_bins - 1, out=idx)
    return idx


def pixel_auroc(
    masks,
    maps,
    num_bins: int | None = None,
    max_exact_pixels: int = MAX_EXACT_PIXELS,
    return_details: bool = False,
):
    """Pixel-level AUROC over all pixels of all frames of all videos (one ROC, micro).

    Args:
        masks: dict or list of ``(T, H, W)`` ground-truth masks (anomalous iff ``!= 0``).
        maps: same container/shapes, float anomaly maps (higher = more anomalous). Shapes must
            equal the masks' (no silent resizing; see :func:`resize_maps`).
        num_bins: ``None`` = exact ``sklearn.metrics.roc_auc_score`` when the total pixel count is
            ``<= max_exact_pixels``, else a streaming histogram with 2**16 bins; an int forces the
            histogram with that many bins.
        return_details: return a dict (``pixel_auroc``, ``method``, ``n_pixels``, ``n_anomalous``,
            ``error_bound``) instead of the float.

    Histogram method (memory ~ one frame): scores are quantised into ``num_bins`` equal-width bins
    over [global min, global max]; the AUC is computed exactly for the quantised scores (pairs in
    the same bin count 1/2). The true AUC differs by at most ``error_bound`` = 1/2 · (positive-negative
    pairs sharing a bin) / (P·N), which is reported. No anomalous (or no normal) pixel → NaN + warning.
    """
    import warnings

    pairs = _pixel_pairs(masks, maps)
    n_pix = sum(m.size for _, m, _ in pairs)
    n_pos = int(sum(m.sum() for _, m, _ in pairs))
    use_hist = num_bins is not None or n_pix > max_exact_pixels
    method = "exact (sklearn roc_auc_score)"
    bound = 0.0
    if n_pos == 0 or n_pos == n_pix:
        msg = "no anomalous pixels" if n_pos == 0 else "no normal pixels"
        warnings.warn(f"pixel AUROC undefined: {msg} (NaN)", stacklevel=2)
        auc = math.nan
    elif not use_hist:
        y = np.concatenate([m.ravel() for _, m, _ in pairs])
        s = np.concatenate([p.ravel().astype(np.float64) for _, _, p in pairs])
        auc = float(roc_auc_score(y, s))
    else:
        nb = int(num_bins or 2**16)
        lo, hi = _value_range(pairs)
        pos = np.zeros(nb, np.float64)
        neg = np.zeros(nb, np.float64)
        for _, m, p in pairs:
            for t in range(m.shape[0]):  # one frame at a time
                idx = _bin_index(p[t], lo, hi, nb)
                pos += np.bincount(idx[m[t]], minlength=nb)
                neg += np.bincount(idx[~m[t]], minlength=nb)
        P, N = pos.sum(), neg.sum()
        neg_below = np.cumsum(neg) - neg  # negatives in strictly lower bins
        auc = float((pos * neg_below).sum() / (P * N) + 0.5 * (pos * neg).sum() / (P * N))
        bound = float(0.5 * (pos * neg).sum() / (P * N))
        method = f"histogram ({nb} equal-width bins, exact for quantised scores)"
    if return_details:
        return {"pixel_auroc": auc, "method": method, "n_pixels": int(n_pix), "n_anomalous": n_pos,
                "error_bound": bound}
    return auc


def _trapezoid_upto(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Area under the piecewise-linear curve ``(x, y)`` (x non-decreasing) from x[0] to ``x_max``,
    interpolating ``y`` linearly at ``x_max`` when it falls between two points (MVTec AD
    evaluation code's ``trapezoid``)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    keep = x <= x_max
    area = float(np.sum(0.5 * (y[keep][1:] + y[keep][:-1]) * np.diff(x[keep])))
    ins = int(np.searchsorted(x, x_max, side="right"))
    if 0 < ins < x.size and x[ins - 1] < x_max:
        x0, x1, y0, y1 = x[ins - 1], x[ins], y[ins - 1], y[ins]
        y_at = y0 + (y1 - y0) * (x_max - x0) / (x1 - x0)
        area += 0.5 * (y0 + y_at) * (x_max - x0)
    return area


def _regions(mask2d: np.ndarray) -> tuple[np.ndarray, int]:
    from scipy.ndimage import label

    return label(mask2d, structure=np.ones((3, 3), dtype=int))  # 8-connectivity


def pro_curve(
    masks,
    maps,
    num_thresholds: int | None = None,
    max_exact_pixels: int = MAX_EXACT_PIXELS,
) -> dict:
    """Per-region-overlap curve (Bergmann et al.): for every threshold, the FPR over normal pixels
    and the PRO = mean over ALL connected GT regions (8-connectivity, labelled per frame with
    ``scipy.ndimage.label``) of the fraction of the region's pixels at or above the threshold.

    ``num_thresholds=None``: every distinct score is a threshold (exact; sort-based, as in the
    MVTec AD evaluation code) when the total pixel count is ``<= max_exact_pixels``, else 10,000
    equal-width thresholds over [min, max]; an int forces that many thresholds (streaming, memory ~
    one frame; exact for the scores quantised to those bins).
    Returns ``{"fpr", "pro"}`` (non-decreasing, starting at (0, 0)), ``n_regions``, ``method``.
    """
    pairs = _pixel_pairs(masks, maps)
    n_pix = sum(m.size for _, m, _ in pairs)
    exact = num_thresholds is None and n_pix <= max_exact_pixels
    n_ok = int(sum((~m).sum() for _, m, _ in pairs))
    if exact:
        fp_change, pro_change, scores = [], [], []
        n_regions = 0
        for _, m, p in pairs:
            for t in range(m.shape[0]):
                lab, n = _regions(m[t])
                n_regions += n
                w = np.zeros(lab.shape, np.float64)
                if n:
                    sizes = np.bincount(lab.ravel(), minlength=n + 1).astype(np.float64)
                    inv = np.zeros(n + 1)
                    inv[1:] = 1.0 / sizes[1:]
                    w = inv[lab]
                fp_change.append((lab == 0).ravel())
                pro_change.append(w.ravel())
                scores.append(p[t].ravel().astype(np.float64))
        s = np.concatenate(scores)
        order = np.argsort(-s, kind="stable")
        s = s[order]
        fpr = np.cumsum(np.concatenate(fp_change)[order], dtype=np.float64)
        pro = np.cumsum(np.concatenate(pro_change)[order])
        keep = np.append(np.diff(s) != 0, True)  # one point per distinct threshold
        fpr, pro = fpr[keep], pro[keep]
        thr = s[keep]
        method = "exact (every distinct score a threshold; MVTec AD evaluation algorithm)"
    else:
        nb = int(num_thresholds or 10_000)
        lo, hi = _value_range(pairs)
        fp_h = np.zeros(nb, np.float64)
        pro_h = np.zeros(nb, np.float64)
        n_regions = 0
        for _, m, p in pairs:
            for t in range(m.shape[0]):
                lab, n = _regions(m[t])
                n_regions += n
                idx = _bin_index(p[t], lo, hi, nb)
                ok = lab == 0
                fp_h += np.bincount(idx[ok], minlength=nb)
                if n:
                    sizes = np.bincount(lab.ravel(), minlength=n + 1).astype(np.float64)
                    inv = np.zeros(n + 1)
                    inv[1:] = 1.0 / sizes[1:]
                    pro_h += np.bincount(idx[~ok], weights=inv[lab[~ok]], minlength=nb)
        fpr = np.cumsum(fp_h[::-1])
        pro = np.cumsum(pro_h[::-1])
        edges = lo + (hi - lo) * np.arange(nb)[::-1] / nb  # lower edge of each bin (threshold)
        thr = edges
        method = f"binned ({nb} equal-width thresholds over [min, max])"
    fpr = fpr / n_ok if n_ok else np.full_like(fpr, np.nan)
    pro = pro / n_regions if n_regions else np.full_like(pro, np.nan)
    fpr = np.clip(np.concatenate([[0.0], fpr]), 0, 1)
    pro = np.clip(np.concatenate([[0.0], pro]), 0, 1)
    thr = np.concatenate([[np.inf], thr])
    return {"fpr": fpr, "pro": pro, "threshold": thr, "n_regions": n_regions, "n_normal_pixels": n_ok,
            "method": method}


def aupro(
    masks,
    maps,
    fpr_limit: float = 0.3,
    num_thresholds: int | None = None,
    max_exact_pixels: int = MAX_EXACT_PIXELS,
    return_details: bool = False,
):
    """Normalised area under the PRO curve up to ``fpr_limit`` (Bergmann et al., MVTec AD).

    Implementation: "exact-to-limit" convention of anomalib and of the MVTec AD evaluation code
    (``pro_curve`` + ``trapezoid`` with linear interpolation of PRO at FPR = ``fpr_limit``),
    area divided by ``fpr_limit`` so a perfect map scores 1. NOT Zhou et al.'s AnomalyCLIP variant
    (200 uniform thresholds, observed FPRs rescaled to [0, 1]). Thresholds: see :func:`pro_curve`.
    No GT region or no normal pixel → NaN and a warning.
    """
    import warnings

    if not (0 < fpr_limit <= 1):
        raise ConfigError(f"fpr_limit must be in (0, 1], got {fpr_limit}")
    c = pro_curve(masks, maps, num_thresholds=num_thresholds, max_exact_pixels=max_exact_pixels)
    if c["n_regions"] == 0 or c["n_normal_pixels"] == 0:
        warnings.warn("AUPRO undefined: " + ("no anomalous GT region" if c["n_regions"] == 0 else "no normal pixels")
                      + " (NaN)", stacklevel=2)
        value = math.nan
    else:
        value = _trapezoid_upto(c["fpr"], c["pro"], fpr_limit) / fpr_limit
    if return_details:
        return {"aupro": value, "fpr_limit": fpr_limit, "method": c["method"], "n_regions": c["n_regions"],
                "implementation": "exact integration to fpr_limit, /fpr_limit (anomalib / MVTec AD convention)"}
    return value


# ---------------------------------------------------------------------------------------------
# anomaly recognition (AnomalyCLIP, methods.md §1.11)
# ---------------------------------------------------------------------------------------------


def recognition_metrics(
    frame_classes: Mapping[str, np.ndarray],
    class_probs: Mapping[str, np.ndarray],
    class_names: list[str],
    normal_id: int = 0,
    detection_threshold: float | None = None,
) -> dict:
    """Anomaly-recognition metrics over all test frames (micro), as in AnomalyCLIP (§1.11).

    Args:
        frame_classes: ``{video: (T,) int}`` GT class id per frame (``normal_id`` = normal).
        class_probs: ``{video: (T, C)}`` class probabilities/scores, column ``normal_id`` = normal.
        class_names: ``C`` names, index = class id.
        detection_threshold: optional threshold on ``1 - p(normal)`` FIXED BEFORE TESTING (e.g. from
            validation data); frames below it are predicted normal before top-k (the reference code
            fits a Youden threshold on the test ROC instead — a test-set fit, methods.md §1.12.6).
            ``None`` (default): top-k is "recognition given the frame is anomalous".

    Returns a dict with:
        * ``per_class_auc`` / ``per_class_ap``: ``{name: value}`` one-vs-rest over ALL frames (normal
          frames and other classes' frames are negatives), NaN for classes absent from the test set;
        * ``mAUC`` / ``mAP``: mean over anomaly classes present in the test set (normal excluded),
          ``absent_classes`` lists the anomaly classes excluded;
        * ``top1`` / ``top5``: accuracy over all anomalous frames, the ranking being over the anomaly
          classes only (normal column excluded; ``k = min(5, C - 1)`` recorded as ``top5_k``);
          ``top1_per_class`` / ``top5_per_class`` per present anomaly class;
        * ``n_frames``, ``n_anomalous``, ``class_counts``.
    """
    names = _check_same_videos(class_probs, frame_classes, what="class_probs", ref="frame_classes")
    C = len(class_names)
    if not (0 <= normal_id < C):
        raise ConfigError(f"normal_id {normal_id} outside 0..{C - 1}")
    ys, ps = [], []
    for n in names:
        y = np.asarray(frame_classes[n])
        p = np.asarray(class_probs[n], dtype=np.float64)
        if y.ndim != 1:
            raise DataError(None, f"video '{n}': frame_classes must be (T,), got shape {y.shape}")
        if p.ndim != 2 or p.shape[1] != C:
            raise DataError(None, f"video '{n}': class_probs must be (T, {C}) for {C} class names, got {p.shape}")
        if p.shape[0] != y.shape[0]:
            raise DataError(None, f"video '{n}': {p.shape[0]} probability rows but {y.shape[0]} frame labels")
        if not np.all(np.isfinite(p)):
            raise DataError(None, f"video '{n}': class_probs contain NaN/inf")
        if y.size and (y.min() < 0 or y.max() >= C):
            raise DataError(None, f"video '{n}': class ids must be in 0..{C - 1}, found {int(y.min())}..{int(y.max())}")
        ys.append(y.astype(np.int64))
        ps.append(p)
    y = np.concatenate(ys)
    P = np.concatenate(ps)
    counts = np.bincount(y, minlength=C)
    anomaly_ids = [c for c in range(C) if c != normal_id]
    per_auc, per_ap = {}, {}
    for c in range(C):
        auc, ap = _auc_ap(y == c, P[:, c])
        per_auc[class_names[c]] = auc
        per_ap[class_names[c]] = ap
    present = [c for c in anomaly_ids if counts[c] > 0 and counts[c] < y.size]
    absent = [class_names[c] for c in anomaly_ids if counts[c] == 0]
    mauc = float(np.mean([per_auc[class_names[c]] for c in present])) if present else math.nan
    map_ = float(np.mean([per_ap[class_names[c]] for c in present])) if present else math.nan

    # top-k over anomalous frames, ranking anomaly classes only
    anom = y != normal_id
    k5 = min(5, len(anomaly_ids))
    top1 = top5 = math.nan
    top1_pc: dict[str, float] = {}
    top5_pc: dict[str, float] = {}
    if anom.any() and anomaly_ids:
        Pa = P[anom][:, anomaly_ids]
        ids = np.asarray(anomaly_ids)
        order = np.argsort(-Pa, axis=1, kind="stable")
        ranked = ids[order[:, :k5]]  # (N_anom, k5) class ids, best first
        ya = y[anom]
        hit1 = ranked[:, 0] == ya
        hit5 = (ranked == ya[:, None]).any(axis=1)
        if detection_threshold is not None:
            detected = (1.0 - P[anom][:, normal_id]) >= detection_threshold
            hit1 &= detected
            # reference convention: an undetected frame's top-5 is [normal, first 4 anomaly classes]
            hit5 = np.where(detected, hit5, (ranked[:, : max(k5 - 1, 0)] == ya[:, None]).any(axis=1))
        top1, top5 = float(hit1.mean()), float(hit5.mean())
        for c in present:
            sel = ya == c
            top1_pc[class_names[c]] = float(hit1[sel].mean())
            top5_pc[class_names[c]] = float(hit5[sel].mean())
    warning = None
    if not present:
        warning = "no anomaly class present in the test set: mAUC/mAP undefined (NaN)"
    return {
        "mAUC": mauc,
        "mAP": map_,
        "per_class_auc": per_auc,
        "per_class_ap": per_ap,
        "present_classes": [class_names[c] for c in present],
        "absent_classes": absent,
        "top1": top1,
        "top5": top5,
        "top5_k": k5,
        "top1_per_class": top1_pc,
        "top5_per_class": top5_pc,
        "detection_threshold": detection_threshold,
        "n_frames": int(y.size),
        "n_anomalous": int(anom.sum()),
        "class_counts": {class_names[c]: int(counts[c]) for c in range(C)},
        "ap_definition": AP_DEFINITION,
        "warning": warning,
    }


def recognition_confusion(
    frame_classes: Mapping[str, np.ndarray],
    class_probs: Mapping[str, np.ndarray],
    normal_id: int = 0,
    detection_threshold: float | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """``(C, C)`` confusion matrix (rows = true class, columns = predicted) over all frames.

    Prediction: ``normal_id`` when ``detection_threshold`` is given and ``1 - p(normal)`` is below
    it, else the arg-max anomaly class; with ``detection_threshold=None`` the plain arg-max over
    all ``C`` columns. ``normalize`` divides each row by its count (rows of absent classes stay 0).
    """
    names = _check_same_videos(class_probs, frame_classes, what="class_probs", ref="frame_classes")
    y = np.concatenate([np.asarray(frame_classes[n], np.int64) for n in names])
    P = np.concatenate([np.asarray(class_probs[n], np.float64) for n in names])
    if P.shape[0] != y.shape[0]:
        raise DataError(None, f"{P.shape[0]} probability rows but {y.shape[0]} frame labels in total")
    C = P.shape[1]
    if detection_threshold is None:
        pred = P.argmax(1)
    else:
        Q = P.copy()
        Q[:, normal_id] = -np.inf
        pred = np.where(1.0 - P[:, normal_id] >= detection_threshold, Q.argmax(1), normal_id)
    cm = np.zeros((C, C), np.float64)
    np.add.at(cm, (y, pred), 1)
    if normalize:
        rows = cm.sum(1, keepdims=True)
        cm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    return cm


# ---------------------------------------------------------------------------------------------
# curves for plots
# ---------------------------------------------------------------------------------------------


def _flat_scores_labels(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(scores, Mapping):
        names, s, l = _frame_arrays(scores, labels)
        return np.concatenate([s[n] for n in names]), np.concatenate([l[n] for n in names])
    s = np.asarray(scores, np.float64).ravel()
    l = np.asarray(labels).ravel() != 0
    if s.shape != l.shape:
        raise DataError(None, f"{s.size} scores but {l.size} labels")
    if not np.all(np.isfinite(s)):
        raise DataError(None, "scores contain NaN/inf")
    return s, l


def _decimate(n: int, max_points: int) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


def roc_curve_points(scores, labels, max_points: int = 200):
    """ROC curve as a DataFrame (``fpr``, ``tpr``, ``threshold``) with at most ``max_points`` rows
    (evenly spaced along the curve, end points kept), for DVC plots. ``scores``/``labels`` are
    ``{video: (T,)}`` dicts (micro: concatenated) or flat arrays. The ``inf`` threshold of the first
    point is replaced by the next float above the maximum score (so JSON/CSV stay finite)."""
    import pandas as pd
    from sklearn.metrics import roc_curve

    s, y = _flat_scores_labels(scores, labels)
    if y.all() or not y.any():
        raise DataError(None, "ROC curve undefined: labels contain a single class")
    fpr, tpr, thr = roc_curve(y, s)
    thr = np.where(np.isinf(thr), np.nextafter(s.max(), np.inf), thr)
    i = _decimate(fpr.size, max_points)
    return pd.DataFrame({"fpr": fpr[i], "tpr": tpr[i], "threshold": thr[i]})


def pr_curve_points(scores, labels, max_points: int = 200):
    """Precision-recall curve as a DataFrame (``recall``, ``precision``, ``threshold``), recall
    increasing, at most ``max_points`` rows. The final (recall 0, precision 1) point sklearn adds
    has no threshold; it gets the next float above the maximum score."""
    import pandas as pd
    from sklearn.metrics import precision_recall_curve

    s, y = _flat_scores_labels(scores, labels)
    if not y.any():
        raise DataError(None, "PR curve undefined: no positive labels")
    prec, rec, thr = precision_recall_curve(y, s)
    thr = np.append(thr, np.nextafter(s.max(), np.inf))
    prec, rec, thr = prec[::-1], rec[::-1], thr[::-1]
    i = _decimate(prec.size, max_points)
    return pd.DataFrame({"recall": rec[i], "precision": prec[i], "threshold": thr[i]})


def json_safe(obj):
    """Copy of a (nested) result dict that ``json``/DVC can read: NaN/inf → ``None``, numpy
    scalars/arrays → Python numbers/lists. Use before writing ``metrics.json``."""
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
