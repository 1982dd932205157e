"""`vadlib search`: ranking, one hit per event (NMS), the page; planted features whose truth is known."""

from __future__ import annotations

import numpy as np

from vadlib.data import Video
from vadlib.prompts.text import encode_prompts
from vadlib.search import collection_videos, precision_at_k, search, write_page


class PlantedStore:
    """A feature store stand-in: rows are noise, except planted spans along a text direction."""

    def __init__(self, feats: dict, step: int):
        self.feats, self.step = feats, step

    def load(self, name):
        return self.feats[name]

    def frame_index(self, name):
        return np.arange(len(self.feats[name])) * self.step


def test_search_ranks_planted_moments_first(tiny_backbone, tmp_path):
    queries = ["a person riding a bicycle", "a person falling down"]
    text = encode_prompts(tiny_backbone, queries, ("{}", "a photo of {}.")).numpy()
    rng = np.random.default_rng(0)
    d = text.shape[1]
    feats, truth = {}, {}
    for i in range(6):
        f = rng.normal(size=(40, d)).astype(np.float32)
        if i in (1, 4):  # video 1: bicycle at rows 10..14; video 4: falling at rows 25..29
            q = 0 if i == 1 else 1
            span = slice(10, 15) if i == 1 else slice(25, 30)
            f[span] += 6 * text[q] * np.sqrt(d)
            truth[f"v{i}"] = (span.start * 2, span.stop * 2)
        feats[f"v{i}"] = f
    videos = [Video(name=k, path=tmp_path, split="c", fps=10) for k in feats]
    hits = search(queries, PlantedStore(feats, step=2), videos, tiny_backbone, sigma=1.0, radius_s=2.0, top_k=4)
    assert {h.video for h in hits[:2]} == {"v1", "v4"}
    assert {h.query for h in hits[:2]} == set(queries)
    rel = lambda v, f: v in truth and truth[v][0] <= f < truth[v][1]  # noqa: E731
    assert precision_at_k(hits[:2], rel) == 1.0
    # NMS: one event gives one hit, not five neighbouring rows
    assert sum(rel(h.video, h.frame) for h in hits) == 2


def test_search_page_and_collection(tmp_path, tiny_backbone):
    import cv2

    folder = tmp_path / "col"
    (folder / "clipA").mkdir(parents=True)
    for t in range(5):
        cv2.imwrite(str(folder / "clipA" / f"{t:03d}.png"), np.full((16, 16, 3), t * 40, np.uint8))
    name, vids = collection_videos(str(folder))
    assert name == "col" and [v.name for v in vids] == ["clipA"]
    from vadlib.search import Hit

    hits = [Hit(rank=1, video="clipA", frame=3, time_s=0.12, score=0.9, query="q")]
    write_page(tmp_path / "out", hits, vids, "search: q", real_weights=False)
    page = (tmp_path / "out" / "index.html").read_text()
    assert "RANDOM WEIGHTS" in page and "thumbs/001.jpg" in page
    assert (tmp_path / "out" / "thumbs" / "001.jpg").stat().st_size > 0


def test_precision_per_class_on_a_planted_collection():
    """Each class's description finds its own planted events first (orthogonal text directions); the NMS
    radius (5 s) is longer than the longest planted event (15 encoded frames × 8 / 25 fps = 4.8 s)."""
    from vadlib.search import precision_table
    from vadlib.synthetic.planted_search import planted_collection

    queries = ["cyclist", "cart", "running", "falling", "loitering"]
    text = np.eye(5, 64, dtype=np.float32)
    store, videos, events = planted_collection(text, n_videos=40, seed=1, strength=(0.8, 1.2))
    rows = precision_table(queries, store, videos, None, events, ks=(1, 5), text=text, sigma=1.0, radius_s=5.0)
    for r in rows:
        assert r["events"] >= 5 and r["P@1"] == 1.0 and r["P@5"] >= 0.8, r
    # one hit per planted event: no two of the top 5 hits of a class fall in the same event
    from vadlib.search import search

    hits = search(["cyclist"], store, videos, None, top_k=5, text=text[:1], sigma=1.0, radius_s=5.0)
    owners = [next(i for i, ev in enumerate(events) if ev[0] == h.video and ev[2] <= h.frame < ev[3]) for h in hits]
    assert len(set(owners)) == len(owners)


