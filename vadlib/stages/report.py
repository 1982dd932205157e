"""The ``report`` stage: every stage's ``metrics.json`` gathered into one results table (methods ×
datasets, with the protocol columns that must travel with each figure), quoted published rows, the
thesis figures and the page ``index.html``.

Writes every output ``dvc.yaml`` lists (besides the executed notebook): under ``ctx.out_dir``
(``reports/report``) ``results.{csv,md,tex}``, ``results_matrix.{csv,md,tex}``, ``published.md``,
``environment.json`` and ``index.html``; the thesis figures (PDF + PNG, stable names) under
``figures_dir`` (default ``<reports>/figures``); and ``<reports>/index.html``, which forwards to the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from vadlib.io import atomic_path, write_json
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params

STAGE = "report"
#: the downloadable files the page links under the table (in this order)
DOWNLOADS = ("results.csv", "results.md", "results.tex", "results_matrix.csv", "results_matrix.tex", "published.md",
             "environment.json", "significance.json")
COMPARISON = ("backbones.csv", "backbones.md")   # written when the backbones stage has run


@dataclass
class Params:
    """``params.yaml: report`` and its defaults (meanings there)."""

    title: str = "vadlib results"
    quoted: Literal["matching", "all", "none"] = "matching"   # published rows: of the measured datasets, all, none
    matrix_metric: str = "micro_auc"
    feature_space: Literal["pca", "tsne"] = "pca"
    figures_dir: str = ""           # "" = <reports>/figures
    latex_columns: list[str] = field(default_factory=lambda: [
        "method", "dataset", "micro_auc", "macro_auc", "micro_ap", "mauc", "sigma", "gt_file", "backbone",
        "real_weights", "source"])
    params_file: str = "params.yaml"   # recorded in environment.json


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def significance_notes(reports: Path, datasets: Mapping[str, Mapping], n_boot: int = 1000,
                       pair: tuple[str, str] = ("train_mil", "zeroshot")) -> tuple[list[str], dict, list[str]]:
    """Where both stages of ``pair`` scored a dataset's test videos: the paired bootstrap of their AUC
    difference (:func:`vadlib.significance.paired_bootstrap_auc`, micro and macro, 95 %; the trained stage
    with all its seeds, ``seeds/seed_<k>/predictions.npz``). Returns ``(page lines, {dataset: result},
    skipped reasons)``."""
    from vadlib.data import get_dataset
    from vadlib.results import Predictions
    from vadlib.significance import comparison_sentence, paired_bootstrap_auc

    a_stage, b_stage = pair
    lines, results, skipped = [], {}, []
    for d in sorted(datasets):
        a_dir, b_file = Path(reports) / a_stage / d, Path(reports) / b_stage / d / "predictions.npz"
        a_files = sorted(a_dir.glob("seeds/seed_*/predictions.npz")) or sorted(a_dir.glob("predictions.npz"))
        if not a_files or not b_file.is_file():
            continue
        try:
            a = [Predictions.load(f).scores() for f in a_files]
            b = Predictions.load(b_file).scores()
            labels = {v.name: v.frame_labels for v in get_dataset(d, **datasets[d]).videos("test")
                      if v.frame_labels is not None and v.name in b}
            res = paired_bootstrap_auc(a, b, labels, n_boot=n_boot, seed=0)
        except Exception as exc:  # noqa: BLE001 - a comparison that cannot be made is reported, not fatal
            skipped.append(f"significance {a_stage} vs {b_stage} on {d}: {type(exc).__name__}: {exc}")
            continue
        name_a = f"{a_stage} ({len(a_files)} seed{'s' if len(a_files) > 1 else ''})"
        results[d] = res
        lines += [f"{d}: " + comparison_sentence(name_a, b_stage, res, w) for w in ("micro", "macro")]
    return lines, results, skipped


def write_tables(table, p: Params, out: Path) -> Any:
    """``results.{csv,md,tex}``, ``results_matrix.{csv,md,tex}`` (methods × datasets, ``p.matrix_metric``)
    and ``published.md`` under ``out``. Returns the matrix (methods × datasets DataFrame)."""
    from vadlib.report.tables import display_table, load_published, results_matrix, to_latex, to_markdown

    caption = (f"{p.title}. µAUC/MAUC: micro/macro frame ROC AUC; µAP: micro AP; mAUC: recognition mean AUC; "
               "σ: Gaussian smoothing (frames).")
    _write_text(out / "results.csv", table.to_csv(index=False))
    _write_text(out / "results.md", to_markdown(display_table(table), floatfmt=".2f"))
    _write_text(out / "results.tex", to_latex(table, caption=caption, label="tab:results", columns=p.latex_columns))
    matrix = results_matrix(table, p.matrix_metric)
    _write_text(out / "results_matrix.csv", matrix.to_csv())
    _write_text(out / "results_matrix.md", to_markdown(matrix, floatfmt=".2f", index=True))
    _write_text(out / "results_matrix.tex", to_latex(matrix.reset_index(), caption=(
        f"{p.title}: {p.matrix_metric} (%), methods × datasets; (quoted) = published figure, not measured here."),
        label="tab:results-matrix"))
    _write_text(out / "published.md", to_markdown(load_published().drop(columns=["low", "high"]), floatfmt=".2f"))
    return matrix


def backbone_comparison(reports: Path, out: Path, figs: Path) -> list[Path]:
    """The ``backbones`` matrix (:func:`vadlib.report.backbones.comparison_table`) as ``backbones.{csv,md}``
    under ``out`` and the figure ``backbone_comparison`` under ``figs``; random-weight rows marked.
    Returns the figure's PNG path in a list (empty when the stage has not run)."""
    from vadlib.report.plots import save_figure
    from vadlib.report.tables import to_markdown
    from vadlib.report.backbones import comparison_table, plot_comparison

    table = comparison_table(reports)
    if table.empty:
        return []
    _write_text(out / "backbones.csv", table.to_csv(index=False))
    shown = table.assign(real_weights=["yes" if r else "NO (RANDOM WEIGHTS)" for r in table["real_weights"]])
    _write_text(out / "backbones.md", to_markdown(shown, floatfmt=".2f"))
    print(to_markdown(shown, floatfmt=".2f"))
    figs.mkdir(parents=True, exist_ok=True)
    save_figure(plot_comparison(table), figs / "backbone_comparison")
    return [figs / "backbone_comparison.png"]


