"""The ``vadlib detect`` command line: argument parsing, thresholds (given, calibrated on normal
footage, or saved beside a checkpoint) and the run over the input videos."""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

from vadlib.defaults import DEFAULT_FPS
from vadlib.detect.fusion import FusionMethod
from vadlib.detect.methods import (METHODS, DetectMethod, check_features, checkpoint_features, resolve_checkpoint,
                                   score_video)
from vadlib.detect.render import write_outputs
from vadlib.errors import ConfigError, DataError, cli_errors
from vadlib.events import Threshold, calibrate_threshold, describe_run, find_events

DESCRIPTION = "``vadlib detect``: your own video in, an explained anomaly timeline out."


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vadlib detect", description=DESCRIPTION)
    ap.add_argument("videos", nargs="+", help="video files or frames folders")
    ap.add_argument("--method", default="zeroshot",
                    help=f"one of: {', '.join(METHODS.names())}; or a fusion joined by '+' (e.g. zeroshot+flow_nf), "
                         "whose scores are min-max normalised on the --calibrate footage")
    ap.add_argument("--weights", type=float, nargs="+", help="fusion weights, one per method (default equal)")
    ap.add_argument("--checkpoint", action="append", default=[],
                    help="a model produced by a pipeline stage: a path, train_mil@DATASET, transfer@SOURCE or flow_nf "
                         "(repeat, in --method order, for a fusion of several checkpoint methods)")
    ap.add_argument("--reports", default="reports", help="where stage outputs live (for stage-name checkpoints)")
    ap.add_argument("--prompt", action="append", default=[], help="an anomaly description (repeat)")
    ap.add_argument("--normal-prompt", action="append", default=[], help="a normal-scene description (repeat)")
    ap.add_argument("--prompt-file", help="text file, one anomaly description per line")
    ap.add_argument("--prompts-from", help="a dataset's prompt list in params.yaml (zeroshot.prompts.<name>)")
    ap.add_argument("--score", default=None,
                    help="zeroshot: softmax (default) | max_cos; transfer: calibrated (default) | max_cos; "
                         "flow_nf: fusion (default) | flow_nf | velocity")
    ap.add_argument("--backbone", default=None, help="open_clip model (default ViT-B-16, or the checkpoint's)")
    ap.add_argument("--pretrained", default=None,
                    help="tag, local checkpoint, or 'random' (plumbing only); default openai, or the checkpoint's")
    ap.add_argument("--every", type=int, default=None, help="encode every n-th frame (default 8, or the checkpoint's)")
    ap.add_argument("--clip-len", type=int, default=None,
                    help="video backbones: frames per clip (default: the method checkpoint's, else the backbone "
                         "file's; an ActionCLIP file that does not record it needs its model-zoo n-frame: 8, 16, 32)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="CLIP image encoder precision: auto = bf16 on CPUs with AMX / AVX-512-BF16, fp16 on CUDA, "
                         "else fp32 (vadlib.features.precision)")
    ap.add_argument("--flow-cache", default=None,
                    help="optical-flow cache of --method flow_nf (default $XDG_CACHE_HOME/vadlib/flow or ~/.cache/vadlib/flow)")
    ap.add_argument("--sigma", type=float, default=0.0, help="Gaussian smoothing of scores (frames)")
    th = ap.add_mutually_exclusive_group()
    th.add_argument("--threshold", type=float, help="a given threshold")
    th.add_argument("--threshold-file", help="a threshold.json saved by an earlier calibration (a fusion's holds its "
                                             "normalisation too)")
    th.add_argument("--calibrate", nargs="+", metavar="NORMAL",
                    help="normal reference videos/folders (never the scored video): the threshold is the score "
                         "exceeded on --false-alarm-rate of their frames; a fusion's per-method min/max come from "
                         "them too. Saved to OUT/threshold.json and beside each checkpoint "
                         "(<checkpoint>.threshold.json), reused when no threshold option is given")
    ap.add_argument("--false-alarm-rate", type=float, default=0.01, help="for --calibrate")
    ap.add_argument("--min-event", type=int, default=3, help="shortest event (frames)")
    ap.add_argument("--merge-gap", type=int, default=8, help="merge events closer than this (frames)")
    ap.add_argument("--out", required=True, help="output folder (one sub-folder per video)")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--no-video", action="store_true", help="skip the annotated MP4")
    ap.add_argument("--heatmap", action=argparse.BooleanOptionalAction, default=False,
                    help="zeroshot, transfer: overlay the DPAM patch-level heat map of the prompt that fired in the "
                         "MP4, held between encoded frames (one more encoder pass over the sampled frames: ≈ 0.7x "
                         "instead of 1.5x real time for ViT-B-16 on 2 CPU cores; off by default; ignored with "
                         "--no-video)")
    ap.add_argument("--heatmap-prompts", default=None, metavar="EPOCH_PTH",
                    help="with --heatmap: draw the map with the learned prompts of a Zhou et al. checkpoint "
                         "(zqhang/AnomalyCLIP checkpoints/*/epoch_*.pth; needs --backbone ViT-L-14-336 --pretrained openai)")
    ap.add_argument("--params", default="params.yaml")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return cli_errors(_run)(args)


