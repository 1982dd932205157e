"""Synthetic demo benchmark: determinism, layouts, labels/masks, class coverage, bad inputs."""

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


def _contents(root: Path) -> dict[str, bytes]:
    """Every file's bytes except the videos (checked through their decoded frames)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".mp4"}


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    r1, r2, r3 = _mini(tmp_path / "r1"), _mini(tmp_path / "r2"), _mini(tmp_path / "r3", seed=1)
    c1, c2, c3 = _contents(r1), _contents(r2), _contents(r3)
    assert c1.keys() == c2.keys() and any(k.endswith(".jpg") for k in c1)
    assert [k for k in c1 if c1[k] != c2[k]] == []
    for k in ("a/annotations/a_test_000.npz", "a/masks/a_test_000.npz", "a/frames/test/a_test_000/005.jpg",
              "a/frames/train/a_train_000/010.jpg"):
        assert c1[k] != c3[k], k
    for p in (r1 / "a/videos/test").glob("*.mp4"):
        a, b = VideoFile(p), VideoFile(r2 / p.relative_to(r1))
        assert np.array_equal(a.get(range(len(a))), b.get(range(len(b))))


def test_regeneration_is_skipped_unless_forced_or_changed(tmp_path):
    r = _mini(tmp_path / "r")
    marker = r / demo.MARKER
    info = json.loads(marker.read_text())
    assert info["seed"] == 0 and info["config"]["frames"] == MINI["frames"] and info["scenes"] == ["a"]
    probe = r / "a" / "probe.txt"
    probe.write_text("still here")
    _mini(r)
    assert probe.exists()                       # same config: nothing rebuilt
    renderer.generate_demo(r, seed=0, size="tiny", scenes=("a",), force=True, **MINI)
    assert not probe.exists()                   # forced: rebuilt
    probe.write_text("x")
    _mini(r, seed=2)
    assert not probe.exists() and json.loads(marker.read_text())["seed"] == 2
    assert not [p for p in r.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="not a demo root") as exc:
        _mini(tmp_path / "mine")
    assert str(exc.value).startswith(str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_bad_options():
    with pytest.raises(ConfigError, match="frame_count"):
        renderer.generate_demo("/nonexistent/x", size="tiny", frame_count=3)
    with pytest.raises(ConfigError, match="huge"):
        renderer.generate_demo("/nonexistent/x", size="huge")
    with pytest.raises(ConfigError, match="scene"):
        renderer.generate_demo("/nonexistent/x", size="tiny", scenes=("c",))


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


def test_every_class_in_the_test_split(root):
    for scene in demo.SCENES:
        ds = get_dataset(f"demo_{scene}", root)
        seen = {ds.class_names[c] for v in ds.videos("test") for c in np.unique(v.frame_classes) if c}
        assert seen == set(demo.DEMO_CLASSES), scene
    # the small preset plans every class as a main class in test and in weak training videos, any offset
    cfg = renderer.DemoConfig.preset("small")
    for off in range(len(demo.DEMO_CLASSES)):
        rng = np.random.default_rng(off)
        for n in (cfg.test_anomalous, cfg.train_abnormal):
            assert {evs[0].cls for evs in renderer._plan(cfg, rng, n, off)} == set(demo.DEMO_CLASSES)
    assert cfg.frames * (cfg.train_normal + cfg.train_abnormal + cfg.test_normal + cfg.test_anomalous) * 2 <= 2500


def test_scenes_differ(root):
    meds = {}
    for scene in demo.SCENES:
        v = get_dataset(f"demo_{scene}", root).videos("train")[0]
        src = v.open()
        meds[scene] = np.median(src.get(range(len(src))).astype(np.float32), 0)  # (H, W, 3) background
    a, b = meds["a"], meds["b"]
    assert np.abs(a.mean((0, 1)) - b.mean((0, 1))).max() > 15   # colour statistics
    assert abs(a.std() - b.std()) > 3 or np.abs(a - b).mean() > 30
    # scene b has a sky at the top, scene a none: top rows are brighter and bluer in b
    assert b[:3, :, 2].mean() > a[:3, :, 2].mean() + 40


def test_manifest_and_classes_files(root):
    classes = json.loads((root / "classes.json").read_text())
    assert classes["class_names"] == ["normal", *demo.DEMO_CLASSES]
    man = json.loads((root / "manifest.json").read_text())
    for split in ("train", "test"):
        assert set(man[split]) == set(demo.SCENES)
        for scene, entries in man[split].items():
            for e in entries:
                assert (root / e["video_path"]).is_file() and e["anomaly"] in (0, 1)
                assert ("gt_path" in e) == (split == "test")


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


@pytest.mark.parametrize("scene", demo.SCENES)
def test_anomalies_move_differently(root, scene):
    """Cyclists, carts and runners move faster in the image than walkers (optical flow)."""
    stats = demo.motion_stats(get_dataset(f"demo_{scene}", root))
    assert "normal" in stats
    for cls in ("cyclist", "running", "cart"):
        assert stats[cls]["flow"] > 1.4 * stats["normal"]["flow"], (cls, stats)
