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
# nothing here looks at the test set before the final evaluation. The stage's logic and every output it
# writes are in `vadlib.stages.train_mil`; this notebook shows them.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's train_mil section + seed, backbone, datasets, item, out_dir (empty: read params.yaml)

# %%
import pandas as pd
from IPython.display import Image, display

from vadlib.report.plots import protocol_caption
from vadlib.stages import train_mil

res = train_mil.run_notebook_params(params)
figures = {path.stem: path for path in res["figures"]}
history = pd.DataFrame(res["train"]["history"])
history.tail()

# %% [markdown]
# ## Training curves (loss terms; validation = weak video labels of held-out training videos)

# %%
if "training" in figures:
    display(Image(filename=str(figures["training"])))

# %% [markdown]
# ## Frame-level detection

# %%
print(protocol_caption(res["protocol"]))
det = res["detection"]
pd.DataFrame([{k: det[k] for k in ("micro_auc", "macro_auc", "micro_ap", "macro_ap", "n_frames", "n_videos")}])

# %% [markdown]
# ## Over seeds: one training per seed of `seeds`; `metrics.json` holds the mean, `<key>_std` (sample std),
# `_min`, `_max` and `n_seeds`; each seed's files are in `seeds/seed_<k>/`. The sections above and below
# show the first seed. Training wall times are in `timing.json` beside `metrics.json` (not a DVC output:
# they differ on every run).

# %%
pd.DataFrame(res["metrics"]["per_seed"]).T

# %% [markdown]
# ## Recognition (AnomalyCLIP only): mAUC / mAP, top-1 / top-5 per class

# %%
recog = res["recognition"]
if recog is not None:
    print({k: recog[k] for k in ("mAUC", "mAP", "top1", "top5")})
    display(pd.DataFrame({"AUC": recog["per_class_auc"], "AP": recog["per_class_ap"],
                          "top1": recog["top1_per_class"], "top5": recog["top5_per_class"],
                          "frames": recog["class_counts"]}))
else:
    print("no class probabilities (MIL baseline) or no per-frame classes: recognition skipped")
res["metrics"]

# %% [markdown]
# ## ROC / PR and score timelines (GT anomalies shaded, predicted class as dots)

# %%
display(Image(filename=str(figures["roc_pr"])))
display(Image(filename=str(figures["timelines"])))
