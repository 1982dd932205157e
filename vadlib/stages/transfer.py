"""The ``transfer`` stage: zero-shot cross-dataset transfer (VideoAnomalyCLIP, methods.md §2). For each
``[source, target]`` pair: train on the source's training videos, score the target's test videos with no
target data (its anomalies described in words, ``prompts.<target>``), for every variant.

Writes under ``ctx.out_dir`` (``reports/transfer``) every output ``dvc.yaml`` lists (besides the executed
notebook): ``model/<source>.pt`` (the "full" model, for ``vadlib detect --method transfer``),
``predictions/<source>__<target>__<variant>.npz``, ``transfer_matrix.{csv,md}``, ``metrics.json``,
``transfer_heatmap.png`` and ``figures/``.

With ``seeds: [0, 1, 2]`` every source is trained once per seed: each seed's ``transfer_matrix.csv``,
``metrics.json``, ``model/`` and ``predictions/`` go to ``seeds/seed_<k>/``; the top-level
``transfer_matrix.csv`` is the mean over seeds with ``<metric>_std`` columns, the matrix and heat map
cells read ``mean ± std``, ``metrics.json`` gives per pair × variant the mean and spread
(:mod:`vadlib.seeds`), and the top-level ``model/`` and ``predictions/`` are the first seed's.
Training wall times go to ``timing.json`` (not a DVC output).

Validation (``transfer.validation``, :mod:`vadlib.validation.stage`): a dataset's ``validation.videos``
are never trained on; for each pair a pseudo-anomaly set is made from the TARGET's listed training
videos when they are normal (the target scene, which is never trained on either), else from the
SOURCE's held-out ones (never from a test split). Its CLIP features are extracted like the store's,
every variant's model scores it with the pair's test prompts, σ is chosen among
``validation.sigma`` on the headline variant's key AUC (``full`` if run) before the pair's test
videos are scored (:func:`validate_pair`), and the AUCs go into ``metrics.json`` under
``validation`` (``validation.auc`` = the mean over pairs and seeds of the headline key AUC).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Union

import numpy as np

from vadlib.config import bounded, check, check_value, section_dict
from vadlib.errors import ConfigError
from vadlib.io import atomic_path, write_json
from vadlib.metrics import json_safe
from vadlib.seeds import resolve_seeds, seed_dir, summarize, write_timing
from vadlib.stages._inputs import feature_store, sampling_label, store_clip_len
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params
from vadlib.validation.stage import ValidationParams, held_out

STAGE = "transfer"


@dataclass
class GenericPrompts:
    """``transfer.generic_prompts``: the texts of the ``generic_prompts`` variant."""

    normal: str = "a normal scene"
    abnormal: str = "an abnormal event"


@dataclass
class Params:
    """``params.yaml: transfer`` and its defaults (meanings there). ``temporal``, ``prompt_learning`` and
    ``train`` are given to :meth:`vadlib.methods.transfer.model.TransferConfig.from_params`, whose defaults fill
    what they leave out; :meth:`_config_check` checks them against those model configs."""

    pairs: list[list[str]] = field(default_factory=lambda: [["demo_a", "demo_b"], ["demo_b", "demo_a"]])
    variants: list[str] = field(default_factory=lambda: ["full", "no_temporal", "generic_prompts", "clip_zeroshot"])
    score: Literal["calibrated", "max_cos"] = "calibrated"   # headline score
    tau: float = bounded(0.01, gt=0)     # test softmax temperature; never fitted on the target
    sigma: float = bounded(0, min=0)     # Gaussian smoothing (frames) per video
    templates: Union[list[str], str] = field(default_factory=lambda: ["{}.", "a photo of {}.",
                                                          "a surveillance camera frame of {}."])
    generic_prompts: dict = section_dict(GenericPrompts)
    normal_prompts: dict[str, list[str]] = field(default_factory=dict)   # per target (default: generic_prompts.normal)
    prompts: dict[str, Union[list[str], dict[str, str]]] = field(default_factory=dict)  # per target: a list, or {name: text}
    temporal: dict[str, Any] = field(default_factory=dict)
    prompt_learning: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)   # per dataset: a feature store path (default: extract's)
    num_threads: int = bounded(1, min=1)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])   # one training per seed; [] = the global seed
    validation: dict = section_dict(ValidationParams)   # pseudo-anomaly set per pair and σ candidates

    def _config_check(self, path: str, source: str | None) -> None:
        """``temporal``, ``prompt_learning`` (+ its ``enabled`` switch) and ``train`` against the model
        configs (:func:`vadlib.config.check` calls this; imports torch)."""
        from vadlib.prompts.learning import PromptLearnerConfig
        from vadlib.methods.transfer.temporal import TemporalConfig
        from vadlib.methods.transfer.model import TrainConfig

        for i, pair in enumerate(self.pairs):     # [source, target], kept a list as given
            check_value(tuple[str, str], pair, f"{path}.pairs[{i}]", source)
        check(TemporalConfig, self.temporal, f"{path}.temporal", source)
        pl = dict(self.prompt_learning or {})
        check_value(bool, pl.pop("enabled", True), f"{path}.prompt_learning.enabled", source)
        check(PromptLearnerConfig, pl, f"{path}.prompt_learning", source)
        check(TrainConfig, self.train, f"{path}.train", source)


def run(params: Params | Mapping | None, ctx: StageContext, figures: bool = True) -> dict:
    """Train on every source, test on every target. Returns ``{"result": run_transfer(...), "table",
    "training", "target_prompts", "matrix" (the markdown table), "metrics", "protocol", "fired",
    "figures": [paths]}``."""
    import pandas as pd
    import torch

    from vadlib.data import get_dataset
    from vadlib.features import load_backbone
    from vadlib.methods.transfer.model import (TargetPrompts, TransferConfig, fired_summary, load_videos, run_transfer,
                                        save_transfer_model, text_encoder_for, transfer_matrix)
    from vadlib.report.plots import protocol_caption
    from vadlib.methods import feature_spec

    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    if p.num_threads:
        torch.set_num_threads(p.num_threads)
    out = ctx.out_dir
    (out / "figures").mkdir(parents=True, exist_ok=True)
    seeds = resolve_seeds(p.seeds, ctx.seed)

    def config(seed: int):
        return TransferConfig.from_params({"temporal": p.temporal, "prompt_learning": p.prompt_learning,
                                           "train": {"seed": seed, **p.train}, "generic_prompts": p.generic_prompts,
                                           "templates": p.templates, "tau": p.tau, "sigma": p.sigma,
                                           "variants": p.variants, "device": ctx.device})
    cfg = config(seeds[0])
    names = sorted({d for pair in p.pairs for d in pair})
    missing = [d for d in names if d not in ctx.datasets]
    if missing:
        raise ConfigError(f"params.yaml: datasets has no entry for {missing}")
    data = {d: get_dataset(d, **ctx.datasets[d]) for d in names}
    stores = {d: feature_store(d, ctx.reports, p.features) for d in names}
    # a video backbone's frame count comes from the store (an ActionCLIP file may not record it)
    bb = load_backbone(ctx.backbone["name"], ctx.backbone["pretrained"], device=ctx.device,
                       clip_len=store_clip_len(stores[names[0]].info, ctx.backbone["name"]))
    real = bool(bb.real_weights)
    if not real:
        print("WARNING — RANDOM WEIGHTS: these scores check the plumbing only.")
    for d, st in stores.items():
        if st.info.get("backbone") != bb.name:
            raise ConfigError(f"feature store of '{d}' was made with {st.info.get('backbone')}, not {bb.name}")
    target_prompts = {}
    for _, tgt in p.pairs:
        if tgt not in p.prompts:
            raise ConfigError(f"params.yaml: transfer.prompts has no semantic prompts for target '{tgt}'")
        target_prompts[tgt] = TargetPrompts.from_params(
            p.prompts[tgt], default_normal=p.normal_prompts.get(tgt, [p.generic_prompts["normal"]]),
            where=f"transfer.prompts.{tgt}")

    loaded = {}
    vcfg = {**asdict(ValidationParams()), **p.validation}

    def load(name, split):       # a dataset's validation videos are never trained on
        if (name, split) not in loaded:
            held = set(held_out(vcfg, name)) if split == "train" else set()
            loaded[(name, split)] = load_videos(stores[name], [v for v in data[name].videos(split)
                                                               if v.name not in held])
        return loaded[(name, split)]

    encode = text_encoder_for(bb, p.templates)
    per_seed, tables, timing = {}, [], {}
    for seed in seeds:
        torch.manual_seed(seed)
        sd = seed_dir(out, seed)
        print(f"seed {seed}")
        res_s = run_transfer(p.pairs, load, target_prompts, config(seed), encode, backbone=bb,
                             validate=lambda s_, t_, prep: validate_pair(s_, t_, prep, data, stores, bb, p, ctx,
                                                                         config(seed).tau))
        # each source's trained model ("full" variant), for `vadlib detect --method transfer --checkpoint transfer@SOURCE`
        model_params = {"temporal": p.temporal, "prompt_learning": p.prompt_learning,
                        "train": {"seed": seed, **p.train}, "generic_prompts": p.generic_prompts,
                        "templates": p.templates, "tau": p.tau, "sigma": p.sigma, "variants": p.variants}
        for src_name, trained in res_s.models.items():
            save_transfer_model(sd / "model" / f"{src_name}.pt", trained, model_params, src_name,
                                feature_spec(stores[src_name].info))
        for (s_, t_, v_), pr in res_s.predictions.items():
            pr.meta.update({"real_weights": real, "backbone": f"{bb.name}/{bb.pretrained}", "seed": seed})
            pr.save(sd / "predictions" / f"{s_}__{t_}__{v_}.npz")
        with atomic_path(sd / "transfer_matrix.csv") as tmp:
            res_s.table.to_csv(tmp, index=False)
        per_seed[seed] = res_s
        tables.append(res_s.table.assign(seed=seed))
        timing[str(seed)] = {f"{k[0]} {k[1]} {k[2]}": v["seconds"] for k, v in res_s.training.items()}
    result = per_seed[seeds[0]]
    for sub in ("model", "predictions"):          # the first seed's models and predictions are the stage's
        if (out / sub).exists():
            shutil.rmtree(out / sub)
        shutil.copytree(seed_dir(out, seeds[0]) / sub, out / sub)
    write_timing(out, {"training_seconds": timing})
    keys = ["source", "target", "variant", "score"]
    long = pd.concat(tables, ignore_index=True)
    value_cols = [c for c in long.columns if c not in keys + ["seed"] and pd.api.types.is_numeric_dtype(long[c])]
    grouped = long.groupby(keys, sort=False)[value_cols]
    table = grouped.mean().join(grouped.std(ddof=1).fillna(0.0).add_suffix("_std")).reset_index()
    table["n_seeds"] = len(seeds)
    training = pd.DataFrame([{"source": k[0], "model": k[1], "mixing": k[2], "objective": v["objective"],
                              "epochs": len(v["losses"]), "final loss": v["losses"][-1] if v["losses"] else np.nan}
                             for k, v in result.training.items()])

    protocol = {"split": "source: train (weak video labels or normal only) → target: test", "gt_file": {
        t: data[t].gt_file or "generated (demo annotations)" for _, t in p.pairs}, "sigma": p.sigma,
        "ap_definition": "sklearn average_precision_score", "backbone": f"{bb.name}/{bb.pretrained}",
        "real_weights": real, "tau": p.tau, "score": p.score, "micro": True,
        "temporal": cfg.temporal.to_dict(), "train": {k: getattr(cfg.train, k) for k in cfg.train.__dataclass_fields__},
        "prompt_learning": None if cfg.prompt_learning is None else cfg.prompt_learning.to_dict(),
        "sampling": {d: sampling_label(stores[d].info) for d in names},
        "text_path": "text tower (prompts and learned prompts through the frozen text encoder, any backbone)",
        "windows": "clip_length/stride count feature rows, not frames",
        "precision": {d: stores[d].info.get("precision", "fp32") for d in names}}
    auc, ap = transfer_matrix(table, p.score, "micro_auc"), transfer_matrix(table, p.score, "micro_ap")
    auc_sd, ap_sd = transfer_matrix(table, p.score, "micro_auc_std"), transfer_matrix(table, p.score, "micro_ap_std")

    def pm(m, sd):           # "0.8123 ± 0.0132" cells (one value with one seed)
        return m.round(4).astype(str) + ("" if len(seeds) < 2 else " ± " + sd.round(4).astype(str))
    md = pd.concat([pm(auc, auc_sd).add_prefix("AUC "), pm(ap, ap_sd).add_prefix("AP ")], axis=1)
    with atomic_path(out / "transfer_matrix.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out / "transfer_matrix.md") as tmp:
        tmp.write_text(f"Transfer matrix — micro frame AUC / AP, score `{p.score}`"
                       f"{'' if real else ' — RANDOM WEIGHTS (plumbing only)'}\n\n" + md.to_markdown() + "\n\n"
                       + protocol_caption({**protocol, "dataset": ", ".join(f"{s}→{t}" for s, t in p.pairs),
                                           "gt_file": "; ".join(f"{k}: {v}" for k, v in protocol["gt_file"].items())})
                       + "\n")
    seed_auc = {sd_: transfer_matrix(r.table, p.score, "micro_auc") for sd_, r in per_seed.items()}
    seed_ap = {sd_: transfer_matrix(r.table, p.score, "micro_ap") for sd_, r in per_seed.items()}

    def cell(v, pair):       # mean, _std, _min, _max, n_seeds and per_seed of one pair × variant
        return summarize({sd_: {"micro_auc": float(seed_auc[sd_].loc[v, pair]), "micro_ap": float(seed_ap[sd_].loc[v, pair])}
                          for sd_ in seeds}, ["micro_auc", "micro_ap"])
    metrics = {"pairs": {f"{s}->{t}": {v: cell(v, f"{s}→{t}") for v in auc.index} for s, t in p.pairs},
               "headline": {f"{s}->{t}": float(auc.loc["full", f"{s}→{t}"]) for s, t in p.pairs if "full" in auc.index},
               "headline_std": {f"{s}->{t}": float(auc_sd.loc["full", f"{s}→{t}"]) for s, t in p.pairs
                                if "full" in auc.index},
               "n_seeds": len(seeds), "seeds": seeds,
               "protocol": protocol,
               "prompts": {t: {"normal": tp.normal, "anomaly": tp.anomaly} for t, tp in target_prompts.items()}}
    metrics["validation"] = validation_summary(per_seed, seeds)
    write_json(out / "metrics.json", json_safe(metrics))
    for sd_, r in per_seed.items():       # each seed's own metrics (the numbers the mean was taken over)
        write_json(seed_dir(out, sd_) / "metrics.json",
                   {"pairs": {f"{s}->{t}": {v: {"micro_auc": float(seed_auc[sd_].loc[v, f"{s}→{t}"]),
                                                "micro_ap": float(seed_ap[sd_].loc[v, f"{s}→{t}"])}
                                            for v in auc.index} for s, t in p.pairs},
                    "protocol": {**protocol, "seed": sd_}})
    fired = {}
    for s, t in p.pairs:
        if (s, t, "full") in result.predictions:
            fired[f"{s}→{t}"] = fired_summary(result.predictions[(s, t, "full")], load(t, "test")).round(3)
    res = {"result": result, "seeds": per_seed, "timing": timing, "table": table, "training": training, "target_prompts": target_prompts, "matrix": md,
           "metrics": metrics, "protocol": protocol, "fired": fired, "real_weights": real}
    res["figures"] = write_figures(res, p, out) if figures else []
    return res


def validation_source(vcfg: Mapping, data: Mapping, src: str, tgt: str) -> str | None:
    """The dataset whose listed training videos make the pair's pseudo-anomaly set: the target's when
    it lists videos that are all normal, else the source's when it lists any, else None."""
    for name in (tgt, src):
        names = set(held_out(vcfg, name))
        if names and (name == src or all(v.label == 0 for v in data[name].videos("train") if v.name in names)):
            return name
    return None


