"""``python -m vadlib.bench flow [--root DIR] [--videos N] [--workers W] [--methods dis,farneback]``

Prints optical-flow extraction speed (frames/s) per method into a temporary cache: on the
UCSD Ped2 training videos when ``--root`` points at it, else on synthetic 240×360 videos.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def bench_flow(argv: list[str] | None = None) -> int:
    from vadlib.flow.optical import FlowConfig, compute_dataset_flow

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench flow", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="UCSD Ped2 root (default: synthetic videos)")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", default="dis:medium,dis:fast,farneback")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.root:
            from vadlib.data import get_dataset

            videos = get_dataset("ucsd_ped2", root=args.root).videos("train")[: args.videos]
            where = f"UCSD Ped2 ({args.root}), {len(videos)} training videos"
        else:
            from vadlib.flow.synthetic import make_dataset

            videos = make_dataset(Path(tmp), "bench", size=(240, 360), n_train=args.videos, n_test=0, n=60,
                                  sq=40).videos("train")
            where = f"synthetic 240×360, {len(videos)} videos of 60 frames"
        print(f"optical-flow benchmark on {where}, {args.workers} worker process(es)")
        for spec in args.methods.split(","):
            method, _, preset = spec.partition(":")
            cfg = FlowConfig(method=method, preset=preset or "medium")
            st = compute_dataset_flow(videos, Path(tmp) / spec.replace(":", "-"), cfg, workers=args.workers,
                                      progress=False).stats
            print(f"  {spec:12s} {st['frames_per_s']:8.1f} frames/s  ({st['frames']} frames, {st['seconds']:.1f} s)")
    return 0
