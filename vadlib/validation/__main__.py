"""``python -m vadlib.validation``: write a pseudo-anomaly validation set, or score one with a
training-free baseline.

    python -m vadlib.validation make --dataset ucsd_ped2 --root ../shared/datasets/ucsd_ped2 \\
        --videos Train014,Train015,Train016 --out data/validation/ucsd_ped2 --seed 0
    python -m vadlib.validation score data/validation/ucsd_ped2 --scorer naive_flow
    python -m vadlib.validation agree --run c06=PATH/metrics.json --run c12=... --dataset ucsd_ped2 --out t.csv
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
    a = sub.add_parser("agree", help="Spearman's rho between validation and test AUC of flow_nf runs")
    a.add_argument("--run", action="append", required=True, help="LABEL=metrics.json (repeat)")
    a.add_argument("--dataset", required=True)
    a.add_argument("--out", default=None, help="CSV of the points")
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
    if args.cmd == "agree":
        import pandas as pd

        from vadlib.io import atomic_path
        from vadlib.validation.agreement import agreement_rows, spearman

        runs = dict(r.split("=", 1) for r in args.run)
        rows = agreement_rows(runs, args.dataset)
        df = pd.DataFrame(rows)
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print((df.set_index(["run", "method"]).select_dtypes("number") * 100).round(1).drop(columns="sigma"))
        for key in ("val_micro_auc", "val_key_auc"):
            r = spearman(rows, key)
            print(f"Spearman rho({key}, test_micro_auc) = {r['rho']:.3f} (p = {r['p']:.3f}, n = {r['n']})")
        if args.out:
            with atomic_path(args.out) as tmp:
                df.to_csv(tmp, index=False)
            print(f"wrote {args.out}")
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
