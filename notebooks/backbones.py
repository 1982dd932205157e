# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Backbone comparison: one entry of the matrix
# The same dataset and method (zero-shot scoring with the dataset's prompts) with one backbone of
# `backbones.models`: an image model (CLIP, open_clip: one feature per sampled frame) or a video model
# (X-CLIP, ActionCLIP: one feature per clip of the checkpoint's frame count, expanded back to its frames).
# Prompts are scored along the backbone's text path: the text tower (CLIP, ActionCLIP), or X-CLIP's
# video-conditioned prompt generator (its `forward` path). Nothing is fitted and nothing is chosen on test.
# The report stage puts every entry in one table and one figure. The logic is in `vadlib.stages.backbones`.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's backbones section + backbone, datasets, item, out_dir (empty: read params.yaml)

# %%
from vadlib.stages import backbones

res = backbones.run_notebook_params(params)

# %% [markdown]
# ## Protocol and frame-level detection

# %%
for k, v in res["protocol"].items():
    print(f"{k:18s} {v}")
res["metrics"]
