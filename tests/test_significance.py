"""The paired bootstrap of the AUC difference against a hand computation on three videos."""

from __future__ import annotations

import numpy as np
import pytest

from vadlib.significance import bootstrap_resamples, comparison_sentence, paired_bootstrap_auc

# three test videos; v1 and v2 hold both classes, v3 only normal frames
LABELS = {"v1": np.array([0, 0, 1, 1]), "v2": np.array([0, 1, 1]), "v3": np.array([0, 0])}
A = {"v1": np.array([0.1, 0.2, 0.8, 0.9]), "v2": np.array([0.3, 0.7, 0.6]), "v3": np.array([0.2, 0.4])}
B = {"v1": np.array([0.5, 0.2, 0.4, 0.9]), "v2": np.array([0.8, 0.7, 0.6]), "v3": np.array([0.1, 0.3])}


def _hand_auc(y, s):
    """AUC by counting pairs: P(s_pos > s_neg) + ½ P(tie)."""
    pos, neg = [x for x, t in zip(s, y) if t], [x for x, t in zip(s, y) if not t]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_the_interval_matches_a_hand_computation():
    # fixed resamples (indices into the sorted names v1, v2, v3)
    rs = [[0, 1, 2], [0, 0, 2], [1, 1, 2], [0, 1, 1]]
    res = paired_bootstrap_auc(A, B, LABELS, resamples=rs, level=0.5)
    names = ["v1", "v2", "v3"]
    micro_d, macro_d = [], []
    for r in rs:
        y = sum((list(LABELS[names[i]]) for i in r), [])
        sa = sum((list(A[names[i]]) for i in r), [])
        sb = sum((list(B[names[i]]) for i in r), [])
        micro_d.append(_hand_auc(y, sa) - _hand_auc(y, sb))
        two = [i for i in r if i != 2]       # v3 is single-class: skipped in macro
        macro_d.append(np.mean([_hand_auc(LABELS[names[i]], A[names[i]]) for i in two])
                       - np.mean([_hand_auc(LABELS[names[i]], B[names[i]]) for i in two]))
    # per-video AUC by hand: v1 A 1.0, B 0.75 (3 of 4 pairs); v2 A 1.0, B 0.0 -> differences 0.25 and 1.0
    assert macro_d == pytest.approx([0.625, 0.25, 1.0, (0.25 + 1.0 + 1.0) / 3])
    assert res["micro"]["low"] == pytest.approx(np.quantile(micro_d, 0.25))
    assert res["micro"]["high"] == pytest.approx(np.quantile(micro_d, 0.75))
    assert res["macro"]["low"] == pytest.approx(np.quantile(macro_d, 0.25))
    assert res["macro"]["high"] == pytest.approx(np.quantile(macro_d, 0.75))
    assert res["macro"]["diff"] == pytest.approx(0.625) and res["macro"]["a_beats_b"]
    assert res["n_boot"] == res["micro"]["n_valid"] == 4


def test_identical_methods_do_not_differ_and_swapping_flips_the_sign():
    same = paired_bootstrap_auc(A, A, LABELS, n_boot=200)
    assert same["micro"]["low"] == same["micro"]["high"] == 0.0
    assert not same["micro"]["a_beats_b"] and not same["micro"]["b_beats_a"]
    ab, ba = paired_bootstrap_auc(A, B, LABELS, n_boot=300, seed=3), paired_bootstrap_auc(B, A, LABELS, n_boot=300, seed=3)
    assert ab["micro"]["low"] == pytest.approx(-ba["micro"]["high"])
    assert "CI" in comparison_sentence("A", "B", ab)


def test_resamples_are_reproducible_and_a_missing_video_is_named():
    assert (bootstrap_resamples(5, 10, seed=1) == bootstrap_resamples(5, 10, seed=1)).all()
    with pytest.raises(KeyError, match="v3"):
        paired_bootstrap_auc(A, {k: v for k, v in B.items() if k != "v3"}, LABELS)


def test_several_seeds_average_the_auc_per_resample():
    rs = [[0, 1, 2], [0, 0, 1]]
    B2 = {k: v[::-1].copy() if k != "v3" else v for k, v in B.items()}
    both = paired_bootstrap_auc([A, A], [B, B2], LABELS, resamples=rs, level=0.5)
    one, two = (paired_bootstrap_auc(A, b, LABELS, resamples=rs, level=0.5) for b in (B, B2))
    for w in ("micro", "macro"):      # the AUC of a resample is the mean over seeds, so differences average too
        assert both[w]["diff"] == pytest.approx((one[w]["diff"] + two[w]["diff"]) / 2)
