"""ActionCLIP (Wang, Xing & Liu 2021): a CLIP fine-tuned on Kinetics-400 plus a temporal "visual prompt".

A clip of ``T`` frames is encoded as in the paper's video branch:

1. every frame goes through the CLIP image tower (open_clip, OpenAI layout, QuickGELU) → ``(B, T, D)``;
2. the *visual prompt* (``sim_header: Transf``, the variant of every published model): a learned
   frame-position embedding is added, a pre-LN transformer runs across the ``T`` frames, its output
   is added back to the frame features *as they were before the positions* (a residual), and the
   frames are averaged → ``(B, D)``.

Text goes through the bare CLIP text tower (``text_path = "text tower"``); the authors' 16 Kinetics
templates are :data:`ACTIONCLIP_TEMPLATES`.

Checkpoints are the authors' files (``torch.save`` of a dict):

* ``model_state_dict``: the whole CLIP in OpenAI key names (``visual.conv1.weight``,
  ``visual.transformer.resblocks.N.…``, ``transformer.resblocks.N.…``, ``token_embedding.weight``,
  ``positional_embedding``, ``text_projection``, ``logit_scale``…), often fp16;
* ``fusion_model_state_dict``: the visual prompt, saved from ``DataParallel`` so its keys may carry
  a ``module.`` prefix: ``frame_position_embeddings.weight`` ``(P, D)`` and
  ``transformer.resblocks.N.{ln_1,attn,ln_2,mlp.c_fc,mlp.c_proj}.…``;
* ``epoch``, ``optimizer_state_dict``: ignored.

The frame count: the position table has ``P = 77`` rows (the text context length) whatever ``T``
the model was trained with, so the tensors do not record ``T``; it is read from a top-level
``clip_len`` entry (written by :func:`make_tiny_checkpoint`; not in the authors' files), else from a
file name like ``vit-b-16-8f.pt`` / ``…_16frames.pt``, else it must be given (published: 8, 16, 32).
A requested ``clip_len`` that differs from a recorded one is refused.

The visual prompt is written here from the paper and the checkpoint's tensor names and shapes; its
blocks are open_clip's :class:`~open_clip.transformer.Transformer` (same parameter layout) with
QuickGELU and LayerNorm eps 1e-12, as in the published module.

A video shorter than one clip is filled as the authors' test-time sampler does: every frame repeated
in order (:func:`short_video_indices`).

Command line: ``python -m vadlib.features.backbones.actionclip --make-tiny PATH`` writes a tiny
random ActionCLIP in the published layout (``vadlib-tiny`` tower + 1-layer visual prompt).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from vadlib.errors import ConfigError, DataError, WeightsUnavailableError, cli_errors
from vadlib.features.precision import resolve_precision
from vadlib.io import atomic_path

# The open_clip backbone module: the one place this file imports it from.
from vadlib.features.backbones.base import BackboneIdentity, RandomWeightsWarning
from vadlib.features.backbones.open_clip import (RANDOM, TINY, Backbone, _register_configs, mark_random_weights,
                                                 marked_random)

#: The authors' Kinetics prompt templates (ActionCLIP ``modules/Text_Prompt.py``), ``{}`` = the class text.
ACTIONCLIP_TEMPLATES: list[str] = [
    "a photo of action {}", "a picture of action {}", "Human action of {}", "{}, an action",
    "{} this is an action", "{}, a video of action", "Playing action of {}", "{}",
    "Playing a kind of action, {}", "Doing a kind of action, {}", "Look, the human is {}",
    "Can you recognize the action of {}?", "Video classification of {}", "A video of {}",
    "The man is {}", "The woman is {}",
]

NAME_PREFIX = "actionclip/"
MODEL_KEY = "model_state_dict"
FUSION_KEY = "fusion_model_state_dict"
#: vadlib's extension of the file layout: the frames per clip the model was trained with
CLIP_LEN_KEY = "clip_len"
PUBLISHED_CLIP_LENS = (8, 16, 32)
DEFAULT_RANDOM_CLIP_LEN = 8
#: layers of a random visual prompt: 6 as published, 1 for the tiny test tower
RANDOM_FUSION_LAYERS: dict[str, int] = {TINY: 1}
PUBLISHED_FUSION_LAYERS = 6
#: keys of OpenAI's JIT archives that are not parameters
_OPENAI_META_KEYS = ("input_resolution", "context_length", "vocab_size")
#: fusion keys of the authors' other visual prompts, which vadlib does not implement
_OTHER_PROMPTS: dict[str, str] = {"lstm_visual.": "LSTM", "shift.": "Conv_1D", "transformer.cls_token": "Transf_cls",
                                  "transformer.pos_embed": "Transf_cls", "transformer.transformer_enc.": "Transf_cls"}
_FILE_FRAMES = re.compile(r"(?:^|[-_.])(\d+)[-_]?f(?:rames?)?(?=$|[-_.])", re.IGNORECASE)
_SHOW = 10  # keys listed per kind in an error


class VisualPrompt(nn.Module):
    """ActionCLIP's ``Transf`` visual prompt: positions, a temporal transformer, a residual, the frame mean.

    Parameters carry the checkpoint's names: ``frame_position_embeddings.weight`` ``(positions, D)``
    and ``transformer.resblocks.N.…`` (open_clip's pre-LN block layout).
    """

    def __init__(self, width: int, layers: int, heads: int, positions: int = 77):
        super().__init__()
        from open_clip.transformer import LayerNorm, QuickGELU, Transformer

        if width % heads:
            raise ConfigError(f"ActionCLIP visual prompt: width {width} is not divisible by {heads} heads")
        self.frame_position_embeddings = nn.Embedding(positions, width)
        self.transformer = Transformer(width, layers, heads, act_layer=QuickGELU,
                                       norm_layer=functools.partial(LayerNorm, eps=1e-12), batch_first=True)

    @property
    def positions(self) -> int:
        return int(self.frame_position_embeddings.num_embeddings)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(B, T, D)`` per-frame image features → ``(B, D)`` clip features (in the module's dtype)."""
        if frames.ndim != 3 or frames.shape[1] > self.positions:
            raise ConfigError(f"ActionCLIP visual prompt takes (B, T<={self.positions}, D) frame features, "
                              f"got {tuple(frames.shape)}")
        x0 = frames.to(self.frame_position_embeddings.weight.dtype)
        x = x0 + self.frame_position_embeddings.weight[: x0.shape[1]].unsqueeze(0)
        x = self.transformer(x) + x0
        return x.mean(dim=1)


def short_video_indices(n_frames: int, clip_len: int) -> np.ndarray:
    """Frame indices ``(clip_len,)`` for a video of ``n_frames <= clip_len`` frames, as the authors' test-time
    sampler fills a clip (``datasets.py``, ``loop=False``): frame ``i * n_frames // clip_len`` at slot ``i``,
    i.e. every frame repeated in order (3 frames into 8: 0 0 0 1 1 1 2 2)."""
    if n_frames < 1:
        raise DataError(None, f"a video of {n_frames} frames cannot fill an ActionCLIP clip")
    if n_frames > clip_len:
        raise ConfigError(f"short_video_indices: {n_frames} frames fill a clip of {clip_len} without padding")
    return np.arange(clip_len, dtype=np.int64) * n_frames // clip_len


def fusion_heads(text_width: int) -> int:
    """The visual prompt's head count: the authors derive it from the text width (width // 64, min 1)."""
    return max(1, int(text_width) // 64)


@dataclass(kw_only=True)
class ActionClipBackbone(BackboneIdentity):
    """A frozen ActionCLIP: open_clip CLIP (``model``) + visual prompt (``fusion``).

    Attributes:
        name: ``actionclip/<arch>``; pretrained: the checkpoint path or ``"random"``.
        real_weights: False for ``"random"`` (outputs are warned about and marked).
        embed_dim, image_size, mean, std, device: as :class:`vadlib.features.backbones.open_clip.Backbone`.
        clip_len: frames per clip the model takes; ``clip_len_source`` says where it came from.
        precision, precision_requested, precision_reason: as ``Backbone`` (non-fp32 casts the image
            tower and the visual prompt; the text tower stays fp32).
        kind: ``"clip"`` (one feature per clip of ``clip_len`` frames); text_path: ``"text tower"``.
        resize_scale: the authors' test view resizes the shorter side to ``image_size * resize_scale``
            before the centre crop (256 for 224); an extractor that follows them reads it here.
    """

    model: torch.nn.Module
    fusion: VisualPrompt
    preprocess: Callable
    tokenizer: Callable
    clip_len: int
    clip_len_source: str = "requested"
    kind: str = "clip"
    text_path: str = "text tower"
    #: the authors' evaluation view: shorter side to ``image_size * 256 / 224`` (bicubic), centre crop
    #: ``image_size`` (``utils/Augmentation.py``); open_clip's own preprocess resizes to ``image_size``
    resize_scale: float = 256 / 224

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the image tower's weights (clip inputs are cast to it)."""
        return next(self.model.visual.parameters()).dtype



    def to(self, device: str | torch.device) -> "ActionClipBackbone":
        """Move the CLIP and the visual prompt to ``device`` (the extractor calls this: ``model`` alone
        would leave the visual prompt behind)."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self.fusion.to(self.device)
        return self

    def short_video_indices(self, n_frames: int) -> np.ndarray:
        """``(clip_len,)`` frame indices padding a video shorter than one clip, as the authors do
        (:func:`short_video_indices`: every frame repeated in order)."""
        return short_video_indices(n_frames, self.clip_len)

    @torch.no_grad()
    def encode_frames(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, S, S)`` preprocessed clips → ``(B, T, D)`` per-frame CLIP image features (tower dtype)."""
        if clips.ndim != 5 or clips.shape[2] != 3:
            raise ConfigError(f"{self.name}: encode_clips takes (B, T, 3, S, S) clips, got {tuple(clips.shape)}")
        b, t = clips.shape[:2]
        if t != self.clip_len:
            raise ConfigError(f"{self.name}: clips of {t} frames given, the model takes clip_len={self.clip_len} "
                              f"({self.clip_len_source}); sample clips of {self.clip_len} frames")
        p = next(self.model.visual.parameters())
        x = clips.reshape(b * t, *clips.shape[2:]).to(p.device, p.dtype)
        return self.model.encode_image(x).reshape(b, t, -1)

    @torch.no_grad()
    def encode_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, S, S)`` preprocessed clips (``T = clip_len``) → ``(B, D)`` float32 raw clip features
        (per-frame image tower, then the visual prompt; computed in the backbone's precision)."""
        return self.fusion(self.encode_frames(clips)).float()

    #: texts → ``(N, D)`` float32 embeddings from the CLIP text tower (L2-normalised by default), as the
    #: open_clip backbone encodes them: the same model class and tokenizer
    encode_text = Backbone.encode_text



# ---------------------------------------------------------------------------------------------- loading

def _arch(arch: str) -> str:
    import open_clip

    _register_configs()
    arch = arch[len(NAME_PREFIX):] if arch.startswith(NAME_PREFIX) else arch
    known = open_clip.list_models()
    if arch not in known:
        close = [m for m in known if arch.lower().replace("/", "-") in m.lower()][:8]
        raise ConfigError(f"ActionCLIP: unknown CLIP architecture '{arch}' (published: ViT-B-16, ViT-B-32; tests: "
                          f"{TINY})" + (f"; open_clip has e.g. {', '.join(close)}" if close else ""))
    return arch


def _build_tower(arch: str, seed: int) -> tuple[nn.Module, Callable]:
    """open_clip ``arch`` with random weights (seeded, caller's RNG untouched) and QuickGELU like OpenAI's CLIP."""
    import open_clip

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=None, force_quick_gelu=True)
    return model, preprocess


def _random_fusion(width: int, layers: int, heads: int, positions: int, seed: int) -> VisualPrompt:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        fusion = VisualPrompt(width, layers, heads, positions)
        for m in fusion.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
    return fusion


def _text_width(model: nn.Module) -> int:
    text = model if hasattr(model, "ln_final") else model.text      # CLIP, or CustomTextCLIP's text tower
    return int(text.ln_final.weight.shape[0])


def _unprefix(sd: Mapping[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    keys = list(sd)
    if keys and all(k.startswith(prefix) for k in keys):
        return {k[len(prefix):]: v for k, v in sd.items()}
    return dict(sd)


def openai_to_open_clip(sd: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """OpenAI-CLIP key names → ``model``'s (open_clip keeps OpenAI's names for its ``CLIP``; a
    ``CustomTextCLIP`` moves the text tower under ``text.``, open_clip's own converter)."""
    from open_clip.model import convert_to_custom_text_state_dict

    out = {k: v for k, v in _unprefix(sd).items() if k not in _OPENAI_META_KEYS}
    return convert_to_custom_text_state_dict(out) if hasattr(model, "text") else out


def open_clip_to_openai(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`openai_to_open_clip` (for writing files in the published layout)."""
    return {(k[len("text."):] if k.startswith("text.") else k): v for k, v in sd.items()}


def _load_exact(module: nn.Module, sd: Mapping[str, torch.Tensor], path: Path, entry: str, hint: str) -> None:
    """Load ``sd`` into ``module``, refusing any missing, unexpected or mis-shaped key (all listed)."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shaped = [f"{k} {tuple(sd[k].shape)} (expected {tuple(own[k].shape)})" for k in own
              if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shaped:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shaped)):
            if keys:
                more = f" … and {len(keys) - _SHOW} more" if len(keys) > _SHOW else ""
                parts.append(f"{len(keys)} {what}: {', '.join(keys[:_SHOW])}{more}")
        raise DataError(path, f"'{entry}' does not fit {hint}: " + "; ".join(parts))
    module.load_state_dict({k: sd[k] for k in own}, strict=True)  # copy_ casts fp16 files to the module's dtype


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise WeightsUnavailableError(
            f"ActionCLIP checkpoint not found: {path}. Download the authors' Kinetics-400 file (see "
            "github.com/sallymmx/ActionCLIP, 'Pretrained Models') and give its path, or use 'random' "
            "for plumbing checks only (outputs are marked RANDOM WEIGHTS).")
    try:
        try:   # memory-mapped: the authors' files also hold Adam moments (2x the weights), never read here
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc):
                raise
            ckpt = torch.load(path, map_location="cpu", weights_only=True)   # a legacy (non-zip) file
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0][:200]
        raise DataError(path, f"cannot read as a torch checkpoint ({exc.__class__.__name__}: {first})") from exc
    if not isinstance(ckpt, Mapping):
        raise DataError(path, f"an ActionCLIP checkpoint is a dict with '{MODEL_KEY}' and '{FUSION_KEY}'; "
                              f"this file holds a {type(ckpt).__name__}")
    for key, what in ((MODEL_KEY, "the CLIP weights"), (FUSION_KEY, "the fusion (visual prompt) weights")):
        if not isinstance(ckpt.get(key), Mapping):
            raise DataError(path, f"missing '{key}' ({what}); the file has top-level keys "
                                  f"{sorted(map(str, ckpt))}. An ActionCLIP checkpoint (ActionCLIP's train.py) holds "
                                  f"'{MODEL_KEY}' and '{FUSION_KEY}'; a plain CLIP file is not one "
                                  "(load it as an open_clip backbone instead)")
    return ckpt


def _fusion_from_state(sd: Mapping[str, torch.Tensor], text_width: int, path: Path) -> VisualPrompt:
    """A visual prompt sized from the fusion tensors (positions and width from the position table,
    depth from the block indices; heads as the authors derive them)."""
    if not sd:
        raise DataError(path, f"'{FUSION_KEY}' is empty: a 'meanP' model (no fusion weights); vadlib implements the "
                              "'Transf' visual prompt of the published models")
    other = sorted({name for k in sd for pre, name in _OTHER_PROMPTS.items() if k.startswith(pre)})
    if other:
        raise DataError(path, f"'{FUSION_KEY}' is a '{other[0]}' visual prompt; vadlib implements the 'Transf' "
                              "visual prompt of the published models")
    table = sd.get("frame_position_embeddings.weight")
    if table is None or table.ndim != 2:
        raise DataError(path, f"'{FUSION_KEY}' has no 2-d 'frame_position_embeddings.weight' (keys: "
                              f"{', '.join(sorted(sd)[:_SHOW])}); not an ActionCLIP 'Transf' visual prompt")
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k))}
    if not blocks:
        raise DataError(path, f"'{FUSION_KEY}' has no 'transformer.resblocks.N.' tensors")
    positions, width = (int(s) for s in table.shape)
    return VisualPrompt(width, max(blocks) + 1, fusion_heads(text_width), positions)