def test_label_events_hand_worked():
    from vadlib.search import label_events

    v = Video(name="v", path=".", split="test", fps=25.0)
    v.frame_classes = np.array([0, 0, 2, 2, 2, 0, 1, 1])
    names = ["normal", "cyclist", "cart"]
    assert label_events([v], ["cyclist", "cart"], names) == [("v", 1, 2, 5), ("v", 0, 6, 8)]
    assert label_events([v], ["cyclist"], names) == [("v", 0, 6, 8)]


def test_search_bench_on_the_demo_collection(tiny_backbone, tmp_path):
    """(a) of `python -m vadlib.bench search` on a tiny generated demo_b: the annotated events are found from
    the frame labels, and when features are planted on exactly those frames every class's description finds
    its own event first (the relevance judgement follows the real labels)."""
    import vadlib.data.demo as demo
    import vadlib.synthetic.demo as renderer
    from vadlib.data import get_dataset
    from vadlib.search import demo_precision_table, label_events, precision_table
    from vadlib.synthetic.planted_search import ArrayStore

    root = renderer.generate_demo(tmp_path / "demo", seed=0, size="tiny", scenes=("b",),
                              test_anomalous=len(demo.DEMO_CLASSES), test_normal=1)
    params = tmp_path / "params.yaml"
    params.write_text(f"datasets:\n  demo_b:\n    root: {root}\n")
    rows, queries = demo_precision_table("demo_b", "test", tiny_backbone, tmp_path / "features", every=2, ks=(1, 5),
                                         params_file=str(params))
    ds = get_dataset("demo_b", root)
    assert queries == [ds.descriptions[c] for c in demo.DEMO_CLASSES] and len(rows) == len(queries)
    videos = ds.videos("test")
    for r, c in zip(rows, demo.DEMO_CLASSES):
        assert r["events"] >= 1, r                               # one anomalous test video per class
        assert 0 <= r["P@1"] <= 1 and 0 <= r["P@5"] <= 1
        labelled = np.concatenate([v.frame_classes[::2] for v in videos])
        assert np.isclose(r["chance"], np.mean(labelled == ds.class_names.index(c)))
    assert (tmp_path / "features" / "search_demo_b").is_dir()        # encoded once, in the search store
    # planted along the text directions on the labelled frames: each description's first hit is its event
    classes = list(demo.DEMO_CLASSES)
    events = label_events(videos, classes, ds.class_names)
    text = np.eye(len(classes), 64, dtype=np.float32)
    rng = np.random.default_rng(0)
    feats = {}
    for v in videos:
        fc = v.frame_classes[::2]
        f = rng.normal(size=(len(fc), 64)).astype(np.float32)
        for c in range(len(classes)):
            f[fc == c + 1] += 8 * text[c] * 8
        feats[v.name] = f
    planted = precision_table(queries, ArrayStore(feats, 2), videos, None, events, ks=(1,), text=text)
    assert all(r["P@1"] == 1.0 for r in planted), planted


