"""ActionCLIP through the registry and the clip extractor (random weights, ``vadlib-tiny`` tower):
``load_backbone("actionclip/…")`` with ``random`` and with a file from ``--make-tiny``, the clip length
passed by the registry, short videos filled by the authors' rule, the authors' resize (``resize_scale``),
and the ``actionclip`` template set."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

from vadlib.data.base import Video, VideoDataset
from vadlib.errors import ConfigError, DataError
from vadlib.features.extract import ExtractConfig, Preprocessor, extract_dataset, preprocessor_for

torch.set_num_threads(1)


def _load(name: str, pretrained: str, **kw):
    from vadlib.features import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone(name, pretrained, **kw)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory):
    """A tiny ActionCLIP in the authors' layout, written by the command line a user runs."""
    from vadlib.features.backbones.actionclip import main

    path = tmp_path_factory.mktemp("ac") / "ac.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["--make-tiny", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def ac_random():
    return _load("actionclip/vadlib-tiny", "random")


def _dataset(root, gen, lengths: dict[str, int]) -> VideoDataset:
    vids = [Video(name=n, path=gen.frames(root / n, k, h=40, w=56, seed=i), split="test", label=0,
                  frame_labels=np.zeros(k, np.uint8)) for i, (n, k) in enumerate(lengths.items())]
    return VideoDataset(name="ac", root=root, splits={"test": vids})


def _rgb_frames(folder) -> np.ndarray:
    import cv2

    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(folder.iterdir())])


def test_registry_loads_random_and_the_made_file_with_the_contract_stages_expect(ac_random, tiny_file):
    from vadlib.features.backbones.base import text_clip_of

    bb = _load("actionclip/vadlib-tiny", str(tiny_file))
    for b in (ac_random, bb):
        assert b.name == "actionclip/vadlib-tiny" and b.kind == "clip" and b.clip_len == 8
        assert b.text_path == "text tower" and getattr(b, "aux", None) is None
        assert isinstance(b.model, torch.nn.Module) and text_clip_of(b) is b.model   # the open_clip CLIP
    assert ac_random.real_weights is False and bb.real_weights is False  # the made file: its sidecar says random
    clips = torch.randn(2, 8, 3, bb.image_size, bb.image_size)
    torch.testing.assert_close(bb.encode_clips(clips), ac_random.encode_clips(clips))   # same seed, same weights


def test_registry_passes_clip_len_for_a_file_that_does_not_record_it(tmp_path):
    from vadlib.features.backbones.actionclip import main

    path = tmp_path / "authors.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["--make-tiny", str(path), "--unrecorded", "--clip-len", "16"])
    with pytest.raises(ConfigError, match="give clip_len.*8, 16, 32"):
        _load("actionclip/vadlib-tiny", str(path))
    assert _load("actionclip/vadlib-tiny", str(path), clip_len=16).clip_len == 16
    with pytest.raises(ConfigError, match="encodes single frames"):
        _load("vadlib-tiny", "random", clip_len=8)


def test_a_file_missing_its_fusion_weights_is_refused_by_the_search_cli_and_nothing_is_written(
        tmp_path, gen, tiny_file, capsys):
    from vadlib.search import main

    ck = torch.load(tiny_file, map_location="cpu", weights_only=True)
    del ck["fusion_model_state_dict"]
    bad = tmp_path / "no_fusion.pt"
    torch.save(ck, bad)
    gen.frames(tmp_path / "col" / "v0", 9, h=32, w=40)
    out, feats = tmp_path / "page", tmp_path / "features"
    rc = main(["a person riding a bicycle", str(tmp_path / "col"), "--backbone", "actionclip/vadlib-tiny",
               "--pretrained", str(bad), "--features", str(feats), "--out", str(out), "--precision", "fp32"])
    err = capsys.readouterr().err
    assert rc != 0 and "missing 'fusion_model_state_dict'" in err and str(bad) in err
    assert not out.exists() and not (feats.exists() and any(feats.rglob("*.npy")))


