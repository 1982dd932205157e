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
# Deterministic from `seed`. The stage's logic and every output it writes are in `vadlib.stages.demo`.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's demo section + seed, out_dir (empty: read params.yaml)

# %%
from IPython.display import Image, display

from vadlib.stages import demo

res = demo.run_notebook_params(params)

# %% [markdown]
# ## What was generated

# %%
res["summary"].groupby(["dataset", "split", "class"]).agg(videos=("video", "count"), frames=("frames", "sum"))

# %% [markdown]
# ## Anomalous frames of each scene's test videos (mask outlined in red)

# %%
for path in res["figures"]:
    display(Image(filename=str(path)))
