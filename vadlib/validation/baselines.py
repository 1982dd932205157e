"""Training-free frame scorers, to check a validation set before any method is trained on it.

Each scorer maps a :class:`~vadlib.data.Video` to ``(T,)`` float scores (higher = more anomalous);
frame ``t`` is scored from the step ``t-1 → t`` (frame 0 copies frame 1's score), as the
``flow_nf`` stage indexes flow (``vadlib.flow.optical.frame_flow_index``).

* ``naive_flow``: the ``flow_nf`` stage's naive baseline: DIS optical flow (medium preset), mean of
  the top 1 % flow magnitudes of the frame.
* ``frame_diff``: mean of the top 1 % absolute grey-level differences to the previous frame.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from vadlib.registry import Registry

Scorer = Callable[..., np.ndarray]
SCORERS: Registry[Scorer] = Registry("validation baseline scorer")


def _top_mean(x: np.ndarray, frac: float) -> float:
    x = x.ravel()
    k = max(1, int(round(frac * x.size)))
    return float(np.partition(x, x.size - k)[-k:].mean())


@SCORERS.register("naive_flow")
def naive_flow(video, top: float = 0.01, preset: str = "medium") -> np.ndarray:
    """``(T,)`` mean of the top ``top`` fraction of DIS flow magnitudes into each frame."""
    from vadlib.flow.descriptors import top_magnitude
    from vadlib.flow.optical import FlowConfig, compute_flow, frame_flow_index, read_gray_video

    flow = compute_flow(read_gray_video(video), FlowConfig(preset=preset))
    per_step = np.array([top_magnitude(f, top) for f in flow])
    return per_step[frame_flow_index(len(flow) + 1)]


@SCORERS.register("frame_diff")
def frame_diff(video, top: float = 0.01) -> np.ndarray:
    """``(T,)`` mean of the top ``top`` fraction of absolute grey differences to the previous frame."""
    from vadlib.flow.optical import frame_flow_index, read_gray_video

    g = read_gray_video(video).astype(np.int16)
    per_step = np.array([_top_mean(np.abs(g[i + 1] - g[i]), top) for i in range(len(g) - 1)])
    return per_step[frame_flow_index(len(g))]


def score_videos(videos: Sequence, scorer: str, **options) -> Mapping[str, np.ndarray]:
    """``{video name: (T,) scores}`` of ``scorer`` (a :data:`SCORERS` name) on ``videos``."""
    fn = SCORERS.get(scorer)
    return {v.name: fn(v, **options) for v in videos}
