# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Comparing DVC experiments
# Every experiment of this repository (`dvc exp show --json`) as one pandas table, a metric
# plotted against the parameter that was swept, and the ROC curves of chosen runs overlaid —
# each curve read from the `roc.csv` committed in that run's own revision.
#
# Queue a sweep, run it, then run this notebook by hand (it is not a DVC stage: it reads all
# experiments, which are git refs DVC cannot track as a dependency):
#
# ```
# dvc exp run --queue -S zeroshot.sigma=0 -S zeroshot.sigma=4 -S zeroshot.sigma=8   # or one --queue per set
# dvc queue start -j 2          # workers; `dvc queue status` / `dvc queue logs <name>` to follow
# dvc exp show                  # the table in the terminal
# python -m vadlib.pipeline compare   # this notebook -> reports/compare/
# ```

# %% tags=["parameters"]
repo = "."
metric = "micro_auc"                  # metric key inside the metrics files
metrics_file = ""                     # e.g. "reports/zeroshot/demo_a/metrics.json"; "" = first file holding `metric`
param = ""                            # e.g. "zeroshot.sigma"; "" = first parameter that differs between runs
hue = ""                              # optional second parameter to colour by
runs = []                             # experiment names / revision prefixes for the ROC overlay; [] = baseline + newest
max_runs = 6
roc_path = "reports/zeroshot/demo_a/roc.csv"
pr_path = "reports/zeroshot/demo_a/pr.csv"
all_commits = False                   # include experiments of every commit, not only HEAD's
out_dir = "reports/compare"

# %%
from pathlib import Path

from vadlib.io import atomic_path
from vadlib.report import style
from vadlib.report.experiments import (experiments_table, metric_columns, param_columns, plot_metric_vs_param,
                                       roc_overlay_runs, select_runs, spread_columns)

out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
df = experiments_table(repo, all_commits=all_commits)
with atomic_path(out / "experiments.csv") as tmp:
    df.to_csv(tmp, index=False)
cols = metric_columns(df, metric)
if not cols:
    raise KeyError(f"no metrics file of the experiments holds '{metric}'; metric columns: "
                   f"{[c for c in df.columns if ':' in c][:20]}")
mcol = f"{metrics_file}:{metric}" if metrics_file else cols[0]
varying = param_columns(df[df["kind"] != "workspace"])
pcol = param or (varying[0] if varying else None)
print(f"{len(df[df['kind'] == 'experiment'])} experiments · metric column {mcol} · parameters that differ: {varying}")
spread = spread_columns(df, metric)    # trained stages: <metric> is the mean over seeds; _std/_min/_max/n_seeds beside it
df[["name", "kind", "timestamp"] + varying + [c for c in df.columns if c in cols or c in spread]]

# %% [markdown]
# ## Metric against the swept parameter

# %%
real = "backbone.pretrained" not in df or (df["backbone.pretrained"].astype(str) != "random").all()
runs_df = df[df["kind"] != "workspace"]
if pcol is None:
    print("no parameter differs between the runs: nothing to plot against")
else:
    fig = plot_metric_vs_param(runs_df, pcol, mcol, hue=hue or None, real_weights=real)
    style.save(fig, f"{metric}_vs_{pcol.replace('.', '_')}", out / "figures")

# %% [markdown]
# ## ROC curves of chosen runs (each read at its own revision)

# %%
chosen = select_runs(runs_df, runs or None, limit=max_runs)
fig, missing = roc_overlay_runs(repo, chosen, roc_path, pr_path or None, title=roc_path, real_weights=real)
style.save(fig, "roc_runs", out / "figures")
for m in missing:
    print("missing —", m)
chosen[["name", "rev", "kind"] + ([pcol] if pcol else []) + [mcol] + [c for c in spread if c.startswith(mcol)]]
