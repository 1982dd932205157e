# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Weakly supervised training: AnomalyCLIP and MIL baselines
# Video-level labels in (training split), frame anomaly scores and anomaly classes out (test split).
#
# * **anomalyclip** (Zanella et al. 2024): selector on CLIP class directions + axial transformer
#   over 32 segments × 16 frames; frame score `p(A|x)`, class distribution `p(c, A|x)`;
# * **sultani** (MIL ranking, 32 segments) and **rtfm** (feature-magnitude top-k) baselines (scores only).
#
# The checkpoint is chosen on a validation split drawn from the TRAINING videos (video labels only);
# nothing here looks at the test set before the final evaluation.

# %% tags=["parameters"]
item = "demo_a"
run_on = ["demo_a"]             # the datasets the stage runs on (dvc foreach); one per notebook run
seed = 0
backbone = {"name": "vadlib-tiny", "pretrained": "random", "device": "cpu"}
datasets = {"demo_a": {"root": "data/demo"}}
method = "anomalyclip"          # anomalyclip | sultani | rtfm
preset = "demo"                 # shanghaitech | ucf_crime | xd_violence | demo, or {dataset: preset}
overrides = {}                  # config keys to change, e.g. {"epochs": 10}
classes = None                  # the configured class list (default: the dataset's)
val_fraction = 0.2
checkpoint_in = ""              # evaluate this checkpoint instead of training
timelines = 6
out_dir = "reports/train_mil/demo_a"
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
from vadlib.report.plots import plot_roc_pr, plot_timelines, protocol_caption, save_figure
from vadlib.train import run_train_mil

if isinstance(preset, dict):
    if item not in preset:
        raise KeyError(f"params.yaml: train_mil.preset has no entry for dataset '{item}' (has: {sorted(preset)})")
    preset = preset[item]
out = Path(out_dir)
(out / "figures").mkdir(parents=True, exist_ok=True)
dataset = get_dataset(item, **datasets[item])
store_info = json.loads((Path(reports) / "extract" / item / "store.json").read_text())
store = FeatureStore.open(store_info["store"])
bb = load_backbone(backbone["name"], backbone["pretrained"], device=backbone.get("device", "cpu")) \
    if method == "anomalyclip" else None
real = bool(store.info.get("real_weights", True))
if not real:
    print("WARNING — RANDOM WEIGHTS: the features come from a random-weight backbone; figures check the plumbing only.")

# %%
res = run_train_mil(method, preset, dataset, store, overrides=overrides, class_names=classes, seed=seed,
                    val_fraction=val_fraction, backbone=bb, checkpoint_in=checkpoint_in or None,
                    checkpoint_out=None if checkpoint_in else out / "model.pt")
preds = res["predictions"]
if checkpoint_in and Path(checkpoint_in).resolve() != (out / "model.pt").resolve():
    import shutil

    from vadlib.io import atomic_path

    with atomic_path(out / "model.pt") as tmp:   # the evaluated checkpoint is this stage's model output
        shutil.copyfile(checkpoint_in, tmp)
history = pd.DataFrame(res["history"])
print(f"best epoch {res['best_epoch']} (chosen on {res['n_val']} validation TRAINING videos); "
      f"{res['seconds']:.1f} s; checkpoint {res['checkpoint']}")
history.tail()

# %% [markdown]
# ## Training curves (loss terms; validation = weak video labels of held-out training videos)

# %%
if len(history):
    import matplotlib.pyplot as plt

    terms = [c for c in history.columns if c not in ("epoch", "lr", "seconds") and not c.startswith("val_")]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    history.plot(x="epoch", y=terms, ax=axes[0], logy=False, title="training loss terms")
    vals = [c for c in history.columns if c.startswith("val_")]
    if vals:
        history.plot(x="epoch", y=vals, ax=axes[1], title="validation (training videos)")
    save_figure(fig, out / "figures" / "training")

# %% [markdown]
# ## Frame-level detection

# %%
test = dataset.videos("test")
labels = {v.name: v.frame_labels for v in test}
det = evaluate_frames(preds.scores(), labels)
protocol = {"dataset": item, "gt_file": dataset.gt_file or "generated", "method": method, "preset": preset,
            "seed": seed, "backbone": store.info.get("backbone"), "real_weights": real, "split": "test",
            "ap_definition": "sklearn average_precision_score", "selection": "validation split of training videos",
            "precision": store.info.get("precision", "fp32"), "precision_reason": store.info.get("precision_reason")}
print(protocol_caption(protocol))
pd.DataFrame([{k: det[k] for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "n_frames", "n_videos")}])

# %% [markdown]
# ## Recognition (AnomalyCLIP only): mAUC / mAP, top-1 / top-5 per class

# %%
recog = None
frame_classes = {v.name: v.frame_classes for v in test if v.frame_classes is not None}
first = next(iter(preds.videos.values()))
if first.class_probs is not None and len(frame_classes) == len(test):
    recog = recognition_metrics(frame_classes, {k: v.class_probs for k, v in preds.videos.items()},
                                preds.class_names)
    per_class = pd.DataFrame({"AUC": recog["per_class_auc"], "AP": recog["per_class_ap"],
                              "top1": recog["top1_per_class"], "top5": recog["top5_per_class"],
                              "frames": recog["class_counts"]})
    print({k: recog[k] for k in ("mAUC", "mAP", "top1", "top5")})
    display(per_class)  # noqa: F821
else:
    print("no class probabilities (MIL baseline) or no per-frame classes: recognition skipped")

# %%
metrics = {k: det[k] for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "n_frames", "n_videos")}
metrics.update(best_epoch=res["best_epoch"], train_seconds=res["seconds"], n_train=res["n_train"], n_val=res["n_val"])
if recog is not None:
    metrics.update(mauc=recog["mAUC"], map=recog["mAP"], top1=recog["top1"], top5=recog["top5"])
write_json(out / "metrics.json", json_safe({**metrics, "protocol": protocol, "config": res["config"]}))
all_s = np.concatenate([preds.scores()[v] for v in labels])
all_y = np.concatenate([labels[v] for v in labels])
roc_curve_points(all_s, all_y).to_csv(out / "roc.csv", index=False)
pr_curve_points(all_s, all_y).to_csv(out / "pr.csv", index=False)
preds.meta.update(protocol)
preds.save(out / "predictions.npz")
metrics

# %% [markdown]
# ## ROC / PR and score timelines (GT anomalies shaded, predicted class as dots)

# %%
caption = protocol_caption(protocol)
fig = plot_roc_pr({method: (all_s, all_y)}, title=f"{method} — {item}", real_weights=real, caption=caption)
save_figure(fig, out / "figures" / "roc_pr")

# %%
shown = [v.name for v in test if v.frame_labels is not None and v.frame_labels.any()][:timelines]
pred_cls = None
if first.class_probs is not None:
    # predicted class per frame: argmax of the C-way distribution (normal unless some p(c, A|x) > 1 − p(A|x))
    pred_cls = {k: v.class_probs.argmax(1) for k, v in preds.videos.items()}
fig = plot_timelines(preds.scores(), labels, videos=shown, classes=pred_cls, class_names=preds.class_names,
                     title=f"{method} p(anomaly) — {item}", real_weights=real, caption=caption)
save_figure(fig, out / "figures" / "timelines")
