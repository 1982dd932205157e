"""The synthetic generators: deterministic in their seed, and the truth they plant is where they say."""

from __future__ import annotations

import numpy as np
import pytest

from vadlib.errors import ConfigError
from vadlib.synthetic.planted_mil import make_planted_mil
from vadlib.synthetic.planted_search import planted_collection


def test_planted_mil_is_seeded_and_plants_along_the_class_direction():
    a, b = make_planted_mil("test", seed=4), make_planted_mil("test", seed=4)
    assert all(np.array_equal(x.features, y.features) for x, y in zip(a.train + a.test, b.train + b.test))
    assert not np.array_equal(a.test[0].features, make_planted_mil("test", seed=5).test[0].features)
    v = next(v for v in a.test if v.label)
    d = a.directions[v.class_id - 1]
    proj = v.features @ d
    assert proj[v.frame_labels == 1].mean() > proj[v.frame_labels == 0].mean() + 1.0   # strength 3 with a ramp
    assert set(np.unique(v.frame_classes)) == {0, v.class_id}
    assert a.class_names[0] == "normal" and a.text_embeddings.shape == (len(a.class_names) - 1, 64)
    with pytest.raises(ConfigError, match="unknown planted size"):
        make_planted_mil("huge")


def test_planted_transfer_is_seeded_and_labels_only_the_target():
    from vadlib.synthetic.planted_transfer import PlantedTransferConfig, make_planted_transfer

    cfg = PlantedTransferConfig(seed=2, n_train=4, n_test=4, length=(20, 30), anomaly_length=(5, 10))
    d1, p1, bb = make_planted_transfer(cfg)
    d2, _, _ = make_planted_transfer(cfg, backbone=bb)
    src, tgt = d1[("source", "train")], d1[("target", "test")]
    assert all(np.array_equal(x.feats, y.feats) for x, y in zip(src + tgt, d2[("source", "train")] + d2[("target", "test")]))
    assert all(v.frame_labels is None for v in src) and all(v.frame_labels is not None for v in tgt)
    assert np.allclose(np.linalg.norm(tgt[0].feats, axis=1), 1.0, atol=1e-5)
    assert list(p1["target"].anomaly.values()) == cfg.target_anomalies


def test_planted_search_collection_events_lie_along_their_text():
    rng = np.random.default_rng(0)
    text = np.linalg.qr(rng.normal(size=(32, 3)))[0].T.astype(np.float32)      # 3 orthonormal directions
    store, videos, events = planted_collection(text, n_videos=6, rows=40, step=4, seed=1, strength=(1.0, 1.0))
    assert [v.name for v in videos] == [f"v{i:02d}" for i in range(6)] and events
    for name, c, f0, f1 in events:
        rows = store.load(name)[f0 // 4:f1 // 4]
        assert (rows @ text[c]).mean() > 2.0                                    # √32 · strength ≈ 5.7 + noise
    assert np.array_equal(store.frame_index("v00"), np.arange(40) * 4)


def test_synthetic_flow_dataset_labels_the_fast_half():
    import tempfile
    from pathlib import Path

    from vadlib.synthetic.flow import make_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = make_dataset(Path(tmp), n_train=1, n_test=1, n=8)
        (te,) = ds.videos("test")
        assert te.frame_labels.tolist() == [0] * 5 + [1] * 3 and len(list((Path(tmp) / "synth" / "train" / "00").glob("*.png"))) == 8
