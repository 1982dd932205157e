"""CUHK Avenue adapter: GT parsers on the real files in ../shared/ground_truth/avenue, the video
and frames layouts on small generated releases, and error handling."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io

from vadlib.data import avenue as avenue_mod
from vadlib.data.avenue import AVENUE_TEST_LENGTHS, load_avenue_mask, parse_avenue_mat
from vadlib.data.registry import get_dataset
from vadlib.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GT = SHARED / "ground_truth" / "avenue"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared (real benchmark data) not present")


def write_avi(path: Path, n: int, size=(32, 24)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), 20 * i % 255, np.uint8))
    w.release()


def write_masks(path: Path, labels, hw=(24, 32)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = np.empty((1, len(labels)), dtype=object)
    for i, a in enumerate(labels):
        m = np.zeros(hw, np.uint8)
        if a:
            m[3:6, 4:9] = 1
        cells[0, i] = m
    scipy.io.savemat(path, {"volLabel": cells})


def make_release(root: Path, test_labels, train_lengths=(5, 4), with_masks=True) -> Path:
    rel = root / "Avenue Dataset"
    for i, n in enumerate(train_lengths, 1):
        write_avi(rel / "training_videos" / f"{i:02d}.avi", n)
    for i, lab in enumerate(test_labels, 1):
        write_avi(rel / "testing_videos" / f"{i:02d}.avi", len(lab))
        if with_masks:
            write_masks(rel / "ground_truth_demo" / "testing_label_mask" / f"{i}_label.mat", lab)
    scipy.io.savemat(rel / "avenue.mat", {f"{i:02d}": np.asarray([lab], np.int32) for i, lab in enumerate(test_labels, 1)})
    return rel


@needs_shared
def test_parse_real_avenue_mat():
    gt = parse_avenue_mat(GT / "avenue.mat")
    assert list(gt) == [f"{i:02d}" for i in range(1, 22)]
    assert sum(len(a) for a in gt.values()) == 15324
    assert sum(int(a.sum()) for a in gt.values()) == 3712
    assert tuple(len(a) for a in gt.values()) == AVENUE_TEST_LENGTHS
    assert all(set(np.unique(a)) <= {0, 1} for a in gt.values())
    assert int(gt["08"].sum()) == 36 and len(gt["08"]) == 36    # README: video 08 entirely anomalous


@needs_shared
def test_real_gt_through_the_adapter(tmp_path):
    """Videos layout (empty placeholder files, never decoded) + the real avenue.mat via gt_root."""
    rel = tmp_path / "Avenue Dataset"
    for i in range(1, 17):
        (rel / "training_videos").mkdir(parents=True, exist_ok=True)
        (rel / "training_videos" / f"{i:02d}.avi").touch()
    (rel / "testing_videos").mkdir()
    for i in range(1, 22):
        (rel / "testing_videos" / f"{i:02d}.avi").touch()
    ds = get_dataset("avenue", root=tmp_path, gt_root=GT)
    test = ds.videos("test")
    assert ds.gt_file == "avenue.mat" and ds.meta["layout"] == "videos"
    assert len(ds.videos("train")) == 16 and len(test) == 21
    assert all(v.num_frames is None for v in test)           # unknown until decoded
    assert sum(len(v.frame_labels) for v in test) == 15324
    assert sum(int(v.frame_labels.sum()) for v in test) == 3712
    with pytest.raises(DataError, match=r"avenue.mat: frame labels of video 'Test01' have 1439 entries but the video has 1440 frames"):
        test[0].check_labels(1440)
    test[0].check_labels(1439)
    # MNAD's concatenated variant, split with the release's per-video lengths: 3,867
    npy = get_dataset("avenue", root=tmp_path, gt_root=GT, gt="frame_labels_avenue.npy")
    assert npy.gt_file == "frame_labels_avenue.npy"
    assert sum(int(v.frame_labels.sum()) for v in npy.videos("test")) == 3867
    assert [int(v.frame_labels.sum()) for v in npy.videos("test")][7] == 10   # README: video 08 has 10


@needs_shared
def test_real_gt_frames_layout_length_check(tmp_path):
    for i, n in enumerate(AVENUE_TEST_LENGTHS, 1):
        d = tmp_path / "testing" / "frames" / f"{i:02d}"
        d.mkdir(parents=True)
        for k in range(n - (1 if i == 5 else 0)):        # video 05 is one frame short
            (d / f"{k:04d}.jpg").touch()
    (tmp_path / "training" / "frames" / "01").mkdir(parents=True)
    (tmp_path / "training" / "frames" / "01" / "0000.jpg").touch()
    with pytest.raises(DataError, match=r"avenue.mat: GT of video 'Test05' has 1007 frames but the video .*05\) has 1006"):
        get_dataset("avenue", root=tmp_path, gt_root=GT)
    (tmp_path / "testing" / "frames" / "05" / "9999.jpg").touch()
    ds = get_dataset("avenue", root=tmp_path, gt_root=GT)
    assert ds.meta["layout"] == "frames"
    assert sum(v.num_frames for v in ds.videos("test")) == 15324
    assert sum(int(v.frame_labels.sum()) for v in ds.videos("test")) == 3712


def test_generated_release_videos_and_masks(tmp_path):
    labels = [[0, 0, 1, 1, 0, 1], [1, 1, 0, 0, 0, 0, 0]]
    make_release(tmp_path, labels)
    ds = get_dataset("avenue", root=tmp_path)
    assert [v.name for v in ds.videos("train")] == ["Train01", "Train02"]
    for v, lab in zip(ds.videos("test"), labels):
        assert v.frame_labels.tolist() == lab
        src = v.open()
        v.check_labels(len(src))                               # decoded length equals GT length
        m = v.masks()
        assert m.shape == (len(lab), *src.size)
        assert m.reshape(len(m), -1).any(1).astype(int).tolist() == lab
    # the same labels derived from the pixel masks
    from_masks = get_dataset("avenue", root=tmp_path, gt="testing_label_mask")
    assert from_masks.gt_file == "testing_label_mask"
    assert [v.frame_labels.tolist() for v in from_masks.videos("test")] == labels


def test_generated_release_mismatch_is_named(tmp_path):
    rel = make_release(tmp_path, [[0, 1, 1], [1, 0, 0]], with_masks=False)
    write_avi(rel / "testing_videos" / "02.avi", 5)             # re-encoded: 5 frames, GT says 3
    ds = get_dataset("avenue", root=rel)
    v = ds.videos("test")[1]
    assert v.mask_loader is None
    with pytest.raises(DataError, match=r"avenue.mat: frame labels of video 'Test02' have 3 entries but the video has 5 frames"):
        v.check_labels(len(v.open()))
    write_avi(rel / "testing_videos" / "03.avi", 3)             # a video the GT does not cover
    with pytest.raises(DataError, match=r"avenue.mat: GT covers videos \['01', '02'\] but the test videos are"):
        get_dataset("avenue", root=rel)


def test_interval_style_mat(tmp_path):
    rel = make_release(tmp_path, [[0] * 6, [0] * 4], with_masks=False)
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = np.array([[2, 5], [3, 6]])        # [start; end] columns: 2-3 and 5-6
    cells[0, 1] = np.array([[1], [2]])
    scipy.io.savemat(rel / "ano_pred.mat", {"gt": cells})
    ds = get_dataset("avenue", root=rel, gt="ano_pred.mat")
    v = ds.videos("test")[0]
    assert v.frame_labels is None and v.label == -1
    v.check_labels(6)
    assert v.frame_labels.tolist() == [0, 1, 1, 0, 1, 1]
    with pytest.raises(DataError, match=r"ano_pred.mat: GT range .* Test02 exceeds its 1 frames"):
        ds.videos("test")[1].check_labels(1)
    assert parse_avenue_mat(rel / "ano_pred.mat", [6, 4])["02"].tolist() == [1, 1, 0, 0]
    with pytest.raises(DataError, match="needs the frame count"):
        parse_avenue_mat(rel / "ano_pred.mat")


def test_missing_parts_and_bad_options(tmp_path):
    rel = make_release(tmp_path, [[0, 1]], with_masks=False)
    with pytest.raises(ConfigError, match="unknown option.*split"):
        get_dataset("avenue", root=rel, split="weakly")
    with pytest.raises(ConfigError, match="layout="):
        get_dataset("avenue", root=rel, layout="hdf5")
    with pytest.raises(DataError, match=r"testing_label_mask: pixel-mask folder is missing"):
        get_dataset("avenue", root=rel, gt="testing_label_mask")
    with pytest.raises(DataError, match=r"nope.mat: Avenue GT file 'nope.mat' is missing"):
        get_dataset("avenue", root=rel, gt="nope.mat")
    with pytest.raises(DataError, match=r"training_videos: training videos folder is missing"):
        import shutil

        shutil.rmtree(rel / "training_videos")
        get_dataset("avenue", root=rel)
    with pytest.raises(DataError, match=r"testing[/\\]frames: testing frames folder is missing"):
        (tmp_path / "fr" / "training" / "frames" / "01").mkdir(parents=True)
        get_dataset("avenue", root=tmp_path / "fr", layout="frames")
    bad = tmp_path / "bad.mat"
    scipy.io.savemat(bad, {"other": np.zeros(3)})
    with pytest.raises(DataError, match=r"bad.mat: no variable 'volLabel'"):
        load_avenue_mask(bad)
    assert avenue_mod.MASK_FOLDER == "testing_label_mask"
