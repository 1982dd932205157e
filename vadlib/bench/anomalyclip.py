"""Speed benchmark of AnomalyCLIP on ShanghaiTech-sized planted features.

``python -m vadlib.bench anomalyclip [--variant faithful|fast|compact|all] [--steps N] [--threads 2]``

Prints seconds per training epoch (an epoch = ``max(63, 177) // 32 = 5`` steps of 64 videos ×
32×16 frames × 512-d, the reference's ``max_size_cycle``; measured over ``--steps`` steps and
scaled to the epoch unless ``--steps 0`` runs a whole epoch) and the inference time over the
40 test videos × 1000 frames = 40,000 frames (text features cached, grids batched).
The text source is the planted class embeddings (no CLIP weights here); with the real CLIP text
encoder one text pass per step adds the encoding of 17 prompts.

Variants (:data:`VARIANTS`, one definition for this bench and ``planted_mil``): ``faithful`` = the
ShanghaiTech config (3×3-conv feed-forward, emb 256, depth 2); ``fast`` = the same with a pointwise
(1×1) feed-forward (``ff_kernel=1``); ``compact`` = fast with half the preset's ``emb_size`` (128 here).
Their planted accuracy: ``python -m vadlib.bench planted_mil`` (``anomalyclip_fast`` /
``anomalyclip_compact`` rows, the same changes to the ``demo`` preset: emb 64 → 32).

Why the faithful model cannot reach 30 s/epoch on 2 CPU cores: its 3×3-conv feed-forward costs
3.7e12 FLOP per 64-video step (2 depths × 2 nets × 2 convs × 256·1024·9 MAC per frame × 32,768
frames, ×3 for forward + backward), 1.9e13 per 5-step epoch. These two cores peak at ≈ 260 GFLOP/s
(fp32 sgemm 4096², idle) and ≈ 295 GFLOP/s on this convolution in channels_last layout, so an epoch
needs ≥ 63 s even at peak; the profiler shows the step's convolutions already running at ≈ 250–265
GFLOP/s (forward 4.7 s, backward 9.9 s of a ≈ 20 s step). These cores have AVX-512-BF16 but no AMX. The speed-ups that
do not change the model are used (channels_last convolutions, no recomputation in backward, SDPA
attention, one text pass per step, cached text and batched grids at test).
Timings on a machine shared with other jobs are pessimistic.

Precision (issue 15, ``--precisions fp32,bf16``): on CPUs with bf16 units (AMX, AVX-512-BF16) the
temporal model runs under bf16 autocast (``AnomalyCLIPConfig.precision``); each variant is built
once per precision and their training steps and inference passes alternate, so the printed
bf16 / fp32 ratios come from one run. The ceiling line gives the measured 3×3-convolution speed in
both precisions, and the matmul GFLOP/s of the same run. ``--modes bf16-weights,bf16-compile,fp32-compile``
adds training modes to the interleaving (:data:`MODES`: bf16 master weights — speed only —, and
``torch.compile`` of the temporal model). ``python -m vadlib.bench planted_mil --precisions fp32,bf16`` prints the planted
AUC / mAUC of both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

VARIANTS = ("faithful", "fast", "compact")


def _bf16_weights(m) -> None:
    """The temporal model's weights (embed, axial transformer, head) cast to bf16 under the model's
    bf16 autocast: no per-call weight casts, but bf16 master weights (speed only: AdamW updates
    in bf16 lose precision, so this is not a training mode vadlib offers)."""
    import torch

    for part in (m.module.embed, m.module.temporal, m.module.head):
        part.to(torch.bfloat16)


def _compile(m) -> None:
    """``torch.compile`` (inductor) of the temporal model (forward and backward)."""
    import torch

    m.module.temporal = torch.compile(m.module.temporal)


#: extra training modes of ``--modes``: name -> (precision, change applied to the built method)
MODES = {"bf16-weights": ("bf16", _bf16_weights), "bf16-compile": ("bf16", _compile),
         "fp32-compile": ("fp32", _compile)}


def variant_overrides(variant: str, preset: str) -> dict:
    """Config overrides of an AnomalyCLIP speed/accuracy variant of ``preset`` (see the module docstring):
    ``faithful`` none, ``fast`` ``ff_kernel=1``, ``compact`` ``ff_kernel=1`` and half the preset's ``emb_size``."""
    from vadlib.methods import config as method_config

    if variant not in VARIANTS:
        raise ValueError(f"unknown AnomalyCLIP variant {variant!r}; known: {', '.join(VARIANTS)}")
    over: dict = {} if variant == "faithful" else {"ff_kernel": 1}
    if variant == "compact":
        over["emb_size"] = method_config("anomalyclip", preset)["emb_size"] // 2
    return over


