"""The one video/dataset abstraction every adapter returns.

A :class:`VideoDataset` is a named list of :class:`Video` records per split. A video knows
where its frames are, its video-level label and class, and (test split) its per-frame
labels, per-frame class ids and, where a release has them, its pixel masks.
Class id 0 is always ``normal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vadlib.data.video import VideoSource, open_video
from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import DataError

NORMAL = "normal"


@dataclass
class Video:
    """One video of a dataset split.

    Attributes:
        name: unique within the dataset (used as the key of features and scores).
        path: a video file or a frames folder.
        split: ``"train"`` or ``"test"``.
        label: video-level label, 1 = contains an anomaly, 0 = normal, -1 = unknown.
        class_name: video-level class (``"normal"`` or an anomaly class), if known.
        frame_labels: ``(T,)`` uint8, 1 = anomalous frame (test videos; None if unknown).
        frame_classes: ``(T,)`` int64 class ids into the dataset's ``class_names`` (0 = normal).
        mask_loader: returns ``(T, H, W)`` bool pixel masks, where the release has them.
        num_frames: the frame count when known without opening the video.
        fps: frames per second (frames folders have none of their own).
        meta: anything release-specific (scene, source file, …).
        label_builder: for GT given as frame intervals of a video whose length is only known
            after decoding (UCF-Crime, XD-Violence): ``n_frames -> (frame_labels, frame_classes)``;
            :meth:`check_labels` calls it once the frame count is known.
    """

    name: str
    path: Path
    split: str
    label: int = -1
    class_name: str | None = None
    frame_labels: np.ndarray | None = None
    frame_classes: np.ndarray | None = None
    mask_loader: Callable[[], np.ndarray] | None = field(default=None, repr=False)
    num_frames: int | None = None
    fps: float = DEFAULT_FPS
    meta: dict = field(default_factory=dict)
    label_builder: Callable[[int], tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)

    def open(self) -> VideoSource:
        """Open the frames (decord for files, OpenCV for folders)."""
        return open_video(self.path, fps=self.fps)

    def masks(self) -> np.ndarray:
        """Pixel masks ``(T, H, W)`` bool; raises if the release has none for this video."""
        if self.mask_loader is None:
            raise DataError(self.path, f"video '{self.name}' has no pixel masks")
        return self.mask_loader()

    def check_labels(self, n_frames: int) -> None:
        """Raise if per-frame GT does not have exactly ``n_frames`` entries.

        Interval GT (``label_builder``) is turned into per-frame labels here, the first time
        the frame count is known; the builder raises if the intervals do not fit.
        """
        if self.frame_labels is None and self.label_builder is not None:
            self.frame_labels, self.frame_classes = self.label_builder(int(n_frames))
        for what, arr in (("frame labels", self.frame_labels), ("frame classes", self.frame_classes)):
            if arr is not None and len(arr) != n_frames:
                src = self.meta.get("gt_path", self.path)
                raise DataError(src, f"{what} of video '{self.name}' have {len(arr)} entries "
                                f"but the video has {n_frames} frames")


@dataclass
class VideoDataset:
    """A named benchmark: videos per split plus its class names and protocol facts.

    Attributes:
        name: registry name (``"demo_a"``, ``"ucsd_ped2"`` …).
        root: where the data lives.
        splits: ``{"train": [...], "test": [...]}``.
        class_names: index 0 is ``"normal"``; the rest are anomaly classes.
        descriptions: natural-language description per anomaly class (for prompts).
        gt_file: the file the frame-level GT was read from (reported beside every figure).
    """

    name: str
    root: Path
    splits: dict[str, list[Video]]
    class_names: list[str] = field(default_factory=lambda: [NORMAL, "anomaly"])
    descriptions: dict[str, str] = field(default_factory=dict)
    gt_file: str = ""
    meta: dict = field(default_factory=dict)

    def videos(self, split: str) -> list[Video]:
        """Videos of ``split``; an unknown split names the known ones."""
        if split not in self.splits:
            raise DataError(self.root, f"dataset '{self.name}' has no split '{split}' "
                            f"(has: {', '.join(self.splits)})")
        return self.splits[split]

    def video(self, name: str) -> Video:
        for vids in self.splits.values():
            for v in vids:
                if v.name == name:
                    return v
        raise DataError(self.root, f"dataset '{self.name}' has no video '{name}'")

    @property
    def anomaly_classes(self) -> list[str]:
        return [c for c in self.class_names if c != NORMAL]

    def frame_labels(self, split: str = "test") -> dict[str, np.ndarray]:
        """``{video name: (T,) uint8}`` for the videos of ``split`` that have frame GT."""
        return {v.name: v.frame_labels for v in self.videos(split) if v.frame_labels is not None}


def labels_from_ranges(n_frames: int, ranges: Sequence[tuple[int, int]], one_based: bool = True) -> np.ndarray:
    """Per-frame 0/1 labels from inclusive ``(start, end)`` ranges."""
    lab = np.zeros(n_frames, np.uint8)
    off = 1 if one_based else 0
    for s, e in ranges:
        lab[max(int(s) - off, 0):int(e) - off + 1] = 1
    return lab
