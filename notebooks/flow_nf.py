# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Optical-flow normalizing flows, velocity and pose (`flow_nf`)
# An anomaly is motion that a density model of *normal* motion finds unlikely (methods.md §5–§6).
#
# * **Optical flow** (OpenCV DIS by default) between consecutive frames, at a fixed *reference
#   size* (the source dataset's), cached once per dataset as float16.
# * **Moving regions** from frame differencing (Reiss & Hoshen's motion boxes, or with `regions.boxes: contours`
#   their whole recipe: detector boxes ∪ blurred-difference contours; the flow-magnitude mask
#   is an option, used for the demo scenes) → connected components, minimum area, merging — one
#   region policy per source dataset (`regions`), shared by flow patches and velocity.
# * **Flow NF**: Glow (ActNorm, LU 1×1 conv, affine coupling; K steps, L levels) on the flow patch of
#   each region; region score = −log-likelihood (nats/dim); frame score = max over regions.
# * **Velocity**: magnitude-weighted orientation histogram per region (Reiss & Hoshen), Gaussian
#   mixture. **Pose**: the dataset's keypoint file (per frame, per object, no boxes) with a small
#   normalizing flow on 34-d vectors. **Naive**: per frame, mean of the top 1 % flow magnitudes.
# * **Fusion**: weighted sum of min-max normalised scores; normalisation statistics come from
#   held-out TRAINING videos only. All methods are smoothed per video with the same σ.
#
# The model trained on `dataset` is saved (`model/`) and applied without retraining to every
# dataset in `transfer`. The stage's logic and every output it writes are in `vadlib.stages.flow_nf`;
# this notebook shows them.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's flow_nf section + seed, datasets, out_dir (empty: read params.yaml)

# %%
import pandas as pd
from IPython.display import Image, display

from vadlib.stages import flow_nf

res = flow_nf.run_notebook_params(params)
print(f"model: {res['info'].get('model_out', res['params']['model_in'])}")

# %% [markdown]
# ## Results: frame-level micro and macro AUC
# Mean over the training seeds (`seeds`; `_std` = sample std, `n_seeds`); each seed's files are in
# `seeds/seed_<k>/`; the untrained `naive` baseline has one value. Figures and run facts below are the
# first seed's. Wall times (total, Glow training) are in `timing.json`, not a DVC output.
# Every row is smoothed with the same σ; the fusion uses the normalisers fitted on the source's
# calibration (training) videos, also on transfer targets.

# %%
table = pd.DataFrame(res["table"])
for name in res["results"]:
    print(flow_nf.caption(res, name))
table.pivot_table(index=["train", "test", "method"], values=[c for c in ("micro_auc", "micro_auc_std", "macro_auc",
                  "micro_ap", "n_seeds") if c in table], sort=False).round(4)

# %% [markdown]
# ## Validation without the test set
# Pseudo-anomalies (skip, reverse, freeze, patch, object) made from the held-out TRAINING videos
# `validation.videos`, scored by the same model: micro AUC per kind and the key AUC (mean over
# `validation.key_kinds`) that chose σ / fusion weights among the candidates (table below; one row
# when no candidates are given). The test set was scored once, with the chosen row.

# %%
val = res["validation"]
print(val.get("note") or f"held out: {', '.join(val['held_out'])} · chosen: {val['chosen']}")
display(pd.DataFrame({m: {"key_auc": val[m]["key_auc"], "micro_auc": val[m]["micro_auc"], **val[m]["per_kind"]}
                      for m in ("naive", "flow_nf", "velocity", "fusion") if m in val}).T.round(4))
pd.DataFrame(res["validation_choices"])

# %% [markdown]
# ## The streams alone and combined (AI-VAD's Table 3 format)
# Micro / macro test AUC of each stream and each unweighted sum of min-max scores, the validation key
# AUC beside (no pose on the pseudo-anomaly set), and Reiss & Hoshen's own Ped2 rows quoted
# (`ablation.csv`, `ablation.md`; mean ± std over seeds).

# %%
from IPython.display import Markdown

Markdown((res["out_dir"] / "ablation.md").read_text())

# %% [markdown]
# ## Normal vs abnormal log-likelihoods
# Left: Glow log-likelihood (nats/dim) of every region of the source's test videos, split by the
# frame's GT label. Right: frame-level scores (before smoothing) per method.

# %%
for path in res["figures"]:
    if path.name.startswith("loglik_hist_"):
        display(Image(filename=str(path)))

# %% [markdown]
# ## Score timelines
# Smoothed (σ as above) and min-max normalised with the training statistics; GT anomalies shaded.

# %%
for path in res["figures"]:
    if path.name.startswith("timeline_"):
        display(Image(filename=str(path)))

# %% [markdown]
# ## Run facts
# Flow extraction speed, number of regions, training sizes, and the saved model's path. The
# metrics and the protocol are in `metrics.json`, the table in `results.csv`.

# %%
info = {k: v for k, v in res["info"].items() if k != "glow_history"}
pd.Series({k: (v if not isinstance(v, list) else ", ".join(map(str, v))) for k, v in info.items()}, dtype=object)
