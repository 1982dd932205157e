"""The CLIP backbone: a thin wrapper over open_clip.

``load_backbone(name, pretrained)`` takes any open_clip model name with a pretrained tag
(``"ViT-B-16", "openai"``), or a local checkpoint path as ``pretrained``. The explicit tag
``"random"`` builds the architecture with random weights — for tests and offline runs only;
every output of such a backbone is marked ``real_weights = False`` and warned about. So is a local
checkpoint file whose sidecar ``<file>.vadlib.json`` says ``{"random_weights": true}`` (what
:func:`mark_random_weights` writes beside a random-weight file, e.g. ``python -m vadlib.bench dryrun``'s).

``vadlib-tiny`` is a small open_clip model config registered here (2-layer ViT at 64 px,
64-d embeddings) that runs through the real open_clip code path in seconds.

``precision`` (``auto`` | ``fp32`` | ``bf16`` | ``fp16``, see :mod:`vadlib.features.precision`)
casts the image tower's weights to bf16 / fp16 — the fast path on CPUs with AMX / AVX-512-BF16
(``torch.autocast`` is slower than fp32 there for ViTs). The text tower stays fp32: prompts are
encoded once, and prompt learning trains through it. ``encode_images`` / ``encode_text`` take and
return float32 whatever the precision.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import torch

from vadlib.errors import ConfigError, WeightsUnavailableError
from vadlib.features.backbones.base import RANDOM_WEIGHTS_WARNING, BackboneIdentity, RandomWeightsWarning  # noqa: F401
from vadlib.features.precision import fused_attention, resolve_precision

RANDOM = "random"
TINY = "vadlib-tiny"
_CONFIG_DIR = Path(__file__).parent.parent / "model_configs"


#: sidecar beside a local checkpoint file ``<file>.vadlib.json``: ``{"random_weights": true, ...}`` marks it random
SIDECAR_SUFFIX = ".vadlib.json"


def mark_random_weights(path: str | Path, **meta) -> Path:
    """Write the sidecar ``<path>.vadlib.json`` = ``{"random_weights": true, **meta}`` beside the
    random-weight checkpoint ``path``, so :func:`load_backbone` records it as random. Returns the sidecar."""
    from vadlib.io import write_json

    return write_json(Path(str(path) + SIDECAR_SUFFIX), {"random_weights": True, **meta})


def marked_random(pretrained: str | Path) -> bool:
    """True when the local checkpoint ``pretrained`` has a sidecar saying ``random_weights: true``.
    Raises ConfigError naming an unreadable sidecar."""
    side = Path(str(pretrained) + SIDECAR_SUFFIX)
    if not side.is_file():
        return False
    try:
        return bool(json.loads(side.read_text()).get("random_weights", False))
    except (OSError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{side}: unreadable weights sidecar ({exc}); fix it or delete it") from exc


def _register_configs() -> None:
    import open_clip

    if TINY not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)


@dataclass(kw_only=True)
class Backbone(BackboneIdentity):
    """A frozen open_clip model with its preprocessing and tokenizer.

    Attributes:
        name, pretrained: as given to :func:`load_backbone`.
        real_weights: False for ``pretrained="random"``; reports carry this flag.
        embed_dim: width D of image and text embeddings.
        image_size: the encoder's input size (pixels).
        mean, std: the preprocessing normalisation.
        precision: the precision the weights run in (``fp32``, ``bf16`` or ``fp16``; resolved,
            never ``auto``); ``precision_requested`` and ``precision_reason`` say how it was chosen.
    """

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    # the backbone protocol (vadlib.features.backbones.base): one row per frame, prompts by the text tower
    kind: ClassVar[str] = "frame"
    clip_len: ClassVar[int] = 1
    text_path: ClassVar[str] = "text tower"

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the image tower's weights (image inputs are cast to it)."""
        return next(self.model.visual.parameters()).dtype



    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` preprocessed images → ``(B, D)`` float32 raw (unnormalised) embeddings
        (computed in the backbone's precision)."""
        p = next(self.model.visual.parameters())
        return self.model.encode_image(images.to(p.device, p.dtype)).float()

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> torch.Tensor:
        """Texts → ``(N, D)`` embeddings (L2-normalised by default)."""
        if len(texts) == 0:
            raise ConfigError("encode_text got an empty prompt list")
        tokens = self.tokenizer(list(texts)).to(self.device)
        feats = self.model.encode_text(tokens).float()
        return torch.nn.functional.normalize(feats, dim=-1) if normalize else feats



def list_backbones() -> list[str]:
    """All open_clip model names, the tiny test config included."""
    import open_clip

    _register_configs()
    return open_clip.list_models()


def _weights_error(name: str, pretrained: str, exc: BaseException) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"cannot load weights '{pretrained}' for backbone '{name}' ({exc.__class__.__name__}: {exc}).\n"
        "Remedies:\n"
        f"  1. pre-download on a machine with network: python -c \"import open_clip; "
        f"open_clip.create_model_and_transforms('{name}', pretrained='{pretrained}')\" "
        "(the weights land in the Hugging Face / torch cache; copy that cache here);\n"
        f"  2. {_remedy('local')} a local checkpoint file (.pt/.bin/.safetensors);\n"
        f"  3. for plumbing checks only, choose random weights explicitly: {_remedy('random')} "
        "(outputs are marked RANDOM WEIGHTS)."
    )


def _remedy(kind: str) -> str:
    """A remedy in the syntax of what failed: a pipeline stage (a notebook kernel; its backbone
    comes from params.yaml) or a command line (``--backbone`` / ``--pretrained``)."""
    stage = "ipykernel" in sys.modules
    if kind == "local":
        return "point backbone.pretrained in params.yaml at" if stage else "give --pretrained"
    if stage:
        return ("run the stages with -S backbone.name=vadlib-tiny -S backbone.pretrained=random "
                "(dvc exp run), or `make demo` (the whole pipeline offline, in build/demo/)")
    return "run the command with --backbone vadlib-tiny --pretrained random"


def load_backbone(name: str, pretrained: str | None, device: str | torch.device = "cpu",
                  cache_dir: str | None = None, random_seed: int = 0, precision: str = "fp32") -> Backbone:
    """Build a frozen open_clip backbone.

    Args:
        name: an open_clip model name (``open_clip.list_models()``) or ``"vadlib-tiny"``.
        pretrained: an open_clip pretrained tag (``"openai"``, ``"laion2b_s34b_b88k"``…),
            a local checkpoint path (random if its sidecar says so: :func:`marked_random`), or
            ``"random"`` for explicit random weights.
        device: torch device.
        random_seed: seed of the random initialisation when ``pretrained="random"``, so every
            stage and process builds the *same* random model (image and text towers agree across
            stages, and reruns reproduce); the caller's RNG state is left untouched.
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA): resolved by
            :func:`~vadlib.features.precision.resolve_precision` (auto = bf16 on CPUs with AMX /
            AVX-512-BF16, else fp32, logged); non-fp32 casts the image tower's weights
            (``model.visual``); the text tower stays fp32.
    Raises:
        ConfigError: unknown model name or empty tag; a precision this device cannot run.
        WeightsUnavailableError: the weights cannot be obtained (with remedies in the message).
    """
    import open_clip

    _register_configs()
    known = open_clip.list_models()
    if name not in known:
        close = [m for m in known if name.lower().replace("/", "-") in m.lower()][:8]
        raise ConfigError(f"unknown backbone '{name}'; open_clip knows {len(known)} models"
                          + (f", e.g. {', '.join(close)}" if close else f" (see vadlib.features.list_backbones())"))
    if not pretrained:
        raise ConfigError(f"backbone '{name}': give a pretrained tag, a checkpoint path, or 'random' explicitly")
    device = torch.device(device)
    prec = resolve_precision(precision, device)
    real = pretrained != RANDOM
    if real and Path(pretrained).suffix in {".pt", ".pth", ".bin", ".safetensors"} and not Path(pretrained).is_file():
        raise _weights_error(name, pretrained, FileNotFoundError(f"no such file: {pretrained}"))
    if real and not Path(pretrained).is_file():
        tags = open_clip.list_pretrained_tags_by_model(name)
        if pretrained not in tags:
            raise ConfigError(f"backbone '{name}' has no pretrained tag '{pretrained}' "
                              f"(known: {', '.join(tags) or 'none'}; or give a local checkpoint path)")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_seed)
            model, _, preprocess = open_clip.create_model_and_transforms(
                name, pretrained=None if not real else pretrained, device=device, cache_dir=cache_dir)
    except Exception as exc:
        if not real:
            raise
        raise _weights_error(name, pretrained, exc) from exc
    model.eval().requires_grad_(False)
    if prec.name != "fp32":
        model.visual.to(prec.dtype)
    fused_attention(model.visual)  # SDPA self-attention: faster than the native MHA path (bench extract)
    tokenizer = open_clip.get_tokenizer(name)
    visual = model.visual
    size = visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    with torch.no_grad():
        embed_dim = int(model.encode_text(tokenizer(["a"]).to(device)).shape[-1])
    bb = Backbone(model=model, preprocess=preprocess, tokenizer=tokenizer, name=name, pretrained=pretrained,
                  real_weights=real and not marked_random(pretrained),   # a file marked random is random
                  embed_dim=embed_dim, image_size=size, mean=mean, std=std, device=device,
                  precision=prec.name, precision_requested=prec.requested, precision_reason=prec.reason)
    bb.warn_if_random()
    return bb
