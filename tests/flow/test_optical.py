"""Optical flow: values on a known motion, caching, reference size, bad videos."""

import json

import cv2
import numpy as np
import pytest

from vadlib.synthetic.flow import write_video
from vadlib.data.base import Video
from vadlib.errors import ConfigError, DataError
from vadlib.flow.optical import (FlowConfig, compute_dataset_flow, compute_flow, frame_flow_index,
                                 read_gray_video)


@pytest.fixture
def synth_video(tmp_path):
    return write_video(tmp_path / "v", n=6, size=(96, 128), speed=2.0, squares=1, sq=24)


def _video(path, name="v"):
    return Video(name=name, path=path, split="train", num_frames=None, fps=10)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_translation(synth_video, method):
    gray = read_gray_video(_video(synth_video))
    assert gray.shape == (6, 96, 128) and gray.dtype == np.uint8
    flow = compute_flow(gray, FlowConfig(method=method))
    assert flow.shape == (5, 96, 128, 2) and flow.dtype == np.float16
    mag = np.linalg.norm(flow[1].astype(np.float32), axis=-1)
    moving = mag > 0.5 * mag.max()
    assert np.median(flow[1][moving][:, 0].astype(np.float32)) == pytest.approx(2.0, abs=0.6)
    assert abs(np.median(flow[1][moving][:, 1].astype(np.float32))) < 0.5
    assert np.median(mag[~moving]) < 0.3  # static background


def test_quantisation_and_ref_size(synth_video):
    gray = read_gray_video(_video(synth_video), ref_size=(192, 256))  # 2× the native size
    assert gray.shape == (6, 192, 256)
    flow = compute_flow(gray, FlowConfig(quant=32)).astype(np.float32)
    assert np.allclose(flow * 32, np.round(flow * 32))
    mag = np.linalg.norm(flow[1], axis=-1)
    assert np.median(flow[1][mag > 0.5 * mag.max()][:, 0]) == pytest.approx(4.0, abs=1.0)


def test_cache_written_once_and_config_checked(tmp_path):
    vids = [_video(write_video(tmp_path / f"v{i}", n=5, seed=i), f"v{i}") for i in range(3)]
    cache = compute_dataset_flow(vids, tmp_path / "cache", FlowConfig(preset="fast"), workers=2, progress=False)
    assert cache.stats["videos_computed"] == 3 and cache.stats["frames"] == 15
    f = cache.load(vids[0])
    assert f.shape == (4, 48, 64, 2)
    with np.load(cache.path(vids[0])) as z:
        assert z["flow"].dtype == np.float16
    assert json.loads((tmp_path / "cache" / "flow.json").read_text())["config"]["preset"] == "fast"
    again = compute_dataset_flow(vids, tmp_path / "cache", FlowConfig(preset="fast"), workers=1, progress=False)
    assert again.stats["videos_computed"] == 0 and again.stats["videos_cached"] == 3
    with pytest.raises(ConfigError, match="flow cache was made with"):
        compute_dataset_flow(vids, tmp_path / "cache", FlowConfig(preset="medium"), progress=False)
    assert not list((tmp_path / "cache").rglob("*.tmp*"))


def test_frame_flow_index():
    assert frame_flow_index(4).tolist() == [0, 0, 1, 2]


def test_one_frame_video_is_an_error(tmp_path):
    d = write_video(tmp_path / "one", n=1)
    with pytest.raises(DataError, match="1 frame"):
        read_gray_video(_video(d))


def test_frames_of_different_sizes_are_an_error(tmp_path):
    d = write_video(tmp_path / "mixed", n=4)
    cv2.imwrite(str(d / "002.png"), np.zeros((30, 30), np.uint8))
    with pytest.raises(DataError, match="different sizes") as exc:
        read_gray_video(_video(d))
    assert str(d) in str(exc.value)


def test_unknown_method():
    with pytest.raises(ConfigError, match="known"):
        compute_flow(np.zeros((2, 8, 8), np.uint8), FlowConfig(method="raft9"))


def test_upscaled_flow_is_in_reference_pixels(synth_video):
    """upscale: flow computed on 2× frames, returned at the reference size in reference pixels."""
    gray = read_gray_video(_video(synth_video))
    flow = compute_flow(gray, FlowConfig(upscale=2.0, options={"FinestScale": 0})).astype(np.float32)
    assert flow.shape == (5, 96, 128, 2)
    mag = np.linalg.norm(flow[1], axis=-1)
    assert np.median(flow[1][mag > 0.5 * mag.max()][:, 0]) == pytest.approx(2.0, abs=0.6)


def test_flow_folder_names_differ_per_config():
    base = FlowConfig(ref_size=(240, 360))
    assert base.folder_name() == "dis-medium-240x360-q32"   # the name of caches written before upscale/options
    assert "upscale" not in base.key()                       # ... and their flow.json stays valid
    names = {base.folder_name(), FlowConfig(ref_size=(240, 360), upscale=2).folder_name(),
             FlowConfig(ref_size=(240, 360), options={"FinestScale": 0}).folder_name(),
             FlowConfig(ref_size=(240, 360), options={"FinestScale": 1}).folder_name()}
    assert len(names) == 4
    with pytest.raises(ConfigError, match="upscale"):
        FlowConfig(upscale=0.5)
