"""Clip-level features (sampling "clip", video backbones): spans, frame mapping, padding of short
videos, the frame-count check, the config hash, resume, and a 2-process gloo run."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from vadlib.data.base import Video, VideoDataset
from vadlib.errors import ConfigError, DataError
from vadlib.features.extract import ExtractConfig, Preprocessor, clip_starts, extract_dataset
from vadlib.features.store import FeatureStore, expand_to_frames

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def xclip_tiny():
    from vadlib.features import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("xclip-tiny", "random")


def _dataset(root: Path, gen, lengths: dict[str, int]) -> VideoDataset:
    vids = [Video(name=n, path=gen.frames(root / n, k, h=40, w=56, seed=i), split="test", label=0,
                  frame_labels=np.zeros(k, np.uint8)) for i, (n, k) in enumerate(lengths.items())]
    return VideoDataset(name="clips", root=root, splits={"test": vids})


def _rgb_frames(folder: Path) -> np.ndarray:
    import cv2

    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(folder.iterdir())])


def _clip_feature(bb, frames: np.ndarray, idx: list[int]) -> torch.Tensor:
    """The feature of the clip made of ``frames[idx]``, computed directly (no extractor)."""
    pre = Preprocessor(bb.image_size, bb.mean, bb.std)
    x = pre(torch.from_numpy(frames[idx]))
    return bb.encode_clips(x[None])[0]


@pytest.mark.parametrize("n,t,s,want", [
    (19, 8, 8, [0, 8, 16]),      # not a multiple: the tail clip [16, 19) is padded
    (16, 8, 8, [0, 8]),          # a multiple: no padding
    (5, 8, 8, [0]),              # shorter than one clip: one padded clip
    (20, 8, 4, [0, 4, 8, 12]),   # overlapping clips stop once one reaches the end
    (21, 8, 4, [0, 4, 8, 12, 16]),
    (100, 8, 50, [0, 50]),       # gaps between clips; never a start past the end
])
def test_clip_starts_cover_every_frame(n, t, s, want):
    starts = clip_starts(n, t, s)
    assert starts.tolist() == want
    assert starts[-1] < n
    if s <= t:
        assert starts[-1] + t >= n


def test_clip_features_map_back_to_frames_when_length_is_not_a_multiple(tmp_path, gen, xclip_tiny):
    ds = _dataset(tmp_path / "v", gen, {"a": 19, "b": 16})
    store = extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="clip", batch_size=16,
                                                                         progress=False), splits=("test",))
    assert store.info["sampling"] == "clip" and store.info["clip_len"] == 8 == store.info["clip_stride"]
    assert store.info["text_path"] == "video-conditioned prompt generator" and store.info["aux"] == "prompt_tokens"
    spans = store.frame_spans("a")
    assert spans.tolist() == [[0, 8], [8, 16], [16, 19]]
    assert store.meta("a")["padded_frames"] == 5 and store.meta("b")["padded_frames"] == 0
    # each frame takes the row of the clip whose span holds it
    rows = np.arange(len(spans))
    per_frame = expand_to_frames(rows, store.frame_index("a"), store.num_frames("a"))
    want = np.concatenate([np.full(e - s, r) for r, (s, e) in enumerate(spans)])
    np.testing.assert_array_equal(per_frame, want)
    # and each row is the backbone's feature of exactly those frames (the tail repeats frame 18)
    frames = _rgb_frames(tmp_path / "v" / "a")
    feats = store.load("a")
    for r, idx in enumerate([list(range(0, 8)), list(range(8, 16)), [16, 17, 18, 18, 18, 18, 18, 18]]):
        torch.testing.assert_close(torch.from_numpy(feats[r]), _clip_feature(xclip_tiny, frames, idx),
                                   rtol=1e-4, atol=1e-5)
    aux = store.load_aux("a")
    assert aux.shape == (3, (30 // 2) ** 2, 32)


def test_short_video_is_padded_with_its_last_frame_and_says_so(tmp_path, gen, xclip_tiny, caplog):
    ds = _dataset(tmp_path / "v", gen, {"short": 3})
    with caplog.at_level(logging.WARNING, logger="vadlib.features.extract"):
        store = extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="clip", progress=False),
                                splits=("test",))
    assert "fewer than one 8-frame clip" in caplog.text and "repeating its last frame 5 times" in caplog.text
    assert store.meta("short")["padded_frames"] == 5
    assert store.info["padding"].startswith("repeat last frame")
    assert store.frame_spans("short").tolist() == [[0, 3]]
    frames = _rgb_frames(tmp_path / "v" / "short")
    torch.testing.assert_close(torch.from_numpy(store.load("short")[0]),
                               _clip_feature(xclip_tiny, frames, [0, 1, 2, 2, 2, 2, 2, 2]), rtol=1e-4, atol=1e-5)


def test_a_clip_length_the_checkpoint_was_not_trained_on_is_refused_and_nothing_written(tmp_path, gen, xclip_tiny):
    from vadlib.features import load_backbone

    ds = _dataset(tmp_path / "v", gen, {"a": 10})
    with pytest.raises(ConfigError, match=r"trained on 8-frame clips but extract.clip_len is 16"):
        extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="clip", clip_len=16, progress=False))
    assert not (tmp_path / "f").exists()
    with pytest.raises(ConfigError, match=r"trained on 8-frame clips but the clip length asked for is 16"):
        load_backbone("xclip-tiny", "random", clip_len=16)
    with pytest.raises(ConfigError, match=r"was trained on 8-frame clips; got clips of 4 frames"):
        xclip_tiny.encode_clips(torch.zeros(1, 4, 3, 30, 30))


def test_sampling_must_fit_the_backbone_kind(tmp_path, gen, xclip_tiny, tiny_backbone):
    ds = _dataset(tmp_path / "v", gen, {"a": 10})
    with pytest.raises(ConfigError, match=r"encodes clips of 8 frames: set extract.sampling to clip"):
        extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="every", progress=False))
    with pytest.raises(ConfigError, match=r"encodes single frames: sampling 'clip' needs a video backbone"):
        extract_dataset(ds, tiny_backbone, tmp_path / "f", ExtractConfig(sampling="clip", progress=False))
    with pytest.raises(ConfigError, match=r"one centre crop"):
        ExtractConfig(sampling="clip", crops=5).validate()
    assert not (tmp_path / "f").exists()


def test_clip_length_and_stride_are_in_the_store_key_and_runs_resume(tmp_path, gen, xclip_tiny, monkeypatch):
    ds = _dataset(tmp_path / "v", gen, {"a": 12, "b": 9})
    s8 = extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="clip", progress=False))
    s4 = extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="clip", clip_stride=4,
                                                                      progress=False))
    assert s8.path != s4.path and "clip8s8" in s8.path.name and "clip8s4" in s4.path.name
    assert s4.frame_spans("a").tolist() == [[0, 8], [4, 12]]
    # resume: nothing is re-encoded
    calls = []
    orig = type(xclip_tiny).encode_clips_aux
    monkeypatch.setattr(type(xclip_tiny), "encode_clips_aux", lambda self, x: calls.append(1) or orig(self, x))
    again = extract_dataset(ds, xclip_tiny, tmp_path / "f", ExtractConfig(sampling="clip", progress=False))
    assert calls == [] and again.path == s8.path and len(again) == 2


def test_clip_store_write_checks_spans_and_aux(tmp_path):
    info = {"dataset": "d", "backbone": "xclip-tiny", "pretrained": "random", "sampling": "clip", "crops": 1,
            "clip_len": 8, "clip_stride": 8, "aux": "prompt_tokens", "dtype": "float32"}
    st = FeatureStore.create(tmp_path / "s", info)
    feats, fi = np.zeros((2, 4), np.float32), np.array([0, 8])
    with pytest.raises(ConfigError, match="needs the \\(N, 2\\) frame spans"):
        st.write("v", feats, fi, {"num_frames": 12}, aux=np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match="start < end <= num_frames"):
        st.write("v", feats, fi, {"num_frames": 12}, spans=np.array([[0, 8], [8, 16]]), aux=np.zeros((2, 3, 4)))
    with pytest.raises(DataError, match="aux array is 'prompt_tokens'; got none"):
        st.write("v", feats, fi, {"num_frames": 12}, spans=np.array([[0, 8], [8, 12]]))
    assert not st.has("v") and list(tmp_path.glob("s/v*")) == []
    st.write("v", feats, fi, {"num_frames": 12}, spans=np.array([[0, 8], [8, 12]]), aux=np.ones((2, 3, 4)))
    back = FeatureStore.open(tmp_path / "s")
    assert back.frame_spans("v").tolist() == [[0, 8], [8, 12]] and back.load_aux("v").shape == (2, 3, 4)
    with pytest.raises(ConfigError, match="clip_len >= 1"):
        FeatureStore.create(tmp_path / "t", {**info, "clip_len": None})


SCRIPT = textwrap.dedent('''
    import sys, warnings
    from pathlib import Path
    import torch, torch.distributed as dist
    root, out, world = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

    def run(rank, world):
        torch.set_num_threads(1)
        warnings.simplefilter("ignore")
        from vadlib.data.base import Video, VideoDataset
        from vadlib.features import load_backbone
        from vadlib.features.extract import ExtractConfig, extract_dataset
        if world > 1:
            dist.init_process_group("gloo", init_method=f"file://{out}.rdv", rank=rank, world_size=world)
        vids = [Video(name=p.stem, path=p, split="test") for p in sorted(root.iterdir())]
        bb = load_backbone("xclip-tiny", "random")
        store = extract_dataset(VideoDataset(name="toy", root=root, splits={"test": vids}), bb, out,
                                ExtractConfig(sampling="clip", batch_size=8, progress=False), splits=("test",))
        if world > 1:
            dist.destroy_process_group()
        if rank == 0:
            print("STORE", store.path, len(store))

    if __name__ == "__main__":
        if world > 1:
            import torch.multiprocessing as mp
            mp.start_processes(run, args=(world,), nprocs=world, start_method="fork")
        else:
            run(0, 1)
''')


def test_two_process_clip_extraction_equals_single_process(tmp_path, gen):
    for i, n in enumerate([9, 14, 5]):
        gen.frames(tmp_path / "videos" / f"v{i}", n, h=32, w=40, seed=i)
    (tmp_path / "run.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    stores = []
    for world, out in ((1, "single"), (2, "multi")):
        res = subprocess.run([sys.executable, str(tmp_path / "run.py"), str(tmp_path / "videos"), str(tmp_path / out),
                              str(world)], env=env, capture_output=True, text=True, timeout=400)
        assert res.returncode == 0, res.stderr[-3000:]
        stores.append(FeatureStore.open([ln for ln in res.stdout.splitlines() if ln.startswith("STORE")][-1].split()[1]))
    single, multi = stores
    assert sorted(single.videos()) == sorted(multi.videos()) == ["v0", "v1", "v2"]
    assert not list(multi.path.glob("index.part-*"))
    for v in single.videos():
        np.testing.assert_allclose(single.load(v), multi.load(v), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(single.frame_spans(v), multi.frame_spans(v))
        np.testing.assert_allclose(single.load_aux(v), multi.load_aux(v), rtol=1e-3, atol=1e-3)


def test_a_family_prefixed_backbone_name_keeps_its_family_in_the_store_folder(tmp_path):
    from vadlib.features.store import store_dir

    info = {"dataset": "d", "backbone": "actionclip/ViT-B-16", "pretrained": "/w/vit-b-16-8f.pt", "sampling": "clip",
            "crops": 1, "clip_len": 8, "clip_stride": 8}
    assert store_dir(tmp_path, "d", info).name.startswith("actionclip-ViT-B-16__vit-b-16-8f.pt__clip8s8__c1__")
