"""ActionCLIP backbone: the authors' checkpoint layout loaded back, its errors, and the visual prompt's maths.

The files here are written by :func:`published_layout` from vadlib's own modules, renaming keys the way
the authors' files name them (OpenAI CLIP names; the fusion saved from ``DataParallel``) — no
reference code is involved. All weights are random (``vadlib-tiny`` tower + 1-layer visual prompt).
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path

import pytest
import torch

from vadlib.errors import ConfigError, DataError, WeightsUnavailableError
from vadlib.features import RandomWeightsWarning
from vadlib.features import precision as P
from vadlib.features.backbones import actionclip as A

T, S, D = 8, 64, 64
#: OpenAI CLIP names the authors' model_state_dict uses (a sample)
OPENAI_KEYS = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding", "visual.proj",
               "visual.ln_pre.weight", "visual.transformer.resblocks.0.attn.in_proj_weight",
               "visual.transformer.resblocks.1.mlp.c_fc.weight", "visual.ln_post.bias", "token_embedding.weight",
               "positional_embedding", "transformer.resblocks.0.ln_1.weight", "ln_final.weight",
               "text_projection", "logit_scale")


def _random(**kw) -> A.ActionClipBackbone:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RandomWeightsWarning)
        return A.load_actionclip("vadlib-tiny", "random", **kw)


def published_layout(bb: A.ActionClipBackbone, *, clip_len: int | None = None, half: bool = False) -> dict:
    """``bb``'s weights as the authors' train.py saves them (``epoch``, ``model_state_dict``,
    ``fusion_model_state_dict`` with ``module.`` keys, ``optimizer_state_dict``)."""
    model_sd = {k: (v.half() if half and v.is_floating_point() else v).clone()
                for k, v in bb.model.state_dict().items()}
    fusion_sd = {"module." + k: v.clone() for k, v in bb.fusion.state_dict().items()}
    out = {"epoch": 3, "model_state_dict": model_sd, "fusion_model_state_dict": fusion_sd,
           "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 5e-6, "params": [0, 1]}]}}
    if clip_len is not None:
        out["clip_len"] = clip_len
    return out


def _save(obj: dict, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _load(path: Path, **kw) -> A.ActionClipBackbone:
    with warnings.catch_warnings():
        # a file not marked random never warns (make_tiny_checkpoint's files carry a random-weights sidecar)
        warnings.simplefilter("ignore" if A.marked_random(path) else "error", RandomWeightsWarning)
        return A.load_actionclip("vadlib-tiny", str(path), **kw)


@pytest.fixture(scope="module")
def tiny() -> A.ActionClipBackbone:
    return _random()


@pytest.fixture(scope="module")
def clips() -> torch.Tensor:
    return torch.randn(3, T, 3, S, S, generator=torch.Generator().manual_seed(0))


def test_random_tiny_is_marked_and_conforms(tiny, clips):
    with pytest.warns(RandomWeightsWarning, match="RANDOM WEIGHTS: backbone 'actionclip/vadlib-tiny'"):
        bb = A.load_actionclip("vadlib-tiny", "random")
    assert bb.real_weights is False and bb.pretrained == "random"
    assert (bb.name, bb.tag, bb.kind, bb.text_path) == ("actionclip/vadlib-tiny", "actionclip/vadlib-tiny/random",
                                                        "clip", "text tower")
    assert (bb.embed_dim, bb.image_size, bb.clip_len) == (D, S, T)
    assert round(bb.image_size * bb.resize_scale) == 73 and round(224 * bb.resize_scale) == 256
    assert bb.precision_protocol() == {"precision": "fp32", "precision_requested": "fp32",
                                       "precision_reason": "requested"}
    assert len(bb.fusion.transformer.resblocks) == 1 and bb.fusion.positions == 77
    from open_clip.transformer import QuickGELU            # OpenAI's CLIP (and so ActionCLIP) uses QuickGELU
    assert isinstance(bb.model.visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert isinstance(bb.fusion.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert bb.fusion.transformer.resblocks[0].ln_1.eps == 1e-12   # the published module's LayerNorm
    assert not any(p.requires_grad for p in [*bb.model.parameters(), *bb.fusion.parameters()])
    out = bb.encode_clips(clips)
    assert out.shape == (3, D) and out.dtype == torch.float32
    torch.testing.assert_close(out, tiny.encode_clips(clips))          # same seed, same model
    txt = bb.encode_text(["riding a bike", "fighting"])
    assert txt.shape == (2, D)
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(2))
    with pytest.raises(ConfigError, match="empty prompt list"):
        bb.encode_text([])


def test_published_layout_loads_back_identically(tiny, clips, tmp_path):
    ckpt = published_layout(tiny)
    assert set(OPENAI_KEYS) <= set(ckpt["model_state_dict"])
    path = _save(ckpt, tmp_path / "actionclip_tiny.pt")
    bb = _load(path, clip_len=T)
    assert bb.real_weights is True and bb.tag == "actionclip/vadlib-tiny/actionclip_tiny.pt"
    assert bb.clip_len_source == "requested"
    torch.testing.assert_close(bb.encode_clips(clips), tiny.encode_clips(clips), rtol=0, atol=0)
    texts = ["a person riding a bicycle", "a man in red"]
    torch.testing.assert_close(bb.encode_text(texts, normalize=False), tiny.encode_text(texts, normalize=False),
                               rtol=0, atol=0)


def test_fp16_file_as_the_authors_gpu_runs_save_it_loads_in_fp32(tiny, clips, tmp_path):
    path = _save(published_layout(tiny, half=True), tmp_path / "vit-tiny-8f.pt")
    bb = _load(path)                                    # clip_len from the file name
    assert bb.clip_len == T and "file name" in bb.clip_len_source
    assert all(p.dtype == torch.float32 for p in bb.model.parameters())
    a, b = bb.encode_clips(clips), tiny.encode_clips(clips)
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999


def test_legacy_non_zip_file_and_a_non_checkpoint(tiny, clips, tmp_path):
    path = tmp_path / "old.pt"
    torch.save(published_layout(tiny, clip_len=T), path, _use_new_zipfile_serialization=False)
    torch.testing.assert_close(_load(path).encode_clips(clips), tiny.encode_clips(clips), rtol=0, atol=0)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match=r"junk\.pt: cannot read as a torch checkpoint"):
        _load(tmp_path / "junk.pt", clip_len=T)


def test_make_tiny_command_writes_a_loadable_file(tiny, clips, tmp_path, capsys):
    path = tmp_path / "made" / "tiny.pt"
    assert A.main(["--make-tiny", str(path)]) == 0
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    # no temporary left behind; the sidecar says the weights are random
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.pt", "tiny.pt.vadlib.json"]
    raw = torch.load(path, weights_only=True)
    assert set(OPENAI_KEYS) <= set(raw["model_state_dict"])
    assert all(k.startswith("module.") for k in raw["fusion_model_state_dict"]) and raw["clip_len"] == T
    bb = _load(path)
    assert not bb.real_weights                                            # marked RANDOM by the sidecar
    assert bb.clip_len == T and bb.clip_len_source == "the file's 'clip_len' entry"
    torch.testing.assert_close(bb.encode_clips(clips), tiny.encode_clips(clips), rtol=0, atol=0)
    assert A.main(["--make-tiny", str(tmp_path / "pub.pt"), "--unrecorded", "--fp16", "--clip-len", "16"]) == 0
    raw = torch.load(tmp_path / "pub.pt", weights_only=True)
    assert "clip_len" not in raw and raw["model_state_dict"]["visual.proj"].dtype == torch.float16
    assert _load(tmp_path / "pub.pt", clip_len=16).clip_len == 16
    (tmp_path / "pub.pt.vadlib.json").unlink()                            # an authors' file has no sidecar
    assert _load(tmp_path / "pub.pt", clip_len=16).real_weights


def test_missing_file_names_it(tmp_path):
    with pytest.raises(WeightsUnavailableError, match=r"ActionCLIP checkpoint not found: .*nope\.pt.*'random'"):
        A.load_actionclip("vadlib-tiny", str(tmp_path / "nope.pt"))


def test_file_without_fusion_weights_is_refused(tiny, tmp_path):
    ckpt = published_layout(tiny)
    del ckpt["fusion_model_state_dict"]
    path = _save(ckpt, tmp_path / "clip_only.pt")
    with pytest.raises(DataError, match=r"clip_only\.pt: missing 'fusion_model_state_dict' \(the fusion "
                                        r"\(visual prompt\) weights\); the file has top-level keys "):
        _load(path, clip_len=T)
    ckpt["fusion_model_state_dict"] = {}
    with pytest.raises(DataError, match="is empty: a 'meanP' model"):
        _load(_save(ckpt, tmp_path / "meanp.pt"), clip_len=T)
    ckpt["fusion_model_state_dict"] = {"module.lstm_visual.weight_ih_l0": torch.zeros(4 * D, D)}
    with pytest.raises(DataError, match="is a 'LSTM' visual prompt; vadlib implements the 'Transf'"):
        _load(_save(ckpt, tmp_path / "lstm.pt"), clip_len=T)
    _save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(DataError, match=r"missing 'model_state_dict'.*\['state_dict'\]"):
        _load(tmp_path / "other.pt", clip_len=T)


def test_wrong_keys_are_all_listed(tiny, tmp_path):
    ckpt = published_layout(tiny)
    sd = ckpt["model_state_dict"]
    sd["visual.proj"] = torch.zeros(D, 32)
    del sd["ln_final.bias"]
    sd["visual.extra_token"] = torch.zeros(3)
    path = _save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(DataError) as err:
        _load(path, clip_len=T)
    msg = str(err.value)
    assert msg.startswith(str(path)) and "'model_state_dict' does not fit open_clip 'vadlib-tiny'" in msg
    assert "1 missing: ln_final.bias" in msg and "1 unexpected: visual.extra_token" in msg
    assert "1 mis-shaped: visual.proj (64, 32) (expected (64, 64))" in msg
    ckpt = published_layout(tiny)
    ckpt["fusion_model_state_dict"]["module.transformer.resblocks.0.mlp.c_fc.bias"] = torch.zeros(7)
    with pytest.raises(DataError, match=r"'fusion_model_state_dict' does not fit a 1-layer visual prompt of "
                                        r"width 64: 1 mis-shaped: transformer\.resblocks\.0\.mlp\.c_fc\.bias \(7,\)"):
        _load(_save(ckpt, tmp_path / "badfusion.pt"), clip_len=T)


def test_clip_len_must_agree_with_the_checkpoint(tiny, tmp_path):
    recorded = _save(published_layout(tiny, clip_len=T), tmp_path / "tiny.pt")
    with pytest.raises(ConfigError, match=r"clip_len=16 requested, but the checkpoint was trained with 8 frames "
                                          r"per clip \(the file's 'clip_len' entry\); set clip_len to 8"):
        _load(recorded, clip_len=16)
    assert _load(recorded, clip_len=8).clip_len == 8
    named = _save(published_layout(tiny), tmp_path / "vit-b-16-16f.pt")
    with pytest.raises(ConfigError, match=r"trained with 16 frames per clip \(the file name 'vit-b-16-16f\.pt'\)"):
        _load(named, clip_len=8)
    bare = _save(published_layout(tiny), tmp_path / "model_best.pt")
    with pytest.raises(ConfigError, match=r"does not record its frames per clip .* give clip_len.* 8, 16, 32"):
        _load(bare)
    with pytest.raises(ConfigError, match=r"clip_len=78 is outside 1\.\.77"):
        _load(bare, clip_len=78)


def test_encode_clips_checks_its_input(tiny):
    with pytest.raises(ConfigError, match=r"clips of 4 frames given, the model takes clip_len=8"):
        tiny.encode_clips(torch.zeros(1, 4, 3, S, S))
    with pytest.raises(ConfigError, match=r"takes \(B, T, 3, S, S\) clips, got \(8, 3, 64, 64\)"):
        tiny.encode_clips(torch.zeros(T, 3, S, S))


def _with_fusion(bb: A.ActionClipBackbone, edit) -> A.ActionClipBackbone:
    fusion = copy.deepcopy(bb.fusion)
    with torch.no_grad():
        edit(fusion)
    return dataclasses.replace(bb, fusion=fusion)


def test_frame_order_matters_only_through_the_position_embeddings(tiny, clips):
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    noise = torch.randn(tiny.fusion.frame_position_embeddings.weight.shape, generator=torch.Generator().manual_seed(1))
    placed = _with_fusion(tiny, lambda f: f.frame_position_embeddings.weight.add_(noise))   # positions that matter
    assert (placed.encode_clips(clips[:, perm]) - placed.encode_clips(clips)).abs().max() > 1e-3
    flat = _with_fusion(tiny, lambda f: f.frame_position_embeddings.weight.zero_())
    torch.testing.assert_close(flat.encode_clips(clips[:, perm]), flat.encode_clips(clips), rtol=1e-5, atol=1e-5)


def test_residual_to_the_frames_then_the_mean_over_frames(tiny, clips):
    def identity_blocks(f):      # zero every block's output projections: each block becomes the identity
        for blk in f.transformer.resblocks:
            for lin in (blk.attn.out_proj, blk.mlp.c_proj):
                lin.weight.zero_()
                lin.bias.zero_()

    bb = _with_fusion(tiny, identity_blocks)
    frames = bb.encode_frames(clips)                                     # (B, T, D)
    pos = bb.fusion.frame_position_embeddings.weight[:T]                 # (T, D)
    expected = (2 * frames + pos).mean(dim=1)                            # (f + p) through identity, + f, mean
    torch.testing.assert_close(bb.encode_clips(clips), expected, rtol=1e-5, atol=1e-5)


def test_clips_of_a_batch_are_encoded_independently(tiny, clips):
    one_by_one = torch.cat([tiny.encode_clips(clips[i:i + 1]) for i in range(len(clips))])
    torch.testing.assert_close(tiny.encode_clips(clips), one_by_one, rtol=1e-5, atol=1e-5)


def test_bf16_casts_the_image_tower_and_the_visual_prompt(tiny, clips, monkeypatch):
    monkeypatch.setattr(P, "cpu_bf16_support", lambda: P.CpuBf16(True, ("avx512_bf16",), "test"))
    bb = _random(precision="bf16")
    assert bb.precision_protocol()["precision"] == "bf16" and bb.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in bb.fusion.parameters())
    assert bb.model.token_embedding.weight.dtype == torch.float32        # the text tower stays fp32
    out = bb.encode_clips(clips)
    assert out.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(out, tiny.encode_clips(clips)).min() > 0.99


def test_unknown_architecture_and_empty_pretrained():
    with pytest.raises(ConfigError, match=r"unknown CLIP architecture 'ViT-Q-99' \(published: ViT-B-16, ViT-B-32"):
        A.load_actionclip("ViT-Q-99", "random")
    with pytest.raises(ConfigError, match="give a checkpoint path, or 'random' explicitly"):
        A.load_actionclip("actionclip/vadlib-tiny", "")


def test_templates_are_the_sixteen_kinetics_templates():
    assert len(A.ACTIONCLIP_TEMPLATES) == 16 and len(set(A.ACTIONCLIP_TEMPLATES)) == 16
    assert all(t.count("{}") == 1 for t in A.ACTIONCLIP_TEMPLATES)
    assert A.ACTIONCLIP_TEMPLATES[0].format("riding a bike") == "a photo of action riding a bike"


def test_a_video_shorter_than_a_clip_repeats_its_frames_in_order(tiny):
    assert tiny.short_video_indices(3).tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert tiny.short_video_indices(8).tolist() == list(range(8))
    assert A.short_video_indices(1, 16).tolist() == [0] * 16
    with pytest.raises(DataError, match="a video of 0 frames cannot fill"):
        tiny.short_video_indices(0)
    with pytest.raises(ConfigError, match="9 frames fill a clip of 8 without padding"):
        tiny.short_video_indices(9)
