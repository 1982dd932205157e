"""The training-free scorers see what a kind does to motion on the tiny set (the square moves
2 px a frame): faster under skipping, none when frozen."""

from __future__ import annotations

import numpy as np
import pytest

from vadlib.data import get_dataset
from vadlib.errors import ConfigError
from vadlib.validation import make_validation_set, validation_metrics
from vadlib.validation.__main__ import main
from vadlib.validation.baselines import SCORERS, score_videos


@pytest.fixture(scope="module")
def motion_set(tmp_path_factory, train_root):
    from vadlib.data.manifest import manifest_dataset

    out = tmp_path_factory.mktemp("mset") / "s"
    return make_validation_set(manifest_dataset(train_root, name="tiny"), ["v0", "v1", "v2"], out,
                               ["skip", "freeze"], seed=2, span=(8, 12), margin=3)


@pytest.mark.parametrize("scorer,skip_auc", [("naive_flow", 0.7), ("frame_diff", 0.9)])  # DIS is coarse at 32x48
def test_scorer_separates_skip_and_inverts_freeze(motion_set, scorer, skip_auc):
    ds = get_dataset("pseudo_anomalies", motion_set)
    scores = score_videos(ds.videos("test"), scorer)
    for v in ds.videos("test"):
        assert scores[v.name].shape == v.frame_labels.shape and np.isfinite(scores[v.name]).all()
    r = validation_metrics(scores, ds)
    assert r["per_kind"]["skip"] > skip_auc
    assert r["per_kind"]["freeze"] < 0.3  # a frozen frame has no motion at all: scored most normal


def test_unknown_scorer_lists_known():
    with pytest.raises(ConfigError, match="known: frame_diff, naive_flow"):
        SCORERS.get("nope")


def test_cli_make_and_score(train_root, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["make", "--dataset", "manifest", "--root", str(train_root), "--videos", "v0,v1",
                 "--out", str(out), "--kinds", "skip,patch", "--span", "5,10", "--margin", "3"]) == 0
    assert (out / "index.json").is_file()
    assert main(["score", str(out), "--scorer", "frame_diff"]) == 0
    text = capsys.readouterr().out
    assert "v1_patch" in text and "micro AUC" in text and "skip" in text
