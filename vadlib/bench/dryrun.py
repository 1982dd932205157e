"""The dry run at real model size: ``python -m vadlib.bench dryrun [--root ../shared/datasets/ucsd_ped2] [--out build/dryrun]``.

What a user with downloaded weights runs, with random weights in their place (issue 14, item 4):

1. builds the open_clip model ``--backbone`` (default ``ViT-B-16``) with random weights (seeded),
   saves its state dict to ``<out>/weights/<backbone>-random-seed<k>.pt`` and marks it random with the
   sidecar ``<file>.vadlib.json`` (:func:`vadlib.features.backbones.open_clip.mark_random_weights`), so every
   output of the run says RANDOM WEIGHTS;
2. runs the stages ``extract → zeroshot → train_mil → transfer`` on UCSD Ped2 through their real code
   (``vadlib/stages/<stage>.py: run``) with ``backbone.pretrained: <that file>``, each stage in a
   process of its own, with ``params.yaml``'s sections (sampling, prompts, seeds, presets) unless an
   option here changes them;
3. prints per stage the wall time (process start to exit, imports included), the peak RSS of the
   stage process (``os.wait4``; its own child processes, none with ``num_workers: 0``, are added from
   its ``RUSAGE_CHILDREN``), the frames, the precision and sampling, and the load average (the machine
   may be shared); writes the table to ``<out>/dryrun.{json,md}``.

Ped2's training set is normal-only, so weakly supervised ``train_mil`` has no anomalous training video
there. The dry run gives it a **weak split made for the dry run only**, ``ped2_weak`` (a ``manifest``
dataset written to ``<out>/ped2_weak/``): the 16 normal training videos plus the odd-numbered test
videos Test001, 003, …, 011 with their video-level label only (all Ped2 test videos contain
anomalies), tested on the even-numbered ones. It reuses the Ped2 feature store (same videos, same
names). Its AUCs are meaningless twice over (random weights, a non-standard split); it measures cost.
``zeroshot`` runs on the standard split with ``zeroshot.validation`` at Ped2 scale (span 16-40,
margin 8, params.yaml's comment). ``transfer`` runs the pair ucsd_ped2 → ucsd_ped2 (the only real
dataset here; source training videos are normal-only, so the objective is ``normal_only``).

Tiny mode for tests: ``--backbone vadlib-tiny --stride 60 --epochs 1 --seeds 0``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from vadlib.errors import ConfigError, DataError
from vadlib.io import write_json

STAGES = ("extract", "zeroshot", "train_mil", "transfer")
MARKER = ".vadlib-dryrun"          # a folder holding this file is the dry run's and may be cleared
WEAK = "manifest"                  # the registered adapter (and item name) of the weak split ped2_weak
#: Ped2 scale of the pseudo-anomaly validation set (params.yaml: zeroshot.validation's comment)
PED2_VALIDATION = {"span": [16, 40], "margin": 8}


def weak_split_manifest(root: str | Path, out: str | Path, gt: str = "UCSDped2.m") -> Path:
    """Write the dry run's weakly labelled Ped2 split to ``out/manifest.json`` (+ per-frame GT ``.npy``
    of its test videos): training = Ped2's normal training videos + the odd-numbered test videos
    (video label only); test = the even-numbered test videos. Video names are the ``ucsd_ped2``
    adapter's (``TrainNNN``, ``TestNNN``), so the Ped2 feature store serves it. Returns the manifest."""
    from vadlib.data import get_dataset
    from vadlib.io import save_npy

    ds = get_dataset("ucsd_ped2", root=root, gt=gt)
    out = Path(out)
    train = [{"video_path": str(v.path), "anomaly": 0, "name": v.name} for v in ds.videos("train")]
    test = []
    for i, v in enumerate(ds.videos("test")):
        if i % 2 == 0:    # Test001, Test003, ...: weakly labelled training videos
            train.append({"video_path": str(v.path), "anomaly": int(v.label), "name": v.name,
                          **({"class_name": "anomaly"} if v.label else {})})
        else:
            gt_file = save_npy(out / "gt" / f"{v.name}.npy", v.frame_labels.astype("uint8"))
            test.append({"video_path": str(v.path), "anomaly": int(v.label), "name": v.name,
                         "gt_path": str(gt_file.resolve()),
                         **({"class_name": "anomaly"} if v.label else {})})
    if not any(e["anomaly"] for e in train):
        raise DataError(Path(root), "the weak split has no anomalous training video: is this UCSD Ped2?")
    return write_json(out / "manifest.json", {
        "note": "vadlib dry run only: Ped2 training videos + odd-numbered test videos (video labels only) "
                "for training, even-numbered test videos for testing; NOT a published protocol",
        "class_names": ["normal", "anomaly"], "descriptions": ds.descriptions,
        "train": {"ped2": train}, "test": {"ped2": test}})


