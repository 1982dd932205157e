"""``python -m vadlib.bench flow [--root DIR] [--videos N] [--workers W] [--methods dis,farneback]``

Prints optical-flow extraction speed (frames/s) per method into a temporary cache: on the
UCSD Ped2 training videos when ``--root`` points at it, else on synthetic 240×360 videos.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from vadlib.flow.optical import FlowConfig, compute_dataset_flow

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench flow", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="UCSD Ped2 root (default: synthetic videos)")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", default="dis:medium,dis:fast,farneback")
    ap.add_argument("--frames", type=int, default=60, help="frames per synthetic video")
    ap.add_argument("--size", default="240x360", help="HxW of the synthetic videos")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.root:
            from vadlib.data import get_dataset

            videos = get_dataset("ucsd_ped2", root=args.root).videos("train")[: args.videos]
            where = f"UCSD Ped2 ({args.root}), {len(videos)} training videos"
        else:
            from vadlib.synthetic.flow import make_dataset

            h, w = (int(s) for s in args.size.lower().split("x"))
            videos = make_dataset(Path(tmp), "bench", size=(h, w), n_train=args.videos, n_test=0, n=args.frames,
                                  sq=max(4, min(40, h // 6))).videos("train")
            where = f"synthetic {h}×{w}, {len(videos)} videos of {args.frames} frames"
        print(f"optical-flow benchmark on {where}, {args.workers} worker process(es)")
        for spec in args.methods.split(","):
            method, _, preset = spec.partition(":")
            cfg = FlowConfig(method=method, preset=preset or "medium")
            st = compute_dataset_flow(videos, Path(tmp) / spec.replace(":", "-"), cfg, workers=args.workers,
                                      progress=False).stats
            print(f"  {spec:12s} {st['frames_per_s']:8.1f} frames/s  ({st['frames']} frames, {st['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
