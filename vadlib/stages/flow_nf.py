"""The ``flow_nf`` stage: optical-flow normalizing flows, velocity and pose densities and their fusion
(:mod:`vadlib.methods.flow_nf.pipeline`), trained on ``dataset`` (or loaded from ``model_in``) and applied without
retraining to every ``transfer`` dataset.

Writes under ``ctx.out_dir`` every output ``dvc.yaml`` lists (besides the executed notebook):
``model/`` (when trained), ``metrics.json``, ``results.csv``, ``validation_choices.csv``, ``ablation.{csv,md}`` (each stream and
combination in AI-VAD's Table 3 format, :mod:`vadlib.flow.ablation`) and ``figures/``
(log-likelihood histograms and score timelines per test dataset).

Validation (``flow_nf.validation``, :mod:`vadlib.validation.stage`): the source's ``validation.videos``
are held out of fitting and calibration and made into a pseudo-anomaly set, scored by the trained
model; its AUCs go into ``metrics.json`` under ``validation``, and σ / fusion weights, when
candidates are given, are chosen on it (:func:`vadlib.validation.choose`, table in
``validation_choices.csv``) before the test set is scored once with the choice (per seed).

The Glow / velocity GMM / pose flow are trained once per seed of ``seeds``: each seed's ``model/``,
``metrics.json`` and ``results.csv`` go to ``seeds/seed_<k>/``; the top-level ``metrics.json`` and
``results.csv`` give per test dataset × method the mean over seeds with ``_std``, ``_min``, ``_max``,
``n_seeds`` (:mod:`vadlib.seeds`; the untrained ``naive`` baseline keeps one value), and the top-level
``model/`` and figures are the first seed's. Wall times go to ``timing.json`` (not a DVC output).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vadlib.errors import ConfigError
from vadlib.methods.flow_nf.pipeline import (FlowNFModel, FlowNFParams, apply_model, evaluate_all, feature_memo, merge_params,
                                  report_rows, train_flow_nf)
from vadlib.io import atomic_path, write_json
from vadlib.metrics import json_safe
from vadlib.seeds import resolve_seeds, seed_dir, summarize, write_timing
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params
from vadlib.validation.stage import held_out, without_videos

Params = FlowNFParams
STAGE = "flow_nf"
CHOICE_COLUMNS = ["sigma", "fusion", "key_auc", "rank", "chosen"]   # validation_choices.csv without candidates


def run(params: Params | Mapping | None, ctx: StageContext, figures: bool = True) -> dict:
    """The whole stage. ``params``: the ``flow_nf`` section (a :class:`Params` or a mapping, checked);
    ``seeds`` (default ``[ctx.seed]``) the training seeds. Returns the first seed's everything the notebook shows: ``{"params", "protocol", "info",
    "results": {dataset: apply_model(...) + "metrics", "gt_file", "transfer"}, "table": rows,
    "model": FlowNFModel}`` with ``"seeds"`` (``{seed: that run}``), ``"summary"`` (the top-level
    ``metrics.json``), ``"timing"`` and ``"figures": [paths]``."""
    import torch

    from vadlib.data import get_dataset

    if not is_dataclass(params):
        params = from_section(Params, params, STAGE)
    p = merge_params({**asdict(params), "seed": ctx.seed})
    torch.set_num_threads(max(1, int(p["workers"])))
    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    seeds = resolve_seeds(p["seeds"], ctx.seed)
    if p["model_in"]:                     # applying one given model: nothing is trained, one run
        seeds = seeds[:1]
    with feature_memo():                  # regions and features do not depend on the seed: computed once
        runs = {s: run_seed({**p, "seed": s}, ctx, seed_dir(out, s)) for s in seeds}
    first = runs[seeds[0]]
    if (seed_dir(out, seeds[0]) / "model").exists():   # the first seed's model is the stage's
        if (out / "model").exists():
            shutil.rmtree(out / "model")
        shutil.copytree(seed_dir(out, seeds[0]) / "model", out / "model")
        first["info"]["model_out"] = str(out / "model")
    keys = ("micro_auc", "macro_auc", "micro_ap", "macro_ap")
    summary = {k: v for k, v in first["metrics_json"].items() if k not in ("results", "rows", "info", "ablation")}
    summary["params"] = {**summary["params"], "seed": seeds}
    summary["info"] = {k: v for k, v in first["metrics_json"]["info"].items() if k != "model_out"}
    summary["results"], table = {}, []
    for name, r0 in first["metrics_json"]["results"].items():
        summary["results"][name] = {k: v for k, v in r0.items() if not isinstance(v, Mapping)}
        for meth, m0 in r0.items():
            if not isinstance(m0, Mapping):
                continue
            trained = meth != "naive"     # the naive flow-magnitude baseline does not depend on the seed
            used = seeds if trained else seeds[:1]
            sm = summarize({s: runs[s]["metrics_json"]["results"][name][meth] for s in used}, keys)
            summary["results"][name][meth] = {**{k: v for k, v in m0.items() if k not in keys}, **sm}
            row = next(x for x in first["table"] if x["test"] == name and x["method"] == meth)
            table.append({**row, **{k: v for k, v in sm.items() if k != "per_seed"}})
    v_auc = {s: runs[s]["validation"].get("auc") for s in seeds}
    summary["validation"] = {**first["validation"], "seed": seeds[0],
                             **({"auc": float(np.mean(list(v_auc.values()))), "auc_per_seed": v_auc}
                                if all(a is not None for a in v_auc.values()) else {})}
    choices = [{"seed": s, **row} for s in seeds for row in runs[s]["validation_choices"]]
    summary["rows"] = report_rows(summary)
    cells = [m for r in summary["results"].values() for m in r.values() if isinstance(m, Mapping)]
    for row, m in zip(summary["rows"], cells):   # report_rows' order; it keeps the means, the spread goes beside
        row.update({k: m[k] for k in m if k.endswith(("_std", "_min", "_max")) or k in ("n_seeds", "seeds")})
    write_json(out / "metrics.json", json_safe(summary))
    import pandas as pd

    with atomic_path(out / "results.csv") as tmp:
        pd.DataFrame(table).drop(columns=["seeds"], errors="ignore").to_csv(tmp, index=False)
    with atomic_path(out / "validation_choices.csv") as tmp:
        pd.DataFrame(choices, columns=None if choices else ["seed", *CHOICE_COLUMNS]).to_csv(tmp, index=False)
    write_ablation(out, {s: runs[s]["ablation"] for s in seeds}, summary)
    timing = {str(s): r["timing"] for s, r in runs.items()}
    write_timing(out, timing)
    print(f"wall time: flow_nf stage {sum(t['seconds_total'] for t in timing.values()):.1f} s over {len(seeds)} seed(s)"
          " (timing.json)")
    res = {**first, "out_dir": out, "table": table, "summary": summary, "seeds": runs, "timing": timing,
           "validation": summary["validation"], "validation_choices": choices}
    res["figures"] = write_figures(res, out / "figures") if figures else []
    return res


def write_ablation(out: Path, per_seed: Mapping[int, list[dict]], summary: Mapping) -> None:
    """``ablation.csv`` (mean over seeds of each stream combination's cells, ``_std`` beside) and
    ``ablation.md`` (the table in AI-VAD's format, :func:`vadlib.flow.ablation.ablation_markdown`)."""
    import pandas as pd

    from vadlib.flow.ablation import AIVAD_SOURCE, ablation_markdown

    df = pd.concat([pd.DataFrame(r).assign(seed=s) for s, r in per_seed.items()], ignore_index=True)
    cols = ["micro_auc", "macro_auc", "val_auc", "aivad_micro", "aivad_macro"]
    g = df.groupby("streams", sort=False)[cols]
    table = g.mean().join(g.std(ddof=1).add_suffix("_std")).reset_index()
    table["n_seeds"] = len(per_seed)
    with atomic_path(out / "ablation.csv") as tmp:
        table.to_csv(tmp, index=False)
    proto = summary["protocol"]
    first = next(iter(summary["results"].values()), {})
    caption = (f"{proto['source']} test set, σ = {proto['sigma']}, GT {first.get('gt_file', '?')}; mean ± std over "
               f"{len(per_seed)} seed(s); a combination = unweighted sum of min-max scores (training calibration "
               "statistics); validation AUC = the pseudo-anomaly key AUC (no pose on the set)"
               + (f"; AI-VAD quoted from {AIVAD_SOURCE}." if proto["source"] == "ucsd_ped2" else
                  "; AI-VAD reports Ped2, Avenue and ShanghaiTech only (no quoted row here)."))
    with atomic_path(out / "ablation.md") as tmp:
        tmp.write_text(ablation_markdown(table.to_dict("records"), caption))


def run_seed(p: dict, ctx: StageContext, out: Path) -> dict:
    """Train (or load) with ``p["seed"]`` and apply to every test dataset; writes ``out/{model/,
    metrics.json, results.csv}``. Returns ``{"params", "protocol", "info", "results", "table", "model",
    "metrics_json", "timing"}``."""
    from vadlib.data import get_dataset

    t_start = time.perf_counter()

    def _ds(name):
        if name not in ctx.datasets:
            raise ConfigError(f"flow_nf: dataset '{name}' has no entry in params.yaml 'datasets'")
        return get_dataset(name, **ctx.datasets[name])

    src = _ds(p["dataset"])
    if p["flow"].get("ref_size") is None:  # fix the reference size from the source, for transfer
        p["flow"]["ref_size"] = list(src.videos("train")[0].open().size)
    held = held_out(p["validation"], src.name)
    if p["model_in"]:
        model = FlowNFModel.load(p["model_in"])
        info = {"model_in": str(p["model_in"]), "trained_on": model.source}
        print(f"loaded model trained on '{model.source}' from {p['model_in']}")
    else:
        model, info = train_flow_nf(without_videos(src, held) if held else src, p)
    val_scored: list = []
    validation, choice_table = validate(model, src, p, val_scored)
    if validation.get("chosen"):  # the test set is scored once, with what validation chose
        p["sigma"] = validation["chosen"]["sigma"]
        p["fusion"] = dict(validation["chosen"]["fusion"])
        model.params["fusion"] = dict(p["fusion"])
    if not p["model_in"]:
        model.save(out / "model")
        info["model_out"] = str(out / "model")
    sigma = float(p["sigma"]) if p["sigma"] else None
    results, rows = {}, []
    targets = [src.name] + [t for t in (p["transfer"] or []) if t != src.name]
    for name in targets:
        ds = src if name == src.name else _ds(name)
        r = apply_model(model, ds, params_override=p)
        r["metrics"] = evaluate_all(r["scores"], r["labels"], sigma)
        r["gt_file"] = ds.gt_file or "generated (demo annotations)"
        r["transfer"] = f"{model.source} → {name}" if name != model.source else "in-domain"
        results[name] = r
        for meth, m in r["metrics"].items():
            rows.append({"train": model.source, "test": name, "method": meth, "micro_auc": m["micro_auc"],
                         "macro_auc": m["macro_auc"], "micro_ap": m["micro_ap"], "sigma": sigma or 0,
                         "gt_file": r["gt_file"], "n_frames": m["n_frames"]})
    protocol = {
        "sigma": sigma or 0, "normalisation": f"min-max, quantiles {p['norm_quantiles']} of frame scores of "
        "held-out TRAINING (calibration) videos; no test statistics", "micro": "all test frames concatenated",
        "macro": "mean of per-video AUCs, single-class videos skipped", "source": model.source,
        "region_to_frame": "max over regions; frames without regions = lowest calibration region score",
        "precision": "fp32",  # optical flow + Glow, no CLIP encoder: backbone.precision does not apply
    }
    timing = {"seconds_total": time.perf_counter() - t_start, "glow_seconds": info.pop("glow_seconds", None)}
    metrics = {"protocol": protocol, "params": p, "info": {k: v for k, v in info.items() if k != "glow_history"},
               "results": {n: {"gt_file": r["gt_file"], "transfer": r["transfer"],
                               **{m: {k: v for k, v in d.items() if not isinstance(v, (list, dict))}
                                  for m, d in r["metrics"].items()}} for n, r in results.items()}}
    metrics["validation"] = validation
    metrics["rows"] = report_rows(metrics)
    abl = ablation(model, results[src.name], val_scored, p)
    metrics["ablation"] = abl
    write_json(out / "metrics.json", json_safe(metrics))
    import pandas as pd

    with atomic_path(out / "results.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    with atomic_path(out / "validation_choices.csv") as tmp:
        pd.DataFrame(choice_table, columns=None if choice_table else CHOICE_COLUMNS).to_csv(tmp, index=False)
    return {"params": p, "protocol": protocol, "info": info, "results": results, "table": rows, "model": model,
            "metrics_json": metrics, "timing": timing, "validation": validation, "validation_choices": choice_table,
            "ablation": abl}


def ablation(model: FlowNFModel, result: Mapping, val_scored: list, p: Mapping) -> list[dict]:
    """The source's streams alone and combined (:mod:`vadlib.flow.ablation`, AI-VAD's Table 3 format),
    on its test set with the chosen σ, each row's validation key AUC beside (``validation.key_kinds``)."""
    from vadlib.flow.ablation import AIVAD_PED2, STREAMS, ablation_rows

    raw = {k: v for k, v in result["scores"].items() if k in STREAMS}
    vds, vraw = (val_scored + [None, None])[:2]
    return ablation_rows(raw, result["labels"], model.normalizers(), float(p["sigma"]) or None,
                         {k: v for k, v in (vraw or {}).items() if k in STREAMS} or None, vds,
                         list(p["validation"]["key_kinds"]), AIVAD_PED2 if model.source == "ucsd_ped2" else {})


def validate(model: FlowNFModel, src, p: Mapping, scored_set: list | None = None) -> tuple[dict, list[dict]]:
    """Score the source's pseudo-anomaly set (``p["validation"]``) with ``model`` and choose σ and the
    fusion weights among the candidates on it (test is never looked at). Returns ``(block, table)``:
    ``block`` = ``{"auc": the chosen fusion's key AUC, "micro_auc", "<method>": validation metrics +
    key_auc, "chosen": {"sigma", "fusion"}, "held_out", "key_kinds", "set", "note"}`` (``{"note"}``
    alone without a set); ``table`` = the candidate rows (``validation_choices.csv``). A list given
    as ``scored_set`` receives ``(set dataset, raw validation scores)`` (for :func:`ablation`)."""
    from dataclasses import replace

    from vadlib.methods.flow_nf.pipeline import fuse_scores
    from vadlib.validation import choose, validation_metrics
    from vadlib.validation.stage import choice_rows, key_auc, prepare_set

    v = p["validation"]
    vds = prepare_set(src, v)
    if vds is None:
        return {"note": f"no validation set: flow_nf.validation.videos has no entry for '{src.name}'"}, []
    r = apply_model(model, vds, pose=False, params_override=p)
    raw = {k: s for k, s in r["scores"].items() if k != "fusion"}
    if scored_set is not None:
        scored_set.extend([vds, raw])
    kk = list(v["key_kinds"])

    def scored(scores, sigma):
        m = validation_metrics(scores, vds, float(sigma) or None)
        m["key_auc"] = key_auc(m, kk)
        return m

    cands = [(float(s), dict(f)) for s in (v["sigma"] or [p["sigma"]]) for f in (v["fusion"] or [model.params["fusion"]])]
    choice = choose(cands, lambda c: scored(fuse_scores(replace(model, params={**model.params, "fusion": c[1]}), raw),
                                            c[0]), key="key_auc")
    sigma, fusion = choice.best
    block = {"auc": choice.auc, "micro_auc": choice.table[choice.index]["result"]["micro_auc"],
             **{k: scored(s, sigma) for k, s in raw.items()}, "fusion": choice.table[choice.index]["result"],
             "chosen": {"sigma": sigma, "fusion": fusion, "n_candidates": len(cands),
                        "key": f"mean per-kind micro AUC of the fusion over {kk or 'all kinds'}"},
             "held_out": held_out(v, src.name), "key_kinds": kk or list(v["kinds"]),
             "set": {"root": str(vds.root), "name": vds.name},
             "note": "pose has no scores on the set (no pose file): the validation fusion is without pose"
             if "pose" in model.models else ""}
    table = choice_rows(choice, lambda c: {"sigma": c[0], "fusion": json.dumps(c[1], sort_keys=True)})
    print(f"validation ({vds.name}, {len(vds.videos('test'))} videos): fusion key AUC {choice.auc:.3f} "
          f"(sigma {sigma:g}, fusion {fusion}; {len(cands)} candidate(s))")
    return block, table



def caption(res: Mapping, name: str) -> str:
    """The protocol line under every figure of test dataset ``name``."""
    r = res["results"][name]
    return (f"{r['transfer']} · GT: {r['gt_file']} · σ = {res['params']['sigma']} (per video) · normalisation: "
            "min-max with TRAINING (calibration-video) statistics only · micro = all frames pooled, macro = mean "
            "per-video AUC")


def write_figures(res: Mapping, figures: Path) -> list[Path]:
    """Per test dataset: ``loglik_hist_<name>`` (Glow region log-likelihoods and frame log-likelihoods
    per method, normal vs abnormal frames, unsmoothed) and ``timeline_<fusion|flow_nf>_<name>``
    (smoothed, min-max normalised with the training statistics; GT shaded). Returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from vadlib.report.plots import plot_timelines, save_figure
    from vadlib.scoring import gaussian_smooth

    figures.mkdir(parents=True, exist_ok=True)
    sigma = res["params"]["sigma"]
    paths = []
    for name, r in res["results"].items():
        reg = np.concatenate([-r["raw"]["flow_nf_regions"][v] for v in r["labels"]])
        lab = np.concatenate([r["region_labels"][v] for v in r["labels"]]).astype(bool)
        meths = [m for m in ("flow_nf", "velocity", "pose") if m in r["raw"]]
        fig, axes = plt.subplots(1, 1 + len(meths), figsize=(4.2 * (1 + len(meths)), 3.2))
        bins = np.linspace(np.percentile(reg, 0.5), np.percentile(reg, 99.5), 60) if len(reg) else 10
        axes[0].hist(reg[~lab], bins=bins, alpha=0.6, density=True, label="regions in normal frames")
        axes[0].hist(reg[lab], bins=bins, alpha=0.6, density=True, label="regions in abnormal frames")
        axes[0].set(title=f"flow NF region log-likelihood ({name})", xlabel="nats/dim")
        axes[0].legend(fontsize=7)
        y = np.concatenate([r["labels"][v] for v in r["labels"]]).astype(bool)
        for ax, m in zip(axes[1:], meths):
            s = -np.concatenate([r["raw"][m][v] for v in r["labels"]])
            b = np.linspace(np.percentile(s, 0.5), np.percentile(s, 99.5), 60)
            ax.hist(s[~y], bins=b, alpha=0.6, density=True, label="normal frames")
            ax.hist(s[y], bins=b, alpha=0.6, density=True, label="abnormal frames")
            ax.set(title=f"{m}: frame log-likelihood (min over regions)", xlabel="log-likelihood")
            ax.legend(fontsize=7)
        fig.text(0.01, 0.005, caption(res, name) + " · histograms: unsmoothed", fontsize=6, color="0.3")
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        save_figure(fig, figures / f"loglik_hist_{name}.png")
        paths.append(figures / f"loglik_hist_{name}.png")
    norms = res["model"].normalizers()
    for name, r in res["results"].items():
        for m in ("fusion", "flow_nf"):
            s = r["scores"][m] if m == "fusion" else norms[m].transform(r["scores"][m])
            s = gaussian_smooth(s, sigma or None)
            fig = plot_timelines(s, r["labels"], ncols=3, title=f"{m} ({r['transfer']}, {name})",
                                 caption=caption(res, name))
            save_figure(fig, figures / f"timeline_{m}_{name}.png")
            paths.append(figures / f"timeline_{m}_{name}.png")
    return paths


def run_notebook_params(params: Mapping[str, Any] | None = None) -> dict:
    """What ``notebooks/flow_nf.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s)."""
    section, ctx = split_params(notebook_params(params, STAGE), STAGE)
    return run(section, ctx)
