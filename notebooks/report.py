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
# to open.

# %% tags=["parameters"]
title = "vadlib results"
reports = "reports"
out_dir = "reports/report"
figures_dir = ""             # empty: <reports>/figures (thesis figures, stable names)
quoted = "matching"          # matching | all | none: published rows of the measured datasets only, all, or none
matrix_metric = "micro_auc"
latex_columns = ["method", "dataset", "micro_auc", "macro_auc", "micro_ap", "mauc", "sigma", "gt_file",
                 "backbone", "real_weights", "source"]
feature_space = "pca"        # pca | tsne
datasets = {}
params_file = "params.yaml"
seed = 0

# %%
from pathlib import Path

import pandas as pd

from vadlib.io import atomic_path, write_json
from vadlib.report.environment import capture_environment
from vadlib.report.figures import make_figures
from vadlib.report.page import find_figures, find_notebooks, write_index
from vadlib.report.tables import (display_table, load_published, results_matrix, results_table, to_latex,
                                  to_markdown)

out, figs = Path(out_dir), Path(figures_dir or Path(reports) / "figures")
out.mkdir(parents=True, exist_ok=True)


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text)


env = capture_environment(params_file)
write_json(out / "environment.json", env)
print(f"git {env['git']['commit']} dirty={env['git']['dirty']} · {env['device']['cpu']} · GPUs: {env['device']['gpus']}")

# %% [markdown]
# ## The results table
# Metrics in %. `kind` says whether a row was **measured** here or **quoted** from published work.

# %%
table = results_table(reports, quoted=quoted)
measured = table[table["kind"] == "measured"]
if (measured["real_weights"] == False).any():  # noqa: E712
    print("WARNING — some rows come from RANDOM-WEIGHT backbones (real_weights = False): plumbing checks only.")
if measured.empty:
    print(f"No metrics.json found under {reports}: the table holds quoted rows only.")
caption = (f"{title}. µAUC/MAUC: micro/macro frame ROC AUC; µAP: micro AP; mAUC: recognition mean AUC; "
           "σ: Gaussian smoothing (frames).")
write_text(out / "results.csv", table.to_csv(index=False))
write_text(out / "results.md", to_markdown(display_table(table), floatfmt=".2f"))
write_text(out / "results.tex", to_latex(table, caption=caption, label="tab:results", columns=latex_columns))
matrix = results_matrix(table, matrix_metric)
write_text(out / "results_matrix.csv", matrix.to_csv())
write_text(out / "results_matrix.md", to_markdown(matrix, floatfmt=".2f", index=True))
mx = matrix.reset_index()
write_text(out / "results_matrix.tex", to_latex(mx, caption=f"{title}: {matrix_metric} (%), methods × datasets; "
                                                "(quoted) = published figure, not measured here.",
                                                label="tab:results-matrix"))
write_text(out / "published.md", to_markdown(load_published().drop(columns=["low", "high"]), floatfmt=".2f"))
display_table(table)

# %% [markdown]
# ## Thesis figures
# Made from what the reports folder holds; what could not be made is listed (and shown on the page).

# %%
made, skipped = make_figures(reports, figs, datasets=datasets, method=feature_space, seed=seed)
for section, paths in made.items():
    print(f"{section}: {len(paths)} figure(s)")
for s in skipped:
    print("skipped —", s)

# %% [markdown]
# ## The page: `index.html`

# %%
stage_figs = {}
for p in find_figures(reports):
    rel = p.relative_to(reports)
    if rel.parts[0] in ("report", "figures") or p.resolve().is_relative_to(figs.resolve()):
        continue
    stage_figs.setdefault(f"Stage figures — {'/'.join(rel.parts[:-2] if rel.parts[-2] == 'figures' else rel.parts[:-1])}", []).append(p)
sections = {f"Thesis figures — {k}": v for k, v in made.items() if v}
sections.update(stage_figs)
page = write_index(out / "index.html", table, title=title, figures=sections,
                   notebooks=find_notebooks(reports) + [out / "report.html"],   # this notebook, exported after it runs
                   downloads=[out / n for n in ("results.csv", "results.md", "results.tex", "results_matrix.csv",
                                                "results_matrix.tex", "published.md", "environment.json")],
                   environment=env, skipped=skipped, reports=reports)
print(f"open {page}")

# %%
# `reports/index.html`: the one file a reader opens; it forwards to this stage's page.
write_text(Path(reports) / "index.html",
           "<!doctype html><meta charset='utf-8'><meta http-equiv='refresh' content='0; url=report/index.html'>"
           f"<title>{title}</title><p><a href='report/index.html'>{title}</a></p>\n")
