"""The ``train_mil`` stage: weakly supervised training (video-level labels) of AnomalyCLIP or the
Sultani MIL / RTFM top-k baselines on one dataset's CLIP feature store; the checkpoint is chosen on a
validation split of TRAINING videos; the test split is scored once at the end.

Writes under ``ctx.out_dir`` (``reports/train_mil/<item>``) every output ``dvc.yaml`` lists (besides
the executed notebook): ``model.pt`` (trained, or a copy of ``checkpoint_in``), ``metrics.json``,
``roc.csv``, ``pr.csv``, ``predictions.npz`` and ``figures/`` (training curves, ROC/PR, timelines).

With ``seeds: [0, 1, 2]`` it trains once per seed: each seed's ``model.pt``, ``metrics.json``, ``roc.csv``,
``pr.csv`` and ``predictions.npz`` go to ``seeds/seed_<k>/``; the top-level ``metrics.json`` holds the mean
of each headline number with its spread (:mod:`vadlib.seeds`), the top-level model/predictions/curves
are the first seed's, and the ROC/PR figure overlays the seeds. Wall times go to ``timing.json``
(not a DVC output).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np

from vadlib.config import bounded
from vadlib.io import atomic_path, write_json
from vadlib.metrics import evaluate_frames, json_safe, pr_curve_points, recognition_metrics, roc_curve_points
from vadlib.seeds import resolve_seeds, seed_dir, summarize, write_timing
from vadlib.stages._inputs import feature_store, per_item, sampling_label, store_clip_len
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params

STAGE = "train_mil"


@dataclass
class Params:
    """``params.yaml: train_mil`` and its defaults (meanings there)."""

    run_on: list[str] = field(default_factory=lambda: ["demo_a", "demo_b"])
    method: str = "anomalyclip"              # anomalyclip | sultani | rtfm
    preset: Union[str, dict[str, str]] = "demo"   # one preset name, or {dataset: preset}
    overrides: dict[str, Any] = field(default_factory=dict)   # checked by the method's config
    classes: Union[list[str], None] = None        # the configured class list (default: the dataset's)
    val_fraction: float = bounded(0.2, min=0, max=0.9)
    checkpoint_in: str = ""                       # evaluate this checkpoint instead of training
    timelines: int = bounded(6, min=0)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])   # one training per seed; [] = the global seed

#: the headline numbers summarized over seeds (mean, _std, _min, _max)
SUMMARY_KEYS = ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "mauc", "map", "top1", "top5")


def run(params: Params | Mapping | None, ctx: StageContext, figures: bool = True) -> dict:
    """Train (or load) and evaluate on dataset ``ctx.item`` once per seed of ``seeds``. Returns the first
    seed's ``{"train": run_train_mil(...), "predictions", "detection", "recognition" (None without class
    probabilities), "protocol", "labels"}`` with ``"metrics"`` (the summary over seeds written to
    ``metrics.json``), ``"seeds"`` (``{seed: that seed's result}``), ``"timing"`` and ``"figures": [paths]}``."""
    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    out = ctx.out_dir
    seeds = resolve_seeds(p.seeds, ctx.seed)
    if p.checkpoint_in:                   # evaluating one given checkpoint: nothing is trained, one run
        seeds = seeds[:1]
    runs = {}
    for s in seeds:
        runs[s] = run_seed(p, ctx, s)
    first = runs[seeds[0]]
    per_seed = {s: r["metrics"] for s, r in runs.items()}
    metrics = summarize(per_seed, [k for k in SUMMARY_KEYS if k in first["metrics"]])
    for k in ("n_frames", "n_videos", "n_train", "n_val"):
        metrics[k] = first["metrics"][k]
    metrics["best_epoch"] = {str(s): m["best_epoch"] for s, m in per_seed.items()}
    protocol = {**first["protocol"], "seed": seeds, "seeds": "mean ± sample std over seeds (vadlib.seeds)"}
    write_json(out / "metrics.json", json_safe({**metrics, "protocol": protocol, "config": first["train"]["config"]}))
    d0 = seed_dir(out, seeds[0])          # the first seed's model, predictions and curves are the stage's
    for name in ("roc.csv", "pr.csv", "predictions.npz", "model.pt"):
        with atomic_path(out / name) as tmp:
            shutil.copyfile(d0 / name, tmp)
    timing = {"train_seconds": {str(s): r["train"]["seconds"] for s, r in runs.items()},
              "epoch_seconds": {str(s): r["train"]["epoch_seconds"] for s, r in runs.items()}}
    write_timing(out, timing)
    result = {**first, "metrics": metrics, "protocol": protocol, "seeds": runs, "timing": timing}
    result["figures"] = write_figures(result, p, out / "figures") if figures else []
    return result


def run_seed(p: Params, ctx: StageContext, seed: int) -> dict:
    """One seed's training and evaluation; writes ``seeds/seed_<seed>/{model.pt, metrics.json, roc.csv,
    pr.csv, predictions.npz}``. Returns ``{"train", "predictions", "metrics", "detection", "recognition",
    "protocol", "labels", "test", "real_weights", "chosen"}``."""
    import pandas as pd

    from vadlib.data import get_dataset
    from vadlib.features import load_backbone
    from vadlib.report.plots import validation_signal

    item = ctx.item
    preset = per_item(p.preset, item, "train_mil.preset")
    out = seed_dir(ctx.out_dir, seed)
    dataset = get_dataset(item, **ctx.datasets[item])
    store = feature_store(item, ctx.reports)
    from vadlib.methods import METHODS

    bb = (load_backbone(ctx.backbone["name"], ctx.backbone["pretrained"], device=ctx.device,
                        clip_len=store_clip_len(store.info, ctx.backbone["name"]))   # a video backbone's, as extracted
          if METHODS.get(p.method).uses_backbone else None)
    real = bool(store.info.get("real_weights", True))
    if not real:
        print("WARNING — RANDOM WEIGHTS: the features come from a random-weight backbone; figures check the "
              "plumbing only.")
    res = run_train_mil(p.method, preset, dataset, store, overrides=p.overrides, class_names=p.classes,
                        seed=seed, val_fraction=p.val_fraction, backbone=bb,
                        checkpoint_in=p.checkpoint_in or None,
                        checkpoint_out=out / "model.pt")
    if p.checkpoint_in and Path(res["checkpoint"]).resolve() != (out / "model.pt").resolve():
        with atomic_path(out / "model.pt") as tmp:   # the evaluated checkpoint is this stage's model output
            shutil.copyfile(res["checkpoint"], tmp)
    # per-epoch wall times are not results: they go to timing.json, so the notebook (a DVC output) is reproducible
    res["epoch_seconds"] = [row.pop("seconds", None) for row in res["history"]]
    chosen = validation_signal(pd.DataFrame(res["history"]))  # no finite validation score: no epoch chosen, last kept
    print(f"seed {seed}: " + (f"best epoch {res['best_epoch']} (chosen on {res['n_val']} validation TRAINING videos)" if chosen else
           f"no validation signal on {res['n_val']} validation TRAINING video(s): no epoch chosen, the last kept")
          + f"; checkpoint {Path(res['checkpoint']).name}")
    preds = res["predictions"]
    test = dataset.videos("test")
    labels = {v.name: v.frame_labels for v in test}
    det = evaluate_frames(preds.scores(), labels)
    protocol = {"dataset": item, "gt_file": dataset.gt_file or "generated", "method": p.method, "preset": preset,
                "seed": seed, "backbone": store.info.get("backbone"), "real_weights": real, "split": "test",
                "ap_definition": "sklearn average_precision_score",
                "precision": store.info.get("precision", "fp32"), "precision_reason": store.info.get("precision_reason"),
                "sampling": sampling_label(store.info),
                "text_path": "text tower (learned prompts)" if bb is not None else None,
                "selection": ("validation split of training videos" if chosen else
                              "evaluate-only: the given checkpoint" if p.checkpoint_in else
                              "none: no validation signal, last epoch"),
                # AnomalyCLIP reference-mode switches used (vadlib.methods.anomalyclip.model.ReferenceSwitches; [] = all fixes on)
                "reference_switches": [k for k, v in (res["config"].get("reference") or {}).items() if v]}
    recog = None
    frame_classes = {v.name: v.frame_classes for v in test if v.frame_classes is not None}
    first = next(iter(preds.videos.values()))
    if first.class_probs is not None and len(frame_classes) == len(test):
        recog = recognition_metrics(frame_classes, {k: v.class_probs for k, v in preds.videos.items()},
                                    preds.class_names)
    metrics = {k: det[k] for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "n_frames", "n_videos")}
    metrics.update(best_epoch=res["best_epoch"] if chosen else None, n_train=res["n_train"],
                   n_val=res["n_val"])
    if recog is not None:
        metrics.update(mauc=recog["mAUC"], map=recog["mAP"], top1=recog["top1"], top5=recog["top5"])
    write_json(out / "metrics.json", json_safe({**metrics, "protocol": protocol, "config": res["config"]}))
    all_s = np.concatenate([preds.scores()[v] for v in labels])
    all_y = np.concatenate([labels[v] for v in labels])
    roc_curve_points(all_s, all_y).to_csv(out / "roc.csv", index=False)
    pr_curve_points(all_s, all_y).to_csv(out / "pr.csv", index=False)
    preds.meta.update(protocol)
    preds.save(out / "predictions.npz")
    return {"train": res, "predictions": preds, "metrics": metrics, "detection": det, "recognition": recog,
            "protocol": protocol, "labels": labels, "test": test, "real_weights": real, "chosen": chosen}


def write_figures(result: Mapping, p: Params, figures: Path) -> list[Path]:
    """``training`` (loss terms and validation curves), ``roc_pr`` and ``timelines`` (the first
    ``p.timelines`` anomalous test videos; GT shaded, predicted class as dots). Returns the PNG paths."""
    import pandas as pd

    from vadlib.report.plots import plot_roc_pr, plot_timelines, plot_training, protocol_caption, save_figure

    figures.mkdir(parents=True, exist_ok=True)
    paths = []
    history = pd.DataFrame(result["train"]["history"])
    if len(history):
        train = result["train"]
        first_seed = next(iter(result.get("seeds") or {}), None)
        fig = plot_training(history, train["best_epoch"] if result["chosen"] else None, train["n_val"],
                            title=f"{p.method} — {result['protocol']['dataset']}"
                                  + ("" if first_seed is None else f" (seed {first_seed})"), real_weights=result["real_weights"])
        save_figure(fig, figures / "training")
        paths.append(figures / "training.png")
    preds, labels, protocol = result["predictions"], result["labels"], result["protocol"]
    item, real = protocol["dataset"], result["real_weights"]
    caption = protocol_caption(protocol)
    curves = {}
    for s, r in (result.get("seeds") or {None: result}).items():   # one curve per seed, overlaid
        sc = r["predictions"].scores()
        curves[p.method if s is None else f"{p.method} seed {s}"] = (
            np.concatenate([sc[v] for v in labels]), np.concatenate([labels[v] for v in labels]))
    fig = plot_roc_pr(curves, title=f"{p.method} — {item}", real_weights=real, caption=caption)
    save_figure(fig, figures / "roc_pr")
    paths.append(figures / "roc_pr.png")
    shown = [v.name for v in result["test"] if v.frame_labels is not None and v.frame_labels.any()][:p.timelines]
    pred_cls = None
    if next(iter(preds.videos.values())).class_probs is not None:
        # predicted class per frame: argmax of the C-way distribution (normal unless some p(c, A|x) > 1 − p(A|x))
        pred_cls = {k: v.class_probs.argmax(1) for k, v in preds.videos.items()}
    fig = plot_timelines(preds.scores(), labels, videos=shown, classes=pred_cls, class_names=preds.class_names,
                         title=f"{p.method} p(anomaly) — {item}", real_weights=real, caption=caption)
    save_figure(fig, figures / "timelines")
    paths.append(figures / "timelines.png")
    return paths


# ---------------------------------------------------------------------------------------------
# feature store + dataset → trained (or loaded) method, predictions
# ---------------------------------------------------------------------------------------------


def resolve_class_id(video_name: str, class_name: str | None, label: int, class_names: Sequence[str]) -> int:
    """Video-level class id of a training video; unknown class names raise naming the video."""
    from vadlib.errors import ConfigError, DataError

    if label == 0 or class_name == "normal":
        return 0
    if label != 1:
        raise DataError(None, f"video '{video_name}': video-level label {label} is unknown (need 0 or 1 to train)")
    if class_name is None:
        if len(class_names) == 2:
            return 1
        raise DataError(None, f"video '{video_name}': abnormal training video without a class name "
                        f"(the config has {len(class_names) - 1} anomaly classes)")
    if class_name not in class_names:
        raise ConfigError(f"video '{video_name}': class '{class_name}' is not in the configured classes "
                          f"{list(class_names)}")
    return list(class_names).index(class_name)


def load_features(store, name: str) -> np.ndarray:
    """``(N, D)`` float32 features of a video from a feature store (crops averaged), checked finite."""
    from vadlib.errors import DataError
    from vadlib.features.store import average_crops

    f = average_crops(np.asarray(store.load(name), dtype=np.float32))
    if f.ndim != 2 or f.shape[0] == 0:
        raise DataError(None, f"video '{name}': features must be (N, D) with N ≥ 1, got {f.shape}")
    if not np.isfinite(f).all():
        raise DataError(None, f"video '{name}': features contain NaN or inf")
    return f


def load_weak_videos(store, videos, class_names: Sequence[str]) -> list:
    """Training :class:`~vadlib.methods.WeakVideo` s from a store and the dataset's :class:`~vadlib.data.Video` records."""
    from vadlib.methods import WeakVideo

    return [WeakVideo(v.name, load_features(store, v.name),
                      resolve_class_id(v.name, v.class_name, v.label, class_names)) for v in videos]


def predict_store(method, store, videos) -> "Predictions":
    """Per-frame scores (and class probabilities) of ``videos`` from the store, rows expanded to frames."""
    from vadlib.features.store import expand_to_frames
    from vadlib.results import Predictions, VideoScores

    feats = {v.name: load_features(store, v.name) for v in videos}
    out = method.predict(feats)
    res = Predictions(class_names=list(method.class_names), meta={"method": method.name})
    for v in videos:
        s, p = out[v.name]
        fi = store.frame_index(v.name)
        n = store.num_frames(v.name)
        s = expand_to_frames(s, fi, n)
        p = expand_to_frames(p, fi, n) if p is not None else None
        res.videos[v.name] = VideoScores(scores=np.asarray(s, np.float32),
                                         class_probs=None if p is None else np.asarray(p, np.float32),
                                         fired=None if p is None else p.argmax(1).astype(np.int64))
    return res


def run_train_mil(method: str, preset: str, dataset, store, *, overrides: Mapping | None = None,
                  class_names: Sequence[str] | None = None, seed: int = 0, val_fraction: float = 0.2,
                  backbone=None, checkpoint_in: str | Path | None = None,
                  checkpoint_out: str | Path | None = None, log: Callable[[str], None] | None = print) -> dict:
    """Train (or load) ``method`` on the dataset's weakly labelled training videos; predict the test split.

    Args:
        method: ``anomalyclip`` | ``sultani`` | ``rtfm``; preset: ``shanghaitech`` | ``ucf_crime``
            | ``xd_violence`` | ``demo``; overrides: config keys to change.
        dataset: a :class:`~vadlib.data.VideoDataset`; store: its :class:`FeatureStore`.
        class_names: the configured class list (default: the dataset's); a training video whose
            class is not in it raises.
        val_fraction: share of the TRAINING videos held out for checkpoint selection.
        backbone: the CLIP backbone (AnomalyCLIP's learned prompts go through its text encoder).
        checkpoint_in: evaluate this checkpoint instead of training (no training epochs): a vadlib
            checkpoint, or a published lucazanella/AnomalyCLIP ``last.ckpt`` (imported with its
            ``ncentroid.pt`` when found beside it, else the prototype is computed from the normal
            training videos as the reference does; saved to ``checkpoint_out`` in vadlib's format).
        checkpoint_out: where to save the trained checkpoint.
    Returns ``{"method", "predictions", "history", "best_epoch", "config", "checkpoint", "seconds",
    "n_train", "n_val"}``.
    """
    from vadlib.compat.zanella import is_reference_checkpoint
    from vadlib.errors import ConfigError
    from vadlib.methods import build, config, feature_spec, load
    from vadlib.train import split_validation

    classes = list(class_names or dataset.class_names)
    if classes[0] != "normal":
        raise ConfigError(f"train_mil: the class list must start with 'normal', got {classes}")
    test = dataset.videos("test")
    hist: list[dict] = []
    best, secs, n_tr, n_va = -1, 0.0, 0, 0
    if checkpoint_in:
        # a vadlib checkpoint, or a published lucazanella/AnomalyCLIP last.ckpt (vadlib.compat.zanella),
        # both read by the one reader vadlib.methods.load and evaluated as they are
        if is_reference_checkpoint(checkpoint_in) and method != "anomalyclip":
            raise ConfigError(f"checkpoint_in {checkpoint_in} is an AnomalyCLIP (lucazanella) checkpoint; set method: anomalyclip")
        m = load(checkpoint_in, backbone=backbone, class_names=classes, require_centroid=False,
                 overrides=overrides)
        ckpt = Path(checkpoint_in)
        if is_reference_checkpoint(checkpoint_in):
            if m.imported["ncentroid"] is None:      # as the reference does when ncentroid.pt is absent
                m.prepare(load_weak_videos(store, dataset.videos("train"), classes))
                m.imported["ncentroid"] = "computed from the normal training videos"
            if checkpoint_out:
                ckpt = m.save(checkpoint_out, meta={"dataset": dataset.name, "imported": m.imported,
                                                    "features": feature_spec(getattr(store, "info", {}))})
        elif list(m.class_names) != classes:
            raise ConfigError(f"checkpoint {checkpoint_in} has classes {m.class_names}, the run expects {classes}")
    else:
        train = load_weak_videos(store, dataset.videos("train"), classes)
        cfg = config(method, preset, overrides)
        if (cfg.get("reference") or {}).get("no_validation_split"):
            val_fraction = 0.0       # reference switch (flaw 6): all training videos, last epoch kept
        tr, va = split_validation(train, val_fraction, seed)
        n_tr, n_va = len(tr), len(va)
        D = train[0].features.shape[1]
        m = build(method, cfg, classes, D, backbone=backbone, seed=seed)
        r = m.fit(tr, va, seed=seed, log=log)
        hist, best, secs = r.history, r.best_epoch, r.seconds
        ckpt = None
        if checkpoint_out:
            ckpt = m.save(checkpoint_out, meta={"dataset": dataset.name, "seed": seed, "preset": preset,
                                                "best_epoch": best, "val_fraction": val_fraction,
                                                "features": feature_spec(getattr(store, "info", {}))})
    preds = predict_store(m, store, test)
    preds.meta.update(dataset=dataset.name, preset=preset, seed=seed)
    return {"method": m, "predictions": preds, "history": hist, "best_epoch": best, "config": m.cfg.to_dict(),
            "checkpoint": None if ckpt is None else str(ckpt), "seconds": secs, "n_train": n_tr, "n_val": n_va}


def run_notebook_params(params: Mapping[str, Any] | None = None, item: str | None = None) -> dict:
    """What ``notebooks/train_mil.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s
    for ``item``, default the first of ``run_on``)."""
    section, ctx = split_params(notebook_params(params, STAGE, item), STAGE)
    return run(section, ctx)
