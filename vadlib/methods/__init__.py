"""The methods: one package per method, each ``model.py`` (the network, losses, config) +
``method.py`` (the :class:`~vadlib.methods.base.Method` adapter: ``fit`` / ``predict`` / ``save`` /
``load`` / ``feature_spec``) + ``presets/`` (config files).

* :data:`METHODS`: the one method registry (training, ``vadlib detect``, the stages);
* :func:`build` / :func:`config`: a method from a config dict / a preset;
* :func:`load`: the one checkpoint reader (vadlib checkpoints of every method, and the published
  lucazanella/AnomalyCLIP Lightning ``last.ckpt`` through :mod:`vadlib.compat.zanella`);
* :func:`~vadlib.io.read_checkpoint` (re-exported): the ``weights_only`` read and format check every
  checkpoint file goes through (the methods', the transfer stage's, ``vadlib detect``'s spec look-up).

Packages: ``anomalyclip/`` (AnomalyCLIP), ``mil/`` (Sultani, RTFM), ``zeroshot/`` (CLIP prompt scores,
DPAM maps), ``transfer/`` (source → target transfer), ``flow_nf/`` (optical-flow normalising flows).

The registry is lazy: each entry names its ``method`` module, imported on first
:meth:`METHODS.get <vadlib.registry.Registry.get>`, so ``import vadlib.methods`` (and a stage that uses
one method) imports no method package. A stage that builds a method by name from its parameters
imports the method modules it can build, so that they are among its DVC deps.

Not every method fits the whole protocol; each entry declares what it implements
(:attr:`Method.supports`), and the contract test checks exactly that:

* ``anomalyclip``, ``sultani``, ``rtfm``: all of it, trained by :mod:`vadlib.train` on weakly labelled
  ``(T, D)`` features (:attr:`Method.weak`);
* ``zeroshot``: no ``fit`` (its prompts are its only parameters); predicts, saves and loads (the
  encoded prompts, so a loaded one needs no backbone) and checks features like the others.

:data:`OUTSIDE_THE_REGISTRY` names the method packages that are not entries, and why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from vadlib.io import read_checkpoint
from vadlib.errors import ConfigError
from vadlib.methods.base import (CHECKPOINT_FORMAT, FEATURE_KEYS, METHODS, Method, WeakVideo, feature_spec,
                                 seed_everything)

METHODS.register_lazy("anomalyclip", "vadlib.methods.anomalyclip.method:AnomalyCLIPMethod")
METHODS.register_lazy("sultani", "vadlib.methods.mil.method:SultaniMethod")
METHODS.register_lazy("rtfm", "vadlib.methods.mil.method:RTFMMethod")
METHODS.register_lazy("zeroshot", "vadlib.methods.zeroshot.method:ZeroShotMethod")

#: method packages that are not registry entries, and why (checked by tests/methods/test_contract.py)
OUTSIDE_THE_REGISTRY: dict[str, str] = {
    "transfer": "trains on a SOURCE dataset's features plus learned prompts through the CLIP text tower, "
                "and is scored on another dataset's prompts (vadlib.stages.transfer); its fit is no fit on "
                "weakly labelled (T, D) features, and its predict needs the text tower",
    "flow_nf": "fits and predicts on raw videos (optical flow → regions → Glow / GMM / pose densities), not on "
               "(T, D) CLIP features; its model is a folder of several density models "
               "(vadlib.methods.flow_nf.pipeline.FlowNFModel)",
}

__all__ = ["CHECKPOINT_FORMAT", "FEATURE_KEYS", "METHODS", "Method", "OUTSIDE_THE_REGISTRY", "WeakVideo", "build",
           "config", "feature_spec", "load", "read_checkpoint", "seed_everything"]


def build(name: str, cfg: Mapping, class_names: Sequence[str], feat_dim: int, *, seed: int | None = None,
          **kw) -> Method:
    """The registered method ``name`` built from a config dict (``class_names``: ``normal`` first;
    ``feat_dim``: D of the ``(T, D)`` features). ``seed``: seed the initial weights."""
    if seed is not None:
        seed_everything(seed)
    return METHODS.get(name)(cfg, class_names, feat_dim, **kw)


def config(name: str, preset: str, overrides: Mapping | None = None) -> dict:
    """Config dict of method ``name`` for a preset (``shanghaitech``, ``ucf_crime``, ``xd_violence``,
    ``demo``; AnomalyCLIP also ``reference``) with ``overrides``."""
    return METHODS.get(name).preset(preset, overrides)


def load(path: str | Path, backbone=None, *, class_names: Sequence[str] | None = None,
         require_centroid: bool = True, overrides: Mapping | None = None) -> Method:
    """The method a checkpoint file holds, ready to predict (``.checkpoint``: its path and meta).

    * a vadlib checkpoint (``format`` :data:`CHECKPOINT_FORMAT`, any version's): dispatched to the
      registered method's :meth:`Method.load`; AnomalyCLIP with learned prompts loads for inference
      from its stored text cache, or with ``backbone`` to train further;
    * a published lucazanella/AnomalyCLIP Lightning ``.ckpt``: imported by
      :func:`vadlib.compat.zanella.import_anomalyclip` (``class_names``, ``require_centroid``,
      ``overrides`` go to it);
    * anything else (junk, another stage's checkpoint) raises :class:`DataError` naming the file.
    """
    from vadlib.compat.zanella import import_anomalyclip, is_reference_checkpoint

    path = Path(path)
    if is_reference_checkpoint(path):
        m = import_anomalyclip(path, class_names=class_names, require_centroid=require_centroid,
                               overrides=dict(overrides or {}))
        m.checkpoint = {"path": str(path), "meta": {"imported": m.imported}}
        return m
    ck = read_checkpoint(path, CHECKPOINT_FORMAT, wrong="not a vadlib.train checkpoint (format key missing)")
    trained_on = ((ck.get("meta") or {}).get("features") or {}).get("backbone")
    if backbone is not None and trained_on and trained_on != getattr(backbone, "name", trained_on):
        raise ConfigError(f"{path}: trained on {trained_on} features, not {backbone.name}'s: use the backbone "
                          f"(backbone.name={trained_on}) and features it was trained on, or retrain it")
    m = METHODS.get(ck["method"]).load(ck, path, backbone=backbone)
    m.module.eval()
    m.checkpoint = {"path": str(path), "meta": ck.get("meta", {})}
    return m
