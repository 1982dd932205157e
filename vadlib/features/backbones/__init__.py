"""The backbone registry: one loader, ``load_backbone(name, pretrained, ...)``, for every family.

============================  =====================================================  ======  ==========================
name                          pretrained                                             kind    prompts scored by
============================  =====================================================  ======  ==========================
any open_clip model name,     an open_clip tag (``openai``…), a local checkpoint     frame   text tower
``vadlib-tiny``               file, or ``random``
``xclip``                     a hub id (``microsoft/xclip-base-patch32``,            clip    video-conditioned prompt
                              ``…-16-frames``…), a local checkpoint directory, or            generator (X-CLIP forward)
                              ``random`` (the base-patch32 architecture: benches)
``xclip-tiny``                ``random`` only (tests)                                clip    video-conditioned prompt
                                                                                             generator
``actionclip/<open_clip       ActionCLIP's checkpoint file (``model_state_dict`` +   clip    text tower
arch>`` (``actionclip/        ``fusion_model_state_dict``), or ``random``
ViT-B-16``, ``actionclip/
vadlib-tiny``)
============================  =====================================================  ======  ==========================

Families are registered as ``"module:function"`` strings and imported on first use (X-CLIP needs
``transformers``; ActionCLIP lives in :mod:`vadlib.features.backbones.actionclip`). Every loader
returns an object with the attributes of :mod:`vadlib.features.backbones.base` (``kind``,
``clip_len``, ``text_path``, ``real_weights``, ``precision``…).
"""

from __future__ import annotations

import importlib
from typing import Any

import torch

from vadlib.errors import ConfigError
from vadlib.features.backbones.base import (AUX_PROMPT_TOKENS, PROMPT_GENERATOR, TEXT_TOWER, ClipBackbone,
                                            is_clip_backbone, text_path_of)
from vadlib.features.backbones.open_clip import (RANDOM, TINY, Backbone, RandomWeightsWarning, _register_configs)
from vadlib.features.backbones.open_clip import list_backbones as list_open_clip
from vadlib.features.backbones.open_clip import load_backbone as load_open_clip
from vadlib.registry import Registry

# family name -> "module:function"; exact names, except the "actionclip/" prefix (+ an open_clip arch)
BACKBONE_FAMILIES: Registry[str] = Registry("backbone family")
BACKBONE_FAMILIES.register("xclip")("vadlib.features.backbones.xclip:load_xclip")
BACKBONE_FAMILIES.register("xclip-tiny")("vadlib.features.backbones.xclip:load_xclip")
BACKBONE_FAMILIES.register("actionclip/")("vadlib.features.backbones.actionclip:load_actionclip")
ACTIONCLIP_PREFIX = "actionclip/"


def _target(spec: str):
    module, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        raise ConfigError(f"backbone loader {spec} cannot be imported ({exc}); "
                          + ("pip install transformers (make setup installs it)" if "transformers" in str(exc)
                             else "this backbone family is not installed in this checkout")) from exc


def list_backbones() -> list[str]:
    """The video backbones (``xclip``, ``xclip-tiny``, ``actionclip/<arch>``) then every open_clip name."""
    return ["xclip", "xclip-tiny", "actionclip/<open_clip arch>", *list_open_clip()]


def family_of(name: str) -> str:
    """``"open_clip"``, ``"xclip"`` or ``"actionclip"`` for a backbone name (no check that it exists)."""
    if name.startswith(ACTIONCLIP_PREFIX):
        return "actionclip"
    return "xclip" if name in ("xclip", "xclip-tiny") else "open_clip"


def load_backbone(name: str, pretrained: str | None, device: str | torch.device = "cpu",
                  cache_dir: str | None = None, random_seed: int = 0, precision: str = "fp32",
                  clip_len: int | None = None) -> Any:
    """Build a frozen backbone by name (see the module table).

    Args:
        name: an open_clip model name, ``vadlib-tiny``, ``xclip``, ``xclip-tiny`` or ``actionclip/<arch>``.
        pretrained: a tag / hub id, a local checkpoint (file, or directory for X-CLIP), or ``"random"``.
        device, cache_dir: torch device; weights cache folder (open_clip, X-CLIP).
        random_seed: seed of random weights (the same random model in every stage and process).
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (:mod:`vadlib.features.precision`).
        clip_len: video backbones: frames per clip asked for (None = the checkpoint's; another count
            than the checkpoint's raises ConfigError). Frame backbones take None or 1.
    Returns:
        an open_clip :class:`Backbone` (``kind = "frame"``) or a clip backbone
        (:class:`~vadlib.features.backbones.base.ClipBackbone`, ``kind = "clip"``).
    Raises:
        ConfigError: unknown name (the message lists the families and close open_clip names).
        WeightsUnavailableError: weights that cannot be obtained (with remedies).
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"backbone name must be a non-empty string, got {name!r}")
    family = family_of(name)
    if family == "actionclip":
        arch = name[len(ACTIONCLIP_PREFIX):]
        if not arch:
            raise ConfigError("backbone 'actionclip/' needs an open_clip architecture: actionclip/ViT-B-16, "
                              "actionclip/ViT-B-32 or actionclip/vadlib-tiny")
        load = _target(BACKBONE_FAMILIES.get(ACTIONCLIP_PREFIX))
        return load(arch, pretrained, device=device, random_seed=random_seed, precision=precision,
                    clip_len=clip_len)
    if family == "xclip":
        load = _target(BACKBONE_FAMILIES.get(name))
        return load(name, pretrained, device=device, cache_dir=cache_dir, random_seed=random_seed,
                    precision=precision, clip_len=clip_len)
    if clip_len not in (None, 1):
        raise ConfigError(f"backbone '{name}' encodes single frames; clip_len {clip_len} applies to video "
                          "backbones only (xclip, actionclip/<arch>): leave it null")
    import open_clip

    _register_configs()
    known = open_clip.list_models()
    if name not in known:
        close = [m for m in known if name.lower().replace("/", "-") in m.lower()][:8]
        raise ConfigError(f"unknown backbone '{name}'; open_clip knows {len(known)} models"
                          + (f", e.g. {', '.join(close)}" if close else " (see vadlib.features.list_backbones())")
                          + "; the video backbones are xclip (a hub id or local directory), xclip-tiny (random) "
                            "and actionclip/<open_clip arch>")
    return load_open_clip(name, pretrained, device=device, cache_dir=cache_dir, random_seed=random_seed,
                          precision=precision)


__all__ = ["ACTIONCLIP_PREFIX", "AUX_PROMPT_TOKENS", "BACKBONE_FAMILIES", "Backbone", "ClipBackbone",
           "PROMPT_GENERATOR", "RANDOM", "RandomWeightsWarning", "TEXT_TOWER", "TINY", "family_of",
           "is_clip_backbone", "list_backbones", "load_backbone", "text_path_of"]
