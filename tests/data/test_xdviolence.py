"""XD-Violence adapter: the real annotations and lists in ../shared/ground_truth/xd_violence, a
release-shaped tree of placeholder videos, a tiny decodable release, and error handling."""

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from vadlib.data import xdviolence  # noqa: F401  (registers the dataset)
from vadlib.data.registry import get_dataset
from vadlib.data.xdviolence import (CLASS_NAMES, XD_CODES, parse_xd_annotations, parse_xd_list,
                                    parse_xd_multiclass, parse_xd_name)
from vadlib.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GT = SHARED / "ground_truth" / "xd_violence"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared (real benchmark data) not present")


@needs_shared
def test_parse_real_files():
    ann = parse_xd_annotations(GT / "annotations.txt")
    assert len(ann) == 500 and sum(len(v) for v in ann.values()) == 1238
    assert not any(k.endswith(".mp4") for k in ann)
    train, test = parse_xd_list(GT / "xdviodet" / "rgb.list"), parse_xd_list(GT / "xdviodet" / "rgb_test.list")
    assert len(train) == 3954 and len(test) == 800 and not set(train) & set(test)
    assert sum(parse_xd_name(n)[0] != "A" for n in train) == 1905
    first = Counter(parse_xd_name(n)[0] for n in test)
    assert first == {"A": 300, "B1": 120, "B2": 84, "B4": 101, "B5": 8, "B6": 96, "G": 91}
    anyc = Counter(c for n in test for c in parse_xd_name(n))
    assert anyc == {"A": 300, "B1": 126, "B2": 104, "B4": 101, "B5": 11, "B6": 106, "G": 103}
    assert set(ann) == {n for n in test if parse_xd_name(n)[0] != "A"}
    multi = parse_xd_multiclass(GT / "vadclip" / "annotations_multiclasses.txt")
    assert list(multi) == list(ann)
    assert Counter(c for segs in multi.values() for c, _, _ in segs) == {
        "B1": 245, "B2": 214, "B4": 154, "B5": 15, "B6": 494, "G": 150}
    assert CLASS_NAMES == ["normal", *[XD_CODES[c] for c in ("B1", "B2", "B4", "B5", "B6", "G")]]


@pytest.fixture(scope="module")
def placeholder_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("xd") / "XD-Violence"
    for folder, lst in (("Train", "rgb.list"), ("Test", "rgb_test.list")):
        (root / folder).mkdir(parents=True)
        for n in parse_xd_list(GT / "xdviodet" / lst):
            (root / folder / f"{n}.mp4").touch()
    return root


@needs_shared
@pytest.mark.parametrize("with_lists", [True, False])
def test_real_gt_through_adapter(placeholder_tree, with_lists):
    opts = {"gt_root": GT} if with_lists else {"gt": str(GT / "annotations.txt")}
    ds = get_dataset("xdviolence", root=placeholder_tree, **opts)
    assert (ds.meta["lists"] is not None) == with_lists
    train, test = ds.videos("train"), ds.videos("test")
    assert (len(train), sum(v.label for v in train)) == (3954, 1905)
    assert (len(test), sum(v.label for v in test)) == (800, 500)
    assert ds.gt_file.endswith("annotations.txt")
    assert Counter(v.class_name for v in test)["car accident"] == 96
    v = ds.video("v=S-7rRLrxnVQ__#1_label_B4-0-0")          # annotation: 0 1517 1970 3038
    v.check_labels(3100)
    assert np.flatnonzero(np.diff(np.r_[0, v.frame_labels, 0])).tolist() == [0, 1517, 1970, 3038]
    assert set(v.frame_classes[v.frame_labels == 1]) == {CLASS_NAMES.index("riot")}
    with pytest.raises(DataError, match=r"annotations.txt: video 'v=S-7rRLrxnVQ__#1_label_B4-0-0': interval 1970-3038 starts after"):
        ds.video("v=S-7rRLrxnVQ__#1_label_B4-0-0").label_builder(1500)
    normal = next(v for v in test if v.label == 0)
    normal.check_labels(77)
    assert normal.frame_labels.shape == (77,) and not normal.frame_labels.any()


