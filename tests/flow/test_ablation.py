"""The AI-VAD-format ablation table: combinations, fused scores, quoted rows, Markdown."""

import math

import numpy as np
import pytest

from vadlib.flow.ablation import AIVAD_PED2, ablation_markdown, ablation_rows, combinations, combo_scores
from vadlib.scoring import MinMaxNormalizer


def _norm(lo, hi):
    n = MinMaxNormalizer(0, 1)
    n.lo_, n.hi_, n.n_fit_ = lo, hi, 10
    return n


def test_combinations_in_table_order():
    assert combinations(["pose", "velocity"]) == [("velocity",), ("pose",), ("velocity", "pose")]
    assert len(combinations(["velocity", "flow_nf", "pose"])) == 7


def test_combo_is_raw_alone_and_sum_of_normalised_scores_together():
    raw = {"velocity": {"a": np.array([0.0, 10.0])}, "flow_nf": {"a": np.array([1.0, 3.0])}}
    norms = {"velocity": _norm(0, 10), "flow_nf": _norm(1, 3)}
    assert combo_scores(raw, ("velocity",), norms)["a"].tolist() == [0.0, 10.0]
    assert combo_scores(raw, ("velocity", "flow_nf"), norms)["a"] == pytest.approx([0.0, 2.0])


def test_rows_quote_aivad_and_list_streams_not_run():
    labels = {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 0, 0])}
    raw = {"velocity": {"a": np.array([0.0, 0.1, 0.9, 1.0]), "b": np.array([0.0, 1.0, 0.0, 0.1])},
           "flow_nf": {"a": np.array([1.0, 0.0, 0.0, 1.0]), "b": np.array([0.0, 0.0, 1.0, 0.0])}}
    norms = {"velocity": _norm(0, 1), "flow_nf": _norm(0, 1)}
    rows = ablation_rows(raw, labels, norms, None)
    by = {r["streams"]: r for r in rows}
    assert by["velocity"]["micro_auc"] == 1.0 and by["velocity"]["aivad_micro"] == pytest.approx(0.988)
    assert math.isnan(by["flow NF"]["aivad_micro"]) and math.isnan(by["velocity"]["val_auc"])
    assert by["deep (CLIP) (not run here)"]["aivad_micro"] == pytest.approx(AIVAD_PED2[("deep",)][0] / 100)
    assert math.isnan(by["deep (CLIP) (not run here)"]["micro_auc"])
    md = ablation_markdown(rows, "caption")
    assert "| velocity | 100.0 | 100.0 | – | 98.8 | 99.6 |" in md and md.rstrip().endswith("caption")
    assert ablation_rows(raw, labels, norms, None, quoted={})[-1]["streams"] == "velocity + flow NF"
