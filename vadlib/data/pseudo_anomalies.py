"""The ``pseudo_anomalies`` dataset adapter: a validation set written by
:func:`vadlib.validation.make_validation_set` (pseudo-anomalies made from normal training videos).

It is the ``manifest`` adapter on the set's ``manifest.json`` (all videos in the ``test`` split,
with per-frame labels), plus what ``index.json`` knows: each video's ``meta["kind"]`` (``"normal"``
for the clean copies) and ``meta["source_video"]``, and the generation config in
``dataset.meta["validation"]``. The dataset is named ``<source dataset>_pseudo`` unless ``set_name``
is given (not ``name``: ``get_dataset``'s first argument is already called that).
"""

from __future__ import annotations

import json
from pathlib import Path

from vadlib.data.base import VideoDataset
from vadlib.data.manifest import manifest_dataset
from vadlib.data.registry import register_dataset
from vadlib.data.release import need_root, strict_options
from vadlib.errors import DataError

# The layout's version and file names; the generator (vadlib.validation.generate) writes them.
GENERATOR_VERSION = 1  # bump when the generator's output for a given config changes
INDEX = "index.json"
MANIFEST = "manifest.json"


@register_dataset("pseudo_anomalies")
@strict_options("pseudo_anomalies")
def pseudo_anomalies(root: str | Path | None, set_name: str | None = None, fps: float = 25.0) -> VideoDataset:
    """A pseudo-anomaly validation set (``root`` = the folder ``make_validation_set`` wrote)."""
    root = need_root(root, "pseudo_anomalies")
    idx_path = root / INDEX
    if not idx_path.is_file():
        raise DataError(root, f"no {INDEX}: not a finished pseudo-anomaly validation set "
                        "(write one with vadlib.validation.make_validation_set)")
    try:
        index = json.loads(idx_path.read_text())
        cfg = index["config"]
        records = {r["name"]: r for r in index["videos"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(idx_path, f"unreadable validation index ({exc}); regenerate the set") from exc
    if cfg.get("generator_version") != GENERATOR_VERSION:
        raise DataError(idx_path, f"made by generator version {cfg.get('generator_version')}, this vadlib writes "
                        f"{GENERATOR_VERSION}; regenerate the set")
    ds = manifest_dataset(root / MANIFEST, fps=fps, name=set_name or f"{cfg['dataset']}_pseudo")
    for v in ds.videos("test"):
        rec = records.get(v.name)
        if rec is None:
            raise DataError(idx_path, f"video '{v.name}' of {MANIFEST} is not in the index; regenerate the set")
        v.meta.update(kind=rec["kind"], source_video=rec["source_video"])
    ds.meta["validation"] = cfg
    return ds


def load_validation_set(root: str | Path, name: str | None = None) -> VideoDataset:
    """The set in ``root`` as a :class:`VideoDataset` (same as ``get_dataset("pseudo_anomalies", root)``)."""
    return pseudo_anomalies(root, set_name=name)


def held_out_videos(validation: VideoDataset) -> list[str]:
    """Names of the source dataset's training videos a validation set was made from (its videos
    and donors): a stage that reports this set's AUC must leave them out of training."""
    cfg = validation.meta.get("validation")
    if cfg is None:
        raise DataError(validation.root, f"dataset '{validation.name}' is not a pseudo-anomaly validation set "
                        "(load it with get_dataset('pseudo_anomalies', root))")
    return sorted(set(cfg["videos"]) | set(cfg.get("donors") or []))
