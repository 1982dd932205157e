"""``vadlib search "TEXT" COLLECTION``: rank moments across videos by similarity to descriptions.

The collection is a folder of videos / frames folders, or a registered dataset
(``dataset:NAME[:SPLIT]``, roots from params.yaml). Features come from (and go to) the feature
store, so a collection is encoded once. Per video the cosine similarity of each encoded frame to
the text is smoothed in time, and temporal non-maximum suppression keeps one hit per event.
Outputs: ``hits.csv`` (ranked) and ``index.html`` (thumbnails with timestamps).
"""

from __future__ import annotations

import argparse
import html
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadlib.errors import ConfigError, DataError, VadlibError


@dataclass
class Hit:
    rank: int
    video: str
    frame: int
    time_s: float
    score: float
    query: str


def collection_videos(collection: str, params_file: str = "params.yaml"):
    """``Video`` records of a folder or ``dataset:NAME[:SPLIT]`` (all splits when SPLIT is absent)."""
    from vadlib.data import Video, get_dataset
    from vadlib.data.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    if collection.startswith("dataset:"):
        parts = collection.split(":")
        name, split = parts[1], (parts[2] if len(parts) > 2 else None)
        from vadlib.pipeline import load_params

        opts = (load_params(params_file).get("datasets") or {}).get(name, {})
        ds = get_dataset(name, **opts)
        splits = [split] if split else list(ds.splits)
        return ds.name, [v for s in splits for v in ds.videos(s)]
    root = Path(collection)
    if not root.is_dir():
        raise DataError(root, "collection is neither a folder nor 'dataset:NAME[:SPLIT]'")
    vids = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS:
            vids.append(Video(name=str(p.relative_to(root).with_suffix("")), path=p, split="collection"))
        elif p.is_dir() and any(c.suffix.lower() in IMAGE_EXTENSIONS for c in p.iterdir()):
            vids.append(Video(name=str(p.relative_to(root)), path=p, split="collection"))
    if not vids:
        raise DataError(root, "collection folder holds no videos or frames folders")
    return root.name, vids


class CollectionStore:
    """A search collection's feature store seen under the videos' own names. Each video is stored under
    ``name#<file key>`` (size and modification time of its file(s)), so a video replaced or edited under
    the same name, or another folder of the same name holding other videos, is encoded afresh instead
    of being answered with stale features."""

    def __init__(self, store, keys: dict[str, str]):
        self.store, self.keys = store, dict(keys)
        self.path = store.path

    def has(self, name: str) -> bool:
        return name in self.keys and self.store.has(self.keys[name])

    def load(self, name: str, mmap: bool = False) -> np.ndarray:
        return self.store.load(self.keys[name], mmap=mmap)

    def frame_index(self, name: str) -> np.ndarray:
        return self.store.frame_index(self.keys[name])

    def num_frames(self, name: str) -> int:
        return self.store.num_frames(self.keys[name])

    def meta(self, name: str) -> dict:
        return self.store.meta(self.keys[name])


def collection_store(name: str, videos, backbone, features: str | Path = "data/features", every: int = 8,
                     device: str = "cpu", progress: bool = True) -> CollectionStore:
    """The feature store of a search collection (``<features>/search_<name>/…``), encoding only the videos
    not in it yet (by name *and* file identity: :class:`CollectionStore`); kept apart from the pipeline's
    (DVC-tracked) per-dataset stores."""
    import dataclasses

    from vadlib.data import VideoDataset
    from vadlib.io import file_key
    from vadlib.features.extract import ExtractConfig, extract_dataset

    keys, keyed = {}, []
    for v in videos:
        try:
            k = f"{v.name}#{file_key(Path(v.path), with_path=False)}"
        except OSError as exc:
            raise DataError(Path(v.path), f"cannot read the video ({exc.strerror or exc})") from exc
        keys[v.name] = k
        keyed.append(dataclasses.replace(v, name=k))
    ds = VideoDataset(name=f"search_{name}", root=Path(features), splits={"collection": keyed})
    cfg = ExtractConfig(sampling="every", stride=every, device=device, progress=progress)
    return CollectionStore(extract_dataset(ds, backbone, Path(features), cfg, splits=("collection",)), keys)


