"""The ``demo`` stage: the generated two-scene benchmark (people walking along walkways; five anomaly
classes), deterministic from ``seed``, written in the layouts real datasets use.

Writes every output ``dvc.yaml`` lists: the dataset under ``root`` (``data/demo``) and, under
``ctx.out_dir`` (``reports/demo``), ``<scene>_anomalies.{png,pdf}`` (an anomalous frame of each
anomalous test video, its mask outlined in red).
"""

from __future__ import annotations

from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from vadlib.stages._params import StageContext, from_section, notebook_params, split_params

STAGE = "demo"
SCENES = ("demo_a", "demo_b")


@dataclass
class Params:
    """``params.yaml: demo`` and its defaults."""

    root: str = "data/demo"      # where the benchmark is written (generated from the top-level seed)
    size: str = "small"          # tiny | small | ...


def run(params: Params | Mapping | None, ctx: StageContext, figures: bool = True) -> dict:
    """Generate the benchmark (finished scenes are kept) and its figures. Returns ``{"datasets":
    {scene: VideoDataset}, "summary": DataFrame (one row per video), "figures": [paths]}``."""
    import pandas as pd

    from vadlib.data import get_dataset
    from vadlib.synthetic.demo import generate_demo

    p = params if is_dataclass(params) else from_section(Params, params, STAGE)
    generate_demo(p.root, seed=ctx.seed, size=p.size)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    datasets = {name: get_dataset(name, root=p.root) for name in SCENES}
    rows = []
    for name, ds in datasets.items():
        for split in ("train", "test"):
            for v in ds.videos(split):
                rows.append({"dataset": name, "split": split, "video": v.name, "label": v.label,
                             "class": v.class_name, "frames": v.num_frames,
                             "anomalous frames": None if v.frame_labels is None else int(v.frame_labels.sum())})
    res = {"datasets": datasets, "summary": pd.DataFrame(rows)}
    res["figures"] = write_figures(datasets, ctx.out_dir) if figures else []
    return res


def write_figures(datasets: Mapping, out: Path) -> list[Path]:
    """``<scene>_anomalies``: the middle anomalous frame of each anomalous test video, mask outlined."""
    import cv2
    import matplotlib.pyplot as plt

    from vadlib.report.plots import save_figure

    paths = []
    for name, ds in datasets.items():
        vids = [v for v in ds.videos("test") if v.label == 1]
        fig, axes = plt.subplots(1, len(vids), figsize=(2.6 * len(vids), 2.4), squeeze=False)
        for ax, v in zip(axes[0], vids):
            t = int(np.flatnonzero(v.frame_labels)[len(np.flatnonzero(v.frame_labels)) // 2])
            frame = v.open().get([t])[0].copy()
            mask = v.masks()[t].astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(frame, contours, -1, (255, 0, 0), 1)
            ax.imshow(frame)
            ax.set_title(f"{v.name}\n{v.class_name} (frame {t})", fontsize=7)
            ax.axis("off")
        fig.suptitle(f"{name}", fontsize=9)
        save_figure(fig, Path(out) / f"{name}_anomalies")
        paths.append(Path(out) / f"{name}_anomalies.png")
    return paths


def run_notebook_params(params: Mapping[str, Any] | None = None) -> dict:
    """What ``notebooks/demo.py`` calls: papermill's ``params`` (or, run by hand, ``params.yaml``'s)."""
    section, ctx = split_params(notebook_params(params, STAGE), STAGE)
    return run(section, ctx)
