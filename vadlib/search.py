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
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadlib.errors import ConfigError, DataError, cli_errors


@dataclass
class Hit:
    rank: int
    video: str
    frame: int
    time_s: float
    score: float
    query: str


DATASET_PREFIX = "dataset:"
DEFAULT_SPLIT = "train"  # of ``dataset:NAME`` (normal reference footage must never come from a test split)


def dataset_spec_videos(spec: str, params_file: str = "params.yaml", where: str = "collection"):
    """The one parser of ``dataset:NAME[:SPLIT]``: ``(dataset, videos of SPLIT)``, the dataset opened with its
    options from ``params_file``'s ``datasets`` section. SPLIT defaults to :data:`DEFAULT_SPLIT`; ``all`` is
    every split. ``where`` names the argument in errors."""
    from vadlib.data import get_dataset
    from vadlib.config import load_params

    name, _, split = spec[len(DATASET_PREFIX):].partition(":")
    if not spec.startswith(DATASET_PREFIX) or not name or ":" in split:
        raise ConfigError(f"{where} {spec!r}: expected dataset:NAME[:SPLIT]")
    split = split or DEFAULT_SPLIT
    from vadlib.config import validate_datasets

    datasets = load_params(params_file).get("datasets") or {}
    opts = validate_datasets({name: datasets[name]} if name in datasets else {}, str(params_file)).get(name, {})
    ds = get_dataset(name, **opts)
    if split != "all" and split not in ds.splits:
        raise ConfigError(f"{where} {spec}: dataset {name!r} has no split {split!r} "
                          f"(has: {', '.join(ds.splits)}, or all)")
    return ds, [v for s in (ds.splits if split == "all" else [split]) for v in ds.videos(s)]


def collection_videos(collection: str, params_file: str = "params.yaml"):
    """``Video`` records of a folder or ``dataset:NAME[:SPLIT]`` (:func:`dataset_spec_videos`)."""
    from vadlib.data import Video
    from vadlib.data.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    if collection.startswith(DATASET_PREFIX):
        ds, videos = dataset_spec_videos(collection, params_file)
        return ds.name, videos
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

    def load_aux(self, name: str) -> np.ndarray:
        return self.store.load_aux(self.keys[name])

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
    from vadlib.features.backbones.base import is_clip_backbone

    if is_clip_backbone(backbone):   # a video backbone: clips of its own length, one starting every `every` frames
        cfg = ExtractConfig(sampling="clip", clip_stride=every, device=device, progress=progress)
    else:
        cfg = ExtractConfig(sampling="every", stride=every, device=device, progress=progress)
    return CollectionStore(extract_dataset(ds, backbone, Path(features), cfg, splits=("collection",)), keys)


def _check_finite(feats: np.ndarray, store, name: str) -> None:
    """NaN/inf in a video's cached features would drop it silently from the ranking: refuse, naming the file."""
    bad = ~np.isfinite(feats.reshape(len(feats), -1)).all(1)
    if bad.any():
        try:
            where = Path(store.path) / store.meta(name)["file"]
        except Exception:                                   # a store without files (in memory)
            where = Path(str(getattr(store, "path", name)))
        rows = np.flatnonzero(bad)
        raise DataError(where, f"features of video '{name}' hold NaN or inf in {len(rows)} of {len(feats)} rows "
                        f"(first: row {rows[0]}); the file is corrupt or was encoded by a diverged model: "
                        f"delete the feature store {getattr(store, 'path', '')} to encode the collection again")


