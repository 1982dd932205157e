"""Streaming extractor: tensor preprocessing vs open_clip, sampling, crops, resume, bad input."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from vadlib.data.base import Video, VideoDataset
from vadlib.errors import ConfigError, DataError
from vadlib.features.extract import (ExtractConfig, FrameBatches, Preprocessor, extract_dataset, extract_video,
                                     shard_videos)
from vadlib.features.store import FeatureStore, expand_to_frames

torch.set_num_threads(1)


def _rgb(path):
    import cv2

    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------ preprocessing

@pytest.mark.parametrize("size", [64, 224])
def test_tensor_preprocessing_matches_open_clip(tmp_path, size, gen):
    import open_clip
    from PIL import Image

    folder = gen.frames(tmp_path / "f", 3, h=240, w=320)
    ref_tf = open_clip.image_transform(size, is_train=False)
    pre = Preprocessor(size, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    frames = np.stack([_rgb(f) for f in sorted(folder.iterdir())])
    out = pre(torch.from_numpy(frames))
    ref = torch.stack([ref_tf(Image.fromarray(fr)) for fr in frames])
    assert out.shape == ref.shape == (3, 3, size, size)
    diff = (out - ref).abs()
    # PIL resamples in integers: at most a grey level or two apart on smooth images
    assert diff.max() <= 2.5 / 255 / min(open_clip.OPENAI_DATASET_STD)
    assert diff.mean() < 0.005


def test_tensor_preprocessing_matches_backbone_preprocess_on_noise(tiny_backbone):
    from PIL import Image

    img = np.random.default_rng(0).integers(0, 256, (158, 238, 3), dtype=np.uint8)  # Ped2-like size
    ref = tiny_backbone.preprocess(Image.fromarray(img))
    out = Preprocessor(tiny_backbone.image_size, tiny_backbone.mean, tiny_backbone.std)(torch.from_numpy(img)[None])[0]
    diff = (out - ref).abs()
    assert diff.mean() < 0.005 and diff.max() <= 2.5 / 255 / min(tiny_backbone.std)


def test_five_and_ten_crops():
    # 37 x 49 is already "shorter side round(32 * 8/7) = 37": no resampling, so crops are exact slices
    img = (torch.arange(37 * 49 * 3).reshape(1, 37, 49, 3) % 251).to(torch.uint8)
    p5, p10 = Preprocessor(32, [0, 0, 0], [1, 1, 1], crops=5), Preprocessor(32, [0, 0, 0], [1, 1, 1], crops=10)
    x5, x10 = p5(img), p10(img)
    assert x5.shape == (1, 5, 3, 32, 32) and x10.shape == (1, 10, 3, 32, 32)
    torch.testing.assert_close(x10[:, :5], x5)
    torch.testing.assert_close(x10[:, 5:], x5.flip(-1))
    full = img[0].permute(2, 0, 1).float() / 255
    torch.testing.assert_close(x5[0, 0], full[:, :32, :32])      # top-left
    torch.testing.assert_close(x5[0, 1], full[:, :32, -32:])     # top-right
    torch.testing.assert_close(x5[0, 2], full[:, -32:, :32])     # bottom-left
    torch.testing.assert_close(x5[0, 3], full[:, -32:, -32:])    # bottom-right
    torch.testing.assert_close(x5[0, 4], full[:, 2:34, 8:40])    # centre
    # a larger frame is resized first (shorter side 37), then cropped: still 5 distinct views
    big = torch.randint(0, 256, (2, 90, 120, 3), dtype=torch.uint8)
    y = p5(big)
    assert y.shape == (2, 5, 3, 32, 32) and len({tuple(y[0, k].flatten()[:50].tolist()) for k in range(5)}) == 5


def test_config_validation():
    for bad in (dict(sampling="x"), dict(crops=3), dict(stride=0), dict(precision="fp8"),
                dict(precision="fp16", device="cpu"), dict(on_error="ignore"), dict(resize="pad")):
        with pytest.raises(ConfigError):
            ExtractConfig(**bad).validate()


# ------------------------------------------------------------------------------ extraction

def _cfg(**kw):
    return ExtractConfig(**{"batch_size": 4, "progress": False, **kw})


def test_extract_every_stride_files_and_videos(toy_dataset, tiny_backbone, tmp_path):
    store = extract_dataset(toy_dataset, tiny_backbone, tmp_path / "feat", _cfg(stride=2))
    assert sorted(store.videos()) == ["a", "b", "m"]
    assert store.videos("train") == ["m"]
    for name, n in (("a", 11), ("b", 7), ("m", 13)):
        x = store.load(name)
        assert x.shape == (len(range(0, n, 2)), tiny_backbone.embed_dim) and x.dtype == np.float32
        np.testing.assert_array_equal(store.frame_index(name), np.arange(0, n, 2))
        assert store.num_frames(name) == n
    info = store.info
    assert info["backbone"] == "vadlib-tiny" and info["pretrained"] == "random" and info["real_weights"] is False
    assert info["sampling"] == "every" and info["stride"] == 2 and info["crops"] == 1
    assert info["preprocessing"]["image_size"] == tiny_backbone.image_size
    assert info["videos"]["a"]["label"] == 1 and info["videos"]["a"]["split"] == "test"
    assert store.path.parent == tmp_path / "feat" / "toy"
    # each row equals the encoder applied to the open_clip-preprocessed frame
    from PIL import Image

    frames = sorted(toy_dataset.video("a").path.iterdir())
    ref = tiny_backbone.encode_images(torch.stack([tiny_backbone.preprocess(Image.open(frames[i]).convert("RGB"))
                                                   for i in (0, 2)])).numpy()
    np.testing.assert_allclose(store.load("a")[:2], ref, atol=0.05 * np.abs(ref).max())


def test_frame_snippet_and_crops(toy_dataset, tiny_backbone, tmp_path):
    every = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(sampling="frame"))
    snip = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(sampling="snippet", snippet_len=4))
    assert every.path != snip.path
    a = every.load("a")
    assert a.shape[0] == 11
    s = snip.load("a")
    np.testing.assert_array_equal(snip.frame_index("a"), [0, 4, 8])
    np.testing.assert_allclose(s, np.stack([a[0:4].mean(0), a[4:8].mean(0), a[8:11].mean(0)]), rtol=1e-5, atol=1e-6)
    assert snip.info["snippet_len"] == 4
    ten = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=3, crops=10))
    assert ten.load("b").shape == (3, 10, tiny_backbone.embed_dim)
    assert ten.info["crops"] == 10 and "ten" in ten.info["preprocessing"]["crop"]
    scores = expand_to_frames(ten.load("b")[:, 0, 0], ten.frame_index("b"), ten.num_frames("b"))
    assert scores.shape == (7,)


def test_workers_give_identical_features_and_batches_are_bounded(toy_dataset, tiny_backbone, tmp_path):
    s0 = extract_dataset(toy_dataset, tiny_backbone, tmp_path / "w0", _cfg(num_workers=0))
    s2 = extract_dataset(toy_dataset, tiny_backbone, tmp_path / "w2", _cfg(num_workers=2))
    for v in s0.videos():
        np.testing.assert_array_equal(s0.load(v), s2.load(v))
    cfg = _cfg(batch_size=3)
    items = list(FrameBatches(toy_dataset.videos("test"), cfg, None))
    assert max(len(it["x"]) for it in items) == 3
    assert [(it["vi"], it["b"]) for it in items] == [(0, b) for b in range(4)] + [(1, b) for b in range(3)]


def test_extract_video_matches_store(toy_dataset, tiny_backbone, tmp_path):
    store = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=2))
    feats, fi = extract_video(toy_dataset.video("m"), tiny_backbone, _cfg(stride=2))
    np.testing.assert_array_equal(feats, store.load("m"))
    np.testing.assert_array_equal(fi, store.frame_index("m"))


def test_resume_recomputes_only_unfinished(toy_dataset, tiny_backbone, tmp_path):
    store = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=2))
    before = {v: store.load(v).copy() for v in store.videos()}
    mtimes = {v: (store.path / store.meta(v)["file"]).stat().st_mtime_ns for v in store.videos()}
    # simulate a run killed after writing b's features but before its index entry
    idx = json.loads((store.path / "index.json").read_text())
    del idx["videos"]["b"]
    (store.path / "index.json").write_text(json.dumps(idx))
    assert not FeatureStore.open(store.path).has("b")
    again = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=2))
    assert sorted(again.videos()) == ["a", "b", "m"]
    for v in ("a", "m"):
        assert (again.path / again.meta(v)["file"]).stat().st_mtime_ns == mtimes[v]
    assert (again.path / again.meta("b")["file"]).stat().st_mtime_ns != mtimes["b"]
    for v, x in before.items():
        np.testing.assert_array_equal(again.load(v), x)


def test_random_weights_recorded_and_logged(toy_dataset, tiny_backbone, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="vadlib.features.extract"):
        store = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=4))
    assert store.info["real_weights"] is False
    assert any("RANDOM WEIGHTS" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------------------ bad input

class _FailingSource:
    """A reader whose frames from ``fail_at`` on cannot be decoded."""

    def __init__(self, inner, fail_at):
        self.inner, self.fail_at, self.path = inner, fail_at, inner.path

    def __len__(self):
        return len(self.inner)

    @property
    def fps(self):
        return 25.0

    def get(self, idx):
        if max(idx) >= self.fail_at:
            raise DataError(self.path, f"failed to decode frames {idx[0]}..{idx[-1]}")
        return self.inner.get(idx)


class BrokenVideo(Video):
    def open(self):
        return _FailingSource(super().open(), self.meta["fail_at"])


def _dataset_with(tmp_path, bad: Video, gen) -> VideoDataset:
    good = Video(name="good", path=gen.frames(tmp_path / "good", 6, seed=5), split="test", label=0)
    return VideoDataset(name="bad", root=tmp_path, splits={"train": [], "test": [good, bad]})


def _bad_cases(tmp_path, gen):
    corrupt = gen.frames(tmp_path / "corrupt", 9, seed=6)
    (corrupt / "0005.png").write_bytes(b"not a png")
    empty_mp4 = tmp_path / "empty.mp4"
    empty_mp4.write_bytes(b"")
    (tmp_path / "nofr").mkdir()
    return {
        "midway": (BrokenVideo(name="bad", path=gen.frames(tmp_path / "mid", 12, seed=7), split="test",
                               meta={"fail_at": 8}), "failed to decode frames 8"),
        "corrupt_frame": (Video(name="bad", path=corrupt, split="test"), "0005.png: image file cannot be read"),
        "empty_file": (Video(name="bad", path=empty_mp4, split="test"), "empty.mp4: video file is empty"),
        "no_frames": (Video(name="bad", path=tmp_path / "nofr", split="test"), "holds no image files"),
        "gt_mismatch": (Video(name="bad", path=gen.mp4(tmp_path / "gt.mp4", 10), split="test",
                              frame_labels=np.zeros(12, np.uint8), meta={"gt_path": str(tmp_path / "gt.txt")}),
                        "gt.txt: frame labels of video 'bad' have 12 entries but the video has 10 frames"),
    }


@pytest.mark.parametrize("case", ["midway", "corrupt_frame", "empty_file", "no_frames", "gt_mismatch"])
def test_bad_video_raise_names_file_and_writes_nothing(tmp_path, tiny_backbone, case, gen):
    bad, msg = _bad_cases(tmp_path, gen)[case]
    ds = _dataset_with(tmp_path, bad, gen)
    with pytest.raises(DataError, match=msg.replace(".", r"\.")):
        extract_dataset(ds, tiny_backbone, tmp_path / "feat", _cfg(batch_size=4))
    store = FeatureStore.open(next((tmp_path / "feat" / "bad").iterdir()))
    assert store.videos() == ["good"]
    assert not list(store.path.glob("bad*")) and not list(store.path.glob(".*tmp*"))


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("case", ["midway", "corrupt_frame", "gt_mismatch"])
def test_bad_video_skip_is_listed(tmp_path, tiny_backbone, case, workers, gen):
    bad, msg = _bad_cases(tmp_path, gen)[case]
    ds = _dataset_with(tmp_path, bad, gen)
    store = extract_dataset(ds, tiny_backbone, tmp_path / "feat", _cfg(batch_size=4, on_error="skip",
                                                                        num_workers=workers))
    assert store.videos() == ["good"] and store.load("good").shape[0] == 6
    assert list(store.skipped) == ["bad"] and msg.split(": ")[-1] in store.skipped["bad"]
    assert json.loads((store.path / "index.json").read_text())["skipped"]["bad"] == store.skipped["bad"]
    assert not list(store.path.glob("bad*"))


def test_missing_split_and_duplicate_names(toy_dataset, tiny_backbone, tmp_path):
    with pytest.raises(DataError, match="none of the splits"):
        extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(), splits=("val",))
    dup = VideoDataset(name="dup", root=tmp_path, splits={"train": [toy_dataset.video("a")],
                                                          "test": [toy_dataset.video("a")]})
    with pytest.raises(DataError, match="occurs twice"):
        extract_dataset(dup, tiny_backbone, tmp_path, _cfg())


# ------------------------------------------------------------------------------ sharding (split only;
# the multi-process run is in test_extract_dist.py)

def test_shard_split_is_disjoint_balanced_deterministic():
    names = [Video(name=f"v{i}", path=shutil.__file__, split="test") for i in range(9)]
    counts = [100, 5, 60, 60, 7, 300, 1, 40, 40]
    shares = shard_videos(names, 3, counts)
    flat = [v.name for s in shares for v in s]
    assert sorted(flat) == sorted(v.name for v in names) and len(flat) == len(set(flat))
    loads = [sum(counts[int(v.name[1:])] for v in s) for s in shares]
    assert max(loads) == 300 and min(loads) >= 100  # LPT: the 300-frame video alone, rest split evenly
    assert [[v.name for v in s] for s in shard_videos(names, 3, counts)] == [[v.name for v in s] for s in shares]
    assert shard_videos(names, 1, counts) == [names]
    with pytest.raises(ConfigError):
        shard_videos(names, 0, counts)


def test_bf16_autocast_on_cpu_is_a_separate_store(toy_dataset, tiny_backbone, tmp_path):
    fp32 = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=3))
    bf16 = extract_dataset(toy_dataset, tiny_backbone, tmp_path, _cfg(stride=3, precision="bf16"))
    assert bf16.path != fp32.path and bf16.info["precision"] == "bf16"
    a, b = fp32.load("a"), bf16.load("a")
    assert b.dtype == np.float32 and a.shape == b.shape
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.99 and not np.array_equal(a, b)