def search(queries: list[str], store, videos, backbone, sigma: float = 1.0, radius_s: float = 2.0,
           top_k: int = 10, templates: tuple[str, ...] = ("{}", "a photo of {}."),
           text: np.ndarray | None = None) -> list[Hit]:
    """Rank frames of ``videos`` (already in ``store``) by max cosine to any of ``queries``
    (``text``: their embeddings ``(Q, D)`` when already encoded)."""
    from scipy.ndimage import gaussian_filter1d

    from vadlib.events import temporal_nms
    from vadlib.models.prompts import encode_prompts

    if not queries:
        raise ConfigError("search needs at least one description")
    if text is None:
        text = encode_prompts(backbone, queries, templates).numpy()      # (Q, D)
    text = np.asarray(text, np.float32)
    if text.shape[0] != len(queries):
        raise ConfigError(f"search: {len(queries)} descriptions but {text.shape[0]} text embeddings")
    cands = []
    for v in videos:
        feats = np.asarray(store.load(v.name), np.float32)
        if feats.ndim == 3:
            feats = feats.mean(1)
        feats /= np.linalg.norm(feats, axis=1, keepdims=True) + 1e-12
        sim = feats @ text.T                                              # (N, Q)
        best_q = sim.argmax(1)
        s = sim.max(1)
        if sigma and len(s) > 1:
            s = gaussian_filter1d(s, sigma, mode="nearest")
        fi = store.frame_index(v.name)
        step = max(1, int(np.median(np.diff(fi)))) if len(fi) > 1 else 1
        radius = max(1, int(round(radius_s * v.fps / step)))
        for i in temporal_nms(s, radius, top_k):
            cands.append((float(s[i]), v, int(fi[i]), queries[int(best_q[i])]))
    cands.sort(key=lambda c: -c[0])
    return [Hit(rank=r + 1, video=v.name, frame=f, time_s=f / v.fps, score=sc, query=q)
            for r, (sc, v, f, q) in enumerate(cands[:top_k])]


def write_page(out: Path, hits: list[Hit], videos, title: str, real_weights: bool) -> None:
    """hits.csv + index.html with a thumbnail per hit."""
    import cv2
    import pandas as pd

    from vadlib.io import atomic_path

    out.mkdir(parents=True, exist_ok=True)
    (out / "thumbs").mkdir(exist_ok=True)
    pd.DataFrame([h.__dict__ for h in hits]).to_csv(out / "hits.csv", index=False)
    by_name = {v.name: v for v in videos}
    rows = []
    for h in hits:
        frame = by_name[h.video].open().get([h.frame])[0]
        thumb = f"thumbs/{h.rank:03d}.jpg"
        cv2.imwrite(str(out / thumb), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        rows.append(f"<tr><td>{h.rank}</td><td><img src='{thumb}' height='96'></td>"
                    f"<td>{html.escape(h.video)}</td><td>{h.time_s:.2f} s (frame {h.frame})</td>"
                    f"<td>{h.score:.4f}</td><td>{html.escape(h.query)}</td></tr>")
    warn = "" if real_weights else "<p style='color:red'><b>RANDOM WEIGHTS</b>: plumbing check only.</p>"
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head><body>"
            f"<h1>{html.escape(title)}</h1>{warn}<table border='1' cellpadding='4'>"
            "<tr><th>rank</th><th>frame</th><th>video</th><th>time</th><th>score</th><th>description</th></tr>"
            + "".join(rows) + "</table></body></html>")
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page, encoding="utf-8")


def precision_at_k(hits: list[Hit], relevant) -> float:
    """Fraction of hits for which ``relevant(video, frame)`` is true."""
    return float(np.mean([bool(relevant(h.video, h.frame)) for h in hits])) if hits else float("nan")


class ArrayStore:
    """A feature store stand-in over arrays: ``load(name)`` → ``(N, D)``, ``frame_index(name)`` → rows × step."""

    def __init__(self, feats: dict[str, np.ndarray], step: int):
        self.feats, self.step = feats, int(step)

    def load(self, name: str) -> np.ndarray:
        return self.feats[name]

    def frame_index(self, name: str) -> np.ndarray:
        return np.arange(len(self.feats[name])) * self.step


def planted_collection(text: np.ndarray, n_videos: int = 30, rows: int = 200, step: int = 8, seed: int = 0,
                       strength: tuple[float, float] = (0.15, 0.6)):
    """Features whose truth is known: noise rows, plus events (5–15 rows) of each class where the rows
    move towards that class's text direction ``text[c]`` by a random strength. Returns
    ``(store, videos, events)`` with ``events = [(video, class, first_frame, end_frame)]``."""
    from vadlib.data import Video

    rng = np.random.default_rng(seed)
    d = text.shape[1]
    feats, events = {}, []
    for i in range(n_videos):
        f = rng.normal(size=(rows, d)).astype(np.float32)
        for _ in range(int(rng.integers(0, 3))):
            c = int(rng.integers(len(text)))
            a = int(rng.integers(0, rows - 15))
            n = int(rng.integers(5, 16))
            f[a:a + n] += float(rng.uniform(*strength)) * np.sqrt(d) * text[c]
            events.append((f"v{i:02d}", c, a * step, (a + n) * step))
        feats[f"v{i:02d}"] = f
    videos = [Video(name=k, path=Path(k), split="planted", fps=25.0) for k in feats]
    return ArrayStore(feats, step), videos, events


