"""Tests for vadlib.metrics: against sklearn on random data, hand-worked examples, degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from vadlib.errors import DataError
from vadlib.metrics import evaluate_frames, frame_ap, frame_auc


def _random_set(seed: int = 0, n_videos: int = 5):
    rng = np.random.default_rng(seed)
    scores, labels = {}, {}
    for i in range(n_videos):
        t = int(rng.integers(20, 60))
        y = np.zeros(t, int)
        a = int(rng.integers(0, t - 5))
        y[a : a + int(rng.integers(1, 5))] = 1
        scores[f"v{i}"] = rng.normal(size=t) + 1.5 * y
        labels[f"v{i}"] = y
    return scores, labels


# ------------------------------------------------------------------ evaluate_frames


def test_micro_and_macro_match_sklearn():
    scores, labels = _random_set()
    r = evaluate_frames(scores, labels)
    y = np.concatenate(list(labels.values()))
    s = np.concatenate(list(scores.values()))
    assert r["micro_auc"] == pytest.approx(roc_auc_score(y, s))
    assert r["micro_ap"] == pytest.approx(average_precision_score(y, s))
    assert r["macro_auc"] == pytest.approx(np.mean([roc_auc_score(labels[k], scores[k]) for k in scores]))
    assert r["macro_ap"] == pytest.approx(np.mean([average_precision_score(labels[k], scores[k]) for k in scores]))
    assert r["n_frames"] == y.size and r["n_anomalous"] == y.sum() and r["n_videos"] == 5
    assert r["macro_skipped"] == 0 and r["warning"] is None
    assert r["ap_definition"] == "sklearn average_precision_score"
    assert frame_auc(scores, labels) == r["micro_auc"] and frame_ap(scores, labels) == r["micro_ap"]


def test_hand_worked_auc_and_ap():
    # ranking by score: 0.9(+) 0.8(-) 0.7(+) 0.1(-): positive/negative pairs (0.9>0.8, 0.9>0.1,
    # 0.7<0.8, 0.7>0.1) -> 3 of 4 correct -> AUC 0.75. AP: precision at recall 0.5 is 1/1, at
    # recall 1.0 is 2/3 -> AP = 0.5*1 + 0.5*2/3 = 5/6 (step-wise; trapezoid would differ).
    r = evaluate_frames({"a": np.array([0.9, 0.8, 0.7, 0.1])}, {"a": np.array([1, 0, 1, 0])})
    assert r["micro_auc"] == pytest.approx(0.75)
    assert r["micro_ap"] == pytest.approx(5 / 6)
    assert r["macro_auc"] == pytest.approx(0.75)


def test_micro_differs_from_macro():
    # each video perfectly ranked internally, but video b's scores are all higher than a's:
    # macro = 1, micro < 1 (a's anomaly 0.5 is below b's normal 0.6).
    scores = {"a": np.array([0.0, 0.5]), "b": np.array([0.6, 1.0])}
    labels = {"a": np.array([0, 1]), "b": np.array([0, 1])}
    r = evaluate_frames(scores, labels)
    assert r["macro_auc"] == 1.0
    # pairs: (a1=.5 vs a0=0 ok), (.5 vs .6 bad), (1.0 vs 0 ok), (1.0 vs .6 ok) -> 3/4
    assert r["micro_auc"] == pytest.approx(0.75)


def test_class_id_labels_are_binarised():
    r1 = evaluate_frames({"a": np.array([0.1, 0.9, 0.8])}, {"a": np.array([0, 3, 7])})
    r2 = evaluate_frames({"a": np.array([0.1, 0.9, 0.8])}, {"a": np.array([0, 1, 1])})
    assert r1["micro_auc"] == r2["micro_auc"] == 1.0
    assert r1["n_anomalous"] == 2


def test_single_class_video_skipped_in_macro():
    scores, labels = _random_set(1, 3)
    scores["allnormal"] = np.arange(10.0)
    labels["allnormal"] = np.zeros(10, int)
    r = evaluate_frames(scores, labels)
    assert r["macro_skipped"] == 1 and r["macro_skipped_videos"] == ["allnormal"]
    assert r["macro_n"] == 3
    expected = np.mean([roc_auc_score(labels[k], scores[k]) for k in ["v0", "v1", "v2"]])
    assert r["macro_auc"] == pytest.approx(expected)
    assert math.isnan(r["per_video"]["allnormal"]["auc"])
    assert r["n_videos"] == 4


def test_no_anomalies_at_all_gives_nan_and_warning():
    r = evaluate_frames({"a": np.arange(5.0), "b": np.arange(3.0)}, {"a": np.zeros(5), "b": np.zeros(3)})
    assert math.isnan(r["micro_auc"]) and math.isnan(r["micro_ap"])
    assert math.isnan(r["macro_auc"]) and r["macro_skipped"] == 2
    assert "no anomalous frames" in r["warning"]


def test_no_normal_frames_at_all_gives_nan_and_warning():
    r = evaluate_frames({"a": np.arange(5.0)}, {"a": np.ones(5)})
    assert math.isnan(r["micro_auc"]) and "no normal frames" in r["warning"]


def test_length_mismatch_names_video():
    with pytest.raises(DataError, match=r"'Test003'.*5 scores but 6 labels"):
        evaluate_frames({"Test003": np.zeros(5)}, {"Test003": np.zeros(6)})


def test_missing_video_named():
    with pytest.raises(DataError, match="Test007"):
        evaluate_frames({"Test001": np.zeros(3)}, {"Test001": np.zeros(3), "Test007": np.zeros(3)})
    with pytest.raises(DataError, match="extra9"):
        evaluate_frames({"Test001": np.zeros(3), "extra9": np.zeros(3)}, {"Test001": np.zeros(3)})


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_scores_raise_naming_video(bad):
    s = np.array([0.1, 0.2, bad, 0.3])
    with pytest.raises(DataError, match=r"'vid_x'.*NaN/inf.*frame 2"):
        evaluate_frames({"vid_x": s}, {"vid_x": np.array([0, 1, 0, 1])})


def test_sigma_applies_per_video_smoothing():
    from vadlib.scoring import gaussian_smooth

    scores, labels = _random_set(2)
    r = evaluate_frames(scores, labels, sigma=3)
    sm = gaussian_smooth(scores, 3)
    y = np.concatenate(list(labels.values()))
    assert r["micro_auc"] == pytest.approx(roc_auc_score(y, np.concatenate(list(sm.values()))))
    assert r["sigma"] == 3.0
    assert evaluate_frames(scores, labels, sigma=None)["sigma"] == 0.0
    assert evaluate_frames(scores, labels, sigma=0)["micro_auc"] == evaluate_frames(scores, labels)["micro_auc"]


def test_smoothing_in_evaluation_does_not_leak_across_videos():
    # video b alone vs b evaluated next to a video a whose last frame is a huge spike
    b_s, b_l = np.array([0.0, 0.1, 0.2, 0.9, 0.3]), np.array([0, 0, 0, 1, 0])
    a_s = np.zeros(6)
    a_s[-1] = 1000.0
    r = evaluate_frames({"a": a_s, "b": b_s}, {"a": np.r_[np.zeros(5), 1], "b": b_l}, sigma=2)
    r_b = evaluate_frames({"b": b_s}, {"b": b_l}, sigma=2)
    assert r["per_video"]["b"]["auc"] == r_b["micro_auc"]
