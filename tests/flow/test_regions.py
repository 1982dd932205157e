"""Moving-region proposals: components, minimum area, merging, optional detector."""

import warnings

import numpy as np
import pytest

from vadlib.errors import ConfigError, WeightsUnavailableError
from vadlib.flow.regions import RegionConfig, detector_boxes, mask_boxes, merge_boxes, propose_regions


def _flow_with_blobs(blobs, shape=(60, 80)):
    f = np.zeros((*shape, 2), np.float32)
    for y0, x0, y1, x1, u in blobs:
        f[y0:y1, x0:x1, 0] = u
    return f


def test_two_objects_two_boxes():
    f = _flow_with_blobs([(5, 5, 20, 20, 2.0), (30, 50, 50, 70, 1.0)])
    boxes = propose_regions(f, cfg=RegionConfig(tau_mag=0.5, pad=0, close=1, open=1, use_diff=False, use_flow=True))
    assert sorted(map(tuple, boxes.tolist())) == [(5, 5, 20, 20), (50, 30, 70, 50)]


def test_min_area_and_threshold():
    f = _flow_with_blobs([(5, 5, 20, 20, 2.0), (40, 40, 44, 44, 2.0), (30, 60, 50, 75, 0.3)])
    boxes = propose_regions(f, cfg=RegionConfig(tau_mag=0.5, min_area=50, pad=0, close=1, open=1, use_diff=False, use_flow=True))
    assert boxes.tolist() == [[5, 5, 20, 20]]  # the 4×4 blob is too small, the slow one below tau


def test_frame_difference_adds_regions():
    f = np.zeros((40, 40, 2), np.float32)
    prev = np.zeros((40, 40), np.uint8)
    cur = prev.copy()
    cur[10:25, 10:25] = 200
    cfg = RegionConfig(pad=0, close=1, open=1, blur=1)
    assert len(propose_regions(f, prev, cur, cfg)) == 1
    assert len(propose_regions(f, prev, cur, RegionConfig(pad=0, close=1, open=1, blur=1, use_flow=True))) == 1
    assert len(propose_regions(f, prev, cur, RegionConfig(pad=0, close=1, open=1, use_diff=False, use_flow=True))) == 0


def test_merge_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 8, 8], [20, 20, 30, 30], [25, 0, 35, 5]])
    merged = merge_boxes(boxes, cover=0.6)
    assert sorted(map(tuple, merged.tolist())) == [(0, 0, 10, 10), (20, 20, 30, 30), (25, 0, 35, 5)]
    assert len(merge_boxes(np.array([[0, 0, 10, 10], [5, 0, 15, 10]]), cover=0.4)) == 1
    assert len(merge_boxes(np.array([[0, 0, 10, 10], [5, 0, 15, 10]]), cover=0.6)) == 2


def test_mask_boxes_exclusive_ends():
    m = np.zeros((10, 10), bool)
    m[2:5, 3:7] = True
    assert mask_boxes(m, 1).tolist() == [[3, 2, 7, 5]]


def test_detector_without_weights_warns_and_falls_back(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="nothing is downloaded"):
        detector_boxes(np.zeros((20, 20), np.uint8), tmp_path / "missing.pth")
    f = _flow_with_blobs([(5, 5, 20, 20, 2.0)])
    cfg = RegionConfig(detector=str(tmp_path / "missing.pth"), use_diff=False, use_flow=True, pad=0, close=1, open=1)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        boxes = propose_regions(f, np.zeros((60, 80), np.uint8), np.zeros((60, 80), np.uint8), cfg)
    assert boxes.tolist() == [[5, 5, 20, 20]]
    assert any("motion boxes only" in str(x.message) for x in w)


def test_bad_config():
    with pytest.raises(ConfigError):
        RegionConfig(merge_cover=0)
    with pytest.raises(ConfigError):
        RegionConfig(min_area=0)
    with pytest.raises(ConfigError, match="use_flow, use_diff"):
        RegionConfig(use_flow=False, use_diff=False)


def test_default_policy_ignores_smooth_flow_between_objects():
    # two objects whose frame differences are apart, joined by a smooth low-speed flow halo (as DIS gives):
    # the default (difference-only) policy keeps them apart, the flow-magnitude mask joins them
    f = np.zeros((60, 80, 2), np.float32)
    f[10:30, 5:75, 0] = 1.0
    prev = np.zeros((60, 80), np.uint8)
    cur = prev.copy()
    cur[12:28, 8:22] = 200
    cur[12:28, 55:70] = 200
    cfg = RegionConfig(pad=0, blur=1, min_area=16)
    assert sorted(map(tuple, propose_regions(f, prev, cur, cfg).tolist())) == [(8, 12, 22, 28), (55, 12, 70, 28)]
    assert len(propose_regions(f, prev, cur, RegionConfig(pad=0, blur=1, min_area=16, use_flow=True))) == 1


