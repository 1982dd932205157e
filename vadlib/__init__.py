"""vadlib — a reproducible research toolkit for video anomaly detection and recognition.

What a notebook needs, importable from the top (loaded on first use, so ``import vadlib`` stays
light: no torch, no open_clip until a name below is touched)::

    import vadlib
    ds = vadlib.get_dataset("demo_a", root="data/demo")          # dataset registry
    bb = vadlib.load_backbone("ViT-B-16", "openai")               # open_clip backbone
    store = vadlib.FeatureStore.open("data/features/demo_a/...")  # extracted features
    m = vadlib.evaluate_frames(scores, labels)                     # frame AUC / AP
    vadlib.METHODS.names()                                         # the method registry
    m = vadlib.load_method("reports/train_mil/demo_a/model.pt")    # the one checkpoint reader
    found = vadlib.detect(["clip.mp4"], method="zeroshot", prompts=["a person riding a bicycle"],
                          threshold=0.5, out="detections")        # `vadlib detect` as a function
    hits = vadlib.search("a person riding a bicycle", "dataset:demo_b:test", bb)   # `vadlib search`

Packages: ``data`` (datasets and readers), ``features`` (CLIP backbone, extractor, feature store),
``methods`` (one package per method, the registry and checkpoint reader), ``prompts`` (prompt sets,
learned prompts), ``metrics``, ``scoring`` (smoothing, normalisation, fusion), ``report`` (figures,
tables, page), ``bench`` (``python -m vadlib.bench NAME``), ``synthetic`` (planted data whose truth is
known). ``vadlib.detect`` and ``vadlib.search`` are the package / module of the two commands, and
callable: ``vadlib.detect(...)`` is :func:`vadlib.detect.api.detect_videos`, ``vadlib.search(...)`` is
:func:`vadlib.search.search_collection` (a function of the same name here would be rebound to the
module whenever its submodules are imported).
"""

from __future__ import annotations

import importlib

from vadlib.errors import ConfigError, DataError, VadlibError

__version__ = "0.1.0"

# public name -> "module:attribute" (or a callable "module"), imported on first access (PEP 562)
_LAZY: dict[str, str] = {
    "get_dataset": "vadlib.data:get_dataset",
    "list_datasets": "vadlib.data:list_datasets",
    "load_backbone": "vadlib.features.backbones:load_backbone",
    "list_backbones": "vadlib.features.backbones:list_backbones",
    "FeatureStore": "vadlib.features.store:FeatureStore",
    "evaluate_frames": "vadlib.metrics:evaluate_frames",
    "METHODS": "vadlib.methods:METHODS",
    "load_method": "vadlib.methods:load",
    "detect": "vadlib.detect",
    "detect_videos": "vadlib.detect.api:detect_videos",
    "search": "vadlib.search",
    "search_collection": "vadlib.search:search_collection",
}

__all__ = ["VadlibError", "DataError", "ConfigError", "__version__", *_LAZY]


def __getattr__(name: str):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'vadlib' has no attribute {name!r}")
    module, _, attr = target.partition(":")
    value = importlib.import_module(module)
    value = getattr(value, attr) if attr else value
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
