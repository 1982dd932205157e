"""``vadlib detect`` speed, fp32 vs bf16, and where its time goes: ``python -m vadlib.bench detect``.

On a generated ``--frames``-frame ``HxW`` 25 fps video (default 500 frames 320×240, the issue's
check) with the zero-shot method at 1 frame in ``--every`` (8), per precision, alternating:

* the whole command (``vadlib detect … --threshold 0.5``, by default without the annotated MP4;
  ``--video`` renders it too): wall time and its real-time factor (video seconds / wall seconds);
* the real-time factor ``vadlib detect`` itself reports (scoring only: decode → encode → scores);
* a breakdown: backbone load, prompt encoding, decode + preprocess of the sampled frames alone,
  the encoder alone on those tensors, and the rest of the command (scoring, outputs).

Random weights are fine: they do not change the speed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path


def _breakdown(video: Path, model: str, precision: str, every: int, batch_size: int) -> dict[str, float]:
    import torch

    from vadlib.data import Video
    from vadlib.features import load_backbone
    from vadlib.features.extract import ExtractConfig, _loader, preprocessor_for

    out = {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bb = load_backbone(model, "random", precision=precision)
    out["load backbone"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    bb.encode_text(["a photo of a person falling", "a photo of an ordinary scene with people walking"])
    out["encode prompts"] = time.perf_counter() - t0
    cfg = ExtractConfig(sampling="every", stride=every, batch_size=batch_size, progress=False)
    v = Video(name=video.stem, path=video, split="test")
    t0 = time.perf_counter()
    xs = [item["x"] for item in _loader([v], cfg, preprocessor_for(bb, cfg))]
    out["decode + preprocess"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode():
        for x in xs:
            bb.encode_images(x)
    out["encoder"] = time.perf_counter() - t0
    out["frames encoded"] = float(sum(len(x) for x in xs))
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the detect timings (see the module docstring)."""
    import torch

    from vadlib.bench.anomalyclip import usable_precisions
    from vadlib.bench.extract import make_video
    from vadlib.detect import main as detect_main

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench detect", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ViT-B-16")
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--size", default="240x320", help="HxW")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--repeats", type=int, default=1, help="alternating repeats per precision (best reported)")
    ap.add_argument("--video", action="store_true", help="also render the annotated MP4 (detect's default)")
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    precs = usable_precisions(a.precisions)
    h, w = (int(s) for s in a.size.lower().split("x"))
    seconds = a.frames / 25.0
    with tempfile.TemporaryDirectory() as tmp:
        video = make_video(Path(tmp) / "clip.mp4", a.frames, h, w)
        print(f"# vadlib detect on a {a.frames}-frame {w}x{h} 25 fps video ({seconds:.0f} s), zeroshot, 1 frame in "
              f"{a.every}, {a.model}/random, batch {a.batch_size}, torch threads {torch.get_num_threads()}"
              f"{', with the annotated MP4' if a.video else ', --no-video'}")
        cmd: dict[str, list[float]] = {p: [] for p in precs}
        own: dict[str, list[float]] = {p: [] for p in precs}
        parts: dict[str, list[dict]] = {p: [] for p in precs}
        for i in range(max(1, a.repeats)):
            for p in precs:
                out = Path(tmp) / f"out_{p}_{i}"
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rc = detect_main([str(video), "--backbone", a.model, "--pretrained", "random", "--prompt",
                                      "a person falling", "--threshold", "0.5", "--every", str(a.every),
                                      "--batch-size", str(a.batch_size), "--precision", p, "--out", str(out)]
                                     + ([] if a.video else ["--no-video"]))
                cmd[p].append(time.perf_counter() - t0)
                if rc != 0:
                    print(f"vadlib detect failed (exit {rc})")
                    return 1
                own[p].append(json.loads((out / "clip" / "events.json").read_text())["realtime_factor"])
                parts[p].append(_breakdown(video, a.model, p, a.every, a.batch_size))
        for p in precs:
            best = min(cmd[p])
            print(f"[{p}] whole command {best:6.1f} s = {seconds / best:.2f}x real time; detect's own figure "
                  f"(decode → encode → scores) {max(own[p]):.2f}x real time (best of {len(cmd[p])})")
            b = {k: min(r[k] for r in parts[p]) for k in parts[p][0]}
            rest = best - b["load backbone"] - b["encode prompts"] - b["decode + preprocess"] - b["encoder"]
            print(f"[{p}]   breakdown: " + ", ".join(f"{k} {b[k]:.1f} s" for k in
                                                    ("load backbone", "encode prompts", "decode + preprocess", "encoder"))
                  + f" ({b['frames encoded']:.0f} frames, {b['frames encoded'] / b['encoder']:.2f} img/s), "
                  f"rest of the command {rest:.1f} s; encoder alone = {seconds / b['encoder']:.2f}x real time")
        if "fp32" in cmd and "bf16" in cmd:
            print(f"bf16 / fp32: whole command {min(cmd['fp32']) / min(cmd['bf16']):.2f}x faster, detect's own "
                  f"real-time factor {max(own['bf16']) / max(own['fp32']):.2f}x (one run, alternating)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
