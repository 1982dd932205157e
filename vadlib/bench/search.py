"""precision@1/5/10 of ``vadlib search``: ``python -m vadlib.bench search [--backbone … --pretrained …] [--seeds …]``.

(a) on the annotated videos of a dataset (``--dataset demo_b``) with the backbone, when its weights load;
(b) on planted collections (:mod:`vadlib.synthetic.planted_search`) whose truth is known.
"""

from __future__ import annotations

import argparse

import numpy as np

from vadlib.search import demo_precision_table, precision_table
from vadlib.synthetic.planted_search import planted_collection


def main(argv: list[str] | None = None) -> int:
    """``python -m vadlib.bench search [--backbone ViT-B-16 --pretrained openai] [--seeds 0 1 2]``:
    precision@1/5/10 of each demo anomaly class's description (a) on the annotated demo_b test videos
    with the backbone (random weights: chance level expected) and (b) on a planted collection whose truth
    is known (features = noise + the class's text direction on planted events; any weights)."""
    import pandas as pd

    from vadlib.data.demo import DEMO_DESCRIPTIONS
    from vadlib.errors import WeightsUnavailableError
    from vadlib.features import load_backbone
    from vadlib.prompts.text import encode_prompts

    ap = argparse.ArgumentParser(prog="python -m vadlib.bench search", description=__doc__)
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--pretrained", default="openai")
    ap.add_argument("--dataset", default="demo_b", help="(a): an annotated dataset (roots from --params)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--every", type=int, default=2, help="(a): encode every n-th frame")
    ap.add_argument("--features", default="data/features", help="(a): feature root (the store vadlib search uses)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="(b): planted collections")
    ap.add_argument("--videos", type=int, default=30, help="(b): videos per planted collection")
    ap.add_argument("--planted-only", action="store_true", help="skip (a)")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="(a): image encoder precision (vadlib.features.precision)")
    a = ap.parse_args(argv or [])
    cols = ["events", "chance", "P@1", "P@5", "P@10"]
    bb = None
    try:
        bb = None if a.planted_only else load_backbone(a.backbone, a.pretrained, precision=a.precision)
    except WeightsUnavailableError as exc:
        print(f"(a) not run: {exc}")
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
        store, videos, events = planted_collection(text, n_videos=a.videos, seed=seed)
        df = pd.DataFrame(precision_table(queries, store, videos, tb, events, text=text, sigma=1.0, radius_s=5.0))
        df.insert(0, "seed", seed)
        tables.append(df)
    df = pd.concat(tables)
    print(f"(b) PLANTED collection (truth known by construction, not real video): {len(a.seeds)} seeds × {a.videos} videos × "
          f"200 encoded rows (1 in 8); events of the demo classes planted as noise + the class's text direction of "
          f"{tb.name}/{tb.pretrained} (real_weights={tb.real_weights}); smoothing σ=1 row, NMS radius 5 s")
    cos = text @ text.T
    print(f"cosine between different descriptions' embeddings: mean {cos[~np.eye(len(text), dtype=bool)].mean():.3f} "
          "(similar descriptions retrieve each other's events); P@k ≤ events/k")
    print(df.groupby("description", sort=False)[["events", "P@1", "P@5", "P@10"]].mean().round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
