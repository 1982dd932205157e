"""The method contract, in the style of scikit-learn's ``estimator_checks``: every method registered in
:data:`vadlib.methods.METHODS` is fitted on tiny planted features (:mod:`vadlib.synthetic.planted_mil`)
and must predict per-frame scores (and class probabilities when it has them), survive a save → load
round trip with identical predictions, refuse features made another way, and repeat under a seed.

Each method is checked on the parts it declares (``supports``): one without ``fit`` (``zeroshot``) is
built by ``example`` instead of fitted, and must refuse ``fit`` saying why. Method packages that are
not entries are named, with the reason, in :data:`vadlib.methods.OUTSIDE_THE_REGISTRY`."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from vadlib.errors import ConfigError
from vadlib.methods import METHODS, OUTSIDE_THE_REGISTRY, Method, WeakVideo, load
from vadlib.synthetic.planted_mil import make_planted_mil
from vadlib.train import FitResult

NAMES = METHODS.names()
FITTED = [n for n in NAMES if "fit" in METHODS.get(n).supports]
PROTOCOL = {"fit", "predict", "save", "load", "feature_spec"}
SPEC = {"backbone": "vadlib-tiny", "pretrained": "random", "real_weights": False, "sampling": "every",
        "stride": 1, "crops": 1, "embed_dim": 32}


@pytest.fixture(scope="module")
def planted():
    return make_planted_mil("test", seed=4, dim=32, n_classes=2, n_train_abnormal=8, n_train_normal=8, n_test=4,
                            frames=(40, 64))


def _fitted(name: str, pb, seed: int = 0) -> tuple[Method, FitResult | None]:
    """The method fitted on the planted training videos (built by ``example`` only, with no
    ``FitResult``, when it has no ``fit``)."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    m = METHODS.get(name).example(pb.class_names, pb.text_embeddings.shape[1], text_embeddings=pb.text_embeddings)
    m.set_feature_spec(SPEC)
    if "fit" not in m.supports:
        return m, None
    res = m.fit([WeakVideo(v.name, v.features, v.class_id) for v in pb.train], seed=seed, log=None)
    return m, res


def _test_feats(pb) -> dict[str, np.ndarray]:
    return {v.name: v.features for v in pb.test}


def test_the_registry_lists_the_methods():
    assert {"anomalyclip", "sultani", "rtfm", "zeroshot"} <= set(NAMES)
    assert {"anomalyclip", "sultani", "rtfm"} <= set(FITTED)
    import vadlib

    assert vadlib.METHODS is METHODS


def test_every_method_package_is_an_entry_or_says_why_not():
    from pathlib import Path

    import vadlib.methods

    root = Path(vadlib.methods.__file__).parent
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").is_file()}
    entries = {METHODS.get(n).__module__.split(".")[2] for n in NAMES}
    assert packages == entries | set(OUTSIDE_THE_REGISTRY), (packages, entries)
    assert not entries & set(OUTSIDE_THE_REGISTRY)
    assert all(len(why) > 40 for why in OUTSIDE_THE_REGISTRY.values())


