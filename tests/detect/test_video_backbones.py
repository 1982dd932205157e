"""`vadlib search` and `vadlib detect` with a video backbone (xclip-tiny, random weights): clips are
encoded and prompts are scored by X-CLIP's video-conditioned prompt generator, not the text tower."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError

torch.set_num_threads(1)


def _frames(folder, n, seed):
    import cv2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for t in range(n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{t:04d}.png"), cv2.resize(small, (64, 48)))
    return folder


@pytest.fixture(scope="module")
def xclip_tiny():
    from vadlib.features import load_backbone

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("xclip-tiny", "random")


def test_search_scores_clips_with_the_prompt_generator(tmp_path, xclip_tiny):
    from vadlib.data import Video
    from vadlib.prompts.text import PromptEmbeddings
    from vadlib.search import collection_store, search

    videos = [Video(name=f"v{i}", path=_frames(tmp_path / "col" / f"v{i}", n, i), split="collection", fps=10)
              for i, n in enumerate((21, 12))]
    store = collection_store("col", videos, xclip_tiny, tmp_path / "feat", every=8, progress=False)
    assert store.store.info["sampling"] == "clip" and store.store.info["clip_stride"] == 8
    q = ["a person riding a bicycle", "a car"]
    hits = search(q, store, videos, xclip_tiny, sigma=0, radius_s=0.1, top_k=20)
    pe = PromptEmbeddings(xclip_tiny, q, ("{}", "a photo of {}."))
    assert pe.needs_aux and pe.text_path == "video-conditioned prompt generator"
    for h in hits:   # each hit's score = the conditioned cosine of its clip
        row = int(np.flatnonzero(store.frame_index(h.video) == h.frame)[0])
        cos = pe.cosine(store.load(h.video), store.load_aux(h.video))[row]
        assert h.score == pytest.approx(float(cos.max()), abs=1e-5)
        assert h.query == q[int(cos.argmax())]
    # and it is not the bare text tower's cosine
    f = torch.nn.functional.normalize(torch.as_tensor(store.load("v0")), dim=-1)
    assert not torch.allclose(f @ pe.text.T, pe.cosine(store.load("v0"), store.load_aux("v0")), atol=1e-4)
    with pytest.raises(ConfigError, match="needs each clip's visual tokens"):
        pe.cosine(store.load("v0"))


def test_vadlib_search_cli_with_xclip(tmp_path):
    from vadlib.search import main

    _frames(tmp_path / "col" / "a", 17, 0)
    out = tmp_path / "page"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["a person riding a bicycle", str(tmp_path / "col"), "--backbone", "xclip-tiny", "--pretrained",
                     "random", "--features", str(tmp_path / "feat"), "--out", str(out), "--precision", "fp32"]) == 0
    assert "RANDOM WEIGHTS" in (out / "index.html").read_text() and (out / "hits.csv").is_file()


def test_vadlib_detect_zeroshot_with_xclip(tmp_path):
    from vadlib.detect import main

    _frames(tmp_path / "clip", 19, 1)
    args = [str(tmp_path / "clip"), "--method", "zeroshot", "--backbone", "xclip-tiny", "--pretrained", "random",
            "--prompt", "a person riding a bicycle", "--threshold", "0.5", "--no-video", "--precision", "fp32"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--out", str(tmp_path / "out")]) == 0
        res = json.loads(next((tmp_path / "out").rglob("events.json")).read_text())
        assert res["sampling"] == "clip 8 stride 8" and res["text_path"] == "video-conditioned prompt generator"
        assert res["real_weights"] is False
        import pandas as pd

        scores = pd.read_csv(next((tmp_path / "out").rglob("scores.csv")))
        assert len(scores) == 19   # clip scores expanded to every frame
        # the heat map draws single-frame CLIP patches: refused for a clip backbone, nothing written
        args_hm = [a for a in args if a != "--no-video"] + ["--heatmap", "--out", str(tmp_path / "hm")]
        assert main(args_hm) != 0
        assert not (tmp_path / "hm").exists()


# ------------------------------------------------------------------ ActionCLIP: text tower over clip features

@pytest.fixture(scope="module")
def actionclip_file(tmp_path_factory):
    """A tiny ActionCLIP file as the authors save them, without vadlib's clip_len entry (so --clip-len is needed)."""
    from vadlib.features.backbones.actionclip import main

    path = tmp_path_factory.mktemp("ac") / "actionclip_tiny.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["--make-tiny", str(path), "--unrecorded"]) == 0
    return path


def test_search_with_actionclip_scores_clips_with_the_text_tower(tmp_path, actionclip_file):
    from vadlib.data import Video
    from vadlib.features import load_backbone
    from vadlib.prompts.text import PromptEmbeddings
    from vadlib.search import collection_store, search

    bb = load_backbone("actionclip/vadlib-tiny", str(actionclip_file), clip_len=8)
    videos = [Video(name=f"v{i}", path=_frames(tmp_path / "col" / f"v{i}", n, i), split="collection", fps=10)
              for i, n in enumerate((21, 5))]
    store = collection_store("col", videos, bb, tmp_path / "feat", every=8, progress=False)
    assert store.store.info["sampling"] == "clip" and store.store.info["aux"] is None
    q = ["a person riding a bicycle", "a car"]
    hits = search(q, store, videos, bb, sigma=0, radius_s=0.1, top_k=20)
    pe = PromptEmbeddings(bb, q, ("{}", "a photo of {}."))
    assert not pe.needs_aux and pe.text_path == "text tower"
    assert hits
    for h in hits:   # each hit's score = the text-tower cosine of its clip
        row = int(np.flatnonzero(store.frame_index(h.video) == h.frame)[0])
        f = torch.nn.functional.normalize(torch.as_tensor(store.load(h.video)), dim=-1)
        cos = (f @ pe.text.T)[row]
        assert h.score == pytest.approx(float(cos.max()), abs=1e-5)


def test_vadlib_search_and_detect_cli_with_an_actionclip_file(tmp_path, actionclip_file, capsys):
    from vadlib.detect import main as detect
    from vadlib.search import main as search

    _frames(tmp_path / "col" / "a", 17, 0)
    common = ["--backbone", "actionclip/vadlib-tiny", "--pretrained", str(actionclip_file), "--precision", "fp32"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the file does not record its frame count: refused with the fix, nothing written
        assert search(["a person riding a bicycle", str(tmp_path / "col"), *common, "--features",
                       str(tmp_path / "feat"), "--out", str(tmp_path / "p0")]) != 0
        assert "give clip_len" in capsys.readouterr().err and not (tmp_path / "p0").exists()
        assert search(["a person riding a bicycle", str(tmp_path / "col"), *common, "--clip-len", "8", "--features",
                       str(tmp_path / "feat"), "--out", str(tmp_path / "page")]) == 0
        assert (tmp_path / "page" / "hits.csv").is_file()
        _frames(tmp_path / "clip", 19, 1)
        assert detect([str(tmp_path / "clip"), "--method", "zeroshot", *common, "--clip-len", "8",
                       "--prompt", "a person riding a bicycle", "--threshold", "0.5", "--no-video",
                       "--out", str(tmp_path / "out")]) == 0
    res = json.loads(next((tmp_path / "out").rglob("events.json")).read_text())
    assert res["sampling"] == "clip 8 stride 8" and res["text_path"] == "text tower"
    import pandas as pd

    assert len(pd.read_csv(next((tmp_path / "out").rglob("scores.csv")))) == 19
