"""Threshold.matches / stamp: a saved threshold is reused only by a run that makes the same scores."""

from __future__ import annotations

import json

from vadlib.events import Threshold

RUN = {"method": "zeroshot", "score": "softmax", "sampling": "every 8", "backbone": "vadlib-tiny",
       "pretrained": "random", "prompts": ["a cyclist"], "normal_prompts": None}


def test_a_stamped_threshold_matches_its_own_run_and_not_another(tmp_path):
    th = Threshold(value=0.5, source="given").stamp(RUN)
    assert th.matches(RUN)
    for key, other in [("method", "transfer"), ("score", "max_cos"), ("sampling", "every 4"),
                       ("backbone", "ViT-B-16"), ("pretrained", "openai"), ("prompts", ["a cart"]),
                       ("normal_prompts", ["a street"])]:
        assert not th.matches({**RUN, key: other}), key
    assert "prompts ['a cyclist']" in th.describe()


def test_a_threshold_json_of_an_earlier_version_still_loads_and_matches(tmp_path):
    # the fields a threshold.json written before the prompts were recorded holds
    old = {"value": 0.3, "source": "calibrated on normal footage (n.mp4)", "false_alarm_rate": 0.01,
           "n_reference_frames": 40, "method": "anomalyclip", "score": "p_anomaly", "sampling": "every 2",
           "backbone": "vadlib-tiny", "pretrained": "random", "norm": None}
    (tmp_path / "threshold.json").write_text(json.dumps(old))
    th = Threshold.load(tmp_path / "threshold.json")
    run = {**RUN, "method": "anomalyclip", "score": "p_anomaly", "sampling": "every 2", "prompts": []}
    assert th.matches(run) and th.prompts is None
    assert not th.matches({**run, "sampling": "every 8"})
