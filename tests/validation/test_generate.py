"""make_validation_set writes a set like a dataset, reproducibly and atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vadlib.data import get_dataset
from vadlib.errors import ConfigError, DataError
from vadlib.validation import generate, held_out_videos, load_validation_set, make_validation_set

KW = dict(span=(5, 12), margin=3)
ALL = ("skip", "reverse", "freeze", "patch", "object")


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory, train_root):
    from vadlib.data.manifest import manifest_dataset

    ds = manifest_dataset(train_root, name="tiny")
    out = tmp_path_factory.mktemp("val") / "set"
    make_validation_set(ds, ["v0", "v1"], out, ALL, seed=0, **KW)
    return out


def test_set_loads_through_the_dataset_registry(made, train_ds):
    ds = get_dataset("pseudo_anomalies", made)
    assert ds.name == "tiny_pseudo"
    assert ds.videos("train") == []
    vids = {v.name: v for v in ds.videos("test")}
    assert sorted(vids) == sorted(f"{s}_{k}" for s in ("v0", "v1") for k in ("normal", *ALL))
    index = json.loads((made / "index.json").read_text())
    for rec in index["videos"]:
        v = vids[rec["name"]]
        assert v.meta["kind"] == rec["kind"] and v.meta["source_video"] == rec["source_video"]
        frames = v.open().get(range(len(v.open())))
        assert len(frames) == v.num_frames == len(v.frame_labels) == rec["n_frames"]
        np.testing.assert_array_equal(v.frame_labels, np.load(made / "labels" / f"{v.name}.npy"))
        # the written frames are the source frames at source_index, pasted where labelled (spatial kinds)
        src = train_ds.video(rec["source_video"])
        orig = src.open().get(rec["source_index"])
        same = (frames == orig).reshape(len(frames), -1).all(1)
        if rec["kind"] in ("patch", "object"):
            np.testing.assert_array_equal(~same, v.frame_labels.astype(bool))
        else:
            assert same.all()
        assert v.label == int(v.frame_labels.any())
        assert (v.frame_labels.sum() > 0) == (rec["kind"] != "normal")
    # the generic manifest adapter reads the same set
    man = get_dataset("manifest", made)
    assert sorted(v.name for v in man.videos("test")) == sorted(vids)


def test_same_seed_gives_byte_identical_files(made, train_ds, tmp_path):
    again = make_validation_set(train_ds, ["v0", "v1"], tmp_path / "again", ALL, seed=0, **KW)
    assert files(again) == files(made)


def test_other_seed_gives_another_set(made, train_ds, tmp_path):
    other = make_validation_set(train_ds, ["v0", "v1"], tmp_path / "other", ALL, seed=1, **KW)
    a, b = files(made), files(other)
    assert {k for k in a if k.startswith("labels/")} == {k for k in b if k.startswith("labels/")}
    changed = [k for k in a if k.startswith("labels/") and a[k] != b[k]]
    assert len(changed) >= 6  # of the 10 pseudo-anomalous videos
    # clean copies do not depend on the seed
    assert a["labels/v0_normal.npy"] == b["labels/v0_normal.npy"]


def test_event_does_not_depend_on_the_rest_of_the_set(made, train_ds, tmp_path):
    alone = make_validation_set(train_ds, ["v0", "v1"], tmp_path / "alone", ["freeze"], seed=0, **KW)
    assert files(alone)["labels/v1_freeze.npy"] == files(made)["labels/v1_freeze.npy"]


def test_same_config_is_reused_other_config_replaces(made, train_ds, tmp_path):
    out = tmp_path / "s"
    make_validation_set(train_ds, ["v0"], out, ["skip"], seed=0, **KW)
    stamp = (out / "index.json").stat().st_mtime_ns
    make_validation_set(train_ds, ["v0"], out, ["skip"], seed=0, **KW)
    assert (out / "index.json").stat().st_mtime_ns == stamp
    opts = {"skip": {"factor": (2, 3)}}  # a tuple option is stored as a list and still matches
    make_validation_set(train_ds, ["v0"], out, ["skip"], seed=0, options=opts, **KW)
    stamp = (out / "index.json").stat().st_mtime_ns
    make_validation_set(train_ds, ["v0"], out, ["skip"], seed=0, options=opts, **KW)
    assert (out / "index.json").stat().st_mtime_ns == stamp
    make_validation_set(train_ds, ["v0"], out, ["freeze"], seed=0, **KW)
    assert json.loads((out / "index.json").read_text())["config"]["kinds"] == ["freeze"]
    assert not (out / "frames" / "v0_skip").exists()


def test_test_videos_are_refused(train_ds, tmp_path):
    with pytest.raises(DataError, match="'t0' is not a training video.*never test videos"):
        make_validation_set(train_ds, ["v0", "t0"], tmp_path / "x", ["skip"], **KW)
    with pytest.raises(DataError, match="no training video 'nope'"):
        make_validation_set(train_ds, ["nope"], tmp_path / "x", ["skip"], **KW)
    assert not (tmp_path / "x").exists()


def test_unknown_kind_lists_the_known_ones(train_ds, tmp_path):
    with pytest.raises(ConfigError, match="unknown pseudo-anomaly kind 'blur'; known: freeze, object, patch, reverse, skip"):
        make_validation_set(train_ds, ["v0"], tmp_path / "x", ["skip", "blur"], **KW)
    with pytest.raises(ConfigError, match="'normal' is not a kind"):
        make_validation_set(train_ds, ["v0"], tmp_path / "x", ["normal"], **KW)


def test_spatial_kind_with_one_video_needs_donors(train_ds, tmp_path):
    with pytest.raises(ConfigError, match="donors"):
        make_validation_set(train_ds, ["v0"], tmp_path / "x", ["patch"], **KW)
    out = make_validation_set(train_ds, ["v0"], tmp_path / "y", ["patch"], donors=["v2"], **KW)
    ev = json.loads((out / "index.json").read_text())["videos"][1]["events"][0]
    assert ev["donor"] == "v2"


def test_video_shorter_than_span_names_the_video(train_ds, tmp_path):
    with pytest.raises(DataError, match=r"v0.*has 60 frames but a span of 70 frames"):
        make_validation_set(train_ds, ["v0"], tmp_path / "x", ["skip"], span=(70, 80), margin=3)
    assert not (tmp_path / "x").exists()


def test_bad_options_are_config_errors(train_ds, tmp_path):
    with pytest.raises(ConfigError, match="kind 'skip': bad options"):
        make_validation_set(train_ds, ["v0"], tmp_path / "x", ["skip"], options={"skip": {"speed": 3}}, **KW)
    with pytest.raises(ConfigError, match="not among the requested kinds"):
        make_validation_set(train_ds, ["v0"], tmp_path / "x", ["skip"], options={"freeze": {}}, **KW)


def test_interrupted_write_leaves_nothing_finished_looking(train_ds, tmp_path, monkeypatch):
    real = generate._write_frames
    calls = []

    def failing(folder, frames, ext):
        calls.append(folder)
        if len(calls) == 4:
            raise KeyboardInterrupt("simulated interruption")
        real(folder, frames, ext)

    monkeypatch.setattr(generate, "_write_frames", failing)
    with pytest.raises(KeyboardInterrupt):
        make_validation_set(train_ds, ["v0", "v1"], tmp_path / "set", ["skip", "freeze"], **KW)
    assert list(tmp_path.iterdir()) == []  # no out_dir, no temporary folder left
    # an existing finished set survives a failed regeneration untouched
    monkeypatch.setattr(generate, "_write_frames", real)
    make_validation_set(train_ds, ["v0"], tmp_path / "set", ["skip"], **KW)
    before = files(tmp_path / "set")
    calls.clear()
    monkeypatch.setattr(generate, "_write_frames", failing)
    with pytest.raises(KeyboardInterrupt):
        make_validation_set(train_ds, ["v0", "v1"], tmp_path / "set", ["skip", "freeze"], **KW)
    assert files(tmp_path / "set") == before
    assert [p.name for p in tmp_path.iterdir()] == ["set"]


def test_foreign_folder_is_never_replaced(train_ds, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for force in (False, True):
        with pytest.raises(DataError, match="not a validation set"):
            make_validation_set(train_ds, ["v0"], out, ["skip"], force=force, **KW)
    assert (out / "notes.txt").read_text() == "keep me"


def test_adapter_refuses_a_folder_without_index(tmp_path):
    with pytest.raises(DataError, match="not a finished pseudo-anomaly validation set"):
        load_validation_set(tmp_path)
    with pytest.raises(ConfigError, match="unknown option"):
        get_dataset("pseudo_anomalies", tmp_path, seed=3)


def test_held_out_videos_are_the_sources_and_donors(made, train_ds, tmp_path):
    assert held_out_videos(load_validation_set(made)) == ["v0", "v1"]
    out = make_validation_set(train_ds, ["v0"], tmp_path / "d", ["object"], donors=["v2"], **KW)
    assert held_out_videos(load_validation_set(out)) == ["v0", "v2"]
    with pytest.raises(DataError, match="not a pseudo-anomaly validation set"):
        held_out_videos(train_ds)
