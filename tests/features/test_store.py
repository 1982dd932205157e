"""Feature store: config-hashed folders, atomic per-video files, partial indexes, frame expansion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vadlib.errors import ConfigError, DataError
from vadlib.features.store import (FeatureStore, config_hash, expand_to_frames, merge_indexes, part_name,
                                   store_dir)


def make_info(**over):
    info = {"dataset": "toy", "backbone": "vadlib-tiny", "pretrained": "random", "real_weights": False,
            "source": "extracted",
            "preprocessing": {"image_size": 64, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
                              "resize": "shorter", "crop": "center"},
            "sampling": "every", "stride": 2, "snippet_len": None, "crops": 1, "dtype": "float32",
            "precision": "fp32"}
    info.update(over)
    return info


def test_store_dir_names_the_config_and_changes_with_every_config_key(tmp_path):
    base = make_info()
    d = store_dir(tmp_path, "toy", base)
    assert d.parent == tmp_path / "toy"
    assert d.name.startswith("vadlib-tiny__random__every2__c1__")
    assert d.name.endswith(config_hash(base)) and len(config_hash(base)) == 8
    assert store_dir(tmp_path, "toy", make_info()) == d  # deterministic
    variants = [make_info(backbone="ViT-B-16"), make_info(pretrained="openai"), make_info(real_weights=True),
                make_info(sampling="frame"), make_info(stride=4), make_info(crops=10),
                make_info(preprocessing={**base["preprocessing"], "image_size": 224}),
                make_info(preprocessing={**base["preprocessing"], "resize": "squash"}),
                make_info(dtype="float16"), make_info(precision="bf16"), make_info(dataset="other")]
    dirs = {store_dir(tmp_path, "toy", v) for v in variants}
    assert d not in dirs and len(dirs) == len(variants)


def test_store_dir_rejects_bad_config(tmp_path):
    with pytest.raises(ConfigError, match="sampling"):
        store_dir(tmp_path, "toy", make_info(sampling="sometimes"))
    with pytest.raises(ConfigError, match="crops"):
        store_dir(tmp_path, "toy", make_info(crops=3))
    with pytest.raises(ConfigError, match="backbone"):
        store_dir(tmp_path, "toy", make_info(backbone=""))


def test_write_load_roundtrip_and_index(tmp_path):
    info = make_info()
    store = FeatureStore.create(store_dir(tmp_path, "toy", info), info)
    rng = np.random.default_rng(0)
    f_a = rng.normal(size=(5, 8)).astype(np.float64)  # stored as float32
    store.write("a", f_a, np.arange(0, 10, 2), {"num_frames": 10, "fps": 30.0, "split": "test", "label": 1})
    store.write("cls/b", rng.normal(size=(3, 8)), np.array([0, 2, 4]),
                {"num_frames": 6, "split": "train", "label": 0})
    again = FeatureStore.open(store.path)
    assert again.videos() == ["a", "cls/b"]
    assert again.videos("train") == ["cls/b"]
    x = again.load("a")
    assert x.dtype == np.float32 and x.shape == (5, 8)
    np.testing.assert_allclose(x, f_a.astype(np.float32))
    np.testing.assert_array_equal(again.frame_index("a"), [0, 2, 4, 6, 8])
    assert again.num_frames("a") == 10 and again.num_frames("cls/b") == 6
    assert again.has("cls/b") and not again.has("c")
    idx = json.loads((store.path / "index.json").read_text())
    assert idx["backbone"] == "vadlib-tiny" and idx["real_weights"] is False
    assert idx["preprocessing"]["image_size"] == 64
    assert idx["videos"]["a"] == {**idx["videos"]["a"], "n_rows": 5, "num_frames": 10, "fps": 30.0,
                                  "split": "test", "label": 1}
    assert not any("/" in m["file"] for m in idx["videos"].values())  # names with / are escaped
    with pytest.raises(DataError, match="no features for video 'c'"):
        again.load("c")


def test_multicrop_store_shape_checked(tmp_path):
    info = make_info(crops=10)
    store = FeatureStore.create(store_dir(tmp_path, "toy", info), info)
    store.write("a", np.zeros((4, 10, 8)), np.arange(4), {"num_frames": 4})
    assert store.load("a").shape == (4, 10, 8)
    with pytest.raises(DataError, match=r"\(N, 10, D\)"):
        store.write("b", np.zeros((4, 8)), np.arange(4), {"num_frames": 4})


def test_write_rejects_inconsistent_rows(tmp_path):
    info = make_info()
    store = FeatureStore.create(store_dir(tmp_path, "toy", info), info)
    with pytest.raises(DataError, match="frame indices"):
        store.write("a", np.zeros((4, 8)), np.arange(3), {"num_frames": 4})
    with pytest.raises(DataError, match="non-decreasing"):
        store.write("a", np.zeros((2, 8)), np.array([0, 7]), {"num_frames": 4})
    assert not store.has("a") and not list(store.path.glob("a*.npy"))


def test_reopen_with_other_config_raises(tmp_path):
    info = make_info()
    path = store_dir(tmp_path, "toy", info)
    FeatureStore.create(path, info)
    with pytest.raises(ConfigError, match="stride: store has 2, asked for 4"):
        FeatureStore.create(path, make_info(stride=4))
    with pytest.raises(ConfigError, match="backbone"):
        FeatureStore.open(path, expect=make_info(backbone="ViT-B-32"))
    FeatureStore.open(path, expect=make_info())  # same config is fine


def test_open_missing_or_corrupt_store(tmp_path):
    with pytest.raises(DataError, match="not a feature store"):
        FeatureStore.open(tmp_path)
    (tmp_path / "index.json").write_text("{broken")
    with pytest.raises(DataError, match="index.json: feature store index is not valid JSON"):
        FeatureStore.open(tmp_path)


def test_unindexed_files_are_not_finished(tmp_path):
    """A feature file written before a crash (no index entry) does not count as finished."""
    info = make_info()
    store = FeatureStore.create(store_dir(tmp_path, "toy", info), info)
    np.save(store.path / "ghost.npy", np.zeros((3, 8), np.float32))
    (store.path / ".a.xyz.tmp.npy").write_bytes(b"half")
    again = FeatureStore.open(store.path)
    assert again.videos() == [] and not again.has("ghost")
    store.write("a", np.ones((2, 8)), [0, 1], {"num_frames": 2})
    (store.path / "a.frames.npy").unlink()  # a finished entry whose file vanished is not finished
    assert not FeatureStore.open(store.path).has("a")


def test_skipped_videos_listed_then_cleared(tmp_path):
    info = make_info()
    store = FeatureStore.create(store_dir(tmp_path, "toy", info), info)
    store.mark_skipped("bad", "x.avi: cannot decode")
    assert FeatureStore.open(store.path).info["skipped"] == {"bad": "x.avi: cannot decode"}
    store.write("bad", np.ones((1, 8)), [0], {"num_frames": 1})
    assert FeatureStore.open(store.path).info["skipped"] == {}


def test_partial_indexes_merge(tmp_path):
    info = make_info()
    path = store_dir(tmp_path, "toy", info)
    w0 = FeatureStore.create(path, info, rank=0, world=2)
    w1 = FeatureStore.create(path, info, rank=1, world=2)
    w0.write("a", np.ones((2, 8)), [0, 2], {"num_frames": 4, "split": "test"})
    w1.write("b", np.zeros((1, 8)), [0], {"num_frames": 1, "split": "train"})
    w1.mark_skipped("c", "broken")
    assert (path / part_name(0, 2)).is_file() and (path / part_name(1, 2)).is_file()
    assert json.loads((path / "index.json").read_text())["videos"] == {}
    assert sorted(FeatureStore.open(path).videos()) == ["a", "b"]  # parts are read before merging
    merged = merge_indexes(path)
    assert not list(path.glob("index.part-*"))
    assert sorted(json.loads((path / "index.json").read_text())["videos"]) == ["a", "b"]
    assert merged.skipped == {"c": "broken"}
    assert merge_indexes(path).videos() == merged.videos()  # idempotent


def test_expand_to_frames_stride_snippet_tail():
    # stride 3 over 8 frames: rows at 0, 3, 6
    out = expand_to_frames(np.array([1.0, 2.0, 3.0]), np.array([0, 3, 6]), 8)
    np.testing.assert_array_equal(out, [1, 1, 1, 2, 2, 2, 3, 3])
    # 16-frame snippets over 40 frames: 0..15 → row 0, 16..31 → row 1, 32..39 → row 2
    out = expand_to_frames(np.array([5.0, 6.0, 7.0]), np.array([0, 16, 32]), 40)
    assert out.shape == (40,)
    assert set(out[:16]) == {5.0} and set(out[16:32]) == {6.0} and set(out[32:]) == {7.0}
    # tail beyond the last row's span and frames before the first row
    out = expand_to_frames(np.array([1.0, 2.0]), np.array([2, 4]), 10)
    np.testing.assert_array_equal(out, [1, 1, 1, 1, 2, 2, 2, 2, 2, 2])
    # (N, K) values expand row-wise
    out = expand_to_frames(np.array([[1, 10], [2, 20]]), np.array([0, 2]), 3)
    np.testing.assert_array_equal(out, [[1, 10], [1, 10], [2, 20]])
    with pytest.raises(ConfigError):
        expand_to_frames(np.array([1.0]), np.array([0, 1]), 3)
