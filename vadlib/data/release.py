"""Helpers shared by the adapters of real benchmark releases.

Option checking (unknown option → :class:`ConfigError` listing the known ones), locating
files that may live beside the videos or in a separately downloaded GT folder (``gt_root``),
listing video files and frames folders, and turning frame intervals into per-frame labels.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from vadlib.data.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, _natural_key
from vadlib.errors import ConfigError, DataError


POSITIVE_OPTIONS = ("fps",)   # adapter options that must be > 0 wherever an adapter has them


def check_options(dataset: str, fn: Callable, options: dict, where: str | None = None) -> dict:
    """``options`` of the dataset factory ``fn`` checked against its signature with the generic
    typed check of :mod:`vadlib.config`: an unknown option is listed with the known ones, a wrong
    type is named with its path (``datasets.avenue.fps: expected a number, got 'abc'``), a path
    option given as a string (as YAML gives it) becomes a :class:`Path`. ``root`` may be among them.
    """
    import typing

    from vadlib.config import check_value

    params = inspect.signature(fn).parameters
    known = [p for p in params if p != "root"]
    bad = sorted(set(options) - set(known) - {"root"})
    if bad:
        raise ConfigError(f"{where or f'dataset {dataset!r}'}: unknown option(s) {', '.join(bad)}; "
                          f"known: {', '.join(known)}")
    hints = typing.get_type_hints(fn)
    source, path = (where.rsplit(": ", 1) if where and ": " in where else (None, where or f"datasets.{dataset}"))
    out = {}
    for k, v in options.items():
        if k == "root":
            out[k] = None if v is None else check_value(Path, v, f"{path}.root", source)
            continue
        if v is None and params[k].default is not None and "None" not in str(hints.get(k)):
            raise ConfigError(f"{source + ': ' if source else ''}{path}.{k}: no value given (null); "
                              f"remove the line to use the default {params[k].default!r}")
        val = check_value(hints.get(k, typing.Any), v, f"{path}.{k}", source)
        if k in POSITIVE_OPTIONS and val is not None and val <= 0:
            raise ConfigError(f"{source + ': ' if source else ''}{path}.{k}: must be > 0, got {v!r}")
        out[k] = val
    return out


def strict_options(dataset: str) -> Callable:
    """Decorator for a factory ``f(root, **options)``: options are checked by :func:`check_options`
    (unknown option → ConfigError listing the known ones; wrong type → ConfigError naming it;
    ``str`` paths → :class:`Path`)."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(root=None, **options):
            return fn(root, **check_options(dataset, fn, options))

        return wrapper

    return deco


def need_root(root, dataset: str) -> Path:
    if root is None:
        raise DataError(None, f"{dataset} needs a root: set datasets.{dataset}.root in params.yaml")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(root, f"dataset root for '{dataset}' does not exist")
    return root


def choose(value: str, allowed: Sequence[str], option: str, dataset: str) -> str:
    """Validate an enumerated option value."""
    if value not in allowed:
        raise ConfigError(f"dataset '{dataset}': {option}={value!r} is not one of {', '.join(map(repr, allowed))}")
    return value


def find_path(name: str | Path, folders: Iterable[Path | None], what: str, kind: str = "file") -> Path:
    """First ``folder / name`` that exists (absolute ``name`` is used as is).

    Missing → DataError naming the first place looked and listing the others.
    """
    name = Path(name)
    if name.is_absolute():
        cands = [name]
    else:
        cands = [Path(f) / name for f in folders if f is not None]
    for c in cands:
        if (c.is_file() if kind == "file" else c.is_dir()):
            return c
    others = f" (also looked in: {', '.join(str(c.parent) for c in cands[1:])})" if len(cands) > 1 else ""
    raise DataError(cands[0] if cands else name, f"{what} is missing{others}; set gt_root if it was downloaded separately")


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(path, f"{what} is missing (expected a folder here)")
    return path


def is_hidden(p: Path) -> bool:
    """macOS AppleDouble (``._x``), ``.DS_Store`` and other dot files shipped inside some archives."""
    return p.name.startswith(".")


def video_files(folder: Path, what: str) -> list[Path]:
    """Video files directly in ``folder`` in natural order; none → DataError."""
    require_dir(folder, what)
    files = sorted((p for p in folder.iterdir() if p.is_file() and not is_hidden(p)
                    and p.suffix.lower() in VIDEO_EXTENSIONS), key=_natural_key)
    if not files:
        raise DataError(folder, f"{what} holds no video files ({', '.join(VIDEO_EXTENSIONS)})")
    return files


def frame_dirs(folder: Path, what: str) -> list[Path]:
    """Sub-folders (one per video) in natural order; none → DataError."""
    require_dir(folder, what)
    dirs = sorted((d for d in folder.iterdir() if d.is_dir() and not is_hidden(d)), key=_natural_key)
    if not dirs:
        raise DataError(folder, f"{what} holds no video folders")
    return dirs


def image_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(p)),
                  key=_natural_key)


def count_images(folder: Path) -> int:
    """Number of frame images in a frames folder (not decoded); none → DataError."""
    n = sum(1 for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and not is_hidden(p))
    if n == 0:
        raise DataError(folder, "frames folder holds no image files")
    return n


def check_length(gt_path: Path | str, video: str, n_gt: int, n_frames: int, where: Path | None = None) -> None:
    """GT of ``n_gt`` entries for a video of ``n_frames`` → DataError naming both when unequal."""
    if n_gt != n_frames:
        at = f" ({where})" if where is not None else ""
        raise DataError(gt_path, f"GT of video '{video}' has {n_gt} frames but the video{at} has {n_frames}")


def split_concatenated(arr: np.ndarray, lengths: Sequence[int], path: Path | str) -> list[np.ndarray]:
    """Split an MNAD-style concatenated label array ``(sum T,)`` into per-video ``(T,)`` uint8."""
    flat = np.asarray(arr).reshape(-1)
    if flat.size != int(sum(lengths)):
        raise DataError(path, f"holds {flat.size} frame labels but the {len(lengths)} videos have "
                        f"{int(sum(lengths))} frames together")
    out, o = [], 0
    for n in lengths:
        out.append((flat[o:o + n] > 0).astype(np.uint8))
        o += n
    return out


def interval_labels(n_frames: int, intervals: Sequence[tuple[int, int]], class_ids: Sequence[int] | None,
                    gt_path: Path | str, video: str, one_based: bool = False,
                    end_inclusive: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(labels (T,) uint8, classes (T,) int64)`` from frame intervals.

    Ends past the last frame are clipped (releases have a few); a start at or past the
    end of the video means the GT belongs to another video → DataError naming both.
    """
    lab = np.zeros(n_frames, np.uint8)
    cls = np.zeros(n_frames, np.int64)
    off = 1 if one_based else 0
    for k, (s, e) in enumerate(intervals):
        s0 = int(s) - off
        e0 = int(e) - off + (1 if end_inclusive else 0)
        if s0 < 0 or e0 <= s0:
            raise DataError(gt_path, f"video '{video}': bad interval {s}-{e}")
        if s0 >= n_frames:
            raise DataError(gt_path, f"video '{video}': interval {s}-{e} starts after the last of its "
                            f"{n_frames} frames (GT and video do not match)")
        lab[s0:e0] = 1
        cls[s0:e0] = 1 if class_ids is None else int(class_ids[k])
    return lab, cls
