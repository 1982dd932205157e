"""The ``backbones`` stage (a DVC ``matrix:`` over ``backbones.run_on``): the same dataset and method —
zero-shot scoring with the dataset's prompts — with one backbone per matrix entry: an image model
(CLIP through open_clip), X-CLIP and ActionCLIP (:mod:`vadlib.features.backbones`).

Each entry ``ctx.item`` (a key of ``backbones.models``) extracts the dataset's test videos with its
backbone into a store of its own under ``backbones.out`` (frame backbones every ``stride``-th frame,
video backbones in clips of the checkpoint's length, one starting every ``clip_stride`` frames),
scores them along the backbone's text path (the text tower, or X-CLIP's video-conditioned prompt
generator) and evaluates the frame-level detection. Nothing is fitted: no choice is made on the test
set (σ is fixed a priori).

Writes under ``ctx.out_dir`` (``reports/backbones/<key>``) ``metrics.json`` (with the protocol: backbone,
weights, real_weights, kind, text path, sampling, precision) and ``roc.csv``. The report stage gathers
the entries into one table and one figure (:mod:`vadlib.report.backbones`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional, Union

import numpy as np

from vadlib.config import bounded, section_dict
from vadlib.errors import ConfigError
from vadlib.io import write_json
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params

STAGE = "backbones"


@dataclass
class BackboneEntry:
    """``backbones.models.<key>``: a backbone as ``load_backbone`` takes it."""

    name: str = "ViT-B-16"
    pretrained: str = "openai"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    clip_len: Optional[int] = None   # video backbones: frames per clip (null = the checkpoint's; an ActionCLIP
    #                                  file that does not record it needs 8, 16 or 32, its model-zoo row)


@dataclass
class ComparedPrompts:
    """``backbones.prompts``: the dataset's normal texts and anomaly texts (``{class: text}`` or a list)."""

    normal: list = field(default_factory=list)
    anomaly: Any = field(default_factory=dict)


@dataclass
class Params:
    """``params.yaml: backbones`` and its defaults (meanings there)."""

    run_on: list[str] = field(default_factory=lambda: ["clip", "xclip", "actionclip"])   # keys of models (the matrix)
    models: dict = section_dict(BackboneEntry, each=True)     # key -> {name, pretrained, precision}
    dataset: str = "demo_b"
    split: str = "test"
    out: str = "data/features/backbones"
    stride: int = bounded(2, min=1)                # frame backbones: every n-th frame
    clip_stride: Optional[int] = None              # video backbones: frames between clip starts (null = clip length)
    batch_size: int = bounded(32, min=1)
    score: Literal["softmax", "max_cos"] = "softmax"
    tau: float = bounded(0.01, gt=0)
    sigma: float = bounded(0, min=0)
    templates: Union[list[str], str] = field(default_factory=lambda: ["{}.", "a photo of {}.", "a surveillance camera frame of {}."])
    prompts: dict = section_dict(ComparedPrompts)


def run(params: Params | Mapping | None, ctx: StageContext) -> dict:
    """Extract, score and evaluate ``p.dataset`` with the backbone ``p.models[ctx.item]``. Returns
    ``{"metrics", "protocol", "store", "backbone"}``."""
    import warnings

    from vadlib.data import get_dataset
    from vadlib.features import RandomWeightsWarning, load_backbone
    from vadlib.features.backbones import family_of
    from vadlib.features.backbones.base import is_clip_backbone, text_path_of
    from vadlib.features.extract import ExtractConfig, extract_dataset
    from vadlib.metrics import evaluate_frames, json_safe, roc_curve_points
    from vadlib.prompts.text import PromptSet
    from vadlib.methods.zeroshot.model import ZeroShotScorer, predict_store
    from vadlib.stages._inputs import sampling_label

    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    key = ctx.item
    if key not in p.models:
        raise ConfigError(f"params.yaml: backbones.models has no entry '{key}' (has: {', '.join(p.models) or 'none'})")
    if p.dataset not in ctx.datasets:
        raise ConfigError(f"params.yaml: datasets has no entry '{p.dataset}' (backbones.dataset)")
    entry = {**vars(BackboneEntry()), **p.models[key]}
    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    dataset = get_dataset(p.dataset, **ctx.datasets[p.dataset])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)   # said once below, and in every output
        bb = load_backbone(entry["name"], entry["pretrained"], device=ctx.device, precision=entry["precision"],
                           random_seed=ctx.seed, clip_len=entry["clip_len"])
    real = bool(bb.real_weights)
    if not real:
        print(f"WARNING — RANDOM WEIGHTS: backbone {bb.name}: these scores check the plumbing only.")
    clip = is_clip_backbone(bb)
    cfg = (ExtractConfig(sampling="clip", clip_stride=p.clip_stride, batch_size=p.batch_size, device=ctx.device,
                         progress=False) if clip else
           ExtractConfig(sampling="every", stride=p.stride, batch_size=p.batch_size, device=ctx.device, progress=False))
    store = extract_dataset(dataset, bb, Path(p.out) / key, cfg, splits=(p.split,))
    prompt_set = PromptSet.from_params(p.prompts, templates=p.templates, where="backbones.prompts")
    scorer = ZeroShotScorer(bb, prompt_set, tau=p.tau)
    videos = dataset.videos(p.split)
    preds = predict_store(store, scorer, videos)
    labels = {v.name: v.frame_labels for v in videos}
    m = evaluate_frames(preds[p.score].scores(), labels, sigma=p.sigma or None)
    other = "max_cos" if p.score == "softmax" else "softmax"
    m_other = evaluate_frames(preds[other].scores(), labels, sigma=p.sigma or None)
    protocol = {"method": f"zeroshot ({p.score}) · {key}", "dataset": p.dataset, "split": p.split,
                "backbone": f"{bb.name}/{bb.pretrained}", "backbone_key": key, "family": family_of(bb.name),
                "kind": getattr(bb, "kind", "frame"), "clip_len": int(getattr(bb, "clip_len", 1)),
                "text_path": text_path_of(bb), "real_weights": real, "sampling": sampling_label(store.info),
                "precision": store.info.get("precision", "fp32"), "precision_reason": store.info.get("precision_reason"),
                "sigma": p.sigma, "tau": p.tau, "ap_definition": "sklearn average_precision_score",
                "gt_file": dataset.gt_file or "generated (demo annotations)", "store": str(store.path)}
    metrics = {"micro_auc": m["micro_auc"], "macro_auc": m["macro_auc"], "micro_ap": m["micro_ap"],
               "macro_ap": m["macro_ap"], f"{other}_micro_auc": m_other["micro_auc"],
               "n_frames": m["n_frames"], "n_videos": m["n_videos"]}
    write_json(out / "metrics.json", json_safe({**metrics, "protocol": protocol}))
    all_s = np.concatenate([preds[p.score].scores()[v] for v in labels])
    all_y = np.concatenate([labels[v] for v in labels])
    roc_curve_points(all_s, all_y).to_csv(out / "roc.csv", index=False)
    print(f"{key}: {bb.name}/{bb.pretrained} ({protocol['kind']}, {protocol['text_path']}) — {p.dataset} "
          f"µAUC {metrics['micro_auc']:.4f}" + ("" if real else "  [RANDOM WEIGHTS]"))
    return {"metrics": metrics, "protocol": protocol, "store": store, "backbone": bb}


def run_notebook_params(params: Mapping[str, Any] | None = None, item: str | None = None) -> dict:
    """What ``notebooks/backbones.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s
    for ``item``, default the first of ``run_on``)."""
    section, ctx = split_params(notebook_params(params, STAGE, item), STAGE)
    return run(section, ctx)
