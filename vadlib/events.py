"""From per-frame scores to events, and thresholds that mean something.

A threshold is either given, or calibrated on *normal* reference scores as the quantile that
gives a chosen false-alarm rate on them (never fitted on the video being scored). Its origin
travels with it (:class:`Threshold.source`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError
from vadlib.io import write_json


@dataclass
class Threshold:
    """A decision threshold and where it came from."""

    value: float
    source: str                 # "given" | "calibrated on normal footage: …"
    false_alarm_rate: float | None = None
    n_reference_frames: int | None = None
    method: str | None = None
    score: str | None = None                  # which score of the method (e.g. softmax, fusion)
    sampling: str | None = None               # feature sampling the scores were made with
    backbone: str | None = None               # backbone the scores were made with (None: no CLIP features)
    pretrained: str | None = None             # its weights tag
    norm: dict | None = None                  # a fusion's per-method (min, max) on the normal footage
    prompts: list[str] | None = None          # the anomaly prompts the scores were made with (prompt methods)
    normal_prompts: list[str] | None = None   # and the normal ones (None: the method's default)
    precision: str | None = None              # the CLIP encoder precision of the calibration (None: not recorded)

    def save(self, path: str | Path) -> Path:
        return write_json(path, asdict(self))

    def stamp(self, run: dict) -> "Threshold":
        """Record on this threshold what its scores were made with: ``run``'s method, score, sampling,
        backbone, pretrained, encoder precision and (prompt methods) prompts / normal prompts. Returns ``self``."""
        self.method, self.score, self.sampling = run["method"], run["score"], run["sampling"]
        self.precision = run.get("precision")
        self.backbone, self.pretrained = run["backbone"], run["pretrained"]
        self.prompts = list(run["prompts"]) if run.get("prompts") else None
        self.normal_prompts = (list(run["normal_prompts"]) if run.get("prompts") and run.get("normal_prompts")
                               else None)
        return self

    def matches(self, run: dict) -> bool:
        """Whether this (saved) threshold was made by the same method, score, sampling, backbone and
        prompts as ``run`` (a prompt method's scores depend on its prompts: a threshold of other prompts
        means nothing there). Fields a threshold does not record (None) match anything."""
        return (self.method == run["method"] and self.score == run["score"]
                and self.sampling in (None, run["sampling"])
                and self.backbone in (None, run["backbone"]) and self.pretrained in (None, run["pretrained"])
                and (self.prompts is None or list(self.prompts) == list(run.get("prompts") or []))
                and (self.prompts is None or (self.normal_prompts or None) == (run.get("normal_prompts") or None)))

    def precision_mismatch(self, run: dict) -> str | None:
        """A warning when this threshold was calibrated with another CLIP encoder precision than ``run``'s
        (``fp32`` vs ``bf16``), else None. Not a refusal: bf16 features agree with fp32 ones to a cosine
        ≥ 0.999, and ``backbone.precision: auto`` resolves differently on other CPUs, but the scores
        near the threshold shift a little, so the false-alarm rate is no longer exactly the calibrated one.
        Thresholds that do not record a precision (written before it was recorded) never warn."""
        ran = run.get("precision")
        if self.precision is None or ran is None or self.precision == ran:
            return None
        return (f"threshold calibrated with the CLIP encoder in {self.precision}, this run encodes in {ran}: scores "
                f"differ slightly, so the false-alarm rate may differ from the calibrated "
                f"{self.false_alarm_rate if self.false_alarm_rate is not None else 'one'}; run with --precision "
                f"{self.precision}, or recalibrate (--calibrate NORMAL…)")

    def describe(self) -> str:
        """What the scores were made with, in words (for errors)."""
        return describe_run(asdict(self))

    @classmethod
    def load(cls, path: str | Path) -> "Threshold":
        path = Path(path)
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(path, f"not a threshold file ({exc})") from exc


def describe_run(run: dict) -> str:
    """``method / score / sampling / backbone (pretrained) [/ prompts]`` of a run's metadata or a
    threshold's fields."""
    out = (f"method {run['method']!r} / score {run['score']!r} / {run['sampling']!r} / "
           f"backbone {run['backbone']!r} ({run['pretrained']!r})")
    if run.get("precision"):
        out += f" in {run['precision']}"
    if run.get("prompts"):
        out += f" / prompts {list(run['prompts'])!r}"
        if run.get("normal_prompts"):
            out += f" / normal prompts {list(run['normal_prompts'])!r}"
    return out


def calibrate_threshold(normal_scores: Iterable[np.ndarray], false_alarm_rate: float = 0.01,
                        source: str = "normal reference footage", method: str | None = None) -> Threshold:
    """Threshold = the ``1 − far`` quantile of scores on normal frames only."""
    if not 0.0 < false_alarm_rate < 1.0:
        raise ConfigError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
    s = np.concatenate([np.asarray(x, np.float64).ravel() for x in normal_scores])
    if s.size == 0:
        raise ConfigError("calibration needs at least one normal reference frame")
    return Threshold(value=float(np.quantile(s, 1.0 - false_alarm_rate)),
                     source=f"calibrated on {source}", false_alarm_rate=false_alarm_rate,
                     n_reference_frames=int(s.size), method=method)


@dataclass
class Event:
    """An anomalous stretch of frames ``[start, end]`` (inclusive)."""

    start: int
    end: int
    peak_frame: int
    peak_score: float
    label: str | None
    start_s: float
    end_s: float


def find_events(scores: np.ndarray, threshold: float, fps: float = DEFAULT_FPS, labels: list[str] | None = None,
                fired: np.ndarray | None = None, min_length: int = 1, merge_gap: int = 0) -> list[Event]:
    """Runs of ``scores > threshold`` as events; runs closer than ``merge_gap`` frames are merged,
    runs shorter than ``min_length`` dropped. ``fired[t]`` indexes ``labels`` (what fired at the peak)."""
    s = np.asarray(scores, np.float64)
    above = s > threshold
    edges = np.flatnonzero(np.diff(np.r_[0, above.astype(np.int8), 0]))
    runs = [[int(a), int(b) - 1] for a, b in zip(edges[::2], edges[1::2])]
    merged: list[list[int]] = []
    for r in runs:
        if merged and r[0] - merged[-1][1] - 1 <= merge_gap:
            merged[-1][1] = r[1]
        else:
            merged.append(r)
    events = []
    for a, b in merged:
        if b - a + 1 < min_length:
            continue
        peak = a + int(np.argmax(s[a:b + 1]))
        label = None
        if labels is not None and fired is not None:
            label = labels[int(fired[peak])]
        events.append(Event(start=a, end=b, peak_frame=peak, peak_score=float(s[peak]), label=label,
                            start_s=a / fps, end_s=(b + 1) / fps))
    return events


def temporal_nms(scores: np.ndarray, radius: int, top_k: int) -> list[int]:
    """Indices of up to ``top_k`` local maxima, each suppressing ``±radius`` frames around it."""
    s = np.asarray(scores, np.float64).copy()
    picks: list[int] = []
    while len(picks) < top_k and np.isfinite(s).any():
        i = int(np.nanargmax(s))
        if not np.isfinite(s[i]):
            break
        picks.append(i)
        s[max(0, i - radius):i + radius + 1] = -np.inf
    return picks
