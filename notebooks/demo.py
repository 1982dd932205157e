# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Demo benchmark
# Generates the synthetic two-scene surveillance benchmark (`vadlib.data.demo`): people walking
# along walkways (normal) and five anomaly classes, written in the layouts real datasets use
# (video files, frames folders, frame labels, per-frame classes, pixel masks, a manifest).
# Deterministic from `seed`.

# %% tags=["parameters"]
root = "data/demo"
seed = 0
size = "small"
out_dir = "reports/demo"

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from vadlib.data import get_dataset
from vadlib.data.demo import generate_demo
from vadlib.report.plots import save_figure

generate_demo(root, seed=seed, size=size)
Path(out_dir).mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## What was generated

# %%
import pandas as pd

rows = []
datasets = {name: get_dataset(name, root=root) for name in ("demo_a", "demo_b")}
for name, ds in datasets.items():
    for split in ("train", "test"):
        for v in ds.videos(split):
            rows.append({"dataset": name, "split": split, "video": v.name, "label": v.label,
                         "class": v.class_name, "frames": v.num_frames,
                         "anomalous frames": None if v.frame_labels is None else int(v.frame_labels.sum())})
summary = pd.DataFrame(rows)
summary.groupby(["dataset", "split", "class"]).agg(videos=("video", "count"), frames=("frames", "sum"))

# %% [markdown]
# ## Anomalous frames of each scene's test videos (mask outlined in red)

# %%
import cv2

for name, ds in datasets.items():
    vids = [v for v in ds.videos("test") if v.label == 1]
    fig, axes = plt.subplots(1, len(vids), figsize=(2.6 * len(vids), 2.4), squeeze=False)
    for ax, v in zip(axes[0], vids):
        t = int(np.flatnonzero(v.frame_labels)[len(np.flatnonzero(v.frame_labels)) // 2])
        frame = v.open().get([t])[0].copy()
        mask = v.masks()[t].astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(frame, contours, -1, (255, 0, 0), 1)
        ax.imshow(frame)
        ax.set_title(f"{v.name}\n{v.class_name} (frame {t})", fontsize=7)
        ax.axis("off")
    fig.suptitle(f"{name}", fontsize=9)
    save_figure(fig, Path(out_dir) / f"{name}_anomalies")
