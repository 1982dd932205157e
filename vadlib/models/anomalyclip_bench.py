"""Speed benchmark of AnomalyCLIP on ShanghaiTech-sized planted features.

``python -m vadlib.bench anomalyclip [--variant faithful|fast|both] [--steps N] [--threads 2]``

Prints seconds per training epoch (an epoch = ``max(63, 177) // 32 = 5`` steps of 64 videos ×
32×16 frames × 512-d, the reference's ``max_size_cycle``; measured over ``--steps`` steps and
scaled to the epoch unless ``--steps 0`` runs a whole epoch) and the inference time over the
40 test videos × 1000 frames = 40,000 frames (text features cached, grids batched).
The text source is the planted class embeddings (no CLIP weights here); with the real CLIP text
encoder one text pass per step adds the encoding of 17 prompts.

Variants: ``faithful`` = the ShanghaiTech config (3×3-conv feed-forward, emb 256, depth 2);
``fast`` = the same with a pointwise (1×1) feed-forward (``ff_kernel=1``), the cheaper option.
Timings on a machine shared with other jobs are pessimistic.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _bench_variant(name: str, overrides: dict, pb, steps: int, log=print) -> dict:
    from vadlib.train import WeakVideo, build_method, method_config, seed_everything, lr_factor

    cfg = method_config("anomalyclip", "shanghaitech", {"text_source": "embeddings", **overrides})
    m = build_method("anomalyclip", cfg, pb.class_names, pb.text_embeddings.shape[1],
                     text_embeddings=pb.text_embeddings)
    train = [WeakVideo(v.name, v.features, v.class_id) for v in pb.train]
    seed_everything(0)
    m.prepare(train)
    opt = m.optimizer()
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    abn = [v for v in train if v.class_id]
    nor = [v for v in train if not v.class_id]
    half = m.cfg.batch_size // 2
    per_epoch = max(len(abn), len(nor)) // half
    n = per_epoch if steps <= 0 else steps
    m.module.train()
    times = []
    for i in range(n + 1):            # first step = warm-up, not timed
        t0 = time.perf_counter()
        batch = m.batch([abn[j % len(abn)] for j in rng.integers(0, len(abn), half)],
                        [nor[j % len(nor)] for j in rng.integers(0, len(nor), half)], rng)
        loss, _ = m.loss(batch, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t0)
    step = float(np.mean(times))
    t0 = time.perf_counter()
    m.predict({v.name: v.features for v in pb.test})
    infer = time.perf_counter() - t0
    n_frames = sum(len(v.features) for v in pb.test)
    res = {"variant": name, "s_per_step": step, "steps_per_epoch": per_epoch, "s_per_epoch": step * per_epoch,
           "inference_s": infer, "test_frames": n_frames, "timed_steps": n}
    log(f"[{name}] {step:.2f} s/step × {per_epoch} steps = {step * per_epoch:.1f} s/epoch "
        f"(timed over {n} steps); inference {infer:.1f} s over {n_frames} test frames")
    return res


def bench_anomalyclip(argv: list[str] | None = None) -> int:
    """Print s/epoch and inference time of AnomalyCLIP on ShanghaiTech-sized planted features."""
    ap = argparse.ArgumentParser(prog="vadlib.bench anomalyclip", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["faithful", "fast", "both"], default="both")
    ap.add_argument("--steps", type=int, default=2, help="timed training steps (0 = one whole epoch)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv or [])
    torch.set_num_threads(a.threads)
    from vadlib.models.planted import make_planted

    t0 = time.perf_counter()
    pb = make_planted("shanghaitech", a.seed)
    print(f"planted ShanghaiTech-sized features: {len(pb.train)} training videos "
          f"({sum(v.class_id > 0 for v in pb.train)} abnormal), {len(pb.test)} test videos, "
          f"D={pb.text_embeddings.shape[1]} ({time.perf_counter() - t0:.1f} s to generate); "
          f"torch threads {torch.get_num_threads()}; shared machine → timings are pessimistic")
    variants = {"faithful": {}, "fast": {"ff_kernel": 1}}
    names = list(variants) if a.variant == "both" else [a.variant]
    for n in names:
        _bench_variant(n, variants[n], pb, a.steps)
    print("targets: ≤ 30 s/epoch, ≤ 10 s inference over 40,000 frames (reference: 419 s/epoch, 751 s test pass)")
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(bench_anomalyclip(sys.argv[1:]))