def search(queries: list[str], store, videos, backbone, sigma: float = 1.0, radius_s: float = 2.0,
           top_k: int = 10, templates: tuple[str, ...] = ("{}", "a photo of {}."),
           text: np.ndarray | None = None) -> list[Hit]:
    """Rank frames (or clips) of ``videos`` (already in ``store``) by max cosine to any of ``queries``
    (``text``: their embeddings ``(Q, D)`` when already encoded, scored as the text tower's).

    The cosine follows the backbone's text path: its text tower (CLIP, ActionCLIP), or X-CLIP's
    video-conditioned prompt generator over each clip's visual tokens (the store's aux array)."""
    from scipy.ndimage import gaussian_filter1d

    from vadlib.events import temporal_nms
    from vadlib.prompts.text import PromptEmbeddings

    if not queries:
        raise ConfigError("search needs at least one description")
    prompts = None
    if text is None:
        prompts = PromptEmbeddings(backbone, queries, templates)
        text = prompts.text.numpy()                                        # (Q, D)
    text = np.asarray(text, np.float32)
    if text.shape[0] != len(queries):
        raise ConfigError(f"search: {len(queries)} descriptions but {text.shape[0]} text embeddings")
    from vadlib.features.store import average_crops

    cands = []
    for v in videos:
        feats = np.asarray(store.load(v.name), np.float32)
        _check_finite(feats, store, v.name)
        feats = average_crops(feats)
        if prompts is not None and prompts.needs_aux:                     # X-CLIP: prompts conditioned per clip
            sim = prompts.cosine(feats, store.load_aux(v.name)).numpy()
        else:
            feats /= np.linalg.norm(feats, axis=1, keepdims=True) + 1e-12
            sim = feats @ text.T                                          # (N, Q)
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


def search_collection(text, collection: str, backbone, features: str | Path = "data/features", every: int = 8,
                      top_k: int = 10, sigma: float = 1.0, radius_s: float = 2.0, device: str = "cpu",
                      params_file: str = "params.yaml") -> list[Hit]:
    """``vadlib search`` as a function: the ``top_k`` moments of ``collection`` (a folder of videos or
    ``dataset:NAME[:SPLIT]``) that best match ``text`` (one description, ``a;;b``, or a list), one hit
    per event. ``backbone``: a loaded :class:`~vadlib.features.Backbone`. Features are read from (or
    added to) the collection's store under ``features`` (:func:`collection_store`)."""
    from vadlib.prompts.text import prompt_list

    queries = prompt_list(text, "text")
    name, videos = collection_videos(collection, params_file)
    store = collection_store(name, videos, backbone, features, every, device)
    return search(queries, store, videos, backbone, sigma=sigma, radius_s=radius_s, top_k=top_k)


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
    from vadlib.config import load_params

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


@cli_errors
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vadlib search", description=__doc__.split("\n\n")[0])
    ap.add_argument("text", help="a description; several with ';;' between them")
    ap.add_argument("collection", help=f"a folder of videos, or dataset:NAME[:SPLIT] (SPLIT: default {DEFAULT_SPLIT}; all)")
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--pretrained", default="openai")
    ap.add_argument("--every", type=int, default=8,
                    help="encode every n-th frame; video backbones (xclip, actionclip/...): a clip starts every n frames")
    ap.add_argument("--clip-len", type=int, default=None,
                    help="video backbones: frames per clip (default: the checkpoint's; an ActionCLIP file that does "
                         "not record it needs its model-zoo n-frame, 8, 16 or 32)")
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
    from vadlib.features import load_backbone
    from vadlib.io import atomic_dir
    from vadlib.prompts.text import prompt_list

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise DataError(out, "output folder exists; pass --overwrite to replace it")
    prompt_list(args.text, "text")  # checked before any model is loaded
    _, videos = collection_videos(args.collection, args.params)
    bb = load_backbone(args.backbone, args.pretrained, device=args.device, precision=args.precision,
                       clip_len=args.clip_len)
    hits = search_collection(args.text, args.collection, bb, args.features, args.every, args.top_k, args.sigma,
                             args.radius, args.device, args.params)
    with atomic_dir(out) as tmp:
        write_page(tmp, hits, videos, f"search: {args.text}", bb.real_weights)
    for h in hits:
        print(f"{h.rank:3d}  {h.score:.4f}  {h.video}  {h.time_s:7.2f}s  {h.query}")
    print(f"-> {out / 'index.html'}")
    return 0


class _CallableModule(types.ModuleType):
    """``vadlib.search(text, collection, backbone, ...)`` calls :func:`search_collection` (the module
    stays a module; a function of the same name in ``vadlib/__init__.py`` would be rebound by the import
    of this module, so the module itself is callable)."""

    def __call__(self, *args, **kwargs) -> list[Hit]:
        return search_collection(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


if __name__ == "__main__":
    raise SystemExit(main())