def save_random_weights(name: str, path: str | Path, seed: int = 0) -> Path:
    """Build open_clip model ``name`` with random weights (seed ``seed``), save its fp32 state dict to
    ``path`` (atomically) and mark it random (``<path>.vadlib.json``). Returns ``path``."""
    import torch

    from vadlib.features.backbones import load_backbone
    from vadlib.features.backbones.open_clip import mark_random_weights
    from vadlib.io import atomic_path

    bb = load_backbone(name, "random", random_seed=seed, precision="fp32")
    with atomic_path(path) as tmp:
        torch.save(bb.model.state_dict(), tmp)
    mark_random_weights(path, model=name, seed=seed, made_by="python -m vadlib.bench dryrun",
                        note="RANDOM WEIGHTS: a stand-in for downloaded weights, for cost measurements only")
    return Path(path)


def _section(params: dict, stage: str) -> dict:
    return json.loads(json.dumps(params.get(stage) or {}))


def make_plan(a: argparse.Namespace, params: dict, weights: Path, out: Path) -> dict:
    """Every stage's ``(section, context)``: ``params.yaml``'s sections with the dry run's datasets,
    folders and the options given."""
    reports = out / "reports"
    bb = {**(params.get("backbone") or {}), "name": a.backbone, "pretrained": str(weights.resolve()),
          "device": "cpu"}
    if a.precision:
        bb["precision"] = a.precision
    ped2 = {**((params.get("datasets") or {}).get("ucsd_ped2") or {}), "root": str(Path(a.root).resolve())}
    datasets = {"ucsd_ped2": ped2, WEAK: {"root": str((out / "ped2_weak" / "manifest.json").resolve())}}
    ctx = {"seed": int(params.get("seed", 0)), "backbone": bb, "datasets": datasets, "reports": str(reports)}
    seeds = {} if a.seeds is None else {"seeds": a.seeds}
    mil_seeds = {"seeds": a.mil_seeds} if a.mil_seeds is not None else seeds
    mil_epochs = a.mil_epochs if a.mil_epochs is not None else a.epochs

    ex = {**_section(params, "extract"), "run_on": ["ucsd_ped2"], "out": str(out / "features")}
    if a.stride:
        ex["stride"] = a.stride
    zs = _section(params, "zeroshot")
    zs["run_on"] = ["ucsd_ped2"]
    zs["validation"] = {**(zs.get("validation") or {}), **PED2_VALIDATION, "root": str(out / "validation")}
    tm = {**_section(params, "train_mil"), "run_on": [WEAK], "preset": a.preset, **mil_seeds}
    if mil_epochs is not None:
        tm["overrides"] = {**(tm.get("overrides") or {}), "epochs": mil_epochs}
    tr = {**_section(params, "transfer"), "pairs": [["ucsd_ped2", "ucsd_ped2"]], **seeds}
    if a.epochs is not None:
        tr["train"] = {**(tr.get("train") or {}), "epochs": a.epochs}
    return {"extract": (ex, {**ctx, "item": "ucsd_ped2"}), "zeroshot": (zs, {**ctx, "item": "ucsd_ped2"}),
            "train_mil": (tm, {**ctx, "item": WEAK}), "transfer": (tr, {**ctx, "item": ""})}


