"""Glow of the flow stage in fp32 vs bf16 (issue 15 item 4): ``python -m vadlib.bench glow``.

On synthetic flow data (:mod:`vadlib.synthetic.flow`: squares moving at 1 px/frame, one turning
fast in the test videos), the flow stage's own features (DIS flow, moving regions, flow patches,
:func:`vadlib.methods.flow_nf.pipeline.dataset_features`) feed :class:`~vadlib.methods.flow_nf.glow.GlowDensity`
with ``flow_nf.glow`` params (``--K/--hidden/--epochs``), once per precision, in one run (bf16 =
``fit`` / ``score_samples`` under ``torch.autocast("cpu", torch.bfloat16)``: the convolutions in bf16,
ActNorm, coupling scales and log-determinants promoted to fp32; the stage itself stays fp32, since
this bench found no gain):

* speed: one training epoch on ``--patches`` patches (the training patches resampled to the
  Ped2 stage's ``max_train`` size, so the time per epoch is the stage's) and scoring them,
  fp32 and bf16 alternating (``--repeats``), with the bf16 / fp32 ratios;
* agreement: a full fit on the synthetic training patches in each precision, the region- and
  frame-level AUC of the test videos of each, and the correlation of their scores.

bf16 is skipped (and said so) on a CPU without bf16 units. DIS flow is OpenCV (fp32), not timed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _features(tmp: Path, size: tuple[int, int], n_train: int, n_test: int, frames: int, seed: int):
    from vadlib.methods.flow_nf.pipeline import _configs, _flow_cache_dir, dataset_features, merge_params
    from vadlib.synthetic.flow import make_dataset

    ds = make_dataset(tmp, "glowbench", size=size, n_train=n_train, n_test=n_test, n=frames, seed=seed,
                      sq=max(8, size[0] // 4))
    p = merge_params({"workers": 1, "cache": str(tmp / "cache"), "flow": {"preset": "medium"},
                      "regions": {"use_flow": True, "tau_mag": 0.3, "min_area": 50}})
    fcfg, rcfg = _configs(p, ds.name)
    vids = ds.videos("train") + ds.videos("test")
    feats = dataset_features(vids, _flow_cache_dir(p, ds.name, fcfg), fcfg, rcfg, p["patch"],
                             int(p["velocity"]["bins"]), float(p["naive_top"]), 1)
    return ds, feats


def _auc(ds, feats, scores: dict[str, np.ndarray]) -> tuple[float, float]:
    """Region-level and frame-level (max over a frame's regions) AUC of the test videos."""
    from sklearn.metrics import roc_auc_score

    from vadlib.methods.flow_nf.pipeline import frame_max

    ry, rs, fy, fs = [], [], [], []
    for v in ds.videos("test"):
        f, s = feats[v.name], scores[v.name]
        ry.append(v.frame_labels[f.frame])
        rs.append(s)
        fy.append(v.frame_labels)
        fs.append(frame_max(s, f.frame, len(v.frame_labels), float(s.min()) if len(s) else 0.0))
    return (float(roc_auc_score(np.concatenate(ry), np.concatenate(rs))),
            float(roc_auc_score(np.concatenate(fy), np.concatenate(fs))))


def _ctx(precision: str):
    import torch

    return torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16")


def main(argv: list[str] | None = None) -> int:
    """Print Glow's fp32 / bf16 training and scoring speed and AUC agreement (see the module docstring)."""
    import torch

    from vadlib.bench.anomalyclip import usable_precisions
    from vadlib.methods.flow_nf.glow import GlowDensity

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench glow", description=__doc__.split("\n\n")[0])
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--patches", type=int, default=30000, help="patches of the timed epoch (flow_nf.glow.max_train)")
    ap.add_argument("--repeats", type=int, default=2, help="timed epochs per precision, alternating (best reported)")
    ap.add_argument("--K", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=12, help="epochs of the agreement fits")
    ap.add_argument("--size", default="96x128", help="HxW of the synthetic videos")
    ap.add_argument("--videos", default="4,2", help="training,test videos")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    precs = usable_precisions(a.precisions)
    h, w = (int(s) for s in a.size.lower().split("x"))
    n_tr, n_te = (int(s) for s in a.videos.split(","))
    glow = dict(K=a.K, hidden=a.hidden, batch_size=a.batch_size, noise=0.03, seed=a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ds, feats = _features(Path(tmp), (h, w), n_tr, n_te, a.frames, a.seed)
        train = np.concatenate([feats[v.name].patches for v in ds.videos("train")]).astype(np.float32)
        print(f"synthetic flow data {h}x{w}: {len(train)} training patches {tuple(train.shape[1:])} from {n_tr} videos, "
              f"{sum(len(feats[v.name].frame) for v in ds.videos('test'))} test regions in {n_te} videos "
              f"({time.perf_counter() - t0:.1f} s for flow + regions); Glow K={a.K} hidden={a.hidden} "
              f"batch {a.batch_size}; torch threads {torch.get_num_threads()}")
        # speed: one epoch on --patches patches (resampled with the stage's dequantisation noise)
        rng = np.random.default_rng(a.seed)
        big = train[rng.integers(0, len(train), a.patches)]
        fit_s: dict[str, list[float]] = {p: [] for p in precs}
        score_s: dict[str, list[float]] = {p: [] for p in precs}
        for _ in range(max(1, a.repeats)):
            for p in precs:
                g = GlowDensity(**glow, epochs=1, val_fraction=0.0)
                t0 = time.perf_counter()
                with _ctx(p):
                    g.fit(big)
                fit_s[p].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                with _ctx(p):
                    g.score_samples(big)
                score_s[p].append(time.perf_counter() - t0)
        for p in precs:
            print(f"[{p}] training {min(fit_s[p]):.2f} s/epoch over {a.patches} patches, scoring them "
                  f"{min(score_s[p]):.2f} s (best of {len(fit_s[p])})")
        if "fp32" in precs and "bf16" in precs:
            print(f"bf16 / fp32 speed: training {min(fit_s['fp32']) / min(fit_s['bf16']):.2f}x, scoring "
                  f"{min(score_s['fp32']) / min(score_s['bf16']):.2f}x (one run, alternating)")
        # agreement: a full fit in each precision on the synthetic training patches
        scores, aucs = {}, {}
        for p in precs:
            with _ctx(p):
                g = GlowDensity(**glow, epochs=a.epochs).fit(train)
                scores[p] = {v.name: -g.score_samples(feats[v.name].patches.astype(np.float32))
                             for v in ds.videos("test") if len(feats[v.name].frame)}
            aucs[p] = _auc(ds, feats, scores[p])
            print(f"[{p}] {a.epochs}-epoch fit: region AUC {aucs[p][0]:.4f}, frame AUC {aucs[p][1]:.4f}, "
                  f"final val NLL {g.history_[-1].get('val_nll', float('nan')):.4f} nats/dim")
        if "fp32" in aucs and "bf16" in aucs:
            a32 = np.concatenate(list(scores["fp32"].values()))
            a16 = np.concatenate(list(scores["bf16"].values()))
            print(f"agreement bf16 vs fp32: |Δ region AUC| {abs(aucs['bf16'][0] - aucs['fp32'][0]):.4f}, "
                  f"|Δ frame AUC| {abs(aucs['bf16'][1] - aucs['fp32'][1]):.4f}, Pearson r of region scores "
                  f"{np.corrcoef(a32, a16)[0, 1]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
