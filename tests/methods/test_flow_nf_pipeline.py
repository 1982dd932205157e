"""End to end on synthetic videos: train on one dataset, save, apply the saved model to a
dataset of another resolution that training never saw (no retraining)."""

import json

import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError, DataError
from vadlib.methods.flow_nf.pipeline import FlowNFModel, apply_model, evaluate_all, frame_max, merge_params, train_flow_nf
from vadlib.synthetic.flow import make_dataset

torch.set_num_threads(1)

PARAMS = {"workers": 1, "calib_every": 3, "sigma": 0,
          "flow": {"preset": "medium", "ref_size": [96, 128]},
          "regions": {"use_flow": True, "tau_mag": 0.3, "min_area": 100},
          "glow": {"K": 2, "hidden": 16, "epochs": 3, "batch_size": 64, "max_train": 2000},
          "pose": {"files": {}}}


def test_frame_max():
    s = frame_max(np.array([1.0, 3.0, 2.0]), np.array([0, 0, 2]), 4, empty=-5.0)
    assert s.tolist() == [3.0, -5.0, 2.0, -5.0]


def test_merge_params_rejects_unknown():
    assert merge_params({"glow": {"K": 3}})["glow"]["hidden"] == 64
    with pytest.raises(ConfigError, match="unknown key"):
        merge_params({"glwo": {}})


def _pose_npz(path, n_videos, n, rng):
    off = np.arange(n_videos * n + 1) * 2  # two objects per frame
    np.savez(path, keypoints=rng.normal(size=(2 * n_videos * n, 34)), frame_offsets=off,
             video=np.repeat(np.arange(1, n_videos + 1), n).astype(np.int16),
             frame=np.tile(np.arange(n), n_videos).astype(np.int16))


def test_train_save_apply_cross_dataset(tmp_path):
    src = make_dataset(tmp_path, "src", size=(96, 128), n_train=3, n_test=1, n=14, seed=0, sq=24)
    rng = np.random.default_rng(0)
    _pose_npz(src.root / "train_pose.npz", 3, 14, rng)
    _pose_npz(src.root / "test_pose.npz", 1, 14, rng)
    pose = {"files": {"src": {"train": "train_pose.npz", "test": "test_pose.npz"}}, "K": 2, "hidden": 8, "epochs": 2}
    p = merge_params({**PARAMS, "cache": str(tmp_path / "cache"), "pose": pose})
    model, info = train_flow_nf(src, p)
    assert info["calib_videos"] == ["src_tr2"] and info["n_train_patches"] > 10 and info["n_train_pose"] == 2 * 2 * 14
    assert set(model.models) == {"flow_nf", "velocity", "pose"}
    r_src = apply_model(model, src, params_override={"cache": str(tmp_path / "cache"), "workers": 1})
    assert set(r_src["scores"]) == {"naive", "flow_nf", "velocity", "pose", "fusion"}
    model.save(tmp_path / "model")
    cfg = json.loads((tmp_path / "model" / "config.json").read_text())
    assert cfg["params"]["flow"]["ref_size"] == [96, 128] and set(cfg["norm"]) >= {"flow_nf", "velocity", "pose"}
    torch.load(tmp_path / "model" / "flow_nf.pt", weights_only=True)

    # a dataset never seen in training, at twice the resolution with twice the pixel speeds
    tgt = make_dataset(tmp_path, "tgt", size=(192, 256), n_train=1, n_test=2, n=14, seed=50, sq=48, speed=2.0,
                       fast_speed=8.0)
    loaded = FlowNFModel.load(tmp_path / "model")
    r = apply_model(loaded, tgt, params_override={"cache": str(tmp_path / "cache"), "workers": 1})
    flow_dirs = list((tmp_path / "cache" / "tgt").iterdir())
    assert [d.name for d in flow_dirs] == ["dis-medium-96x128-q32"]  # flow at the source's reference size
    assert set(r["scores"]) == {"naive", "flow_nf", "velocity", "fusion"}  # target has no pose file
    for meth, sc in r["scores"].items():
        assert all(len(sc[v.name]) == 14 and np.all(np.isfinite(sc[v.name])) for v in tgt.videos("test")), meth
    m = evaluate_all(r["scores"], r["labels"], sigma=None)
    # the fast square is an unusual motion for both density models
    assert m["velocity"]["micro_auc"] > 0.7 and m["flow_nf"]["micro_auc"] > 0.6


