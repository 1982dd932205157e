"""``vadlib detect`` as a function: :func:`detect_videos` (also ``vadlib.detect(...)``, the package being
callable). The same run as the command (:mod:`vadlib.detect.cli`): the same defaults, checks, thresholds
and output folders; it returns what it found instead of printing it, and raises
:class:`~vadlib.errors.VadlibError` instead of exiting with status 2."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from vadlib.errors import ConfigError


@dataclass
class Detection:
    """One video's result: frame ``scores`` (T,), the label index that ``fired`` per frame (T,) or None,
    the ``events`` above ``threshold``, the output folder ``out`` (scores.csv/.parquet, events.json,
    timeline.png, annotated.mp4) and the run's ``meta`` (method, backbone, weights, sampling…)."""

    video: Path
    out: Path
    scores: np.ndarray
    fired: np.ndarray | None
    events: list
    threshold: object
    fps: float
    n_frames: int
    meta: dict = field(default_factory=dict)
    heat: object = None
    seconds: float = 0.0
    realtime_factor: float = 0.0
    frames_encoded: int = 0


def _defaults() -> dict:
    """Every option of ``vadlib detect`` with the command's default (the parser is the one source)."""
    from vadlib.detect.cli import build_parser

    d = vars(build_parser().parse_args(["_", "--out", "_"]))
    for k in ("videos", "out"):
        d.pop(k)
    return d


def detect_videos(videos: str | Path | Sequence[str | Path], method: str = "zeroshot", *, out: str | Path,
                  checkpoint: str | Path | Sequence[str | Path] | None = None,
                  prompts: str | Sequence[str] | None = None, normal_prompts: str | Sequence[str] | None = None,
                  calibrate: str | Path | Sequence[str | Path] | None = None,
                  **options) -> dict[str, Detection]:
    """Score ``videos`` (files or frames folders) with ``method`` (a registered detection method or a
    fusion ``"a+b"``) and write one output folder per video under ``out``; returns
    ``{str(video): Detection}``.

    ``checkpoint``: one per checkpoint method (a path or ``train_mil@DATASET``, ``transfer@SOURCE``,
    ``flow_nf``); ``prompts`` / ``normal_prompts``: anomaly / normal descriptions; ``calibrate``: normal
    reference footage for the threshold. ``options``: the command's other options by their Python
    names (``threshold=0.5``, ``backbone="ViT-B-16"``, ``every=8``, ``no_video=True``, ``overwrite=True``,
    ``sigma``, ``score``…), with the command's defaults; an unknown option raises ConfigError listing them.
    """
    from argparse import Namespace

    from vadlib.detect.cli import _run

    def _list(x) -> list[str]:
        if x is None:
            return []
        return [str(x)] if isinstance(x, (str, Path)) else [str(v) for v in x]

    args = _defaults()
    allowed = set(args) - {"method", "checkpoint", "prompt", "normal_prompt", "calibrate"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        known = sorted(allowed | {"checkpoint", "prompts", "normal_prompts", "calibrate"})
        raise ConfigError(f"vadlib.detect: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    args.update(options)
    args.update(videos=_list(videos), out=str(out), method=method, checkpoint=_list(checkpoint),
                prompt=_list(prompts), normal_prompt=_list(normal_prompts), calibrate=_list(calibrate) or None)
    results: dict[str, Detection] = {}
    _run(Namespace(**args), collect=results)
    return results
