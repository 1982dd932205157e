"""``python -m vadlib.bench reference dpam --reference-repo PATH``: vadlib's object-agnostic prompts +
DPAM maps against Zhou et al.'s code (``zqhang/AnomalyCLIP``) on identical random weights.

The reference's modules (``AnomalyCLIP_lib``, ``prompt_ensemble``, ``utils``) are imported from the
user's clone at PATH at run time; nothing of them is copied into vadlib. The bench

1. builds the reference CLIP + prompt learner with random weights (every parameter perturbed, so
   zero biases and unit norms hide nothing) at a small ViT size (``--size small``, CPU in seconds)
   or at the published size (``--size vit-l-14-336``: ViT-L/14@336px run at 518 px, 19 DPAM
   layers, 12 context tokens, deep prompts of depth 9; about 10 CPU-minutes and 6.5 GB peak memory);
2. moves the CLIP weights into an open_clip ``CLIP`` (same key names) and the prompt learner's
   state dict into vadlib through :func:`vadlib.compat.zhou.load_prompt_checkpoint`;
3. feeds both the same uint8 images (non-square, resized by each side's preprocessing to the
   input size ``S`` ≠ the native size, so the positional-embedding interpolation is exercised) and
   runs the reference's test-time inference (``test.py``'s steps, called through its own functions)
   and vadlib's :class:`~vadlib.compat.zhou.ZhouZeroShot`;
4. brings the reference's ``S×S`` map to the frame size bilinearly for the "on the frame" row
   (the reference itself evaluates at ``S×S``);
5. prints the max absolute and relative (``max|Δ| / max|reference|``) differences of the
   preprocessed input, the text features, the anomaly map and the image score, with every switch
   at the reference's behaviour (target: relative ≤ 1e-5), then what each of vadlib's fixes
   changes (one switch at vadlib's default at a time, and all of them).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import types
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vadlib.compat import zhou

ENV = "VADLIB_REFERENCE_DPAM"
TARGET_REL = 1e-5


@dataclass(frozen=True)
class Size:
    """A reference model configuration (reference argument names in comments)."""

    embed_dim: int
    native: int            # image_resolution
    patch: int
    vision_layers: int
    vision_width: int      # heads = width // 64 (reference)
    text_width: int
    text_heads: int
    text_layers: int
    input_size: int        # --image_size
    dpam_layer: int        # DPAM_layer (n blocks with V-V = DPAM_layer - 1)
    n_ctx: int             # --n_ctx
    depth: int             # --depth
    t_n_ctx: int           # --t_n_ctx
    sigma: float = 4.0     # --sigma
    n_images: int = 3


SIZES = {
    "small": Size(embed_dim=64, native=112, patch=16, vision_layers=6, vision_width=128, text_width=128, text_heads=2,
                  text_layers=4, input_size=160, dpam_layer=5, n_ctx=12, depth=4, t_n_ctx=4, sigma=4.0),
    "vit-l-14-336": Size(embed_dim=768, native=336, patch=14, vision_layers=24, vision_width=1024, text_width=768,
                         text_heads=12, text_layers=12, input_size=518, dpam_layer=20, n_ctx=12, depth=9, t_n_ctx=4,
                         sigma=4.0, n_images=1),
}


# --------------------------------------------------------------------------- the reference, imported
def ensure_pkg_resources() -> None:
    """References do ``from pkg_resources import packaging`` (for version checks); setuptools ≥ 81
    has no ``pkg_resources``: give them a stand-in module whose ``packaging`` is the real package."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import packaging.version

        shim = types.ModuleType("pkg_resources")
        shim.packaging = packaging
        sys.modules["pkg_resources"] = shim


def import_reference(repo: str | Path) -> types.SimpleNamespace:
    """Import ``AnomalyCLIP_lib``, ``prompt_ensemble`` and ``utils`` from the clone at ``repo``.

    Shim (no reference code involved): ``pkg_resources`` (gone from setuptools ≥ 81) is given a
    stand-in whose ``packaging`` is the ``packaging`` package, the only thing they take from it.
    """
    repo = Path(repo).resolve()
    if not (repo / "AnomalyCLIP_lib" / "AnomalyCLIP.py").is_file() or not (repo / "prompt_ensemble.py").is_file():
        raise SystemExit(f"--reference-repo {repo}: not a clone of zqhang/AnomalyCLIP "
                         "(needs AnomalyCLIP_lib/AnomalyCLIP.py and prompt_ensemble.py)")
    ensure_pkg_resources()
    sys.path.insert(0, str(repo))
    sys.dont_write_bytecode = True          # leave the user's clone untouched
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            lib = importlib.import_module("AnomalyCLIP_lib")
            model_mod = importlib.import_module("AnomalyCLIP_lib.AnomalyCLIP")
            prompts = importlib.import_module("prompt_ensemble")
            utils = importlib.import_module("utils")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"the reference imports '{exc.name}', which is not installed: "
                         f"pip install 'vadlib[reference]' (or pip install {exc.name})") from exc
    finally:
        sys.path.remove(str(repo))
    return types.SimpleNamespace(lib=lib, AnomalyCLIP=model_mod.AnomalyCLIP,
                                 PromptLearner=prompts.AnomalyCLIP_PromptLearner, get_transform=utils.get_transform,
                                 repo=repo)