_VALIDATION_SETS: dict = {}


def validate_pair(src: str, tgt: str, prepared: Mapping[str, tuple], data: Mapping, stores: Mapping, bb, p: Params,
                  ctx: StageContext, tau: float) -> dict:
    """:func:`~vadlib.methods.transfer.model.run_transfer`'s ``validate`` hook: score the pair's pseudo-anomaly
    set (:func:`validation_source`) with every variant's model and the pair's prompts, choose σ among
    ``validation.sigma`` on the headline variant's key AUC. Returns the block for ``metrics.json``
    (``sigma`` = the choice; ``{"sigma": transfer.sigma, "note"}`` without a set)."""
    from vadlib.methods.transfer.model import load_videos, predict
    from vadlib.validation import choose, validation_metrics
    from vadlib.validation.features import extract_like
    from vadlib.validation.stage import choice_rows, key_auc, prepare_set

    v = {**asdict(ValidationParams()), **p.validation}
    base = validation_source(v, data, src, tgt)
    if base is None:
        return {"sigma": p.sigma, "note": f"no validation set: transfer.validation.videos lists no video of "
                                          f"'{tgt}' or '{src}'"}
    key = (base, json.dumps(v, sort_keys=True, default=str), str(stores[base].path))
    if key not in _VALIDATION_SETS:
        vds = prepare_set(data[base], v)
        vstore = extract_like(stores[base], vds, bb, v["root"], ctx.device, "transfer.validation")
        _VALIDATION_SETS[key] = (vds, load_videos(vstore, vds.videos("test")))
    vds, feats = _VALIDATION_SETS[key]
    scores = {name: predict(m, feats, tn, ta, tau, names)[p.score].scores() for name, (m, tn, ta, names) in prepared.items()}
    head = "full" if "full" in scores else next(iter(scores))
    kk = list(v["key_kinds"])

    def scored(sc, sigma):
        m = validation_metrics(sc, vds, float(sigma) or None)
        m["key_auc"] = key_auc(m, kk)
        return m

    choice = choose([float(x) for x in (v["sigma"] or [p.sigma])], lambda x: scored(scores[head], x), key="key_auc")
    print(f"validation {src}→{tgt} ({vds.name}, made from {base}): {head} {p.score} key AUC {choice.auc:.3f} "
          f"(sigma {choice.best:g})")
    return {"sigma": choice.best, "auc": choice.auc, "variant": head, "made_from": base,
            "held_out": held_out(v, base), "key_kinds": kk or list(v["kinds"]),
            "variants": {n: scored(sc, choice.best) for n, sc in scores.items()},
            "chosen": {"sigma": choice.best, "n_candidates": len(choice.table),
                       "key": f"mean per-kind micro AUC of the {head} variant's {p.score} score over {kk or 'all kinds'}"},
            "candidates": choice_rows(choice, lambda x: {"sigma": x}),
            "set": {"root": str(vds.root), "name": vds.name}, "real_weights": bool(bb.real_weights)}


