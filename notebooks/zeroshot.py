# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # CLIP zero-shot scoring
# Per-frame CLIP image features (from the feature store) against the dataset's text prompts:
#
# * **softmax** (the headline score): `a_t = 1 − p_t(normal)`, `p_t = softmax([cos(f_t, N_j); cos(f_t, A_i)] / τ)`;
# * **max_cos**: `S(t) = max_i cos(f_t, A_i)` over the semantic anomaly prompts;
# * per frame the predicted class (normal prompts summed vs each anomaly class).
#
# Nothing here is fitted: no statistic of the test set enters a score (σ is fixed in params). The stage's
# logic and every output it writes are in `vadlib.stages.zeroshot`; this notebook shows them.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's zeroshot section + backbone, datasets, item, out_dir (empty: read params.yaml)

# %%
from IPython.display import Image, display

import pandas as pd

from vadlib.report.plots import protocol_caption
from vadlib.stages import zeroshot

res = zeroshot.run_notebook_params(params)
figures = {path.stem: path for path in res["figures"]}

# %% [markdown]
# ## Frame-level detection

# %%
print(protocol_caption({**res["protocol"], "score": res["score"]}))
res["table"]

# %% [markdown]
# ## Validation without the test set
# Pseudo-anomalies made from the held-out TRAINING videos `validation.videos`, scored the same way:
# micro AUC per kind; σ candidates (`validation.sigma`) are chosen on the key AUC, never on test.

# %%
val = res["validation"]
print(val.get("note") or f"held out: {', '.join(val['held_out'])} · chosen: {val['chosen']}")
pd.DataFrame(res["validation_choices"])

# %% [markdown]
# ## Recognition (which class)

# %%
recog = res["recognition"]
if recog is not None:
    print({k: recog[k] for k in ("mAUC", "mAP", "top1", "top5")})
else:
    print("prompt classes do not match the dataset's classes: recognition metrics skipped")
res["metrics"]

# %% [markdown]
# ## ROC / PR and score timelines (GT anomalies shaded)

# %%
display(Image(filename=str(figures["roc_pr"])))
display(Image(filename=str(figures["timelines"])))