def test_short_video_is_filled_by_the_authors_rule_and_the_store_says_so(tmp_path, gen, ac_random, caplog):
    ds = _dataset(tmp_path / "v", gen, {"short": 3, "long": 19})
    with caplog.at_level(logging.WARNING, logger="vadlib.features.extract"):
        store = extract_dataset(ds, ac_random, tmp_path / "f", ExtractConfig(sampling="clip", batch_size=16,
                                                                             progress=False), splits=("test",))
    assert "repeating every frame in order (5 padding frames)" in caplog.text and "'short' has 3 frames" in caplog.text
    assert "0 0 0 1 1 1 2 2" in store.info["padding"]
    assert store.frame_spans("short").tolist() == [[0, 3]] and store.meta("short")["padded_frames"] == 5
    frames = _rgb_frames(tmp_path / "v" / "short")
    pre = preprocessor_for(ac_random, ExtractConfig(sampling="clip", clip_len=8))
    want = ac_random.encode_clips(pre(torch.from_numpy(frames[[0, 0, 0, 1, 1, 1, 2, 2]]))[None])[0]
    last = ac_random.encode_clips(pre(torch.from_numpy(frames[[0, 1, 2, 2, 2, 2, 2, 2]]))[None])[0]
    np.testing.assert_allclose(store.load("short")[0], want.numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(store.load("short")[0], last.numpy(), atol=1e-4)   # not the repeat-last fill
    # a long video's tail clip still repeats its last frame (the authors sample long videos otherwise)
    long = _rgb_frames(tmp_path / "v" / "long")
    tail = ac_random.encode_clips(pre(torch.from_numpy(long[[16, 17, 18, 18, 18, 18, 18, 18]]))[None])[0]
    np.testing.assert_allclose(store.load("long")[-1], tail.numpy(), rtol=1e-4, atol=1e-5)


def test_the_extractor_resizes_as_the_authors_do(ac_random):
    pre = preprocessor_for(ac_random, ExtractConfig(sampling="clip", clip_len=8))
    s = ac_random.image_size
    assert pre.resize_to == round(s * 256 / 224) and pre.describe()["resize_to"] == pre.resize_to
    x = torch.randint(0, 256, (2, 40, 56, 3), dtype=torch.uint8)
    assert pre(x).shape == (2, 3, s, s)
    assert not torch.allclose(pre(x), Preprocessor(s, ac_random.mean, ac_random.std)(x))
    with pytest.raises(ConfigError, match="resize_scale"):
        Preprocessor(s, ac_random.mean, ac_random.std, resize_scale=0.5)


def test_the_actionclip_template_set_is_named(ac_random):
    from vadlib.features.backbones.actionclip import ACTIONCLIP_TEMPLATES
    from vadlib.prompts.text import DEFAULT_TEMPLATES, PromptSet, resolve_templates

    assert resolve_templates("actionclip") == ACTIONCLIP_TEMPLATES == resolve_templates(["actionclip"])
    assert resolve_templates(None) == list(DEFAULT_TEMPLATES)
    ps = PromptSet.from_params({"normal": ["walking"], "anomaly": {"bike": "riding a bicycle"}}, templates="actionclip")
    assert ps.templates == ACTIONCLIP_TEMPLATES
    with pytest.raises(ConfigError, match="unknown template set 'kinetics'.*actionclip"):
        resolve_templates("kinetics", "zeroshot.templates")
    with pytest.raises(ConfigError, match="exactly one"):
        resolve_templates(["a {} {}"])


def test_a_checkpoint_with_wrong_keys_leaves_no_store(tmp_path, gen, tiny_file):
    ck = torch.load(tiny_file, map_location="cpu", weights_only=True)
    ck["fusion_model_state_dict"] = {k: v for k, v in ck["fusion_model_state_dict"].items() if "resblocks" not in k}
    bad = tmp_path / "bad.pt"
    torch.save(ck, bad)
    with pytest.raises(DataError, match="resblocks"):
        _load("actionclip/vadlib-tiny", str(bad))
