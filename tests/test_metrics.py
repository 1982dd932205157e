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


# ------------------------------------------------------------------ video level


def test_video_level_max_and_topk_by_hand():
    from vadlib.metrics import video_level_metrics

    scores = {"n1": np.array([0.1, 0.9, 0.1]), "n2": np.array([0.2, 0.3, 0.2]),
              "a1": np.array([0.5, 0.6, 0.7]), "a2": np.array([0.0, 0.8, 0.0])}
    labels = {"n1": 0, "n2": np.zeros(3), "a1": 3, "a2": np.array([0, 1, 0])}
    r = video_level_metrics(scores, labels, reduce="max")
    # maxima: n1 .9, n2 .3, a1 .7, a2 .8 -> pairs (a1>n1 no, a1>n2 yes, a2>n1 no, a2>n2 yes) -> 0.5
    assert r["video_auc"] == pytest.approx(0.5)
    assert r["n_normal"] == 2 and r["n_abnormal"] == 2 and r["note"] is None
    # top-2 means: n1 .5, n2 .25, a1 .65, a2 .4 -> (a1>n1 yes, a1>n2 yes, a2>n1 no, a2>n2 yes) -> 0.75
    r = video_level_metrics(scores, labels, reduce="topk_mean", k=2)
    assert r["video_auc"] == pytest.approx(0.75)
    assert r["video_scores"]["a1"] == pytest.approx(0.65)
    y = [0, 0, 1, 1]
    assert r["video_ap"] == pytest.approx(average_precision_score(y, [0.5, 0.25, 0.65, 0.4]))


def test_video_level_undefined_without_normal_videos():
    from vadlib.errors import ConfigError
    from vadlib.metrics import video_level_metrics

    r = video_level_metrics({"a": np.ones(3), "b": np.zeros(3)}, {"a": 1, "b": 2})
    assert math.isnan(r["video_auc"]) and "no normal test video" in r["note"]
    with pytest.raises(ConfigError):
        video_level_metrics({"a": np.ones(3)}, {"a": 1}, reduce="topk_mean")
    with pytest.raises(ConfigError, match="median"):
        video_level_metrics({"a": np.ones(3)}, {"a": 1}, reduce="median")


# ------------------------------------------------------------------ pixel AUROC


def _random_maps(seed=0, n=3, t=2, h=12, w=10):
    rng = np.random.default_rng(seed)
    masks, maps = {}, {}
    for i in range(n):
        m = np.zeros((t, h, w), np.uint8)
        for f in range(t):
            y0, x0 = rng.integers(0, h - 4), rng.integers(0, w - 4)
            m[f, y0 : y0 + rng.integers(1, 4), x0 : x0 + rng.integers(1, 4)] = 255
        masks[f"v{i}"] = m
        maps[f"v{i}"] = rng.normal(size=(t, h, w)) + 1.2 * (m > 0)
    return masks, maps


def test_pixel_auroc_equals_sklearn_and_histogram_is_within_bound():
    from vadlib.metrics import pixel_auroc

    masks, maps = _random_maps()
    y = np.concatenate([masks[k].ravel() > 0 for k in masks])
    s = np.concatenate([maps[k].ravel() for k in masks])
    ref = roc_auc_score(y, s)
    assert pixel_auroc(masks, maps) == pytest.approx(ref, abs=1e-12)
    assert pixel_auroc(list(masks.values()), list(maps.values())) == pytest.approx(ref, abs=1e-12)
    d = pixel_auroc(masks, maps, num_bins=256, return_details=True)
    assert d["method"].startswith("histogram")
    assert abs(d["pixel_auroc"] - ref) <= d["error_bound"] + 1e-12
    assert d["error_bound"] < 0.02
    # automatic switch to the histogram above max_exact_pixels
    d2 = pixel_auroc(masks, maps, max_exact_pixels=10, return_details=True)
    assert d2["method"].startswith("histogram") and d2["pixel_auroc"] == pytest.approx(ref, abs=1e-3)