def precision_table(queries: list[str], store, videos, backbone, events, ks=(1, 5, 10), text: np.ndarray | None = None,
                    **kw) -> list[dict]:
    """precision@k of each description's search against the planted (or annotated) events of its class
    (P@k ≤ events/k when a class has fewer than k events)."""
    rows = []
    for c, q in enumerate(queries):
        hits = search([q], store, videos, backbone, top_k=max(ks), text=None if text is None else text[c:c + 1], **kw)
        rel = lambda v, f, c=c: any(ev[0] == v and ev[1] == c and ev[2] <= f < ev[3] for ev in events)  # noqa: E731
        rows.append({"description": q, "events": sum(ev[1] == c for ev in events),
                     **{f"P@{k}": precision_at_k(hits[:k], rel) for k in ks}})
    return rows


def label_events(videos, classes: list[str], class_names: list[str]) -> list[tuple[str, int, int, int]]:
    """Annotated events of ``videos`` (their per-frame class ids): ``[(video, c, first_frame, end_frame)]``
    with ``c`` the index of the class in ``classes`` (runs of one class id in ``frame_classes``)."""
    events = []
    for v in videos:
        fc = getattr(v, "frame_classes", None)
        if fc is None:
            continue
        fc = np.asarray(fc, np.int64)
        edges = np.flatnonzero(np.diff(np.r_[-1, fc, -1]))
        for a, b in zip(edges[:-1], edges[1:]):
            name = class_names[int(fc[a])]
            if name in classes:
                events.append((v.name, classes.index(name), int(a), int(b)))
    return events


def demo_precision_table(dataset: str = "demo_b", split: str = "test", backbone=None, features: str | Path = "data/features",
                         every: int = 2, ks=(1, 5, 10), sigma: float = 1.0, radius_s: float = 1.0,
                         params_file: str = "params.yaml") -> tuple[list[dict], list[str]]:
    """precision@k of each anomaly class's description (the dataset's own) searched with ``backbone`` in the
    annotated videos of ``dataset``/``split``, features from (or added to) the store ``vadlib search
    dataset:NAME`` uses (:func:`collection_store`).
    Rows also give ``chance`` = the class's share of the encoded frames (the expected P@k of a random ranking).
    Returns ``(rows, queries)``."""
    from vadlib.data import get_dataset
    from vadlib.pipeline import load_params

    opts = (load_params(params_file).get("datasets") or {}).get(dataset, {})
    ds = get_dataset(dataset, **opts)
    if split not in ds.splits:
        raise ConfigError(f"dataset {dataset!r} has no split {split!r} (has: {', '.join(ds.splits)})")
    videos = [v for v in ds.videos(split) if v.frame_classes is not None]
    if not videos:
        raise DataError(Path(str(opts.get("root", dataset))), f"{dataset}/{split} has no per-frame class labels")
    classes = [c for c in ds.class_names[1:] if c in ds.descriptions]
    queries = [ds.descriptions[c] for c in classes]
    store = collection_store(ds.name, videos, backbone, features, every, progress=False)
    events = label_events(videos, classes, list(ds.class_names))
    rows = precision_table(queries, store, videos, backbone, events, ks=ks, sigma=sigma, radius_s=radius_s)
    labels = {v.name: np.asarray(v.frame_classes)[store.frame_index(v.name)] for v in videos}
    encoded = np.concatenate(list(labels.values()))
    for r, c in zip(rows, classes):
        r["chance"] = float(np.mean(encoded == ds.class_names.index(c)))
    return rows, queries


