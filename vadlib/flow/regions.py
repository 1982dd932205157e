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

**AI-VAD boxes** (``boxes: contours``; Reiss & Hoshen's ``pre_processing/bboxes.py`` recipe, written
here from its description in methods.md §6.1): detector boxes (area ≥ ``min_area``; a box covered
more than ``merge_cover`` by a larger one is dropped) ∪ *foreground* boxes: both frames blurred
(Gaussian ``blur``), ``|I_t − I_{t−1}| > diff_thresh``, the detector boxes (grown by ``pad``) blanked
out, the bounding rectangles of the external contours with ``(w+1)(h+1) > min_area`` and an aspect
ratio below ``max_aspect``, grown by ``pad``. No morphology, no merging: a contour is an object.

Object detectors (:data:`DETECTORS`, ``detector:``): ``hog`` / ``daimler`` are OpenCV's built-in
HOG people detectors (no weights to download; run on frames upscaled by ``det_upscale`` since
Ped2's people are ~20×45 px; SVM margin ≥ ``det_conf``; OpenCV ≥ 5 ships them only in
``opencv-contrib-python-headless``); any other value is the path of LOCAL torchvision Faster R-CNN
weights (score ≥ ``det_conf``). Without local weights a clear message is given once and the motion
boxes are used alone.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from vadlib.errors import ConfigError, WeightsUnavailableError
from vadlib.registry import Registry

#: box policies: ``(flow (H, W, 2), prev, cur (H, W) uint8 | None, cfg) -> (N, 4)`` boxes before padding/capping
BOX_POLICIES: Registry = Registry("region box policy")
#: built-in object detectors: ``(frame (H, W[, 3]) uint8, cfg) -> (N, 4)`` boxes; other values of
#: ``regions.detector`` are paths of local torchvision weights (:func:`detector_boxes`)
DETECTORS: Registry = Registry("object detector")


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
    detector: str | None = None  # "hog" | "daimler" (OpenCV HOG people detectors) | path to local weights
    det_conf: float = 0.5
    det_upscale: float = 1.0     # frames are upscaled by this before the detector
    boxes: str = "components"    # "components" (mask → morphology → components → merge) | "contours" (AI-VAD)
    max_aspect: float = 10.0     # contours: boxes with w/h or h/w >= this are dropped
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
        if self.boxes not in BOX_POLICIES:
            raise ConfigError(f"regions.boxes: unknown policy '{self.boxes}' (known: {', '.join(BOX_POLICIES.names())})")
        if self.det_upscale <= 0 or self.max_aspect <= 1:
            raise ConfigError(f"regions: need det_upscale > 0 and max_aspect > 1, got {self.det_upscale}, {self.max_aspect}")
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
            "fasterrcnn_resnet50_fpn state dict (nothing is downloaded); set regions.detector to its path, "
            f"to one of the built-in detectors ({', '.join(DETECTORS.names())}), or to null to use motion boxes only")
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


def _hog(kind: str):
    import cv2

    key = f"hog:{kind}"
    if key not in _DETECTORS:
        if not hasattr(cv2, "HOGDescriptor"):
            raise ConfigError(f"regions.detector: '{kind}' needs OpenCV's HOG people detector, which OpenCV "
                              f"{cv2.__version__} ships only in the contrib build: pip uninstall opencv-python-headless "
                              "&& pip install opencv-contrib-python-headless (same version), or set regions.detector "
                              "to null or to local torchvision weights")
        if kind == "hog":   # Dalal & Triggs, 64×128 window
            d = cv2.HOGDescriptor()
            d.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        else:               # Daimler, 48×96 window
            d = cv2.HOGDescriptor((48, 96), (16, 16), (8, 8), (8, 8), 9)
            d.setSVMDetector(cv2.HOGDescriptor_getDaimlerPeopleDetector())
        _DETECTORS[key] = d
    return _DETECTORS[key]


def hog_boxes(frame: np.ndarray, kind: str = "hog", upscale: float = 1.0, conf: float = 0.5) -> np.ndarray:
    """``(N, 4)`` int boxes (``x0, y0, x1, y1`` in ``frame``'s pixels) of OpenCV's HOG people detector
    ``kind`` (``hog`` | ``daimler``) run on ``frame`` ``(H, W[, 3])`` uint8 upscaled by ``upscale``;
    detections with SVM margin ``< conf`` are dropped."""
    import cv2

    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    if upscale != 1.0:
        g = cv2.resize(g, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_LINEAR)
    rects, weights = _hog(kind).detectMultiScale(g, winStride=(8, 8), padding=(8, 8), scale=1.1)
    if len(rects) == 0:
        return np.zeros((0, 4), np.int64)
    r = np.asarray(rects, np.float64).reshape(-1, 4)[np.ravel(weights) >= conf]
    b = np.stack([r[:, 0], r[:, 1], r[:, 0] + r[:, 2], r[:, 1] + r[:, 3]], 1) / upscale
    h, w = frame.shape[:2]
    b = np.round(b).astype(np.int64)
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h)
    return b[(b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])]


DETECTORS.register("hog")(lambda frame, cfg: hog_boxes(frame, "hog", cfg.det_upscale, cfg.det_conf))
DETECTORS.register("daimler")(lambda frame, cfg: hog_boxes(frame, "daimler", cfg.det_upscale, cfg.det_conf))


