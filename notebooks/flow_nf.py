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
# * **Moving regions** from frame differencing (Reiss & Hoshen's motion boxes; the flow-magnitude mask
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
# dataset in `transfer`.

# %% tags=["parameters"]
dataset = "demo_a"
transfer = ["demo_b"]
model_in = None
cache = "data/flow"
workers = 2
sigma = 3
calib_every = 5
norm_quantiles = [0.0, 0.999]
naive_top = 0.01
flow = {"method": "dis", "preset": "medium", "ref_size": None, "quant": 32}
regions = {}
patch = {"size": 8, "stack": 1, "rescale": False}
glow = {"K": 8, "L": 1, "hidden": 64, "epochs": 12, "batch_size": 256, "lr": 0.001, "noise": 0.03, "max_train": 30000}
velocity = {"bins": 1, "n_components": 2}
pose = {"model": "pose_flow", "normalize": "none", "files": {}, "K": 8, "hidden": 64, "epochs": 20, "k": 1}
fusion = {"flow_nf": 1.0, "velocity": 1.0, "pose": 1.0}
seed = 0
datasets = {"demo_a": {"root": "data/demo"}, "demo_b": {"root": "data/demo"}}
out_dir = "reports/flow_nf"
reports = "reports"
item = ""
stage = "flow_nf"
backbone = {}

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from vadlib.flow.pipeline import run_flow_nf
from vadlib.report.plots import plot_timelines, save_figure
from vadlib.scoring import gaussian_smooth

torch.set_num_threads(max(1, int(workers)))
out = Path(out_dir)
(out / "figures").mkdir(parents=True, exist_ok=True)
params = dict(dataset=dataset, transfer=transfer, model_in=model_in, cache=cache, workers=workers, seed=seed,
              sigma=sigma, calib_every=calib_every, norm_quantiles=norm_quantiles, naive_top=naive_top, flow=flow,
              regions=regions, patch=patch, glow=glow, velocity=velocity, pose=pose, fusion=fusion)
res = run_flow_nf(params, datasets, out)
src = res["model"].source
print(f"total stage time {res['info']['seconds_total']:.1f} s; model: {res['info'].get('model_out', model_in)}")


def caption(name: str) -> str:
    r = res["results"][name]
    return (f"{r['transfer']} · GT: {r['gt_file']} · σ = {sigma} (per video) · normalisation: min-max with "
            f"TRAINING (calibration-video) statistics only · micro = all frames pooled, macro = mean per-video AUC")


# %% [markdown]
# ## Results: frame-level micro and macro AUC
# Every row is smoothed with the same σ; the fusion uses the normalisers fitted on the source's
# calibration (training) videos, also on transfer targets.

# %%
table = pd.DataFrame(res["table"])
for name in res["results"]:
    print(caption(name))
table.pivot_table(index=["train", "test", "method"], values=["micro_auc", "macro_auc", "micro_ap"], sort=False).round(4)

# %% [markdown]
# ## Normal vs abnormal log-likelihoods
# Left: Glow log-likelihood (nats/dim) of every region of the source's test videos, split by the
# frame's GT label. Right: frame-level scores (before smoothing) per method.

# %%
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
    fig.text(0.01, 0.005, caption(name) + " · histograms: unsmoothed", fontsize=6, color="0.3")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    save_figure(fig, out / "figures" / f"loglik_hist_{name}.png")
    plt.show()

# %% [markdown]
# ## Score timelines
# Smoothed (σ as above) and min-max normalised with the training statistics; GT anomalies shaded.

# %%
norms = res["model"].normalizers()
for name, r in res["results"].items():
    for m in ("fusion", "flow_nf"):
        s = r["scores"][m] if m == "fusion" else norms[m].transform(r["scores"][m])
        s = gaussian_smooth(s, sigma or None)
        fig = plot_timelines(s, r["labels"], ncols=3, title=f"{m} ({r['transfer']}, {name})", caption=caption(name))
        save_figure(fig, out / "figures" / f"timeline_{m}_{name}.png")
        plt.show()

# %% [markdown]
# ## Run facts
# Flow extraction speed, number of regions, training sizes, and the saved model's path. The
# metrics and the protocol are in `metrics.json`, the table in `results.csv`.

# %%
info = {k: v for k, v in res["info"].items() if k != "glow_history"}
pd.Series({k: (v if not isinstance(v, list) else ", ".join(map(str, v))) for k, v in info.items()}, dtype=object)
