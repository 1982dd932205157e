"""The synthetic demo benchmark's renderer (``vadlib.synthetic.demo``): determinism in its seed,
regeneration and refusals, bad options, what it renders (every class in the test split, distinct
scenes, anomalies that move differently) and the manifest / classes files it writes. The adapters that
read a rendered root are tested in tests/data/test_demo.py."""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("scene", demo.SCENES)
def test_anomalies_move_differently(root, scene):
    """Cyclists, carts and runners move faster in the image than walkers (optical flow)."""
    stats = demo.motion_stats(get_dataset(f"demo_{scene}", root))
    assert "normal" in stats
    for cls in ("cyclist", "running", "cart"):
        assert stats[cls]["flow"] > 1.4 * stats["normal"]["flow"], (cls, stats)
