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


def search(queries: list[str], store, videos, backbone, sigma: float = 1.0, radius_s: float = 2.0,
           top_k: int = 10, templates: tuple[str, ...] = ("{}", "a photo of {}.")) -> list[Hit]:
    """Rank frames of ``videos`` (already in ``store``) by max cosine to any of ``queries``."""
    from scipy.ndimage import gaussian_filter1d

    from vadlib.events import temporal_nms
    from vadlib.models.prompts import encode_prompts

    if not queries:
        raise ConfigError("search needs at least one description")
    text = encode_prompts(backbone, queries, templates).numpy()          # (Q, D)
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
    ap.add_argument("--params", default="params.yaml")
    args = ap.parse_args(argv)
    try:
        from vadlib.data import VideoDataset
        from vadlib.features import load_backbone
        from vadlib.features.extract import ExtractConfig, extract_dataset

        out = Path(args.out)
        if out.exists() and not args.overwrite:
            raise DataError(out, "output folder exists; pass --overwrite to replace it")
        name, videos = collection_videos(args.collection, args.params)
        bb = load_backbone(args.backbone, args.pretrained, device=args.device)
        ds = VideoDataset(name=f"search_{name}", root=Path(args.collection), splits={"collection": videos})
        cfg = ExtractConfig(sampling="every", stride=args.every, device=args.device)
        store = extract_dataset(ds, bb, Path(args.features), cfg, splits=("collection",))
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