# ---------------------------------------------------------------- one stage, in its own process

def _store_rows(store, names) -> tuple[int, int]:
    """(feature rows, video frames) of ``names`` in ``store``."""
    rows = frames = 0
    for n in names:
        rows += int(store.load(n).shape[0])
        frames += int(store.num_frames(n))
    return rows, frames


def run_stage(stage: str, plan_file: str | Path) -> dict:
    """Run ``stage`` of the plan through ``vadlib.stages.<stage>.run`` and return what the table shows
    (frames, precision, sampling, real_weights); written to ``<out>/records/<stage>.json``."""
    import importlib
    import resource

    from vadlib.stages._inputs import feature_store
    from vadlib.stages._params import StageContext

    plan = json.loads(Path(plan_file).read_text())
    section, ctx = plan["stages"][stage]
    reports = Path(ctx["reports"])
    out_dir = reports / stage / ctx["item"]
    context = StageContext(out_dir=out_dir, **ctx)
    mod = importlib.import_module(f"vadlib.stages.{stage}")
    t0 = time.perf_counter()
    res = mod.run(section, context)
    secs = time.perf_counter() - t0
    item = ctx["item"] or "ucsd_ped2"
    store = feature_store(item, reports)
    info = store.info
    rec: dict[str, Any] = {"stage": stage, "run_seconds": secs, "real_weights": bool(info.get("real_weights")),
                           "precision": info.get("precision", "fp32"),
                           "sampling": f"{info.get('sampling')} stride {info.get('stride')}"}
    if stage == "extract":
        rows, frames = _store_rows(store, store.videos())
        rec.update(frames=f"{rows} encoded of {frames}", encoded=rows, videos=len(store.videos()))
    elif stage == "zeroshot":
        v = res["validation"]
        vrows = 0
        for idx in Path(plan["out"], "validation", "features").rglob("index.json"):
            from vadlib.features.store import FeatureStore
            vs = FeatureStore.open(idx.parent)
            vrows += _store_rows(vs, vs.videos())[0]
        rec.update(frames=f"{res['metrics']['n_frames']} scored; {vrows} validation encoded",
                   encoded=vrows, validation_auc=v.get("auc"))
        rec["precision"] += " (text tower fp32)"
    elif stage == "train_mil":
        from vadlib.methods import config

        m = res["metrics"]
        per_epoch = [x for v in res["timing"]["epoch_seconds"].values() for x in v if x is not None]
        full = config(section.get("method", "anomalyclip"), section["preset"]).get("epochs")
        rec.update(frames=f"{m['n_train']}+{m['n_val']} train/val videos; {m['n_frames']} test frames",
                   seeds=res["protocol"]["seed"], epochs=res["train"]["config"].get("epochs"),
                   train_seconds=res["timing"]["train_seconds"], preset_epochs=full,
                   epoch_seconds_mean=sum(per_epoch) / max(1, len(per_epoch)))
        rec["note"] = (f"{rec['epoch_seconds_mean']:.0f} s/epoch (train + validation) x {full} preset epochs "
                       f"= {rec['epoch_seconds_mean'] * (full or 0) / 3600:.1f} h per seed")
    elif stage == "transfer":
        tr = res["training"]
        rows, frames = _store_rows(store, [v for v in store.videos() if v.startswith("Test")])
        rec.update(frames=f"{frames} target test frames", seeds=res["metrics"]["seeds"],
                   objective=sorted(set(tr["objective"])) if len(tr) else [], epochs=int(tr["epochs"].max()),
                   training_seconds=res["timing"])
        trained = ", ".join(o for o in rec["objective"] if not o.startswith("skipped")) or "-"
        rec["note"] = f"{len(rec['seeds'])} seed(s) x {rec['epochs']} epochs, objective {trained}"
    rec["children_maxrss_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    write_json(Path(plan["out"]) / "records" / f"{stage}.json", rec)
    return rec


# ---------------------------------------------------------------- the driver

def _child(args: list[str], env: dict, log) -> tuple[int, float, int]:
    """Run ``python -m vadlib.bench.dryrun ARGS``; returns (exit status, wall seconds, peak RSS KB)."""
    t0 = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "vadlib.bench.dryrun", *args], env=env, stdout=log,
                         stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.perf_counter() - t0, int(usage.ru_maxrss)


