"""Tiny generated videos (frame folders and mp4 files) for the feature tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_frames(folder: Path, n: int, h: int = 48, w: int = 80, seed: int = 0, ext: str = ".png") -> Path:
    """A frames folder of ``n`` smooth random RGB images (smooth so resizing is well behaved)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for t in range(n):
        small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        cv2.imwrite(str(folder / f"{t:04d}{ext}"), img)
    return folder


def write_mp4(path: Path, n: int, h: int = 48, w: int = 80, seed: int = 0) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (w, h))
    for _ in range(n):
        small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
        vw.write(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    vw.release()
    return path


@pytest.fixture
def gen():
    """The generators: ``gen.frames(folder, n, ...)``, ``gen.mp4(path, n, ...)``."""
    import types

    return types.SimpleNamespace(frames=write_frames, mp4=write_mp4)


@pytest.fixture
def toy_dataset(tmp_path):
    """3 videos: two frame folders (test, one anomalous with frame GT) and one mp4 (train)."""
    from vadlib.data.base import Video, VideoDataset

    root = tmp_path / "toy"
    a = Video(name="a", path=write_frames(root / "a", 11, seed=1), split="test", label=1,
              frame_labels=np.r_[np.zeros(5), np.ones(6)].astype(np.uint8))
    b = Video(name="b", path=write_frames(root / "b", 7, seed=2), split="test", label=0,
              frame_labels=np.zeros(7, np.uint8))
    m = Video(name="m", path=write_mp4(root / "m.mp4", 13, seed=3), split="train", label=0)
    return VideoDataset(name="toy", root=root, splits={"train": [m], "test": [a, b]})