def _bench_variant(name: str, overrides: dict, pb, steps: int, log=print,
                   precisions: tuple[str, ...] = ("fp32",), infer_repeats: int = 1) -> list[dict]:
    """Time ``steps`` training steps and the inference pass of one variant, once per precision;
    the precisions' steps (and inference passes) alternate so load changes hit all alike."""
    from vadlib.methods import WeakVideo, seed_everything
    from vadlib.methods import build as build_method
    from vadlib.methods import config as method_config

    train = [WeakVideo(v.name, v.features, v.class_id) for v in pb.train]
    abn = [v for v in train if v.class_id]
    nor = [v for v in train if not v.class_id]
    runs = {}
    for p in precisions:
        prec, change = MODES.get(p, (p, None))
        cfg = method_config("anomalyclip", "shanghaitech", {"text_source": "embeddings", **overrides, "precision": prec})
        m = build_method("anomalyclip", cfg, pb.class_names, pb.text_embeddings.shape[1],
                         text_embeddings=pb.text_embeddings)
        seed_everything(0)
        m.prepare(train)
        if change is not None:
            change(m)
        m.module.train()
        runs[p] = {"name": p if p in MODES else m.module.precision, "m": m, "opt": m.optimizer(),
                   "rng": np.random.default_rng(0),
                   "gen": torch.Generator().manual_seed(0), "times": [], "infer": []}
    half = next(iter(runs.values()))["m"].cfg.batch_size // 2
    per_epoch = max(len(abn), len(nor)) // half
    n = per_epoch if steps <= 0 else steps
    for i in range(n + 1):            # first step = warm-up, not timed
        for p, r in runs.items():
            m, rng = r["m"], r["rng"]
            t0 = time.perf_counter()
            batch = m.batch([abn[j % len(abn)] for j in rng.integers(0, len(abn), half)],
                            [nor[j % len(nor)] for j in rng.integers(0, len(nor), half)], rng)
            loss, _ = m.loss(batch, r["gen"])
            r["opt"].zero_grad(set_to_none=True)
            loss.backward()
            r["opt"].step()
            if i:
                r["times"].append(time.perf_counter() - t0)
    feats = {v.name: v.features for v in pb.test}
    for _ in range(max(1, infer_repeats)):
        for p, r in runs.items():
            t0 = time.perf_counter()
            r["m"].predict(feats)
            r["infer"].append(time.perf_counter() - t0)
    n_frames = sum(len(v.features) for v in pb.test)
    out = []
    for p, r in runs.items():
        step, infer = float(np.mean(r["times"])), float(min(r["infer"]))
        out.append({"variant": name, "precision": r["name"], "s_per_step": step,
                    "steps_per_epoch": per_epoch, "s_per_epoch": step * per_epoch, "inference_s": infer,
                    "test_frames": n_frames, "timed_steps": n})
        log(f"[{name} {out[-1]['precision']}] {step:.2f} s/step × {per_epoch} steps = {step * per_epoch:.1f} s/epoch "
            f"(timed over {n} steps); inference {infer:.2f} s over {n_frames} test frames (best of {len(r['infer'])})")
    if len(out) > 1:
        for o in out[1:]:
            log(f"[{name}] {o['precision']} / {out[0]['precision']}: training step "
                f"{out[0]['s_per_step'] / o['s_per_step']:.2f}× "
                f"faster, inference {out[0]['inference_s'] / o['inference_s']:.2f}× faster (one run, interleaved)")
    return out


def ffn_flop_per_step(emb: int = 256, depth: int = 2, kernel: int = 3, mult: int = 4, frames: int = 64 * 512) -> float:
    """FLOP of the axial blocks' feed-forward convolutions per training step (forward + backward)."""
    mac_per_frame = depth * 2 * 2 * emb * (mult * emb) * kernel * kernel   # depth × (f, g) × 2 convs
    return 3.0 * 2.0 * mac_per_frame * frames


