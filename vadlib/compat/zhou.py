"""Zhou et al.'s object-agnostic AnomalyCLIP (ICLR 2024; repo ``zqhang/AnomalyCLIP``; methods.md §3):
the published prompt checkpoint loaded into vadlib's :class:`~vadlib.prompts.learning.PromptLearner`,
the reference-mode switches, and the zero-shot DPAM maps of an imported checkpoint on video frames.

The checkpoint
--------------
``checkpoints/<run>/epoch_<k>.pth`` = ``torch.save({"prompt_learner": state_dict})`` of the
reference's prompt learner (ViT-L/14@336px: width ``W = 768``, ``E = 12`` context tokens, deep
prompts of depth 9 with 4 tokens, context length ``L = 77``). Key mapping (``j = 0 … depth-2``):

==================================================  =======================  ==========================================
reference key (under ``"prompt_learner"``)           shape                    vadlib
==================================================  =======================  ==========================================
``ctx_pos``                                          ``(1, 1, E, W)``         ``PromptLearner.ctx[0]`` (normal context)
``ctx_neg``                                          ``(1, 1, E, W)``         ``PromptLearner.ctx[1]`` (abnormal context)
``compound_prompts_text.{j}``                        ``(n, W)``               ``PromptLearner.deep[j]`` (text layer j+1)
``compound_prompt_projections.{j}.weight``           ``(896, W)``             none: created but never used by the
``compound_prompt_projections.{j}.bias``             ``(896,)``               reference; shape-checked, then dropped
``token_prefix_pos`` / ``token_prefix_neg``          ``(1, 1, 1, W)``         none: checked equal to the backbone's token
``token_suffix_pos`` / ``token_suffix_neg``          ``(1, 1, L-1-E, W)``     embedding of the prompt (vadlib recomputes
                                                                              it), so a wrong backbone is refused
``tokenized_prompts_pos`` / ``tokenized_prompts_neg``  ``(1, 1, L)``         none: must equal vadlib's tokens of
                                                                              ``"X…X object."`` / ``"X…X damaged object."``
==================================================  =======================  ==========================================

Unknown, missing or mis-shaped keys raise :class:`~vadlib.errors.DataError` listing all of them.

Reference-mode switches
-----------------------
Each deviation of vadlib from the reference code is a field of :class:`ZhouSwitches`; the
defaults are vadlib's behaviour, :data:`REFERENCE` sets every switch to the reference's:

* ``global_ln_post`` — vadlib's global image embedding is CLIP's (``ln_post`` then ``proj`` of the
  class token); the reference multiplies the original path's class token by ``proj`` without
  ``ln_post`` (``VisionTransformer.forward`` returns ``x_ori[0] @ proj``).
* ``deep_prompts_fp32`` — the reference casts the deep text prompts to float16 (``.half()``) before
  inserting them, even in a float32 model, so they lose precision; vadlib keeps them as they are.
* ``resize`` — vadlib resizes frames with antialiased bilinear interpolation in float; the
  reference with PIL bicubic on the uint8 image (result rounded to uint8).
* ``blur_at`` — vadlib upsamples the patch map to the frame and blurs there (σ in frame pixels);
  the reference upsamples to the input size ``S×S`` and blurs there (σ in input pixels).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from vadlib.compat._switches import ReferenceSwitches
from vadlib.errors import ConfigError, DataError
from vadlib.methods.zeroshot.dpam import BLUR_AT, RESIZES, DPAMEncoder, frame_anomaly_maps, image_anomaly_maps, video_anomaly_maps
from vadlib.prompts.learning import PromptLearner, PromptLearnerConfig, encode_text_with_embeddings

#: the reference's wording after the learnable context (``"{}"`` and ``"damaged {}"`` of ``"object"``, then ".")
NORMAL_SUFFIX = "object."
ABNORMAL_SUFFIX = "damaged object."
#: width of the reference's unused ``compound_prompt_projections`` (``nn.Linear(W, 896)``)
UNUSED_PROJECTION_WIDTH = 896
#: Zhou's settings for the published checkpoints (methods.md §3.1, §3.3)
ZHOU_IMAGE_SIZE = 518
ZHOU_DPAM_LAYERS = 19      # DPAM_layer = 20 in their code
ZHOU_SIGMA = 4.0
ZHOU_TAU = 0.07

_DEEP = re.compile(r"^compound_prompts_text\.(\d+)$")


@dataclass(frozen=True)
class ZhouSwitches(ReferenceSwitches):
    """Reference-mode switches (module docstring). Defaults = vadlib; :data:`REFERENCE` = the
    reference code's behaviour, flaws included."""

    KIND: ClassVar[str] = "zhou"
    REFERENCE_VALUES: ClassVar[Mapping[str, object]] = {"global_ln_post": False, "deep_prompts_fp32": False,
                                                         "resize": "pil_bicubic", "blur_at": "input"}

    global_ln_post: bool = True
    deep_prompts_fp32: bool = True
    resize: str = "bilinear"
    blur_at: str = "frame"

    def __post_init__(self):
        if self.resize not in RESIZES:
            raise ConfigError(f"zhou switch resize='{self.resize}' is unknown (known: {', '.join(RESIZES)})")
        if self.blur_at not in BLUR_AT:
            raise ConfigError(f"zhou switch blur_at='{self.blur_at}' is unknown (known: {', '.join(BLUR_AT)})")