def recorded_clip_len(ckpt: Mapping, path: Path) -> tuple[int | None, str]:
    """The frame count a checkpoint records: its ``clip_len`` entry, else its file name (``…-8f.pt``)."""
    if CLIP_LEN_KEY in ckpt:
        return int(ckpt[CLIP_LEN_KEY]), f"the file's '{CLIP_LEN_KEY}' entry"
    found = _FILE_FRAMES.findall(path.stem)
    if len(found) == 1:
        return int(found[0]), f"the file name '{path.name}'"
    return None, "not recorded"


def _resolve_clip_len(requested: int | None, recorded: int | None, source: str, positions: int,
                      where: str) -> tuple[int, str]:
    if requested is not None and recorded is not None and int(requested) != recorded:
        raise ConfigError(f"{where}: clip_len={requested} requested, but the checkpoint was trained with {recorded} "
                          f"frames per clip ({source}); set clip_len to {recorded} (or leave it unset)")
    if requested is None and recorded is None:
        raise ConfigError(f"{where}: the checkpoint does not record its frames per clip (ActionCLIP's visual prompt "
                          f"keeps {positions} position rows whatever it was trained with); give clip_len, the "
                          "n-frame of the file's model-zoo row (published: "
                          f"{', '.join(map(str, PUBLISHED_CLIP_LENS))})")
    clip_len, how = (recorded, source) if recorded is not None else (int(requested), "requested")
    if not 1 <= clip_len <= positions:
        raise ConfigError(f"{where}: clip_len={clip_len} is outside 1..{positions}, the rows of the visual prompt's "
                          "frame position table")
    return clip_len, how


