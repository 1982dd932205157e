"""Benchmarks of vadlib.metrics on benchmark-sized synthetic inputs (prints figures).

``python -m vadlib.bench metrics [--frames 1000000] [--videos 290] [--pixel-videos 2] [--pixel-frames 180]
[--size 240x360]`` (or :func:`bench_metrics` with the same figures as keywords).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np


def _synthetic_pixels(n_videos: int, t: int, h: int, w: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    masks, maps = {}, {}
    yy, xx = np.mgrid[0:h, 0:w]
    for v in range(n_videos):
        m = np.zeros((t, h, w), np.uint8)
        cy, cx = rng.integers(20, h - 20), rng.integers(20, w - 20)
        for f in range(t):
            if f >= t // 3:  # anomaly in the last two thirds, a moving blob
                m[f] = ((yy - cy) ** 2 + (xx - cx - f // 4) ** 2 < 15**2) * 255
        masks[f"v{v:02d}"] = m
        maps[f"v{v:02d}"] = (rng.random((t, h, w), dtype=np.float32) + 0.8 * (m > 0)).astype(np.float32)
    return masks, maps


def _timed(fn, *a, **k):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn(*a, **k)
    dt = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, dt, peak / 2**20


def bench_metrics(n_frames: int = 1_000_000, n_videos: int = 290, pixel_videos: int = 2, pixel_t: int = 180,
                  h: int = 240, w: int = 360) -> dict:
    """Time and peak extra memory (tracemalloc) of frame metrics at UCF-Crime scale and of pixel
    AUROC / AUPRO (streaming paths) on Ped2-sized frames (240x360). Prints one line per metric."""
    from vadlib.metrics import aupro, evaluate_frames, pixel_auroc

    rng = np.random.default_rng(0)
    sizes = rng.multinomial(n_frames - n_videos, np.ones(n_videos) / n_videos) + 1
    scores = {f"v{i}": rng.random(s) for i, s in enumerate(sizes)}
    labels = {f"v{i}": (rng.random(s) > 0.9).astype(np.int8) for i, s in enumerate(sizes)}
    res = {}
    r, dt, mb = _timed(evaluate_frames, scores, labels, sigma=3)
    res["evaluate_frames"] = (dt, mb)
    print(f"evaluate_frames sigma=3: {n_frames} frames / {n_videos} videos: {dt:.2f} s, peak {mb:.0f} MiB "
          f"(micro AUC {r['micro_auc']:.4f})")
    masks, maps = _synthetic_pixels(pixel_videos, pixel_t, h, w)
    npx = pixel_videos * pixel_t * h * w
    d, dt, mb = _timed(pixel_auroc, masks, maps, return_details=True)
    res["pixel_auroc"] = (dt, mb)
    print(f"pixel_auroc: {npx / 1e6:.1f} M pixels ({pixel_videos}x{pixel_t} frames {h}x{w}): {dt:.2f} s, "
          f"peak {mb:.0f} MiB, method {d['method']}, error bound {d['error_bound']:.1e}")
    d, dt, mb = _timed(aupro, masks, maps, return_details=True)
    res["aupro"] = (dt, mb)
    print(f"aupro: {npx / 1e6:.1f} M pixels: {dt:.2f} s, peak {mb:.0f} MiB, method {d['method']}, "
          f"value {d['aupro']:.4f}")
    print(f"  per frame: pixel_auroc {1e3 * res['pixel_auroc'][0] / (pixel_videos * pixel_t):.1f} ms, "
          f"aupro {1e3 * res['aupro'][0] / (pixel_videos * pixel_t):.1f} ms")
    return res


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run :func:`bench_metrics` (the dispatcher's entry point)."""
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench metrics", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=1_000_000, help="frames of the frame-metric input")
    ap.add_argument("--videos", type=int, default=290, help="videos the frames are split into")
    ap.add_argument("--pixel-videos", type=int, default=2)
    ap.add_argument("--pixel-frames", type=int, default=180, help="frames per pixel-metric video")
    ap.add_argument("--size", default="240x360", help="HxW of the pixel-metric frames")
    a = ap.parse_args(argv)
    h, w = (int(s) for s in a.size.lower().split("x"))
    bench_metrics(n_frames=a.frames, n_videos=a.videos, pixel_videos=a.pixel_videos, pixel_t=a.pixel_frames, h=h, w=w)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