def test_a_video_replaced_under_the_same_name_is_encoded_again(tiny_backbone, tmp_path):
    """The collection store is keyed by file identity as well as name: a video replaced (or another
    folder of the same name) never gets the features of the one that was there before."""
    import shutil

    import cv2

    from vadlib.search import collection_store

    def clip(folder, value):
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(6):
            img = np.full((32, 32, 3), value, np.uint8)
            img[:, : 4 * t + 4] = 255 - value
            cv2.imwrite(str(folder / f"{t:03d}.png"), img)

    col = tmp_path / "col"
    clip(col / "a", 10)
    clip(col / "b", 200)
    name, vids = collection_videos(str(col))
    store = collection_store(name, vids, tiny_backbone, tmp_path / "feats", every=2, progress=False)
    before = {v.name: store.load(v.name).copy() for v in vids}
    assert not np.allclose(before["a"], before["b"])
    # an unchanged collection is read back from the store
    again = collection_store(name, vids, tiny_backbone, tmp_path / "feats", every=2, progress=False)
    assert np.array_equal(again.load("a"), before["a"]) and again.keys == store.keys
    # "a" replaced by b's frames (new files, same name): its features are b's now
    shutil.rmtree(col / "a")
    clip(col / "a", 200)
    name, vids = collection_videos(str(col))
    after = collection_store(name, vids, tiny_backbone, tmp_path / "feats", every=2, progress=False)
    assert after.keys["a"] != store.keys["a"] and after.keys["b"] == store.keys["b"]
    assert np.allclose(after.load("a"), before["b"], atol=1e-5)
    assert len(after.frame_index("a")) == 3 and after.num_frames("a") == 6


def test_dataset_spec_one_parser_one_default(tmp_path):
    """``dataset:NAME[:SPLIT]`` (search collections and detect's --calibrate): SPLIT defaults to train, ``all``
    is every split, an unknown split or a malformed spec is refused naming the argument."""
    import json

    import pytest

    from vadlib.errors import ConfigError
    from vadlib.search import DEFAULT_SPLIT, dataset_spec_videos
    from vadlib.synthetic.flow import write_video

    vids = {k: str(write_video(tmp_path / k, n=4, size=(24, 32), seed=i)) for i, k in enumerate(("a", "b", "c"))}
    (tmp_path / "m.json").write_text(json.dumps({
        "train": {"s": [{"video_path": vids["a"], "anomaly": 0}, {"video_path": vids["b"], "anomaly": 1}]},
        "test": {"s": [{"video_path": vids["c"], "anomaly": 0}]}}))
    params = tmp_path / "params.yaml"
    params.write_text(f"datasets:\n  manifest:\n    root: {tmp_path / 'm.json'}\n")
    assert DEFAULT_SPLIT == "train"
    _, default = dataset_spec_videos("dataset:manifest", str(params))
    _, train = dataset_spec_videos("dataset:manifest:train", str(params))
    _, every = dataset_spec_videos("dataset:manifest:all", str(params))
    assert [v.name for v in default] == [v.name for v in train] and len(train) == 2
    assert {v.split for v in every} == {"train", "test"} and len(every) == 3
    name, coll = collection_videos("dataset:manifest", str(params))  # search collections use the same parser
    assert [v.name for v in coll] == [v.name for v in train]
    with pytest.raises(ConfigError, match="--calibrate dataset:manifest:val: .*has no split 'val'"):
        dataset_spec_videos("dataset:manifest:val", str(params), "--calibrate")
    with pytest.raises(ConfigError, match="expected dataset:NAME"):
        dataset_spec_videos("dataset:", str(params))


def test_search_collection_is_the_command_as_a_function(tiny_backbone, tmp_path):
    """``vadlib.search_collection``: a folder of videos → ranked hits, features cached in the collection store."""
    import vadlib
    from vadlib.synthetic.flow import write_video

    for i in range(2):
        write_video(tmp_path / "coll" / f"v{i}", n=12, size=(32, 40), seed=i)
    hits = vadlib.search_collection("a square;;a dog", str(tmp_path / "coll"), tiny_backbone,
                                    features=tmp_path / "features", every=2, top_k=3)
    assert 1 <= len(hits) <= 3 and [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))
    assert {h.query for h in hits} <= {"a square", "a dog"} and {h.video for h in hits} <= {"v0", "v1"}
    assert any((tmp_path / "features").rglob("*.npy"))
