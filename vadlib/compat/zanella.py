"""Import the published AnomalyCLIP (Zanella et al., lucazanella/AnomalyCLIP) checkpoints into vadlib.

The reference trains a Lightning module whose ``state_dict`` (``checkpoints/<dataset>/last.ckpt``,
key ``state_dict``) holds the whole network under ``net.`` — prompt contexts, the CLIP text encoder
with its trained ``text_projection``, the selector's BatchNorm statistics, the axial temporal model,
the classification head AND the complete CLIP (image encoder, token embedding, ``logit_scale``).
The normality prototype lives beside it in ``ncentroid.pt`` (a ``(D,)`` tensor; methods.md §1.2).
:func:`import_anomalyclip` turns both into a vadlib :class:`~vadlib.methods.anomalyclip.method.AnomalyCLIPMethod`
(text encoder rebuilt from the checkpoint's own CLIP weights), :func:`convert` writes it as a vadlib
checkpoint (plus the CLIP weights as an open_clip checkpoint file, so ``vadlib detect`` encodes
frames with the same image encoder).

Key mapping (reference key without the ``net.`` prefix → vadlib; C classes incl. normal at the
reference's ``normal_id`` (sorted name order), A = C − 1, W text width, D embedding width, E
``emb_size``, N × L the segment grid, j a block index; ``clip:`` = the rebuilt open_clip CLIP):

=========================================================================  ==========================================  =================================================
reference (``net.`` + …)                                                   vadlib                                      shape / transformation
=========================================================================  ==========================================  =================================================
``prompt_learner.ctx``                                                     ``text.ctx``                                (C, n_ctx, W) → (A, n_ctx, W): rows put in vadlib's
                                                                                                                       class order, the normal row dropped (the normal
                                                                                                                       direction is discarded, no gradient reaches it)
``prompt_learner.token_prefix``                                            (checked, not stored)                       (C, 1, W) must equal ``token_embedding(SOS)``
``prompt_learner.token_suffix``                                            (checked, not stored)                       (C, 77−1−n_ctx, W): ``"<name>." EOT pad`` embeddings;
                                                                                                                       the class names are read back from them
``text_encoder.text_projection``                                           ``text.text_projection`` + ``clip:`` same   (W, D), trained
``text_encoder.transformer.*``                                             ``clip:transformer.*``                      frozen text transformer
``text_encoder.positional_embedding``                                      ``clip:positional_embedding``               (77, W)
``text_encoder.ln_final.{weight,bias}``                                    ``clip:ln_final.*``                         (W,)
``token_embedding.weight``                                                 ``clip:token_embedding.weight``             (49408, W)
``image_encoder.*``                                                        ``clip:visual.*``                           the frame encoder (``vadlib detect``)
``selector_model.logit_scale``                                             ``clip:logit_scale``                        () unused by AnomalyCLIP
``selector_model.bn_layer.{running_mean,running_var}``                     ``selector_bn.*``                           (A,), vadlib class order
``selector_model.bn_layer.num_batches_tracked``                            ``selector_bn.num_batches_tracked``         ()
``temporal_model.projection.weight``                                       ``embed.weight``                            (E, A + D) or (E, D); the A selector columns
                                                                                                                       in vadlib class order
``temporal_model.projection.bias``                                         ``embed.bias``                              (E,)
``temporal_model.axial_attn.pos_emb.param_0`` / ``param_1``                ``temporal.pos_h`` / ``temporal.pos_w``     (1, E, N, 1) / (1, E, 1, L)
``temporal_model.axial_attn.layers.blocks.{2j}.{f,g}.net.fn.norm.*``       ``temporal.blocks.{2j}.{f,g}.norm.*``       attention pre-LayerNorm (E,)
``temporal_model.axial_attn.layers.blocks.{2j}.{f,g}.net.fn.fn.to_q.*``    ``temporal.blocks.{2j}.{f,g}.to_q.*``       (E, E); same for ``to_kv`` (2E, E), ``to_out`` (E, E)+(E,)
``temporal_model.axial_attn.layers.blocks.{2j+1}.{f,g}.net.0.{g,b}``       ``temporal.blocks.{2j+1}.{f,g}.0.{g,b}``    ChanLayerNorm (1, E, 1, 1)
``temporal_model.axial_attn.layers.blocks.{2j+1}.{f,g}.net.{1,3}.*``       ``temporal.blocks.{2j+1}.{f,g}.{1,3}.*``    Conv2d (4E, E, 3, 3) / (E, 4E, 3, 3) + bias
``temporal_model.classifier.layer_norm.*``                                 ``head.0.*``                                (E,)
``temporal_model.classifier.linear.*``                                     ``head.1.*``                                (1, E), (1,)
``ncentroid.pt`` (separate file)                                           ``centroid``                                (D,)
=========================================================================  ==========================================  =================================================

f attends along the segment axis, g along the frame axis (axial_attention's permutation order for
``dim_index=1``), as vadlib's blocks. ``heads`` cannot be read from the shapes (8 in all three
published configs; give ``overrides={"heads": …}`` otherwise). Unknown, missing or mis-shaped keys
raise a :class:`~vadlib.errors.DataError` listing them. The Lightning file also pickles objects of
the reference's code (loss, optimizer partials); they are replaced by inert stubs while reading, so
no reference code is imported or run.

CLI: ``python -m vadlib.compat.zanella last.ckpt [--ncentroid ncentroid.pt] --out model.pt``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Mapping, Sequence

import torch

from vadlib.errors import ConfigError, DataError

PREFIX = "net."
EOT_ID = 49407

_T = r"temporal_model\.axial_attn\.layers\.blocks\.(\d+)\.([fg])\.net\."
#: (reference key regex without ``net.``, vadlib target; ``clip:`` = CLIP weights, ``check:`` = verified only)
RULES: list[tuple[str, str]] = [
    (r"prompt_learner\.ctx", "text.ctx"),
    (r"prompt_learner\.token_prefix", "check:prefix"),
    (r"prompt_learner\.token_suffix", "check:suffix"),
    (r"text_encoder\.text_projection", "text.text_projection"),
    (r"text_encoder\.(transformer\..+)", r"clip:\1"),
    (r"text_encoder\.(positional_embedding)", r"clip:\1"),
    (r"text_encoder\.(ln_final\.(?:weight|bias))", r"clip:\1"),
    (r"(token_embedding\.weight)", r"clip:\1"),
    (r"image_encoder\.(.+)", r"clip:visual.\1"),
    (r"selector_model\.(logit_scale)", r"clip:\1"),
    (r"selector_model\.bn_layer\.(running_mean|running_var|num_batches_tracked)", r"selector_bn.\1"),
    (r"temporal_model\.projection\.(weight|bias)", r"embed.\1"),
    (r"temporal_model\.axial_attn\.pos_emb\.param_0", "temporal.pos_h"),
    (r"temporal_model\.axial_attn\.pos_emb\.param_1", "temporal.pos_w"),
    (_T + r"fn\.norm\.(weight|bias)", r"temporal.blocks.\1.\2.norm.\3"),
    (_T + r"fn\.fn\.(to_q|to_kv|to_out)\.(weight|bias)", r"temporal.blocks.\1.\2.\3.\4"),
    (_T + r"0\.(g|b)", r"temporal.blocks.\1.\2.0.\3"),
    (_T + r"(1|3)\.(weight|bias)", r"temporal.blocks.\1.\2.\3.\4"),
    (r"temporal_model\.classifier\.layer_norm\.(weight|bias)", r"head.0.\1"),
    (r"temporal_model\.classifier\.linear\.(weight|bias)", r"head.1.\1"),
]
_RULES = [(re.compile(p + r"\Z"), t) for p, t in RULES]


def map_key(ref_key: str) -> str | None:
    """vadlib target of a reference key (without ``net.``), or None if no rule matches."""
    for rx, target in _RULES:
        m = rx.match(ref_key)
        if m:
            return m.expand(target)
    return None


# ---------------------------------------------------------------------------------------------
# reading the Lightning file without running its pickled objects
# ---------------------------------------------------------------------------------------------


class _Stub:
    """Stands in for a pickled object of the reference's code (never called, never imported)."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