def test_pixel_auroc_histogram_exact_on_quantised_scores():
    from vadlib.metrics import pixel_auroc

    rng = np.random.default_rng(3)
    m = rng.random((2, 8, 8)) > 0.8
    p = rng.integers(0, 8, size=(2, 8, 8)).astype(float) + m  # 9 distinct levels, many ties
    # 9 integer levels over [0, 8] in 9 bins -> one level per bin -> histogram is exact (ties 1/2)
    assert pixel_auroc([m], [p], num_bins=9) == pytest.approx(roc_auc_score(m.ravel(), p.ravel()), abs=1e-12)


def test_pixel_shape_mismatch_and_degenerate():
    from vadlib.metrics import aupro, pixel_auroc

    with pytest.raises(DataError, match=r"'Test004'.*\(2, 4, 4\).*\(2, 8, 8\)"):
        pixel_auroc({"Test004": np.zeros((2, 4, 4))}, {"Test004": np.zeros((2, 8, 8))})
    with pytest.raises(DataError, match="Test009"):
        aupro({"Test001": np.zeros((1, 4, 4))}, {"Test009": np.zeros((1, 4, 4))})
    with pytest.raises(DataError, match=r"'1'.*NaN"):
        pixel_auroc([np.ones((1, 2, 2)), np.ones((1, 2, 2))], [np.zeros((1, 2, 2)), np.full((1, 2, 2), np.nan)])
    with pytest.warns(UserWarning, match="no anomalous"):
        assert math.isnan(pixel_auroc([np.zeros((1, 3, 3))], [np.random.rand(1, 3, 3)]))
    with pytest.warns(UserWarning, match="no anomalous GT region"):
        assert math.isnan(aupro([np.zeros((1, 3, 3))], [np.random.rand(1, 3, 3)]))


def test_resize_maps():
    from vadlib.metrics import resize_maps

    out = resize_maps({"a": np.ones((3, 4, 5))}, (8, 10))
    assert out["a"].shape == (3, 8, 10) and np.allclose(out["a"], 1.0)
    ramp = np.tile(np.arange(4.0), (4, 1))[None]  # values increase left to right
    r = resize_maps([ramp], (8, 8))[0]
    assert r.shape == (1, 8, 8) and np.all(np.diff(r[0, 0]) >= 0)


# ------------------------------------------------------------------ AUPRO


def test_aupro_hand_worked_two_regions_mean_over_regions():
    from vadlib.metrics import aupro

    # frame a: 1-pixel region scored .9; normals .5 .1 .1
    # frame b: 3-pixel region scored .9 .2 .2; normal .1      -> 4 normal pixels, 2 regions
    # threshold .9: FPR 0,   PRO = (1 + 1/3)/2 = 2/3   (pixel-weighted would be 2/4)
    # threshold .5: FPR 1/4, PRO 2/3;  threshold .2: FPR 1/4, PRO 1;  threshold .1: FPR 1, PRO 1
    # area to 0.3 = 0.25 * 2/3 + 0.05 * 1 = 13/60 ; / 0.3 -> 13/18
    masks = {"a": np.array([[[1, 0], [0, 0]]]), "b": np.array([[[1, 1], [1, 0]]])}
    maps = {"a": np.array([[[0.9, 0.5], [0.1, 0.1]]]), "b": np.array([[[0.9, 0.2], [0.2, 0.1]]])}
    assert aupro(masks, maps) == pytest.approx(13 / 18)
    assert aupro(masks, maps, num_thresholds=4000) == pytest.approx(13 / 18)


def test_aupro_interpolates_at_fpr_limit_with_ties():
    from vadlib.metrics import aupro

    # region pixel .5 ties with one normal .5; normals .9 .5 .1 .1 (4 normal pixels)
    # curve (0,0) -> (.25,0) [thr .9] -> (.5,1) [thr .5] -> (1,1); PRO at FPR .3 = 0.2 (linear)
    # area = 0.5 * (0 + 0.2) * 0.05 = 0.005 ; / 0.3 = 1/60
    m = np.zeros((1, 1, 5))
    m[0, 0, 0] = 1
    p = np.array([[[0.5, 0.9, 0.5, 0.1, 0.1]]])
    assert aupro([m], [p]) == pytest.approx(1 / 60)
    # other limit: to FPR 0.5 -> area 0.125, /0.5 = 0.25
    assert aupro([m], [p], fpr_limit=0.5) == pytest.approx(0.25)