def stage_figures(reports: Path, figs: Path) -> dict[str, list[Path]]:
    """The figures the other stages wrote under ``reports`` (not this stage's, not the thesis figures
    in ``figs``), as ``{"Stage figures — <stage>[/<item>]": [paths]}``."""
    from vadlib.report.page import find_figures

    sections: dict[str, list[Path]] = {}
    for f in find_figures(reports):
        rel = f.relative_to(reports)
        if rel.parts[0] in ("report", "figures") or f.resolve().is_relative_to(figs.resolve()):
            continue
        where = "/".join(rel.parts[:-2] if rel.parts[-2] == "figures" else rel.parts[:-1])
        sections.setdefault(f"Stage figures — {where}", []).append(f)
    return sections


def run(params: Params | Mapping | None, ctx: StageContext) -> dict:
    """Tables, thesis figures and the page from what ``ctx.reports`` holds.

    Returns ``{"environment", "table" (results table, measured + quoted rows), "matrix", "figures":
    {section: [paths]} (thesis figures made), "skipped": [what could not be made, and why], "page":
    path of index.html}``."""
    from vadlib.report.environment import capture_environment
    from vadlib.report.figures import make_figures
    from vadlib.report.page import find_notebooks, write_index
    from vadlib.report.tables import results_table

    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    reports = ctx.reports
    out, figs = ctx.out_dir, Path(p.figures_dir or reports / "figures")
    out.mkdir(parents=True, exist_ok=True)

    env = capture_environment(p.params_file)
    write_json(out / "environment.json", env)
    print(f"git {env['git']['commit']} dirty={env['git']['dirty']} · {env['device']['cpu']} · "
          f"GPUs: {env['device']['gpus']}")

    table = results_table(reports, quoted=p.quoted)
    measured = table[table["kind"] == "measured"]
    if (measured["real_weights"] == False).any():  # noqa: E712  (NaN = unknown is not False)
        print("WARNING — some rows come from RANDOM-WEIGHT backbones (real_weights = False): plumbing checks only.")
    if measured.empty:
        print(f"No metrics.json found under {reports}: the table holds quoted rows only.")
    matrix = write_tables(table, p, out)

    made, skipped = make_figures(reports, figs, datasets=ctx.datasets, method=p.feature_space, seed=ctx.seed)
    sig_lines, sig, sig_skipped = significance_notes(reports, ctx.datasets)
    write_json(out / "significance.json", {"method": "paired bootstrap over test videos, 1000 resamples, seed 0, "
                                                     "95 % percentile interval (vadlib.significance)", "results": sig})
    skipped = list(skipped) + sig_skipped
    for reason in skipped:
        print("skipped —", reason)
    sections = {f"Thesis figures — {k}": v for k, v in made.items() if v}
    compared = backbone_comparison(reports, out, figs)
    if compared:
        sections["Backbone comparison (backbones stage: CLIP, X-CLIP, ActionCLIP)"] = compared
    sections.update(stage_figures(reports, figs))
    page = write_index(out / "index.html", table, title=p.title, figures=sections,
                       notebooks=find_notebooks(reports) + [out / "report.html"],   # the notebook, exported after it runs
                       downloads=[out / n for n in DOWNLOADS + COMPARISON if (out / n).is_file()], environment=env, skipped=skipped, reports=reports,
                       notes=sig_lines)
    # `<reports>/index.html`: the one file a reader opens; it forwards to this stage's page.
    _write_text(reports / "index.html",
                "<!doctype html><meta charset='utf-8'><meta http-equiv='refresh' content='0; url=report/index.html'>"
                f"<title>{p.title}</title><p><a href='report/index.html'>{p.title}</a></p>\n")
    return {"environment": env, "table": table, "matrix": matrix, "figures": made, "skipped": skipped, "page": page}


def run_notebook_params(params: Mapping[str, Any] | None = None) -> dict:
    """What ``notebooks/report.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s)."""
    section, ctx = split_params(notebook_params(params, STAGE), STAGE)
    return run(section, ctx)