def _prepare_out(out: Path, stages: Sequence[str]) -> None:
    """Clear the dry run's earlier outputs in ``out`` (only a folder the dry run made: it holds ``MARKER``):
    all of them when ``stages`` start at extract, else those of ``stages`` (the feature store is kept)."""
    if out.exists() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ConfigError(f"--out {out} exists and is not a dry-run folder (no {MARKER}); choose another --out")
    if stages[0] == "extract":
        subs = ["features", "reports", "validation", "records", "ped2_weak", "plan.json"]
    else:
        if not (out / "reports" / "extract" / "ucsd_ped2" / "store.json").is_file():
            raise ConfigError(f"--stages {' '.join(stages)}: no feature store in {out} yet; run with extract first")
        subs = [f"reports/{s}" for s in stages] + [f"records/{s}.json" for s in stages]
        subs += ["validation"] if "zeroshot" in stages else []
    for sub in subs:
        p = out / sub
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by python -m vadlib.bench dryrun; cleared by its next run\n")


def _fmt_time(s: float) -> str:
    return f"{int(s // 60)}:{s % 60:04.1f}"


def dryrun(a: argparse.Namespace) -> list[dict]:
    """Run the dry run of ``a`` (see the module docstring); prints and returns the table rows."""
    import platform

    from vadlib.config import load_params

    params_file = Path(a.params)
    if not params_file.is_file():
        raise ConfigError(f"--params {params_file}: no such file (the project's params.yaml gives the sampling, "
                          "prompts and seeds)")
    if not Path(a.root).is_dir():
        raise DataError(Path(a.root), "--root: UCSD Ped2 is not there (the frames mirror or the release)")
    params = load_params(params_file)
    out = Path(a.out).resolve()
    _prepare_out(out, a.stages)
    weights = out / "weights" / f"{a.backbone}-random-seed{a.seed}.pt"
    env = dict(os.environ)
    pkg_root = str(Path(__file__).resolve().parents[2])      # the children import this vadlib
    env["PYTHONPATH"] = os.pathsep.join([pkg_root, *[p for p in [env.get("PYTHONPATH")] if p]])
    stages = list(a.stages)
    rows: list[dict] = []
    print(f"dry run: {a.backbone} with RANDOM WEIGHTS from a local file, Ped2 at {a.root}, outputs in {out}")
    print(f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    with open(out / "dryrun.log", "w") as log:
        steps = [] if "extract" not in stages and weights.is_file() else [
            ("weights", ["--make-weights", str(weights), "--backbone", a.backbone, "--seed", str(a.seed)])]
        weak = out / "ped2_weak"
        weak_split_manifest(a.root, weak, gt=(params.get("datasets") or {}).get("ucsd_ped2", {}).get("gt", "UCSDped2.m"))
        plan = {"out": str(out), "stages": make_plan(a, params, weights, out)}
        write_json(out / "plan.json", plan)
        steps += [(s, ["--stage", s, "--plan", str(out / "plan.json")]) for s in stages]
        for name, args in steps:
            load0 = os.getloadavg()[0]
            log.write(f"\n===== {name}\n")
            log.flush()
            rc, wall, rss = _child(args, env, log)
            if rc != 0:
                raise RuntimeError(f"dry run: stage {name} failed (exit {rc}); its output is in {out / 'dryrun.log'}")
            rec = {"stage": name, "frames": "", "precision": "fp32", "sampling": ""}
            rf = out / "records" / f"{name}.json"
            if rf.is_file():
                rec.update(json.loads(rf.read_text()))
            rss = max(rss, int(rec.get("children_maxrss_kb") or 0))
            rec.update(finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), wall_seconds=wall,
                       wall=_fmt_time(wall), peak_rss_gb=rss / 1024 ** 2,
                       load_average=[load0, os.getloadavg()[0]])
            if name == "weights":
                rec.update(frames=f"- ({weights.stat().st_size / 1e6:.0f} MB file)", sampling="-", real_weights=False)
            if name == "extract":
                # the weak split reads the Ped2 store: same videos, same names
                src = out / "reports" / "extract" / "ucsd_ped2" / "store.json"
                write_json(out / "reports" / "extract" / WEAK / "store.json",
                           {**json.loads(src.read_text()), "dataset": "ped2_weak",
                            "note": "the ucsd_ped2 store (same videos and names)"})
            rows.append(rec)
            print(f"{name:9s} wall {rec['wall']:>8s}  peak RSS {rec['peak_rss_gb']:5.2f} GB  "
                  f"{rec['frames']}  [{rec['precision']}; {rec['sampling']}]  "
                  f"load {load0:.2f}->{rec['load_average'][1]:.2f}" + (f"  ({rec['note']})" if rec.get("note") else ""),
                  flush=True)
    if "extract" not in stages and (out / "dryrun.json").is_file():   # the earlier run's rows of the other stages
        ran = {r["stage"] for r in rows}
        kept = [r for r in json.loads((out / "dryrun.json").read_text())["rows"] if r["stage"] not in ran]
        order = ["weights", *STAGES]
        rows = sorted(kept + rows, key=lambda r: order.index(r["stage"]))
    table = _markdown(rows, a)
    write_json(out / "dryrun.json", {"backbone": a.backbone, "weights": str(weights), "real_weights": False,
                                     "root": str(a.root), "rows": rows, "cpus": os.cpu_count()})
    (out / "dryrun.md").write_text(table)
    print()
    print(table)
    return rows