def test_aupro_uses_8_connectivity():
    from vadlib.metrics import aupro

    # GT pixels (0,0), (1,1), (1,2): one region with 8-connectivity (two with 4-connectivity).
    m = np.zeros((1, 3, 3), int)
    m[0, 0, 0] = m[0, 1, 1] = m[0, 1, 2] = 1
    p = np.full((1, 3, 3), 0.5)
    p[0, 0, 0] = 0.9
    p[0, 1, 1] = p[0, 1, 2] = 0.1
    # 8-conn: PRO at thr .9 = 1/3 and stays until FPR 1 -> AUPRO 1/3 (4-conn would give 1/2)
    assert aupro([m], [p]) == pytest.approx(1 / 3)


def _brute_force_aupro(masks, maps, limit=0.3):
    from scipy.ndimage import label

    regions, ok_s, all_s = [], [], []
    for m, p in zip(masks, maps):
        for t in range(m.shape[0]):
            lab, n = label(m[t] != 0, structure=np.ones((3, 3)))
            regions += [p[t][lab == k] for k in range(1, n + 1)]
            ok_s.append(p[t][lab == 0])
    ok = np.concatenate(ok_s)
    pts = [(0.0, 0.0)]
    for thr in np.unique(np.concatenate([ok] + regions))[::-1]:
        pts.append(((ok >= thr).mean(), np.mean([(r >= thr).mean() for r in regions])))
    x, y = np.array(pts).T
    xs = np.linspace(0, limit, 30001)
    return np.trapezoid(np.interp(xs, x, y), xs) / limit


def test_aupro_matches_brute_force_and_binned_is_close():
    from vadlib.metrics import aupro, pro_curve

    masks, maps = _random_maps(5, n=2, t=2)
    ml, pl = list(masks.values()), list(maps.values())
    exact = aupro(masks, maps)
    assert exact == pytest.approx(_brute_force_aupro(ml, pl), abs=2e-4)
    assert aupro(masks, maps, num_thresholds=20000) == pytest.approx(exact, abs=2e-3)
    c = pro_curve(masks, maps)
    assert np.all(np.diff(c["fpr"]) >= 0) and np.all(np.diff(c["pro"]) >= 0) and c["pro"][-1] == pytest.approx(1)
    d = aupro(masks, maps, return_details=True)
    assert "anomalib" in d["implementation"] and d["n_regions"] == 4
    # a perfect map scores 1
    perfect = {k: (v > 0).astype(float) for k, v in masks.items()}
    assert aupro(masks, perfect) == pytest.approx(1.0)


# ------------------------------------------------------------------ recognition


NAMES = ["normal", "fight", "fire", "theft"]


def test_recognition_perfect_probs_and_absent_class():
    from vadlib.metrics import recognition_metrics

    y = {"a": np.array([0, 1, 1, 2, 0]), "b": np.array([0, 2, 2, 0, 0])}  # 'theft' absent
    P = {k: np.eye(4)[v] * 0.9 + 0.025 for k, v in y.items()}
    r = recognition_metrics(y, P, NAMES)
    assert r["mAUC"] == 1.0 and r["mAP"] == 1.0
    assert r["top1"] == 1.0 and r["top5"] == 1.0 and r["top5_k"] == 3
    assert r["absent_classes"] == ["theft"] and r["present_classes"] == ["fight", "fire"]
    assert math.isnan(r["per_class_auc"]["theft"])
    assert r["n_anomalous"] == 5 and r["class_counts"]["fire"] == 3


