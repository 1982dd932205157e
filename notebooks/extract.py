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
# sampling, crops) into the feature store. Finished videos are not recomputed. The stage's logic and
# every output it writes are in `vadlib.stages.extract`.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's extract section + seed, backbone, datasets, item, out_dir (empty: read params.yaml)

# %%
import pandas as pd

from vadlib.stages import extract

res = extract.run_notebook_params(params)

# %% [markdown]
# ## The store

# %%
print(res["store"].path)
pd.DataFrame(res["rows"]).describe()
