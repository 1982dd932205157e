"""Held-out release layouts: options as YAML gives them (strings), folders one level up, missing
optional lists. Small generated files laid out like each release."""

from __future__ import annotations

import inspect
import logging
import typing
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.conftest import PED2, needs_ped2
from tests.data.test_avenue import make_release
from tests.data.test_ucfcrime import ANN, _mp4
from tests.data.test_ucsd import make_original
from vadlib.data import DATASETS, get_dataset
from vadlib.data.release import check_options
from vadlib.errors import ConfigError, DataError


def _avenue_with_separate_gt(tmp_path: Path) -> tuple[Path, Path]:
    rel = make_release(tmp_path / "avenue", [[0, 1, 1], [0, 0, 0, 1]])
    gt = tmp_path / "gt"
    gt.mkdir()
    (rel / "avenue.mat").rename(gt / "avenue.mat")
    return tmp_path / "avenue", gt


def test_avenue_gt_root_as_a_string(tmp_path):
    root, gt = _avenue_with_separate_gt(tmp_path)
    ds = get_dataset("avenue", root=str(root), gt_root=str(gt))          # as YAML gives them
    assert [v.frame_labels.tolist() for v in ds.videos("test")] == [[0, 1, 1], [0, 0, 0, 1]]
    ds = get_dataset("avenue", root=str(root), gt_root=str(gt / ".."), gt="gt/avenue.mat")
    assert ds.meta["gt_path"].endswith("avenue.mat")
    # the mask GT option with the masks in a separately given folder
    masks = root / "Avenue Dataset" / "ground_truth_demo"
    ds = get_dataset("avenue", root=str(root), gt_root=str(masks), gt="testing_label_mask")
    assert [v.frame_labels.tolist() for v in ds.videos("test")] == [[0, 1, 1], [0, 0, 0, 1]]


def test_avenue_through_search_collection_with_params(tmp_path):
    from vadlib.search import collection_videos

    root, gt = _avenue_with_separate_gt(tmp_path)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"datasets": {"avenue": {"root": str(root), "gt_root": str(gt)}}}))
    name, videos = collection_videos("dataset:avenue:test", str(params))
    assert name == "avenue" and [v.name for v in videos] == ["Test01", "Test02"]
    params.write_text(yaml.safe_dump({"datasets": {"avenue": ["root", str(root)]}}))
    with pytest.raises(ConfigError, match=r"params.yaml: datasets.avenue: expected a mapping"):
        collection_videos("dataset:avenue:test", str(params))
    params.write_text(yaml.safe_dump({"datasets": {"avenue": {"root": str(root), "fps": "abc"}}}))
    with pytest.raises(ConfigError, match=r"params.yaml: datasets.avenue.fps: expected a number, got 'abc'"):
        collection_videos("dataset:avenue:test", str(params))


def _path_options() -> list[tuple[str, str]]:
    out = []
    for name in DATASETS.names():
        fn = DATASETS.get(name)
        hints = typing.get_type_hints(fn)
        out += [(name, p) for p in inspect.signature(fn).parameters
                if p != "root" and Path in typing.get_args(hints.get(p))]
    return out


@pytest.mark.parametrize("dataset, option", _path_options())
def test_every_adapter_turns_string_paths_into_paths(dataset, option):
    """The str-path bug of Avenue's gt_root cannot recur in any adapter: every option annotated as a
    path reaches the adapter as a Path, whatever YAML gave."""
    checked = check_options(dataset, DATASETS.get(dataset), {option: "some/folder"})
    assert checked[option] == Path("some/folder")


def test_path_options_exist_for_the_real_adapters():
    names = {n for n, _ in _path_options()}
    assert {"avenue", "ucfcrime", "shanghaitech", "xdviolence", "ucsd_ped1", "ucsd_ped2"} <= names


@pytest.mark.parametrize("option, value, message", [
    ("fps", "abc", "datasets.ucfcrime.fps: expected a number, got 'abc'"),
    ("fps", -25, "datasets.ucfcrime.fps: must be > 0, got -25"),
    ("end_inclusive", "false", "datasets.ucfcrime.end_inclusive: expected true or false, got 'false'"),
    ("gt_root", ["a", "b"], "datasets.ucfcrime.gt_root: expected a path"),
    ("gt", None, "datasets.ucfcrime.gt: no value given"),
])
def test_wrong_option_types_are_named(tmp_path, option, value, message):
    with pytest.raises(ConfigError, match=message):
        get_dataset("ucfcrime", root=tmp_path, **{option: value})


