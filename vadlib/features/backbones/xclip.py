"""X-CLIP (Ni et al., ECCV 2022) through ``transformers.XCLIPModel``: a video backbone of ``kind = "clip"``.

``load_xclip(pretrained)`` takes a Hugging Face hub id (``microsoft/xclip-base-patch32`` and
``microsoft/xclip-base-patch16`` take 8-frame clips, ``microsoft/xclip-base-patch32-16-frames`` and
``microsoft/xclip-base-patch16-16-frames`` 16-frame clips) or a local directory holding such a
checkpoint (``config.json`` + ``model.safetensors`` / ``pytorch_model.bin``, as
``XCLIPModel.save_pretrained`` writes it). ``xclip-tiny`` is a small random-weight
:class:`~transformers.XCLIPConfig` (30 px frames, patch 2, 8 frames, width 32) that runs the real
``transformers`` code path in a second — for tests only; its outputs are marked RANDOM WEIGHTS.

Clip features: the per-frame CLS embeddings (vision tower → ``visual_projection``) go through the
multi-frame integration transformer (``mit``) → ``(B, D)``, exactly ``XCLIPModel.get_video_features``.

Prompts (``text_path = "video-conditioned prompt generator"``): X-CLIP's ``forward`` adds to each
prompt's text-tower embedding the output of its prompt generator, which cross-attends to the clip's
visual tokens (``prompts_visual_layernorm`` → ``prompts_visual_projection``, averaged over the
frames). :meth:`XClipBackbone.encode_clips_aux` returns those ``(B, P, D)`` tokens beside the clip
features (the feature store keeps them as the ``prompt_tokens`` aux array) and
:meth:`XClipBackbone.condition_text` applies the generator: ``(K, D)`` raw prompt embeddings →
``(B, K, D)`` normalised per-clip prompt embeddings, the ``text_embeds`` of ``XCLIPModel.forward``.

Text is tokenised with open_clip's CLIP BPE tokenizer (the vocabulary X-CLIP's ``CLIPTokenizer``
uses; 77 tokens, pooled at the end-of-text token), so no tokenizer files need downloading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from vadlib.errors import ConfigError, WeightsUnavailableError
from vadlib.features.backbones.base import AUX_PROMPT_TOKENS, PROMPT_GENERATOR, BackboneIdentity
from vadlib.features.backbones.open_clip import RANDOM
from vadlib.features.precision import resolve_precision

XCLIP = "xclip"
XCLIP_TINY = "xclip-tiny"
HUB_IDS = ("microsoft/xclip-base-patch32", "microsoft/xclip-base-patch16",
           "microsoft/xclip-base-patch32-16-frames", "microsoft/xclip-base-patch16-16-frames")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)   # X-CLIP's image processor (CLIP's normalisation)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def tiny_config():
    """The small ``XCLIPConfig`` of ``xclip-tiny``: vision 30 px / patch 2 / 8 frames / width 32,
    ``mit_hidden_size == projection_dim`` (transformers requires it), 2-layer towers."""
    from transformers import XCLIPConfig

    return XCLIPConfig(
        text_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4},
        vision_config={"image_size": 30, "patch_size": 2, "num_frames": 8, "hidden_size": 32,
                       "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "mit_hidden_size": 32, "mit_intermediate_size": 64, "mit_num_hidden_layers": 1,
                       "mit_num_attention_heads": 4},
        projection_dim=32, prompt_layers=1, prompt_num_attention_heads=4)


@dataclass(kw_only=True)
class XClipBackbone(BackboneIdentity):
    """A frozen ``XCLIPModel`` (see the module docstring); conforms to
    :class:`~vadlib.features.backbones.base.ClipBackbone`."""

    model: Any
    tokenizer: Any
    clip_len: int
    kind: ClassVar[str] = "clip"
    text_path: ClassVar[str] = PROMPT_GENERATOR
    aux: ClassVar[str] = AUX_PROMPT_TOKENS




    @property
    def text_clip(self) -> OpenClipTextView:
        """The text tower with open_clip's attributes, for prompt learning (:class:`OpenClipTextView`)."""
        view = self.__dict__.get("_text_clip")
        if view is None:
            view = self.__dict__["_text_clip"] = OpenClipTextView(self.model)
        return view

    def _check_clips(self, clips: torch.Tensor) -> None:
        if clips.ndim != 5 or clips.shape[2] != 3:
            raise ConfigError(f"{self.name}: encode_clips takes (B, T, 3, S, S) clips, got {tuple(clips.shape)}")
        if clips.shape[1] != self.clip_len:
            raise ConfigError(f"{self.name} ({self.pretrained}) was trained on {self.clip_len}-frame clips; "
                              f"got clips of {clips.shape[1]} frames (set the clip length to {self.clip_len}, "
                              "or choose a checkpoint of that frame count)")

    @torch.no_grad()
    def encode_clips_aux(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, 3, S, S)`` → ``(B, D)`` clip features and ``(B, P, D)`` frame-averaged visual
        tokens for the prompt generator (both float32)."""
        self._check_clips(clips)
        m = self.model
        b, t = clips.shape[:2]
        vdtype = next(m.vision_model.parameters()).dtype
        out = m.vision_model(pixel_values=clips.reshape(b * t, *clips.shape[2:]).to(self.device, vdtype))
        cls = m.visual_projection(out.pooler_output.float()).view(b, t, -1)
        video = m.mit(cls).pooler_output.float()
        tokens = m.prompts_visual_layernorm(out.last_hidden_state[:, 1:, :].float()) @ m.prompts_visual_projection
        tokens = tokens.view(b, t, -1, tokens.shape[-1]).mean(1)
        return video, tokens.float()

    def encode_clips(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, S, S)`` preprocessed clips → ``(B, D)`` float32 raw clip features."""
        return self.encode_clips_aux(clips)[0]

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], normalize: bool = True) -> torch.Tensor:
        """Texts → ``(N, D)`` text-tower embeddings (``get_text_features``; L2-normalised by default).
        Scores use :meth:`condition_text` on the raw ones (``normalize=False``)."""
        if len(texts) == 0:
            raise ConfigError("encode_text got an empty prompt list")
        tokens = self.tokenizer(list(texts)).to(self.device)
        out = self.model.text_model(input_ids=tokens, attention_mask=(tokens != 0).long())
        feats = self.model.text_projection(out.pooler_output).float()
        return torch.nn.functional.normalize(feats, dim=-1) if normalize else feats

    @torch.no_grad()
    def condition_text(self, text: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """X-CLIP's video-conditioned prompts: ``text (K, D)`` raw text-tower embeddings and
        ``tokens (B, P, D)`` (from :meth:`encode_clips_aux`) → ``(B, K, D)`` L2-normalised per-clip
        prompt embeddings (``text + prompts_generator(text, tokens)``, as ``XCLIPModel.forward``)."""
        text = torch.as_tensor(text, dtype=torch.float32, device=self.device)
        tokens = torch.as_tensor(tokens, dtype=torch.float32, device=self.device)
        if tokens.ndim != 3 or text.ndim != 2 or tokens.shape[-1] != text.shape[-1]:
            raise ConfigError(f"condition_text: text (K, D) and tokens (B, P, D) expected, got "
                              f"{tuple(text.shape)} and {tuple(tokens.shape)}")
        t = text.unsqueeze(0).expand(tokens.shape[0], -1, -1)
        t = t + self.model.prompts_generator(t, tokens)
        return torch.nn.functional.normalize(t, dim=-1)


class OpenClipTextView(torch.nn.Module):
    """X-CLIP's text tower seen through the attributes of an open_clip ``CLIP`` that prompt learning
    (:func:`vadlib.prompts.learning.encode_text_with_embeddings`, AnomalyCLIP's learned prompts)
    reads: ``token_embedding``, ``positional_embedding``, ``transformer`` (``resblocks``,
    ``batch_first``, ``get_cast_dtype``), ``attn_mask`` (causal), ``ln_final``, ``text_projection``,
    ``text_pool_type = "argmax"`` (X-CLIP pools at the end-of-text token, the largest id). The
    modules are X-CLIP's own (shared, frozen), so ``encode_text`` through this view equals
    :meth:`XClipBackbone.encode_text`."""

    text_pool_type = "argmax"
    text_eos_id = None

    def __init__(self, model):
        super().__init__()
        tm = model.text_model
        self.token_embedding = tm.embeddings.token_embedding
        self.positional_embedding = tm.embeddings.position_embedding.weight
        self.ln_final = tm.final_layer_norm
        self.text_projection = model.text_projection
        self.transformer = _TextBlocks(tm.encoder.layers)
        n = self.positional_embedding.shape[0]
        self.register_buffer("attn_mask", torch.full((n, n), float("-inf")).triu_(1), persistent=False)


class _Block(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = None if attn_mask is None else attn_mask.to(x.dtype)[None, None]
        return self.layer(x, attention_mask=mask)


class _TextBlocks(torch.nn.Module):
    batch_first = True

    def __init__(self, layers):
        super().__init__()
        self.resblocks = torch.nn.ModuleList(_Block(layer) for layer in layers)

    def get_cast_dtype(self) -> torch.dtype:
        return next(self.resblocks.parameters()).dtype

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        for blk in self.resblocks:
            x = blk(x, attn_mask=attn_mask)
        return x


def _weights_error(pretrained: str, exc: BaseException) -> WeightsUnavailableError:
    hub = pretrained if pretrained.count("/") == 1 and not Path(pretrained).exists() \
        and not pretrained.startswith((".", "/")) else HUB_IDS[0]
    return WeightsUnavailableError(
        f"cannot load X-CLIP weights '{pretrained}' ({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).\n"
        "Remedies:\n"
        f"  1. on a machine with network: python -c \"from transformers import XCLIPModel; "
        f"XCLIPModel.from_pretrained('{hub}').save_pretrained('xclip-local')\" and copy the folder here, "
        "then give it as the pretrained (backbone.pretrained / --pretrained xclip-local); or copy the Hugging Face "
        "cache (~/.cache/huggingface) here;\n"
        f"  2. known hub ids: {', '.join(HUB_IDS)};\n"
        "  3. for plumbing checks only: backbone xclip-tiny with pretrained random (outputs marked RANDOM WEIGHTS).")


def _open_clip_tokenizer():
    import open_clip

    return open_clip.get_tokenizer("ViT-B-32")   # CLIP's BPE, 77 tokens: X-CLIP's vocabulary


def _local_dir(pretrained: str) -> Path | None:
    p = Path(pretrained)
    if p.is_dir():
        return p
    if p.is_file() and (p.parent / "config.json").is_file():
        return p.parent
    return None


def load_xclip(name: str, pretrained: str | None, device: str | torch.device = "cpu", cache_dir: str | None = None,
               random_seed: int = 0, precision: str = "fp32", clip_len: int | None = None) -> XClipBackbone:
    """Build a frozen X-CLIP backbone.

    Args:
        name: ``"xclip"`` (``pretrained`` = a hub id or a local checkpoint directory; ``"random"`` = the
            xclip-base-patch32 architecture with random weights, for speed benches) or ``"xclip-tiny"``
            (``pretrained`` must be ``"random"``).
        device, cache_dir, random_seed, precision: as :func:`~vadlib.features.backbones.load_backbone`
            (non-fp32 casts the vision tower; the text tower, ``mit`` and prompt generator stay fp32).
        clip_len: the frames per clip asked for (``None`` = the checkpoint's); another count than the
            checkpoint's raises.
    Raises:
        ConfigError: a wrong name/pretrained pairing, or a clip length the checkpoint was not trained on.
        WeightsUnavailableError: the weights cannot be loaded (with remedies).
    """
    from transformers import XCLIPModel

    if not pretrained:
        raise ConfigError(f"backbone '{name}': give a hub id ({HUB_IDS[0]}), a local checkpoint directory, "
                          "or (xclip-tiny only) 'random'")
    device = torch.device(device)
    prec = resolve_precision(precision, device)
    real = pretrained != RANDOM
    if name == XCLIP_TINY:
        if real:
            raise ConfigError(f"backbone '{XCLIP_TINY}' exists with random weights only (pretrained: random); "
                              f"for real weights use backbone '{XCLIP}' with a hub id or a local directory")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_seed)
            model = XCLIPModel(tiny_config())
    elif not real:   # the xclip-base-patch32 architecture (XCLIPConfig's defaults), random: speed benches
        from transformers import XCLIPConfig

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_seed)
            model = XCLIPModel(XCLIPConfig())
    else:
        local = _local_dir(pretrained)
        p = Path(pretrained)
        if local is None and (p.suffix in {".bin", ".safetensors", ".pt", ".pth"} or pretrained.startswith((".", "/"))):
            raise _weights_error(pretrained, FileNotFoundError(
                f"no X-CLIP checkpoint directory at {pretrained} (it needs config.json beside the weights)"))
        try:
            model = XCLIPModel.from_pretrained(str(local or pretrained), cache_dir=cache_dir)
        except Exception as exc:
            raise _weights_error(pretrained, exc) from exc
    frames = int(model.config.vision_config.num_frames)
    if clip_len is not None and int(clip_len) != frames:
        raise ConfigError(f"X-CLIP checkpoint '{pretrained}' was trained on {frames}-frame clips but the clip "
                          f"length asked for is {clip_len}: set extract.clip_len to {frames} (or null = the "
                          "checkpoint's), or choose a checkpoint of that frame count "
                          "(the -16-frames hub ids take 16)")
    model.to(device).eval().requires_grad_(False)
    if prec.name != "fp32":
        model.vision_model.to(prec.dtype)
    size = model.config.vision_config.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    bb = XClipBackbone(model=model, tokenizer=_open_clip_tokenizer(), name=name, pretrained=str(pretrained),
                       real_weights=real, embed_dim=int(model.config.projection_dim), image_size=size,
                       mean=CLIP_MEAN, std=CLIP_STD, device=device, clip_len=frames, precision=prec.name,
                       precision_requested=prec.requested, precision_reason=prec.reason)
    bb.warn_if_random()
    return bb


__all__ = ["HUB_IDS", "XCLIP", "XCLIP_TINY", "XClipBackbone", "load_xclip", "tiny_config"]
