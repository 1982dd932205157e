"""Fusion of several detection methods' scores (``--method a+b``), on one scale fitted on normal
calibration footage."""

from __future__ import annotations

import numpy as np

from vadlib.detect.methods import DetectMethod
from vadlib.errors import ConfigError
from vadlib.scoring import MinMaxNormalizer, fuse


class FusionMethod(DetectMethod):
    """Weighted mean of several methods' scores, each min-max normalised with statistics of NORMAL
    calibration footage (never of the scored video). ``fired`` is taken from the first component
    that names what fired."""

    def __init__(self, parts: list[DetectMethod], weights: list[float] | None = None):
        if len(parts) < 2:
            raise ConfigError("a fusion needs at least two methods (e.g. --method zeroshot+flow_nf)")
        weights = list(weights or [1.0] * len(parts))
        if len(weights) != len(parts) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ConfigError(f"--weights: need {len(parts)} non-negative weights, got {weights}")
        self.parts, self.weights = parts, weights
        self.name = "+".join(m.name for m in parts)
        self.labels = next((m.labels for m in parts if m.labels), None)
        self.real_weights = all(getattr(m, "real_weights", True) for m in parts)
        self.score = "fusion"
        self.norm: dict[str, tuple[float, float]] | None = None

    def part_scores(self, video) -> tuple[list[np.ndarray], np.ndarray | None]:
        outs = [m.frame_scores(video) for m in self.parts]
        self.encoded_frames = max(m.encoded_frames for m in self.parts)
        fired = next((f for (s, f), m in zip(outs, self.parts) if f is not None and m.labels is self.labels), None)
        return [np.asarray(s, np.float64) for s, _ in outs], fired

    def fit_norm(self, reference: list[list[np.ndarray]]) -> dict:
        """Min/max of each component over the normal reference videos' frames
        (:class:`~vadlib.scoring.MinMaxNormalizer` fitted on them); ``{"i:name": (lo, hi)}``, as saved in
        a fusion's threshold.json."""
        self.norm = {}
        for i, m in enumerate(self.parts):
            n = MinMaxNormalizer().fit(np.concatenate([r[i] for r in reference]))
            lo, hi = float(n.lo_), float(n.hi_)
            self.norm[f"{i}:{m.name}"] = (lo, hi if hi > lo else lo + 1.0)
        return self.norm

    def normalizers(self) -> list[MinMaxNormalizer]:
        """One fitted :class:`~vadlib.scoring.MinMaxNormalizer` per component, from :attr:`norm`."""
        if self.norm is None:
            raise ConfigError("fusion needs normal calibration footage (--calibrate NORMAL…) or a threshold file "
                              "saved by an earlier fused calibration, to put the methods on one scale")
        out = []
        for lo, hi in self.norm.values():
            n = MinMaxNormalizer()
            n.lo_, n.hi_ = float(lo), float(hi)
            out.append(n)
        return out

    def combine(self, parts: list[np.ndarray]) -> np.ndarray:
        """The weighted mean of the components' normalised scores (:func:`~vadlib.scoring.fuse`)."""
        total = sum(self.weights)
        return fuse([{"video": x} for x in parts], weights=[w / total for w in self.weights],
                    normalizers=self.normalizers())["video"]

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        parts, fired = self.part_scores(video)
        return self.combine(parts), fired
