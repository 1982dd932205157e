"""Datasets: one abstraction (:class:`Video`, :class:`VideoDataset`), a registry of named
adapters, and readers for video files (decord) and frames folders."""

from vadlib.data.base import NORMAL, Video, VideoDataset, labels_from_ranges
from vadlib.data.registry import DATASETS, get_dataset, list_datasets, register_dataset
from vadlib.data.video import DEFAULT_FPS, FrameFolder, VideoFile, iter_batches, open_video

# Importing the adapter modules registers them.
from vadlib.data import ucsd  # noqa: E402,F401
from vadlib.data import avenue, demo, manifest, shanghaitech, ucfcrime, xdviolence  # noqa: E402,F401
from vadlib.data import pseudo_anomalies  # noqa: E402,F401

__all__ = [
    "NORMAL", "Video", "VideoDataset", "labels_from_ranges", "DATASETS", "get_dataset",
    "list_datasets", "register_dataset", "FrameFolder", "VideoFile", "iter_batches", "open_video", "DEFAULT_FPS",
]