def build_reference(ref, size: Size, seed: int = 0):
    """Reference CLIP (random, perturbed) + prompt learner; returns (model, learner, clip_state)
    where ``clip_state`` is the CLIP state dict before DPAM replaces attention modules."""
    design = {"Prompt_length": size.n_ctx, "learnabel_text_embedding_depth": size.depth,
              "learnabel_text_embedding_length": size.t_n_ctx}
    torch.manual_seed(seed)
    with contextlib.redirect_stdout(io.StringIO()):
        model = ref.AnomalyCLIP(size.embed_dim, size.native, size.vision_layers, size.vision_width, size.patch,
                                77, 49408, size.text_width, size.text_heads, size.text_layers, design_details=design)
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn(p.shape, generator=g) * 0.02)
        model.eval()
        learner = ref.PromptLearner(model, design)
    clip_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with contextlib.redirect_stdout(io.StringIO()):
        model.visual.DAPM_replace(DPAM_layer=size.dpam_layer)
    return model, learner, clip_state


@torch.no_grad()
def reference_inference(ref, model, learner, images: torch.Tensor, size: Size) -> dict:
    """``test.py``'s steps, one image at a time as its data loader (batch 1), for preprocessed
    ``images (B, 3, S, S)``: text features, image score ``P_g[abnormal]``, map
    ``G_σ(Σ_layers ½(S_a + 1 − S_n))`` at ``S×S`` (features_list = the last layer, as shipped)."""
    from scipy.ndimage import gaussian_filter

    prompts, tokenized, deep = learner(cls_id=None)
    text = model.encode_text_learn(prompts, tokenized, deep).float()
    text = torch.stack(torch.chunk(text, dim=0, chunks=2), dim=1)
    text = text / text.norm(dim=-1, keepdim=True)
    scores, maps = [], []
    for image in images.split(1):
        img, patches = model.encode_image(image, [size.vision_layers], DPAM_layer=size.dpam_layer)
        img = img / img.norm(dim=-1, keepdim=True)
        scores.append(((img @ text.permute(0, 2, 1)) / 0.07).softmax(-1)[:, 0, 1])
        layer_maps = []
        for pf in patches:
            pf = pf / pf.norm(dim=-1, keepdim=True)
            sim, _ = ref.lib.compute_similarity(pf, text[0])
            sm = ref.lib.get_similarity_map(sim[:, 1:, :], size.input_size)
            layer_maps.append((sm[..., 1] + 1 - sm[..., 0]) / 2.0)
        m = torch.stack(layer_maps).sum(0)
        maps.append(np.stack([gaussian_filter(x, sigma=size.sigma) for x in m.cpu().numpy()]))
    return {"text": text[0].cpu().numpy(), "score": torch.cat(scores).cpu().numpy(),
            "map": np.concatenate(maps).astype(np.float32)}


def reference_preprocess(ref, frames: np.ndarray, size: Size) -> torch.Tensor:
    """The reference's test transform (``utils.get_transform``) of uint8 RGB frames."""
    from PIL import Image

    tf, _ = ref.get_transform(types.SimpleNamespace(image_size=size.input_size))
    return torch.stack([tf(Image.fromarray(f)) for f in frames])


# --------------------------------------------------------------------------- vadlib, same weights
def vadlib_backbone(clip_state: dict, size: Size):
    """open_clip ``CLIP`` with the reference's CLIP weights (same key names), as a vadlib Backbone."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from vadlib.features.backbones import Backbone

    model = CLIP(size.embed_dim,
                 CLIPVisionCfg(layers=size.vision_layers, width=size.vision_width, head_width=64,
                               patch_size=size.patch, image_size=size.native),
                 CLIPTextCfg(context_length=77, vocab_size=49408, width=size.text_width, heads=size.text_heads,
                             layers=size.text_layers),
                 quick_gelu=True)
    missing, unexpected = model.load_state_dict(clip_state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"reference CLIP → open_clip: missing {missing}, unexpected {unexpected}")
    model.eval().requires_grad_(False)
    return Backbone(model=model, preprocess=None, tokenizer=open_clip.tokenizer.SimpleTokenizer(),
                    name=f"reference-{size.vision_layers}L", pretrained="random", real_weights=False,
                    embed_dim=size.embed_dim, image_size=size.native, mean=tuple(open_clip.OPENAI_DATASET_MEAN),
                    std=tuple(open_clip.OPENAI_DATASET_STD), device=torch.device("cpu"))


@torch.no_grad()
def vadlib_inference(backbone, learner, frames: np.ndarray, images: torch.Tensor, size: Size,
                     switches: zhou.ZhouSwitches) -> dict:
    """vadlib on the reference's preprocessed ``images`` (model only) and end to end from the uint8
    ``frames`` through vadlib's own preprocessing."""
    from vadlib.methods.zeroshot.dpam import preprocess_frames

    model = zhou.ZhouZeroShot(backbone, learner, switches, image_size=size.input_size,
                              n_layers=size.dpam_layer - 1, sigma=size.sigma)
    x = preprocess_frames(frames, size.input_size, backbone.mean, backbone.std, switches.resize)
    m, s = model.image_maps(images)
    me, se = model.image_maps(x)
    mf, _ = model.frame_maps(frames)
    return {"input": x.numpy(), "text": model.text.cpu().numpy(), "map": m, "score": s, "map_e2e": me, "score_e2e": se,
            "map_frame": mf}


