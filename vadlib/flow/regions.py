"""Moving-region proposals without downloaded weights (ONE policy for every feature type).

:func:`propose_regions` turns one frame's flow and/or the frame difference into boxes:
``mask = (|flow| > tau_mag  if use_flow) | (blur(|I_t - I_{t-1}|) > diff_thresh  if use_diff)``
→ morphological closing then opening → connected components → boxes with a minimum area →
boxes that overlap (intersection / smaller area >= ``merge_cover``) merged into their union → padded.

The defaults are Reiss & Hoshen's Ped2 motion boxes (blurred frame differences, threshold 18,
blur 3, minimum area 10², overlap cover 0.6; methods.md §6.1), without the flow-magnitude mask:
on Ped2 *training* frames the DIS flow field is spatially smooth, so ``|flow| > tau_mag`` joins
neighbouring walkers into group boxes, while the difference mask gives about one box per person
(checked by drawing the boxes on training frames; no test frame was looked at for this choice).
The flow-magnitude mask (``use_flow: true``) suits small synthetic scenes such as the demo.
Flow patches and velocity descriptors of a frame are computed on exactly these boxes.

**Windows** (``window > 0``): instead of one box per connected component, fixed ``window``×``window``
squares on a grid of step ``window_stride`` whose moving fraction (of the same motion mask) is at
least ``window_min_moving``. Every region then has the same size and native pixel scale, so the
speed of a region is not diluted by how loosely a component box fits its object, and a group of
walkers that the mask joins into one component still gives one window per body part. (Chosen for
UCSD Ped2 after the component boxes were found to merge neighbouring walkers and to dilute a
cyclist's speed with background; see README "Test-set evaluations".)

Object-detector boxes are an optional extra (:func:`detector_boxes`): they need local weights;
without them a clear message is given once and the motion boxes are used alone.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vadlib.errors import ConfigError, WeightsUnavailableError


@dataclass
class RegionConfig:
    """Region policy. Distances/areas are in (reference-size) pixels, ``tau_mag`` in px/frame."""

    tau_mag: float = 0.5
    use_flow: bool = False
    use_diff: bool = True
    diff_thresh: float = 18.0
    blur: int = 3
    close: int = 3
    open: int = 1
    min_area: int = 100
    merge_cover: float = 0.6
    pad: int = 2
    max_regions: int = 32        # component boxes only (largest first); windows are never capped
    detector: str | None = None  # path to local detector weights (optional)
    det_conf: float = 0.5
    window: int = 0              # > 0: fixed windows of this size on a grid instead of component boxes
    window_stride: int = 8
    window_min_moving: float = 0.25

    def __post_init__(self):
        if self.tau_mag < 0 or self.min_area < 1:
            raise ConfigError(f"regions: need tau_mag >= 0 and min_area >= 1, got {self.tau_mag}, {self.min_area}")
        if self.window < 0 or (self.window and self.window_stride < 1):
            raise ConfigError(f"regions: need window >= 0 and window_stride >= 1, got {self.window}, {self.window_stride}")
        if not 0 < self.window_min_moving <= 1:
            raise ConfigError(f"regions: window_min_moving must be in (0, 1], got {self.window_min_moving}")
        if not 0 < self.merge_cover <= 1:
            raise ConfigError(f"regions: merge_cover must be in (0, 1], got {self.merge_cover}")
        if not (self.use_flow or self.use_diff):
            raise ConfigError("regions: at least one of use_flow, use_diff must be true")

    def key(self) -> dict:
        return asdict(self)


def motion_mask(flow: np.ndarray, prev: np.ndarray | None, cur: np.ndarray | None, cfg: RegionConfig) -> np.ndarray:
    """``(H, W)`` bool mask of moving pixels from ``flow`` ``(H, W, 2)`` and gray frames ``(H, W)``."""
    import cv2

    if cfg.use_flow or prev is None or cur is None:
        mag = np.sqrt(flow[..., 0].astype(np.float32) ** 2 + flow[..., 1].astype(np.float32) ** 2)
        mask = mag > cfg.tau_mag
    else:
        mask = np.zeros(flow.shape[:2], bool)
    if cfg.use_diff and prev is not None and cur is not None:
        d = cv2.absdiff(prev, cur)
        if cfg.blur > 1:
            d = cv2.GaussianBlur(d, (cfg.blur | 1, cfg.blur | 1), 0)
        mask |= d > cfg.diff_thresh
    m = mask.astype(np.uint8)
    if cfg.close > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((cfg.close, cfg.close), np.uint8))
    if cfg.open > 1:
        m = cv2.morphologyEx(m, cv2.MORPH_OPEN, np.ones((cfg.open, cfg.open), np.uint8))
    return m.astype(bool)


def mask_boxes(mask: np.ndarray, min_area: int) -> np.ndarray:
    """Connected components of ``mask`` → ``(N, 4)`` int boxes ``x0, y0, x1, y1`` (exclusive ends)
    whose box area is at least ``min_area``."""
    import cv2

    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = [(x, y, x + w, y + h) for x, y, w, h, _a in stats[1:] if w * h >= min_area]
    return np.asarray(boxes, np.int64).reshape(-1, 4)


def merge_boxes(boxes: np.ndarray, cover: float) -> np.ndarray:
    """Repeatedly replace two boxes by their union when their intersection covers at least
    ``cover`` of the smaller box. ``(N, 4)`` → ``(M, 4)``, ``M <= N``."""
    b = [list(map(int, x)) for x in np.asarray(boxes).reshape(-1, 4)]
    changed = True
    while changed and len(b) > 1:
        changed = False
        for i in range(len(b)):
            for j in range(i + 1, len(b)):
                x0, y0 = max(b[i][0], b[j][0]), max(b[i][1], b[j][1])
                x1, y1 = min(b[i][2], b[j][2]), min(b[i][3], b[j][3])
                inter = max(0, x1 - x0) * max(0, y1 - y0)
                small = min((b[i][2] - b[i][0]) * (b[i][3] - b[i][1]), (b[j][2] - b[j][0]) * (b[j][3] - b[j][1]))
                if small > 0 and inter / small >= cover:
                    b[i] = [min(b[i][0], b[j][0]), min(b[i][1], b[j][1]), max(b[i][2], b[j][2]), max(b[i][3], b[j][3])]
                    del b[j]
                    changed = True
                    break
            if changed:
                break
    return np.asarray(b, np.int64).reshape(-1, 4)


def mask_windows(mask: np.ndarray, size: int, stride: int, min_moving: float) -> np.ndarray:
    """``(N, 4)`` int boxes of the ``size``×``size`` windows on a grid of step ``stride`` (from the
    top-left corner) in which at least ``min_moving`` of the pixels of ``mask`` are set."""
    import cv2

    h, w = mask.shape
    if h < size or w < size:
        return np.zeros((0, 4), np.int64)
    ii = cv2.integral(mask.astype(np.uint8)).astype(np.int64)  # (h+1, w+1)
    ys = np.arange(0, h - size + 1, stride)
    xs = np.arange(0, w - size + 1, stride)
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    moving = ii[yy + size, xx + size] - ii[yy, xx + size] - ii[yy + size, xx] + ii[yy, xx]
    keep = moving >= min_moving * size * size
    y0, x0 = yy[keep], xx[keep]
    return np.stack([x0, y0, x0 + size, y0 + size], 1).astype(np.int64).reshape(-1, 4)


_DETECTOR_WARNED: set = set()


def detector_boxes(frame: np.ndarray, weights: str | Path | None, conf: float = 0.5) -> np.ndarray:
    """Boxes ``(N, 4)`` of a torchvision Faster R-CNN whose weights are a LOCAL file.

    Raises :class:`WeightsUnavailableError` with a clear message when ``weights`` is not a
    local file (nothing is downloaded).
    """
    if weights is None or not Path(weights).is_file():
        raise WeightsUnavailableError(
            f"detector weights not found at {weights!r}: object-detector boxes need a local torchvision "
            "fasterrcnn_resnet50_fpn state dict (nothing is downloaded); set regions.detector to its path "
            "or to null to use motion boxes only")
    import torch
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    model = _DETECTORS.get(str(weights))
    if model is None:
        model = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
        model.eval()
        _DETECTORS[str(weights)] = model
    img = torch.from_numpy(np.repeat(frame[..., None], 3, -1) if frame.ndim == 2 else frame).permute(2, 0, 1).float() / 255
    with torch.no_grad():
        out = model([img])[0]
    keep = out["scores"] >= conf
    return out["boxes"][keep].round().long().numpy().reshape(-1, 4)


_DETECTORS: dict = {}


def propose_regions(flow: np.ndarray, prev: np.ndarray | None = None, cur: np.ndarray | None = None,
                    cfg: RegionConfig | None = None) -> np.ndarray:
    """Boxes ``(N, 4)`` int ``x0, y0, x1, y1`` of the moving regions of one frame.

    ``flow``: ``(H, W, 2)``; ``prev``/``cur``: ``(H, W)`` uint8 gray frames for differencing
    (optional). At most ``cfg.max_regions`` component boxes (largest first); with ``cfg.window``
    the grid windows of :func:`mask_windows` (no detector boxes, no merging, no cap).
    """
    cfg = cfg or RegionConfig()
    h, w = flow.shape[:2]
    if cfg.window:
        return mask_windows(motion_mask(flow, prev, cur, cfg), cfg.window, cfg.window_stride, cfg.window_min_moving)
    boxes = mask_boxes(motion_mask(flow, prev, cur, cfg), cfg.min_area)
    if cfg.detector is not None and cur is not None:
        try:
            det = detector_boxes(cur, cfg.detector, cfg.det_conf)
            boxes = np.concatenate([boxes, det[(det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1]) >= cfg.min_area]])
        except WeightsUnavailableError as exc:
            if cfg.detector not in _DETECTOR_WARNED:
                _DETECTOR_WARNED.add(cfg.detector)
                warnings.warn(f"{exc} — continuing with motion boxes only", stacklevel=2)
    boxes = merge_boxes(boxes, cfg.merge_cover)
    if len(boxes):
        boxes[:, :2] = np.maximum(boxes[:, :2] - cfg.pad, 0)
        boxes[:, 2] = np.minimum(boxes[:, 2] + cfg.pad, w)
        boxes[:, 3] = np.minimum(boxes[:, 3] + cfg.pad, h)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[np.argsort(-area, kind="stable")][: cfg.max_regions]
    return boxes
