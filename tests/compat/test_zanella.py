"""Importer of lucazanella/AnomalyCLIP checkpoints (issue 14 items 1a and 5).

The test helper writes a checkpoint in the reference's published layout (its exact key names and
shapes, a Lightning file with pickled non-tensor objects) made from vadlib's own model by renaming
keys — no reference code is involved — and the importer must load it back into an identical model.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import torch

from vadlib.compat import zanella
from vadlib.errors import ConfigError, DataError

CLASSES = ["normal", "robbery", "arson", "fighting"]          # vadlib order; the reference sorts: normal_id 2


class PickledLoss:
    """Stands for the reference's ComputeLoss object that Lightning pickles in hyper_parameters."""

    def __init__(self):
        self.lambda_smooth = 8e-4


def tiny_clip_state_dict(seed: int = 0) -> dict:
    """A small random ViT CLIP in OpenAI layout (heads = width / 64, QuickGELU), as the reference builds."""
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(seed)
    m = CLIP(32, CLIPVisionCfg(image_size=32, layers=1, width=64, patch_size=16, head_width=64),
             CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=1), quick_gelu=True)
    sd = {k: v for k, v in m.state_dict().items() if k != "attn_mask"}
    sd["text_projection"] = torch.randn_like(sd["text_projection"]) * 0.1
    return sd


def vadlib_model(seed: int = 0, concat: bool = True):
    from vadlib.methods.anomalyclip.method import AnomalyCLIPMethod

    bb = zanella.build_backbone(tiny_clip_state_dict(seed), real_weights=False)
    cfg = {"num_segments": 4, "seg_length": 4, "emb_size": 16, "heads": 8, "depth": 2, "n_ctx": 4,
           "concat_features": concat, "reference": True}
    torch.manual_seed(seed + 1)
    m = AnomalyCLIPMethod(cfg, CLASSES, 32, backbone=bb)
    m.backbone = bb
    with torch.no_grad():
        for n, b in m.module.named_buffers():
            if n.startswith("selector_bn.running"):
                b.copy_(torch.rand_like(b) + 0.5)
        m.module.selector_bn.num_batches_tracked.fill_(7)
    m.module.set_centroid(torch.randn(32))
    return m


_INVERSE = [
    (r"temporal\.pos_h", "temporal_model.axial_attn.pos_emb.param_0"),
    (r"temporal\.pos_w", "temporal_model.axial_attn.pos_emb.param_1"),
    (r"temporal\.blocks\.(\d+)\.([fg])\.norm\.(\w+)", r"temporal_model.axial_attn.layers.blocks.\1.\2.net.fn.norm.\3"),
    (r"temporal\.blocks\.(\d+)\.([fg])\.(to_q|to_kv|to_out)\.(\w+)",
     r"temporal_model.axial_attn.layers.blocks.\1.\2.net.fn.fn.\3.\4"),
    (r"temporal\.blocks\.(\d+)\.([fg])\.(\d)\.(\w+)", r"temporal_model.axial_attn.layers.blocks.\1.\2.net.\3.\4"),
    (r"embed\.(\w+)", r"temporal_model.projection.\1"),
    (r"head\.0\.(\w+)", r"temporal_model.classifier.layer_norm.\1"),
    (r"head\.1\.(\w+)", r"temporal_model.classifier.linear.\1"),
    (r"selector_bn\.(\w+)", r"selector_model.bn_layer.\1"),
]


def reference_layout(m) -> tuple[dict, torch.Tensor]:
    """vadlib model → (the reference's ``state_dict`` with its key names / shapes / class order, ncentroid)."""
    ref_names = sorted(CLASSES)
    normal_id = ref_names.index("normal")
    anom_ref = [n for n in ref_names if n != "normal"]
    perm = [CLASSES[1:].index(n) for n in anom_ref]                 # reference anomaly column → vadlib column
    mod = m.module
    clip = m.backbone.model
    A = len(perm)
    sd = {}
    for k, v in mod.state_dict().items():
        if k in ("centroid", "text_cache", "text_cache_valid") or k.startswith("text."):
            continue
        for rx, t in _INVERSE:
            if re.fullmatch(rx, k):
                sd["net." + re.sub(rx, t, k)] = v.clone()
                break
        else:
            raise AssertionError(f"no inverse rule for {k}")
    for k in ("selector_model.bn_layer.running_mean", "selector_model.bn_layer.running_var"):
        sd["net." + k] = sd["net." + k][perm]
    if mod.cfg.concat_features:
        w = sd["net.temporal_model.projection.weight"]
        sd["net.temporal_model.projection.weight"] = torch.cat([w[:, :A][:, perm], w[:, A:]], 1)
    n_ctx = mod.cfg.n_ctx
    ctx = torch.randn(len(ref_names), n_ctx, mod.text.ctx.shape[-1])     # the normal row: random, unused
    for i, n in enumerate(ref_names):
        if n != "normal":
            ctx[i] = mod.text.ctx[CLASSES[1:].index(n)].detach()
    sd["net.prompt_learner.ctx"] = ctx
    tok = m.backbone.tokenizer([" ".join(["X"] * n_ctx) + " " + n + "." for n in ref_names])
    emb = clip.token_embedding(tok).detach()
    sd["net.prompt_learner.token_prefix"] = emb[:, :1].clone()
    sd["net.prompt_learner.token_suffix"] = emb[:, 1 + n_ctx:].clone()
    csd = clip.state_dict()
    for k, v in csd.items():
        if k.startswith("visual."):
            sd["net.image_encoder." + k[7:]] = v.clone()
        elif k.startswith("transformer.") or k in ("positional_embedding", "ln_final.weight", "ln_final.bias"):
            sd["net.text_encoder." + k] = v.clone()
    sd["net.token_embedding.weight"] = csd["token_embedding.weight"].clone()
    sd["net.selector_model.logit_scale"] = csd["logit_scale"].clone()
    sd["net.text_encoder.text_projection"] = mod.text.text_projection.detach().clone()
    assert normal_id == 2
    return sd, mod.centroid.clone()