def test_load_missing_model(tmp_path):
    with pytest.raises(DataError, match="not a saved flow_nf model"):
        FlowNFModel.load(tmp_path)


def test_region_policy_per_source_dataset():
    from vadlib.methods.flow_nf.pipeline import region_config
    from vadlib.flow.regions import RegionConfig

    keyed = {"demo_a": {"use_flow": True, "tau_mag": 0.15, "min_area": 16}}
    assert region_config(keyed, "demo_a").tau_mag == 0.15 and region_config(keyed, "demo_a").use_flow
    assert region_config(keyed, "ucsd_ped2") == RegionConfig()          # no entry → R&H motion boxes
    assert region_config({}, "anything") == RegionConfig()
    assert region_config({"min_area": 64}, "x").min_area == 64           # one flat dict of fields
    with pytest.raises(ConfigError, match="unknown field"):
        region_config({"tau_mg": 0.5}, "x")


def test_committed_ped2_model_applies_to_an_unseen_dataset(tmp_path):
    """The saved real-Ped2 model (reports/flow_nf_ped2/model) scores a generated dataset of another
    resolution without retraining: flow at Ped2's reference size, the source's region policy."""
    from pathlib import Path

    model_dir = Path(__file__).resolve().parents[2] / "reports" / "flow_nf_ped2" / "model"
    model = FlowNFModel.load(model_dir)
    assert model.source == "ucsd_ped2" and model.params["flow"]["ref_size"] == [240, 360]
    tgt = make_dataset(tmp_path, "unseen", size=(120, 160), n_train=1, n_test=2, n=12, seed=7, sq=20, speed=1.0,
                       fast_speed=6.0)
    r = apply_model(model, tgt, params_override={"cache": str(tmp_path / "cache"), "workers": 1})
    assert [d.name for d in (tmp_path / "cache" / "unseen").iterdir()] == ["dis-medium-240x360-q32"]
    assert set(r["scores"]) == {"naive", "flow_nf", "velocity", "fusion"}   # no pose file for the target
    for meth, sc in r["scores"].items():
        assert all(len(sc[v.name]) == 12 and np.all(np.isfinite(sc[v.name])) for v in tgt.videos("test")), meth
    assert sum(r["n_regions"].values()) > 0


def test_window_regions_through_the_pipeline(tmp_path):
    """regions.window: every region is a window of the motion mask, patches resized to patch.size,
    and the planted fast square still stands out for velocity."""
    src = make_dataset(tmp_path, "src", size=(96, 128), n_train=3, n_test=1, n=14, seed=0, sq=24)
    p = merge_params({**PARAMS, "cache": str(tmp_path / "cache"),
                      "regions": {"src": {"use_flow": True, "tau_mag": 0.3, "window": 16, "window_stride": 8}}})
    model, info = train_flow_nf(src, p)
    r = apply_model(model, src, params_override={"cache": str(tmp_path / "cache"), "workers": 1})
    assert info["n_train_patches"] > 10
    assert model.models["flow_nf"].model_ is not None and p["patch"]["size"] == 8
    m = evaluate_all(r["scores"], r["labels"], sigma=None)
    assert m["velocity"]["micro_auc"] > 0.7
    from vadlib.methods.flow_nf.pipeline import _configs, _flow_cache_dir, dataset_features

    fcfg, rcfg = _configs(p, "src")
    feats = dataset_features(src.videos("test"), _flow_cache_dir(p, "src", fcfg), fcfg, rcfg, p["patch"], 1, 0.01, 1)
    f = next(iter(feats.values()))
    assert len(f.boxes) > 0 and set(map(tuple, (f.boxes[:, 2:] - f.boxes[:, :2]).tolist())) == {(16, 16)}
    assert f.patches.shape[1:] == (2, 8, 8)
