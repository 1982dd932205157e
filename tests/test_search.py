"""`vadlib search`: ranking, one hit per event (NMS), the page; planted features whose truth is known."""

from __future__ import annotations

import numpy as np

from vadlib.data import Video
from vadlib.models.prompts import encode_prompts
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
    from vadlib.search import planted_collection, precision_table

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