def object_boxes(frame: np.ndarray | None, cfg: RegionConfig) -> np.ndarray:
    """``(N, 4)`` detector boxes of ``frame`` under ``cfg.detector`` (none without a detector or frame;
    local weights that are missing: a warning once, then none)."""
    if cfg.detector is None or frame is None:
        return np.zeros((0, 4), np.int64)
    if cfg.detector in DETECTORS:
        return DETECTORS.get(cfg.detector)(frame, cfg)
    try:
        return detector_boxes(frame, cfg.detector, cfg.det_conf)
    except WeightsUnavailableError as exc:
        if cfg.detector not in _DETECTOR_WARNED:
            _DETECTOR_WARNED.add(cfg.detector)
            warnings.warn(f"{exc} — continuing with motion boxes only", stacklevel=2)
        return np.zeros((0, 4), np.int64)


def drop_covered(boxes: np.ndarray, min_area: int, cover: float) -> np.ndarray:
    """Boxes ``(N, 4)`` with ``(w+1)(h+1) >= min_area``, minus each box of which more than ``cover``
    of its area lies inside one larger box (AI-VAD's overlap filter of detector boxes)."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    b, area = b[area >= min_area], area[area >= min_area]
    order = np.argsort(area, kind="stable")
    keep = []
    for n, i in enumerate(order):
        j = order[n + 1:]
        iw = np.maximum(0, np.minimum(b[i, 2], b[j, 2]) - np.maximum(b[i, 0], b[j, 0]) + 1)
        ih = np.maximum(0, np.minimum(b[i, 3], b[j, 3]) - np.maximum(b[i, 1], b[j, 1]) + 1)
        if not np.any(iw * ih / area[i] > cover):
            keep.append(i)
    return b[sorted(keep)]


def foreground_boxes(prev: np.ndarray, cur: np.ndarray, cfg: RegionConfig,
                     exclude: np.ndarray | None = None) -> np.ndarray:
    """AI-VAD's foreground boxes ``(N, 4)`` (already grown by ``cfg.pad``) of gray frames ``(H, W)`` uint8:
    blurred difference ``> diff_thresh``, ``exclude`` boxes (grown by ``pad``) blanked, external contours'
    rectangles with ``(w+1)(h+1) > min_area`` and aspect ratio ``< max_aspect``."""
    import cv2

    k = cfg.blur | 1
    a, b = (cv2.GaussianBlur(x, (k, k), 0) if k > 1 else x for x in (prev, cur))
    m = (cv2.absdiff(a, b) > cfg.diff_thresh).astype(np.uint8)
    h, w = m.shape
    for x0, y0, x1, y1 in np.asarray(exclude if exclude is not None else [], np.int64).reshape(-1, 4):
        m[max(0, y0 - cfg.pad):min(y1 + cfg.pad, h) + 1, max(0, x0 - cfg.pad):min(x1 + cfg.pad, w) + 1] = 0
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        x, y, bw, bh = cv2.boundingRect(c)
        if (bw + 1) * (bh + 1) > cfg.min_area and bw / bh < cfg.max_aspect and bh / bw < cfg.max_aspect:
            out.append((max(0, x - cfg.pad), max(0, y - cfg.pad), min(x + bw + cfg.pad, w), min(y + bh + cfg.pad, h)))
    return np.asarray(out, np.int64).reshape(-1, 4)


@BOX_POLICIES.register("components")
def _component_policy(flow: np.ndarray, prev, cur, cfg: RegionConfig) -> np.ndarray:
    h, w = flow.shape[:2]
    boxes = mask_boxes(motion_mask(flow, prev, cur, cfg), cfg.min_area)
    det = object_boxes(cur, cfg)
    if len(det):
        boxes = np.concatenate([boxes, det[(det[:, 2] - det[:, 0]) * (det[:, 3] - det[:, 1]) >= cfg.min_area]])
    boxes = merge_boxes(boxes, cfg.merge_cover)
    if len(boxes):
        boxes[:, :2] = np.maximum(boxes[:, :2] - cfg.pad, 0)
        boxes[:, 2] = np.minimum(boxes[:, 2] + cfg.pad, w)
        boxes[:, 3] = np.minimum(boxes[:, 3] + cfg.pad, h)
    return boxes


@BOX_POLICIES.register("contours")
def _contour_policy(flow: np.ndarray, prev, cur, cfg: RegionConfig) -> np.ndarray:
    det = drop_covered(object_boxes(cur, cfg), cfg.min_area, cfg.merge_cover)
    if prev is None or cur is None:
        return det
    return np.concatenate([det, foreground_boxes(prev, cur, cfg, det)])


def propose_regions(flow: np.ndarray, prev: np.ndarray | None = None, cur: np.ndarray | None = None,
                    cfg: RegionConfig | None = None) -> np.ndarray:
    """Boxes ``(N, 4)`` int ``x0, y0, x1, y1`` of the moving regions of one frame.

    ``flow``: ``(H, W, 2)``; ``prev``/``cur``: ``(H, W)`` uint8 gray frames for differencing
    (optional). The ``cfg.boxes`` policy (:data:`BOX_POLICIES`), at most ``cfg.max_regions`` boxes
    (largest first); with ``cfg.window`` the grid windows of :func:`mask_windows` (no detector
    boxes, no merging, no cap).
    """
    cfg = cfg or RegionConfig()
    if cfg.window:
        return mask_windows(motion_mask(flow, prev, cur, cfg), cfg.window, cfg.window_stride, cfg.window_min_moving)
    boxes = BOX_POLICIES.get(cfg.boxes)(flow, prev, cur, cfg)
    if len(boxes):
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        boxes = boxes[np.argsort(-area, kind="stable")][: cfg.max_regions]
    return boxes
