"""Per-region features: flow patches, velocity histograms, and pose vectors.

* :func:`flow_patch` — the flow inside a box resized to ``size×size``; displacements are
  multiplied by the resize factor (``u·size/w``, ``v·size/h``) so the patch is a geometrically
  consistent flow field; optionally a stack of ``stack`` consecutive flow fields
  (channels ``2·stack``, oldest first).
* :func:`velocity_descriptor` — Reiss & Hoshen's velocity: L1 magnitude ``|u|+|v|``, orientation
  from ``cv2.cartToPolar`` in ``bins`` bins over 0–360°; bin value = sum of the magnitudes whose
  orientation falls in the bin divided by the number of pixels of the box (box-averaged,
  magnitude-weighted histogram; ``bins=1`` = mean L1 speed, their Ped2 setting). Computed on the
  native-resolution crop, no resize (the reference resizes the crop to 224×224 first; that and
  its other deviations are keywords, named as switches in :mod:`vadlib.compat.aivad`).
* :func:`load_pose` — per-frame, per-object 34-d keypoint vectors of a ``*_pose.npz`` file
  (UCSD Ped2's, see its README): they come WITHOUT boxes, so pose objects cannot be matched to
  motion regions; the pose score of a frame is the max over that file's objects of the frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vadlib.errors import ConfigError, DataError


def flow_patch(flows: np.ndarray, index: int, box: Sequence[int], size: int = 16, stack: int = 1,
               rescale: bool = True) -> np.ndarray:
    """``(2·stack, size, size)`` float32 patch of ``flows[index-stack+1 .. index]`` inside ``box``.

    ``flows``: ``(F, H, W, 2)``; indices before 0 are clamped to 0. ``box`` = ``x0, y0, x1, y1``.
    """
    import cv2

    x0, y0, x1, y1 = (int(b) for b in box)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ConfigError(f"empty box {tuple(box)}")
    if stack < 1 or size < 2:
        raise ConfigError(f"flow patches need stack >= 1 and size >= 2, got stack={stack}, size={size}")
    out = np.empty((2 * stack, size, size), np.float32)
    for k, i in enumerate(range(index - stack + 1, index + 1)):
        crop = np.asarray(flows[max(i, 0), y0:y1, x0:x1], np.float32)
        r = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if min(w, h) > size else cv2.INTER_LINEAR)
        if rescale:
            r[..., 0] *= size / w
            r[..., 1] *= size / h
        out[2 * k:2 * k + 2] = r.transpose(2, 0, 1)
    return out


BOX_ROUNDING = ("floor", "ceil")
ORIENTATIONS = ("degrees", "radians")


def _round_box(box: Sequence[float], rounding: str) -> tuple[int, int, int, int]:
    if rounding not in BOX_ROUNDING:
        raise ConfigError(f"unknown box rounding '{rounding}' (known: {', '.join(BOX_ROUNDING)})")
    f = np.floor if rounding == "floor" else np.ceil
    return tuple(int(f(float(b))) for b in box)


def velocity_descriptor(flow: np.ndarray, box: Sequence[float], bins: int = 1, *, scale: float = 1.0,
                        crop_size: int | None = None, box_rounding: str = "floor",
                        orientation: str = "degrees") -> np.ndarray:
    """``(bins,)`` float32 magnitude-weighted orientation histogram of ``flow`` ``(H, W, 2)`` in ``box``
    (``x0, y0, x1, y1``; ``None`` = the whole frame).

    Args:
        scale: magnitudes are divided by it (Reiss & Hoshen on ShanghaiTech: a person box's height,
            for perspective; 1 elsewhere).
        crop_size: None (vadlib) = the native-resolution crop; ``n`` = the crop resized to ``n×n``
            with ``cv2.INTER_LINEAR`` first, displacements not rescaled (the reference: 224).
        box_rounding: ``"floor"`` (vadlib) or ``"ceil"`` (the reference's ``np.ceil`` of each corner).
        orientation: ``"degrees"`` (vadlib: ``cartToPolar`` in degrees, an angle at 360° goes to
            the last bin) or ``"radians"`` (the reference: radians × 180/π in float32, bins
            ``[360·i/B, 360·(i+1)/B)``, so an angle that rounds to 360° is counted in no bin).
    """
    import cv2

    if bins < 1:
        raise ConfigError(f"velocity bins must be >= 1, got {bins}")
    if orientation not in ORIENTATIONS:
        raise ConfigError(f"unknown orientation '{orientation}' (known: {', '.join(ORIENTATIONS)})")
    if box is None:
        crop = np.asarray(flow, np.float32)
    else:
        x0, y0, x1, y1 = _round_box(box, box_rounding)
        crop = np.asarray(flow[max(y0, 0):y1, max(x0, 0):x1], np.float32)
    if crop.size == 0:
        raise ConfigError(f"empty box {tuple(box)}")
    if crop_size:
        crop = cv2.resize(crop, (int(crop_size), int(crop_size)))
    u, v = np.ascontiguousarray(crop[..., 0]), np.ascontiguousarray(crop[..., 1])
    mag = np.abs(u) + np.abs(v)
    if scale != 1.0:
        mag = mag / scale
    if orientation == "degrees":
        _, ang = cv2.cartToPolar(u, v, angleInDegrees=True)
        b = np.minimum((ang / (360.0 / bins)).astype(np.int64), bins - 1)
        hist = np.bincount(b.ravel(), weights=mag.ravel(), minlength=bins)
    else:
        _, ang = cv2.cartToPolar(u, v)
        ang *= 180 / np.pi
        hist = np.array([mag[(ang >= 360 / bins * i) & (ang < 360 / bins * (i + 1))].sum(dtype=np.float64)
                         for i in range(bins)])
    return (hist / mag.size).astype(np.float32)


def top_magnitude(flow: np.ndarray, frac: float = 0.01) -> float:
    """Naive frame score: mean of the top ``frac`` of the L2 flow magnitudes of ``(H, W, 2)``."""
    mag = np.sqrt((np.asarray(flow, np.float32) ** 2).sum(-1)).ravel()
    k = max(1, int(round(frac * mag.size)))
    return float(np.partition(mag, mag.size - k)[-k:].mean())


# ----------------------------------------------------------------------------------------------
# pose
# ----------------------------------------------------------------------------------------------

POSE_DIM = 34


def load_pose(path: str | Path, videos: Sequence) -> dict[str, list[np.ndarray]]:
    """``{video name: [ (n_objects, 34) float32 per frame ]}`` from a pose ``.npz``.

    The file holds ``keypoints (N, 34)``, ``frame_offsets (F+1,)``, ``video (F,)`` (1-based
    number, the i-th video of the split in order) and ``frame (F,)`` (0-based frame index).
    Raises :class:`DataError` naming the file when it does not match ``videos``: a different
    number of videos, a video whose frame count differs, frames out of order, bad offsets.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pose file does not exist")
    try:
        z = np.load(path)
        kp, off, vid, fr = (np.asarray(z[k]) for k in ("keypoints", "frame_offsets", "video", "frame"))
    except KeyError as exc:
        raise DataError(path, f"pose file lacks array {exc} (needs keypoints, frame_offsets, video, frame)") from None
    except Exception as exc:
        raise DataError(path, f"pose file is unreadable ({exc})") from exc
    if kp.ndim != 2 or kp.shape[1] != POSE_DIM:
        raise DataError(path, f"keypoints must be (N, {POSE_DIM}), got {kp.shape}")
    if off.shape != (len(vid) + 1,) or len(fr) != len(vid) or off[0] != 0 or off[-1] != len(kp) or np.any(np.diff(off) < 0):
        raise DataError(path, f"inconsistent frame_offsets {off.shape} / video {vid.shape} / frame {fr.shape} "
                        f"for {len(kp)} keypoint rows")
    numbers = list(dict.fromkeys(vid.tolist()))
    if len(numbers) != len(videos):
        raise DataError(path, f"pose file covers {len(numbers)} videos but the split has {len(videos)}")
    out: dict[str, list[np.ndarray]] = {}
    for num, v in zip(numbers, videos):
        rows = np.flatnonzero(vid == num)
        n = v.num_frames if v.num_frames is not None else len(v.open())
        if len(rows) != n or not np.array_equal(fr[rows], np.arange(n)):
            raise DataError(path, f"pose entries of video #{num} do not match the frames of '{v.name}' "
                            f"({len(rows)} pose frames, video has {n}; frame indices must be 0..{n - 1} in order)")
        out[v.name] = [kp[off[r]:off[r + 1]].astype(np.float32) for r in rows]
    return out


def normalize_pose(kp: np.ndarray, mode: str = "center_scale") -> np.ndarray:
    """``(N, 34)`` → ``(N, 34)``. ``none``; ``center`` subtracts each object's mean (x, y);
    ``center_scale`` also divides by the object's std of y (STG-NF-style scale invariance)."""
    kp = np.asarray(kp, np.float32).reshape(-1, 17, 2)
    if mode == "none":
        return kp.reshape(-1, POSE_DIM)
    if mode not in ("center", "center_scale"):
        raise ConfigError(f"unknown pose normalisation '{mode}' (known: none, center, center_scale)")
    kp = kp - kp.mean(1, keepdims=True)
    if mode == "center_scale":
        kp = kp / (kp[..., 1].std(1)[:, None, None] + 1e-3)
    return kp.reshape(-1, POSE_DIM)