def diff(a, b) -> tuple[float, float]:
    """(max |a − b|, max |a − b| / max |b|) with ``b`` the reference."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = float(np.abs(a - b).max())
    return d, d / max(float(np.abs(b).max()), 1e-30)


ROWS = (("input (frames -> S x S tensor)", "input", "input"), ("text features", "text", "text"),
        ("anomaly map (same input)", "map", "map"), ("image score (same input)", "score", "score"),
        ("anomaly map (end to end)", "map_e2e", "map"), ("image score (end to end)", "score_e2e", "score"),
        ("anomaly map on the frame (H x W)", "map_frame", "map_frame"))


def compare(repo: str | Path, size_name: str = "small", seed: int = 0) -> dict:
    """Run both sides; returns ``{"reference": {row: (abs, rel)}, "fixes": {switch: {row: (abs, rel)}}, ...}``."""
    from PIL import Image

    size = SIZES[size_name]
    ref = import_reference(repo)
    model, ref_learner, clip_state = build_reference(ref, size, seed)
    backbone = vadlib_backbone(clip_state, size)
    learner = zhou.load_prompt_checkpoint({"prompt_learner": ref_learner.state_dict()}, backbone)
    rng = np.random.default_rng(seed)
    h, w = int(size.native * 0.9), int(size.native * 1.3)
    base = rng.integers(0, 256, (size.n_images, h // 8, w // 8, 3), np.uint8)       # smooth-ish content
    frames = np.stack([np.asarray(Image.fromarray(b).resize((w, h))) for b in base])
    frames = np.clip(frames.astype(np.int16) + rng.integers(-20, 21, frames.shape), 0, 255).astype(np.uint8)
    images = reference_preprocess(ref, frames, size)
    out_ref = reference_inference(ref, model, ref_learner, images, size)
    out_ref["input"] = images.numpy()
    # the reference evaluates at S x S; on a video frame its map is brought to H x W bilinearly
    out_ref["map_frame"] = torch.nn.functional.interpolate(torch.from_numpy(out_ref["map"])[:, None], size=(h, w),
                                                           mode="bilinear", align_corners=False)[:, 0].numpy()

    def table(sw):
        v = vadlib_inference(backbone, learner, frames, images, size, sw)
        return {label: diff(v[kv], out_ref[kr]) for label, kv, kr in ROWS}

    res = {"size": size_name, "reference": table(zhou.REFERENCE), "fixes": {}}
    for field in zhou.DEFAULT.to_dict():
        res["fixes"][field] = table(replace(zhou.REFERENCE, **{field: getattr(zhou.DEFAULT, field)}))
    res["fixes"]["all (vadlib default)"] = table(zhou.DEFAULT)
    return res


def _print(res: dict) -> None:
    size = SIZES[res["size"]]
    print(f"DPAM + object-agnostic prompts: vadlib vs zqhang/AnomalyCLIP, random weights, fp32 CPU, size '{res['size']}' "
          f"(ViT {size.vision_layers}x{size.vision_width}/{size.patch}, native {size.native} px, input {size.input_size} px, "
          f"{size.dpam_layer - 1} DPAM blocks, n_ctx {size.n_ctx}, deep depth {size.depth}, sigma {size.sigma})")
    print("relative = max|vadlib - reference| / max|reference|")
    print(f"\nreference mode (every switch at the reference's behaviour), target relative <= {TARGET_REL:g}:")
    print(f"  {'quantity':34s} {'max abs':>10s} {'relative':>10s}")
    ok = True
    for label, (a, r) in res["reference"].items():
        flag = "" if r <= TARGET_REL else "  ABOVE TARGET"
        ok &= r <= TARGET_REL
        print(f"  {label:34s} {a:10.3g} {r:10.3g}{flag}")
    print("\ndefault mode: what each vadlib fix changes (that switch at vadlib's default, the others at the reference's):")
    for field, rows in res["fixes"].items():
        print(f"  [{field}]")
        for label, (a, r) in rows.items():
            print(f"    {label:32s} {a:10.3g} {r:10.3g}")
    print("\nreference mode:", "within target" if ok else "ABOVE TARGET")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench reference dpam", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-repo", default=os.environ.get(ENV),
                    help=f"clone of zqhang/AnomalyCLIP (default: ${ENV})")
    ap.add_argument("--size", choices=sorted(SIZES), default="small")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.reference_repo:
        ap.error(f"give --reference-repo PATH (a clone of zqhang/AnomalyCLIP) or set ${ENV}")
    torch.set_grad_enabled(False)
    res = compare(args.reference_repo, args.size, args.seed)
    _print(res)
    return 0 if all(r <= TARGET_REL for _, r in res["reference"].values()) else 1
