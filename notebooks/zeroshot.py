# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # CLIP zero-shot scoring
# Per-frame CLIP image features (from the feature store) against the dataset's text prompts:
#
# * **softmax** (the headline score): `a_t = 1 − p_t(normal)`, `p_t = softmax([cos(f_t, N_j); cos(f_t, A_i)] / τ)`;
# * **max_cos**: `S(t) = max_i cos(f_t, A_i)` over the semantic anomaly prompts;
# * per frame the predicted class (normal prompts summed vs each anomaly class).
#
# Nothing here is fitted: no statistic of the test set enters a score (σ is fixed in params).

# %% tags=["parameters"]
item = "demo_a"
run_on = ["demo_a"]
score = "softmax"
backbone = {"name": "vadlib-tiny", "pretrained": "random", "device": "cpu"}
datasets = {"demo_a": {"root": "data/demo"}}
tau = 0.01
sigma = 0
templates = ["{}."]
prompts = {}
out_dir = "reports/zeroshot/demo_a"
reports = "reports"

# %%
import json
from pathlib import Path

import numpy as np
import pandas as pd

from vadlib.data import get_dataset
from vadlib.features import load_backbone
from vadlib.features.store import FeatureStore
from vadlib.io import write_json
from vadlib.metrics import evaluate_frames, json_safe, pr_curve_points, recognition_metrics, roc_curve_points
from vadlib.models.prompts import PromptSet
from vadlib.models.zeroshot import ZeroShotScorer, predict_store
from vadlib.report.plots import plot_roc_pr, plot_timelines, protocol_caption, save_figure
from vadlib.scoring import gaussian_smooth

out = Path(out_dir)
(out / "figures").mkdir(parents=True, exist_ok=True)
dataset = get_dataset(item, **datasets[item])
store_info = json.loads((Path(reports) / "extract" / item / "store.json").read_text())
store = FeatureStore.open(store_info["store"])
bb = load_backbone(backbone["name"], backbone["pretrained"], device=backbone.get("device", "cpu"))
assert store.info["backbone"] == bb.name, f"store {store.path} was made with {store.info['backbone']}, not {bb.name}"
if item not in prompts:
    raise KeyError(f"params.yaml: zeroshot.prompts has no entry for dataset '{item}'")
prompt_set = PromptSet.from_params(prompts[item], templates=templates, where=f"zeroshot.prompts.{item}")
scorer = ZeroShotScorer(bb, prompt_set, tau=tau)
test = dataset.videos("test")
preds = predict_store(store, scorer, test)
labels = {v.name: v.frame_labels for v in test}
real = bool(bb.real_weights)
if not real:
    print("WARNING — RANDOM WEIGHTS: these scores check the plumbing only.")

# %% [markdown]
# ## Frame-level detection

# %%
results, rows = {}, []
for name, p in preds.items():
    m = evaluate_frames(p.scores(), labels, sigma=sigma or None)
    results[name] = m
    rows.append({"score": name, **{k: m[k] for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap")}})
table = pd.DataFrame(rows).set_index("score")
protocol = {"method": f"zeroshot ({score})", "dataset": item, "gt_file": dataset.gt_file or "generated (demo annotations)", "sigma": sigma,
            "ap_definition": "sklearn average_precision_score", "backbone": f"{bb.name}/{bb.pretrained}",
            "real_weights": real, "split": "test", "tau": tau,
            "sampling": f"{store.info.get('sampling')} stride {store.info.get('stride')}",
            "precision": store.info.get("precision", "fp32"), "precision_reason": store.info.get("precision_reason")}
print(protocol_caption({**protocol, "score": score}))
table

# %% [markdown]
# ## Recognition (which class)

# %%
classes = {v.name: v.frame_classes for v in test if v.frame_classes is not None}
names_ds = dataset.class_names
recog = None
if classes and set(scorer.class_names[1:]) <= set(names_ds[1:]):
    # map the scorer's columns onto the dataset's class ids
    order = [scorer.class_names.index(c) if c in scorer.class_names else None for c in names_ds]
    probs = {v: np.stack([p.class_probs[:, j] if j is not None else np.zeros(len(p.scores))
                          for j in order], 1) for v, p in preds["softmax"].videos.items()}
    recog = recognition_metrics(classes, probs, names_ds)
    print({k: recog[k] for k in ("mAUC", "mAP", "top1", "top5")})
else:
    print("prompt classes do not match the dataset's classes: recognition metrics skipped")

# %%
headline = results[score]
other = next(n for n in results if n != score)
metrics = {"micro_auc": headline["micro_auc"], "macro_auc": headline["macro_auc"],
           "micro_ap": headline["micro_ap"], "macro_ap": headline["macro_ap"],
           f"{other}_micro_auc": results[other]["micro_auc"], f"{other}_micro_ap": results[other]["micro_ap"],
           "n_frames": headline["n_frames"], "n_videos": headline["n_videos"]}
if recog is not None:
    metrics.update(mauc=recog["mAUC"], map=recog["mAP"], top1=recog["top1"], top5=recog["top5"],
                   per_class_auc=recog["per_class_auc"])
write_json(out / "metrics.json", json_safe({**metrics, "protocol": protocol}))
smoothed = gaussian_smooth(preds[score].scores(), sigma) if sigma else preds[score].scores()
all_s = np.concatenate([smoothed[v] for v in labels])
all_y = np.concatenate([labels[v] for v in labels])
for fname, df in (("roc.csv", roc_curve_points(all_s, all_y)), ("pr.csv", pr_curve_points(all_s, all_y))):
    df.to_csv(out / fname, index=False)
preds[score].meta.update(protocol)
preds[score].save(out / "predictions.npz")
metrics

# %% [markdown]
# ## ROC / PR and score timelines (GT anomalies shaded)

# %%
caption = protocol_caption({**protocol, "score": score})
fig = plot_roc_pr({n: (np.concatenate([p.scores()[v] for v in labels]), all_y) for n, p in preds.items()},
                  title=f"zero-shot — {item}", real_weights=real, caption=caption)
save_figure(fig, out / "figures" / "roc_pr")

# %%
pred_cls = {v: p.class_probs.argmax(1) for v, p in preds["softmax"].videos.items()}
fig = plot_timelines(smoothed, labels, classes=pred_cls, class_names=scorer.class_names,
                     title=f"zero-shot {score} score — {item}", real_weights=real, caption=caption)
save_figure(fig, out / "figures" / "timelines")