DEFAULT = ZhouSwitches()
REFERENCE = ZhouSwitches.reference()


# --------------------------------------------------------------------------- the checkpoint
def _read(source) -> tuple[dict, Path | None]:
    path = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise DataError(path, "Zhou prompt checkpoint does not exist (expected checkpoints/<run>/epoch_<k>.pth)")
        try:
            source = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise DataError(path, f"cannot read the checkpoint ({exc.__class__.__name__}: {exc})") from exc
    if not isinstance(source, Mapping):
        raise DataError(path, f"a Zhou prompt checkpoint is a dict, got {type(source).__name__}")
    if "prompt_learner" in source:
        extra = sorted(set(source) - {"prompt_learner"})
        if extra:
            raise DataError(path, f"unknown top-level keys {extra} (the reference saves only 'prompt_learner')")
        source = source["prompt_learner"]
    elif "ctx_pos" not in source:
        raise DataError(path, f"not a Zhou prompt checkpoint: top-level keys {sorted(source)[:8]} "
                              "(expected {'prompt_learner': state_dict} as saved by the reference's train.py)")
    return dict(source), path


def config_from_state(state: Mapping, path: Path | None = None) -> PromptLearnerConfig:
    """The :class:`PromptLearnerConfig` a reference state dict was trained with (``n_ctx`` from
    ``ctx_pos``, deep depth / tokens from ``compound_prompts_text.*``)."""
    ctx = state.get("ctx_pos")
    if ctx is None or ctx.ndim != 4:
        raise DataError(path, f"ctx_pos must be a (1, 1, E, W) tensor, got "
                              f"{None if ctx is None else tuple(ctx.shape)}")
    deep = sorted(int(m.group(1)) for k in state if (m := _DEEP.match(k)))
    n_deep = deep[-1] + 1 if deep else 0
    deep_n = int(state[f"compound_prompts_text.{deep[0]}"].shape[0]) if deep else 4
    return PromptLearnerConfig(n_ctx=int(ctx.shape[2]), normal_suffix=NORMAL_SUFFIX, abnormal_suffix=ABNORMAL_SUFFIX,
                               deep_depth=n_deep + 1 if n_deep else 0, deep_n_ctx=deep_n)


def expected_shapes(learner: PromptLearner) -> dict[str, tuple[int, ...]]:
    """Every key of the reference layout for ``learner``'s configuration, with its shape."""
    e, w = learner.ctx.shape[1:]
    length = learner.tokens.shape[1]
    out: dict[str, tuple[int, ...]] = {"ctx_pos": (1, 1, e, w), "ctx_neg": (1, 1, e, w)}
    for j, d in enumerate(learner.deep):
        out[f"compound_prompts_text.{j}"] = tuple(d.shape)
        out[f"compound_prompt_projections.{j}.weight"] = (UNUSED_PROJECTION_WIDTH, w)
        out[f"compound_prompt_projections.{j}.bias"] = (UNUSED_PROJECTION_WIDTH,)
    for s in ("pos", "neg"):
        out[f"token_prefix_{s}"] = (1, 1, 1, w)
        out[f"token_suffix_{s}"] = (1, 1, length - 1 - e, w)
        out[f"tokenized_prompts_{s}"] = (1, 1, length)
    return out


