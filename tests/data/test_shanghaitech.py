"""ShanghaiTech Campus adapter: the real frame masks and weakly split lists in
../shared/ground_truth/shanghaitech, a release-shaped tree (placeholder files, never decoded),
a tiny decodable release, and error handling."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from vadlib.data import shanghaitech  # noqa: F401  (registers the dataset)
from vadlib.data.registry import get_dataset
from vadlib.data.shanghaitech import parse_sht_frame_masks, parse_sht_split_list
from vadlib.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
GT = SHARED / "ground_truth" / "shanghaitech"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared (real benchmark data) not present")


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory):
    """testing/frames/<clip>/ with as many (empty) frames as each real frame mask, and the 330
    training videos named by the weakly split lists as empty .avi placeholders."""
    root = tmp_path_factory.mktemp("sht")
    masks = parse_sht_frame_masks(GT / "test_frame_mask")
    for vid, lab in masks.items():
        d = root / "testing" / "frames" / vid
        d.mkdir(parents=True)
        for k in range(len(lab)):
            (d / f"{k:03d}.jpg").touch()
    normal = set()
    for f in ("SH_Train_new.txt", "SH_Test_NEW.txt"):
        normal |= {v for v, _, _ in parse_sht_split_list(GT / "weakly_split" / "zhong_mist" / f) if v not in masks}
    (root / "training" / "videos").mkdir(parents=True)
    for v in normal:
        (root / "training" / "videos" / f"{v}.avi").touch()
    return root


@needs_shared
def test_parse_real_frame_masks():
    m = parse_sht_frame_masks(GT / "test_frame_mask")
    assert len(m) == 107
    assert sum(len(a) for a in m.values()) == 40791
    assert sum(int(a.sum()) for a in m.values()) == 17326
    assert all(a.any() for a in m.values())
    concat = np.load(GT / "variants" / "frame_labels_shanghai.npy").reshape(-1)
    assert np.array_equal(np.concatenate(list(m.values())), concat)


@needs_shared
def test_parse_real_weakly_lists():
    zt = parse_sht_split_list(GT / "weakly_split" / "zhong_mist" / "SH_Train_new.txt")
    ze = parse_sht_split_list(GT / "weakly_split" / "zhong_mist" / "SH_Test_NEW.txt")
    assert (len(zt), sum(lab for _, lab, _ in zt)) == (238, 63)
    assert (len(ze), sum(lab for _, lab, _ in ze)) == (199, 44)
    assert sum(n for _, lab, n in ze if lab == 0) == 124398
    rt = parse_sht_split_list(GT / "weakly_split" / "rtfm" / "SH_Train.txt")
    re_ = parse_sht_split_list(GT / "weakly_split" / "rtfm" / "SH_Test.txt")
    assert {v for v, _, _ in rt} == {v for v, _, _ in zt} and {v for v, _, _ in re_} == {v for v, _, _ in ze}


@needs_shared
def test_official_split_through_adapter(real_tree):
    ds = get_dataset("shanghaitech", root=real_tree, gt_root=GT)
    test = ds.videos("test")
    assert (len(test), sum(v.num_frames for v in test), sum(int(v.frame_labels.sum()) for v in test)) \
        == (107, 40791, 17326)
    assert len(ds.videos("train")) == 330 and all(v.label == 0 and v.num_frames is None for v in ds.videos("train"))
    assert ds.gt_file == "test_frame_mask"
    assert all(v.mask_loader is None for v in test)       # no test_pixel_mask here


@needs_shared
@pytest.mark.parametrize("lists", ["zhong_mist", "rtfm"])
def test_weakly_split_through_adapter(real_tree, lists):
    ds = get_dataset("shanghaitech", root=real_tree, gt_root=GT, split="weakly",
                     split_root=GT / "weakly_split" / lists)
    train, test = ds.videos("train"), ds.videos("test")
    assert (len(train), sum(v.label for v in train)) == (238, 63)
    assert (len(test), sum(v.label for v in test)) == (199, 44)
    assert all(v.frame_labels is None for v in train)     # weak supervision: video labels only
    if lists == "zhong_mist":                             # n_frames of the normal test videos are listed
        assert sum(len(v.frame_labels) for v in test) == 141870
        assert sum(int(v.frame_labels.sum()) for v in test) == 7962
    else:                                                 # RTFM lists: normal lengths known after decoding
        normal = [v for v in test if v.label == 0]
        assert all(v.frame_labels is None for v in normal)
        normal[0].check_labels(300)
        assert normal[0].frame_labels.shape == (300,) and not normal[0].frame_labels.any()


@needs_shared
def test_weakly_split_default_lookup_and_missing_video(real_tree, tmp_path):
    ds = get_dataset("shanghaitech", root=real_tree, gt_root=GT, split="weakly")
    assert ds.meta["split_files"][0].endswith("zhong_mist/SH_Train_new.txt")
    (real_tree / "training" / "videos" / "01_001.avi").rename(tmp_path / "01_001.avi")
    try:
        with pytest.raises(DataError, match=r"01_001.avi: normal video '01_001' of the split list is missing"):
            get_dataset("shanghaitech", root=real_tree, gt_root=GT, split="weakly")
    finally:
        (tmp_path / "01_001.avi").rename(real_tree / "training" / "videos" / "01_001.avi")


def _tiny_release(root: Path, labels: dict) -> Path:
    for vid, lab in labels.items():
        d = root / "testing" / "frames" / vid
        d.mkdir(parents=True)
        for k in range(len(lab)):
            cv2.imwrite(str(d / f"{k:03d}.jpg"), np.full((12, 16, 3), 40 * k % 255, np.uint8))
        (root / "testing" / "test_frame_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_frame_mask" / f"{vid}.npy", np.asarray(lab, np.uint8))
        pm = np.zeros((len(lab), 12, 16), np.uint8)
        pm[np.asarray(lab, bool), 2:5, 3:6] = 1
        (root / "testing" / "test_pixel_mask").mkdir(parents=True, exist_ok=True)
        np.save(root / "testing" / "test_pixel_mask" / f"{vid}.npy", pm)
    (root / "training" / "videos").mkdir(parents=True)
    w = cv2.VideoWriter(str(root / "training" / "videos" / "01_001.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 24, (16, 12))
    for k in range(5):
        w.write(np.full((12, 16, 3), 30 * k, np.uint8))
    w.release()
    return root


def test_tiny_release_masks_and_lengths(tmp_path):
    labels = {"01_0014": [0, 1, 1, 0], "02_0161": [1, 1, 0]}
    root = _tiny_release(tmp_path / "sht", labels)
    ds = get_dataset("shanghaitech", root=root)
    (tr,) = ds.videos("train")
    assert tr.name == "01_001" and len(tr.open()) == 5
    for v in ds.videos("test"):
        assert v.frame_labels.tolist() == labels[v.name]
        m = v.masks()
        assert m.shape == (v.num_frames, *v.open().size)
        assert m.reshape(len(m), -1).any(1).astype(int).tolist() == labels[v.name]
    # a frame mask longer than the clip's frames folder
    np.save(root / "testing" / "test_frame_mask" / "02_0161.npy", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match=r"02_0161.npy: GT of video '02_0161' has 4 frames but the video .* has 3"):
        get_dataset("shanghaitech", root=root)


def test_missing_parts_and_bad_options(tmp_path):
    root = _tiny_release(tmp_path / "sht", {"01_0014": [0, 1]})
    with pytest.raises(ConfigError, match="unknown option.*layout"):
        get_dataset("shanghaitech", root=root, layout="frames")
    with pytest.raises(ConfigError, match="split='weak'"):
        get_dataset("shanghaitech", root=root, split="weak")
    with pytest.raises(DataError, match=r"SH_Train_new.txt: weakly split lists are missing"):
        get_dataset("shanghaitech", root=root, split="weakly")
    import shutil

    shutil.rmtree(root / "testing" / "frames")
    with pytest.raises(DataError, match=r"testing[/\\]frames: testing frames folder is missing"):
        get_dataset("shanghaitech", root=root)
    shutil.rmtree(root / "testing" / "test_frame_mask")
    with pytest.raises(DataError, match=r"testing[/\\]test_frame_mask: ShanghaiTech frame GT folder 'test_frame_mask' is missing"):
        get_dataset("shanghaitech", root=root)


def test_tiny_weakly_split_labels_checked(tmp_path):
    root = _tiny_release(tmp_path / "sht", {"01_0014": [0, 1, 1]})
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "SH_Train_new.txt").write_text("01_0014,0\n")
    (lists / "SH_Test_NEW.txt").write_text("01_001,0,5\n")
    with pytest.raises(DataError, match=r"SH_Train_new.txt: video '01_0014' has label 0 but has frame mask"):
        get_dataset("shanghaitech", root=root, split="weakly", split_root=lists)
    (lists / "SH_Train_new.txt").write_text("01_0014,1\n")
    ds = get_dataset("shanghaitech", root=root, split="weakly", split_root=lists)
    (v,) = ds.videos("test")
    assert v.name == "01_001" and v.label == 0 and v.frame_labels.tolist() == [0] * 5
    v.check_labels(len(v.open()))          # the decoded video has the listed 5 frames
    (lists / "SH_Test_NEW.txt").write_text("01_001,0,6\n")
    v = get_dataset("shanghaitech", root=root, split="weakly", split_root=lists).videos("test")[0]
    with pytest.raises(DataError, match=r"SH_Test_NEW.txt: frame labels of video .01_001. have 6 entries but the video has 5"):
        v.check_labels(len(v.open()))
