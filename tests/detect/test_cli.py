"""`vadlib detect` and `vadlib search` on generated videos with planted events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vadlib.detect import main as detect_main
from vadlib.errors import ConfigError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def flow_model(tmp_path_factory):
    """A small flow_nf model trained on normal synthetic motion (squares at 1 px/frame)."""
    from vadlib.methods.flow_nf.pipeline import merge_params, train_flow_nf
    from vadlib.synthetic.flow import make_dataset

    tmp = tmp_path_factory.mktemp("flow")
    src = make_dataset(tmp, "src", size=(96, 128), n_train=3, n_test=1, n=24, seed=0, sq=24)
    p = merge_params({"workers": 1, "calib_every": 3, "sigma": 0, "cache": str(tmp / "cache"),
                      "flow": {"preset": "medium", "ref_size": [96, 128]},
                      "regions": {"use_flow": True, "tau_mag": 0.3, "min_area": 100},
                      "glow": {"K": 2, "hidden": 16, "epochs": 3, "batch_size": 64, "max_train": 2000}})
    model, _ = train_flow_nf(src, p)
    model.save(tmp / "model")
    return tmp, src


def test_detect_finds_the_planted_event(flow_model, tmp_path):
    tmp, src = flow_model
    from vadlib.synthetic.flow import write_video

    # a video the model never saw: square 0 turns fast from frame 30 on (frames 31.. are anomalous)
    video = write_video(tmp_path / "clip", n=48, size=(96, 128), seed=7, fast_from=30, fast_speed=6.0, sq=24)
    normal = [str(v.path) for v in src.videos("train")]
    out = tmp_path / "out"
    rc = detect_main([str(video), "--method", "flow_nf", "--checkpoint", str(tmp / "model"),
                      "--calibrate", *normal, "--false-alarm-rate", "0.05", "--min-event", "3",
                      "--out", str(out)])
    assert rc == 0
    # the flow of scored videos is cached in the user cache, never where the model was trained
    import os

    assert list((Path(os.environ["XDG_CACHE_HOME"]) / "vadlib" / "flow").iterdir())
    assert [d.name for d in (tmp / "cache").iterdir()] == ["src"]
    res = json.loads((out / "clip" / "events.json").read_text())
    assert res["threshold"]["source"].startswith("calibrated on normal footage")
    assert res["events"], "no event found"
    best = max(res["events"], key=lambda e: e["end"] - e["start"])
    assert best["start"] >= 25 and best["end"] >= 40, best  # at the right time
    df = pd.read_parquet(out / "clip" / "scores.parquet")
    assert len(df) == 48 and np.isfinite(df["score"]).all()
    assert df["score"][31:].mean() > df["score"][:28].mean()
    import decord

    assert len(decord.VideoReader(str(out / "clip" / "annotated.mp4"))) == 48
    assert (out / "clip" / "timeline.png").stat().st_size > 5000
    # an existing output folder is refused without --overwrite, and nothing is touched
    before = (out / "clip" / "events.json").stat().st_mtime_ns
    assert detect_main([str(video), "--method", "flow_nf", "--checkpoint", str(tmp / "model"),
                        "--threshold", "0.5", "--out", str(out)]) == 2
    assert (out / "clip" / "events.json").stat().st_mtime_ns == before


def test_detect_bad_inputs(tmp_path, capsys):
    from vadlib.synthetic.flow import write_video

    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    good = write_video(tmp_path / "good", n=8, size=(40, 56), seed=5, sq=10)
    assert detect_main([str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # no prompts for a prompt-based method
    assert detect_main([str(good), "--backbone", "vadlib-tiny", "--pretrained", "random", "--threshold", "0.5",
                        "--out", str(tmp_path / "o")]) == 2
    assert "needs at least one --prompt" in capsys.readouterr().err
    # an empty video file is named
    assert detect_main([str(bad), "--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "x",
                        "--threshold", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert "empty.mp4" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # no checkpoint for a checkpoint method
    assert detect_main([str(good), "--method", "flow_nf", "--out", str(tmp_path / "o")]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    # two inputs of the same name would write one output folder: refused
    (tmp_path / "x").mkdir()
    import shutil

    shutil.copytree(good, tmp_path / "x" / "good")
    assert detect_main([str(good), str(tmp_path / "x" / "good"), "--backbone", "vadlib-tiny", "--pretrained", "random",
                        "--prompt", "x", "--threshold", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert "same name" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_an_unreadable_input_writes_nothing_even_with_a_calibration(mil_checkpoint, tmp_path, capsys):
    """The inputs are checked before anything is calibrated or written: no half-written output folder, and
    the calibration saved beside the checkpoint is not replaced by one that nothing was scored with."""
    from vadlib.synthetic.flow import write_video

    ckpt, _ = mil_checkpoint
    normal = write_video(tmp_path / "normal", n=12, size=(40, 56), seed=4, sq=10)
    bad = tmp_path / "empty.mp4"
    bad.write_bytes(b"")
    beside = ckpt.with_suffix(".threshold.json")
    before = beside.read_text() if beside.exists() else None
    out = tmp_path / "o"
    assert detect_main([str(bad), "--method", "anomalyclip", "--checkpoint", str(ckpt), "--calibrate", str(normal),
                        "--out", str(out)]) == 2
    assert "empty.mp4" in capsys.readouterr().err
    assert not out.exists()
    assert (beside.read_text() if beside.exists() else None) == before
    # an unreadable calibration video is named too, before any work
    clip = write_video(tmp_path / "clip", n=12, size=(40, 56), seed=3, sq=10)
    assert detect_main([str(clip), "--method", "anomalyclip", "--checkpoint", str(ckpt), "--calibrate", str(normal),
                        str(bad), "--out", str(out)]) == 2
    assert "empty.mp4" in capsys.readouterr().err
    assert not out.exists()
    assert (beside.read_text() if beside.exists() else None) == before


@pytest.fixture(scope="module")
def mil_checkpoint(tmp_path_factory):
    """An AnomalyCLIP train_mil checkpoint on vadlib-tiny/random features sampled every 2nd frame."""
    from vadlib.methods import build as build_method
    from vadlib.methods import config as method_config

    tmp = tmp_path_factory.mktemp("mil")
    classes = ["normal", "cyclist", "cart"]
    emb = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))
    m = build_method("anomalyclip", method_config("anomalyclip", "demo", {"text_source": "embeddings"}), classes, 64,
                     text_embeddings=emb, seed=0)
    m.module.eval()
    spec = {"backbone": "vadlib-tiny", "pretrained": "random", "real_weights": False, "sampling": "every",
            "stride": 2, "crops": 1, "embed_dim": 64}
    return m.save(tmp / "model.pt", meta={"dataset": "demo_a", "features": spec}), classes


def test_detect_with_a_train_mil_checkpoint(mil_checkpoint, flow_model, tmp_path, capsys):
    from vadlib.synthetic.flow import write_video

    ckpt, classes = mil_checkpoint
    video = write_video(tmp_path / "clip", n=32, size=(96, 128), seed=3, fast_from=20, fast_speed=6.0, sq=24)
    normal = write_video(tmp_path / "normal", n=32, size=(96, 128), seed=4, sq=24)
    out = tmp_path / "out"
    # the checkpoint's backbone and sampling are used; a calibration is saved beside the checkpoint
    assert detect_main([str(video), "--method", "anomalyclip", "--checkpoint", str(ckpt), "--calibrate", str(normal),
                        "--false-alarm-rate", "0.2", "--no-video", "--out", str(out)]) == 0
    beside = ckpt.with_suffix(".threshold.json")
    saved = json.loads(beside.read_text())
    assert saved["method"] == "anomalyclip" and saved["sampling"] == "every 2" and "normal" in saved["source"]
    assert saved["backbone"] == "vadlib-tiny" and saved["pretrained"] == "random" and saved["false_alarm_rate"] == 0.2
    res = json.loads((out / "clip" / "events.json").read_text())
    assert res["backbone"] == "vadlib-tiny" and res["sampling"] == "every 2" and res["real_weights"] is False
    df = pd.read_csv(out / "clip" / "scores.csv")
    assert len(df) == 32 and set(df["fired"]) <= set(classes[1:])           # the class that fired, never "normal"
    # no threshold option: the one beside the checkpoint is reused, and events.json says so
    assert detect_main([str(video), "--method", "anomalyclip", "--checkpoint", str(ckpt), "--no-video",
                        "--out", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "clip" / "events.json").read_text())
    assert "saved beside the checkpoint" in again["threshold"]["source"]
    assert again["threshold"]["value"] == saved["value"]
    # features made differently from the checkpoint's: refused, naming the checkpoint and both values
    capsys.readouterr()
    assert detect_main([str(video), "--method", "anomalyclip", "--checkpoint", str(ckpt), "--every", "8",
                        "--threshold", "0.5", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and "stride: checkpoint 2, requested 8" in err
    assert not (tmp_path / "o2").exists()
    # the calibration footage may not be the video being scored
    assert detect_main([str(video), "--method", "anomalyclip", "--checkpoint", str(ckpt), "--calibrate", str(video),
                        "--out", str(tmp_path / "o3")]) == 2
    assert "must not be the video being scored" in capsys.readouterr().err


def test_detect_fusion_is_calibrated_on_normal_footage(mil_checkpoint, flow_model, tmp_path, capsys):
    from vadlib.synthetic.flow import write_video

    ckpt, _ = mil_checkpoint
    tmp, src = flow_model
    video = write_video(tmp_path / "clip", n=40, size=(96, 128), seed=9, fast_from=24, fast_speed=6.0, sq=24)
    normal = [str(v.path) for v in src.videos("train")]
    args = [str(video), "--method", "anomalyclip+flow_nf", "--checkpoint", str(ckpt), "--checkpoint", str(tmp / "model"),
            "--weights", "0.2", "0.8", "--no-video"]
    # a fused score has no fixed scale: a bare threshold is refused
    assert detect_main(args + ["--threshold", "0.5", "--out", str(tmp_path / "o1")]) == 2
    assert "calibrate" in capsys.readouterr().err
    own = tmp / "model.threshold.json"                     # the flow model's own calibration, if any
    own_before = own.read_text() if own.exists() else None
    assert detect_main(args + ["--calibrate", *normal, "--false-alarm-rate", "0.05", "--out", str(tmp_path / "o")]) == 0
    th = json.loads((tmp_path / "o" / "threshold.json").read_text())
    assert th["method"] == "anomalyclip+flow_nf" and len(th["norm"]) == 2
    # saved beside both checkpoints under the fusion's name: the methods' own calibrations are kept
    for beside in (ckpt.with_suffix(".anomalyclip+flow_nf.threshold.json"), tmp / "model.anomalyclip+flow_nf.threshold.json"):
        assert json.loads(beside.read_text())["norm"] == th["norm"]
    assert (own.read_text() if own.exists() else None) == own_before
    # and reused from there when no threshold option is given
    assert detect_main(args + ["--out", str(tmp_path / "o6")]) == 0
    reused = json.loads((tmp_path / "o6" / "clip" / "events.json").read_text())["threshold"]
    assert "saved beside the checkpoint" in reused["source"] and reused["value"] == th["value"]
    for lo, hi in th["norm"].values():
        assert hi > lo
    df = pd.read_parquet(tmp_path / "o" / "clip" / "scores.parquet")
    assert len(df) == 40 and df["score"][26:].mean() > df["score"][:22].mean()   # the flow part sees the fast square
    # the saved fusion calibration is reused from the threshold file
    assert detect_main(args + ["--threshold-file", str(tmp_path / "o" / "threshold.json"), "--out",
                               str(tmp_path / "o4")]) == 0
    assert np.allclose(pd.read_parquet(tmp_path / "o4" / "clip" / "scores.parquet")["score"], df["score"])
    # wrong number of checkpoints
    assert detect_main(args[:5] + ["--threshold", "1", "--out", str(tmp_path / "o5")]) == 2
    assert "needs 2 --checkpoint" in capsys.readouterr().err


def test_checkpoint_stage_names(tmp_path):
    from vadlib.detect import resolve_checkpoint
    from vadlib.errors import DataError

    (tmp_path / "train_mil" / "demo_a").mkdir(parents=True)
    (tmp_path / "train_mil" / "demo_a" / "model.pt").write_bytes(b"x")
    assert resolve_checkpoint("train_mil@demo_a", tmp_path) == tmp_path / "train_mil" / "demo_a" / "model.pt"
    with pytest.raises(DataError, match="run the train_mil stage"):
        resolve_checkpoint("train_mil@demo_b", tmp_path)
    with pytest.raises(DataError, match="checkpoint does not exist"):
        resolve_checkpoint("nowhere.pt", tmp_path)


@pytest.mark.slow
def test_explore_video_notebook_runs(tmp_path):
    """notebooks/explore_video.py through papermill with a video path and prompts as parameters."""
    import os
    import sys
    from pathlib import Path

    import cv2
    import jupytext
    import papermill as pm

    root = Path(__file__).resolve().parents[2]
    clip = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for i in range(24):
        w.write(np.full((48, 64, 3), 10 * i, np.uint8))
    w.release()
    nb = tmp_path / "explore.ipynb"
    jupytext.write(jupytext.read(root / "notebooks" / "explore_video.py"), nb)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    # prompts as `papermill -p prompts '["a red car", "a dog"]'` passes them: a string, not a list
    out = pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                              parameters={"video": str(clip), "prompts": json.dumps(["a red car", "a dog"]),
                                          "backbone": "vadlib-tiny", "pretrained": "random", "every": 4})
    text = json.dumps(out["cells"][-1]["outputs"]) + json.dumps(out["cells"][3]["outputs"])
    assert "24 frames" in text and "real weights: False" in text
    assert "2 descriptions: ['a red car', 'a dog']" in text, text     # not one description per character
    heat = [c for c in out["cells"] if "patch_heat_maps(bb" in "".join(c["source"])]
    assert len(heat) == 1 and heat[0]["metadata"]["papermill"]["status"] == "completed"
    # the figures are in the notebook (timeline, top frames, heat maps, ablation), not lost to Agg
    shown = [c for c in out["cells"] if any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]
    assert len(shown) == 4 and heat[0] in shown


def test_zeroshot_heat_map_overlay(tiny_backbone, tmp_path):
    """DPAM patch maps of the encoded frames are in [0, 1] and the overlaid MP4 keeps the frame count."""
    from vadlib.data import Video
    from vadlib.data.video import import_decord
    from vadlib.detect import ZeroShotMethod
    from vadlib.features.extract import ExtractConfig
    from vadlib.synthetic.flow import write_video

    clip = write_video(tmp_path / "clip", n=20, size=(48, 64), seed=1, sq=12)
    v = Video(name="clip", path=clip, split="test", fps=25.0)
    m = ZeroShotMethod(tiny_backbone, ExtractConfig(sampling="every", stride=4), prompts=["a square", "a car"])
    m.heatmap = True
    scores, fired = m.frame_scores(v)
    idx, maps = m.heat
    assert idx.tolist() == [0, 4, 8, 12, 16] and maps.shape == (5, 48, 64)
    assert np.all((maps >= 0) & (maps <= 1)) and len(scores) == 20
    out = tmp_path / "o"
    assert detect_main([str(clip), "--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "a square",
                        "--every", "4", "--threshold", "0.5", "--heatmap", "--out", str(out)]) == 0
    assert len(import_decord().VideoReader(str(out / "clip" / "annotated.mp4"))) == 20


def test_detect_with_a_transfer_checkpoint(tiny_backbone, tmp_path, capsys):
    """The transfer stage's saved VideoAnomalyCLIP scores a new video with the target's prompts."""
    from vadlib.synthetic.flow import write_video
    from vadlib.methods.transfer.model import (TransferConfig, build_model, load_transfer_model, save_transfer_model,
                                        text_encoder_for)

    params = {"temporal": {"clip_length": 8, "stride": 4}, "prompt_learning": {"n_ctx": 2}, "templates": ["{}."]}
    cfg = TransferConfig.from_params(params)
    model = build_model("temporal", 64, cfg, text_encoder_for(tiny_backbone), tiny_backbone)
    spec = {"backbone": "vadlib-tiny", "pretrained": "random", "real_weights": False, "sampling": "every", "stride": 2}
    ck = save_transfer_model(tmp_path / "transfer" / "model" / "demo_a.pt", model, params, "demo_a", spec)
    again, _, saved = load_transfer_model(ck, tiny_backbone)
    assert saved["source"] == "demo_a" and all(torch.equal(a, b) for a, b in
                                               zip(model.state_dict().values(), again.state_dict().values()))
    video = write_video(tmp_path / "clip", n=24, size=(48, 64), seed=2, sq=12)
    out = tmp_path / "o"
    assert detect_main([str(video), "--method", "transfer", "--checkpoint", "transfer@demo_a", "--reports", str(tmp_path),
                        "--prompt", "a fast square", "--prompt", "a falling square", "--threshold", "0",
                        "--heatmap", "--out", str(out)]) == 0
    from vadlib.data.video import import_decord

    assert len(import_decord().VideoReader(str(out / "clip" / "annotated.mp4"))) == 24   # heat map overlaid
    res = json.loads((out / "clip" / "events.json").read_text())
    assert res["method"] == "transfer" and res["score"] == "calibrated" and res["sampling"] == "every 2"
    assert res["precision"] in ("fp32", "bf16")   # --precision auto, resolved for this CPU (never "auto")
    df = pd.read_csv(out / "clip" / "scores.csv")
    assert len(df) == 24 and set(df["fired"]) <= {"a fast square", "a falling square"}
    # another backbone than the checkpoint's features → refused, naming the checkpoint
    capsys.readouterr()
    assert detect_main([str(video), "--method", "transfer", "--checkpoint", str(ck), "--backbone", "ViT-B-16",
                        "--prompt", "x", "--threshold", "0", "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert str(ck) in err and "backbone: checkpoint 'vadlib-tiny', requested 'ViT-B-16'" in err


def test_threshold_is_saved_beside_never_inside_a_checkpoint(tmp_path):
    from vadlib.detect import threshold_beside

    (tmp_path / "model").mkdir()
    (tmp_path / "model.pt").write_bytes(b"x")
    assert threshold_beside(tmp_path / "model") == tmp_path / "model.threshold.json"
    assert threshold_beside(tmp_path / "model.pt") == tmp_path / "model.threshold.json"
    assert threshold_beside(tmp_path / "model", "zeroshot+flow_nf") == tmp_path / "model.zeroshot+flow_nf.threshold.json"


def test_transfer_method_heat_maps(tiny_backbone, tmp_path):
    """--method transfer computes DPAM maps of its encoded frames against the prompt that fired."""
    from vadlib.data import Video
    from vadlib.detect import TransferMethod
    from vadlib.features.extract import ExtractConfig
    from vadlib.synthetic.flow import write_video
    from vadlib.methods.transfer.model import TransferConfig, build_model, save_transfer_model, text_encoder_for

    params = {"temporal": {"clip_length": 8, "stride": 4}, "prompt_learning": {"n_ctx": 2}, "templates": ["{}."]}
    model = build_model("temporal", 64, TransferConfig.from_params(params), text_encoder_for(tiny_backbone), tiny_backbone)
    ck = save_transfer_model(tmp_path / "m.pt", model, params, "demo_a", {"backbone": "vadlib-tiny", "pretrained": "random",
                                                                       "sampling": "every", "stride": 3})
    clip = write_video(tmp_path / "clip", n=14, size=(40, 56), seed=5, sq=10)
    m = TransferMethod(tiny_backbone, ExtractConfig(sampling="every", stride=3), ck, prompts=["a square", "a car"])
    m.heatmap = True
    scores, fired = m.frame_scores(Video(name="clip", path=clip, split="test", fps=25.0))
    idx, maps = m.heat
    assert idx.tolist() == [0, 3, 6, 9, 12] and maps.shape == (5, 40, 56)
    assert np.all((maps >= 0) & (maps <= 1)) and len(scores) == len(fired) == 14


def test_patch_heat_maps_follow_the_prompt_that_fired(tiny_backbone):
    """Planted: the 'anomaly texts' are the DPAM patch features of a red square (top left) and of a blue
    square (bottom right); each encoded frame's map lights up the square of the prompt that fired there."""
    from vadlib.detect import patch_heat_maps
    from vadlib.metrics import pixel_auroc
    from vadlib.methods.zeroshot.dpam import DPAMEncoder, preprocess_frames

    rng = np.random.default_rng(0)
    frames = rng.integers(90, 110, size=(6, 64, 64, 3)).astype(np.uint8)
    frames[:, :32, :32] = (250, 30, 30)
    frames[:, 32:, 32:] = (30, 30, 250)

    class Src:
        size = (64, 64)

        def get(self, idx):
            return frames[idx]

    class Clip:
        name = "planted"

        def open(self):
            return Src()

    with torch.no_grad():
        out = DPAMEncoder(tiny_backbone)(preprocess_frames(frames[:1], tiny_backbone.image_size, tiny_backbone.mean,
                                                          tiny_backbone.std))
    p = torch.nn.functional.normalize(out.patches[0], dim=-1)             # (16, D), 4x4 grid, row-major
    grid = np.zeros(out.grid, int)
    grid[:2, :2], grid[2:, 2:] = 1, 2
    g = torch.as_tensor(grid.ravel())
    normal, red, blue = p[g == 0].mean(0), p[g == 1].mean(0), p[g == 2].mean(0)
    idx, maps = patch_heat_maps(tiny_backbone, Clip(), np.array([0, 2, 4]), np.array([0, 1, 0]), normal[None],
                                torch.stack([red, blue]))
    assert idx.tolist() == [0, 2, 4] and maps.shape == (3, 64, 64)
    assert maps.dtype == np.float16 and np.all((maps >= 0) & (maps <= 1))
    red_mask = np.zeros((1, 64, 64), bool)
    red_mask[0, :32, :32] = True
    blue_mask = red_mask[:, ::-1, ::-1].copy()
    for i, mask in [(0, red_mask), (1, blue_mask), (2, red_mask)]:
        m = maps[i:i + 1].astype(np.float32)
        assert pixel_auroc(mask, m) > 0.9, i
        assert m[mask].mean() > m[~mask].mean() + 0.3, i