def conv_peak_gflops(emb: int = 256, repeats: int = 3, precision: str = "fp32") -> float:
    """Measured GFLOP/s of one channels_last 3×3 convolution of the faithful model's shape
    (``precision="bf16"``: under bf16 autocast, as the model's bf16 mode runs it)."""
    x = torch.randn(64, emb, 32, 16).contiguous(memory_format=torch.channels_last)
    w = torch.randn(4 * emb, emb, 3, 3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
        torch.nn.functional.conv2d(x, w, padding=1)
        t0 = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.conv2d(x, w, padding=1)
        dt = (time.perf_counter() - t0) / repeats
    return 2.0 * 64 * 512 * emb * 4 * emb * 9 / dt / 1e9


def main(argv: list[str] | None = None) -> int:
    """Print s/epoch and inference time of AnomalyCLIP on ShanghaiTech-sized planted features."""
    ap = argparse.ArgumentParser(prog="vadlib.bench anomalyclip", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["faithful", "fast", "compact", "all"], default="all")
    ap.add_argument("--steps", type=int, default=2, help="timed training steps (0 = one whole epoch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", default="shanghaitech", help="planted size (test, small, shanghaitech)")
    ap.add_argument("--tiny", action="store_true",
                    help="a seconds-long smoke run: --size test, 4×4 segments, batch 8, depth 1 (no ceiling)")
    ap.add_argument("--precisions", default="fp32,bf16",
                    help="comma list (fp32, bf16, auto); bf16 is skipped with a note on a CPU without bf16 units")
    ap.add_argument("--infer-repeats", type=int, default=2, help="inference passes per precision (best reported)")
    ap.add_argument("--modes", default="",
                    help=f"extra training modes beside --precisions ({', '.join(MODES)}); bf16 modes need bf16 units")
    a = ap.parse_args(argv or [])
    tiny = dict(num_segments=4, seg_length=4, batch_size=8, depth=1) if a.tiny else {}
    a.size = "test" if a.tiny else a.size
    torch.set_num_threads(a.threads)
    precs = usable_precisions(a.precisions)
    modes = tuple(x.strip() for x in a.modes.split(",") if x.strip())
    for x in modes:
        if x not in MODES:
            raise SystemExit(f"--modes: unknown mode {x!r}; known: {', '.join(MODES)}")
    modes = tuple(x for x in modes if MODES[x][0] in precs)
    from vadlib.synthetic.planted_mil import make_planted_mil

    t0 = time.perf_counter()
    pb = make_planted_mil(a.size, a.seed)
    print(f"planted {a.size}-sized features: {len(pb.train)} training videos "
          f"({sum(v.class_id > 0 for v in pb.train)} abnormal), {len(pb.test)} test videos, "
          f"D={pb.text_embeddings.shape[1]} ({time.perf_counter() - t0:.1f} s to generate); "
          f"torch threads {torch.get_num_threads()}; shared machine → timings are pessimistic")
    names = list(VARIANTS) if a.variant == "all" else [a.variant]
    for n in names:
        _bench_variant(n, {**variant_overrides(n, "shanghaitech"), **tiny}, pb, a.steps, precisions=precs + modes,
                       infer_repeats=a.infer_repeats)
    if a.size != "shanghaitech":  # the ceiling below is of the ShanghaiTech-sized step
        return 0
    peaks = {}
    for _ in range(2):  # interleaved; best of two
        for p in precs:
            peaks[p] = max(peaks.get(p, 0.0), conv_peak_gflops(precision=p))
    for p in precs:
        print(f"ceiling ({p}): the faithful feed-forward convolutions cost {ffn_flop_per_step() / 1e12:.2f} TFLOP per "
              f"step; this machine runs that convolution at {peaks[p]:.0f} GFLOP/s → ≥ "
              f"{ffn_flop_per_step() * 5 / peaks[p] / 1e9:.0f} s per 5-step epoch for them alone")
    if "fp32" in peaks and "bf16" in peaks:
        print(f"ceiling ratio bf16 / fp32 = {peaks['bf16'] / peaks['fp32']:.2f}")
    from vadlib.bench.encoder_variants import matmul_gflops

    mm = {p: max(matmul_gflops(p) for _ in range(2)) for p in ("fp32", "bf16") if p in precs}
    print("matmul 2048² in this run: " + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in mm.items())
          + (f" (ratio bf16 / fp32 {mm['bf16'] / mm['fp32']:.2f})" if len(mm) == 2 else ""))
    print("targets: ≤ 30 s/epoch, ≤ 5 s inference over 40,000 frames (reference: 419 s/epoch, 751 s test pass)")
    return 0


def usable_precisions(spec: str) -> tuple[str, ...]:
    """The comma list ``spec`` minus precisions this CPU refuses (each refusal printed); also used by
    :mod:`vadlib.bench.planted_mil`."""
    from vadlib.errors import ConfigError
    from vadlib.features.precision import resolve_precision

    out = []
    for p in (s.strip() for s in spec.split(",") if s.strip()):
        try:
            resolve_precision(p, "cpu")
            out.append(p)
        except ConfigError as exc:
            print(f"# precision {p} skipped: {exc}")
    return tuple(out) or ("fp32",)


if __name__ == "__main__":
    raise SystemExit(main())