def build_methods(args) -> tuple[DetectMethod, dict, list[Path]]:
    """The method (or fusion) of ``args``, the run's metadata and the checkpoints it uses."""
    from vadlib.features import load_backbone
    from vadlib.features.backbones.base import is_clip_backbone, text_path_of
    from vadlib.features.extract import ExtractConfig

    names = [n.strip() for n in args.method.split("+") if n.strip()]
    factories = [METHODS.get(n) for n in names]          # unknown names raise, listing the known ones
    need_ckpt = [n for n, f in zip(names, factories) if f.needs_checkpoint]
    if len(args.checkpoint) != len(need_ckpt):
        raise ConfigError(f"--method {args.method} needs {len(need_ckpt)} --checkpoint (one per method of "
                          f"{', '.join(need_ckpt) or 'none'}), got {len(args.checkpoint)}")
    ckpts = dict(zip(need_ckpt, [resolve_checkpoint(c, args.reports) for c in args.checkpoint]))
    if "anomalyclip" in ckpts:       # a reference (lucazanella/AnomalyCLIP) last.ckpt: imported once, beside it
        from vadlib.compat.zanella import as_vadlib_checkpoint

        ckpts["anomalyclip"] = as_vadlib_checkpoint(ckpts["anomalyclip"])
    # the feature spec: from the CLIP checkpoint when there is one, else the options / defaults
    requested = {"backbone": args.backbone, "pretrained": args.pretrained, "stride": args.every}
    spec = {"backbone": args.backbone or "ViT-B-16", "pretrained": args.pretrained or "openai",
            "stride": args.every or 8, "clip_len": getattr(args, "clip_len", None)}
    for n in (n for n, f in zip(names, factories) if f.needs_checkpoint and f.needs_backbone):
        saved = checkpoint_features(ckpts[n], n)
        if saved.get("sampling") == "clip" and "stride" in requested:   # --every is a clip checkpoint's clip_stride
            requested = {**{k: v for k, v in requested.items() if k != "stride"}, "clip_stride": requested["stride"]}
        saved = check_features(ckpts[n], saved, requested)
        if getattr(args, "clip_len", None) and saved.get("clip_len") and int(args.clip_len) != int(saved["clip_len"]):
            raise ConfigError(f"--clip-len {args.clip_len}, but checkpoint {ckpts[n]} was trained on "
                              f"{saved['clip_len']}-frame clips: drop --clip-len (the checkpoint's is used)")
        # every CLIP checkpoint of a fusion must agree with the first one
        requested = {"backbone": saved.get("backbone"), "pretrained": saved.get("pretrained"),
                     "stride": saved.get("stride") if saved.get("sampling") == "every" else 1}
        if saved.get("sampling") == "clip":
            requested = {"backbone": saved.get("backbone"), "pretrained": saved.get("pretrained"),
                         "clip_len": saved.get("clip_len"), "clip_stride": saved.get("clip_stride")}
        spec = {"backbone": saved.get("backbone", spec["backbone"]), "pretrained": saved.get("pretrained", spec["pretrained"]),
                "stride": int(saved.get("stride") or 1) if saved.get("sampling") == "every" else 1,
                "clip_len": saved.get("clip_len"), "clip_stride": saved.get("clip_stride")}
    cfg = ExtractConfig(sampling="every", stride=int(spec["stride"]), batch_size=args.batch_size, device=args.device)
    bb = None
    if any(f.needs_backbone for f in factories):
        bb = load_backbone(spec["backbone"], spec["pretrained"], device=args.device,
                           precision=getattr(args, "precision", "auto"), clip_len=spec.get("clip_len"))
        if is_clip_backbone(bb):   # a video backbone: its clips, one starting every --every frames (or the checkpoint's)
            if args.heatmap and not args.no_video:
                raise ConfigError(f"--heatmap draws CLIP patch maps of single frames; backbone {bb.name} encodes "
                                  "clips: drop --heatmap")
            cfg = ExtractConfig(sampling="clip", clip_len=spec.get("clip_len"),
                                clip_stride=spec.get("clip_stride") or args.every, batch_size=args.batch_size,
                                device=args.device).for_backbone(bb)
    parts: list[DetectMethod] = [f.from_args(n, args, bb if f.needs_backbone else None, cfg, ckpts.get(n))
                                 for n, f in zip(names, factories)]
    prompted = [m for m in parts if m.prompts is not None]
    prompts = list(prompted[-1].prompts) if prompted else []
    normal_prompts = prompted[-1].normal_prompts if prompted else None
    for m in parts:
        if hasattr(m, "heatmap"):
            m.heatmap = bool(args.heatmap and not args.no_video)
            m.heat_prompts = getattr(args, "heatmap_prompts", None)
    method = parts[0] if len(parts) == 1 else FusionMethod(parts, args.weights)
    if len(parts) == 1 and args.weights:
        raise ConfigError("--weights is for fusions (--method a+b)")
    meta = {"method": method.name, "score": getattr(method, "score", None),
            "checkpoint": [str(c) for c in ckpts.values()] or None,
            "backbone": bb.name if bb else None, "pretrained": bb.pretrained if bb else None,
            "real_weights": bool(bb.real_weights) if bb else True,
            "sampling": (f"clip {cfg.clip_len} stride {cfg.clip_stride}" if cfg.sampling == "clip" else f"every {cfg.stride}"),
            "text_path": text_path_of(bb) if bb else None,
            "precision": bb.precision if bb else None,
            "sigma": args.sigma, "prompts": prompts, "normal_prompts": normal_prompts}
    return method, meta, list(ckpts.values())