def _markdown(rows: list[dict], a: argparse.Namespace) -> str:
    lines = [f"Dry run, {a.backbone} with RANDOM WEIGHTS (costs only; every AUC meaningless)", "",
             "| stage | frames | wall | peak RSS | precision | sampling | load avg (start→end) | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['stage']} | {r['frames']} | {r['wall']} | "
                     f"{r['peak_rss_gb']:.2f} GB | {r['precision']} | {r['sampling']} | "
                     f"{r['load_average'][0]:.2f}→{r['load_average'][1]:.2f} | {r.get('note', '')} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``; run the dry run (or, internally, one stage of it)."""
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench dryrun", description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default="../shared/datasets/ucsd_ped2", help="UCSD Ped2 (frames mirror or release)")
    ap.add_argument("--out", default="build/dryrun", help="the dry run's folder (cleared at each run)")
    ap.add_argument("--params", default="params.yaml", help="the project's params.yaml (sampling, prompts, seeds)")
    ap.add_argument("--backbone", default="ViT-B-16", help="open_clip model name (vadlib-tiny for tests)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES,
                    help="stages to run, in order; without extract, the store of an earlier run in --out is reused")
    ap.add_argument("--stride", type=int, default=None, help="extract.stride (default: params.yaml's)")
    ap.add_argument("--precision", default=None, help="backbone.precision (default: params.yaml's, auto)")
    ap.add_argument("--preset", default="shanghaitech", help="train_mil preset (default: the real-size shanghaitech)")
    ap.add_argument("--epochs", type=int, default=None, help="train_mil and transfer epochs (default: the preset's / params.yaml's)")
    ap.add_argument("--seeds", type=int, nargs="+", default=None, help="train_mil and transfer seeds (default: params.yaml's)")
    ap.add_argument("--mil-epochs", type=int, default=None, help="train_mil epochs only (overrides --epochs)")
    ap.add_argument("--mil-seeds", type=int, nargs="+", default=None, help="train_mil seeds only (overrides --seeds)")
    ap.add_argument("--stage", default=None, help=argparse.SUPPRESS)        # internal: one stage
    ap.add_argument("--plan", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--make-weights", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.make_weights:
        save_random_weights(a.backbone, a.make_weights, a.seed)
        return 0
    if a.stage:
        rec = run_stage(a.stage, a.plan)
        print(json.dumps(rec, default=str))
        return 0
    dryrun(a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
