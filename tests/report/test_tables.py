"""Results table: measured rows from metrics.json files, quoted rows from published.yaml."""

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from vadlib.errors import DataError
from vadlib.report.tables import (collect_metrics, display_table, load_published, quoted_rows, results_matrix, results_table,
                                  to_latex, to_markdown)


def _write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


@pytest.fixture
def reports(tmp_path):
    r = tmp_path / "reports"
    _write(r / "zeroshot" / "demo_a" / "metrics.json",
           {"micro_auc": 0.61, "macro_auc": 0.55, "micro_ap": 0.3, "macro_ap": 0.25,
            "protocol": {"method": "zeroshot (softmax)", "dataset": "demo_a", "gt_file": "generated", "sigma": 0,
                         "ap_definition": "sklearn average_precision_score", "backbone": "vadlib-tiny/random",
                         "real_weights": False}})
    _write(r / "flow_nf" / "metrics.json",
           {"protocol": {"backbone": "none", "real_weights": True, "sigma": 3},
            "rows": [{"method": "flow_nf", "dataset": "ucsd_ped2", "micro_auc": 0.9, "mAUC": 0.7,
                      "protocol": {"gt_file": "UCSDped2.m"}},
                     {"method": "flow_nf", "dataset": "demo_b"}]})   # no metrics at all: empty cells
    _write(r / "transfer" / "metrics.json",
           {"pairs": {"demo_a->demo_b": {"full": {"micro_auc": 0.8, "micro_ap": 0.4}, "no_prompt": {"micro_auc": 0.7}}},
            "headline": {"demo_a->demo_b": 0.8}, "protocol": {"backbone": "tiny", "real_weights": False}})
    _write(r / "report" / "metrics.json", {"micro_auc": 1.0})        # the report's own outputs are skipped
    return r


def test_collect_metrics_reads_flat_and_rows(reports):
    df = collect_metrics(reports)
    assert len(df) == 5
    t = df[df["stage"] == "transfer"].set_index("method")
    assert t.loc["transfer (full)", "micro_auc"] == 0.8 and t.loc["transfer (no_prompt)", "dataset"] == "demo_a→demo_b"
    assert t.loc["transfer (full)", "backbone"] == "tiny"
    z = df[df["stage"] == "zeroshot"].iloc[0]
    assert z["dataset"] == "demo_a" and z["micro_auc"] == 0.61 and z["real_weights"] == False  # noqa: E712
    f = df[(df["stage"] == "flow_nf") & (df["dataset"] == "ucsd_ped2")].iloc[0]
    # the row's protocol overrides / extends the file-level protocol
    assert f["gt_file"] == "UCSDped2.m" and f["sigma"] == 3 and f["mauc"] == 0.7
    assert pd.isna(df[df["dataset"] == "demo_b"]["micro_auc"].iloc[0])


def test_bad_metrics_file_names_the_file(tmp_path):
    bad = tmp_path / "reports" / "x" / "metrics.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json")
    with pytest.raises(DataError, match="x/metrics.json"):
        collect_metrics(tmp_path / "reports")


def test_published_yaml_is_sourced():
    pub = load_published()
    assert len(pub) > 50
    assert set(pub["source"]) <= {"repo", "page", "sec", "notes", "unverified"}
    vad = pub[(pub["method"].str.startswith("VadCLIP")) & (pub["benchmark"] == "UCF-Crime")]
    assert vad["value"].iloc[0] == pytest.approx(88.02)
    rng = pub[pub["value"].isna()]
    assert len(rng) and (rng["low"] < rng["high"]).all()


def test_quoted_rows_are_marked_and_merged():
    rows = quoted_rows(load_published(), ["ucfcrime"])
    acl = [r for r in rows if r["method"].startswith("AnomalyCLIP")]
    assert len(acl) == 1 and acl[0]["micro_auc"] == pytest.approx(86.36) and acl[0]["mauc"] == pytest.approx(90.66)
    assert all(r["kind"] == "quoted" and r["source"].startswith("[") for r in rows)


