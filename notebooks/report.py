# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Results
# Every stage's `metrics.json` gathered into one table (methods × datasets) with the protocol
# columns that must travel with each figure: smoothing σ, AP definition, GT file, backbone and
# whether its weights were real. Published figures (`vadlib/report/published.yaml`, copied from
# `../shared/reference/published_numbers.md` with their source tags) follow as **quoted** rows:
# they were not measured here and their protocol (GT file, split, features) may differ.
#
# Outputs: `results.{csv,md,tex}`, `results_matrix.{csv,md,tex}` (methods × datasets, micro AUC),
# `environment.json`, thesis figures (PDF + PNG) under `figures_dir`, and `index.html` — the page
# to open. The stage's logic and every output it writes are in `vadlib.stages.report`; this notebook
# shows them.

# %% tags=["parameters"]
params = {}   # papermill: params.yaml's report section + datasets, seed, reports, out_dir (empty: read params.yaml)

# %%
from vadlib.report.tables import display_table
from vadlib.stages import report

res = report.run_notebook_params(params)

# %% [markdown]
# ## The results table
# Metrics in %. `kind` says whether a row was **measured** here or **quoted** from published work.

# %%
display_table(res["table"])

# %% [markdown]
# ## Methods × datasets

# %%
res["matrix"]

# %% [markdown]
# ## Thesis figures
# Made from what the reports folder holds; what could not be made is listed (and shown on the page).

# %%
for section, paths in res["figures"].items():
    print(f"{section}: {len(paths)} figure(s)")
for reason in res["skipped"]:
    print("skipped —", reason)

# %% [markdown]
# ## The page: `index.html`
# `reports/index.html`, the one file a reader opens, forwards to it.

# %%
print(f"open {res['page']}")