@needs_shared
def test_real_multiclass_segments(placeholder_tree):
    ds = get_dataset("xdviolence", root=placeholder_tree, gt_root=GT, gt_classes="annotations_multiclasses.txt",
                     end_inclusive=True)
    multi = parse_xd_multiclass(GT / "vadclip" / "annotations_multiclasses.txt")
    name = next(n for n, segs in multi.items() if len({c for c, _, _ in segs}) > 1)
    v = ds.video(name)
    v.check_labels(max(e for _, _, e in multi[name]) + 10)
    for code, s, e in multi[name]:
        assert CLASS_NAMES.index(XD_CODES[code]) in set(v.frame_classes[s:e + 1])
    assert set(np.unique(v.frame_classes[v.frame_labels == 0])) == {0}


def _mp4(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 24, (16, 12))
    for k in range(n):
        w.write(np.full((12, 16, 3), 25 * k % 255, np.uint8))
    w.release()


def test_tiny_release_and_errors(tmp_path):
    root = tmp_path / "xd"
    _mp4(root / "Train" / "a__#1_label_B1-0-0.mp4", 4)
    _mp4(root / "Train" / "b__#1_label_A.mp4", 4)
    _mp4(root / "Test" / "c__#1_label_G-B2-0.mp4", 9)
    _mp4(root / "Test" / "d__#1_label_A.mp4", 5)
    (root / "annotations.txt").write_text("c__#1_label_G-B2-0.mp4 1 3 6 20\n")
    ds = get_dataset("xdviolence", root=root)
    assert [(v.name, v.label, v.class_name) for v in ds.videos("train")] == [
        ("a__#1_label_B1-0-0", 1, "fighting"), ("b__#1_label_A", 0, "normal")]
    c, d = ds.videos("test")
    assert c.meta["classes"] == ["explosion", "shooting"]
    c.check_labels(len(c.open()))
    assert c.frame_labels.tolist() == [0, 1, 1, 0, 0, 0, 1, 1, 1]     # end exclusive, clipped
    d.check_labels(len(d.open()))
    assert d.frame_labels.tolist() == [0] * 5
    incl = get_dataset("xdviolence", root=root, end_inclusive=True).videos("test")[0]
    incl.check_labels(9)
    assert incl.frame_labels.tolist() == [0, 1, 1, 1, 0, 0, 1, 1, 1]
    with pytest.raises(ConfigError, match="unknown option.*classes"):
        get_dataset("xdviolence", root=root, classes="multi")
    (root / "annotations.txt").write_text("c__#1_label_G-B2-0 1 3\nd__#1_label_A 1 2\ne__#1_label_B1-0-0 3 4\n")
    with pytest.raises(DataError, match=r"annotations.txt: 1 annotated video\(s\) are not in the test split"):
        get_dataset("xdviolence", root=root)
    (root / "annotations.txt").write_text("d__#1_label_A 1 2\n")
    with pytest.raises(DataError, match=r"annotations.txt: violent test video 'c__#1_label_G-B2-0' has no annotation"):
        get_dataset("xdviolence", root=root)
    (root / "annotations.txt").write_text("c__#1_label_G-B2-0 1 3 6\n")
    with pytest.raises(DataError, match="line 1: expected"):
        get_dataset("xdviolence", root=root)
    (root / "annotations.txt").write_text("c__#1_label_G-B2-0 1 3\n")
    _mp4(root / "Test" / "e__#1_label_B3-0-0.mp4", 3)
    with pytest.raises(DataError, match=r"e__#1_label_B3-0-0.mp4: video name .* bad label codes"):
        get_dataset("xdviolence", root=root)
    (root / "Test" / "e__#1_label_B3-0-0.mp4").unlink()
    (root / "rgb.list").write_text("/feat/a__#1_label_B1-0-0__0.npy\n/feat/a__#1_label_B1-0-0__1.npy\n")
    (root / "rgb_test.list").write_text("/feat/c__#1_label_G-B2-0__0.npy\n/feat/z__#1_label_A__0.npy\n")
    with pytest.raises(DataError, match=r"z__#1_label_A.mp4: 1 video\(s\) of rgb_test.list not found"):
        get_dataset("xdviolence", root=root)
    (root / "rgb_test.list").write_text("/feat/c__#1_label_G-B2-0__0.npy\n")
    ds = get_dataset("xdviolence", root=root)
    assert [v.name for v in ds.videos("train")] == ["a__#1_label_B1-0-0"]   # the lists decide the splits
    import shutil

    shutil.rmtree(root / "Test")
    (root / "rgb.list").unlink()
    with pytest.raises(DataError, match=r"xd[/\\]Test: no test videos"):
        get_dataset("xdviolence", root=root)
    with pytest.raises(DataError, match=r"nope.txt: XD-Violence annotation file 'nope.txt' is missing"):
        get_dataset("xdviolence", root=root, gt="nope.txt")
