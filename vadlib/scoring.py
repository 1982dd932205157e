"""Score post-processing: per-video temporal smoothing, min-max normalisation fitted on
TRAINING scores only, and weighted fusion of several methods' scores.

All functions take and return ``{video name: (T,) float array}`` dicts. Nothing here ever
looks at test labels, and nothing is fitted on test scores: :class:`MinMaxNormalizer` is
fitted once (on training/validation scores) and then applied unchanged to every test video.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from vadlib.errors import ConfigError, DataError

ScoreDict = Mapping[str, np.ndarray]


def _as_1d(name: str, x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise DataError(None, f"video '{name}': scores must be 1-D (T,), got shape {a.shape}")
    return a


def gaussian_smooth(scores: ScoreDict, sigma: float | None) -> dict[str, np.ndarray]:
    """1-D Gaussian smoothing of each video's ``(T,)`` scores separately.

    ``sigma`` is in frames; ``None`` or ``0`` returns float64 copies unchanged. Uses
    ``scipy.ndimage.gaussian_filter1d(mode="nearest")`` per video, so no information ever
    crosses a video boundary (the edges are padded with the video's own first/last value).
    """
    if sigma is not None and (not np.isfinite(sigma) or sigma < 0):
        raise ConfigError(f"smoothing sigma must be None or a finite number >= 0, got {sigma!r}")
    out: dict[str, np.ndarray] = {}
    for name, s in scores.items():
        a = _as_1d(name, s)
        if sigma and a.size > 0:
            a = gaussian_filter1d(a, float(sigma), mode="nearest")
        else:
            a = a.copy()
        out[name] = a
    return out


def _concat(scores: ScoreDict | np.ndarray | Sequence[float]) -> np.ndarray:
    if isinstance(scores, Mapping):
        if not scores:
            raise DataError(None, "no scores given to fit on (empty dict)")
        parts = [_as_1d(k, v) for k, v in scores.items()]
        return np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(scores, dtype=np.float64).ravel()


class MinMaxNormalizer:
    """Affine map of scores to roughly [0, 1] using statistics of TRAINING scores.

    ``lo``/``hi`` are the ``lo_q``/``hi_q`` quantiles of the training scores (0 and 1 give
    plain min and max; e.g. 0.01/0.99 makes it robust to outliers). ``transform`` applies
    ``(x - lo) / (hi - lo)`` without clipping and without refitting, so test videos are never
    normalised with their own (or the test set's) statistics — see methods.md §7 pitfalls.
    """

    def __init__(self, lo_q: float = 0.0, hi_q: float = 1.0):
        if not (0.0 <= lo_q < hi_q <= 1.0):
            raise ConfigError(f"need 0 <= lo_q < hi_q <= 1, got lo_q={lo_q}, hi_q={hi_q}")
        self.lo_q = float(lo_q)
        self.hi_q = float(hi_q)
        self.lo_: float | None = None
        self.hi_: float | None = None
        self.n_fit_: int = 0

    def fit(self, scores: ScoreDict | np.ndarray) -> "MinMaxNormalizer":
        """Record ``lo``/``hi`` from training scores (dict of ``(T,)`` arrays or one array)."""
        x = _concat(scores)
        if x.size == 0:
            raise DataError(None, "no scores given to fit the normaliser on (0 values)")
        if not np.all(np.isfinite(x)):
            raise DataError(None, f"training scores contain {int((~np.isfinite(x)).sum())} NaN/inf values")
        lo, hi = np.quantile(x, [self.lo_q, self.hi_q])
        self.lo_, self.hi_ = float(lo), float(hi)
        self.n_fit_ = int(x.size)
        return self

    @property
    def stats(self) -> dict:
        """The fitted statistics (for logging beside a figure)."""
        return {"lo_q": self.lo_q, "hi_q": self.hi_q, "lo": self.lo_, "hi": self.hi_, "n_fit": self.n_fit_}

    def _apply(self, x: np.ndarray) -> np.ndarray:
        scale = self.hi_ - self.lo_
        if scale <= 0:  # constant training scores: only shift
            scale = 1.0
        return (x - self.lo_) / scale

    def transform(self, scores: ScoreDict | np.ndarray):
        """Apply the fitted map; a dict is transformed per video, an array elementwise."""
        if self.lo_ is None:
            raise ConfigError("MinMaxNormalizer.transform called before fit (fit it on training scores)")
        if isinstance(scores, Mapping):
            return {k: self._apply(_as_1d(k, v)) for k, v in scores.items()}
        return self._apply(np.asarray(scores, dtype=np.float64))

    def fit_transform(self, scores: ScoreDict | np.ndarray):
        """Fit and transform the SAME (training) scores."""
        return self.fit(scores).transform(scores)


def fuse(
    score_dicts: Sequence[ScoreDict],
    weights: Sequence[float] | None = None,
    normalizers: Sequence[MinMaxNormalizer | None] | None = None,
    train_scores: Sequence[ScoreDict | np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Weighted sum of several methods' per-frame scores, per video.

    ``score_dicts[i]`` is ``{video: (T,)}``; all must cover the same videos with the same
    lengths. ``normalizers[i]`` (fitted on that method's TRAINING scores) is applied first;
    pass ``None`` entries for scores that are already on a common scale. Alternatively give
    ``train_scores[i]`` (method i's scores on TRAINING data) and a plain :class:`MinMaxNormalizer`
    is fitted on each; never pass test scores there. With neither, raw scores are summed.
    ``weights`` default to equal weights ``1/M``. Returns ``{video: (T,) float64}``.
    """
    if not score_dicts:
        raise ConfigError("fuse needs at least one score dict")
    m = len(score_dicts)
    w = np.full(m, 1.0 / m) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (m,):
        raise ConfigError(f"fuse: {m} score dicts but {w.size} weights")
    if normalizers is not None and len(normalizers) != m:
        raise ConfigError(f"fuse: {m} score dicts but {len(normalizers)} normalizers")
    if train_scores is not None:
        if normalizers is not None:
            raise ConfigError("fuse: give either normalizers or train_scores, not both")
        if len(train_scores) != m:
            raise ConfigError(f"fuse: {m} score dicts but {len(train_scores)} training score sets")
        normalizers = [MinMaxNormalizer().fit(ts) for ts in train_scores]
    ref = set(score_dicts[0])
    for i, d in enumerate(score_dicts[1:], start=1):
        if set(d) != ref:
            missing = sorted(ref - set(d))
            extra = sorted(set(d) - ref)
            raise DataError(None, f"fuse: score dict {i} differs from dict 0 in videos: "
                                  f"missing {missing[:10]}, extra {extra[:10]}")
    dicts = [dict(d) for d in score_dicts]
    if normalizers is not None:
        dicts = [d if n is None else n.transform(d) for d, n in zip(dicts, normalizers)]
    out: dict[str, np.ndarray] = {}
    for name in score_dicts[0]:
        arrs = [_as_1d(name, d[name]) for d in dicts]
        lens = {a.shape[0] for a in arrs}
        if len(lens) != 1:
            raise DataError(None, f"video '{name}': fused score arrays differ in length {[a.shape[0] for a in arrs]}")
        out[name] = sum(wi * a for wi, a in zip(w, arrs))
    return out