def _stub(path: str) -> type:
    module, _, name = path.rpartition(".")
    return type(name, (_Stub,), {"__module__": module, "__qualname__": name})


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a plain state dict file), read with
    ``weights_only=True``; the non-tensor objects Lightning pickles (hyper-parameters holding the
    reference's loss and optimizer partials) are loaded as inert stubs."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "AnomalyCLIP checkpoint file does not exist (the reference writes "
                              "checkpoints/<dataset>/last.ckpt)")
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        with torch.serialization.safe_globals([_stub(g) for g in unsafe]):
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(path, f"cannot read as a torch/Lightning checkpoint ({type(exc).__name__}: {exc})") from exc
    sd = ck.get("state_dict", ck) if isinstance(ck, dict) else None
    if not isinstance(sd, Mapping) or not sd:
        raise DataError(path, "no state_dict in this checkpoint (expected a Lightning checkpoint of lucazanella/AnomalyCLIP)")
    return {k: v for k, v in sd.items()}


def is_reference_checkpoint(path: str | Path) -> bool:
    """A ``.ckpt`` file (the reference's Lightning checkpoints); vadlib writes ``.pt``."""
    return Path(path).suffix == ".ckpt"


def find_ncentroid(checkpoint: str | Path) -> Path | None:
    """``ncentroid.pt`` beside the checkpoint, or in its run folder (one or two levels up)."""
    p = Path(checkpoint).resolve().parent
    for d in (p, p.parent, p.parent.parent):
        if (d / "ncentroid.pt").is_file():
            return d / "ncentroid.pt"
    return None