def load_prompt_checkpoint(source, backbone, check_backbone: bool = True, atol: float = 1e-3) -> PromptLearner:
    """Load Zhou's ``epoch_<k>.pth`` (path, or the loaded dict) into a new :class:`PromptLearner`
    on ``backbone`` (ViT-L-14-336 for the published ones).

    Raises :class:`DataError` listing every unknown, missing or mis-shaped key; when the
    tokenised prompts differ from vadlib's; and (``check_backbone``) when the stored prompt
    token embeddings differ from ``backbone``'s by more than ``atol`` (the checkpoint was trained
    on another CLIP).
    """
    state, path = _read(source)
    cfg = config_from_state(state, path)
    width = backbone.model.token_embedding.weight.shape[1]
    if state["ctx_pos"].shape[-1] != width:
        raise DataError(path, f"ctx_pos has width {state['ctx_pos'].shape[-1]} but the backbone's text width is "
                              f"{width}: load the backbone the checkpoint was trained with (ViT-L-14-336, openai)")
    learner = PromptLearner(backbone, cfg)
    want = expected_shapes(learner)
    unknown = sorted(set(state) - set(want))
    missing = sorted(set(want) - set(state))
    misshaped = sorted(f"{k}: {tuple(state[k].shape)} != expected {want[k]}" for k in set(want) & set(state)
                       if tuple(state[k].shape) != want[k])
    if unknown or missing or misshaped:
        raise DataError(path, "the Zhou prompt checkpoint does not fit: "
                              + "; ".join(f"{name} {items}" for name, items in
                                          (("unknown keys", unknown), ("missing keys", missing),
                                           ("mis-shaped keys", misshaped)) if items))
    tokens = learner.tokens.cpu()
    for s, row in (("pos", 0), ("neg", 1)):
        stored = state[f"tokenized_prompts_{s}"].reshape(-1).long()
        if not torch.equal(stored, tokens[row].long()):
            raise DataError(path, f"tokenized_prompts_{s} differs from vadlib's tokens of the "
                                  f"{'normal' if row == 0 else 'abnormal'} prompt (another tokenizer or template)")
    if check_backbone:
        with torch.no_grad():
            emb = learner.clip.token_embedding(learner.tokens).float().cpu()
        e = cfg.n_ctx
        for s, row in (("pos", 0), ("neg", 1)):
            for part, ref in (("prefix", emb[row, :1]), ("suffix", emb[row, 1 + e:])):
                got = state[f"token_{part}_{s}"].reshape(ref.shape).float()
                diff = float((got - ref).abs().max())
                if diff > atol:
                    raise DataError(path, f"token_{part}_{s} differs from the backbone's token embedding "
                                          f"(max |diff| {diff:.3g} > {atol}): the checkpoint was trained on another "
                                          "CLIP; load that backbone (ViT-L-14-336, openai) or pass check_backbone=False")
    with torch.no_grad():
        learner.ctx[0].copy_(state["ctx_pos"][0, 0])
        learner.ctx[1].copy_(state["ctx_neg"][0, 0])
        for j, d in enumerate(learner.deep):
            d.copy_(state[f"compound_prompts_text.{j}"])
    return learner


# --------------------------------------------------------------------------- inference
def prompt_text_features(learner: PromptLearner, switches: ZhouSwitches = DEFAULT) -> torch.Tensor:
    """``(2, D)`` L2-normalised text features (normal, abnormal); with ``deep_prompts_fp32=False``
    the deep prompts are rounded to float16 first, as the reference does."""
    deep = list(learner.deep)
    if not switches.deep_prompts_fp32:
        deep = [d.half().to(d.dtype) for d in deep]
    feats = encode_text_with_embeddings(learner.clip, learner.embeddings(), learner.tokens, deep=deep)
    return F.normalize(feats.float(), dim=-1)