def test_the_registry_is_lazy_one_entry_imports_no_other_method():
    import subprocess
    import sys

    code = ("import sys, vadlib.methods as m; names = m.METHODS.names(); "
            "assert not [k for k in sys.modules if k.startswith('vadlib.methods.') and k != 'vadlib.methods.base'], "
            "sorted(sys.modules); m.METHODS.get('zeroshot'); "
            "print(sorted(k for k in sys.modules if k.startswith('vadlib.methods.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = eval(out)
    assert "vadlib.methods.zeroshot.method" in loaded
    assert not [k for k in loaded if k.startswith(("vadlib.methods.anomalyclip", "vadlib.methods.mil"))], loaded


@pytest.mark.parametrize("name", sorted(set(NAMES) - set(FITTED)))
def test_a_method_without_fit_refuses_it_saying_why(name, planted):
    m, _ = _fitted(name, planted)
    assert m.supports <= PROTOCOL - {"fit"} and not m.weak
    with pytest.raises(ConfigError, match=f"method '{name}' cannot be fitted: .{{20}}"):
        m.fit([WeakVideo(v.name, v.features, v.class_id) for v in planted.train])


@pytest.mark.parametrize("name", NAMES)
def test_registered_under_its_name_and_implements_the_protocol(name):
    cls = METHODS.get(name)
    assert issubclass(cls, Method) and cls.name == name
    assert not inspect.isabstract(cls), f"{name} leaves abstract methods: {sorted(cls.__abstractmethods__)}"
    assert cls.supports <= PROTOCOL and {"predict", "save", "load", "feature_spec"} <= cls.supports
    assert cls.weak == (cls.supports == PROTOCOL), f"{name}: weak methods are the ones vadlib.train fits"
    for attr in ("fit", "predict", "save", "load", "feature_spec", "preset", "example"):
        assert hasattr(cls, attr), f"{name} lacks {attr}"
    with pytest.raises(ConfigError, match="unknown config preset|unknown anomalyclip config"):
        cls.preset("no_such_preset")


@pytest.mark.parametrize("name", NAMES)
def test_fit_then_predict_shapes(name, planted):
    m, res = _fitted(name, planted)
    if res is not None:
        assert len(res.history) == 2 and all(np.isfinite(r["loss"]) for r in res.history)
    out = m.predict(_test_feats(planted))
    assert set(out) == {v.name for v in planted.test}
    for v in planted.test:
        s, p = out[v.name]
        assert np.shape(s) == (len(v.features),) and np.isfinite(s).all()
        if m.has_class_probs:
            assert np.shape(p) == (len(v.features), len(planted.class_names))
            np.testing.assert_allclose(np.asarray(p).sum(1), 1.0, atol=1e-5)
        else:
            assert p is None


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_gives_identical_predictions(name, planted, tmp_path):
    m, _ = _fitted(name, planted)
    path = m.save(tmp_path / f"{name}.pt", meta={"note": "contract"})
    ck = torch.load(path, weights_only=True)                  # plain tensors and types only
    assert ck["method"] == name and ck["meta"]["features"] == SPEC
    back = load(path)
    assert type(back) is type(m) and back.class_names == m.class_names
    assert back.feature_spec == m.feature_spec and back.checkpoint["meta"]["note"] == "contract"
    a, b = m.predict(_test_feats(planted)), back.predict(_test_feats(planted))
    for k in a:
        np.testing.assert_array_equal(a[k][0], b[k][0])
        if a[k][1] is not None:
            np.testing.assert_array_equal(a[k][1], b[k][1])


@pytest.mark.parametrize("name", NAMES)
def test_feature_spec_mismatch_is_refused(name, planted, tmp_path):
    m, _ = _fitted(name, planted)
    back = load(m.save(tmp_path / f"{name}.pt"))
    back.check_features(SPEC)                                    # the same features pass
    with pytest.raises(ConfigError, match="backbone"):
        back.check_features({**SPEC, "backbone": "ViT-B-16"})
    v = planted.test[0]
    wider = np.concatenate([v.features, v.features[:, :3]], 1)
    with pytest.raises(ConfigError, match="35-wide features"):
        back.predict({v.name: wider})


@pytest.mark.parametrize("name", FITTED)
def test_deterministic_under_a_seed(name, planted):
    (a, ra), (b, rb) = _fitted(name, planted, seed=3), _fitted(name, planted, seed=3)
    assert [r["loss"] for r in ra.history] == [r["loss"] for r in rb.history]
    pa, pb_ = a.predict(_test_feats(planted)), b.predict(_test_feats(planted))
    for k in pa:
        np.testing.assert_array_equal(pa[k][0], pb_[k][0])
    c, _ = _fitted(name, planted, seed=4)                        # and the seed matters
    assert any(not np.array_equal(pa[k][0], c.predict(_test_feats(planted))[k][0]) for k in pa)
