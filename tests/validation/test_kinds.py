"""Each pseudo-anomaly kind labels exactly the frames it changed, reproducibly from its seed."""

from __future__ import annotations

import numpy as np
import pytest

from vadlib.errors import ConfigError, DataError
from vadlib.validation.kinds import KINDS, SPATIAL, temporal_labels

TEMPORAL = ("skip", "reverse", "freeze")
SPAN = (5, 12)


@pytest.fixture(scope="module")
def video(make_video):
    return make_video(70, 0)


@pytest.fixture(scope="module")
def donor(make_video):
    return make_video(60, 1)[:, ::-1].copy()  # square walks the other way, different background


def test_registry_has_the_kinds():
    assert set(KINDS.names()) >= {"skip", "reverse", "freeze", "patch", "object"}


def test_unknown_kind_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown pseudo-anomaly kind 'jitter'.*freeze.*object.*patch.*reverse.*skip"):
        KINDS.get("jitter")


@pytest.mark.parametrize("kind", TEMPORAL)
@pytest.mark.parametrize("seed", range(8))
def test_temporal_labels_are_exactly_the_unnatural_steps(video, kind, seed, frame_ids):
    pv = KINDS.get(kind)(video, np.random.default_rng(seed), span=SPAN, margin=3)
    ids = frame_ids(pv.frames)  # read back from the pixels, not from the kind's own bookkeeping
    np.testing.assert_array_equal(ids, pv.source)
    step = np.diff(ids)
    natural = np.concatenate([[True], step == 1])
    np.testing.assert_array_equal(pv.labels, (~natural).astype(np.uint8))
    ev = pv.events[0]
    L = ev["end"] - ev["start"]
    assert SPAN[0] <= L <= SPAN[1]
    expected = np.zeros(len(ids), np.uint8)
    expected[ev["start"]:ev["end"]] = 1
    np.testing.assert_array_equal(pv.labels, expected)
    # outside the span every frame is the original's next frame; before the span the video is the original
    np.testing.assert_array_equal(pv.frames[:ev["start"]], video[:ev["start"]])
    assert ev["start"] >= 3 and len(ids) - ev["end"] >= 3  # margin of normal frames on both sides
    if kind == "skip":
        assert set(step[ev["start"] - 1:ev["end"] - 1]) == {ev["factor"]} and 2 <= ev["factor"] <= 4
    elif kind == "reverse":
        assert set(step[ev["start"] - 1:ev["end"] - 1]) == {-1}
    else:
        assert set(step[ev["start"] - 1:ev["end"] - 1]) == {0}


@pytest.mark.parametrize("kind", SPATIAL)
@pytest.mark.parametrize("seed", range(6))
def test_spatial_labels_are_exactly_the_changed_frames(video, donor, kind, seed):
    pv = KINDS.get(kind)(video, np.random.default_rng(seed), span=SPAN, margin=3, donor=donor)
    assert pv.frames.shape == video.shape
    np.testing.assert_array_equal(pv.source, np.arange(len(video)))
    changed = (pv.frames != video).reshape(len(video), -1).any(1)
    np.testing.assert_array_equal(pv.labels, changed.astype(np.uint8))
    ev = pv.events[0]
    assert not changed[:ev["start"]].any() and not changed[ev["end"]:].any()
    assert pv.labels.sum() >= 1
    # changes stay inside the recorded box of each frame
    for j, (x0, y0, x1, y1) in enumerate(ev["boxes"]):
        diff = (pv.frames[ev["start"] + j] != video[ev["start"] + j]).any(-1)
        outside = diff.copy()
        outside[y0:y1, x0:x1] = False
        assert not outside.any()
    if kind == "patch":
        assert pv.labels[ev["start"]:ev["end"]].all()


def test_object_pastes_the_moving_square_only(video):
    # donor: the square on a flat background; only the square (dilated) may be pasted
    donor = np.full_like(video, 60)
    for t in range(len(donor)):
        x = (3 * t) % (48 - 8)
        donor[t, 8:16, x:x + 8] = 250
    pv = KINDS.get("object")(video, np.random.default_rng(3), span=SPAN, margin=3, donor=donor, size=(0.5, 0.5))
    ev = pv.events[0]
    changed = pv.frames[ev["start"]:ev["end"]] != video[ev["start"]:ev["end"]]
    assert changed.any()
    assert set(np.unique(pv.frames[ev["start"]:ev["end"]][changed])) <= {60, 250}


@pytest.mark.parametrize("kind", KINDS.names())
def test_same_seed_same_event_other_seed_other_event(video, donor, kind):
    a = KINDS.get(kind)(video, np.random.default_rng(11), span=SPAN, margin=3, donor=donor)
    b = KINDS.get(kind)(video, np.random.default_rng(11), span=SPAN, margin=3, donor=donor)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert a.events == b.events
    others = [KINDS.get(kind)(video, np.random.default_rng(s), span=SPAN, margin=3, donor=donor) for s in (12, 13, 14)]
    assert any(o.events != a.events for o in others)


@pytest.mark.parametrize("kind", KINDS.names())
def test_video_shorter_than_the_span_is_refused(kind, donor, make_video):
    short = make_video(20, 2)
    with pytest.raises(DataError, match=r"has 20 frames but a span of 30 frames needs \d+"):
        KINDS.get(kind)(short, np.random.default_rng(0), span=(30, 40), margin=3, donor=donor)


@pytest.mark.parametrize("span", [(0, 3), (5, 2), ("a", 3)])
def test_bad_span_is_a_config_error(video, span):
    with pytest.raises(ConfigError, match="span"):
        KINDS.get("freeze")(video, np.random.default_rng(0), span=span)


def test_skip_factor_below_two_is_refused(video):
    with pytest.raises(ConfigError, match="factor"):
        KINDS.get("skip")(video, np.random.default_rng(0), factor=(1, 3))


@pytest.mark.parametrize("kind", SPATIAL)
def test_spatial_kind_needs_a_donor(video, kind):
    with pytest.raises(ConfigError, match="donor"):
        KINDS.get(kind)(video, np.random.default_rng(0))


def test_temporal_labels_helper():
    np.testing.assert_array_equal(temporal_labels(np.array([0, 1, 2, 4, 6, 7, 7, 8])), [0, 0, 0, 1, 1, 0, 1, 0])
