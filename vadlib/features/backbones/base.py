"""The backbone protocols every loader of :mod:`vadlib.features.backbones` returns.

Two kinds, told apart by ``kind``:

* ``"frame"`` — an image encoder (open_clip :class:`~vadlib.features.backbones.open_clip.Backbone`):
  one feature row per sampled frame, ``encode_images((B, 3, S, S)) -> (B, D)``.
* ``"clip"`` — a video encoder (X-CLIP, ActionCLIP): one feature row per clip of ``clip_len``
  consecutive frames, ``encode_clips((B, T, 3, S, S)) -> (B, D)``; :class:`ClipBackbone` below.

``text_path`` says how prompts are scored against the features, and every metrics protocol repeats it:

* ``"text tower"`` — ``encode_text(prompts)`` once, cosine with each row (CLIP, ActionCLIP);
* ``"video-conditioned prompt generator"`` — X-CLIP's ``forward`` path: the text-tower embeddings of
  the prompts are shifted per clip by the prompt generator, which cross-attends to the clip's
  frame-averaged visual tokens. Those tokens are stored beside the clip features (the store's
  ``aux`` array, :data:`AUX_PROMPT_TOKENS`), and :meth:`ClipBackbone.condition_text` turns
  ``(K, D)`` prompt embeddings into ``(B, K, D)`` per-clip ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import torch

RANDOM_WEIGHTS_WARNING = (
    "RANDOM WEIGHTS: backbone '{name}' has random (untrained) weights; every score and figure "
    "from it checks the plumbing only and says nothing about the method."
)


class RandomWeightsWarning(UserWarning):
    """Raised (as a warning) whenever a random-weight backbone is built or used."""


@dataclass(kw_only=True)
class BackboneIdentity:
    """The fields every backbone dataclass (open_clip, X-CLIP, ActionCLIP) has, and what it says of
    itself from them (store tag, precision protocol, the random-weights warning). Subclasses are
    ``@dataclass(kw_only=True)`` and add their model and family fields.

    Attributes:
        name, pretrained: as given to ``load_backbone``.
        real_weights: False for ``pretrained="random"`` or a file marked random; reports carry it.
        embed_dim: width D of the image / clip and text embeddings.
        image_size: the encoder's input size S (pixels); mean, std: the preprocessing normalisation.
        device: the torch device.
        precision: the precision the image tower runs in (``fp32``, ``bf16``, ``fp16``; resolved, never
            ``auto``); ``precision_requested`` and ``precision_reason`` say how it was chosen.
    """

    name: str
    pretrained: str
    real_weights: bool
    embed_dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    precision: str = "fp32"
    precision_requested: str = "fp32"
    precision_reason: str = "requested"

    @property
    def tag(self) -> str:
        """Short identity used in feature-store keys: ``name/pretrained``."""
        return f"{self.name}/{Path(self.pretrained).name if self.pretrained else ''}"

    def precision_protocol(self) -> dict:
        """``{"precision", "precision_requested", "precision_reason"}`` for store indexes and protocols."""
        return {"precision": self.precision, "precision_requested": self.precision_requested,
                "precision_reason": self.precision_reason}

    def warn_if_random(self) -> None:
        """Warn (:class:`RandomWeightsWarning`) when the weights are random."""
        if not self.real_weights:
            warnings.warn(RANDOM_WEIGHTS_WARNING.format(name=self.name), RandomWeightsWarning, stacklevel=2)

TEXT_TOWER = "text tower"
PROMPT_GENERATOR = "video-conditioned prompt generator"
TEXT_PATHS = (TEXT_TOWER, PROMPT_GENERATOR)
AUX_PROMPT_TOKENS = "prompt_tokens"   # the store's aux array of an X-CLIP store: (N, P, D) visual tokens


@runtime_checkable
class ClipBackbone(Protocol):
    """A frozen video-language encoder of clips (``kind == "clip"``).

    Attributes:
        name, pretrained: as given to :func:`~vadlib.features.backbones.load_backbone`.
        real_weights: False for random weights; every output carries it.
        embed_dim: D, the width of clip and text features.
        image_size, mean, std: the per-frame preprocessing (S pixels, normalisation).
        device: the torch device.
        precision, precision_requested, precision_reason: as the open_clip backbone's.
        tag: ``name/pretrained`` (short) for store keys.
        clip_len: T, the frames per clip the checkpoint was trained on.
        kind: ``"clip"``.
        text_path: :data:`TEXT_TOWER` or :data:`PROMPT_GENERATOR`.
        aux: the name of the per-clip auxiliary array the text path needs (``None`` if none).
    """

    name: str
    pretrained: str
    real_weights: bool
    embed_dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    device: torch.device
    precision: str
    precision_requested: str
    precision_reason: str
    clip_len: int
    kind: str
    text_path: str

    @property
    def tag(self) -> str: ...

    def encode_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, S, S)`` preprocessed clips → ``(B, D)`` float32 raw clip features."""

    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> torch.Tensor:
        """Texts → ``(N, D)`` text-tower embeddings (L2-normalised by default)."""

    def warn_if_random(self) -> None: ...

    def precision_protocol(self) -> dict: ...


def is_clip_backbone(backbone) -> bool:
    """True for a video (clip) backbone, False for a frame backbone."""
    return getattr(backbone, "kind", "frame") == "clip"


def text_path_of(backbone) -> str:
    """The backbone's text path (:data:`TEXT_TOWER` when it does not say)."""
    return getattr(backbone, "text_path", TEXT_TOWER)


def text_clip_of(backbone):
    """The module prompt learning encodes text through: an open_clip ``CLIP`` (``backbone.model``), or a
    video backbone's view of its text tower with the same attributes (``backbone.text_clip``)."""
    view = getattr(backbone, "text_clip", None)
    return view if view is not None else backbone.model


__all__ = ["AUX_PROMPT_TOKENS", "ClipBackbone", "PROMPT_GENERATOR", "TEXT_PATHS", "TEXT_TOWER", "is_clip_backbone",
           "text_clip_of", "text_path_of"]
