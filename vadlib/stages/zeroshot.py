"""The ``zeroshot`` stage: CLIP zero-shot scores of one dataset's test videos from its feature store
against the dataset's prompts (``softmax`` over [normal; anomaly prompts] and ``max_cos``), with
frame-level detection and, when the prompts name the dataset's classes, recognition metrics. Nothing
is fitted; σ is fixed a priori, or chosen among ``validation.sigma`` candidates on the pseudo-anomaly
set made from the dataset's ``validation.videos`` (TRAINING videos; :mod:`vadlib.validation.stage`),
whose features are extracted like the store's and scored by the same scorer; its AUCs go into
``metrics.json`` under ``validation`` and the candidate table into ``validation_choices.csv``.

Writes under ``ctx.out_dir`` (``reports/zeroshot/<item>``) every output ``dvc.yaml`` lists (besides the
executed notebook): ``metrics.json``, ``roc.csv``, ``pr.csv``, ``predictions.npz``, ``validation_choices.csv`` and ``figures/``
(``roc_pr``, ``timelines``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Union

import numpy as np

from vadlib.config import bounded, section_dict
from vadlib.errors import ConfigError
from vadlib.io import write_json
from vadlib.metrics import evaluate_frames, json_safe, pr_curve_points, recognition_metrics, roc_curve_points
from vadlib.scoring import gaussian_smooth
from vadlib.stages._inputs import feature_store, sampling_label, store_clip_len
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params
from vadlib.validation.stage import ValidationParams

STAGE = "zeroshot"


@dataclass
class DatasetPrompts:
    """``zeroshot.prompts.<dataset>``: normal texts and anomaly texts (``{class: text}`` or a list)."""

    normal: list[str] = field(default_factory=list)
    anomaly: Union[list[str], dict[str, str]] = field(default_factory=dict)


@dataclass
class Params:
    """``params.yaml: zeroshot`` and its defaults (meanings there)."""

    run_on: list[str] = field(default_factory=lambda: ["demo_a", "demo_b"])
    score: Literal["softmax", "max_cos"] = "softmax"   # headline score
    tau: float = bounded(0.01, gt=0)                   # softmax temperature
    sigma: float = bounded(0, min=0)                   # Gaussian smoothing (frames) per video; 0 = none
    templates: Union[list[str], str] = field(default_factory=lambda: ["{}.", "a photo of {}.",
                                                          "a surveillance camera frame of {}."])
    prompts: dict = section_dict(DatasetPrompts, each=True)   # per dataset: {normal: [...], anomaly: {class: text}}
    validation: dict = section_dict(ValidationParams)         # pseudo-anomaly set and σ candidates


def run(params: Params | Mapping | None, ctx: StageContext, figures: bool = True) -> dict:
    """Score and evaluate dataset ``ctx.item``. Returns ``{"predictions": {score: Predictions},
    "results": {score: evaluate_frames(...)}, "table", "recognition", "metrics", "protocol",
    "class_names", "figures": [paths]}``."""
    import pandas as pd

    from vadlib.data import get_dataset
    from vadlib.features import load_backbone
    from vadlib.prompts.text import PromptSet
    from vadlib.methods.zeroshot.model import ZeroShotScorer, predict_store

    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    item, sigma = ctx.item, p.sigma
    out = ctx.out_dir
    (out / "figures").mkdir(parents=True, exist_ok=True)
    dataset = get_dataset(item, **ctx.datasets[item])
    store = feature_store(item, ctx.reports)
    # the image tower in the store's precision: the validation set is encoded like the store (bf16 weights,
    # not fp32 weights under torch.autocast, which is slower on CPU and differs from the store's features)
    bb = load_backbone(ctx.backbone["name"], ctx.backbone["pretrained"], device=ctx.device,
                       precision=store.info.get("precision", "fp32"),
                       clip_len=store_clip_len(store.info, ctx.backbone["name"]))   # a video backbone's, as extracted
    if store.info["backbone"] != bb.name:
        raise ConfigError(f"store {store.path} was made with {store.info['backbone']}, not {bb.name}: rerun the "
                          f"extract stage with backbone.name={bb.name}")
    if item not in p.prompts:
        raise ConfigError(f"params.yaml: zeroshot.prompts has no entry for dataset '{item}'")
    prompt_set = PromptSet.from_params(p.prompts[item], templates=p.templates, where=f"zeroshot.prompts.{item}")
    scorer = ZeroShotScorer(bb, prompt_set, tau=p.tau)
    validation, choice_table = validate(dataset, store, bb, scorer, p, ctx)
    if validation.get("chosen"):   # the test set is scored once, with the σ validation chose
        sigma = validation["chosen"]["sigma"]
    test = dataset.videos("test")
    preds = predict_store(store, scorer, test)
    labels = {v.name: v.frame_labels for v in test}
    real = bool(bb.real_weights)
    if not real:
        print("WARNING — RANDOM WEIGHTS: these scores check the plumbing only.")

    results, rows = {}, []
    for name, pr in preds.items():
        m = evaluate_frames(pr.scores(), labels, sigma=sigma or None)
        results[name] = m
        rows.append({"score": name, **{k: m[k] for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap")}})
    table = pd.DataFrame(rows).set_index("score")
    protocol = {"method": f"zeroshot ({p.score})", "dataset": item,
                "gt_file": dataset.gt_file or "generated (demo annotations)", "sigma": sigma,
                "ap_definition": "sklearn average_precision_score", "backbone": f"{bb.name}/{bb.pretrained}",
                "real_weights": real, "split": "test", "tau": p.tau,
                "sampling": sampling_label(store.info), "text_path": scorer.text_path,
                "precision": store.info.get("precision", "fp32"), "precision_reason": store.info.get("precision_reason")}

    classes = {v.name: v.frame_classes for v in test if v.frame_classes is not None}
    names_ds = dataset.class_names
    recog = None
    if classes and set(scorer.class_names[1:]) <= set(names_ds[1:]):
        # map the scorer's columns onto the dataset's class ids
        order = [scorer.class_names.index(c) if c in scorer.class_names else None for c in names_ds]
        probs = {v: np.stack([pr.class_probs[:, j] if j is not None else np.zeros(len(pr.scores))
                              for j in order], 1) for v, pr in preds["softmax"].videos.items()}
        recog = recognition_metrics(classes, probs, names_ds)

    headline = results[p.score]
    other = next(n for n in results if n != p.score)
    metrics = {"micro_auc": headline["micro_auc"], "macro_auc": headline["macro_auc"],
               "micro_ap": headline["micro_ap"], "macro_ap": headline["macro_ap"],
               f"{other}_micro_auc": results[other]["micro_auc"], f"{other}_micro_ap": results[other]["micro_ap"],
               "n_frames": headline["n_frames"], "n_videos": headline["n_videos"]}
    if recog is not None:
        metrics.update(mauc=recog["mAUC"], map=recog["mAP"], top1=recog["top1"], top5=recog["top5"],
                       per_class_auc=recog["per_class_auc"])
    write_json(out / "metrics.json", json_safe({**metrics, "protocol": protocol, "validation": validation}))
    pd.DataFrame(choice_table, columns=None if choice_table else ["sigma", "key_auc", "rank", "chosen"]).to_csv(
        out / "validation_choices.csv", index=False)
    smoothed = gaussian_smooth(preds[p.score].scores(), sigma) if sigma else preds[p.score].scores()
    all_s = np.concatenate([smoothed[v] for v in labels])
    all_y = np.concatenate([labels[v] for v in labels])
    for fname, df in (("roc.csv", roc_curve_points(all_s, all_y)), ("pr.csv", pr_curve_points(all_s, all_y))):
        df.to_csv(out / fname, index=False)
    preds[p.score].meta.update(protocol)
    preds[p.score].save(out / "predictions.npz")
    result = {"predictions": preds, "results": results, "table": table, "recognition": recog, "metrics": metrics,
              "protocol": protocol, "class_names": scorer.class_names, "labels": labels, "smoothed": smoothed,
              "real_weights": real, "score": p.score, "validation": validation, "validation_choices": choice_table}
    result["figures"] = write_figures(result, p, item, out / "figures") if figures else []
    return result


def validate(dataset, store, bb, scorer, p: Params, ctx: StageContext) -> tuple[dict, list[dict]]:
    """Score the pseudo-anomaly set of ``dataset`` (``p.validation``) with ``scorer``, its features
    extracted with the test store's config, and choose σ among ``validation.sigma`` (by the headline
    score's key AUC). Returns ``(block for metrics.json, candidate rows)``; ``({"note"}, [])`` when
    the dataset has no ``validation.videos`` entry."""
    from vadlib.methods.zeroshot.model import predict_store
    from vadlib.validation import choose, validation_metrics
    from vadlib.validation.features import extract_like
    from vadlib.validation.stage import choice_rows, held_out, key_auc, prepare_set

    v = {**asdict(ValidationParams()), **p.validation}
    vds = prepare_set(dataset, v)
    if vds is None:
        return {"note": f"no validation set: zeroshot.validation.videos has no entry for '{dataset.name}'"}, []
    vstore = extract_like(store, vds, bb, v["root"], ctx.device, "zeroshot.validation")
    preds = predict_store(vstore, scorer, vds.videos("test"))
    kk = list(v["key_kinds"])

    def scored(scores, s):
        m = validation_metrics(scores, vds, float(s) or None)
        m["key_auc"] = key_auc(m, kk)
        return m

    choice = choose([float(s) for s in (v["sigma"] or [p.sigma])], lambda s: scored(preds[p.score].scores(), s),
                    key="key_auc")
    block = {"auc": choice.auc, "micro_auc": choice.table[choice.index]["result"]["micro_auc"],
             **{n: scored(pr.scores(), choice.best) for n, pr in preds.items()},
             "chosen": {"sigma": choice.best, "n_candidates": len(choice.table),
                        "key": f"mean per-kind micro AUC of the {p.score} score over {kk or 'all kinds'}"},
             "held_out": held_out(v, dataset.name), "key_kinds": kk or list(v["kinds"]),
             "set": {"root": str(vds.root), "name": vds.name}, "real_weights": bool(bb.real_weights)}
    print(f"validation ({vds.name}): {p.score} key AUC {choice.auc:.3f} (sigma {choice.best:g})")
    return block, choice_rows(choice, lambda s: {"sigma": s})


def write_figures(result: Mapping, p: Params, item: str, figures: Path) -> list[Path]:
    """``roc_pr`` (both scores, unsmoothed) and ``timelines`` (the headline score, smoothed; GT
    shaded, the predicted class as dots). Returns the PNG paths."""
    from vadlib.report.plots import plot_roc_pr, plot_timelines, protocol_caption, save_figure

    figures.mkdir(parents=True, exist_ok=True)
    preds, labels, real = result["predictions"], result["labels"], result["real_weights"]
    caption = protocol_caption({**result["protocol"], "score": p.score})
    all_y = np.concatenate([labels[v] for v in labels])
    fig = plot_roc_pr({n: (np.concatenate([pr.scores()[v] for v in labels]), all_y) for n, pr in preds.items()},
                      title=f"zero-shot — {item}", real_weights=real, caption=caption)
    save_figure(fig, figures / "roc_pr")
    pred_cls = {v: pr.class_probs.argmax(1) for v, pr in preds["softmax"].videos.items()}
    fig = plot_timelines(result["smoothed"], labels, classes=pred_cls, class_names=result["class_names"],
                         title=f"zero-shot {p.score} score — {item}", real_weights=real, caption=caption)
    save_figure(fig, figures / "timelines")
    return [figures / "roc_pr.png", figures / "timelines.png"]


def run_notebook_params(params: Mapping[str, Any] | None = None, item: str | None = None) -> dict:
    """What ``notebooks/zeroshot.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s
    for ``item``, default the first of ``run_on``)."""
    section, ctx = split_params(notebook_params(params, STAGE, item), STAGE)
    return run(section, ctx)
