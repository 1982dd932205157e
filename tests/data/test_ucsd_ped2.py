"""The Ped2 frames-layout adapter on the real data in ../shared (skipped without it)."""

import numpy as np
import pytest

from tests.conftest import PED2, needs_ped2
from vadlib.data import get_dataset
from vadlib.errors import DataError

pytestmark = needs_ped2


def test_ped2_counts_and_gt_files():
    ds = get_dataset("ucsd_ped2", root=PED2)
    test, train = ds.videos("test"), ds.videos("train")
    assert (len(train), sum(v.num_frames for v in train)) == (16, 2550)
    assert len(test) == 12
    assert sum(v.num_frames for v in test) == 2010
    assert sum(int(v.frame_labels.sum()) for v in test) == 1648
    assert ds.gt_file == "UCSDped2.m"
    mat = get_dataset("ucsd_ped2", root=PED2, gt="ped2.mat")
    assert sum(int(v.frame_labels.sum()) for v in mat.videos("test")) == 1624


@pytest.mark.parametrize("idx", [0, 5])
def test_ped2_masks_align_with_frames(idx):
    v = get_dataset("ucsd_ped2", root=PED2).videos("test")[idx]
    masks = v.masks()
    frames = v.open()
    assert masks.shape == (v.num_frames, *frames.size) == (len(frames), 240, 360)
    # 1-based GT frame k is JPEG k-1 and mask k: a non-empty mask exactly where the GT says anomalous
    assert np.array_equal(masks.reshape(len(masks), -1).any(1), v.frame_labels.astype(bool))


def test_ped2_gt_length_mismatch_is_named(tmp_path):
    import shutil

    root = tmp_path / "ped2"
    (root / "training" / "frames" / "01").mkdir(parents=True)
    shutil.copy(PED2 / "training" / "frames" / "01" / "000.jpg", root / "training" / "frames" / "01" / "000.jpg")
    (root / "testing" / "frames" / "01").mkdir(parents=True)
    for i in range(3):
        shutil.copy(PED2 / "testing" / "frames" / "01" / f"{i:03d}.jpg", root / "testing" / "frames" / "01" / f"{i:03d}.jpg")
    (root / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [2:9];\n")
    with pytest.raises(DataError, match=r"UCSDped2.m.*exceeds its 3 frames"):
        get_dataset("ucsd_ped2", root=root)
    (root / "UCSDped2.m").write_text("TestVideoFile{end+1}.gt_frame = [2:3];\nTestVideoFile{end+1}.gt_frame = [1:2];\n")
    with pytest.raises(DataError, match="lists 2 test videos"):
        get_dataset("ucsd_ped2", root=root)
