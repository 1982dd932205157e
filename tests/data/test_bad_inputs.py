"""Bad inputs beyond the listed findings: each is refused with the file/parameter named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.test_avenue import make_release
from tests.data.test_ucsd import make_original
from vadlib.data import get_dataset
from vadlib.errors import ConfigError, DataError


def _manifest(tmp_path: Path, entry: dict) -> Path:
    (tmp_path / "v").mkdir(exist_ok=True)
    for i in range(3):
        import cv2

        cv2.imwrite(str(tmp_path / "v" / f"{i:03d}.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "manifest.json").write_text(json.dumps({"train": {"s": []}, "test": {"s": [entry]}}))
    return tmp_path / "manifest.json"


@pytest.mark.parametrize("extra, message", [
    ({"fps": "abc"}, r"entry test/s\[0\] \(v\).fps: expected a number, got 'abc'"),
    ({"fps": -5}, r"entry test/s\[0\] \(v\).fps: must be > 0, got -5"),
    ({"name": 3}, r"entry test/s\[0\] \(v\).name: expected a string, got 3"),
    ({"gt_pth": "x.npy"}, r"entry test/s\[0\] \(v\): unknown key 'gt_pth' \(did you mean 'gt_path'\?\)"),
])
def test_manifest_entries_are_checked_by_type(tmp_path, extra, message):
    path = _manifest(tmp_path, {"video_path": "v", "anomaly": 0, **extra})
    with pytest.raises(DataError, match=rf"manifest.json: {message}"):
        get_dataset("manifest", root=path)


def test_manifest_entry_that_is_a_list(tmp_path):
    path = _manifest(tmp_path, ["v", 0])
    with pytest.raises(DataError, match=r"manifest.json: entry test/s\[0\]: needs 'video_path' and 'anomaly'"):
        get_dataset("manifest", root=path)


def test_missing_gt_files_are_named(tmp_path):
    rel = make_release(tmp_path / "avenue", [[0, 1], [1, 0, 0]])
    (rel / "avenue.mat").unlink()
    with pytest.raises(DataError, match=r"avenue.mat: Avenue GT file 'avenue.mat' is missing.*set gt_root"):
        get_dataset("avenue", root=tmp_path / "avenue")
    ped = make_original(tmp_path / "ucsd", [5], ["2:4"])
    (ped / "Test" / "UCSDped2.m").unlink()
    with pytest.raises(DataError, match=r"UCSDped2.m: UCSD Ped2 GT file 'UCSDped2.m' is missing"):
        get_dataset("ucsd_ped2", root=tmp_path / "ucsd")


def test_empty_frames_folder_in_a_release(tmp_path):
    ped = make_original(tmp_path / "ucsd", [5, 4], ["2:4", "1:2"])
    for f in (ped / "Test" / "Test002").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="Test002: frames folder holds no image files"):
        get_dataset("ucsd_ped2", root=tmp_path / "ucsd")


@pytest.mark.parametrize("options, message", [
    ({"fps": 0}, "datasets.ucsd_ped2.fps: must be > 0, got 0"),
    ({"fps": float("nan")}, "datasets.ucsd_ped2.fps: expected a finite number"),
    ({"layout": ["frames"]}, r"datasets.ucsd_ped2.layout: expected a string, got \['frames'\]"),
    ({"gt": {"file": "x.m"}}, r"datasets.ucsd_ped2.gt: expected a string, got \{'file': 'x.m'\}"),
])
def test_dataset_options_of_the_wrong_kind(tmp_path, options, message):
    with pytest.raises(ConfigError, match=message):
        get_dataset("ucsd_ped2", root=tmp_path, **options)