def load_actionclip(arch: str, pretrained: str, device: str | torch.device = "cpu", random_seed: int = 0,
                    precision: str = "fp32", clip_len: int | None = None) -> ActionClipBackbone:
    """Build a frozen ActionCLIP.

    Args:
        arch: the CLIP architecture as an open_clip name (``ViT-B-16``, ``ViT-B-32``; ``vadlib-tiny`` for
            tests); an ``actionclip/`` prefix is accepted.
        pretrained: a local ActionCLIP checkpoint (the authors' layout, see the module doc), or
            ``"random"`` (explicit random weights: a 6-layer visual prompt, 1 for ``vadlib-tiny``).
        device: torch device.
        random_seed: seed of the random weights (the caller's RNG is left untouched).
        precision: ``auto`` | ``fp32`` | ``bf16`` | ``fp16`` (CUDA), resolved by
            :func:`~vadlib.features.precision.resolve_precision`; non-fp32 casts the image tower and the
            visual prompt, the text tower stays fp32.
        clip_len: frames per clip; must match the frame count a checkpoint records; required when it
            records none; defaults to 8 for random weights.
    Raises:
        ConfigError: unknown architecture; empty ``pretrained``; clip_len mismatch or missing; precision.
        WeightsUnavailableError: the checkpoint file does not exist.
        DataError: the file is not an ActionCLIP checkpoint (missing fusion weights, missing / unexpected /
            mis-shaped keys, all listed).
    """
    import open_clip

    arch = _arch(arch)
    if not pretrained:
        raise ConfigError(f"ActionCLIP '{arch}': give a checkpoint path, or 'random' explicitly")
    device = torch.device(device)
    prec = resolve_precision(precision, device)
    name = NAME_PREFIX + arch
    real = pretrained != RANDOM
    # a local file whose sidecar says it holds random weights (make_tiny_checkpoint, bench dryrun) is random
    real_weights = real and not marked_random(pretrained)
    model, preprocess = _build_tower(arch, random_seed)
    text_width = _text_width(model)
    if real:
        path = Path(pretrained)
        ckpt = _read_checkpoint(path)
        fusion = _fusion_from_state(_unprefix(ckpt[FUSION_KEY]), text_width, path)
        hint = f"open_clip '{arch}' (is the architecture right? the published files are ViT-B-16 or ViT-B-32)"
        _load_exact(model, openai_to_open_clip(ckpt[MODEL_KEY], model), path, MODEL_KEY, hint)
        _load_exact(fusion, _unprefix(ckpt[FUSION_KEY]), path, FUSION_KEY, f"a {len(fusion.transformer.resblocks)}"
                    f"-layer visual prompt of width {fusion.frame_position_embeddings.embedding_dim}")
        rec, source = recorded_clip_len(ckpt, path)
        clip_len, how = _resolve_clip_len(clip_len, rec, source, fusion.positions, f"ActionCLIP file {path}")
        del ckpt
    else:
        context = int(model.positional_embedding.shape[0]) if hasattr(model, "positional_embedding") else 77
        embed = int(model.visual.proj.shape[1]) if getattr(model.visual, "proj", None) is not None else text_width
        fusion = _random_fusion(embed, RANDOM_FUSION_LAYERS.get(arch, PUBLISHED_FUSION_LAYERS),
                                fusion_heads(text_width), context, random_seed)
        clip_len, how = (DEFAULT_RANDOM_CLIP_LEN, "default for random weights") if clip_len is None else \
            _resolve_clip_len(clip_len, None, "", fusion.positions, f"ActionCLIP '{arch}' (random)")
    model.eval().requires_grad_(False)
    fusion.eval().requires_grad_(False)
    model.to(device)
    fusion.to(device)
    if prec.name != "fp32":
        model.visual.to(prec.dtype)
        fusion.to(prec.dtype)
    tokenizer = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    with torch.no_grad():
        embed_dim = int(model.encode_text(tokenizer(["a"]).to(device)).shape[-1])
    if embed_dim != fusion.frame_position_embeddings.embedding_dim:
        raise DataError(Path(pretrained) if real else None,
                        f"the visual prompt's width {fusion.frame_position_embeddings.embedding_dim} differs from "
                        f"the CLIP embedding width {embed_dim} of '{arch}'")
    bb = ActionClipBackbone(model=model, fusion=fusion, preprocess=preprocess, tokenizer=tokenizer, name=name,
                            pretrained=str(pretrained), real_weights=real_weights, embed_dim=embed_dim, image_size=size,
                            mean=mean, std=std, device=device, clip_len=clip_len, clip_len_source=how,
                            precision=prec.name, precision_requested=prec.requested, precision_reason=prec.reason)
    bb.warn_if_random()
    return bb


