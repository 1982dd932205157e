"""The object every method ends in: per video, a float score per frame and optionally
class probabilities per frame. Metrics, plots and reports only ever see this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from vadlib.errors import DataError
from vadlib.io import atomic_path


@dataclass
class VideoScores:
    """Per-frame output of a method for one video.

    Attributes:
        scores: ``(T,)`` float, higher = more anomalous.
        class_probs: ``(T, C)`` float or None; column 0 is ``normal``.
        fired: ``(T,)`` int index of the prompt/class that fired per frame, or None.
    """

    scores: np.ndarray
    class_probs: np.ndarray | None = None
    fired: np.ndarray | None = None


@dataclass
class Predictions:
    """``{video name: VideoScores}`` plus the protocol facts a figure needs.

    ``meta`` holds at least ``method``, ``dataset``, ``backbone``, ``real_weights`` when known.
    """

    videos: dict[str, VideoScores] = field(default_factory=dict)
    class_names: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> VideoScores:
        return self.videos[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.videos)

    def __len__(self) -> int:
        return len(self.videos)

    def scores(self) -> dict[str, np.ndarray]:
        return {k: v.scores for k, v in self.videos.items()}

    def save(self, path: str | Path) -> Path:
        """Write one ``.npz`` (atomically): ``scores/<video>``, ``probs/<video>``, ``fired/<video>``."""
        import json

        arrays: dict[str, np.ndarray] = {}
        for k, v in self.videos.items():
            arrays[f"scores/{k}"] = np.asarray(v.scores, np.float32)
            if v.class_probs is not None:
                arrays[f"probs/{k}"] = np.asarray(v.class_probs, np.float32)
            if v.fired is not None:
                arrays[f"fired/{k}"] = np.asarray(v.fired, np.int64)
        arrays["__meta__"] = np.array(json.dumps({"class_names": self.class_names, "meta": self.meta}, default=str))
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "Predictions":
        import json

        path = Path(path)
        if not path.is_file():
            raise DataError(path, "predictions file does not exist")
        try:
            z = np.load(path, allow_pickle=False)
        except Exception as exc:
            raise DataError(path, f"not a predictions .npz ({exc})") from exc
        info = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
        vids: dict[str, VideoScores] = {}
        for key in z.files:
            if key.startswith("scores/"):
                name = key[len("scores/"):]
                vids[name] = VideoScores(
                    scores=z[key],
                    class_probs=z[f"probs/{name}"] if f"probs/{name}" in z.files else None,
                    fired=z[f"fired/{name}"] if f"fired/{name}" in z.files else None,
                )
        return cls(videos=vids, class_names=info.get("class_names"), meta=info.get("meta", {}))