def validation_summary(per_seed: Mapping, seeds: list[int]) -> dict:
    """``metrics.json``'s ``validation``: per pair the first seed's block (plus ``auc_per_seed``) and
    ``auc`` = the mean over pairs and seeds of the headline key AUC (absent without any set)."""
    pairs = {}
    for (s, t), block in per_seed[seeds[0]].validation.items():
        per = {sd: per_seed[sd].validation[(s, t)].get("auc") for sd in seeds}
        pairs[f"{s}->{t}"] = {**block, "auc_per_seed": per} if block.get("auc") is not None else dict(block)
    aucs = [a for b in pairs.values() for a in (b.get("auc_per_seed") or {}).values() if a is not None]
    return {**({"auc": float(np.mean(aucs))} if aucs else {}), "pairs": pairs}


def write_figures(res: Mapping, p: Params, out: Path) -> list[Path]:
    """``figures/transfer_heatmap`` (the transfer matrix per variant) and its copy ``transfer_heatmap.png``
    beside ``metrics.json``. Returns the PNG paths."""
    from vadlib.methods.transfer.model import plot_transfer
    from vadlib.report.plots import protocol_caption, save_figure

    (out / "figures").mkdir(parents=True, exist_ok=True)
    caption = protocol_caption({"dataset": ", ".join(f"{s}→{t}" for s, t in p.pairs), "sigma": p.sigma,
                                "ap_definition": res["protocol"]["ap_definition"],
                                "backbone": res["protocol"]["backbone"], "real_weights": res["real_weights"],
                                "score": p.score})
    fig = plot_transfer(res["table"], p.score, real_weights=res["real_weights"], caption=caption,
                        spread="micro_auc_std" in res["table"] and int(res["table"]["n_seeds"].iloc[0]) > 1)
    save_figure(fig, out / "figures" / "transfer_heatmap")
    with atomic_path(out / "transfer_heatmap.png") as tmp:
        shutil.copyfile(out / "figures" / "transfer_heatmap.png", tmp)
    return [out / "figures" / "transfer_heatmap.png"]


def run_notebook_params(params: Mapping[str, Any] | None = None) -> dict:
    """What ``notebooks/transfer.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s)."""
    section, ctx = split_params(notebook_params(params, STAGE), STAGE)
    return run(section, ctx)