def test_windows_cover_moving_pixels_on_a_grid():
    from vadlib.flow.regions import mask_windows

    m = np.zeros((40, 48), bool)
    m[8:24, 16:32] = True  # one 16×16 moving square aligned with the grid
    w = mask_windows(m, 16, 8, 0.25)
    # windows whose top-left lies on the 8-px grid and overlap the square by >= 64 px
    assert [16, 8, 32, 24] in w.tolist()
    assert all((b[2] - b[0], b[3] - b[1]) == (16, 16) for b in w.tolist())
    for x0, y0, x1, y1 in w.tolist():
        assert m[y0:y1, x0:x1].mean() >= 0.25 and x0 % 8 == 0 and y0 % 8 == 0
    assert len(mask_windows(m, 16, 8, 1.0)) == 1          # only the exact square is fully moving
    assert len(mask_windows(np.zeros((40, 48), bool), 16, 8, 0.25)) == 0
    assert len(mask_windows(m[:10], 16, 8, 0.25)) == 0    # frame smaller than a window


def test_window_policy_in_propose_regions():
    f = np.zeros((48, 64, 2), np.float32)
    prev = np.zeros((48, 64), np.uint8)
    cur = prev.copy()
    cur[8:40, 8:24] = 200  # a 16×32 moving object: two stacked windows fully inside
    boxes = propose_regions(f, prev, cur, RegionConfig(window=16, window_stride=8, window_min_moving=0.9,
                                                       close=1, open=1, blur=1))
    assert sorted(map(tuple, boxes.tolist())) == [(8, 8, 24, 24), (8, 16, 24, 32), (8, 24, 24, 40)]
    with pytest.raises(ConfigError, match="window_min_moving"):
        RegionConfig(window=16, window_min_moving=0)
    with pytest.raises(ConfigError, match="window"):
        RegionConfig(window=-1)


def _two_frames(shape=(60, 80), rects=((10, 10, 30, 40),)):
    prev = np.zeros(shape, np.uint8)
    cur = prev.copy()
    for x0, y0, x1, y1 in rects:
        cur[y0:y1, x0:x1] = 200
    return prev, cur


def test_contour_boxes_one_per_blob_without_merging():
    """AI-VAD foreground boxes: one box per external contour, grown by pad, no merging of neighbours."""
    from vadlib.flow.regions import foreground_boxes

    prev, cur = _two_frames(rects=((10, 10, 30, 40), (33, 10, 53, 40)))   # 3 px apart: components+close would join
    cfg = RegionConfig(boxes="contours", blur=1, pad=2, min_area=100)
    boxes = foreground_boxes(prev, cur, cfg)
    assert sorted(map(tuple, boxes.tolist())) == [(8, 8, 32, 42), (31, 8, 55, 42)]
    f = np.zeros((60, 80, 2), np.float32)
    assert len(propose_regions(f, prev, cur, cfg)) == 2


def test_contour_boxes_area_and_aspect_filters():
    from vadlib.flow.regions import foreground_boxes

    prev, cur = _two_frames(rects=((5, 5, 12, 12), (20, 20, 70, 23), (40, 30, 60, 50)))  # small, thin, ok
    boxes = foreground_boxes(prev, cur, RegionConfig(boxes="contours", blur=1, pad=0, min_area=100, max_aspect=10))
    assert boxes.tolist() == [[40, 30, 60, 50]]


def test_contours_exclude_detector_boxes_and_drop_covered():
    from vadlib.flow.regions import drop_covered, foreground_boxes

    prev, cur = _two_frames(rects=((10, 10, 30, 40), (45, 10, 65, 40)))
    boxes = foreground_boxes(prev, cur, RegionConfig(boxes="contours", blur=1, pad=2), exclude=np.array([[10, 10, 30, 40]]))
    assert boxes.tolist() == [[43, 8, 67, 42]]   # the blob under the detector box is blanked out
    det = np.array([[0, 0, 40, 40], [5, 5, 20, 20], [30, 0, 60, 40], [0, 0, 3, 3]])
    # the 15×15 box lies inside the large one; the 3×3 box is below min_area; the third overlaps 1/3
    assert drop_covered(det, min_area=100, cover=0.6).tolist() == [[0, 0, 40, 40], [30, 0, 60, 40]]


def test_unknown_box_policy_and_hog_detector():
    with pytest.raises(ConfigError, match="contours"):
        RegionConfig(boxes="nope")
    import cv2

    from vadlib.flow.regions import hog_boxes

    frame = np.zeros((60, 80), np.uint8)
    if not hasattr(cv2, "HOGDescriptor"):
        with pytest.raises(ConfigError, match="opencv-contrib-python-headless"):
            hog_boxes(frame, "hog", 2.0)
    else:
        assert hog_boxes(frame, "daimler", 2.0).shape == (0, 4)   # nothing to detect on a blank frame
