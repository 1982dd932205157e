"""Demo generation speed and motion statistics: ``python -m vadlib.bench demo [--size tiny|small] [--seed 0]``.

Generates the demo benchmark (timed, in a temporary folder unless ``--root``) and prints frame
counts and per-class motion statistics (:func:`vadlib.data.demo.motion_stats`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from vadlib.data.demo import SCENES, load_demo, motion_stats
from vadlib.synthetic.demo import generate_demo


def bench_demo(root: str | Path | None = None, size: str = "small", seed: int = 0) -> dict:
    """Generate the demo (timed, in a temporary folder unless ``root``) and print frame counts and
    per-class motion statistics (:func:`motion_stats`)."""
    import tempfile
    import time

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(root) if root is not None else Path(tmp) / "demo"
        t0 = time.perf_counter()
        generate_demo(root, seed=seed, size=size, force=True)
        secs = time.perf_counter() - t0
        out: dict = {"seconds": secs}
        for sc in SCENES:
            ds = load_demo(root, sc)
            n = sum(v.num_frames for vs in ds.splits.values() for v in vs)
            n_anom = sum(int(v.frame_labels.sum()) for v in ds.videos("test"))
            stats = motion_stats(ds)
            out[sc] = {"frames": n, "anomalous_test_frames": n_anom, "motion": stats}
            print(f"scene {sc}: {n} frames, {n_anom} anomalous test frames")
            for k, st in sorted(stats.items()):
                print(f"  {k:10s} frame-diff {st['diff']:6.2f}  flow {st['flow']:5.2f} px/frame  ({st['frames']} frames)")
        print(f"generation ({size}, seed {seed}, both scenes): {secs:.1f} s")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run :func:`bench_demo`."""
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=None, help="keep the generated demo here (default: a temporary folder)")
    ap.add_argument("--size", default="small", choices=("tiny", "small"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    bench_demo(a.root, a.size, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
