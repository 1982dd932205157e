"""``python -m vadlib.bench velocity_variants``: the velocity stream of ``flow_nf`` under several
flow / region / velocity variants, scored on the pseudo-anomaly VALIDATION set only.

How Ped2's object-level stream was chosen (issue 17 item 4; README "Ped2 in AI-VAD's format"):
each variant is a dict of ``flow_nf`` overrides (``flow``, ``regions``, ``velocity``); for each, the
flow of the training videos and of the validation set is computed (cached), regions and velocity
features are extracted, the velocity GMM is fitted on the fitting videos exactly as the stage
does (validation videos held out, every ``calib_every``-th video kept for calibration), and the
validation set is scored: frame score = max over the frame's regions of −log p, frames without
regions get the lowest calibration region score, σ = ``sigma`` per video. The test split is never
read. Printed per variant: the key AUC (mean per-kind micro AUC over ``--key-kinds``), the micro
AUC, each kind's AUC, regions per frame and the wall time; ``--out`` writes the table as CSV.

    python -m vadlib.bench velocity_variants --root ../shared/datasets/ucsd_ped2 \\
        --variant base='{}' --variant contours='{"regions": {"boxes": "contours"}}'

The key kinds default to ``skip patch object``: a speed feature cannot see ``reverse`` (same speed)
or ``freeze`` (no motion reads as normal), so those kinds rank speed variants by noise.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

DEFAULT_VALIDATION = {"videos": {"ucsd_ped2": ["Train014", "Train015", "Train016"]}, "span": [16, 40], "margin": 8}


def _merge(base: dict, over: Mapping) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = {**out[k], **v} if isinstance(out.get(k), dict) and isinstance(v, Mapping) else v
    return out


def score_variant(dataset, p: Mapping, key_kinds: Sequence[str]) -> dict:
    """Velocity-only validation metrics of one merged ``flow_nf`` params dict ``p`` (never the test
    split). Returns ``{"key_auc", "micro_auc", "per_kind", "regions_per_frame", "seconds"}``."""
    from vadlib.methods.flow_nf.pipeline import _configs, _flow_cache_dir, dataset_features, frame_max
    from vadlib.methods.flow_nf.density import make_density
    from vadlib.validation import validation_metrics
    from vadlib.validation.stage import held_out, key_auc, prepare_set, without_videos

    t0 = time.perf_counter()
    src = without_videos(dataset, held_out(p["validation"], dataset.name))
    vds = prepare_set(dataset, p["validation"])
    fcfg, rcfg = _configs(p, dataset.name)
    every = int(p["calib_every"])
    train = src.videos("train")
    calib = [v for i, v in enumerate(train) if i % every == every - 1] or train[-1:]   # as the stage
    fit = [v for v in train if v not in calib]
    args = (fcfg, rcfg, p["patch"], int(p["velocity"]["bins"]), float(p["naive_top"]), int(p["workers"]),
            p["velocity"].get("crop_size"))
    feats = dataset_features(train, _flow_cache_dir(p, dataset.name, fcfg), *args)
    vfeats = dataset_features(vds.videos("test"), _flow_cache_dir(p, vds.name, fcfg), *args)
    vel = np.concatenate([feats[v.name].velocity for v in fit])
    gmm = make_density("gmm", n_components=int(p["velocity"]["n_components"]), random_state=int(p["seed"])).fit(vel)
    cal = [-gmm.score_samples(feats[v.name].velocity) for v in calib if len(feats[v.name].frame)]
    if not cal:
        from vadlib.errors import DataError

        raise DataError(dataset.root, f"no regions in the calibration videos {[v.name for v in calib]}: lower "
                        "regions.diff_thresh or min_area")
    empty = float(np.concatenate(cal).min())
    scores = {n: frame_max(-gmm.score_samples(f.velocity) if len(f.frame) else np.zeros(0), f.frame, f.n_frames, empty)
              for n, f in vfeats.items()}
    m = validation_metrics(scores, vds, float(p["sigma"]) or None)
    n_reg = sum(len(f.frame) for f in feats.values()) + sum(len(f.frame) for f in vfeats.values())
    n_fr = sum(f.n_frames for f in feats.values()) + sum(f.n_frames for f in vfeats.values())
    return {"key_auc": key_auc(m, key_kinds), "micro_auc": m["micro_auc"], "per_kind": m["per_kind"],
            "regions_per_frame": n_reg / max(n_fr, 1), "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    from vadlib.data import get_dataset
    from vadlib.methods.flow_nf.pipeline import merge_params

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench velocity_variants", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="ucsd_ped2")
    ap.add_argument("--root", default="../shared/datasets/ucsd_ped2")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                    help="flow_nf overrides of one variant (repeat); the first is the reference")
    ap.add_argument("--base", default="{}", help="flow_nf overrides shared by every variant (JSON)")
    ap.add_argument("--key-kinds", nargs="*", default=["skip", "patch", "object"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default="data/flow")
    ap.add_argument("--out", type=Path, help="CSV of the table")
    ap.add_argument("--tiny", action="store_true", help="a seconds-long run on a generated 48×64 dataset (plumbing)")
    a = ap.parse_args(argv)
    variants = [v.split("=", 1) for v in (a.variant or ["base={}"])]
    validation = DEFAULT_VALIDATION
    if a.tiny:
        from vadlib.synthetic.flow import make_dataset

        ds = make_dataset(Path("velocity_variants_tiny"), "synth", size=(48, 64), n_train=5, n_test=1, n=16)
        validation = {"videos": {"synth": ["synth_tr0", "synth_tr1"]}, "span": [3, 4], "margin": 1}
        a.base = json.dumps({"regions": {"min_area": 4, "diff_thresh": 5}, **json.loads(a.base)})
        a.dataset = ds.name
    else:
        ds = get_dataset(a.dataset, root=a.root)
    base = _merge(merge_params({"dataset": a.dataset, "validation": validation}),
                  {"workers": a.workers, "cache": a.cache, **json.loads(a.base)})
    base["flow"]["ref_size"] = list(ds.videos("train")[0].open().size)
    rows = []
    for name, spec in variants:
        p = _merge(base, json.loads(spec))
        merge_params(p)   # checks types and unknown keys
        r = score_variant(ds, p, a.key_kinds)
        rows.append({"variant": name, "key_auc": r["key_auc"], "micro_auc": r["micro_auc"],
                     **{f"auc_{k}": v for k, v in r["per_kind"].items()},
                     "regions_per_frame": r["regions_per_frame"], "seconds": r["seconds"], "overrides": spec})
        print(f"{name:>24}: key AUC ({'/'.join(a.key_kinds)}) {100 * r['key_auc']:.2f}  micro {100 * r['micro_auc']:.2f}  "
              + "  ".join(f"{k} {100 * v:.1f}" for k, v in r["per_kind"].items())
              + f"  regions/frame {r['regions_per_frame']:.2f}  {r['seconds']:.0f} s", flush=True)
    if a.out:
        import pandas as pd

        from vadlib.io import atomic_path

        a.out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(a.out) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
