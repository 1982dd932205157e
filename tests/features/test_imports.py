"""Published feature layouts (AnomalyCLIP per-frame, VadCLIP/RTFM 10-crop snippets) into the store."""

from __future__ import annotations

import numpy as np
import pytest

from vadlib.errors import ConfigError, DataError
from vadlib.features.imports import import_anomalyclip, import_features, import_vadclip, layouts
from vadlib.features.store import expand_to_frames

D = 512


def _anomalyclip_release(root, ncrops=1):
    """Image-Features/<Class>/<video>.npy + Annotations/*.txt + labels csv, like the release."""
    rng = np.random.default_rng(0)
    feats = {}
    videos = {"Abuse/Abuse001_x264": (0, 29, 0, "test"), "Normal_Videos_event/Normal_Videos_003_x264": (0, 19, 7, "test"),
              "Arson/Arson011_x264": (0, 24, 2, "train"), "Normal_Videos_event/Normal_Videos_100_x264": (0, 14, 7, "train")}
    for rel, (s, e, _, _) in videos.items():
        n = e - s + 1
        arr = rng.normal(size=(n, ncrops, D)).astype(np.float32)
        feats[rel.split("/")[1]] = arr
        p = root / "Image-Features" / f"{rel}.npy"
        p.parent.mkdir(parents=True, exist_ok=True)
        np.save(p, arr.reshape(n * ncrops, D))  # frame-major rows
    ann = root / "Annotations"
    ann.mkdir()
    lines = {"Anomaly_Test.txt": [], "Anomaly_Train_Abnormal.txt": [], "Anomaly_Train_Normal.txt": []}
    for rel, (s, e, lab, split) in videos.items():
        key = "Anomaly_Test.txt" if split == "test" else ("Anomaly_Train_Normal.txt" if lab == 7
                                                          else "Anomaly_Train_Abnormal.txt")
        lines[key].append(f"{rel} {s} {e} {lab}")
    for name, ls in lines.items():
        (ann / name).write_text("\n".join(ls) + "\n")
    labels = root / "ucf_labels.csv"
    labels.write_text("id,name\n0,Abuse\n1,Arrest\n2,Arson\n7,Normal\n")
    return feats, labels


def test_anomalyclip_import(tmp_path):
    feats, labels = _anomalyclip_release(tmp_path / "rel")
    store = import_anomalyclip(tmp_path / "rel" / "Image-Features", tmp_path / "feat", "ucfcrime", labels_file=labels)
    assert sorted(store.videos("test")) == ["Abuse001_x264", "Normal_Videos_003_x264"]
    assert sorted(store.videos("train")) == ["Arson011_x264", "Normal_Videos_100_x264"]
    x = store.load("Abuse001_x264")
    assert x.shape == (30, D)
    np.testing.assert_array_equal(x, feats["Abuse001_x264"][:, 0])
    np.testing.assert_array_equal(store.frame_index("Abuse001_x264"), np.arange(30))
    assert store.num_frames("Abuse001_x264") == 30
    m = store.meta("Normal_Videos_003_x264")
    assert m["label"] == 0 and m["class_name"] == "normal"
    assert store.meta("Arson011_x264")["class_name"] == "Arson" and store.meta("Arson011_x264")["label"] == 1
    info = store.info
    assert info["source"] == "imported:anomalyclip" and info["real_weights"] is True
    assert info["backbone"] == "ViT-B-16" and info["pretrained"] == "openai"
    assert info["sampling"] == "frame" and info["crops"] == 1
    assert "anomalyclip" in layouts()


def test_anomalyclip_multicrop_rows_are_frame_major(tmp_path):
    feats, labels = _anomalyclip_release(tmp_path / "rel", ncrops=5)
    store = import_features("anomalyclip", tmp_path / "rel" / "Image-Features", tmp_path / "feat", "ucfcrime",
                            labels_file=labels, ncrops=5)
    x = store.load("Arson011_x264")
    assert x.shape == (25, 5, D)
    np.testing.assert_array_equal(x, feats["Arson011_x264"])


def test_anomalyclip_length_mismatch_and_missing_file(tmp_path):
    _, labels = _anomalyclip_release(tmp_path / "rel")
    np.save(tmp_path / "rel" / "Image-Features" / "Abuse" / "Abuse001_x264.npy", np.zeros((28, D), np.float32))
    with pytest.raises(DataError, match=r"Abuse001_x264\.npy: 28 frames of features but Anomaly_Test\.txt says"):
        import_anomalyclip(tmp_path / "rel" / "Image-Features", tmp_path / "feat", "ucfcrime", labels_file=labels)
    (tmp_path / "rel" / "Image-Features" / "Arson" / "Arson011_x264.npy").unlink()
    store = import_anomalyclip(tmp_path / "rel" / "Image-Features", tmp_path / "feat2", "ucfcrime",
                               labels_file=labels, on_error="skip")
    assert set(store.skipped) == {"Abuse001_x264", "Arson011_x264"}
    assert "does not exist" in store.skipped["Arson011_x264"]
    assert sorted(store.videos()) == ["Normal_Videos_003_x264", "Normal_Videos_100_x264"]


