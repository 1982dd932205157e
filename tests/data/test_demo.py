"""The demo benchmark's adapters (``vadlib.data.demo``) on a rendered root: dataset structure, both
layouts, labels/masks, missing or incomplete roots and corrupt files. The renderer itself
(``vadlib.synthetic.demo``) is tested in tests/synthetic/test_demo.py."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import vadlib.data.demo as demo
import vadlib.synthetic.demo as renderer
from vadlib.data import get_dataset
from vadlib.data.video import VideoFile
from vadlib.errors import ConfigError, DataError

# tiny, with five anomalous test videos per scene so every class is in the test split
COVER = dict(test_anomalous=len(demo.DEMO_CLASSES), test_normal=1)
# the smallest root, for determinism and corruption tests (one scene)
MINI = dict(train_normal=1, train_abnormal=1, test_normal=1, test_anomalous=2, frames=16)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return renderer.generate_demo(tmp_path_factory.mktemp("demo") / "demo", seed=0, size="tiny", **COVER)


def _mini(path: Path, seed: int = 0) -> Path:
    return renderer.generate_demo(path, seed=seed, size="tiny", scenes=("a",), **MINI)


@pytest.mark.parametrize("scene", demo.SCENES)
def test_dataset_structure(root, scene):
    ds = get_dataset(f"demo_{scene}", root)
    assert ds.name == f"demo_{scene}" and ds.class_names == ["normal", *demo.DEMO_CLASSES]
    assert set(ds.descriptions) == set(demo.DEMO_CLASSES) and all(ds.descriptions.values())
    cfg = json.loads((root / demo.MARKER).read_text())["config"]
    train, test = ds.videos("train"), ds.videos("test")
    assert len(train) == cfg["train_normal"] + cfg["train_abnormal"]
    assert len(test) == cfg["test_normal"] + cfg["test_anomalous"]
    assert sum(v.label for v in train) == cfg["train_abnormal"]
    assert sum(v.label for v in test) == cfg["test_anomalous"]
    for v in train:  # weak labels only: no frame GT exposed, none written
        assert v.frame_labels is None and v.mask_loader is None and v.meta["scene"] == scene
        assert v.class_name in ds.class_names and (v.class_name != "normal") == bool(v.label)
        assert not (root / scene / "annotations" / f"{v.name}.npz").exists()
    for v in test:
        assert v.meta["scene"] == scene and v.fps == cfg["fps"]
        assert v.frame_labels.dtype == np.uint8 and v.frame_classes.dtype == np.int64
        assert bool(v.frame_labels.any()) == bool(v.label)


@pytest.mark.parametrize("scene", demo.SCENES)
def test_decord_and_frames_layout_agree_with_annotations(root, scene):
    vids = get_dataset(f"demo_{scene}", root, layout="video")
    frames = get_dataset(f"demo_{scene}", root, layout="frames")
    for v in vids.videos("train") + vids.videos("test"):
        src = v.open()
        assert isinstance(src, VideoFile)
        f = frames.video(v.name)
        folder = f.open()
        assert len(src) == v.num_frames == len(folder) == f.num_frames
        v.check_labels(len(src))
        if v.frame_labels is not None:
            assert len(v.frame_labels) == len(src)
        a, b = src.get([0, len(src) - 1]), folder.get([0, len(src) - 1])
        assert a.shape == b.shape == (2, 72, 96, 3)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 12  # same content, two codecs


@pytest.mark.parametrize("scene", demo.SCENES)
def test_masks_nonempty_exactly_on_anomalous_frames(root, scene):
    ds = get_dataset(f"demo_{scene}", root)
    for v in ds.videos("test"):
        m = v.masks()
        assert m.dtype == bool and m.shape == (v.num_frames, 72, 96)
        on = m.reshape(len(m), -1).any(1)
        assert np.array_equal(on, v.frame_labels.astype(bool))
        assert np.array_equal(v.frame_classes > 0, v.frame_labels.astype(bool))
        if v.label:
            assert demo.CLASS_NAMES.index(v.class_name) in set(v.frame_classes.tolist())
            assert m.sum() < 0.25 * m.size  # the objects, not the frame


def test_missing_or_incomplete_root(tmp_path):
    with pytest.raises(DataError) as exc:
        get_dataset("demo_a", tmp_path / "nothing")  # get_dataset's own existence check
    assert str(exc.value).startswith(str(tmp_path / "nothing"))
    with pytest.raises(DataError, match="python -m vadlib.synthetic.demo") as exc:
        demo.demo_a(tmp_path / "nothing")
    assert str(exc.value).startswith(str(tmp_path / "nothing"))
    (tmp_path / "half" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="marker") as exc:
        get_dataset("demo_a", tmp_path / "half")
    assert "python -m vadlib.synthetic.demo" in str(exc.value)
    r = _mini(tmp_path / "only_a")
    with pytest.raises(DataError, match="scene 'b'"):
        get_dataset("demo_b", r)
    with pytest.raises(ConfigError, match="layout"):
        get_dataset("demo_a", r, layout="tiles")
    with pytest.raises(ConfigError, match="unknown option"):
        get_dataset("demo_a", r, scene="b")
    assert get_dataset("demo_a", r / "a").root == r / "a"  # the scene folder itself works too


def test_truncated_empty_video_and_bad_gt(tmp_path):
    r = _mini(tmp_path / "r")
    ds = get_dataset("demo_a", r)
    v = next(v for v in ds.videos("test") if v.label)
    data = v.path.read_bytes()
    v.path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError) as exc:
        src = v.open()
        src.get(range(v.num_frames))
        assert len(src) == v.num_frames, "truncated video decoded in full"
    assert str(v.path) in str(exc.value)
    v.path.write_bytes(b"")
    with pytest.raises(DataError, match="empty") as exc:
        get_dataset("demo_a", r)
    assert str(v.path) in str(exc.value)
    v.path.write_bytes(data)
    ann = r / "a" / "annotations" / f"{v.name}.npz"
    with np.load(ann) as z:
        lab, cls = z["frame_labels"], z["frame_classes"]
    np.savez(ann, frame_labels=lab[:-3], frame_classes=cls[:-3])
    with pytest.raises(DataError, match="frame labels") as exc:
        get_dataset("demo_a", r)
    assert str(ann) in str(exc.value)
    np.savez(ann, frame_labels=lab, frame_classes=cls)
    mask = r / "a" / "masks" / f"{v.name}.npz"
    m = demo.load_masks(mask)
    demo.save_masks(mask, m[:-1])
    with pytest.raises(DataError, match="masks") as exc:
        get_dataset("demo_a", r).video(v.name).masks()
    assert str(mask) in str(exc.value)
    shutil.rmtree(r / "a" / "frames" / "test" / v.name)
    os.makedirs(r / "a" / "frames" / "test" / v.name)
    with pytest.raises(DataError, match="no image files"):
        get_dataset("demo_a", r, layout="frames")