def threshold_beside(checkpoint: Path, fusion: str | None = None) -> Path:
    """Where a calibrated threshold is saved beside a checkpoint: the sibling ``<name>.threshold.json``
    of the file or model folder — never inside it, so a stage's (DVC-tracked) output stays unchanged.
    A fusion's (``fusion="zeroshot+flow_nf"``) goes to ``<name>.<fusion>.threshold.json``, so it never
    replaces the checkpoint's own method's."""
    checkpoint = Path(checkpoint)
    name = checkpoint.stem if checkpoint.is_file() else checkpoint.name
    return checkpoint.parent / (f"{name}.{fusion}.threshold.json" if fusion else f"{name}.threshold.json")


def reference_videos(specs: list[str], params_file: str = "params.yaml") -> tuple[list[Path], str]:
    """The normal reference footage of ``--calibrate``: video files, frames folders, folders of videos
    (every video file / frames folder under it) or a registered dataset's split
    (``dataset:NAME[:SPLIT]``, default split ``train``; only its videos labelled normal).
    Returns ``(paths, description)``; every path is checked to be a readable, non-empty video."""
    from vadlib.data.video import IMAGE_EXTENSIONS

    paths: list[Path] = []
    said: list[str] = []
    for spec in specs:
        if spec.startswith("dataset:"):
            from vadlib.search import dataset_spec_videos

            normal = [Path(v.path) for v in dataset_spec_videos(spec, params_file, "--calibrate")[1] if int(v.label) == 0]
            if not normal:
                raise ConfigError(f"--calibrate {spec}: none of its videos is labelled normal")
            paths += normal
            said.append(f"{spec}: {len(normal)} normal videos")
            continue
        p = Path(spec)
        if p.is_dir() and not any(c.suffix.lower() in IMAGE_EXTENSIONS for c in p.iterdir()):
            from vadlib.search import collection_videos

            try:
                _, vids = collection_videos(str(p))
            except DataError as exc:
                raise DataError(p, "calibration folder holds no video files, frames folders or images") from exc
            paths += [Path(v.path) for v in vids]
            said.append(f"{p.name}/: {len(vids)} videos")
        else:
            paths.append(p)
            said.append(p.name)
    for p in paths:
        check_video(p, "calibration video")
    return paths, ", ".join(said)


