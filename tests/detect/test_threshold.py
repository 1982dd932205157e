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


def test_a_threshold_records_its_precision_and_warns_under_another(tmp_path):
    """The encoder precision is recorded; a threshold of another precision still matches (bf16 and fp32
    features agree to cos >= 0.999) but yields a warning naming both precisions and the fix."""
    th = Threshold(value=0.5, source="calibrated", false_alarm_rate=0.01).stamp({**RUN, "precision": "fp32"})
    th.save(tmp_path / "threshold.json")
    again = Threshold.load(tmp_path / "threshold.json")
    assert again.precision == "fp32" and "in fp32" in again.describe()
    assert again.matches({**RUN, "precision": "bf16"})
    assert again.precision_mismatch({**RUN, "precision": "fp32"}) is None
    warn = again.precision_mismatch({**RUN, "precision": "bf16"})
    assert "fp32" in warn and "bf16" in warn and "--precision fp32" in warn and "--calibrate" in warn


def test_an_old_threshold_without_precision_never_warns(tmp_path):
    old = {"value": 0.3, "source": "calibrated", "method": "zeroshot", "score": "softmax", "sampling": "every 8",
           "backbone": "vadlib-tiny", "pretrained": "random", "norm": None}
    (tmp_path / "threshold.json").write_text(json.dumps(old))
    th = Threshold.load(tmp_path / "threshold.json")
    assert th.precision is None and th.precision_mismatch({**RUN, "precision": "bf16"}) is None
