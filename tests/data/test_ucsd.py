"""UCSD adapters: the original release layout (generated here), auto-detection, Ped1 with the
real GT in ../shared/ground_truth, and error handling."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from vadlib.data import ucsd  # noqa: F401  (registers ucsd_ped1 / ucsd_ped2)
from vadlib.data.registry import get_dataset
from vadlib.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PED2 = SHARED / "datasets" / "ucsd_ped2"
GT_PED1 = SHARED / "ground_truth" / "ucsd_ped1"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared (real benchmark data) not present")

# Frame counts of the Ped2 test videos as documented in ../shared/datasets/ucsd_ped2/README.md
PED2_TEST_LENGTHS = [180, 180, 150, 180, 150, 180, 180, 180, 120, 150, 180, 180]


def _touch_frames(folder: Path, n: int, ext: str = ".tif") -> None:
    """Frame files that are only counted, never decoded (fast stand-ins for big releases)."""
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        (folder / f"{i:03d}{ext}").touch()


def _write_frames(folder: Path, n: int, value: int = 100) -> None:
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        cv2.imwrite(str(folder / f"{i:03d}.tif"), np.full((6, 8), value, np.uint8))


def make_original(root: Path, test_lengths, gt_lines, masks_for=(), mask_anom=None) -> Path:
    """A tiny ``UCSDped2/{Train,Test}`` release: real (decodable) TIFFs, BMP masks, a .m file."""
    ped = root / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped2"
    _write_frames(ped / "Train" / "Train001", 4)
    _write_frames(ped / "Train" / "Train002", 3)
    for i, n in enumerate(test_lengths, 1):
        _write_frames(ped / "Test" / f"Test{i:03d}", n)
        (ped / "Test" / f"Test{i:03d}" / "._001.tif").write_bytes(b"\x00\x05AppleDouble")
    for i in masks_for:
        d = ped / "Test" / f"Test{i:03d}_gt"
        d.mkdir()
        for k in range(1, test_lengths[i - 1] + 1):
            m = np.zeros((6, 8), np.uint8)
            if mask_anom is not None and mask_anom[i - 1][k - 1]:
                m[2:4, 3:5] = 255
            # Test006/009/012 name their masks frame001.bmp in the release
            cv2.imwrite(str(d / (f"frame{k:03d}.bmp" if i % 2 == 0 else f"{k:03d}.bmp")), m)
    (ped / "Test" / "UCSDped2.m").write_text("TestVideoFile = {};\n" + "\n".join(
        f"TestVideoFile{{end+1}}.gt_frame = [{g}];" for g in gt_lines) + "\n")
    return ped


def test_original_layout_generated(tmp_path):
    lengths = [5, 6]
    gt = ["2:4", "1:2, 5:6"]
    anom = [[0, 1, 1, 1, 0], [1, 1, 0, 0, 1, 1]]
    make_original(tmp_path, lengths, gt, masks_for=(1, 2), mask_anom=anom)
    # root at the release folder and at UCSDped2/ both work; layout auto-detected
    for root in (tmp_path / "UCSD_Anomaly_Dataset.v1p2", tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped2"):
        ds = get_dataset("ucsd_ped2", root=root)
        assert ds.meta["layout"] == "original" and ds.gt_file == "UCSDped2.m"
        assert [v.name for v in ds.videos("train")] == ["Train001", "Train002"]
        test = ds.videos("test")
        assert [v.name for v in test] == ["Test001", "Test002"]   # TestNNN_gt folders are not videos
        assert [v.num_frames for v in test] == lengths             # the ._ AppleDouble file is skipped
        for v, a in zip(test, anom):
            assert v.frame_labels.tolist() == a
            masks = v.masks()
            src = v.open()
            assert len(src) == v.num_frames and masks.shape == (v.num_frames, *src.size)
            assert np.array_equal(masks.reshape(len(masks), -1).any(1), v.frame_labels.astype(bool))


def test_original_layout_masks_optional_and_gt_errors(tmp_path):
    ped = make_original(tmp_path, [4, 4], ["1:2", "3:4"], masks_for=(1,))
    ds = get_dataset("ucsd_ped2", root=ped, layout="original")
    assert ds.videos("test")[0].mask_loader is not None
    assert ds.videos("test")[1].mask_loader is None          # Ped1-style: not every video has masks
    with pytest.raises(DataError, match="Test002.*no pixel masks"):
        ds.videos("test")[1].masks()
    (ped / "Test" / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [1:9];\n"
                                             "TestVideoFile{end+1}.gt_frame = [1:2];\n")
    with pytest.raises(DataError, match=r"UCSDped2.m.*Test001 exceeds its 4 frames"):
        get_dataset("ucsd_ped2", root=ped)
    (ped / "Test" / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [1:2];\n")
    with pytest.raises(DataError, match=r"UCSDped2.m.*lists 1 test videos but 2"):
        get_dataset("ucsd_ped2", root=ped)
    with pytest.raises(DataError, match=r"UCSDped1.m.*missing"):
        get_dataset("ucsd_ped1", root=tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped2", layout="original")


def test_missing_parts_and_bad_options(tmp_path):
    ped = make_original(tmp_path, [3], ["1:2"])
    with pytest.raises(ConfigError, match="unknown option.*colour.*known: gt, layout"):
        get_dataset("ucsd_ped2", root=ped, colour=True)
    with pytest.raises(ConfigError, match="layout='tiff'"):
        get_dataset("ucsd_ped2", root=ped, layout="tiff")
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(DataError, match=r"empty_root: neither the original UCSD layout"):
        get_dataset("ucsd_ped2", root=tmp_path / "empty_root")
    with pytest.raises(DataError, match=r"training[/\\]frames: training frames folder is missing"):
        get_dataset("ucsd_ped2", root=ped, layout="frames")
    import shutil

    shutil.rmtree(ped / "Train")
    with pytest.raises(DataError, match=r"UCSDped2[/\\]Train: Train folder is missing"):
        get_dataset("ucsd_ped2", root=ped)


@needs_shared
def test_ped2_real_m_on_original_layout(tmp_path):
    """The real UCSDped2.m with a release-shaped tree of the real frame counts: 12 / 2010 / 1648."""
    ped = tmp_path / "UCSDped2"
    _touch_frames(ped / "Train" / "Train001", 120)
    for i, n in enumerate(PED2_TEST_LENGTHS, 1):
        _touch_frames(ped / "Test" / f"Test{i:03d}", n)
    ds = get_dataset("ucsd_ped2", root=ped, gt_root=PED2)
    test = ds.videos("test")
    assert len(test) == 12 and sum(v.num_frames for v in test) == 2010
    assert sum(int(v.frame_labels.sum()) for v in test) == 1648
    assert ds.meta["gt_path"] == str(PED2 / "UCSDped2.m")
    mat = get_dataset("ucsd_ped2", root=ped, gt_root=PED2, gt="ped2.mat")
    assert sum(int(v.frame_labels.sum()) for v in mat.videos("test")) == 1624


@needs_shared
def test_ped2_frames_layout_still_auto_detected():
    ds = get_dataset("ucsd_ped2", root=PED2)
    assert ds.meta["layout"] == "frames"
    test = ds.videos("test")
    assert (len(test), sum(v.num_frames for v in test), sum(int(v.frame_labels.sum()) for v in test)) == (12, 2010, 1648)
    v = test[2]  # Test003: anomalous from frame 1 in UCSDped2.m (1-146)
    m = v.masks()
    assert np.array_equal(m.reshape(len(m), -1).any(1), v.frame_labels.astype(bool))


@needs_shared
def test_ped1_with_real_concatenated_gt(tmp_path):
    """Ped1 (36 test clips x 200 frames) with frame_labels_ped1.npy from ../shared via gt_root."""
    ped = tmp_path / "UCSDped1"
    _touch_frames(ped / "Train" / "Train001", 200)
    for i in range(1, 37):
        _touch_frames(ped / "Test" / f"Test{i:03d}", 200)
    ds = get_dataset("ucsd_ped1", root=ped, gt_root=GT_PED1, gt="frame_labels_ped1.npy")
    test = ds.videos("test")
    assert len(test) == 36 and sum(v.num_frames for v in test) == 7200
    assert sum(int(v.frame_labels.sum()) for v in test) == 4045
    assert all(v.label == 1 for v in test)
    # README: Test005 5-90, 140-200 (1-based, inclusive); Test030 175-200
    t5 = test[4].frame_labels
    assert np.flatnonzero(np.diff(np.r_[0, t5, 0])).tolist() == [4, 90, 139, 200]
    assert np.flatnonzero(test[29].frame_labels).tolist() == list(range(174, 200))
    # a release with a different number of frames does not fit the concatenated file
    _touch_frames(ped / "Test" / "Test037", 200)
    with pytest.raises(DataError, match=r"frame_labels_ped1.npy: holds 7200 frame labels but the 37 videos"):
        get_dataset("ucsd_ped1", root=ped, gt_root=GT_PED1, gt="frame_labels_ped1.npy")
