"""A planted search collection whose truth is known: noise feature rows with events of each class
moved towards that class's text direction (for ``python -m vadlib.bench search`` and the tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ArrayStore:
    """A feature store stand-in over arrays: ``load(name)`` → ``(N, D)``, ``frame_index(name)`` → rows × step."""

    def __init__(self, feats: dict[str, np.ndarray], step: int):
        self.feats, self.step = feats, int(step)

    def load(self, name: str) -> np.ndarray:
        return self.feats[name]

    def frame_index(self, name: str) -> np.ndarray:
        return np.arange(len(self.feats[name])) * self.step


def planted_collection(text: np.ndarray, n_videos: int = 30, rows: int = 200, step: int = 8, seed: int = 0,
                       strength: tuple[float, float] = (0.15, 0.6)):
    """Features whose truth is known: noise rows, plus events (5–15 rows) of each class where the rows
    move towards that class's text direction ``text[c]`` by a random strength. Returns
    ``(store, videos, events)`` with ``events = [(video, class, first_frame, end_frame)]``."""
    from vadlib.data import Video

    rng = np.random.default_rng(seed)
    d = text.shape[1]
    feats, events = {}, []
    for i in range(n_videos):
        f = rng.normal(size=(rows, d)).astype(np.float32)
        for _ in range(int(rng.integers(0, 3))):
            c = int(rng.integers(len(text)))
            a = int(rng.integers(0, rows - 15))
            n = int(rng.integers(5, 16))
            f[a:a + n] += float(rng.uniform(*strength)) * np.sqrt(d) * text[c]
            events.append((f"v{i:02d}", c, a * step, (a + n) * step))
        feats[f"v{i:02d}"] = f
    videos = [Video(name=k, path=Path(k), split="planted", fps=25.0) for k in feats]
    return ArrayStore(feats, step), videos, events