def write_lightning(tmp_path, sd, centroid=None):
    d = tmp_path / "run" / "checkpoints"
    d.mkdir(parents=True)
    ck = {"epoch": 49, "global_step": 1000, "pytorch-lightning_version": "1.9.0", "state_dict": sd,
          "hyper_parameters": {"loss": PickledLoss(), "optimizer": functools.partial(torch.optim.AdamW, weight_decay=0.2),
                               "num_classes": len(CLASSES)}}
    torch.save(ck, d / "last.ckpt")
    if centroid is not None:
        torch.save(centroid, tmp_path / "run" / "ncentroid.pt")
    return d / "last.ckpt"


def _videos(seed=0, D=32):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(40, D)).astype(np.float32), "b": rng.normal(size=(9, D)).astype(np.float32)}


@pytest.mark.parametrize("concat", [True, False])
def test_reference_layout_round_trip_gives_identical_outputs(tmp_path, concat):
    torch.set_num_threads(1)
    m = vadlib_model(concat=concat)
    sd, c = reference_layout(m)
    path = write_lightning(tmp_path, sd, c)
    got = zanella.import_anomalyclip(path)           # ncentroid.pt found in the run folder
    assert got.class_names == ["normal", "arson", "fighting", "robbery"]        # the reference's order
    assert got.imported["normal_id"] == 2 and got.imported["ncentroid"].endswith("ncentroid.pt")
    again = zanella.import_anomalyclip(path, class_names=CLASSES)               # vadlib's order
    assert again.class_names == CLASSES
    vids = _videos()
    want = m.predict(vids)
    for name in vids:
        np.testing.assert_array_equal(again.predict(vids)[name][0], want[name][0])
        np.testing.assert_allclose(again.predict(vids)[name][1], want[name][1], rtol=0, atol=1e-7)
        # reference order = a column permutation of the same distribution
        p = got.predict(vids)[name][1]
        np.testing.assert_allclose(p[:, [0, 3, 1, 2]], want[name][1], rtol=0, atol=1e-7)
    full = {k: v for k, v in again.module.state_dict().items() if k != "text_cache"}
    for k, v in m.module.state_dict().items():
        if k not in ("text_cache", "text_cache_valid"):
            assert torch.equal(full[k], v), k


def test_unknown_missing_and_misshaped_keys_are_listed(tmp_path):
    m = vadlib_model()
    sd, c = reference_layout(m)
    bad = dict(sd, **{"net.temporal_model.extra.weight": torch.zeros(2)})
    with pytest.raises(DataError, match=r"unknown keys.*temporal_model\.extra\.weight"):
        zanella.import_anomalyclip(write_lightning(tmp_path / "u", bad, c))
    bad = {k: v for k, v in sd.items() if "classifier.linear.bias" not in k}
    with pytest.raises(DataError, match=r"missing \['head\.1\.bias'\]"):
        zanella.import_anomalyclip(write_lightning(tmp_path / "m", bad, c))
    bad = dict(sd)
    bad["net.temporal_model.classifier.layer_norm.weight"] = torch.ones(5)
    with pytest.raises(DataError, match=r"mis-shaped.*head\.0\.weight"):
        zanella.import_anomalyclip(write_lightning(tmp_path / "s", bad, c))
    bad = {k: v for k, v in sd.items() if k != "net.image_encoder.proj"}
    with pytest.raises(DataError, match=r"missing \['visual\.proj'\]"):
        zanella.import_anomalyclip(write_lightning(tmp_path / "c", bad, c))


def test_ncentroid_is_required_and_checked(tmp_path):
    m = vadlib_model()
    sd, c = reference_layout(m)
    path = write_lightning(tmp_path, sd)
    with pytest.raises(DataError, match="ncentroid"):
        zanella.import_anomalyclip(path)
    torch.save(torch.zeros(7), tmp_path / "wrong.pt")
    with pytest.raises(DataError, match=r"\(32,\) tensor"):
        zanella.import_anomalyclip(path, tmp_path / "wrong.pt")
    loose = zanella.import_anomalyclip(path, require_centroid=False)
    assert float(loose.module.centroid.abs().sum()) == 0.0


