"""Training loop: schedule, validation split, determinism, checkpoints, the train_mil stage on a fake store."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vadlib.data.base import Video, VideoDataset
from vadlib.errors import ConfigError, DataError
from vadlib.synthetic.planted_mil import make_planted_mil
from vadlib.methods import WeakVideo
from vadlib.methods import build as build_method
from vadlib.methods import config as method_config
from vadlib.methods import load as load_checkpoint
from vadlib.stages.train_mil import run_train_mil
from vadlib.train import fit, lr_factor, split_validation


@pytest.fixture(scope="module")
def planted():
    return make_planted_mil("test", seed=3, n_train_abnormal=8, n_train_normal=8, n_test=6)


def _weak(pb):
    return [WeakVideo(v.name, v.features, v.class_id) for v in pb.train]


def _small_ac(pb, **over):
    cfg = method_config("anomalyclip", "demo", {"text_source": "embeddings", "epochs": 2, "emb_size": 16,
                                                "heads": 2, **over})
    return build_method("anomalyclip", cfg, pb.class_names, 64, text_embeddings=pb.text_embeddings, seed=5)


def test_lr_schedule_warmup_never_zero_then_cosine():
    total, warm = 100, 10
    f = [lr_factor(s, total, warm) for s in range(total)]
    assert f[0] == pytest.approx(0.1) and f[0] > 0           # reference flaw 4: epoch 0 at lr 0
    assert f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:])) and f[-1] < 0.01
    assert lr_factor(5, 10, 0, "constant") == 1.0


def test_validation_split_is_stratified_disjoint_and_seeded(planted):
    vids = _weak(planted)
    tr, va = split_validation(vids, 0.25, 7)
    assert {v.name for v in tr}.isdisjoint({v.name for v in va}) and len(tr) + len(va) == len(vids)
    assert {v.class_id for v in tr} == {v.class_id for v in vids}     # every class keeps training videos
    assert any(v.class_id == 0 for v in va) and any(v.class_id != 0 for v in va)
    assert [v.name for v in split_validation(vids, 0.25, 7)[1]] == [v.name for v in va]
    assert all(not n.startswith("test") for n in (v.name for v in va))


@pytest.mark.parametrize("method", ["anomalyclip", "sultani"])
def test_same_seed_same_results(planted, method):
    torch.set_num_threads(1)
    outs = []
    for _ in range(2):
        m = _small_ac(planted) if method == "anomalyclip" else \
            build_method(method, method_config(method, "demo", {"epochs": 3}), planted.class_names, 64, seed=5)
        r = fit(m, _weak(planted), seed=5, log=None)
        outs.append((r.history[-1]["loss"], m.predict({v.name: v.features for v in planted.test[:2]})))
    assert outs[0][0] == outs[1][0]
    for k in outs[0][1]:
        np.testing.assert_array_equal(outs[0][1][k][0], outs[1][1][k][0])


def test_checkpoint_round_trip_weights_only(planted, tmp_path):
    m = _small_ac(planted)
    fit(m, _weak(planted), seed=0, log=None)
    p = m.save(tmp_path / "m.pt", meta={"note": "x"})
    ck = torch.load(p, weights_only=True)
    assert ck["method"] == "anomalyclip" and ck["class_names"] == planted.class_names
    m2 = load_checkpoint(p)
    feats = {v.name: v.features for v in planted.test[:2]}
    a, b = m.predict(feats), m2.predict(feats)
    for k in feats:
        np.testing.assert_allclose(a[k][0], b[k][0], rtol=1e-6)
        np.testing.assert_allclose(a[k][1], b[k][1], rtol=1e-6)
    with pytest.raises(DataError):
        load_checkpoint(tmp_path / "missing.pt")


def test_prompt_checkpoint_loads_without_backbone(planted, tmp_path, tiny_backbone):
    cfg = method_config("anomalyclip", "demo", {"epochs": 1, "emb_size": 16, "heads": 2, "n_ctx": 2})
    m = build_method("anomalyclip", cfg, planted.class_names, 64, backbone=tiny_backbone)
    fit(m, _weak(planted), seed=0, log=None)
    p = m.save(tmp_path / "p.pt")
    feats = {v.name: v.features for v in planted.test[:1]}
    m_inf = load_checkpoint(p)                       # inference from the stored text cache
    m_full = load_checkpoint(p, backbone=tiny_backbone)
    for other in (m_inf, m_full):
        np.testing.assert_allclose(m.predict(feats)[planted.test[0].name][0],
                                   other.predict(feats)[planted.test[0].name][0], rtol=1e-5, atol=1e-6)
    m_inf.module.train()
    with pytest.raises(ConfigError):
        m_inf.module.text_features()


class FakeStore:
    """The FeatureStore API over plain .npy files (features of every video, rows = every 2nd frame)."""

    def __init__(self, root: Path, feats: dict[str, np.ndarray], stride: int = 2):
        self.root, self.stride = root, stride
        self.n = {}
        for k, f in feats.items():
            np.save(root / f"{k}.npy", f)
            self.n[k] = len(f) * stride

    def load(self, video):
        return np.load(self.root / f"{video}.npy")

    def frame_index(self, video):
        return np.arange(0, self.n[video], self.stride)

    def num_frames(self, video):
        return self.n[video]


def _fake(tmp_path, pb, class_override=None, nan_video=None):
    feats = {v.name: v.features.copy() for v in pb.train + pb.test}
    if nan_video:
        feats[nan_video][2, 0] = np.nan
    store = FakeStore(tmp_path, feats)
    train = [Video(v.name, tmp_path, "train", label=v.label,
                   class_name=(class_override or {}).get(v.name, pb.class_names[v.class_id])) for v in pb.train]
    test = [Video(v.name, tmp_path, "test", label=v.label, class_name=pb.class_names[v.class_id],
                  frame_labels=np.repeat(v.frame_labels, 2), frame_classes=np.repeat(v.frame_classes, 2))
            for v in pb.test]
    return VideoDataset("fake", tmp_path, {"train": train, "test": test}, class_names=list(pb.class_names)), store


def test_run_train_mil_on_fake_store(planted, tmp_path):
    ds, store = _fake(tmp_path, planted)
    res = run_train_mil("sultani", "demo", ds, store, overrides={"epochs": 2}, seed=0,
                        checkpoint_out=tmp_path / "ck.pt", log=None)
    preds = res["predictions"]
    assert set(preds) == {v.name for v in ds.videos("test")}
    v = ds.videos("test")[0]
    assert preds[v.name].scores.shape == (len(v.frame_labels),)
    again = run_train_mil("sultani", "demo", ds, store, checkpoint_in=res["checkpoint"], log=None)["predictions"]
    np.testing.assert_allclose(again[v.name].scores, preds[v.name].scores)


def test_unknown_class_name_raises(planted, tmp_path):
    name = next(v.name for v in planted.train if v.class_id)
    ds, store = _fake(tmp_path, planted, class_override={name: "shoplifting"})
    with pytest.raises(ConfigError, match=f"{name}.*shoplifting"):
        run_train_mil("anomalyclip", "demo", ds, store, overrides={"text_source": "embeddings"}, log=None)


def test_nan_features_raise_naming_the_video(planted, tmp_path):
    name = planted.train[1].name
    ds, store = _fake(tmp_path, planted, nan_video=name)
    with pytest.raises(DataError, match=name):
        run_train_mil("sultani", "demo", ds, store, log=None)


def test_reference_switch_lr_zero_first_epoch_makes_epoch_0_a_no_op(planted):
    """Reference flaw 4 as a switch: with it, one epoch at warm-up leaves the weights unchanged; without, they move."""
    torch.set_num_threads(1)
    moved = {}
    for on in (False, True):
        m = _small_ac(planted, epochs=1, warmup_epochs=1, reference={"lr_zero_first_epoch": on})
        before = {k: v.clone() for k, v in m.module.state_dict().items() if v.dtype.is_floating_point}
        fit(m, _weak(planted), seed=5, log=None, max_steps_per_epoch=2)
        after = m.module.state_dict()
        moved[on] = max(float((after[k] - before[k]).abs().max()) for k in before
                        if k not in ("centroid", "text_cache") and not k.startswith("selector_bn"))
    assert moved[False] > 0 and moved[True] == 0.0


def test_reference_switch_no_validation_split(planted, tmp_path):
    ds, store = _fake(tmp_path, planted)
    ov = {"text_source": "embeddings", "epochs": 1, "emb_size": 16, "heads": 2}
    kw = dict(class_names=ds.class_names, seed=0, log=None)
    from unittest import mock

    with mock.patch("vadlib.methods.build", wraps=build_method) as bm:
        bm.side_effect = lambda *a, **k: build_method(*a, **{**k, "text_embeddings": planted.text_embeddings})
        fixed = run_train_mil("anomalyclip", "demo", ds, store, overrides=ov, **kw)
        ref = run_train_mil("anomalyclip", "demo", ds, store, overrides={**ov, "reference": {"no_validation_split": True}},
                            **kw)
    assert fixed["n_val"] > 0 and ref["n_val"] == 0 and ref["n_train"] == len(ds.videos("train"))
    assert ref["config"]["reference"]["no_validation_split"] is True


def test_the_loop_refuses_a_registered_method_it_does_not_train(planted):
    from vadlib.methods import METHODS

    zs = METHODS.get("zeroshot").example(planted.class_names, planted.train[0].features.shape[1],
                                         text_embeddings=planted.text_embeddings)
    with pytest.raises(ConfigError, match="'zeroshot' is not trained .*weak = False"):
        fit(zs, _weak(planted), log=None)
