"""Fusion of several detection methods' scores (``--method a+b``), on one scale fitted on normal
calibration footage."""

from __future__ import annotations

import numpy as np

from vadlib.detect.methods import DetectMethod
from vadlib.errors import ConfigError


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
        """Min/max of each component over the normal reference videos' frames."""
        self.norm = {}
        for i, m in enumerate(self.parts):
            x = np.concatenate([r[i] for r in reference])
            lo, hi = float(np.min(x)), float(np.max(x))
            self.norm[f"{i}:{m.name}"] = (lo, hi if hi > lo else lo + 1.0)
        return self.norm

    def combine(self, parts: list[np.ndarray]) -> np.ndarray:
        if self.norm is None:
            raise ConfigError("fusion needs normal calibration footage (--calibrate NORMAL…) or a threshold file "
                              "saved by an earlier fused calibration, to put the methods on one scale")
        out = np.zeros_like(parts[0])
        for (lo, hi), w, x in zip(self.norm.values(), self.weights, parts):
            out += w * (x - lo) / (hi - lo)
        return out / sum(self.weights)

    def frame_scores(self, video) -> tuple[np.ndarray, np.ndarray | None]:
        parts, fired = self.part_scores(video)
        return self.combine(parts), fired