# ------------------------------------------------------------------------------------ writing tiny files

def checkpoint_dict(bb: ActionClipBackbone, record_clip_len: bool = True, half: bool = False) -> dict:
    """``bb``'s weights in the authors' file layout: OpenAI names for ``model_state_dict`` (fp16 when
    ``half``, as the authors' GPU-trained files), ``module.``-prefixed ``fusion_model_state_dict``
    (their ``DataParallel`` wrapper), ``epoch``; plus vadlib's ``clip_len`` entry when ``record_clip_len``."""
    model_sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone()
                for k, v in open_clip_to_openai(bb.model.state_dict()).items()}
    fusion_sd = {f"module.{k}": v.detach().float().cpu().clone() for k, v in bb.fusion.state_dict().items()}
    out = {"epoch": 0, MODEL_KEY: model_sd, FUSION_KEY: fusion_sd}
    if record_clip_len:
        out[CLIP_LEN_KEY] = int(bb.clip_len)
    return out


def make_tiny_checkpoint(path: str | Path, clip_len: int = DEFAULT_RANDOM_CLIP_LEN, seed: int = 0,
                         arch: str = TINY, record_clip_len: bool = True, half: bool = False) -> Path:
    """Write a random ActionCLIP (``arch`` tower + its random visual prompt: 1 layer for ``vadlib-tiny``)
    in the authors' checkpoint layout to ``path`` (atomically), with the sidecar ``<path>.vadlib.json``
    saying its weights are RANDOM (:func:`~vadlib.features.backbones.open_clip.mark_random_weights`), so
    every output of a backbone loaded from it is marked RANDOM WEIGHTS."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        bb = load_actionclip(arch, RANDOM, random_seed=seed, clip_len=clip_len)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(checkpoint_dict(bb, record_clip_len=record_clip_len, half=half), tmp)
    mark_random_weights(path, made_by="vadlib.features.backbones.actionclip.make_tiny_checkpoint", seed=seed)
    return path


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.features.backbones.actionclip",
                                 description="Write a tiny RANDOM-weight ActionCLIP checkpoint in the authors' layout.")
    ap.add_argument("--make-tiny", metavar="PATH", required=True, help="output .pt file")
    ap.add_argument("--clip-len", type=int, default=DEFAULT_RANDOM_CLIP_LEN, help="frames per clip (default 8)")
    ap.add_argument("--arch", default=TINY, help=f"open_clip architecture (default {TINY})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--unrecorded", action="store_true",
                    help="omit vadlib's clip_len entry, exactly as the authors' files (then loading needs clip_len)")
    ap.add_argument("--fp16", action="store_true", help="store the CLIP weights in fp16, as the authors' files")
    a = ap.parse_args(argv)
    out = make_tiny_checkpoint(a.make_tiny, clip_len=a.clip_len, seed=a.seed, arch=a.arch,
                               record_clip_len=not a.unrecorded, half=a.fp16)
    print(f"wrote {out} (ActionCLIP layout, {a.arch}, clip_len {a.clip_len}"
          f"{'' if not a.unrecorded else ' not recorded'}, RANDOM WEIGHTS)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
