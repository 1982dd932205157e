"""The extractor's command line takes dataset options; a frames folder of mixed sizes is refused
whatever the batch size."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.data.test_avenue import make_release
from vadlib.data import Video
from vadlib.errors import ConfigError, DataError
from vadlib.features.extract import ExtractConfig, dataset_options, extract_video, main


def test_dataset_options_from_the_command_line_and_params(tmp_path):
    assert dataset_options("avenue", "r", ["gt_root=/data/gt", "end_inclusive=false", "fps=30", "gt=avenue.mat"]) == {
        "gt_root": "/data/gt", "end_inclusive": False, "fps": 30, "gt": "avenue.mat", "root": "r"}
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"datasets": {"avenue": {"root": "a", "gt_root": "g", "fps": 25}}}))
    assert dataset_options("avenue", None, ["fps=30"], params) == {"root": "a", "gt_root": "g", "fps": 30}
    assert dataset_options("avenue", "b", [], params)["root"] == "b"
    with pytest.raises(ConfigError, match="--dataset-option 'gt_root': expected KEY=VALUE"):
        dataset_options("avenue", None, ["gt_root"])
    with pytest.raises(ConfigError, match="params.yaml: datasets has no entry 'ucfcrime'"):
        dataset_options("ucfcrime", None, [], params)
    params.write_text(yaml.safe_dump({"datasets": {"avenue": {"root": "a", "fps": "abc"}}}))
    with pytest.raises(ConfigError, match="params.yaml: datasets.avenue.fps: expected a number, got 'abc'"):
        dataset_options("avenue", None, [], params)


def test_extract_cli_reads_a_separately_downloaded_gt(tmp_path, capsys):
    """Avenue with its GT in another folder (gt_root) extracts from the command line."""
    rel = make_release(tmp_path / "avenue", [[0, 1, 1], [0, 0, 0, 1]], train_lengths=(2,))
    (tmp_path / "gt").mkdir()
    (rel / "avenue.mat").rename(tmp_path / "gt" / "avenue.mat")
    common = ["--dataset", "avenue", "--root", str(tmp_path / "avenue"), "--backbone", "vadlib-tiny",
              "--pretrained", "random", "--out", str(tmp_path / "features"), "--splits", "test", "--no-progress"]
    assert main(common) == 2
    err = capsys.readouterr().err
    assert "Avenue GT file 'avenue.mat' is missing" in err and "set gt_root" in err
    assert main([*common, "--dataset-option", f"gt_root={tmp_path / 'gt'}"]) == 0
    assert "2 videos" in capsys.readouterr().out
    assert main([*common, "--dataset-option", "fps=abc"]) == 2
    assert "datasets.avenue.fps: expected a number, got 'abc'" in capsys.readouterr().err


def _mixed_folder(folder: Path, n: int = 6, odd: int = 3) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        h, w = (20, 30) if i == odd else (24, 32)
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((h, w, 3), 10 * i, np.uint8))
    return folder


@pytest.mark.parametrize("batch_size", [1, 4, 32])
def test_mixed_frame_sizes_are_refused_at_any_batch_size(tmp_path, tiny_backbone, batch_size):
    folder = _mixed_folder(tmp_path / "clip")
    video = Video(name="clip", path=folder, split="test")
    cfg = ExtractConfig(sampling="frame", batch_size=batch_size, progress=False)
    with pytest.raises(DataError, match=r"clip: frames of different sizes within one video: 003.png is 30x20 "
                                        r"but 000.png is 32x24"):
        extract_video(video, tiny_backbone, cfg)


@pytest.mark.parametrize("field, value, message", [
    ("stride", 2.5, "extract.stride: expected an integer, got 2.5"),
    ("batch_size", "32", "extract.batch_size: expected an integer, got '32'"),
    ("progress", "false", "extract.progress: expected true or false, got 'false'"),
])
def test_extract_config_types(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ExtractConfig(**{field: value}).validate()
    assert type(ExtractConfig(stride=2.0).validate().stride) is int
