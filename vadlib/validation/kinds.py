"""The kinds of pseudo-anomaly, each made from normal footage with its truth known by construction.

A kind is a function ``kind(frames, rng, *, span, donor=None, **options) -> PseudoVideo`` that
plants ONE event in a normal video (methods.md §9: skip-frame and patch pseudo-anomalies of Astrid
et al., plus reversed and frozen playback). It is looked up by name in :data:`KINDS`.

Every output frame ``t`` shows the source frame ``source[t]`` (before any pasting). The truth is
defined on that index, so it is exact and checkable:

* **temporal kinds** (``skip``, ``reverse``, ``freeze``) only re-order source frames. Frame ``t``
  is anomalous iff the step into it is not one normal frame forward:
  ``label[t] = source[t] - source[t-1] != 1`` (``label[0] = 0``). Each kind builds ``source`` so
  that the unnatural steps are exactly the ``L`` frames of its span: the step into the first
  span frame is already unnatural and the step out of the span is natural again.
* **spatial kinds** (``patch``, ``object``) keep ``source = arange(T)`` and paste pixels from a
  ``donor`` video along a straight path; ``label[t] = 1`` iff frame ``t``'s pixels differ from
  the source frame's (computed from the pixels, so a pasted pixel equal to the original does not
  count, and an empty object mask leaves a normal frame).

Span lengths ``L`` are drawn uniformly from ``span=(lo, hi)`` (inclusive), positions uniformly
from those that fit with ``margin`` normal frames before and after; a video too short for the
shortest span raises :class:`~vadlib.errors.DataError` naming it and the length it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from vadlib.errors import ConfigError, DataError
from vadlib.registry import Registry


@dataclass
class PseudoVideo:
    """One video with a planted pseudo-anomaly.

    Attributes:
        frames: ``(T', H, W, 3)`` uint8 RGB, the output video.
        labels: ``(T',)`` uint8, 1 = the frame belongs to the pseudo-anomaly.
        source: ``(T',)`` int64, the index of the source frame each output frame shows.
        events: JSON-able records of what was planted (kind, span ``[start, end)`` in output
            frames, and the kind's drawn parameters).
    """

    frames: np.ndarray
    labels: np.ndarray
    source: np.ndarray
    events: list[dict] = field(default_factory=list)


class KindFn(Protocol):
    def __call__(self, frames: np.ndarray, rng: np.random.Generator, *, span: tuple[int, int] = ...,
                 margin: int = ..., donor: np.ndarray | None = ..., **options) -> PseudoVideo: ...


KINDS: Registry[KindFn] = Registry("pseudo-anomaly kind")
#: kinds that paste pixels from a donor video (the others only re-order frames)
SPATIAL = ("patch", "object")
DEFAULT_SPAN = (16, 40)
DEFAULT_MARGIN = 8


def register_kind(name: str) -> Callable[[KindFn], KindFn]:
    """Decorator registering a pseudo-anomaly kind under ``name``."""
    return KINDS.register(name)


def temporal_labels(source: np.ndarray) -> np.ndarray:
    """``(T,)`` uint8: 1 where the step from the previous frame is not exactly one source frame forward."""
    source = np.asarray(source, np.int64)
    lab = np.zeros(source.size, np.uint8)
    if source.size > 1:
        lab[1:] = np.diff(source) != 1
    return lab


def _check_span(span: tuple[int, int], margin: int) -> tuple[int, int]:
    try:
        lo, hi = (int(x) for x in span)
    except (TypeError, ValueError):
        raise ConfigError(f"span must be two integers (min, max frames), got {span!r}") from None
    if not 1 <= lo <= hi:
        raise ConfigError(f"span must satisfy 1 <= min <= max, got {span!r}")
    if margin < 1:
        raise ConfigError(f"margin must be >= 1 normal frame before and after the span, got {margin}")
    return lo, hi


def _draw_span(rng: np.random.Generator, n_frames: int, span: tuple[int, int], margin: int,
               need: Callable[[int], int], kind: str) -> tuple[int, int]:
    """Draw a length ``L`` in ``span`` and a start ``s`` in the output video.

    ``need(L)`` is the number of source frames the event consumes from ``s`` on (beyond the frame
    before it), so it fits iff ``margin <= s`` and ``s + need(L) + margin <= n_frames``.
    """
    lo, hi = _check_span(span, margin)
    fits = [L for L in range(lo, hi + 1) if 2 * margin + need(L) <= n_frames]
    if not fits:
        raise DataError(None, f"pseudo-anomaly '{kind}': the video has {n_frames} frames but a span of "
                        f"{lo} frames needs {2 * margin + need(lo)} ({margin} normal frames before and after); "
                        "use a shorter span/margin or longer videos")
    L = int(rng.choice(fits))
    s = int(rng.integers(margin, n_frames - need(L) - margin + 1))
    return s, L


def _temporal(frames: np.ndarray, source: np.ndarray, event: dict) -> PseudoVideo:
    return PseudoVideo(frames=frames[source], labels=temporal_labels(source), source=source, events=[event])


def _as_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise DataError(None, f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    return frames


@register_kind("skip")
def skip(frames: np.ndarray, rng: np.random.Generator, *, span: tuple[int, int] = DEFAULT_SPAN,
         margin: int = DEFAULT_MARGIN, factor: tuple[int, int] = (2, 4), donor: np.ndarray | None = None) -> PseudoVideo:
    """Frame skipping: over ``L`` output frames the video plays ``k`` times too fast.

    ``k`` is drawn uniformly from ``factor=(lo, hi)`` (inclusive, ``lo >= 2``). Output frame
    ``s + j`` shows source frame ``s - 1 + k (j + 1)`` for ``j < L``; afterwards the video goes on at
    normal speed from there, so it is ``(k - 1) L`` frames shorter than its source.

    Args:
        frames: ``(T, H, W, 3)`` uint8. rng: the event's generator.
    Returns: a :class:`PseudoVideo` of ``T - (k - 1) L`` frames with ``L`` anomalous ones.
    """
    frames = _as_frames(frames)
    f_lo, f_hi = (int(x) for x in factor)
    if not 2 <= f_lo <= f_hi:
        raise ConfigError(f"skip: factor must satisfy 2 <= min <= max, got {factor!r}")
    k = int(rng.integers(f_lo, f_hi + 1))
    s, L = _draw_span(rng, len(frames), span, margin, lambda L: k * L, "skip")
    src = np.concatenate([np.arange(s), s - 1 + k * np.arange(1, L + 1), np.arange(s + k * L, len(frames))])
    return _temporal(frames, src, {"kind": "skip", "start": s, "end": s + L, "factor": k,
                                   "source_start": s, "source_end": s + k * L})


@register_kind("reverse")
def reverse(frames: np.ndarray, rng: np.random.Generator, *, span: tuple[int, int] = DEFAULT_SPAN,
            margin: int = DEFAULT_MARGIN, donor: np.ndarray | None = None) -> PseudoVideo:
    """Reversed playback: at output frame ``s`` the video turns round and plays ``L`` frames
    backwards, then forwards again from where the reversal ended (so the reversed stretch is
    replayed forwards; the output is ``2 L`` frames longer than its source).

    Output frame ``s + j`` shows source frame ``s - 2 - j`` for ``j < L``.
    """
    frames = _as_frames(frames)
    # the reversal needs L + 1 source frames before s: s - 2 - (L - 1) >= 0
    lo, hi = _check_span(span, margin)
    T = len(frames)
    fits = [L for L in range(lo, hi + 1) if max(margin, L + 1) + margin <= T]
    if not fits:
        raise DataError(None, f"pseudo-anomaly 'reverse': the video has {T} frames but a span of {lo} frames "
                        f"needs {max(margin, lo + 1) + margin}; use a shorter span/margin or longer videos")
    L = int(rng.choice(fits))
    s = int(rng.integers(max(margin, L + 1), T - margin + 1))
    src = np.concatenate([np.arange(s), s - 2 - np.arange(L), np.arange(s - L, T)])
    return _temporal(frames, src, {"kind": "reverse", "start": s, "end": s + L,
                                   "source_start": s - 1 - L, "source_end": s - 1})


@register_kind("freeze")
def freeze(frames: np.ndarray, rng: np.random.Generator, *, span: tuple[int, int] = DEFAULT_SPAN,
           margin: int = DEFAULT_MARGIN, donor: np.ndarray | None = None) -> PseudoVideo:
    """Frozen playback: output frames ``s … s + L - 1`` repeat source frame ``s - 1``, then the video
    resumes at source frame ``s`` (the output is ``L`` frames longer than its source)."""
    frames = _as_frames(frames)
    # the span must fit in the source (as for the other kinds), though a freeze consumes no frames
    s, L = _draw_span(rng, len(frames), span, margin, lambda L: L, "freeze")
    src = np.concatenate([np.arange(s), np.full(L, s - 1), np.arange(s, len(frames))])
    return _temporal(frames, src, {"kind": "freeze", "start": s, "end": s + L, "source_frame": s - 1})


# ----------------------------------------------------------------------------- spatial kinds


def _motion_mask(donor: np.ndarray, t: np.ndarray, box: tuple[int, int, int, int], threshold: float) -> np.ndarray:
    """``(len(t), h, w)`` bool: donor pixels of ``box`` that differ from the donor's temporal median
    (the moving foreground), dilated by 2 px."""
    import cv2

    y0, x0, h, w = box
    gray = donor[..., y0:y0 + h, x0:x0 + w, :].astype(np.float32).mean(-1)
    bg = np.median(gray, axis=0)
    kernel = np.ones((5, 5), np.uint8)
    return np.stack([cv2.dilate((np.abs(gray[i] - bg) > threshold).astype(np.uint8), kernel) > 0 for i in t])


def _most_moving_box(donor: np.ndarray, size: tuple[int, int], rng: np.random.Generator,
                     candidates: int = 64) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the ``size`` window with the most frame-difference energy among
    ``candidates`` random windows of the donor."""
    H, W = donor.shape[1:3]
    h, w = size
    energy = np.abs(np.diff(donor.astype(np.int16).mean(-1), axis=0)).mean(0)
    ys = rng.integers(0, H - h + 1, candidates)
    xs = rng.integers(0, W - w + 1, candidates)
    integ = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    e = integ[ys + h, xs + w] - integ[ys, xs + w] - integ[ys + h, xs] + integ[ys, xs]
    i = int(np.argmax(e))
    return int(ys[i]), int(xs[i])


def _path(rng: np.random.Generator, L: int, size: tuple[int, int], frame: tuple[int, int],
          speed: tuple[float, float]) -> tuple[np.ndarray, float, float]:
    """``(L, 2)`` int top-left corners ``(y, x)`` of a straight path at constant speed inside the frame.

    Speed (px/frame) is drawn from ``speed``, direction uniformly; a path that cannot fit at that
    speed is slowed to the fastest that fits."""
    H, W = frame
    h, w = size
    v = float(rng.uniform(*speed))
    ang = float(rng.uniform(0, 2 * np.pi))
    dy, dx = np.sin(ang), np.cos(ang)
    steps = max(L - 1, 1)
    room = [(H - h) / max(abs(dy) * steps, 1e-9), (W - w) / max(abs(dx) * steps, 1e-9)]
    v = min(v, *room)
    Dy, Dx = dy * v * steps, dx * v * steps
    ylo, xlo = max(0.0, -Dy), max(0.0, -Dx)
    y0 = rng.uniform(ylo, max(ylo, min(H - h, H - h - Dy)))  # max(): float rounding at a full-height path
    x0 = rng.uniform(xlo, max(xlo, min(W - w, W - w - Dx)))
    f = np.arange(L) / steps
    pos = np.stack([np.round(y0 + f * Dy), np.round(x0 + f * Dx)], 1).astype(np.int64)
    pos[:, 0] = np.clip(pos[:, 0], 0, H - h)
    pos[:, 1] = np.clip(pos[:, 1], 0, W - w)
    return pos, v, float(np.degrees(ang))


def _paste(frames: np.ndarray, rng: np.random.Generator, span, margin, donor, size, speed, masked: bool,
           threshold: float, kind: str) -> PseudoVideo:
    frames = _as_frames(frames)
    if donor is None:
        raise ConfigError(f"pseudo-anomaly '{kind}' pastes from a donor video; give one (make_validation_set "
                          "uses another of the chosen videos, or `donors=`)")
    donor = _as_frames(donor)
    T, H, W = frames.shape[:3]
    if donor.shape[1:3] != (H, W):
        raise DataError(None, f"pseudo-anomaly '{kind}': donor frames are {donor.shape[1:3]}, the video's {(H, W)}")
    s_lo, s_hi = (float(x) for x in size)
    if not 0 < s_lo <= s_hi <= 1:
        raise ConfigError(f"{kind}: size must be fractions of the frame height with 0 < min <= max <= 1, got {size!r}")
    v_lo, v_hi = (float(x) for x in speed)
    if not 0 <= v_lo <= v_hi:
        raise ConfigError(f"{kind}: speed must satisfy 0 <= min <= max (px/frame), got {speed!r}")
    s, L = _draw_span(rng, T, span, margin, lambda L: L, kind)
    if len(donor) < L:
        raise DataError(None, f"pseudo-anomaly '{kind}': the donor video has {len(donor)} frames, the span {L}")
    h = max(2, int(round(rng.uniform(s_lo, s_hi) * H)))
    w = max(2, min(W, int(round(h * rng.uniform(0.5, 1.0)))))  # upright boxes, like people and bikes
    h = min(h, H)
    d0 = int(rng.integers(0, len(donor) - L + 1))
    dt = np.arange(d0, d0 + L)
    if masked:
        dy, dx = _most_moving_box(donor[dt], (h, w), rng)
        mask = _motion_mask(donor, dt, (dy, dx, h, w), threshold)
    else:
        dy, dx = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        mask = np.ones((L, h, w), bool)
    pos, v, ang = _path(rng, L, (h, w), (H, W), (v_lo, v_hi))
    out = frames.copy()
    boxes = []
    for j in range(L):
        y, x = pos[j]
        tgt = out[s + j, y:y + h, x:x + w]
        tgt[mask[j]] = donor[dt[j], dy:dy + h, dx:dx + w][mask[j]]
        boxes.append([int(x), int(y), int(x + w), int(y + h)])
    labels = (out != frames).reshape(T, -1).any(1).astype(np.uint8)
    return PseudoVideo(frames=out, labels=labels, source=np.arange(T, dtype=np.int64), events=[{
        "kind": kind, "start": s, "end": s + L, "size": [h, w], "speed": round(v, 4), "direction_deg": round(ang, 2),
        "donor_start": d0, "donor_box": [dx, dy, dx + w, dy + h], "boxes": boxes, "masked": masked}])


@register_kind("patch")
def patch(frames: np.ndarray, rng: np.random.Generator, *, span: tuple[int, int] = DEFAULT_SPAN,
          margin: int = DEFAULT_MARGIN, donor: np.ndarray | None = None, size: tuple[float, float] = (0.12, 0.25),
          speed: tuple[float, float] = (2.0, 6.0)) -> PseudoVideo:
    """A moving patch: a rectangle cut from a random place of the ``donor`` video (its content
    playing on in time) is pasted along a straight path at constant speed over ``L`` frames.

    ``size``: patch height as a fraction of the frame height (width 0.5…1 × height);
    ``speed``: px/frame. The event records the donor box and the pasted box per frame.
    """
    return _paste(frames, rng, span, margin, donor, size, speed, masked=False, threshold=0.0, kind="patch")


@register_kind("object")
def moving_object(frames: np.ndarray, rng: np.random.Generator, *, span: tuple[int, int] = DEFAULT_SPAN,
                  margin: int = DEFAULT_MARGIN, donor: np.ndarray | None = None,
                  size: tuple[float, float] = (0.12, 0.25), speed: tuple[float, float] = (2.0, 6.0),
                  threshold: float = 20.0) -> PseudoVideo:
    """A moving object: like ``patch``, but the donor window is the most moving of 64 random
    windows and only its moving pixels (``|frame - temporal median| > threshold`` grey levels,
    dilated) are pasted, so a walker of another video walks along a foreign path.
    Frames where the mask is empty stay normal (their label is 0)."""
    return _paste(frames, rng, span, margin, donor, size, speed, masked=True, threshold=threshold, kind="object")
