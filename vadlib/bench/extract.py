"""Extraction benchmark: ``python -m vadlib.bench extract`` (or ``main(argv)``).

On the same generated video and the same model, in one run, it times

* (a) a naive loop: decode one frame, PIL + ``backbone.preprocess``, batch of 1;
* (b) the encoder alone on pre-decoded, pre-processed tensors at the extractor's batch size
  (the upper bound for any extractor);
* (c) the extractor end to end (:func:`vadlib.features.extract.extract_video`);

and prints frames/s for each, the ratios c/b and c/a, and the peak RSS of each measurement.

Precision (``--precisions fp32,bf16``, issue 15): (b) and (c) run once per precision, interleaved,
and (b) also runs each encoder *variant* of ``--variants`` (:mod:`vadlib.bench.encoder_variants`:
native MHA vs SDPA attention, ``torch.autocast``, channels_last, ``torch.compile``, threads, batch
size, oneDNN flags and fp32 math modes), every one printed with its ratio to fp32 and the
per-frame cosine of its features to fp32 ones, plus the bf16 / fp32 matmul GFLOP/s of this run
and the img/s ceiling they put on the tower. bf16 variants are skipped (and said so) on a CPU
without bf16 units.
Backbones (``--backbones``, issue 16): the extractor end to end on the same video with each backbone
— image models one row per frame, video models (X-CLIP, ActionCLIP) one row per clip of their frame
count — in fp32 and bf16 where the CPU has bf16 units; frames/s of video per backbone and precision,
and each one's ratio to the first backbone in fp32. ``xclip`` with ``random`` weights is the
``xclip-base-patch32`` architecture.
Then it extracts a generated 2,000-frame and a 20,000-frame video in two separate
subprocesses and prints their peak RSS (main process and DataLoader workers) and the ratio.
Random weights are fine here: they do not change the speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np


def make_video(path: Path, n_frames: int, height: int = 240, width: int = 320, seed: int = 0) -> Path:
    """An mp4 of ``n_frames`` frames: a moving gradient with a moving block and light noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    noise = rng.integers(0, 24, (8, height, width, 3), dtype=np.uint8)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    if not vw.isOpened():
        raise RuntimeError(f"cv2 cannot write {path}")
    for t in range(n_frames):
        base = ((xx + 3 * t) % 256).astype(np.uint8)
        img = np.stack([base, ((yy + t) % 256).astype(np.uint8), (255 - base)], -1)
        x0 = (5 * t) % max(width - 40, 1)
        img[height // 3:height // 3 + 40, x0:x0 + 40] = (200, 30, 30)
        vw.write(img + noise[t % 8])
    vw.release()
    return path


class RssPeak:
    """Samples this process's RSS (+ its children's) every ``interval`` s; ``.peak_mb`` after exit."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self.self_peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        total = self.proc.memory_info().rss
        for c in self.proc.children(recursive=True):
            try:
                total += c.memory_info().rss
            except Exception:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self.self_peak = max(self.self_peak, self.proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssPeak":
        self.peak = self._rss()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def _load(model: str, pretrained: str, precision: str = "fp32", device: str = "cpu"):
    import torch

    from vadlib.features.backbones import RandomWeightsWarning, load_backbone

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return load_backbone(model, pretrained, device=device, precision=precision)


DEFAULT_VARIANTS = "bf16-mha,bf16-autocast,bf16-channels_last,fp32-mha,fp32-mathbf16"


def _cosines(a, b) -> tuple[float, float]:
    import torch

    c = torch.nn.functional.cosine_similarity(a.float(), b.float(), dim=-1)
    return float(c.min()), float(c.mean())


def naive_loop(video: Path, bb, n: int) -> None:
    """(a) one frame at a time: decord frame → PIL → backbone.preprocess → encode (batch 1)."""
    from vadlib.data.video import import_decord

    decord = import_decord()
    import torch
    from PIL import Image

    vr = decord.VideoReader(str(video), ctx=decord.cpu(0), num_threads=1)
    with torch.no_grad():
        for i in range(n):
            img = Image.fromarray(vr[i].asnumpy())
            bb.model.encode_image(bb.preprocess(img).unsqueeze(0))


def encoder_only(x: "torch.Tensor", bb, batch_size: int) -> None:  # noqa: F821
    """(b) the encoder on ready tensors ``(N, 3, S, S)``, in batches."""
    import torch

    with torch.inference_mode():
        for s in range(0, len(x), batch_size):
            bb.model.encode_image(x[s:s + batch_size])


def _predecode(video: Path, bb, n: int):
    from vadlib.data.video import import_decord

    decord = import_decord()
    import torch

    from vadlib.features.extract import Preprocessor

    vr = decord.VideoReader(str(video), ctx=decord.cpu(0))
    pre = Preprocessor(bb.image_size, bb.mean, bb.std)
    parts = [pre(torch.from_numpy(vr.get_batch(list(range(s, min(s + 64, n)))).asnumpy())) for s in range(0, n, 64)]
    return torch.cat(parts)


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished children (DataLoader workers are joined at the end)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _timed(fn, *args) -> tuple[float, float, float]:
    """``(wall seconds, CPU seconds, peak RSS MB)`` of ``fn(*args)``."""
    with RssPeak() as mem:
        c0, t0 = _cpu_seconds(), time.perf_counter()
        fn(*args)
        dt, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    return dt, cpu, mem.peak_mb


def _mem_child(args: argparse.Namespace) -> int:
    """Run inside a fresh subprocess: extract one video, print peak RSS as JSON."""
    import torch

    from vadlib.data.base import Video
    from vadlib.features.extract import ExtractConfig, extract_video

    if args.threads:
        torch.set_num_threads(args.threads)
    bb = _load(args.mem_model, args.pretrained)
    cfg = ExtractConfig(sampling="frame", batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                        progress=False)
    # sampled RSS, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child started from a big
    # parent would report the parent's peak
    with RssPeak() as mem:
        t0 = time.perf_counter()
        feats, _ = extract_video(Video(name="mem", path=Path(args.mem_child), split="test"), bb, cfg)
        dt = time.perf_counter() - t0
    print(json.dumps({"rows": int(len(feats)), "seconds": dt, "main_mb": mem.self_peak / 2**20,
                      "total_mb": mem.peak_mb}))
    return 0


def backbone_speeds(video, n_frames: int, names: Sequence[str], pretrained: str, precisions: Sequence[str],
                    batch_size: int, workers: int, device: str, repeats: int = 1) -> dict[str, float]:
    """Frames/s of video through the extractor end to end for each backbone x precision (best of
    ``repeats``, interleaved). Prints one line each and the ratio to the first fp32 entry; a backbone
    or precision that cannot be built here is printed as skipped. Returns ``{"name precision": fps}``."""
    from vadlib.errors import ConfigError
    from vadlib.features.backbones.base import is_clip_backbone
    from vadlib.features.extract import ExtractConfig, extract_video

    loaded = {}
    for name in names:
        for prec in precisions:
            try:
                bb = _load(name, pretrained, prec, device)
            except ConfigError as exc:
                print(f"# backbone {name} {prec} skipped: {str(exc).splitlines()[0]}")
                continue
            clip = is_clip_backbone(bb)
            cfg = ExtractConfig(sampling="clip" if clip else "frame", batch_size=batch_size, num_workers=workers,
                                device=device, progress=False)
            extract_video(video, bb, cfg)   # warm-up
            loaded[f"{name} {prec}"] = (bb, cfg, clip)
    runs: dict[str, list] = {k: [] for k in loaded}
    for _ in range(max(repeats, 1)):
        for k, (bb, cfg, _) in loaded.items():
            runs[k].append(_timed(extract_video, video, bb, cfg))
    fps = {k: n_frames / min(r[0] for r in rs) for k, rs in runs.items()}
    first = next((k for k in fps if k.endswith(" fp32")), None)
    for k, (bb, cfg, clip) in loaded.items():
        what = f"clips of {bb.clip_len}, {bb.text_path}" if clip else "frames, text tower"
        print(f"(d) backbone {k:<28s} {fps[k]:8.2f} frames/s of video  ({what}; "
              f"{'random' if not bb.real_weights else 'real'} weights)"
              + (f"   / {first} = {fps[k] / fps[first]:.3f}" if first and k != first else ""))
    return fps


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench extract", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ViT-B-32", help="ViT-B-16, ViT-B-32, vadlib-tiny, … (open_clip name)")
    ap.add_argument("--pretrained", default="random")
    ap.add_argument("--frames", type=int, default=300, help="frames of the timed video")
    ap.add_argument("--height", type=int, default=240)
    ap.add_argument("--width", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1, help="extractor DataLoader workers")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the main process (default: torch's)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="interleaved repeats of (b, c, a); the best wall time of each is reported")
    ap.add_argument("--precisions", default="fp32,bf16",
                    help="precisions of (b) and (c), as load_backbone(precision=...) applies them")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help="more encoder variants of (b) (vadlib.bench.encoder_variants: fp32-mha, fp32-mathbf16, "
                         "fp32-medium, bf16-mha, bf16-autocast, bf16-channels_last, bf16-compile (compiles for "
                         "minutes on 2 cores), bf16-threads1, bf16-nomkldnn, bf16-bN = batch size N)")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: naive,encoder,extractor,backbones,memory,ceiling")
    ap.add_argument("--backbones", default="ViT-B-32,ViT-B-16,xclip,actionclip/ViT-B-16",
                    help="backbones of the per-backbone speed part (each with --pretrained; video backbones "
                         "encode clips of their own length)")
    ap.add_argument("--mem-frames", default="2000,20000", help="frame counts of the memory comparison")
    ap.add_argument("--mem-model", default="vadlib-tiny",
                    help="model of the memory comparison (20,000 frames through ViT-B would take long on CPU)")
    ap.add_argument("--mem-size", default="120x160", help="HxW of the memory-comparison videos")
    ap.add_argument("--mem-child", default=None, help=argparse.SUPPRESS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (see the module docstring); prints the figures."""
    args = _parser().parse_args(argv)
    if args.mem_child:
        return _mem_child(args)
    import torch

    from vadlib.data.base import Video
    from vadlib.features.extract import ExtractConfig, extract_video

    if args.threads:
        torch.set_num_threads(args.threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    tmp = Path(tempfile.mkdtemp(prefix="vadlib-bench-"))
    n = int(args.frames)
    print(f"# extraction benchmark: model {args.model}/{args.pretrained}, {n} frames {args.height}x{args.width}, "
          f"batch {args.batch_size}, workers {args.workers}, device {args.device}, "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}")
    video = make_video(tmp / "bench.mp4", n, args.height, args.width)
    bb = _load(args.model, args.pretrained, "fp32", args.device)
    precs = [p.strip() for p in args.precisions.split(",") if p.strip()]
    bbs = {"fp32": bb}
    for p in precs:
        if p == "fp32":
            continue
        from vadlib.errors import ConfigError

        try:
            bbs[p] = _load(args.model, args.pretrained, p, args.device)
            print(f"# {p}: {bbs[p].precision_reason}")
        except ConfigError as exc:
            print(f"# {p} skipped: {exc}")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "bf16" not in bbs:
        variants = [v for v in variants if not v.startswith("bf16") and "bf16" not in v]
    cfg = ExtractConfig(sampling="frame", batch_size=args.batch_size, num_workers=args.workers, device=args.device,
                        progress=False)
    with torch.inference_mode():  # warm-up: allocator, kernels
        for b in bbs.values():
            b.encode_images(torch.zeros(min(args.batch_size, 8), 3, bb.image_size, bb.image_size))
    x = _predecode(video, bb, n) if "encoder" not in skip and args.device == "cpu" else None
    v = Video(name="bench", path=video, split="test")
    enc = {}
    if x is not None:
        from vadlib.bench.encoder_variants import VariantContext, build_variant

        ctx = VariantContext(bb32=bb, bf16=bbs.get("bf16"), batch_size=args.batch_size,
                             new_bf16=lambda: _load(args.model, args.pretrained, "bf16", args.device))
        for name in list(bbs) + [vn for vn in variants if vn not in bbs]:
            t0 = time.perf_counter()
            try:
                enc[name] = build_variant(name, ctx)
                enc[name](x[:args.batch_size])  # warm-up (compiles under torch.compile)
            except Exception as exc:  # a variant this torch / CPU cannot run is reported, not fatal
                enc.pop(name, None)
                print(f"# variant {name} failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            print(f"# variant {name}: set up + warm-up {time.perf_counter() - t0:.1f} s")
    keys = [f"b:{k}" for k in enc] + ([f"c:{p}" for p in bbs] if "extractor" not in skip else []) \
        + (["a"] if "naive" not in skip and args.device == "cpu" else [])
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in keys}
    feats: dict[str, "torch.Tensor"] = {}
    for _ in range(max(int(args.repeats), 1)):  # interleaved, so a load change on a shared machine hits all
        for k in keys:
            kind, _, name = k.partition(":")
            if kind == "b":
                box = {}
                runs[k].append(_timed(lambda: box.setdefault("f", enc[name](x))))
                feats.setdefault(name, box["f"])
            elif kind == "c":
                runs[k].append(_timed(extract_video, v, bbs[name], cfg))
            else:
                runs[k].append(_timed(naive_loop, video, bb, n))
    has_x = x is not None
    del x
    labels = {"a": "(a) naive loop, PIL + preprocess, batch 1, fp32",
              **{f"b:{k}": f"(b) encoder alone on ready tensors, {k}" for k in enc},
              **{f"c:{p}": f"(c) extractor end to end, {p}" for p in bbs}}
    fps, cpu_fps = {}, {}
    for k in keys:
        if runs[k]:
            dt, cpu, mb = min(runs[k])
            fps[k], cpu_fps[k] = n / dt, n / max(min(r[1] for r in runs[k]), 1e-9)
            print(f"{labels[k]:<58s} {fps[k]:8.2f} frames/s  (best of {len(runs[k])}: {dt:7.2f} s wall; "
                  f"{1000 * cpu / n:6.1f} ms CPU/frame)  peak RSS {max(r[2] for r in runs[k]):6.0f} MB")
    for k in keys:
        if k.startswith("b:") and k != "b:fp32" and "b:fp32" in fps:
            print(f"encoder {k[2:]:<20s} / fp32 = {fps[k] / fps['b:fp32']:.3f}   "
                  f"(by CPU time: {cpu_fps[k] / cpu_fps['b:fp32']:.3f})")
    for p in bbs:
        if p != "fp32" and f"c:{p}" in fps and "c:fp32" in fps:
            print(f"extractor {p} / fp32 = {fps[f'c:{p}'] / fps['c:fp32']:.3f}")
        for num, den in ((f"c:{p}", f"b:{p}"), (f"c:{p}", "a")):
            if num in fps and den in fps:
                print(f"{num}/{den} = {fps[num] / fps[den]:.3f}   (by CPU time: {cpu_fps[num] / cpu_fps[den]:.3f})")
    for name, f in feats.items():
        if name != "fp32" and "fp32" in feats:
            lo, mean = _cosines(f, feats["fp32"])
            print(f"cosine of {name} features to fp32, per frame: min {lo:.6f}, mean {mean:.6f}")
    if has_x and "ceiling" not in skip:
        from vadlib.bench.encoder_variants import matmul_gflops, tower_gflop

        gf = {dt: max(matmul_gflops(dt) for _ in range(2)) for dt in ("fp32", "bf16")}
        per_img = tower_gflop(bb.model.visual, bb.image_size)
        print(f"matmul 2048² in this run: fp32 {gf['fp32']:.0f} GFLOP/s, bf16 {gf['bf16']:.0f} GFLOP/s "
              f"(ratio {gf['bf16'] / gf['fp32']:.2f}); the tower's matmuls cost {per_img:.1f} GFLOP per image → "
              f"ceiling fp32 {gf['fp32'] / per_img:.2f} img/s, bf16 {gf['bf16'] / per_img:.2f} img/s")
    if "backbones" not in skip:
        backbone_speeds(v, n, [b.strip() for b in args.backbones.split(",") if b.strip()], args.pretrained,
                        precs, args.batch_size, args.workers, args.device, int(args.repeats))
    print(f"load average during the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus")
    if "memory" not in skip:
        h, w = (int(s) for s in args.mem_size.lower().split("x"))
        peaks = {}
        for m in (int(s) for s in args.mem_frames.split(",")):
            path = make_video(tmp / f"mem{m}.mp4", m, h, w, seed=1)
            cmd = [sys.executable, "-m", "vadlib.bench.extract", "--mem-child", str(path), "--mem-model", args.mem_model,
                   "--pretrained", args.pretrained, "--batch-size", str(args.batch_size), "--workers",
                   str(args.workers), "--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
            out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if out.returncode != 0:
                print(f"memory run of {m} frames failed:\n{out.stderr[-2000:]}")
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            peaks[m] = r["total_mb"]
            print(f"peak RSS extracting a {m}-frame {h}x{w} video ({args.mem_model}): main process {r['main_mb']:.0f} MB, "
                  f"main + workers {r['total_mb']:.0f} MB  ({r['rows']} rows, {r['seconds']:.1f} s, "
                  f"{r['rows'] / r['seconds']:.0f} frames/s)")
            path.unlink()
        ms = sorted(peaks)
        if len(ms) >= 2:
            print(f"peak RSS ratio {ms[-1]} / {ms[0]} frames = {peaks[ms[-1]] / peaks[ms[0]]:.3f} "
                  "(sampled every 20 ms; workers' RSS counts pages shared with the main process twice)")
    video.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