def test_recognition_matches_sklearn_one_vs_rest_and_topk_by_hand():
    from vadlib.metrics import recognition_metrics

    rng = np.random.default_rng(1)
    y = {"a": rng.integers(0, 4, 40), "b": rng.integers(0, 4, 30)}
    P = {k: rng.dirichlet(np.ones(4), size=v.size) for k, v in y.items()}
    r = recognition_metrics(y, P, NAMES)
    ya = np.concatenate(list(y.values()))
    Pa = np.concatenate(list(P.values()))
    aucs = [roc_auc_score(ya == c, Pa[:, c]) for c in (1, 2, 3)]
    aps = [average_precision_score(ya == c, Pa[:, c]) for c in (1, 2, 3)]
    assert r["mAUC"] == pytest.approx(np.mean(aucs)) and r["mAP"] == pytest.approx(np.mean(aps))
    assert r["per_class_auc"]["normal"] == pytest.approx(roc_auc_score(ya == 0, Pa[:, 0]))

    # hand top-k: anomaly frames of class 1, 2, 3; normal column is ignored in the ranking
    yk = {"v": np.array([1, 2, 3, 0])}
    Pk = {"v": np.array([[0.9, 0.05, 0.03, 0.02],    # class 1 ranks first among anomaly classes
                         [0.0, 0.5, 0.1, 0.4],       # class 2 ranks third
                         [0.0, 0.2, 0.3, 0.5],       # class 3 ranks first
                         [1.0, 0.0, 0.0, 0.0]])}
    r = recognition_metrics(yk, Pk, NAMES)
    assert r["top1"] == pytest.approx(2 / 3)
    assert r["top1_per_class"] == {"fight": 1.0, "fire": 0.0, "theft": 1.0}
    assert r["top5"] == 1.0  # k = 3 anomaly classes -> always hit
    # with a fixed detection threshold on 1 - p(normal): frame 0 (0.1) is not detected -> miss
    r = recognition_metrics(yk, Pk, NAMES, detection_threshold=0.5)
    assert r["top1"] == pytest.approx(1 / 3)


def test_recognition_input_errors_and_confusion():
    from vadlib.metrics import recognition_confusion, recognition_metrics

    with pytest.raises(DataError, match=r"'v'.*\(T, 4\)"):
        recognition_metrics({"v": np.zeros(3, int)}, {"v": np.zeros((3, 3))}, NAMES)
    with pytest.raises(DataError, match=r"'v'.*class ids"):
        recognition_metrics({"v": np.array([0, 7])}, {"v": np.zeros((2, 4))}, NAMES)
    y = {"v": np.array([0, 1, 1, 2])}
    P = {"v": np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.8, 0.1, 0.0], [0.1, 0.1, 0.8, 0.0], [0.1, 0.1, 0.8, 0.0]])}
    cm = recognition_confusion(y, P, normalize=False)
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[1, 1] = expected[1, 2] = expected[2, 2] = 1
    np.testing.assert_array_equal(cm, expected)
    np.testing.assert_allclose(recognition_confusion(y, P)[1], [0, 0.5, 0.5, 0])


# ------------------------------------------------------------------ curves


def test_curve_points_decimated_and_finite():
    from sklearn.metrics import auc

    from vadlib.metrics import pr_curve_points, roc_curve_points

    scores, labels = _random_set(4, n_videos=20)
    roc = roc_curve_points(scores, labels, max_points=25)
    assert list(roc.columns) == ["fpr", "tpr", "threshold"] and len(roc) <= 25
    assert roc["fpr"].iloc[0] == 0 and roc["fpr"].iloc[-1] == 1 and roc["tpr"].iloc[-1] == 1
    assert np.isfinite(roc["threshold"]).all() and np.all(np.diff(roc["fpr"]) >= 0)
    full = roc_curve_points(scores, labels, max_points=10**6)
    assert auc(full["fpr"], full["tpr"]) == pytest.approx(evaluate_frames(scores, labels)["micro_auc"])
    pr = pr_curve_points(scores, labels, max_points=25)
    assert list(pr.columns) == ["recall", "precision", "threshold"] and len(pr) <= 25
    assert pr["recall"].iloc[0] == 0 and pr["recall"].iloc[-1] == 1 and np.all(np.diff(pr["recall"]) >= 0)
    assert np.isfinite(pr["threshold"]).all()


def test_json_safe_and_bench_smoke():
    import json

    from vadlib.metrics import json_safe
    from vadlib.bench.metrics import bench_metrics

    r = evaluate_frames({"a": np.arange(3.0)}, {"a": np.zeros(3)})
    txt = json.dumps(json_safe(r), allow_nan=False)  # would raise on NaN
    assert json.loads(txt)["micro_auc"] is None
    assert json_safe({"x": np.float32(0.5), "y": np.array([1, 2])}) == {"x": 0.5, "y": [1, 2]}
    res = bench_metrics(n_frames=500, n_videos=4, pixel_videos=1, pixel_t=3, h=48, w=64)
    assert set(res) == {"evaluate_frames", "pixel_auroc", "aupro"}
