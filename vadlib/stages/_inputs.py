"""What stages read from earlier stages: the feature store the ``extract`` stage recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from vadlib.errors import DataError


def feature_store(dataset: str, reports: str | Path = "reports", features: Mapping | None = None):
    """The :class:`~vadlib.features.store.FeatureStore` of ``dataset``: ``features[dataset]`` (a path)
    if given, else the one the extract stage recorded in ``<reports>/extract/<dataset>/store.json``."""
    from vadlib.features.store import FeatureStore

    if features and dataset in features:
        return FeatureStore.open(features[dataset])
    rec = Path(reports) / "extract" / dataset / "store.json"
    if not rec.is_file():
        raise DataError(rec, f"no feature store recorded for dataset '{dataset}': run the extract stage "
                             f"(dvc repro extract@{dataset})")
    return FeatureStore.open(json.loads(rec.read_text())["store"])


def per_item(value, item: str, where: str):
    """``value[item]`` when ``value`` is a per-dataset mapping, else ``value``; a mapping without
    ``item`` raises naming ``params.yaml: <where>``."""
    from vadlib.errors import ConfigError

    if isinstance(value, Mapping):
        if item not in value:
            raise ConfigError(f"params.yaml: {where} has no entry for dataset '{item}' (has: {sorted(value)})")
        return value[item]
    return value


def sampling_label(info: Mapping) -> str:
    """How a store's rows were sampled, for protocols: ``every stride 2``, ``snippet 16``, ``clip 8 stride 8``."""
    samp = info.get("sampling")
    if samp == "clip":
        return f"clip {info.get('clip_len')} stride {info.get('clip_stride')}"
    if samp == "snippet":
        return f"snippet {info.get('snippet_len')}"
    return f"{samp} stride {info.get('stride')}"


def store_clip_len(info: Mapping, backbone_name: str) -> int | None:
    """The frames per clip a store of ``backbone_name`` was extracted with, for loading that backbone
    (an ActionCLIP file may not record it); None for a frame store or a store of another backbone
    (the stage's backbone check then names the mismatch)."""
    if info.get("backbone") != backbone_name or info.get("sampling") != "clip" or info.get("clip_len") is None:
        return None
    return int(info["clip_len"])
