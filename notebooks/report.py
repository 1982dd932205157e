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
# whether its weights were real.

# %% tags=["parameters"]
title = "vadlib results"
reports = "reports"
out_dir = "reports/report"

# %%
from pathlib import Path

from vadlib.io import atomic_path
from vadlib.report.tables import collect_metrics, to_latex, to_markdown

out = Path(out_dir)
out.mkdir(parents=True, exist_ok=True)
table = collect_metrics(reports)
if (table["real_weights"] == False).any():  # noqa: E712
    print("WARNING — some rows come from RANDOM-WEIGHT backbones (real_weights = False): plumbing checks only.")
for name, text in (("results.csv", table.to_csv(index=False)), ("results.md", to_markdown(table)),
                   ("results.tex", to_latex(table, caption=title))):
    with atomic_path(out / name) as tmp:
        tmp.write_text(text)
table
