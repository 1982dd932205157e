"""JSON manifest adapter: round trip with the demo benchmark, hand-written manifests, bad manifests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import vadlib.data.demo as demo
import vadlib.synthetic.demo as renderer
import vadlib.data.manifest as manifest
from vadlib.data import get_dataset
from vadlib.errors import DataError

MINI = dict(train_normal=1, train_abnormal=1, test_normal=1, test_anomalous=2, frames=16)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return renderer.generate_demo(tmp_path_factory.mktemp("m") / "demo", seed=0, size="tiny", **MINI)


def test_round_trip_with_the_demo(root):
    ds = get_dataset("manifest", root)
    same = get_dataset("manifest", root / "manifest.json")
    assert [v.name for v in ds.videos("test")] == [v.name for v in same.videos("test")]
    assert ds.class_names == ["normal", *demo.DEMO_CLASSES] and ds.descriptions == demo.DEMO_DESCRIPTIONS
    for scene in demo.SCENES:
        ref = get_dataset(f"demo_{scene}", root)
        sub = get_dataset("manifest", root, scene=scene)
        for split in ("train", "test"):
            a, b = ref.videos(split), sub.videos(split)
            assert [v.name for v in a] == [v.name for v in b]
            assert [v.label for v in a] == [v.label for v in b]
            assert [v.class_name for v in a] == [v.class_name for v in b]
            assert all(v.meta["scene"] == scene for v in b)
        for va, vb in zip(ref.videos("test"), sub.videos("test")):
            assert np.array_equal(va.frame_labels, vb.frame_labels)
            # frame classes: the video's main class on its anomalous frames (a second event of another
            # class keeps the main class here; the demo's own annotation has the exact class)
            assert np.array_equal(vb.frame_classes > 0, va.frame_classes > 0)
            assert vb.path == va.path
            vb.check_labels(len(vb.open()))
        for v in sub.videos("train"):
            assert v.frame_labels is None and v.label_builder is None
            assert v.meta["weak"] == bool(v.label)


def _write_video(path: Path, n: int) -> None:
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (32, 24))
    for i in range(n):
        vw.write(np.full((24, 32, 3), 10 * i, np.uint8))
    vw.release()


def _frames(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((24, 32, 3), 10 * i, np.uint8))


@pytest.fixture
def hand(tmp_path) -> Path:
    d = tmp_path / "hand"
    (d / "vid").mkdir(parents=True)
    _write_video(d / "vid" / "t1.mp4", 10)
    _write_video(d / "vid" / "t2.mp4", 10)
    _write_video(d / "vid" / "tr.mp4", 10)
    _frames(d / "frames" / "f1", 8)
    (d / "gt").mkdir()
    np.save(d / "gt" / "t1.npy", np.r_[np.zeros(4), np.ones(6)].astype(np.uint8))
    (d / "gt" / "f1.txt").write_text("\n".join(["0"] * 5 + ["1"] * 3) + "\n")
    (d / "gt" / "t2.json").write_text(json.dumps([0] * 10))
    man = {"train": {"s": [{"video_path": "vid/tr.mp4", "anomaly": 1}]},
           "test": {"s": [{"video_path": "vid/t1.mp4", "anomaly": 1, "gt_path": "gt/t1.npy", "class_name": "fight"},
                          {"video_path": str(d / "vid" / "t2.mp4"), "anomaly": 0, "gt_path": "gt/t2.json"}],
                    "u": [{"video_path": "frames/f1", "anomaly": 1, "gt_path": "gt/f1.txt"}]}}
    (d / "manifest.json").write_text(json.dumps(man))
    return d


def test_hand_written_manifest(hand):
    ds = get_dataset("manifest", hand)
    assert ds.class_names == ["normal", "anomaly", "fight"]  # in order of first appearance, train first
    t1, t2, f1 = (ds.video(n) for n in ("t1", "t2", "f1"))
    assert t1.frame_labels.tolist() == [0] * 4 + [1] * 6 and t1.frame_classes.tolist() == [0] * 4 + [2] * 6
    assert t2.frame_labels.sum() == 0 and t2.label == 0 and t2.class_name == "normal"
    assert f1.num_frames == 8 and f1.frame_classes.max() == 1 and f1.meta["scene"] == "u"
    t1.check_labels(len(t1.open()))
    tr = ds.videos("train")[0]
    assert tr.label == 1 and tr.frame_labels is None and tr.class_name == "anomaly"


def test_normal_test_video_without_gt_gets_zeros(hand):
    man = json.loads((hand / "manifest.json").read_text())
    del man["test"]["s"][1]["gt_path"]
    (hand / "manifest.json").write_text(json.dumps(man))
    v = get_dataset("manifest", hand).video("t2")
    assert v.frame_labels is None
    v.check_labels(len(v.open()))
    assert v.frame_labels.tolist() == [0] * 10


def _broken(hand: Path, edit) -> pytest.ExceptionInfo:
    man = json.loads((hand / "manifest.json").read_text())
    edit(man)
    (hand / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(DataError) as exc:
        get_dataset("manifest", hand)
    assert str(exc.value).startswith(str(hand / "manifest.json"))
    return exc


def test_bad_manifests(hand):
    path = hand / "manifest.json"
    good = path.read_text()
    path.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON") as exc:
        get_dataset("manifest", hand)
    assert str(path) in str(exc.value)
    path.write_text(json.dumps({"train": {}}))
    with pytest.raises(DataError, match="'train' and 'test'"):
        get_dataset("manifest", hand)
    path.write_text(good)

    exc = _broken(hand, lambda m: m["test"]["s"][0].update(video_path="vid/missing.mp4"))
    assert "test/s[0]" in str(exc.value) and "missing.mp4" in str(exc.value)
    path.write_text(good)
    exc = _broken(hand, lambda m: m["test"]["s"][0].update(gt_path="gt/missing.npy"))
    assert "test/s[0]" in str(exc.value) and "missing.npy" in str(exc.value)
    path.write_text(good)
    exc = _broken(hand, lambda m: m["test"]["s"][0].pop("anomaly"))
    assert "test/s[0]" in str(exc.value) and "anomaly" in str(exc.value)
    path.write_text(good)
    exc = _broken(hand, lambda m: m["test"]["s"][0].update(anomaly=2))
    assert "0 or 1" in str(exc.value)
    path.write_text(good)
    exc = _broken(hand, lambda m: m["test"]["s"][0].pop("gt_path"))
    assert "gt_path" in str(exc.value)
    path.write_text(good)
    exc = _broken(hand, lambda m: m["test"].update(s="nope"))
    assert "test/s" in str(exc.value)
    path.write_text(good)
    exc = _broken(hand, lambda m: m["test"]["s"][1].update(anomaly=1))  # GT has no anomalous frame
    assert "test/s[1]" in str(exc.value)
    path.write_text(good)
    (hand / "gt" / "f1.txt").write_text("0\n1\n2\n")
    exc = _broken(hand, lambda m: None)
    assert "f1.txt" in str(exc.value) and "0 or 1" in str(exc.value)


def test_gt_length_mismatch_names_the_gt_file(hand):
    (hand / "gt" / "f1.txt").write_text("0\n1\n1\n")  # frames folder of 8 images: found at load time
    with pytest.raises(DataError, match="3 entries but the video has 8") as exc:
        get_dataset("manifest", hand)
    assert str(exc.value).startswith(str(hand / "gt" / "f1.txt"))
    (hand / "gt" / "f1.txt").write_text("\n".join(["0"] * 5 + ["1"] * 3))
    np.save(hand / "gt" / "t1.npy", np.ones(12, np.uint8))  # video file of 10 frames: found once decoded
    v = get_dataset("manifest", hand).video("t1")
    with pytest.raises(DataError, match="12 entries but the video has 10") as exc:
        v.check_labels(len(v.open()))
    assert str(exc.value).startswith(str(hand / "gt" / "t1.npy"))


def test_load_frame_labels_formats(tmp_path):
    np.save(tmp_path / "a.npy", np.array([[0, 1], [1, 0]]))
    assert manifest.load_frame_labels(tmp_path / "a.npy").tolist() == [0, 1, 1, 0]
    (tmp_path / "b.txt").write_text("0 1\n1\n")
    assert manifest.load_frame_labels(tmp_path / "b.txt").tolist() == [0, 1, 1]
    (tmp_path / "c.txt").write_text("")
    with pytest.raises(DataError, match="empty"):
        manifest.load_frame_labels(tmp_path / "c.txt")
    (tmp_path / "d.json").write_text('{"x": 1}')
    with pytest.raises(DataError, match="d.json"):
        manifest.load_frame_labels(tmp_path / "d.json")
