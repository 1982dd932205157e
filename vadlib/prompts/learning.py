"""Object-agnostic prompt learning (Zhou et al., ICLR 2024; methods.md §3.1).

Two learnable prompts through the FROZEN open_clip text encoder:

* normal   ``[V_1 … V_E] object.``
* abnormal ``[W_1 … W_E] damaged object.``

(E = ``n_ctx`` learnable context vectors each, init N(0, 0.02²); the wording after the context
is configurable.) Optional deep prompts: at text-transformer layers ``1 … depth-1`` the
``deep_n_ctx`` token positions right after SOS are *replaced* by that layer's learnable tokens.

:func:`encode_text_with_embeddings` replicates ``open_clip.model.CLIP.encode_text`` (open_clip
3.3: ``token_embedding`` → ``+ positional_embedding`` → ``transformer(attn_mask)`` →
``ln_final`` → ``text_global_pool`` → ``text_projection``) with the token embeddings given,
so context vectors can be injected. Only the contexts receive gradients.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from vadlib.errors import ConfigError

PLACEHOLDER = "X"


@dataclass
class PromptLearnerConfig:
    """params.yaml ``transfer.prompt_learning``.

    Attributes:
        n_ctx: learnable context tokens per prompt (Zhou: 12).
        normal_suffix / abnormal_suffix: the words after the context.
        deep_depth: 0 = no deep prompts; d > 1 = learnable tokens at text layers 1 … d-1 (Zhou: 9).
        deep_n_ctx: tokens replaced per deep layer (Zhou: 4).
        init_std: std of the N(0, std²) initialisation (0.02).
    """

    n_ctx: int = 12
    normal_suffix: str = "object."
    abnormal_suffix: str = "damaged object."
    deep_depth: int = 0
    deep_n_ctx: int = 4
    init_std: float = 0.02

    @classmethod
    def from_params(cls, p: Mapping | None) -> "PromptLearnerConfig":
        from vadlib.config import check

        cfg = check(cls, p, "transfer.prompt_learning")   # unknown keys and wrong types raise ConfigError
        if cfg.n_ctx < 1:
            raise ConfigError("transfer.prompt_learning.n_ctx must be >= 1")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


def _text_blocks(model: nn.Module) -> nn.ModuleList:
    return model.transformer.resblocks


def encode_text_with_embeddings(model: nn.Module, embeddings: torch.Tensor, tokens: torch.Tensor,
                                deep: Sequence[torch.Tensor] | None = None, deep_start: int = 1,
                                normalize: bool = False, text_projection: torch.Tensor | None = None) -> torch.Tensor:
    """``CLIP.encode_text`` from token embeddings.

    Args:
        model: an open_clip ``CLIP`` (text tower inside the model, as for ViT CLIPs).
        embeddings: ``(B, L, W)`` token embeddings (``model.token_embedding(tokens)`` with
            some rows replaced by learned contexts).
        tokens: ``(B, L)`` token ids (for the end-of-text pooling position).
        deep: optional list of ``(n, W)`` tensors; before text layer ``deep_start + j`` the ``n``
            positions after SOS are replaced by ``deep[j]``.
        text_projection: ``(W, D)`` used instead of the model's own (a trainable copy).
    Returns:
        ``(B, D)`` text features (normalised if ``normalize``).
    """
    from open_clip.transformer import text_global_pool

    cast = model.transformer.get_cast_dtype()
    x = embeddings.to(cast) + model.positional_embedding.to(cast)
    tr = model.transformer
    if not deep:
        x = tr(x, attn_mask=model.attn_mask)
    else:
        if not tr.batch_first:
            x = x.transpose(0, 1)
        for i, blk in enumerate(_text_blocks(model)):
            j = i - deep_start
            if 0 <= j < len(deep):
                d = deep[j].to(cast)
                n = d.shape[0]
                if tr.batch_first:
                    x = torch.cat([x[:, :1], d[None].expand(x.shape[0], -1, -1), x[:, 1 + n:]], dim=1)
                else:
                    x = torch.cat([x[:1], d[:, None].expand(-1, x.shape[1], -1), x[1 + n:]], dim=0)
            x = blk(x, attn_mask=model.attn_mask)
        if not tr.batch_first:
            x = x.transpose(0, 1)
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if text_projection is not None:
        x = x.float() @ text_projection
    elif model.text_projection is not None:
        x = model.text_projection(x) if isinstance(model.text_projection, nn.Linear) else x @ model.text_projection
    return F.normalize(x, dim=-1) if normalize else x


class PromptLearner(nn.Module):
    """Learnable normal / abnormal contexts through a frozen open_clip text encoder.

    ``forward()`` → ``(2, D)`` L2-normalised text features, row 0 normal, row 1 abnormal.
    The backbone's parameters are frozen and are not registered as parameters of this module
    (so ``.parameters()`` are the contexts only).
    """

    def __init__(self, backbone, cfg: PromptLearnerConfig | None = None):
        super().__init__()
        cfg = cfg or PromptLearnerConfig()
        self.cfg = cfg
        from vadlib.features.backbones.base import text_clip_of

        model = text_clip_of(backbone)   # open_clip's CLIP, or a video backbone's open_clip view of its text tower
        model.requires_grad_(False)
        self._model = [model]  # not a submodule: stays frozen and out of state_dict
        width = model.token_embedding.weight.shape[1]
        ctx_words = " ".join([PLACEHOLDER] * cfg.n_ctx)
        texts = [f"{ctx_words} {cfg.normal_suffix}", f"{ctx_words} {cfg.abnormal_suffix}"]
        tokens = backbone.tokenizer(texts).to(backbone.device)
        self.register_buffer("tokens", tokens, persistent=False)
        n_layers = len(_text_blocks(model))
        if cfg.deep_depth > n_layers:
            raise ConfigError(f"transfer.prompt_learning.deep_depth={cfg.deep_depth} exceeds the text "
                              f"encoder's {n_layers} layers")
        if 1 + cfg.n_ctx + 2 >= tokens.shape[1] or int(tokens.argmax(-1).min()) <= cfg.n_ctx:
            raise ConfigError(f"n_ctx={cfg.n_ctx} does not fit the text context length {tokens.shape[1]}")
        self.ctx = nn.Parameter(torch.randn(2, cfg.n_ctx, width, device=backbone.device) * cfg.init_std)
        n_deep = max(cfg.deep_depth - 1, 0)
        self.deep = nn.ParameterList(
            [nn.Parameter(torch.randn(cfg.deep_n_ctx, width, device=backbone.device) * cfg.init_std)
             for _ in range(n_deep)])

    @property
    def clip(self) -> nn.Module:
        return self._model[0]

    def set_contexts(self, normal: torch.Tensor, abnormal: torch.Tensor) -> None:
        """Overwrite the contexts with ``(n_ctx, W)`` embeddings (e.g. real word embeddings)."""
        with torch.no_grad():
            self.ctx[0].copy_(normal)
            self.ctx[1].copy_(abnormal)

    def embeddings(self) -> torch.Tensor:
        """``(2, L, W)`` token embeddings with the contexts at positions ``1 … n_ctx``."""
        emb = self.clip.token_embedding(self.tokens)
        n = self.cfg.n_ctx
        return torch.cat([emb[:, :1], self.ctx.to(emb.dtype), emb[:, 1 + n:]], dim=1)

    def forward(self) -> torch.Tensor:
        feats = encode_text_with_embeddings(self.clip, self.embeddings(), self.tokens, deep=list(self.deep))
        return F.normalize(feats.float(), dim=-1)
