"""The ``extract`` stage: every video of one dataset streamed through the frozen open_clip backbone
into the feature store (one ``.npy`` per video + an index of backbone, weights, preprocessing,
sampling, crops); finished videos are not recomputed.

Writes every output ``dvc.yaml`` lists: the store under ``out/<item>`` (``data/features/<item>``) and
``store.json`` under ``ctx.out_dir`` (``reports/extract/<item>``), which later stages read.
"""

from __future__ import annotations

from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

from vadlib.config import bounded
from vadlib.io import write_json
from vadlib.stages._params import StageContext, from_section, notebook_params, split_params

STAGE = "extract"


@dataclass
class Params:
    """``params.yaml: extract`` and its defaults (meanings there)."""

    run_on: list[str] = field(default_factory=lambda: ["demo_a", "demo_b"])
    out: str = "data/features"
    sampling: Literal["frame", "every", "snippet"] = "every"
    stride: int = bounded(2, min=1)              # every n-th frame (sampling=every)
    snippet_len: int = bounded(16, min=1)        # frames per snippet (sampling=snippet)
    crops: Literal[1, 5, 10] = 1
    clip_len: Optional[int] = None               # video backbones: frames per clip (None = the checkpoint's)
    clip_stride: Optional[int] = None            # video backbones: frames between clip starts (None = clip_len)
    batch_size: int = bounded(32, min=1)
    num_workers: int = bounded(0, min=0)
    on_error: Literal["raise", "skip"] = "raise"
    resize: Literal["shorter", "squash"] = "shorter"   # shorter side then centre crop | whole frame squashed


def run(params: Params | Mapping | None, ctx: StageContext) -> dict:
    """Extract dataset ``ctx.item``. Returns ``{"store": FeatureStore, "backbone", "rows": [{video, rows,
    frames}]}``."""
    import torch

    from vadlib.data import get_dataset
    from vadlib.features import load_backbone
    from vadlib.features.backbones.base import is_clip_backbone
    from vadlib.features.extract import ExtractConfig, extract_dataset

    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    item = ctx.item
    torch.manual_seed(ctx.seed)
    dataset = get_dataset(item, **ctx.datasets[item])
    bb = load_backbone(ctx.backbone["name"], ctx.backbone["pretrained"], device=ctx.device,
                       precision=ctx.backbone.get("precision", "fp32"),   # backbone.precision (issue 15)
                       clip_len=p.clip_len)
    clip = is_clip_backbone(bb)   # a video backbone samples clips, whatever p.sampling
    if clip:
        print(f"video backbone: clips of {bb.clip_len} frames, one every {p.clip_stride or bb.clip_len} frames; "
              f"prompts scored by the {bb.text_path}")
    print(f"precision {bb.precision} ({bb.precision_reason})")
    if not bb.real_weights:
        print("WARNING — RANDOM WEIGHTS: every feature of this run comes from an untrained backbone.")
    cfg = ExtractConfig(sampling="clip" if clip else p.sampling, stride=p.stride, snippet_len=p.snippet_len,
                        crops=p.crops, clip_len=p.clip_len, clip_stride=p.clip_stride,
                        batch_size=p.batch_size, num_workers=p.num_workers, device=ctx.device,
                        on_error=p.on_error, resize=p.resize)
    store = extract_dataset(dataset, bb, Path(p.out), cfg)
    rows = [{"video": v, "rows": store.load(v).shape[0], "frames": store.num_frames(v)} for v in store.videos()]
    write_json(ctx.out_dir / "store.json", {"store": str(store.path), "dataset": item,
                                            "backbone": bb.name, "pretrained": bb.pretrained,
                                            "real_weights": bb.real_weights, "videos": len(rows)})
    return {"store": store, "backbone": bb, "rows": rows}


def run_notebook_params(params: Mapping[str, Any] | None = None, item: str | None = None) -> dict:
    """What ``notebooks/extract.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s
    for ``item``, default the first of ``run_on``)."""
    section, ctx = split_params(notebook_params(params, STAGE, item), STAGE)
    return run(section, ctx)