def test_class_names_must_match_the_prompts(tmp_path):
    m = vadlib_model()
    sd, c = reference_layout(m)
    path = write_lightning(tmp_path, sd, c)
    with pytest.raises(ConfigError, match="do not match"):
        zanella.import_anomalyclip(path, class_names=["normal", "robbery", "arson", "shooting"])
    ok = zanella.import_anomalyclip(path, class_names=["normal", "Robbery", "Arson", "Fighting"])
    assert ok.class_names[1] == "Robbery"


def test_every_key_of_the_table_maps():
    m = vadlib_model()
    sd, _ = reference_layout(m)
    assert all(zanella.map_key(k[4:]) is not None for k in sd)
    assert zanella.map_key("temporal_model.axial_attn.layers.blocks.3.g.net.3.weight") == "temporal.blocks.3.g.3.weight"
    assert zanella.map_key("prompt_learner.foo") is None


def test_convert_then_load_checkpoint_and_train_mil_evaluate_only(tmp_path):
    """convert → a vadlib checkpoint that load_checkpoint reads (weights_only) and predicts the same."""
    import open_clip

    from vadlib.methods import load as load_checkpoint

    m = vadlib_model()
    sd, c = reference_layout(m)
    path = write_lightning(tmp_path, sd, c)
    cfg = zanella.clip_config(tiny_clip_state_dict())
    # name the tiny architecture for open_clip (a published checkpoint is ViT-B-16-quickgelu)
    import json

    cdir = tmp_path / "cfgs"
    cdir.mkdir()
    (cdir / "zanella-test-tiny.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(cdir)
    out = zanella.convert(path, tmp_path / "model.pt", class_names=CLASSES)
    ck = torch.load(out, weights_only=True)
    assert ck["meta"]["features"]["backbone"] == "zanella-test-tiny"
    back = load_checkpoint(out)
    vids = _videos(1)
    for name in vids:
        np.testing.assert_allclose(back.predict(vids)[name][0], m.predict(vids)[name][0], rtol=0, atol=1e-6)
    from vadlib.features import load_backbone

    bb = load_backbone("zanella-test-tiny", ck["meta"]["features"]["pretrained"])
    img = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(bb.encode_images(img), m.backbone.encode_images(img), rtol=0, atol=1e-6)


def _register_tiny(tmp_path) -> None:
    import json

    import open_clip

    cdir = tmp_path / "cfgs"
    cdir.mkdir(exist_ok=True)
    (cdir / "zanella-test-tiny.json").write_text(json.dumps(zanella.clip_config(tiny_clip_state_dict())))
    open_clip.add_model_config(cdir)


def test_train_mil_evaluate_only_on_a_reference_checkpoint(tmp_path):
    """``train_mil.checkpoint_in: last.ckpt`` → no training, the imported model's predictions."""
    from vadlib.data.base import Video, VideoDataset
    from vadlib.stages.train_mil import predict_store, run_train_mil

    m = vadlib_model()
    sd, c = reference_layout(m)
    path = write_lightning(tmp_path, sd, c)
    rng = np.random.default_rng(0)
    feats = {f"v{i}": rng.normal(size=(20 + 7 * i, 32)).astype(np.float32) for i in range(4)}

    class Store:
        def load(self, v):
            return feats[v]

        def frame_index(self, v):
            return np.arange(len(feats[v]))

        def num_frames(self, v):
            return len(feats[v])

    test = [Video(v, tmp_path, "test", label=i % 2, frame_labels=np.zeros(len(f), int)) for i, (v, f) in enumerate(feats.items())]
    ds = VideoDataset("fake", tmp_path, {"train": [], "test": test}, class_names=CLASSES)
    res = run_train_mil("anomalyclip", "shanghaitech", ds, Store(), checkpoint_in=path,
                        checkpoint_out=tmp_path / "model.pt", log=None)
    assert res["history"] == [] and res["checkpoint"] == str(tmp_path / "model.pt")
    want = predict_store(m, Store(), test)
    for v in feats:
        np.testing.assert_allclose(res["predictions"][v].scores, want[v].scores, rtol=0, atol=1e-6)
    assert res["config"]["reference"]["log_without_eps"] is True          # imported = reference computation


def test_detect_runs_on_a_reference_checkpoint(tmp_path):
    from vadlib.detect import main as detect_main
    from vadlib.synthetic.flow import write_video

    _register_tiny(tmp_path)
    m = vadlib_model()
    sd, c = reference_layout(m)
    path = write_lightning(tmp_path, sd, c)
    video = write_video(tmp_path / "clip", n=20, size=(48, 64), seed=3, sq=12)
    out = tmp_path / "out"
    assert detect_main([str(video), "--method", "anomalyclip", "--checkpoint", str(path), "--threshold", "0.5",
                        "--no-video", "--out", str(out)]) == 0
    import json

    ev = json.loads((out / "clip" / "events.json").read_text())
    assert ev["backbone"] == "zanella-test-tiny" and ev["sampling"] == "every 1"
    assert (path.parent / "last.vadlib.pt").is_file() and (path.parent / "last.vadlib.clip.pt").is_file()
