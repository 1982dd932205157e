# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Zero-shot cross-dataset transfer (VideoAnomalyCLIP)
# For every (source, target) pair: train on the **source**'s training videos (CLIP features from the
# feature store), then score the **target**'s test videos with **no target data** anywhere — no
# fitting, no normalisation, no σ or τ choice on the target. At test the target's anomalies are
# described in natural language (`transfer.prompts.<target>`, changeable with
# `dvc exp run -S 'transfer.prompts.<target>=[...]'`).
#
# * **full** — temporal module trained on the source (generic prompts, MIL or normal-only), target semantic prompts;
# * **no_temporal** — no temporal module (V = CLIP feature), target semantic prompts;
# * **generic_prompts** — temporal module, but the source-learned generic prompts at test;
# * **clip_zeroshot** — plain CLIP zero-shot with the target semantic prompts.
#
# Scores: `calibrated` = log-odds of `a_t = Σ_{i∈A} softmax([cos(V_t, N); cos(V_t, A)] / τ)_i` (headline),
# `max_cos` = `S(t) = max_i cos(V_t, T_i)`. Frame-level micro AUC / AP.

# %% tags=["parameters"]
seed = 0
backbone = {"name": "vadlib-tiny", "pretrained": "random", "device": "cpu"}
datasets = {"demo_a": {"root": "data/demo"}, "demo_b": {"root": "data/demo"}}
pairs = [["demo_a", "demo_b"]]
variants = ["full", "no_temporal", "generic_prompts", "clip_zeroshot"]
score = "calibrated"
tau = 0.01
sigma = 0
templates = ["{}."]
generic_prompts = {"normal": "a normal scene", "abnormal": "an abnormal event"}
normal_prompts = {}
prompts = {"demo_b": ["a person riding a bicycle on the walkway"]}
temporal = {}
prompt_learning = {}
train = {}
features = {}
num_threads = 1
reports = "reports"
out_dir = "reports/transfer"
item = ""
stage = "transfer"

# %%
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vadlib.data import get_dataset
from vadlib.errors import ConfigError
from vadlib.features import load_backbone
from vadlib.io import atomic_path, write_json
from vadlib.models.transfer import (TargetPrompts, TransferConfig, fired_summary, load_videos, open_store_for,
                                    plot_transfer, run_transfer, save_transfer_model, source_target_matrix,
                                    text_encoder_for, transfer_matrix)
from vadlib.report.plots import protocol_caption, save_figure
from vadlib.train import feature_spec

if num_threads:
    torch.set_num_threads(num_threads)
torch.manual_seed(seed)
out = Path(out_dir)
(out / "figures").mkdir(parents=True, exist_ok=True)
cfg = TransferConfig.from_params({"temporal": temporal, "prompt_learning": prompt_learning,
                                  "train": {"seed": seed, **train}, "generic_prompts": generic_prompts,
                                  "templates": templates, "tau": tau, "sigma": sigma, "variants": variants,
                                  "device": backbone.get("device", "cpu")})
bb = load_backbone(backbone["name"], backbone["pretrained"], device=backbone.get("device", "cpu"))
real = bool(bb.real_weights)
if not real:
    print("WARNING — RANDOM WEIGHTS: these scores check the plumbing only.")
names = sorted({d for p in pairs for d in p})
missing = [d for d in names if d not in datasets]
if missing:
    raise ConfigError(f"params.yaml: datasets has no entry for {missing}")
data = {d: get_dataset(d, **datasets[d]) for d in names}
stores = {d: open_store_for(d, reports, features) for d in names}
for d, st in stores.items():
    if st.info.get("backbone") != bb.name:
        raise ConfigError(f"feature store of '{d}' was made with {st.info.get('backbone')}, not {bb.name}")
target_prompts = {}
for src, tgt in pairs:
    if tgt not in prompts:
        raise ConfigError(f"params.yaml: transfer.prompts has no semantic prompts for target '{tgt}'")
    target_prompts[tgt] = TargetPrompts.from_params(
        prompts[tgt], default_normal=normal_prompts.get(tgt, [generic_prompts["normal"]]),
        where=f"transfer.prompts.{tgt}")
pd.DataFrame([{"target": t, "normal prompts": "; ".join(p.normal), "anomaly prompts": "; ".join(p.anomaly.values())}
              for t, p in target_prompts.items()])

# %% [markdown]
# ## Train on each source, test on each target

# %%
loaded = {}


def load(name, split):
    if (name, split) not in loaded:
        loaded[(name, split)] = load_videos(stores[name], data[name].videos(split))
    return loaded[(name, split)]