def test_a_threshold_of_another_backbone_is_refused(tiny_backbone, tmp_path, capsys):
    from vadlib.events import Threshold
    from vadlib.synthetic.flow import write_video

    clip = write_video(tmp_path / "clip", n=8, size=(40, 56), seed=5, sq=10)
    th = Threshold(value=0.5, source="calibrated on x", method="zeroshot", score="softmax", sampling="every 4",
                   backbone="ViT-B-16", pretrained="openai")
    th.save(tmp_path / "th.json")
    args = [str(clip), "--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "a square", "--every", "4",
            "--no-video"]
    assert detect_main(args + ["--threshold-file", str(tmp_path / "th.json"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "th.json" in err and "'ViT-B-16'" in err and "'vadlib-tiny'" in err
    assert not (tmp_path / "o").exists()
    # the same threshold made with this backbone is accepted, and recorded with it
    th.backbone, th.pretrained = "vadlib-tiny", "random"
    th.save(tmp_path / "th.json")
    assert detect_main(args + ["--threshold-file", str(tmp_path / "th.json"), "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "clip" / "events.json").read_text())
    assert res["threshold"]["backbone"] == "vadlib-tiny" and res["threshold"]["value"] == 0.5
    assert "calibrated with the CLIP encoder" not in capsys.readouterr().err   # no precision recorded: no warning
    # a threshold calibrated in another precision than this run's is used, with a warning naming both
    th.precision = "bf16"
    th.save(tmp_path / "th.json")
    assert detect_main(args + ["--precision", "fp32", "--threshold-file", str(tmp_path / "th.json"), "--out",
                               str(tmp_path / "o3")]) == 0
    err = capsys.readouterr().err
    assert "calibrated with the CLIP encoder in bf16, this run encodes in fp32" in err and "th.json" in err


def test_checkpoint_of_another_kind_is_refused(mil_checkpoint, tmp_path, capsys):
    from vadlib.synthetic.flow import write_video

    ckpt, _ = mil_checkpoint
    clip = write_video(tmp_path / "clip", n=8, size=(40, 56), seed=5, sq=10)
    common = [str(clip), "--threshold", "0.5", "--no-video", "--out", str(tmp_path / "o")]
    # an AnomalyCLIP checkpoint asked to be Sultani's MIL
    assert detect_main(common + ["--method", "sultani", "--checkpoint", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert str(ckpt) in err and "holds a 'anomalyclip' model, not 'sultani'" in err
    # a train_mil checkpoint given to --method transfer
    assert detect_main(common + ["--method", "transfer", "--checkpoint", str(ckpt), "--prompt", "x"]) == 2
    assert "not a VideoAnomalyCLIP checkpoint" in capsys.readouterr().err
    # a file that is no checkpoint at all
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    assert detect_main(common + ["--method", "anomalyclip", "--checkpoint", str(junk)]) == 2
    assert f"{junk}: not a checkpoint written by a vadlib stage" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_calibrate_on_a_folder_of_videos_or_a_dataset_split(tmp_path, capsys):
    """--calibrate takes a folder of normal videos, or a registered dataset's split (its normal videos only)."""
    from vadlib.synthetic.flow import write_video

    ref = tmp_path / "normal_footage"
    for i in range(2):
        write_video(ref / f"n{i}", n=10, size=(40, 56), seed=10 + i, sq=10)
    clip = write_video(tmp_path / "clip", n=12, size=(40, 56), seed=3, sq=10)
    common = [str(clip), "--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "a square",
              "--every", "2", "--no-video"]
    assert detect_main(common + ["--calibrate", str(ref), "--out", str(tmp_path / "o")]) == 0
    th = json.loads((tmp_path / "o" / "threshold.json").read_text())
    assert th["n_reference_frames"] == 20 and "normal_footage/: 2 videos" in th["source"]
    # a manifest dataset: train has one normal and one abnormal video; only the normal one calibrates
    abn = write_video(tmp_path / "abn", n=7, size=(40, 56), seed=20, sq=10)
    (tmp_path / "manifest.json").write_text(json.dumps({
        "train": {"s": [{"video_path": str(ref / "n0"), "anomaly": 0}, {"video_path": str(abn), "anomaly": 1}]},
        "test": {"s": [{"video_path": str(ref / "n1"), "anomaly": 0}]}}))
    (tmp_path / "params.yaml").write_text(f"datasets:\n  manifest:\n    root: {tmp_path / 'manifest.json'}\n")
    assert detect_main(common + ["--calibrate", "dataset:manifest:train", "--params", str(tmp_path / "params.yaml"),
                                 "--out", str(tmp_path / "o2")]) == 0
    th = json.loads((tmp_path / "o2" / "threshold.json").read_text())
    assert th["n_reference_frames"] == 10 and "dataset:manifest:train: 1 normal videos" in th["source"]
    # the video being scored, hidden in a calibration folder, is still refused
    write_video(ref / "clip", n=12, size=(40, 56), seed=3, sq=10)
    assert detect_main([str(ref / "clip")] + common[1:] + ["--calibrate", str(ref), "--out", str(tmp_path / "o3")]) == 2
    assert "must not be the video being scored" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()


def test_a_threshold_made_with_other_prompts_is_refused(tmp_path, capsys):
    from vadlib.events import Threshold
    from vadlib.synthetic.flow import write_video

    clip = write_video(tmp_path / "clip", n=8, size=(40, 56), seed=5, sq=10)
    th = Threshold(value=0.5, source="calibrated on x", method="zeroshot", score="softmax", sampling="every 4",
                   backbone="vadlib-tiny", pretrained="random", prompts=["a square"])
    th.save(tmp_path / "th.json")
    args = [str(clip), "--backbone", "vadlib-tiny", "--pretrained", "random", "--every", "4", "--no-video",
            "--threshold-file", str(tmp_path / "th.json")]
    assert detect_main(args + ["--prompt", "a car", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "th.json" in err and "'a square'" in err and "'a car'" in err
    assert not (tmp_path / "o").exists()
    assert detect_main(args + ["--prompt", "a square", "--out", str(tmp_path / "o")]) == 0
    res = json.loads((tmp_path / "o" / "clip" / "events.json").read_text())
    assert res["threshold"]["prompts"] == ["a square"]
    # a calibration records the prompts it was made with
    normal = write_video(tmp_path / "normal", n=8, size=(40, 56), seed=6, sq=10)
    assert detect_main(args[:-2] + ["--prompt", "a car", "--calibrate", str(normal), "--out", str(tmp_path / "o2")]) == 0
    assert json.loads((tmp_path / "o2" / "threshold.json").read_text())["prompts"] == ["a car"]


def test_detect_shows_a_progress_bar_with_the_real_time_factor(tmp_path, capsys):
    from vadlib.synthetic.flow import write_video

    clip = write_video(tmp_path / "clip", n=16, size=(40, 56), seed=5, sq=10)
    assert detect_main([str(clip), "--backbone", "vadlib-tiny", "--pretrained", "random", "--prompt", "a square",
                        "--every", "2", "--batch-size", "2", "--threshold", "0.5", "--no-video",
                        "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "frame/s" in err and "x real time" in err          # the bar (tqdm rate + postfix)
    assert "16 frames in" in err and "frames/s" in err        # the summary line
