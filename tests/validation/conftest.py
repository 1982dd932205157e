"""A tiny training set whose every frame is unique (so a frame's source index can be recovered
from its pixels): a textured background, a bright square walking to and fro, and the frame index
written into the first two pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

H, W = 32, 48
LENGTHS = {"v0": 60, "v1": 70, "v2": 80}


def _make_video(n: int, seed: int) -> np.ndarray:
    """``(n, H, W, 3)`` uint8, grey (three equal channels), every frame distinct."""
    rng = np.random.default_rng(seed)
    bg = rng.integers(40, 120, (H, W), dtype=np.uint8)
    frames = np.repeat(bg[None], n, 0).copy()
    for t in range(n):
        x = (2 * t) % (2 * (W - 6))
        x = min(x, 2 * (W - 6) - x)  # walks right, turns, walks left: 2 px a frame, never jumps
        frames[t, 12:18, x:x + 6] = 230
        frames[t, 0, 0], frames[t, 0, 1] = t % 256, t // 256
    return np.repeat(frames[..., None], 3, -1)


@pytest.fixture(scope="session")
def train_root(tmp_path_factory) -> Path:
    """A manifest dataset: three training videos (frames folders, PNG) and one test video."""
    import cv2

    root = tmp_path_factory.mktemp("valsrc")
    entries = []
    for i, (name, n) in enumerate(LENGTHS.items()):
        d = root / "train" / name
        d.mkdir(parents=True)
        for t, f in enumerate(_make_video(n, i)):
            cv2.imwrite(str(d / f"{t:03d}.png"), f[..., 0])
        entries.append({"video_path": f"train/{name}", "anomaly": 0})
    d = root / "test" / "t0"
    d.mkdir(parents=True)
    for t, f in enumerate(_make_video(20, 9)):
        cv2.imwrite(str(d / f"{t:03d}.png"), f[..., 0])
    (root / "manifest.json").write_text(json.dumps({"train": {"s": entries},
                                                    "test": {"s": [{"video_path": "test/t0", "anomaly": 0}]}}))
    return root


@pytest.fixture()
def train_ds(train_root):
    from vadlib.data.manifest import manifest_dataset

    return manifest_dataset(train_root, name="tiny")


def _frame_ids(frames: np.ndarray) -> np.ndarray:
    """The frame index written into each frame's first two pixels."""
    return frames[:, 0, 0, 0].astype(np.int64) + 256 * frames[:, 0, 1, 0].astype(np.int64)


@pytest.fixture(scope="session")
def make_video():
    """``make_video(n, seed) -> (n, H, W, 3)`` uint8, every frame distinct."""
    return _make_video


@pytest.fixture(scope="session")
def frame_ids():
    """``frame_ids(frames) -> (T,)`` the source index written into each frame."""
    return _frame_ids
