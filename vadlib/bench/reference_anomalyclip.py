"""``python -m vadlib.bench reference anomalyclip --reference-repo PATH``: vadlib's AnomalyCLIP against
lucazanella/AnomalyCLIP on identical random weights (issue 14 item 3).

The reference's modules are imported from the user's clone at PATH at run time (never copied into
vadlib; only its model components — the Lightning / hydra entry points are not imported, a
logger stub stands in for ``src.utils``). The reference model is built with random weights (its own
CLIP class, random, instead of ``clip.load``), its ``state_dict`` goes into vadlib through the
importer :mod:`vadlib.compat.zanella`, and both get the same features, labels and MIL-dropout mask.
Printed: max absolute and relative differences (``max|a − b| / max|b|``, fp32, CPU) of the frame
scores and class probabilities (test-time path: wrap-around padding, interleaved grids, running BN
statistics), the selector scores, every loss term, the total and the gradient norm of one training
step — in reference mode (every :class:`~vadlib.methods.anomalyclip.model.ReferenceSwitches` on; target
relative difference ≤ 1e-5) and in vadlib's default mode (what the fixes change).

Needs the optional extra ``reference`` (``pip install -e .[reference]``: axial_attention, einops,
dotmap, pandas). Packages the reference imports but these components do not use (Lightning,
hydra, torchmetrics) are not needed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import logging
import math
import os
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch

SIZES = {
    # a small but real-shaped model: every component, both concat modes' code path, 2 axial layers
    "small": dict(D=64, text_width=64, text_layers=1, vision_width=64, vision_layers=1, image=32, patch=16,
                  emb_size=32, heads=4, depth=2, N=8, L=4, batch=4, concat=True, n_ctx=8, T_test=50),
    # the published ShanghaiTech configuration (ViT-B/16: 512-d, 32 × 16 grid, emb 256, depth 2)
    "real": dict(D=512, text_width=512, text_layers=12, vision_width=768, vision_layers=12, image=224, patch=16,
                 emb_size=256, heads=8, depth=2, N=32, L=16, batch=4, concat=True, n_ctx=8, T_test=700),
}
CLASSES = ["Abuse", "Arrest", "Normal", "Robbery", "Shooting"]      # sorted: normal_id 2 (as UCF-like lists)
TERMS = ["dir_abn", "dir_nor", "topk_abn", "bottomk_abn", "topk_nor", "smooth", "sparse"]
LOSS_W = {"dir_abn": "w_dir_abn", "dir_nor": "w_dir_nor", "topk_abn": "w_topk_abn", "bottomk_abn": "w_bottomk_abn",
          "topk_nor": "w_topk_nor", "smooth": "w_smooth", "sparse": "w_sparse"}
TARGET = 1e-5


# ---------------------------------------------------------------------------------------------
# importing the reference's components
# ---------------------------------------------------------------------------------------------


def import_reference(repo: str | Path) -> types.SimpleNamespace:
    """The reference's model modules from a clone (``src/models/components``), imported at run time."""
    repo = Path(repo).resolve()
    if not (repo / "src" / "models" / "components" / "anomaly_clip.py").is_file():
        raise SystemExit(f"--reference-repo {repo}: not a clone of lucazanella/AnomalyCLIP "
                         "(src/models/components/anomaly_clip.py missing)")
    missing = [m for m in ("axial_attention", "einops", "dotmap", "pandas") if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(f"the reference imports {missing}: pip install -e '.[reference]'")
    if "pkg_resources" not in sys.modules and importlib.util.find_spec("pkg_resources") is None:
        import packaging.version                            # clip.py imports pkg_resources.packaging only

        stub = types.ModuleType("pkg_resources")
        stub.packaging = packaging
        sys.modules["pkg_resources"] = stub
    for name in [k for k in sys.modules if k == "src" or k.startswith("src.")]:
        del sys.modules[name]
    sys.path.insert(0, str(repo))
    try:
        src = importlib.import_module("src")
        utils = types.ModuleType("src.utils")               # the real one pulls in Lightning / hydra / rich
        utils.get_pylogger = logging.getLogger
        sys.modules["src.utils"] = utils
        src.utils = utils
        ns = types.SimpleNamespace(
            anomaly_clip=importlib.import_module("src.models.components.anomaly_clip"),
            clip=importlib.import_module("src.models.components.clip.clip"),
            clip_model=importlib.import_module("src.models.components.clip.model"),
            loss=importlib.import_module("src.models.components.loss"),
            scheduler=importlib.import_module("src.models.components.scheduler"),
            dataset=importlib.import_module("src.data.components.feature_dataset"),
            repo=repo)
    finally:
        sys.path.remove(str(repo))
    return ns


def build_reference(ref, size: dict, labels_file: Path, seed: int):
    """The reference ``AnomalyCLIP`` net with random weights (its own CLIP class, not ``clip.load``)."""
    s = size

    def fake_load(arch, device="cpu", **_):
        m = ref.clip_model.CLIP(embed_dim=s["D"], image_resolution=s["image"], vision_layers=s["vision_layers"],
                                vision_width=s["vision_width"], vision_patch_size=s["patch"], context_length=77,
                                vocab_size=49408, transformer_width=s["text_width"],
                                transformer_heads=max(1, s["text_width"] // 64), transformer_layers=s["text_layers"])
        return m, None

    torch.manual_seed(seed)
    real_load = ref.clip.load
    ref.clip.load = fake_load
    try:
        with contextlib.redirect_stdout(io.StringIO()):              # the reference prints its prompts
            net = ref.anomaly_clip.AnomalyCLIP(
                arch="ViT-B/16", labels_file=str(labels_file), emb_size=s["emb_size"], depth=s["depth"], heads=s["heads"],
                dim_heads=None, num_segments=s["N"], seg_length=s["L"], concat_features=s["concat"],
                normal_id=sorted(CLASSES).index("Normal"), stride=1, load_from_features=True,
                select_idx_dropout_topk=0.7, select_idx_dropout_bottomk=0.7, ncrops=1, num_topk=3, num_bottomk=3,
                n_ctx=s["n_ctx"], ctx_init="", shared_context=False)
    finally:
        ref.clip.load = real_load
    # the Lightning module's freezing (AnomalyCLIPModule.__init__)
    for p in net.image_encoder.parameters():
        p.requires_grad = False
    for p in net.text_encoder.parameters():
        p.requires_grad = False
    net.text_encoder.text_projection.requires_grad = True
    for p in net.token_embedding.parameters():
        p.requires_grad = False
    with torch.no_grad():                                   # non-trivial BN statistics for the test path
        bn = net.selector_model.bn_layer
        bn.running_mean.normal_(0, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    return net


# ---------------------------------------------------------------------------------------------
# comparison
# ---------------------------------------------------------------------------------------------


def reference_test_item(ref, x: torch.Tensor, N: int, L: int, normal_id: int, tmp: Path):
    """``(ncrops, T_pad, D)`` features, labels, segment size of a test video as the reference's
    ``FeatureDataset`` returns them (its methods called on a stand-in ``self``)."""
    np.save(tmp / "v.npy", x.numpy())
    fake = types.SimpleNamespace(test_mode=True, val_mode=False, num_segments=N, frames_per_segment=L, stride=1,
                                 ncrops=1, annotations=None, transform=None, normal_id=normal_id)
    record = types.SimpleNamespace(num_frames=len(x), path=str(tmp / "v.npy"), start_frame=0, label=normal_id)
    cls = ref.dataset.VideoFrameDataset
    starts = cls._get_start_indices(fake, record)
    feats, labels, _, S, _ = cls._get(fake, record, starts)
    return feats, labels, int(S)


def reference_start_offsets(ref, T: int, N: int, L: int, seed: int, draws: int = 3000) -> set:
    """Start offsets (within their stretch) the reference's training sampler draws for a T-frame video."""
    fake = types.SimpleNamespace(test_mode=False, num_segments=N, frames_per_segment=L, stride=1)
    dist = (max(T, N * L) - L + 1) // N
    np.random.seed(seed)
    out = set()
    for _ in range(draws):
        out |= set((ref.dataset.VideoFrameDataset._get_start_indices(fake, types.SimpleNamespace(num_frames=T))
                    - np.arange(N) * dist).tolist())
    return out


def vadlib_start_offsets(T: int, N: int, L: int, seed: int, narrow: bool, draws: int = 3000) -> set:
    from vadlib.methods.anomalyclip.model import sample_grid_indices

    dist = (max(T, N * L) - L + 1) // N
    rng = np.random.default_rng(seed)
    out = set()
    for _ in range(draws):
        st = sample_grid_indices(T, N, L, rng, narrow)[::L]
        out |= set(((st - np.arange(N) * dist) % max(T, 1)).tolist()) if T < N * L else set((st - np.arange(N) * dist).tolist())
    return out


def reference_lr(ref, epochs: int, warmup: int) -> torch.Tensor:
    """Learning-rate factor of each epoch under the reference's ``WarmupCosineAnnealingLR``."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sch = ref.scheduler.WarmupCosineAnnealingLR(opt, total_epoch=epochs, warmup_epochs=warmup)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    return torch.tensor(out)


def _diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise AssertionError(f"shape mismatch {tuple(a.shape)} vs {tuple(b.shape)}")
    both_inf = torch.isinf(a) & torch.isinf(b) & (torch.sign(a) == torch.sign(b))
    d = torch.where(both_inf, torch.zeros_like(a), (a - b).abs())
    ab = float(d.max()) if d.numel() else 0.0
    scale = float(torch.where(torch.isfinite(b), b.abs(), torch.zeros_like(b)).max()) if b.numel() else 0.0
    return ab, (ab / scale if scale > 0 else (0.0 if ab == 0 else math.inf))


def _grad_norm(params) -> torch.Tensor:
    g = [p.grad.double().pow(2).sum() for p in params if p.grad is not None]
    return torch.stack(g).sum().sqrt() if g else torch.zeros((), dtype=torch.float64)


def compare(repo: str | Path, size: str = "small", seed: int = 0, log=print) -> dict[str, dict[str, tuple[float, float]]]:
    """Run both implementations; ``{mode: {quantity: (max abs diff, rel diff)}}`` for mode
    ``reference`` (all switches on) and ``default`` (vadlib's fixes)."""
    from vadlib.compat.zanella import import_anomalyclip
    from vadlib.methods.anomalyclip import model as ac

    torch.set_grad_enabled(True)
    s = SIZES[size]
    ref = import_reference(repo)
    with tempfile.TemporaryDirectory() as tmp:
        labels_file = Path(tmp) / "labels.csv"
        labels_file.write_text("id,name\n" + "".join(f"{i},{c}\n" for i, c in enumerate(CLASSES)))
        net = build_reference(ref, s, labels_file, seed)
    names = sorted(CLASSES)
    normal_id = names.index("Normal")
    A, N, L, D, B = len(names) - 1, s["N"], s["L"], s["D"], s["batch"]
    g = torch.Generator().manual_seed(seed + 1)
    ncentroid = torch.randn(D, generator=g) * 0.3
    # features like raw CLIP image embeddings (not normalised), with an offset shared by all frames
    x = torch.randn(B, N * L, D, generator=g) + torch.randn(D, generator=g)
    ref_labels = torch.tensor([names.index(c) for c in ("Robbery", "Abuse", "Shooting", "Arrest")][:B // 2]
                              + [normal_id] * (B - B // 2))
    keep = torch.rand(B, N, generator=g) >= 0.7
    keep[:, :3] = True                                       # ≥ k kept: the selection is the same in both modes
    x_test = torch.randn(s["T_test"], D, generator=g) + x[0, 0]
    sd = {"net." + k: v.detach().clone() for k, v in net.state_dict().items()}   # before the step mutates BN stats

    # ---- reference: one training step (forward, loss, backward) and the test-time path ----
    net.train()
    mask3 = keep.float()[:, :, None].expand(B, N, A)
    net.selector_model.generate_mask = lambda logits: (mask3, mask3)
    crit = ref.loss.ComputeLoss(normal_id=normal_id, num_topk=3, lambda_dir_abn=1.0, lambda_dir_nor=1.0,
                                lambda_topk_abn=1.0, lambda_bottomk_abn=1.0, lambda_topk_nor=1.0,
                                lambda_smooth=8e-4, lambda_sparse=8e-3, frames_per_segment=L, num_segments=N)
    logits, logits_topk, scores, i_ta, i_tn, i_ba = net(x[:, None], ref_labels, ncentroid)
    r_loss = crit(logits, logits_topk, ref_labels, scores, i_ta, i_tn, i_ba)
    r_loss[0].backward()
    r_params = [p for p in net.parameters() if p.requires_grad]
    r = {"train_scores": scores.detach().reshape(B, N * L), "selector_z": logits.detach().reshape(B, N * L, A),
         "total": r_loss[0].detach(), **{t: v.detach() for t, v in zip(TERMS, r_loss[1:])},
         "grad_norm": _grad_norm(r_params),
         "grad_norm_temporal": _grad_norm(net.temporal_model.parameters()),
         "grad_norm_prompts": _grad_norm([net.prompt_learner.ctx]),
         "grad_norm_text_projection": _grad_norm([net.text_encoder.text_projection])}
    net.eval()
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        # the test video as the reference's FeatureDataset serves it (wrap-around padding, interleaved grids)
        feats, _, S = reference_test_item(ref, x_test, N, L, normal_id, Path(tmp))
        sim, sc = net(feats[None], None, ncentroid, segment_size=S, test_mode=True)
        p = torch.softmax(sim, 1) * sc[:, None]
        P = torch.cat([p[:, :normal_id], (1 - sc)[:, None], p[:, normal_id:]], 1)[:len(x_test)]
        r["test_scores"], r["test_class_probs"] = sc[:len(x_test)], P
    # a saturated head (σ = 1 in float32): the reference's log(1 − σ) = −inf (flaw 2)
    sd_sat = dict(sd)
    sd_sat["net.temporal_model.classifier.linear.bias"] = sd["net.temporal_model.classifier.linear.bias"] + 40.0
    net.load_state_dict({k[4:]: v for k, v in sd_sat.items()})
    net.train()
    with torch.no_grad():
        out_sat = net(x[:, None], ref_labels, ncentroid)
        r["saturated_bottomk_abn"] = crit(out_sat[0], out_sat[1], ref_labels, out_sat[2], *out_sat[3:])[4]
    r_offsets = {T: reference_start_offsets(ref, T, N, L, seed) for T in (N * L // 2, 5 * N * L + 3)}
    r_lr = reference_lr(ref, 100, 10)

    # ---- vadlib, through the importer, in both modes ----
    results = {}
    for mode, switches in (("reference", True), ("default", False)):
        m = import_anomalyclip(Path(repo) / "random-weights", state_dict=sd, require_centroid=False,
                               overrides={"heads": s["heads"], "reference": switches}, real_weights=False)
        m.module.set_centroid(ncentroid)
        order = [c.lower() for c in m.class_names]
        to_ref = [order.index(c.lower()) for c in names]                 # vadlib column of each reference class
        v_classes = torch.tensor([order.index(names[int(c)].lower()) for c in ref_labels])
        mod = m.module
        mod.train()
        out = mod(x)
        total, terms = ac.anomalyclip_loss(out, v_classes, m.cfg, keep=keep, return_tensors=True)
        total.backward()
        v = {"train_scores": torch.sigmoid(out["logit"]).detach(),
             "selector_z": out["z"].detach()[..., [to_ref[i] - 1 for i in range(len(names)) if i != normal_id]],
             "total": total.detach(),
             **{t: getattr(m.cfg, LOSS_W[t]) * terms[t].detach() for t in TERMS},
             "grad_norm": _grad_norm([p for p in mod.parameters() if p.requires_grad]),
             "grad_norm_temporal": _grad_norm([p for n, p in mod.named_parameters() if not n.startswith("text.")]),
             "grad_norm_prompts": _grad_norm([mod.text.ctx]),
             "grad_norm_text_projection": _grad_norm([mod.text.text_projection])}
        sc_v, P_v = mod.predict({"v": x_test.numpy()})["v"]
        v["test_scores"], v["test_class_probs"] = torch.from_numpy(sc_v), torch.from_numpy(P_v)[:, to_ref]
        sat = import_anomalyclip(Path(repo) / "random-weights", state_dict=sd_sat, require_centroid=False,
                                 overrides={"heads": s["heads"], "reference": switches}, real_weights=False)
        sat.module.set_centroid(ncentroid)
        sat.module.train()
        with torch.no_grad():
            _, t_sat = ac.anomalyclip_loss(sat.module(x), v_classes, sat.cfg, keep=keep, return_tensors=True)
        v["saturated_bottomk_abn"] = t_sat["bottomk_abn"] * sat.cfg.w_bottomk_abn
        res = {k: _diff(v[k], r[k]) for k in r}
        for T, ro in r_offsets.items():      # reachable start offsets of a training sample (distribution support)
            vo = vadlib_start_offsets(T, N, L, seed, m.cfg.reference.narrow_segment_starts)
            res[f"train_start_offsets_T{T}"] = (float(len(ro ^ vo)), len(ro ^ vo) / len(ro))
        from vadlib.train import lr_factor, lr_factor_epoch

        lr_v = [lr_factor_epoch(e, 100, 10) if m.cfg.reference.lr_zero_first_epoch else lr_factor(e, 100, 10)
                for e in range(100)]
        res["lr_per_epoch_100ep_10warm"] = _diff(torch.tensor(lr_v), r_lr)
        results[mode] = res
    results["_switches"] = {"reference": m.cfg.reference.__class__.from_value(True).active()}
    return results


def format_table(res: dict, size: str) -> str:
    rows = [k for k in res["reference"]]
    lines = [f"vadlib AnomalyCLIP vs lucazanella/AnomalyCLIP — same random weights, fp32, CPU, size '{size}' "
             f"(RANDOM WEIGHTS: a check of the computation, not of accuracy)",
             f"{'quantity':<26} {'reference mode':>30} {'default mode (vadlib fixes)':>30}",
             f"{'':<26} {'max abs':>14} {'rel':>15} {'max abs':>14} {'rel':>15}"]
    for k in rows:
        a, b = res["reference"][k], res["default"][k]
        lines.append(f"{k:<26} {a[0]:>14.3e} {a[1]:>15.3e} {b[0]:>14.3e} {b[1]:>15.3e}")
    worst = max(v[1] for v in res["reference"].values())
    lines.append(f"reference mode ({', '.join(res['_switches']['reference'])}): worst relative difference "
                 f"{worst:.2e} — {'PASS' if worst <= TARGET else 'FAIL'} (target ≤ {TARGET:g})")
    lines.append("default mode: smooth_across_videos changes L_smooth (and so the total and the gradients); "
                 "log_without_eps changes numbers only once σ saturates (saturated_bottomk_abn: head bias +40, "
                 "+inf in the reference and in reference mode, finite with the fix), "
                 "mask_can_select_dropped only when a video keeps < k segments (this input keeps ≥ k); "
                 "narrow_segment_starts changes which training starts are drawn (offsets: count of start "
                 "offsets reachable by only one of the two); lr_zero_first_epoch the per-epoch lr; "
                 "no_validation_split acts in train_mil (tests/test_train.py)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench reference anomalyclip", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-repo", default=os.environ.get("VADLIB_REFERENCE_ANOMALYCLIP"),
                    help="a clone of lucazanella/AnomalyCLIP (default: $VADLIB_REFERENCE_ANOMALYCLIP)")
    ap.add_argument("--size", choices=sorted(SIZES), action="append",
                    help="small (default) and/or real (512-d, 32×16 grid, ViT-B/16-sized CLIP); repeatable")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if not a.reference_repo:
        ap.error("give --reference-repo PATH (a clone of lucazanella/AnomalyCLIP)")
    worst = 0.0
    for size in a.size or ["small"]:
        res = compare(a.reference_repo, size, a.seed)
        print(format_table(res, size))
        worst = max(worst, max(v[1] for v in res["reference"].values()))
    return 0 if worst <= TARGET else 1