def test_results_table_measured_then_quoted(reports, tmp_path):
    _write(reports / "zeroshot" / "ucsd_ped2" / "metrics.json", {"micro_auc": 0.5, "protocol": {"dataset": "ucsd_ped2"}})
    df = results_table(reports)
    assert list(df["kind"]).index("quoted") > max(i for i, k in enumerate(df["kind"]) if k == "measured")
    meas = df[df["kind"] == "measured"]
    assert meas[meas["dataset"] == "demo_a"]["micro_auc"].iloc[0] == pytest.approx(61.0)   # percent
    quoted = df[df["kind"] == "quoted"]
    assert set(quoted["dataset"]) == {"ucsd_ped2"}      # only benchmarks that were measured
    assert quoted["note"].str.contains("range").any()   # Flow-NF ranges travel as notes
    assert len(results_table(reports, quoted="none")) == len(meas)
    assert set(results_table(reports, quoted="all")["dataset"]) >= {"ucfcrime", "xdviolence", "avenue"}

    m = results_matrix(df)
    assert "HF2-VAD (quoted)" in m.index and m.loc["HF2-VAD (quoted)", "ucsd_ped2"] == pytest.approx(99.3)
    assert "zeroshot (softmax)" in m.index


def test_latex_booktabs_with_quoted_block(reports):
    df = results_table(reports)
    tex = to_latex(df, caption="Results on demo_a & Ped2", columns=["method", "dataset", "micro_auc", "sigma",
                                                                      "gt_file", "real_weights", "source"])
    for cmd in (r"\toprule", r"\midrule", r"\bottomrule", r"\begin{tabular}", r"\caption{Results on demo\_a \& Ped2"):
        assert cmd in tex
    assert "Quoted from published work" in tex
    assert tex.index("zeroshot (softmax)") < tex.index("Quoted from published work") < tex.index("HF2-VAD")
    assert r"HF2-VAD$^\dagger$" in tex and "NO (random)" in tex
    assert "_" not in tex.replace(r"\_", "")     # every underscore escaped
    md = to_markdown(display_table(df))
    assert "quoted [repo]" in md and "measured" in md and "88.4–89.4" in md and "nan" not in md
    assert "88.4--89.4" in to_latex(df, columns=["method", "micro_auc"])     # published range kept, LaTeX en dash


def test_latex_compiles_if_pdflatex(reports, tmp_path):
    import shutil
    if not shutil.which("pdflatex"):
        pytest.skip("pdflatex not installed")
    tex = to_latex(results_table(reports), caption="x & y", columns=["method", "dataset", "micro_auc", "macro_auc",
                                                                     "sigma", "gt_file", "backbone", "real_weights",
                                                                     "source", "note"])
    doc = tmp_path / "t.tex"
    doc.write_text("\\documentclass{article}\\usepackage{booktabs,graphicx}\\usepackage[utf8]{inputenc}\\begin{document}"
                   + tex + "\\end{document}\n")
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", doc.name], cwd=tmp_path, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout[-2000:]
    assert b"Overfull \\hbox" not in r.stdout        # scaled to the text width


def test_multi_seed_rows_print_mean_pm_std_and_per_seed_files_are_not_rows(reports):
    from vadlib.seeds import summarize

    per = {0: {"micro_auc": 0.70, "macro_auc": 0.6}, 1: {"micro_auc": 0.80, "macro_auc": 0.6},
           2: {"micro_auc": 0.75, "macro_auc": 0.6}}
    for s, m in per.items():
        _write(reports / "train_mil" / "demo_a" / "seeds" / f"seed_{s}" / "metrics.json",
               {**m, "protocol": {"method": "sultani", "dataset": "demo_a"}})
    _write(reports / "train_mil" / "demo_a" / "metrics.json",
           {**summarize(per, ["micro_auc", "macro_auc"]), "protocol": {"method": "sultani", "dataset": "demo_a"}})
    t = results_table(reports, quoted="all")
    mil = t[t["stage"] == "train_mil"]
    assert len(mil) == 1                                  # seeds/seed_<k>/ are not rows of their own
    assert mil["micro_auc"].iloc[0] == pytest.approx(75.0)
    shown = display_table(t)
    row = shown[shown["stage"] == "train_mil"].iloc[0]
    assert row["micro_auc"] == "75.00 ± 5.00 (3)" and row["macro_auc"] == "60.00 ± 0.00 (3)"
    zs = shown[shown["stage"] == "zeroshot"].iloc[0]
    assert zs["micro_auc"] == "61.00"                     # untrained: one value, same format
    assert not shown[shown["kind"] != "measured"].astype(str).apply(lambda c: c.str.contains("±")).any().any()
    tex = to_latex(t, columns=["method", "dataset", "micro_auc"])
    assert r"75.00 $\pm$ 5.00 (3)" in tex and "zeroshot" in tex and r"61.00 \\" in tex
