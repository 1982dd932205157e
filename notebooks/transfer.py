# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Zero-shot cross-dataset transfer (VideoAnomalyCLIP)
# For every (source, target) pair: train on the **source**'s training videos (CLIP features from the
# feature store), then score the **target**'s test videos with **no target data** anywhere — no
# fitting, no normalisation, no σ or τ choice on the target. At test the target's anomalies are
# described in natural language (`transfer.prompts.<target>`, changeable with
# `dvc exp run -S 'transfer.prompts.<target>=[...]'`).
#
# * **full** — temporal module trained on the source (generic prompts, MIL or normal-only), target semantic prompts;
# * **no_temporal** — no temporal module (V = CLIP feature), target semantic prompts;
# * **generic_prompts** — temporal module, but the source-learned generic prompts at test;
# * **clip_zeroshot** — plain CLIP zero-shot with the target semantic prompts.
#
# Scores: `calibrated` = log-odds of `a_t = Σ_{i∈A} softmax([cos(V_t, N); cos(V_t, A)] / τ)_i` (headline),
# `max_cos` = `S(t) = max_i cos(V_t, T_i)`. Frame-level micro AUC / AP. The stage's logic and every
# output it writes are in `vadlib.stages.transfer`; this notebook shows them.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's transfer section + seed, backbone, datasets, out_dir (empty: read params.yaml)

# %%
import pandas as pd
from IPython.display import Image, display

from vadlib.stages import transfer

res = transfer.run_notebook_params(params)
pd.DataFrame([{"target": t, "normal prompts": "; ".join(p.normal), "anomaly prompts": "; ".join(p.anomaly.values())}
              for t, p in res["target_prompts"].items()])

# %% [markdown]
# ## Train on each source, test on each target
# Each source's trained model ("full" variant) is saved for
# `vadlib detect --method transfer --checkpoint transfer@SOURCE`. Every source is trained once per seed of
# `seeds` (`seeds/seed_<k>/`; the table below and the saved models are the first seed's); training wall
# times are in `timing.json` beside `metrics.json` (not a DVC output: they differ on every run).

# %%
res["training"]

# %% [markdown]
# ## The transfer matrix (micro frame AUC / AP; mean ± sample std over the seeds)

# %%
res["matrix"]

# %%
res["metrics"]["headline"]

# %%
display(Image(filename=str(res["figures"][0])))

# %% [markdown]
# ## Which prompt fired (full model, per target)
# Fraction of GT-anomalous and of normal target frames assigned to each prompt (`normal` when the
# normal prompts' calibrated probability is ≥ 0.5).

# %%
pd.concat(res["fired"], axis=1) if res["fired"] else "no full-model predictions"
