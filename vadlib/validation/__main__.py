"""``python -m vadlib.validation``: write a pseudo-anomaly validation set, or score one with a
training-free baseline.

    python -m vadlib.validation make --dataset ucsd_ped2 --root ../shared/datasets/ucsd_ped2 \\
        --videos Train014,Train015,Train016 --out data/validation/ucsd_ped2 --seed 0
    python -m vadlib.validation score data/validation/ucsd_ped2 --scorer naive_flow
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Sequence

from vadlib.validation.kinds import DEFAULT_MARGIN, DEFAULT_SPAN, KINDS


def _pair(text: str) -> tuple[int, int]:
    a, b = text.split(",")
    return int(a), int(b)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vadlib.validation", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write a validation set from training videos")
    m.add_argument("--dataset", required=True, help="registered dataset name (e.g. ucsd_ped2)")
    m.add_argument("--root", default=None, help="the dataset's root")
    m.add_argument("--videos", required=True, help="comma-separated TRAINING video names (held out of training)")
    m.add_argument("--out", required=True)
    m.add_argument("--kinds", default=",".join(KINDS.names()))
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--span", type=_pair, default=DEFAULT_SPAN, help="min,max span length in frames")
    m.add_argument("--margin", type=int, default=DEFAULT_MARGIN)
    m.add_argument("--force", action="store_true")
    s = sub.add_parser("score", help="validation AUC of a training-free baseline on a written set")
    s.add_argument("root")
    s.add_argument("--scorer", default="naive_flow")
    s.add_argument("--sigma", type=float, default=0.0)
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    if args.cmd == "make":
        from vadlib.data import get_dataset
        from vadlib.validation.generate import make_validation_set

        ds = get_dataset(args.dataset, args.root)
        out = make_validation_set(ds, args.videos.split(","), args.out, args.kinds.split(","), args.seed,
                                  span=args.span, margin=args.margin, force=args.force)
        index = json.loads((out / "index.json").read_text())
        for r in index["videos"]:
            print(f"{r['name']:24s} {r['n_frames']:4d} frames, {r['n_anomalous']:3d} anomalous")
        print(f"validation set at {out} ({time.perf_counter() - t0:.1f} s)")
        return 0
    from vadlib.validation.baselines import score_videos
    from vadlib.data.pseudo_anomalies import load_validation_set
    from vadlib.validation.score import validation_metrics

    ds = load_validation_set(args.root)
    scores = score_videos(ds.videos("test"), args.scorer)
    r = validation_metrics(scores, ds, sigma=args.sigma)
    fmt = lambda x: "nan" if math.isnan(x) else f"{100 * x:.1f}"  # noqa: E731
    print(f"{args.scorer} on {ds.name} (seed {r['set']['seed']}, videos {','.join(r['set']['videos'])}, "
          f"sigma {r['sigma']:g}): micro AUC {fmt(r['micro_auc'])}, macro AUC {fmt(r['macro_auc'])}, "
          f"{r['n_anomalous']}/{r['n_frames']} anomalous frames")
    for k, v in r["per_kind"].items():
        print(f"  {k:8s} {fmt(v)}")
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