def test_anomalyclip_missing_annotations(tmp_path):
    (tmp_path / "Image-Features").mkdir()
    with pytest.raises(DataError, match="no AnomalyCLIP annotation list"):
        import_anomalyclip(tmp_path / "Image-Features", tmp_path / "feat", "ucfcrime")


def _vadclip_release(root, crops=10, n_snip=None):
    rng = np.random.default_rng(1)
    n_snip = n_snip or {"Abuse028_x264": 7, "Normal_Videos_003_x264": 4}
    cls = {"Abuse028_x264": "Abuse", "Normal_Videos_003_x264": "Testing_Normal_Videos_Anomaly"}
    feats = {}
    for v, n in n_snip.items():
        arr = rng.normal(size=(n, crops, D)).astype(np.float32)
        feats[v] = arr
        for k in range(crops):
            p = root / "UCFClipFeatures" / cls[v] / f"{v}__{k}.npy"
            p.parent.mkdir(parents=True, exist_ok=True)
            np.save(p, arr[:, k])
    lst = root / "ucf_CLIP_rgbtest.csv"
    rows = ["path,label"] + [f"/home/someone/UCFClipFeatures/{cls[v]}/{v}__{k}.npy,{'Normal' if 'Normal' in v else 'Abuse'}"
                             for v in n_snip for k in range(crops)]
    lst.write_text("\n".join(rows) + "\n")
    return feats, lst


def test_vadclip_ten_crop_import(tmp_path):
    feats, lst = _vadclip_release(tmp_path / "rel")
    store = import_vadclip(tmp_path / "rel" / "UCFClipFeatures", tmp_path / "feat", "ucfcrime",
                           lists={"test": lst}, num_frames={"Abuse028_x264": 110})
    assert sorted(store.videos("test")) == ["Abuse028_x264", "Normal_Videos_003_x264"]
    x = store.load("Abuse028_x264")
    assert x.shape == (7, 10, D)
    np.testing.assert_array_equal(x, feats["Abuse028_x264"])
    np.testing.assert_array_equal(store.frame_index("Abuse028_x264"), np.arange(7) * 16)
    assert store.num_frames("Abuse028_x264") == 110 and store.num_frames("Normal_Videos_003_x264") == 64
    assert store.meta("Normal_Videos_003_x264")["label"] == 0 and store.meta("Abuse028_x264")["label"] == 1
    info = store.info
    assert info["sampling"] == "snippet" and info["snippet_len"] == 16 and info["crops"] == 10
    assert info["source"] == "imported:vadclip" and info["real_weights"] is True
    # snippet rows expand back onto the 110 frames: 16 frames per row, tail → last row
    per_frame = expand_to_frames(np.arange(7.0), store.frame_index("Abuse028_x264"), 110)
    assert list(per_frame[:16]) == [0.0] * 16 and per_frame[-1] == 6.0 and per_frame[96] == 6.0


def test_vadclip_single_crop_and_scan_without_lists(tmp_path):
    feats, _ = _vadclip_release(tmp_path / "rel")
    store = import_vadclip(tmp_path / "rel" / "UCFClipFeatures", tmp_path / "feat", "ucfcrime", crop=5,
                           splits={"Abuse028_x264": "test", "Normal_Videos_003_x264": "test"})
    assert store.info["crops"] == 1
    np.testing.assert_array_equal(store.load("Abuse028_x264"), feats["Abuse028_x264"][:, 5])
    assert store.meta("Normal_Videos_003_x264")["label"] == 0  # class folder *Normal*
    ten = import_vadclip(tmp_path / "rel" / "UCFClipFeatures", tmp_path / "feat", "ucfcrime")
    assert ten.path != store.path  # 1-crop and 10-crop imports are different stores


def test_vadclip_bad_inputs(tmp_path):
    _, lst = _vadclip_release(tmp_path / "rel")
    root = tmp_path / "rel" / "UCFClipFeatures"
    with pytest.raises(DataError, match="do not fit the video's 300 frames"):
        import_vadclip(root, tmp_path / "feat", "ucfcrime", lists={"test": lst}, num_frames={"Abuse028_x264": 300})
    (root / "Abuse" / "Abuse028_x264__3.npy").unlink()
    with pytest.raises(DataError, match="different or unsupported crop counts"):
        import_vadclip(root, tmp_path / "feat2", "ucfcrime", lists={"test": lst})
    np.save(root / "Abuse" / "Abuse028_x264__3.npy", np.zeros((6, D), np.float32))
    store = import_vadclip(root, tmp_path / "feat3", "ucfcrime", lists={"test": lst}, on_error="skip")
    assert "differ in shape" in store.skipped["Abuse028_x264"] and store.videos() == ["Normal_Videos_003_x264"]
    with pytest.raises(DataError, match="no '<video>__<crop>.npy' feature files"):
        (tmp_path / "empty").mkdir()
        import_vadclip(tmp_path / "empty", tmp_path / "feat", "ucfcrime")
    with pytest.raises(ConfigError, match="unknown feature layout 'i3d'"):
        import_features("i3d", root, tmp_path / "feat", "ucfcrime")