# ---------------------------------------------------------------------------------------------
# the CLIP the checkpoint carries
# ---------------------------------------------------------------------------------------------


def clip_config(clip_sd: Mapping[str, torch.Tensor], quick_gelu: bool = True) -> dict:
    """open_clip model config of an OpenAI-layout CLIP state dict (heads = width / 64 in both towers,
    as OpenAI's ``build_model``; QuickGELU as the OpenAI weights)."""
    try:
        vw = clip_sd["visual.conv1.weight"].shape[0]
        patch = clip_sd["visual.conv1.weight"].shape[-1]
        grid = round((clip_sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        vl = len({k.split(".")[3] for k in clip_sd if k.startswith("visual.transformer.resblocks.")})
        tw = clip_sd["ln_final.weight"].shape[0]
        tl = len({k.split(".")[2] for k in clip_sd if k.startswith("transformer.resblocks.")})
        ctx, vocab = clip_sd["positional_embedding"].shape[0], clip_sd["token_embedding.weight"].shape[0]
        embed = clip_sd["text_projection"].shape[1]
    except KeyError as exc:
        raise DataError(None, f"the checkpoint's CLIP weights lack {exc} (only ViT CLIPs in OpenAI layout are supported)") from exc
    return {"embed_dim": int(embed), "quick_gelu": quick_gelu,
            "vision_cfg": {"image_size": int(patch * grid), "layers": vl, "width": int(vw), "patch_size": int(patch),
                           "head_width": 64},
            "text_cfg": {"context_length": int(ctx), "vocab_size": int(vocab), "width": int(tw),
                         "heads": max(1, int(tw) // 64), "layers": tl}}


def _signature(cfg: Mapping) -> tuple:
    v, t = cfg["vision_cfg"], cfg["text_cfg"]
    return (cfg["embed_dim"], bool(cfg.get("quick_gelu", False)), v["image_size"], v["layers"], v["width"],
            v["patch_size"], v["width"] // v.get("head_width", 64), t["context_length"], t["width"],
            t.get("heads", 8), t["layers"])


def open_clip_name(cfg: Mapping) -> str | None:
    """The open_clip model name with this architecture (e.g. ``ViT-B-16-quickgelu``), or None."""
    import open_clip

    from vadlib.features.backbones.open_clip import _register_configs

    _register_configs()
    sig = _signature(cfg)
    for name in open_clip.list_models():
        c = open_clip.get_model_config(name)
        try:
            if c and "vision_cfg" in c and _signature(c) == sig:
                return name
        except (KeyError, TypeError):
            continue
    return None


def build_backbone(clip_sd: Mapping[str, torch.Tensor], quick_gelu: bool = True, weights_path: str | None = None,
                   real_weights: bool = True):
    """A frozen :class:`~vadlib.features.backbones.open_clip.Backbone` from OpenAI-layout CLIP weights."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
    from open_clip.tokenizer import SimpleTokenizer

    from vadlib.features.backbones import Backbone

    cfg = clip_config(clip_sd, quick_gelu)
    model = CLIP(cfg["embed_dim"], CLIPVisionCfg(**cfg["vision_cfg"]), CLIPTextCfg(**cfg["text_cfg"]),
                 quick_gelu=quick_gelu)
    bad = _load_strict(model, dict(clip_sd))
    if bad:
        raise DataError(None, "the checkpoint's CLIP weights do not fit the CLIP they describe: " + "; ".join(bad))
    model.eval().requires_grad_(False)
    size = cfg["vision_cfg"]["image_size"]
    preprocess = open_clip.image_transform(size, is_train=False)
    name = open_clip_name(cfg) or "custom"
    return Backbone(model=model, preprocess=preprocess,
                    tokenizer=SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"]), name=name,
                    pretrained=weights_path or "checkpoint", real_weights=real_weights, embed_dim=cfg["embed_dim"],
                    image_size=size, mean=tuple(open_clip.OPENAI_DATASET_MEAN), std=tuple(open_clip.OPENAI_DATASET_STD),
                    device=torch.device("cpu"))


def _load_strict(module: torch.nn.Module, sd: dict) -> list[str]:
    """Load ``sd`` into ``module``; a list naming missing, unexpected and mis-shaped keys (empty = loaded)."""
    own = module.state_dict()
    shape = [f"{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}" for k, v in sd.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    out = []
    if missing:
        out.append(f"missing {missing}")
    if unexpected:
        out.append(f"unexpected {unexpected}")
    if shape:
        out.append(f"mis-shaped {shape}")
    if not out:
        module.load_state_dict(sd, strict=True)
    return out


# ---------------------------------------------------------------------------------------------
# class names from the prompt embeddings
# ---------------------------------------------------------------------------------------------


def _token_ids(rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """``(K, W)`` embedding rows → ``(K,)`` ids of the identical rows of ``table`` (V, W); −1 if none."""
    idx = torch.cdist(rows.double(), table.double()).argmin(1)
    same = (table[idx] == rows).all(1)
    return torch.where(same, idx, torch.full_like(idx, -1))


def prompt_names(prefix: torch.Tensor, suffix: torch.Tensor, token_embedding: torch.Tensor, tokenizer) -> list[str]:
    """The C class names (CLIP-tokenizer spelling: lower case, spaces) read back from the reference's
    ``token_prefix`` / ``token_suffix`` buffers (``"<name>." EOT`` after the contexts)."""
    names = []
    for c in range(suffix.shape[0]):
        ids = _token_ids(suffix[c], token_embedding).tolist()
        if -1 in ids or EOT_ID not in ids:
            raise DataError(None, f"prompt_learner.token_suffix row {c} is not made of the checkpoint's token "
                                  "embeddings (the prompts and the CLIP weights do not belong together)")
        body = ids[:ids.index(EOT_ID)]
        text = tokenizer.decode(body).strip()
        names.append(text[:-1].strip() if text.endswith(".") else text)
    return names


# ---------------------------------------------------------------------------------------------
# the importer
# ---------------------------------------------------------------------------------------------


def split_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[dict, dict, dict]:
    """Reference ``state_dict`` → (vadlib-named model tensors, CLIP tensors, checked tensors);
    keys no rule knows raise, listing them."""
    model, clip, check, unknown = {}, {}, {}, []
    for k, v in sd.items():
        t = map_key(k[len(PREFIX):]) if k.startswith(PREFIX) else None
        if t is None:
            unknown.append(k)
        elif t.startswith("clip:"):
            clip[t[5:]] = v
        elif t.startswith("check:"):
            check[t[6:]] = v
        else:
            model[t] = v
    if unknown:
        raise DataError(None, f"unknown keys in the AnomalyCLIP checkpoint (no mapping in vadlib.compat.zanella): {unknown}")
    clip["text_projection"] = model.get("text.text_projection")
    required = ["text.ctx", "text.text_projection", "selector_bn.running_mean", "embed.weight", "temporal.pos_h",
                "temporal.pos_w", "head.1.weight"]
    missing = [k for k in required if model.get(k) is None] + [f"prompt_learner.token_{k}" for k in ("prefix", "suffix")
                                                              if k not in check]
    if missing:
        raise DataError(None, f"the AnomalyCLIP checkpoint misses {missing} (vadlib names; see the table in "
                              "vadlib.compat.zanella)")
    return model, clip, check


def infer_config(model_sd: Mapping[str, torch.Tensor], feat_dim: int) -> dict:
    """Architecture fields of :class:`~vadlib.methods.anomalyclip.model.AnomalyCLIPConfig` from the shapes."""
    A = model_sd["selector_bn.running_mean"].shape[0]
    E, in_dim = model_sd["embed.weight"].shape
    if in_dim not in (feat_dim, feat_dim + A):
        raise DataError(None, f"temporal_model.projection.weight has {in_dim} inputs; expected {feat_dim} "
                              f"(features) or {feat_dim + A} (selector scores + features)")
    blocks = {int(k.split(".")[2]) for k in model_sd if k.startswith("temporal.blocks.")}
    if not blocks or sorted(blocks) != list(range(len(blocks))) or len(blocks) % 2:
        raise DataError(None, f"temporal_model blocks {sorted(blocks)}: expected pairs of attention + feed-forward blocks")
    conv = model_sd["temporal.blocks.1.f.1.weight"]
    return {"num_segments": int(model_sd["temporal.pos_h"].shape[2]), "seg_length": int(model_sd["temporal.pos_w"].shape[3]),
            "n_ctx": int(model_sd["text.ctx"].shape[1]), "emb_size": int(E), "depth": len(blocks) // 2,
            "concat_features": bool(in_dim == feat_dim + A), "ff_kernel": int(conv.shape[-1]),
            "ff_mult": int(conv.shape[0] // E)}


def import_anomalyclip(checkpoint: str | Path, ncentroid: str | Path | None = None, *,
                       class_names: Sequence[str] | None = None, overrides: Mapping | None = None,
                       quick_gelu: bool = True, require_centroid: bool = True, real_weights: bool = True,
                       state_dict: Mapping[str, torch.Tensor] | None = None):
    """A vadlib :class:`~vadlib.methods.anomalyclip.method.AnomalyCLIPMethod` holding a reference checkpoint's weights.

    Args:
        checkpoint: the reference's ``last.ckpt`` (Lightning) — or ``state_dict`` given directly.
        ncentroid: the run's ``ncentroid.pt``; default: looked up beside the checkpoint and one or
            two folders up. Without one (and ``require_centroid=False``) the prototype stays zero
            and must be set (:meth:`AnomalyCLIPMethod.prepare` computes it from training videos, as
            the reference does when the file is absent).
        class_names: vadlib's class list (``normal`` first); each name is matched to the
            checkpoint's prompts (``_`` → space, case-insensitive), so any order works. Default: the
            names read back from the prompts, ``normal`` first, then the reference's order.
        overrides: AnomalyCLIP config keys (default: the architecture read from the shapes,
            ``heads`` 8, every reference switch on — the reference's computation).
        quick_gelu: the CLIP uses QuickGELU (OpenAI weights: True).
    Returns the method (``.module`` in eval mode; ``.backbone``: the CLIP the checkpoint carries;
    ``.imported``: where the weights came from).
    """
    from vadlib.methods.anomalyclip.method import AnomalyCLIPMethod

    where = Path(checkpoint)
    sd = dict(state_dict) if state_dict is not None else read_state_dict(where)
    try:
        model_sd, clip_sd, check = split_state_dict(sd)
    except DataError as exc:
        raise DataError(where, exc.problem) from None
    D = int(clip_sd["text_projection"].shape[1])
    try:
        bb = build_backbone(clip_sd, quick_gelu, real_weights=real_weights)
    except DataError as exc:
        raise DataError(where, exc.problem) from None
    ref_names = prompt_names(check["prefix"], check["suffix"], clip_sd["token_embedding.weight"], bb.tokenizer)
    C = len(ref_names)
    if model_sd["text.ctx"].shape[0] != C or model_sd["selector_bn.running_mean"].shape[0] != C - 1:
        raise DataError(where, f"{C} prompts but prompt_learner.ctx has {model_sd['text.ctx'].shape[0]} rows and the "
                               f"selector {model_sd['selector_bn.running_mean'].shape[0]} classes (expected C and C − 1)")
    key = [n.lower().replace("_", " ").strip() for n in ref_names]
    if "normal" not in key:
        raise DataError(where, f"no 'normal' class among the checkpoint's prompts {ref_names}")
    normal_id = key.index("normal")
    if class_names is None:
        class_names = ["normal"] + [n for i, n in enumerate(ref_names) if i != normal_id]
    class_names = list(class_names)
    want = [n.lower().replace("_", " ").strip() for n in class_names]
    if class_names[0] != "normal" or sorted(want) != sorted(key):
        raise ConfigError(f"{where}: class names {class_names} do not match the checkpoint's prompts {ref_names} "
                          "('normal' first, then every anomaly class once; '_' = space, case ignored)")
    rows = [key.index(n) for n in want]                         # vadlib class i ← reference row rows[i]
    anom = [r - (r > normal_id) for r in rows[1:]]              # … in the selector's A columns
    model_sd = dict(model_sd)
    model_sd["text.ctx"] = model_sd["text.ctx"][rows[1:]]
    for k in ("selector_bn.running_mean", "selector_bn.running_var"):
        model_sd[k] = model_sd[k][anom]
    cfg = {**infer_config(model_sd, D), "heads": 8, "text_source": "prompts", "reference": True, **dict(overrides or {})}
    if cfg["concat_features"]:
        A = len(anom)
        w = model_sd["embed.weight"]
        model_sd["embed.weight"] = torch.cat([w[:, :A][:, anom], w[:, A:]], 1)
    m = AnomalyCLIPMethod(cfg, class_names, D, backbone=bb)
    # the prompts must re-tokenise to the checkpoint's SOS / suffix embeddings
    emb = bb.model.token_embedding(m.module.text.tokens)
    n_ctx = cfg["n_ctx"]
    if not (torch.equal(emb[:, :1], check["prefix"][rows[1:]])
            and torch.equal(emb[:, 1 + n_ctx:], check["suffix"][rows[1:]])):
        raise DataError(where, "vadlib's prompts for these class names do not tokenise to the checkpoint's "
                               "token_prefix / token_suffix")
    centroid = torch.zeros(D)
    npath = Path(ncentroid) if ncentroid else (find_ncentroid(where) if state_dict is None else None)
    if npath is not None:
        c = torch.load(npath, map_location="cpu", weights_only=True)
        c = c.get("ncentroid", c) if isinstance(c, dict) else c
        if not isinstance(c, torch.Tensor) or tuple(c.reshape(-1).shape) != (D,):
            raise DataError(npath, f"ncentroid must be a ({D},) tensor, got "
                                   f"{tuple(c.shape) if isinstance(c, torch.Tensor) else type(c).__name__}")
        centroid = c.reshape(-1).float()
    elif require_centroid:
        raise DataError(where, "no ncentroid.pt beside the checkpoint or in its run folder (the reference saves "
                               "the normality prototype there): give it with --ncentroid / ncentroid=PATH")
    model_sd["centroid"] = centroid
    model_sd["text_cache"] = torch.zeros(len(class_names) - 1, D)
    model_sd["text_cache_valid"] = torch.zeros((), dtype=torch.bool)
    bad = _load_strict(m.module, model_sd)
    if bad:
        raise DataError(where, "the checkpoint does not fit the AnomalyCLIP it describes: " + "; ".join(bad))
    m.module.eval()
    m.backbone = bb
    m.imported = {"checkpoint": str(where), "ncentroid": None if npath is None else str(npath),
                  "reference_class_order": ref_names, "normal_id": normal_id}
    return m


def clip_state_dict(method) -> dict[str, torch.Tensor]:
    """The imported CLIP's weights (open_clip / OpenAI layout) for ``backbone.pretrained: PATH``."""
    return {k: v.detach().clone() for k, v in method.backbone.model.state_dict().items() if k != "attn_mask"}


def convert(checkpoint: str | Path, out: str | Path, ncentroid: str | Path | None = None, *,
            class_names: Sequence[str] | None = None, overrides: Mapping | None = None,
            quick_gelu: bool = True) -> Path:
    """Write a reference checkpoint as a vadlib ``train_mil`` checkpoint ``out`` (+ ``<out>.clip.pt``,
    the CLIP weights the feature spec names, so ``vadlib detect`` encodes frames as the reference)."""
    from vadlib.io import atomic_path

    m = import_anomalyclip(checkpoint, ncentroid, class_names=class_names, overrides=overrides, quick_gelu=quick_gelu)
    out = Path(out)
    clip_path = out.with_name(out.stem + ".clip.pt")
    with atomic_path(clip_path, suffix=".pt") as tmp:
        torch.save(clip_state_dict(m), tmp)
    bb = m.backbone
    if bb.name == "custom":
        raise ConfigError(f"{checkpoint}: its CLIP architecture matches no open_clip model config, so vadlib "
                          "cannot name the frame encoder; add an open_clip config for it")
    spec = {"backbone": bb.name, "pretrained": str(clip_path.resolve()), "real_weights": True, "sampling": "every",
            "stride": 1, "embed_dim": bb.embed_dim}
    m.save(out, meta={"imported": m.imported, "features": spec})
    return out


def as_vadlib_checkpoint(path: str | Path) -> Path:
    """``path`` if it is a vadlib checkpoint; a reference ``.ckpt`` is converted once to
    ``<name>.vadlib.pt`` beside it (redone when the ``.ckpt`` is newer)."""
    path = Path(path)
    if not is_reference_checkpoint(path):
        return path
    out = path.with_name(path.stem + ".vadlib.pt")
    if not out.is_file() or out.stat().st_mtime < path.stat().st_mtime:
        convert(path, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.compat.zanella", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="the reference's last.ckpt")
    ap.add_argument("--ncentroid", default=None, help="its ncentroid.pt (default: beside it or in its run folder)")
    ap.add_argument("--out", required=True, help="the vadlib checkpoint to write (.pt)")
    ap.add_argument("--classes", default=None, help="comma-separated vadlib class names, normal first")
    a = ap.parse_args(argv)
    names = [c.strip() for c in a.classes.split(",")] if a.classes else None
    out = convert(a.checkpoint, a.out, a.ncentroid, class_names=names)
    print(f"wrote {out} and {out.with_name(out.stem + '.clip.pt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
