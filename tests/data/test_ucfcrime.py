"""UCF-Crime adapter: the real annotation and lists in ../shared/ground_truth/ucf_crime, a
release-shaped tree of placeholder videos, a tiny decodable release, and error handling."""

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from vadlib.data import ucfcrime  # noqa: F401  (registers the dataset)
from vadlib.data.registry import get_dataset
from vadlib.data.ucfcrime import (CLASS_NAMES, parse_ucf_frame_counts, parse_ucf_list,
                                  parse_ucf_temporal_annotation)
from vadlib.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GT = SHARED / "ground_truth" / "ucf_crime"
ANN = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared (real benchmark data) not present")


@needs_shared
def test_parse_real_annotation_and_lists():
    anns = parse_ucf_temporal_annotation(GT / ANN)
    assert len(anns) == 290
    assert sum(a.class_name != "normal" for a in anns) == 140
    assert sum(len(a.intervals) for a in anns) == 156
    assert sum(len(a.intervals) == 2 for a in anns) == 16
    per_class = Counter(a.class_name for a in anns if a.class_name != "normal")
    assert per_class == {"Abuse": 2, "Arrest": 5, "Arson": 9, "Assault": 3, "Burglary": 13, "Explosion": 21,
                         "Fighting": 5, "RoadAccidents": 23, "Robbery": 5, "Shooting": 23, "Shoplifting": 21,
                         "Stealing": 5, "Vandalism": 5}
    train, test = parse_ucf_list(GT / "Anomaly_Train.txt"), parse_ucf_list(GT / "Anomaly_Test.txt")
    assert (len(train), sum("Normal" not in r for r in train)) == (1610, 810)
    assert (len(test), sum("Normal" not in r for r in test)) == (290, 140)
    # class_names: normal + the 13 classes of ClassIDs.txt (without its normal class), same order
    ids = [ln.split()[0] for ln in (GT / "ClassIDs.txt").read_text().splitlines() if ln.strip()]
    assert CLASS_NAMES == ["normal"] + [c for c in ids if "Normal" not in c]


@pytest.fixture(scope="module")
def placeholder_tree(tmp_path_factory):
    """Every listed video as an empty placeholder; test normals in a differently named folder."""
    root = tmp_path_factory.mktemp("ucf") / "UCF_Crimes" / "Videos"
    for lst in ("Anomaly_Train.txt", "Anomaly_Test.txt"):
        for rel in parse_ucf_list(GT / lst):
            p = root / rel.replace("Testing_Normal_Videos_Anomaly", "Testing_Normal_Videos")
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
    return root


@needs_shared
def test_real_gt_through_adapter(placeholder_tree):
    ds = get_dataset("ucfcrime", root=placeholder_tree.parent, gt_root=GT, frame_counts=GT / "ekosman" / "Test_Annotation.txt")
    train, test = ds.videos("train"), ds.videos("test")
    assert (len(train), sum(v.label for v in train)) == (1610, 810)
    assert (len(test), sum(v.label for v in test)) == (290, 140)
    assert ds.gt_file == ANN and ds.class_names[0] == "normal" and len(ds.class_names) == 14
    assert all(v.path.is_file() for v in test)                      # found despite the renamed folder
    # README: 1,111,808 test frames, 84,331 anomalous (0-based, end inclusive, clipped)
    assert sum(len(v.frame_labels) for v in test) == 1111808
    assert sum(int(v.frame_labels.sum()) for v in test) == 84331
    excl = get_dataset("ucfcrime", root=placeholder_tree, gt_root=GT, end_inclusive=False,
                       frame_counts=GT / "ekosman" / "Test_Annotation.txt")
    assert sum(int(v.frame_labels.sum()) for v in excl.videos("test")) == 84182    # README: end exclusive
    for v in test:
        assert set(np.unique(v.frame_classes[v.frame_labels == 1])) <= {ds.class_names.index(v.class_name)}
        assert not v.frame_classes[v.frame_labels == 0].any()


