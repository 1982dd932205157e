"""CLIP features of a pseudo-anomaly set, extracted exactly like a dataset's feature store, for the
stages that score features rather than frames (``zeroshot``, ``transfer``)."""

from __future__ import annotations

import json
from pathlib import Path

from vadlib.data.base import VideoDataset
from vadlib.errors import ConfigError


def extract_like(store, vds: VideoDataset, backbone, root: str | Path, device: str = "cpu", who: str = "validation"):
    """Extract the ``test`` split of the set ``vds`` with ``backbone`` and the sampling (clips included), crops,
    precision and preprocessing recorded in ``store`` (a test store of the stage) into a store under
    ``root/features``; returns that store. Raises :class:`ConfigError` (naming ``who``, e.g.
    ``zeroshot.validation``) when the store's preprocessing cannot be reproduced."""
    from vadlib.features.extract import ExtractConfig, extract_dataset, store_info

    info = store.info
    pre = info.get("preprocessing") or {}
    cfg = ExtractConfig(sampling=info["sampling"], stride=int(info.get("stride") or 1),
                        snippet_len=int(info.get("snippet_len") or 16), crops=int(info["crops"]),
                        clip_len=info.get("clip_len"), clip_stride=info.get("clip_stride"),
                        # None: the backbone's own, loaded in the store's precision (no torch.autocast)
                        precision=None if backbone.precision == info.get("precision", "fp32") else info.get("precision"),
                        device=device,
                        resize=pre.get("resize", "shorter") if isinstance(pre, dict) else "shorter")
    if json.loads(json.dumps(store_info(vds.name, backbone, cfg)["preprocessing"])) != info.get("preprocessing"):
        raise ConfigError(f"{who}: cannot extract the set like the store {store.path} "
                          f"(preprocessing {info.get('preprocessing')}); re-extract the dataset")
    return extract_dataset(vds, backbone, Path(root) / "features", cfg, splits=("test",))