class ZhouZeroShot:
    """Zero-shot DPAM maps and image scores of a prompt learner (e.g. an imported checkpoint)
    on images or video frames.

    Args:
        backbone: the frozen CLIP (:func:`vadlib.features.load_backbone`).
        learner: from :func:`load_prompt_checkpoint` (or trained in vadlib).
        switches: :data:`DEFAULT` or :data:`REFERENCE` (or a mix).
        image_size: encoder input ``S`` (None = the backbone's; Zhou 518).
        n_layers: DPAM blocks (Zhou 19). sigma: Gaussian σ of the map (Zhou 4). tau: 0.07.
    """

    def __init__(self, backbone, learner: PromptLearner, switches: ZhouSwitches = DEFAULT,
                 image_size: int | None = None, n_layers: int = ZHOU_DPAM_LAYERS, sigma: float = ZHOU_SIGMA,
                 tau: float = ZHOU_TAU):
        self.backbone, self.learner, self.switches = backbone, learner, switches
        self.image_size = int(image_size or backbone.image_size)
        self.sigma, self.tau = float(sigma), float(tau)
        self.encoder = DPAMEncoder(backbone, n_layers=n_layers, global_ln_post=switches.global_ln_post)
        with torch.no_grad():
            self.text = prompt_text_features(learner, switches).to(backbone.device)

    @classmethod
    def from_checkpoint(cls, path, backbone, switches: ZhouSwitches = DEFAULT, **kw) -> "ZhouZeroShot":
        """Import ``epoch_<k>.pth`` and wrap it (``kw`` as the constructor)."""
        return cls(backbone, load_prompt_checkpoint(path, backbone), switches, **kw)

    def settings(self) -> dict:
        """What a report states: switches and settings."""
        return {"switches": self.switches.to_dict(), "image_size": self.image_size,
                "dpam_layers": self.encoder.n_layers, "sigma": self.sigma, "tau": self.tau,
                "real_weights": bool(getattr(self.backbone, "real_weights", True))}

    def image_maps(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed ``(B, 3, S, S)`` → ``(maps (B, S, S), scores (B,))`` (blurred at ``S×S``)."""
        return image_anomaly_maps(self.encoder, images.to(self.backbone.device), self.text, self.tau, self.sigma)

    def frame_maps(self, frames: np.ndarray, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        """uint8 frames ``(T, H, W[, 3])`` → ``(maps (T, H, W) float32, scores (T,))``."""
        return frame_anomaly_maps(self.encoder, frames, self.text, self.image_size, self.backbone.mean,
                                  self.backbone.std, self.tau, batch_size, self.sigma, self.switches.resize,
                                  self.switches.blur_at)

    def video_maps(self, video, frames: Sequence[int] | None = None, batch_size: int = 16
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Maps ``(T, H, W)`` and scores ``(T,)`` of a dataset :class:`Video` (aligned with ``masks()``)."""
        return video_anomaly_maps(self.encoder, video, self.text, self.backbone, self.tau, batch_size, self.sigma,
                                  frames, self.image_size, self.switches.resize, self.switches.blur_at)


def with_switches(model: ZhouZeroShot, **changes) -> ZhouZeroShot:
    """A copy of ``model`` with some switches changed (same learner and settings)."""
    return ZhouZeroShot(model.backbone, model.learner, replace(model.switches, **changes), model.image_size,
                        model.encoder.n_layers, model.sigma, model.tau)


_HEAT_MODELS: dict[tuple[str, int], ZhouZeroShot] = {}


def detect_heat_maps(checkpoint: str | Path, backbone, video, frame_index: np.ndarray,
                     switches: ZhouSwitches = DEFAULT, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``vadlib detect --heatmap --heatmap-prompts epoch_<k>.pth``: the zero-shot DPAM maps of an
    imported Zhou checkpoint on the encoded frames ``frame_index (N,)`` of ``video``, in detect's heat
    format ``(frame_index (N,), maps (N, H, W) float16 in [0, 1])`` (input 518 px, 19 DPAM blocks,
    σ = 4). The backbone must be the checkpoint's CLIP (ViT-L-14-336, openai) or the import refuses."""
    key = (str(Path(checkpoint).resolve()), id(backbone))
    if key not in _HEAT_MODELS:
        _HEAT_MODELS.clear()
        _HEAT_MODELS[key] = ZhouZeroShot.from_checkpoint(checkpoint, backbone, switches, image_size=ZHOU_IMAGE_SIZE)
    model = _HEAT_MODELS[key]
    frame_index = np.asarray(frame_index, np.int64)
    maps, _ = model.video_maps(video, frames=[int(i) for i in frame_index], batch_size=batch_size)
    return frame_index, np.clip(maps, 0.0, 1.0).astype(np.float16)