def check_video(path: Path, what: str = "input video") -> None:
    """Raise :class:`DataError` naming ``path`` unless it is a readable video with frames (checked
    before any model is loaded or anything is written)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, f"{what} does not exist")
    try:
        n = len(_video(path).open())
    except DataError:
        raise
    except Exception as exc:                                # decoders raise their own types
        raise DataError(path, f"cannot read the {what} ({type(exc).__name__}: {exc})") from exc
    if n <= 0:
        raise DataError(path, f"{what} has no frames")


def _run(args, collect: dict | None = None) -> int:
    """Run ``vadlib detect`` on parsed ``args``; ``collect``: filled with each video's
    :class:`~vadlib.detect.api.Detection` (the function API, :func:`vadlib.detect.api.detect_videos`)."""
    from vadlib.io import atomic_dir

    out_root = Path(args.out)
    videos = [Path(v) for v in args.videos]
    for v in videos:
        if not v.exists():
            raise DataError(v, "input video does not exist")
    targets = {v: out_root / v.stem for v in videos}
    if len(set(targets.values())) < len(targets):
        raise ConfigError("two input videos have the same name (their output folders would clash): "
                          f"{', '.join(sorted(str(v) for v in videos))}")
    if not args.overwrite:
        for t in targets.values():
            if t.exists():
                raise DataError(t, "output folder exists; pass --overwrite to replace it")
    # every input (and the calibration footage) must be readable before a model is loaded or a file written
    for v in videos:
        check_video(v)
    ref, ref_said = reference_videos(args.calibrate, args.params) if args.calibrate else ([], "")
    clash = {p.resolve() for p in ref} & {v.resolve() for v in videos}
    if clash:
        raise ConfigError(f"calibration footage must not be the video being scored: {sorted(map(str, clash))}")
    method, meta, ckpts = build_methods(args)
    if not meta["real_weights"]:
        print("WARNING — RANDOM WEIGHTS: scores check the plumbing only.", file=sys.stderr)
    fusion = isinstance(method, FusionMethod)
    if args.threshold is not None:
        if fusion:
            raise ConfigError("a fusion's scores have no fixed scale: calibrate it (--calibrate NORMAL…) or give "
                              "the --threshold-file its calibration saved")
        threshold = Threshold(value=args.threshold, source="given (--threshold)").stamp(meta)
    elif args.calibrate:
        heat_on = [(m, m.heatmap) for m in getattr(method, "parts", [method]) if hasattr(m, "heatmap")]
        for m, _ in heat_on:            # no heat maps of the reference footage
            m.heatmap = False
        if fusion:
            reference = [method.part_scores(_video(p))[0] for p in ref]
            method.fit_norm(reference)
            ref_scores = [method.combine(r) for r in reference]
        else:
            ref_scores = [score_video(p, method, 0.0)["scores"] for p in ref]
        if args.sigma:
            from scipy.ndimage import gaussian_filter1d

            ref_scores = [gaussian_filter1d(r, args.sigma, mode="nearest") for r in ref_scores]
        for m, on in heat_on:
            m.heatmap = on
        threshold = calibrate_threshold(ref_scores, args.false_alarm_rate, method=method.name,
                                        source=f"normal footage ({ref_said})").stamp(meta)
        threshold.norm = method.norm if fusion else None
        refuse_replacing_cited_calibration(out_root / "threshold.json", threshold, set(targets.values()))
        if ckpts:
            for c in ckpts:
                beside = threshold_beside(c, method.name if fusion else None)
                threshold.save(beside)
                print(f"calibrated threshold {threshold.value:.4g} saved beside the checkpoint: {beside}",
                      file=sys.stderr)
    else:
        path = Path(args.threshold_file) if args.threshold_file else None
        if path is None:
            beside = [threshold_beside(c, method.name if fusion else None) for c in ckpts]
            saved = [b for b in beside if b.is_file()]
            path = saved[0] if saved else None
        if path is None:
            raise ConfigError("give a threshold: --threshold VALUE, --threshold-file FILE, or --calibrate "
                              "NORMAL_VIDEO… (a calibration is then saved beside the checkpoint and reused)")
        threshold = Threshold.load(path)
        if not threshold.matches(meta):
            raise ConfigError(f"{path}: threshold calibrated for {threshold.describe()}, but this run is "
                              f"{describe_run(meta)}; recalibrate with --calibrate")
        warn = threshold.precision_mismatch(meta)
        if warn:
            print(f"WARNING — {path}: {warn}", file=sys.stderr)
        if fusion:
            if not threshold.norm:
                raise ConfigError(f"{path}: holds no fusion calibration (norm); recalibrate with --calibrate")
            method.norm = {k: tuple(v) for k, v in threshold.norm.items()}
        if not args.threshold_file:
            threshold.source = f"{threshold.source}; saved beside the checkpoint ({path})"
    for v in videos:
        res = score_video(v, method, args.sigma)
        events = find_events(res["scores"], threshold.value, res["fps"], method.labels, res["fired"],
                             min_length=args.min_event, merge_gap=args.merge_gap)
        with atomic_dir(targets[v]) as tmp:
            write_outputs(tmp, v, res, events, threshold, method.labels,
                          {**meta, "frames_per_second": res["n_frames"] / res["seconds"],
                           "realtime_factor": res["realtime_factor"]}, video_out=not args.no_video)
        print(f"{v.name}: {len(events)} event(s) -> {targets[v]}")
        if collect is not None:
            from vadlib.detect.api import Detection

            collect[str(v)] = Detection(video=v, out=targets[v], events=events, threshold=threshold, meta=meta, **res)
    if args.calibrate:
        threshold.save(out_root / "threshold.json")
    return 0


def refuse_replacing_cited_calibration(saved: Path, threshold: Threshold, replaced: set[Path]) -> None:
    """Raise ConfigError if ``saved`` (``OUT/threshold.json``) holds another calibration that earlier
    outputs in ``OUT`` cite (their ``events.json``), except those this run replaces (``--overwrite``):
    the file would no longer hold the value they were thresholded with."""
    import json

    if not saved.is_file():
        return
    old = Threshold.load(saved)
    plain = json.loads(json.dumps(asdict(threshold), default=lambda o: o.item() if hasattr(o, "item") else list(o)))
    if old.value == plain["value"] and old.norm == plain["norm"]:
        return
    citing = []
    for ev in sorted(saved.parent.glob("*/events.json")):
        if ev.parent in replaced:
            continue
        try:
            cited = json.loads(ev.read_text()).get("threshold") or {}
        except (OSError, ValueError):
            continue
        if cited.get("value") == old.value:
            citing.append(ev.parent.name)
    if citing:
        raise ConfigError(f"{saved}: holds the calibration {old.value:.6g} ({old.source}) that earlier outputs in "
                          f"{saved.parent} cite ({', '.join(citing[:5])}{' …' if len(citing) > 5 else ''}); this "
                          f"run calibrated {threshold.value:.6g} and would replace it. Use another --out folder, "
                          "or remove those outputs and the file first")


def _video(path: Path):
    from vadlib.data import Video

    v = Video(name=path.stem, path=path, split="test")
    v.fps = float(v.open().fps or DEFAULT_FPS)
    return v


