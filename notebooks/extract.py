# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # CLIP feature extraction
# Streams the frames of every video of one dataset through the frozen open_clip backbone and
# writes one feature file per video plus an index (backbone, pretrained tag, preprocessing,
# sampling, crops) into the feature store. Finished videos are not recomputed.

# %% tags=["parameters"]
item = "demo_a"
run_on = ["demo_a"]
seed = 0
backbone = {"name": "vadlib-tiny", "pretrained": "random", "device": "cpu"}
datasets = {"demo_a": {"root": "data/demo"}}
out = "data/features"
sampling = "every"
stride = 2
crops = 1
batch_size = 32
num_workers = 0
on_error = "raise"
out_dir = "reports/extract/demo_a"

# %%
from pathlib import Path

import torch

from vadlib.data import get_dataset
from vadlib.features import load_backbone
from vadlib.features.extract import ExtractConfig, extract_dataset
from vadlib.io import write_json

torch.manual_seed(seed)
dataset = get_dataset(item, **datasets[item])
bb = load_backbone(backbone["name"], backbone["pretrained"], device=backbone.get("device", "cpu"),
                   precision=backbone.get("precision", "fp32"))
print(f"precision {bb.precision} ({bb.precision_reason})")
if not bb.real_weights:
    print("WARNING — RANDOM WEIGHTS: every feature of this run comes from an untrained backbone.")
cfg = ExtractConfig(sampling=sampling, stride=stride, crops=crops, batch_size=batch_size,
                    num_workers=num_workers, device=backbone.get("device", "cpu"),
                    on_error=on_error)
store = extract_dataset(dataset, bb, Path(out), cfg)

# %% [markdown]
# ## The store

# %%
import pandas as pd

info = dict(store.info)
rows = [{"video": v, "rows": store.load(v).shape[0], "frames": store.num_frames(v)} for v in store.videos()]
write_json(Path(out_dir) / "store.json", {"store": str(store.path), "dataset": item,
                                          "backbone": bb.name, "pretrained": bb.pretrained,
                                          "real_weights": bb.real_weights, "videos": len(rows)})
print(store.path)
pd.DataFrame(rows).describe()