@needs_shared
def test_real_gt_labels_built_when_decoded(placeholder_tree):
    ds = get_dataset("ucfcrime", root=placeholder_tree, gt_root=GT)
    v = ds.video("Abuse028_x264")                                   # Abuse 165 240 -1 -1
    assert v.frame_labels is None and v.num_frames is None
    v.check_labels(1000)
    assert np.flatnonzero(v.frame_labels).tolist() == list(range(165, 241))
    assert set(v.frame_classes[165:241]) == {ds.class_names.index("Abuse")}
    with pytest.raises(DataError, match=rf"{ANN}: video 'Arrest001_x264': interval 1185-1485 starts after"):
        ds.video("Arrest001_x264").check_labels(1000)


@needs_shared
def test_missing_video_and_files(placeholder_tree, tmp_path):
    p = placeholder_tree / "Abuse" / "Abuse001_x264.mp4"
    p.rename(tmp_path / "x.mp4")
    try:
        with pytest.raises(DataError, match=r"Abuse001_x264.mp4: video listed in Anomaly_Train.txt is missing"):
            get_dataset("ucfcrime", root=placeholder_tree, gt_root=GT)
    finally:
        (tmp_path / "x.mp4").rename(p)
    with pytest.raises(DataError, match=rf"{ANN}: UCF-Crime temporal annotation .* is missing"):
        get_dataset("ucfcrime", root=placeholder_tree)
    with pytest.raises(ConfigError, match="unknown option.*split"):
        get_dataset("ucfcrime", root=placeholder_tree, gt_root=GT, split="weakly")


def _mp4(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (16, 12))
    for k in range(n):
        w.write(np.full((12, 16, 3), 25 * k % 255, np.uint8))
    w.release()


def test_tiny_release(tmp_path):
    root = tmp_path / "ucf"
    _mp4(root / "Arson" / "Arson001_x264.mp4", 6)
    _mp4(root / "Training_Normal_Videos_Anomaly" / "Normal_Videos001_x264.mp4", 4)
    _mp4(root / "Arson" / "Arson002_x264.mp4", 8)
    _mp4(root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos002_x264.mp4", 5)
    (root / "Anomaly_Train.txt").write_text("Arson/Arson001_x264.mp4\nTraining_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n")
    (root / "Anomaly_Test.txt").write_text("Arson/Arson002_x264.mp4\nTesting_Normal_Videos_Anomaly/Normal_Videos002_x264.mp4\n")
    (root / ANN).write_text("Arson002_x264.mp4  Arson  1  2  5  20  \nNormal_Videos002_x264.mp4  Normal  -1  -1  -1  -1  \n")
    ds = get_dataset("ucfcrime", root=root)
    assert [(v.name, v.label, v.class_name) for v in ds.videos("train")] == [
        ("Arson001_x264", 1, "Arson"), ("Normal_Videos001_x264", 0, "normal")]
    a, n = ds.videos("test")
    a.check_labels(len(a.open()))
    assert a.frame_labels.tolist() == [0, 1, 1, 0, 0, 1, 1, 1]       # second event clipped at the end
    n.check_labels(len(n.open()))
    assert n.frame_labels.tolist() == [0] * 5
    (root / "Anomaly_Test.txt").write_text("Arson/Arson002_x264.mp4\n")
    with pytest.raises(DataError, match=rf"Anomaly_Test.txt: test list and {ANN} disagree.*Normal_Videos002_x264"):
        get_dataset("ucfcrime", root=root)
    (root / ANN).write_text("Arson002_x264.mp4  Arsonn  1  2  -1  -1\n")
    with pytest.raises(DataError, match="line 1: unknown class 'Arsonn'"):
        parse_ucf_temporal_annotation(root / ANN)
    (root / ANN).write_text("Arson002_x264.mp4  Arson  -1  -1  -1  -1\n")
    with pytest.raises(DataError, match="line 1: class Arson with intervals"):
        parse_ucf_temporal_annotation(root / ANN)
    (root / "counts.txt").write_text("Arson/Arson002_x264.mp4 eight\n")
    with pytest.raises(DataError, match="counts.txt: line 1"):
        parse_ucf_frame_counts(root / "counts.txt")