def _ucf_release(root: Path) -> None:
    _mp4(root / "Arson" / "Arson001_x264.mp4", 6)
    _mp4(root / "Training_Normal_Videos_Anomaly" / "Normal_Videos001_x264.mp4", 4)
    _mp4(root / "Arson" / "Arson002_x264.mp4", 8)
    _mp4(root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos002_x264.mp4", 5)
    (root / "Anomaly_Train.txt").write_text("Arson/Arson001_x264.mp4\n"
                                            "Training_Normal_Videos_Anomaly/Normal_Videos001_x264.mp4\n")
    (root / ANN).write_text("Arson002_x264.mp4  Arson  1  2  5  20  \nNormal_Videos002_x264.mp4  Normal  -1  -1  -1  -1  \n")


def test_ucfcrime_without_test_list_uses_the_annotation(tmp_path, caplog):
    root = tmp_path / "ucf"
    _ucf_release(root)
    with caplog.at_level(logging.WARNING, logger="vadlib.data.ucfcrime"):
        ds = get_dataset("ucfcrime", root=root)
    assert "Anomaly_Test.txt" in caplog.text and "taken from the temporal annotation" in caplog.text
    a, n = ds.videos("test")
    assert (a.name, a.class_name, n.name, n.class_name) == ("Arson002_x264", "Arson", "Normal_Videos002_x264", "normal")
    assert a.path == root / "Arson" / "Arson002_x264.mp4"
    a.check_labels(len(a.open()))
    assert a.frame_labels.tolist() == [0, 1, 1, 0, 0, 1, 1, 1]
    (root / "Testing_Normal_Videos_Anomaly" / "Normal_Videos002_x264.mp4").unlink()
    with pytest.raises(DataError, match=f"Normal_Videos002_x264.mp4: video listed in {ANN} is missing"):
        get_dataset("ucfcrime", root=root)


def test_ucfcrime_empty_test_list_is_still_an_error(tmp_path):
    root = tmp_path / "ucf"
    _ucf_release(root)
    (root / "Anomaly_Test.txt").write_text("\n")
    with pytest.raises(DataError, match="Anomaly_Test.txt: video list is empty"):
        get_dataset("ucfcrime", root=root)


def test_ucsd_download_folder_one_level_up(tmp_path):
    make_original(tmp_path, [5, 6], ["2:4", "1:2, 5:6"])
    for root in (tmp_path, tmp_path / "UCSD_Anomaly_Dataset.v1p2", tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped2"):
        ds = get_dataset("ucsd_ped2", root=str(root))
        assert ds.root == tmp_path / "UCSD_Anomaly_Dataset.v1p2" / "UCSDped2" and ds.meta["layout"] == "original"
        assert [v.frame_labels.tolist() for v in ds.videos("test")] == [[0, 1, 1, 1, 0], [1, 1, 0, 0, 1, 1]]
    with pytest.raises(DataError, match=r"neither the original UCSD layout \(Test or UCSDped1/Test or "
                                        r"UCSD_Anomaly_Dataset.v1p2/UCSDped1/Test\) nor the frames UCSD layout"):
        get_dataset("ucsd_ped1", root=tmp_path)
    with pytest.raises(DataError, match=r"training[/\\]frames: training frames folder is missing"):
        get_dataset("ucsd_ped2", root=tmp_path, layout="frames")


@needs_ped2
def test_real_ped2_from_the_folder_above():
    ds = get_dataset("ucsd_ped2", root=PED2.parent)          # ../shared/datasets holds ucsd_ped2/
    assert ds.root == PED2 and len(ds.videos("test")) == 12
    assert sum(int(v.frame_labels.sum()) for v in ds.videos("test")) == 1648


def test_empty_release_folders_are_named(tmp_path):
    (tmp_path / "Avenue Dataset" / "testing_videos").mkdir(parents=True)
    (tmp_path / "Avenue Dataset" / "training_videos").mkdir()
    with pytest.raises(DataError, match="training_videos: training videos folder holds no video files"):
        get_dataset("avenue", root=tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        get_dataset("avenue", root=tmp_path / "nope")