result = run_transfer(pairs, load, target_prompts, cfg, text_encoder_for(bb, templates), backbone=bb)
table = result.table
# each source's trained model ("full" variant), for `vadlib detect --method transfer --checkpoint transfer@SOURCE`
model_params = {"temporal": temporal, "prompt_learning": prompt_learning, "train": {"seed": seed, **train},
                "generic_prompts": generic_prompts, "templates": templates, "tau": tau, "sigma": sigma,
                "variants": variants}
for src_name, trained in result.models.items():
    save_transfer_model(out / "model" / f"{src_name}.pt", trained, model_params, src_name,
                        feature_spec(stores[src_name].info))
training = pd.DataFrame([{"source": k[0], "model": k[1], "mixing": k[2], "objective": v["objective"],
                          "epochs": len(v["losses"]), "final loss": v["losses"][-1] if v["losses"] else np.nan,
                          "seconds": round(v["seconds"], 1)} for k, v in result.training.items()])
training

# %% [markdown]
# ## The transfer matrix (micro frame AUC / AP)

# %%
protocol = {"split": "source: train (weak video labels or normal only) → target: test", "gt_file": {
    t: data[t].gt_file or "generated (demo annotations)" for _, t in pairs}, "sigma": sigma,
    "ap_definition": "sklearn average_precision_score", "backbone": f"{bb.name}/{bb.pretrained}",
    "real_weights": real, "tau": tau, "score": score, "micro": True,
    "temporal": cfg.temporal.to_dict(), "train": {k: getattr(cfg.train, k) for k in cfg.train.__dataclass_fields__},
    "prompt_learning": None if cfg.prompt_learning is None else cfg.prompt_learning.to_dict(),
    "sampling": {d: f"{stores[d].info.get('sampling')} stride {stores[d].info.get('stride')}" for d in names},
    "windows": "clip_length/stride count feature rows, not frames",
    "precision": {d: stores[d].info.get("precision", "fp32") for d in names}}
auc, ap = transfer_matrix(table, score, "micro_auc"), transfer_matrix(table, score, "micro_ap")
md = pd.concat([auc.add_prefix("AUC ").round(4), ap.add_prefix("AP ").round(4)], axis=1)
with atomic_path(out / "transfer_matrix.csv") as tmp:
    table.to_csv(tmp, index=False)
with atomic_path(out / "transfer_matrix.md") as tmp:
    tmp.write_text(f"Transfer matrix — micro frame AUC / AP, score `{score}`"
                   f"{'' if real else ' — RANDOM WEIGHTS (plumbing only)'}\n\n" + md.to_markdown() + "\n\n"
                   + protocol_caption({**protocol, "dataset": ", ".join(f"{s}→{t}" for s, t in pairs),
                                       "gt_file": "; ".join(f"{k}: {v}" for k, v in protocol["gt_file"].items())}) + "\n")
md

# %%
metrics = {"pairs": {f"{s}->{t}": {v: {"micro_auc": float(auc.loc[v, f"{s}→{t}"]), "micro_ap": float(ap.loc[v, f"{s}→{t}"])}
                                   for v in auc.index} for s, t in pairs},
           "headline": {f"{s}->{t}": float(auc.loc["full", f"{s}→{t}"]) for s, t in pairs if "full" in auc.index},
           "protocol": protocol,
           "prompts": {t: {"normal": p.normal, "anomaly": p.anomaly} for t, p in target_prompts.items()}}
write_json(out / "metrics.json", metrics)
for (s, t, v), p in result.predictions.items():
    p.meta.update({"real_weights": real, "backbone": f"{bb.name}/{bb.pretrained}"})
    p.save(out / "predictions" / f"{s}__{t}__{v}.npz")
metrics["headline"]

# %%
caption = protocol_caption({"dataset": ", ".join(f"{s}→{t}" for s, t in pairs), "sigma": sigma,
                            "ap_definition": protocol["ap_definition"], "backbone": protocol["backbone"],
                            "real_weights": real, "score": score})
fig = plot_transfer(table, score, real_weights=real, caption=caption)
save_figure(fig, out / "figures" / "transfer_heatmap")
with atomic_path(out / "transfer_heatmap.png") as tmp:
    import shutil

    shutil.copyfile(out / "figures" / "transfer_heatmap.png", tmp)

# %% [markdown]
# ## Which prompt fired (full model, per target)
# Fraction of GT-anomalous and of normal target frames assigned to each prompt (`normal` when the
# normal prompts' calibrated probability is ≥ 0.5).

# %%
fired = {}
for s, t in pairs:
    if (s, t, "full") in result.predictions:
        fired[f"{s}→{t}"] = fired_summary(result.predictions[(s, t, "full")], load(t, "test")).round(3)
pd.concat(fired, axis=1) if fired else "no full-model predictions"