def bench_search(argv: list[str] | None = None) -> int:
    """``python -m vadlib.bench search [--backbone ViT-B-16 --pretrained openai] [--seeds 0 1 2]``:
    precision@1/5/10 of each demo anomaly class's description (a) on the annotated demo_b test videos
    with the backbone (random weights: chance level expected) and (b) on a planted collection whose truth
    is known (features = noise + the class's text direction on planted events; any weights)."""
    import pandas as pd

    from vadlib.data.demo import DEMO_DESCRIPTIONS
    from vadlib.errors import WeightsUnavailableError
    from vadlib.features import load_backbone
    from vadlib.models.prompts import encode_prompts

    ap = argparse.ArgumentParser(prog="vadlib.bench search")
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--pretrained", default="openai")
    ap.add_argument("--dataset", default="demo_b", help="(a): an annotated dataset (roots from --params)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--every", type=int, default=2, help="(a): encode every n-th frame")
    ap.add_argument("--features", default="data/features", help="(a): feature root (the store vadlib search uses)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="(b): planted collections")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--precision", default="auto", help="(a): image encoder precision (auto, fp32, bf16)")
    a = ap.parse_args(argv or [])
    cols = ["events", "chance", "P@1", "P@5", "P@10"]
    try:
        bb = load_backbone(a.backbone, a.pretrained, precision=a.precision)
    except WeightsUnavailableError as exc:
        print(f"(a) not run: {exc}")
        bb = None
    if bb is not None:
        rows, _ = demo_precision_table(a.dataset, a.split, bb, a.features, a.every, params_file=a.params)
        mark = "" if bb.real_weights else " — RANDOM WEIGHTS: chance level expected, plumbing check only"
        print(f"(a) {a.dataset}/{a.split}, {a.backbone}/{a.pretrained}, 1 frame in {a.every}, smoothing σ=1 row, "
              f"NMS radius 1 s{mark}")
        print(pd.DataFrame(rows).set_index("description")[cols].round(3).to_string())
    # (b) the planted collection only needs the backbone's text directions: any weights will do
    tb = bb or load_backbone(a.backbone, "random")
    queries = list(DEMO_DESCRIPTIONS.values())
    text = encode_prompts(tb, queries, ("{}", "a photo of {}.")).numpy()
    tables = []
    for seed in a.seeds:
        store, videos, events = planted_collection(text, seed=seed)
        df = pd.DataFrame(precision_table(queries, store, videos, tb, events, text=text, sigma=1.0, radius_s=5.0))
        df.insert(0, "seed", seed)
        tables.append(df)
    df = pd.concat(tables)
    print(f"(b) PLANTED collection (truth known by construction, not real video): {len(a.seeds)} seeds × 30 videos × "
          f"200 encoded rows (1 in 8); events of the demo classes planted as noise + the class's text direction of "
          f"{tb.name}/{tb.pretrained} (real_weights={tb.real_weights}); smoothing σ=1 row, NMS radius 5 s")
    cos = text @ text.T
    print(f"cosine between different descriptions' embeddings: mean {cos[~np.eye(len(text), dtype=bool)].mean():.3f} "
          "(similar descriptions retrieve each other's events); P@k ≤ events/k")
    print(df.groupby("description", sort=False)[["events", "P@1", "P@5", "P@10"]].mean().round(3).to_string())
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vadlib search", description=__doc__.split("\n\n")[0])
    ap.add_argument("text", help="a description; several with ';;' between them")
    ap.add_argument("collection", help="a folder of videos, or dataset:NAME[:SPLIT]")
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--pretrained", default="openai")
    ap.add_argument("--every", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--sigma", type=float, default=1.0, help="smoothing of similarities (encoded frames)")
    ap.add_argument("--radius", type=float, default=2.0, help="NMS radius in seconds")
    ap.add_argument("--features", default="data/features", help="feature store root (shared with the pipeline)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="image encoder precision: auto = bf16 on CPUs with AMX / AVX-512-BF16, else fp32")
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    try:
        from vadlib.features import load_backbone

        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise DataError(out, "output folder exists; pass --overwrite to replace it")
        name, videos = collection_videos(args.collection, args.params)
        bb = load_backbone(args.backbone, args.pretrained, device=args.device, precision=args.precision)
        store = collection_store(name, videos, bb, args.features, args.every, args.device)
        queries = [q.strip() for q in args.text.split(";;") if q.strip()]
        hits = search(queries, store, videos, bb, sigma=args.sigma, radius_s=args.radius, top_k=args.top_k)
        from vadlib.io import atomic_dir

        with atomic_dir(out) as tmp:
            write_page(tmp, hits, videos, f"search: {args.text}", bb.real_weights)
        for h in hits:
            print(f"{h.rank:3d}  {h.score:.4f}  {h.video}  {h.time_s:7.2f}s  {h.query}")
        print(f"-> {out / 'index.html'}")
    except VadlibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
