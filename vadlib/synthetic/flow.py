"""Synthetic frame-folder videos for flow tests and benchmarks: textured squares moving on a
static textured background (normal = slow, anomalous = one square turning fast). Not a
benchmark: the demo datasets (``vadlib.synthetic.demo`` renders them) are the pipeline's default data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from vadlib.data.base import Video, VideoDataset


def write_video(folder: Path, n: int = 16, size=(48, 64), speed: float = 1.0, fast_from: int | None = None,
                fast_speed: float = 4.0, seed: int = 0, squares: int = 2, sq: int = 10) -> Path:
    """Frames ``000.png``… of ``squares`` ``sq×sq`` textured squares moving right (px/frame)."""
    rng = np.random.default_rng(seed)
    h, w = size
    bg = cv2.GaussianBlur(rng.integers(0, 255, size).astype(np.uint8), (5, 5), 0)
    tex = cv2.GaussianBlur(rng.integers(0, 255, (sq, sq)).astype(np.uint8), (5, 5), 0)  # trackable texture
    folder.mkdir(parents=True, exist_ok=True)
    starts = [(int(rng.integers(2, h - sq - 2)), float(rng.integers(0, w // 3))) for _ in range(squares)]
    pos = [x for _, x in starts]
    for t in range(n):
        img = bg.copy()
        for k, (y, _) in enumerate(starts):
            x = int(round(pos[k])) % (w - sq - 2)
            img[y:y + sq, x:x + sq] = tex
            pos[k] += fast_speed if (fast_from is not None and t >= fast_from and k == 0) else speed
        cv2.imwrite(str(folder / f"{t:03d}.png"), img)
    return folder


def make_dataset(root: Path, name: str = "synth", size=(48, 64), n_train: int = 5, n_test: int = 2, n: int = 16,
                 seed: int = 0, speed: float = 1.0, fast_speed: float = 4.0, sq: int = 10) -> VideoDataset:
    """Frame-folder dataset: training videos with squares at ``speed`` px/frame; in each test video
    the first square moves at ``fast_speed`` from the middle on (those frames are labelled 1)."""
    train, test = [], []
    for i in range(n_train):
        d = write_video(root / name / "train" / f"{i:02d}", n=n, size=size, seed=seed + i, speed=speed, sq=sq)
        train.append(Video(name=f"{name}_tr{i}", path=d, split="train", label=0, num_frames=n, fps=10))
    for i in range(n_test):
        fast_from = n // 2
        d = write_video(root / name / "test" / f"{i:02d}", n=n, size=size, seed=seed + 100 + i, fast_from=fast_from,
                        speed=speed, fast_speed=fast_speed, sq=sq)
        lab = np.zeros(n, np.uint8)
        lab[fast_from + 1:] = 1
        test.append(Video(name=f"{name}_te{i}", path=d, split="test", label=1, frame_labels=lab,
                          frame_classes=lab.astype(np.int64), num_frames=n, fps=10))
    return VideoDataset(name=name, root=root / name, splits={"train": train, "test": test})

