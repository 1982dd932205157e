import numpy as np
import pytest

from vadlib.errors import ConfigError
from vadlib.events import Threshold, calibrate_threshold, find_events, temporal_nms


def test_find_events_runs_merge_and_labels():
    s = np.array([0, 0.9, 0.8, 0, 0, 0.7, 0, 0, 0, 0.95, 0.99, 0.2])
    fired = np.array([0, 1, 1, 0, 0, 1, 0, 0, 0, 2, 2, 0])
    ev = find_events(s, 0.5, fps=10, labels=["a", "b", "c"], fired=fired)
    assert [(e.start, e.end, e.peak_frame, e.label) for e in ev] == [(1, 2, 1, "b"), (5, 5, 5, "b"), (9, 10, 10, "c")]
    assert ev[2].start_s == 0.9 and ev[2].end_s == pytest.approx(1.1)
    merged = find_events(s, 0.5, merge_gap=2)
    assert [(e.start, e.end) for e in merged] == [(1, 5), (9, 10)]
    assert [(e.start, e.end) for e in find_events(s, 0.5, min_length=2)] == [(1, 2), (9, 10)]
    assert find_events(np.zeros(5), 0.5) == []


def test_calibration_uses_normal_quantile(tmp_path):
    normal = [np.linspace(0, 1, 101), np.linspace(0, 1, 101)]
    th = calibrate_threshold(normal, false_alarm_rate=0.1, source="normal clips")
    assert th.value == pytest.approx(0.9)
    assert th.n_reference_frames == 202 and "normal clips" in th.source
    assert Threshold.load(th.save(tmp_path / "t.json")) == th
    with pytest.raises(ConfigError):
        calibrate_threshold(normal, false_alarm_rate=0)


def test_temporal_nms_one_hit_per_event():
    s = np.zeros(100)
    s[10:20] = np.linspace(0.5, 1.0, 10)
    s[60:65] = 0.8
    assert temporal_nms(s, radius=8, top_k=2) == [19, 60]
