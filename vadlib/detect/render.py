"""What ``vadlib detect`` draws and writes: the scores table, events.json, the timeline figure, the
annotated MP4 and the DPAM patch-level heat maps blended into it."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import DataError
from vadlib.events import Threshold


def patch_heat_maps(backbone, video, frame_index: np.ndarray, fired: np.ndarray, normal_text, anomaly_text,
                    tau: float = 0.07, max_values: int = 200_000_000,
                    zhou_prompts: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """DPAM patch-level maps (Zhou et al.; :mod:`vadlib.methods.zeroshot.dpam`) of the encoded frames
    ``frame_index (N,)``, each against [the mean normal text, the anomaly text ``anomaly_text[fired[i]]``]
    (``normal_text (Kn, D)``, ``anomaly_text (Ka, D)``, frozen CLIP space).

    Returns ``(frame_index (N,), maps (N, H, W) float16 in [0, 1])`` (red = anomalous patches), or
    None when ``N·H·W`` exceeds ``max_values`` (said on stderr). ``zhou_prompts``: a Zhou et al. prompt
    checkpoint (``--heatmap-prompts``): its learned prompts draw the map instead (:mod:`vadlib.compat.zhou`)."""
    import torch

    from vadlib.methods.zeroshot.dpam import DPAMEncoder, frame_anomaly_maps

    src = video.open()
    h, w = src.size
    frame_index = np.asarray(frame_index, np.int64)
    fired = np.asarray(fired, np.int64)
    if len(frame_index) * h * w > max_values:
        print(f"{video.name}: heat map skipped ({len(frame_index)} maps of {h}x{w} would not fit)", file=sys.stderr)
        return None
    if zhou_prompts:
        from vadlib.compat.zhou import detect_heat_maps

        return detect_heat_maps(zhou_prompts, backbone, video, frame_index)
    enc = DPAMEncoder(backbone)
    normal_text = torch.as_tensor(normal_text, dtype=torch.float32)
    anomaly_text = torch.as_tensor(anomaly_text, dtype=torch.float32)
    normal = torch.nn.functional.normalize(normal_text.reshape(-1, normal_text.shape[-1]).mean(0), dim=-1)
    maps = np.zeros((len(frame_index), h, w), np.float16)
    for j in np.unique(fired):
        rows = np.flatnonzero(fired == j)
        text = torch.stack([normal, torch.nn.functional.normalize(anomaly_text[int(j)], dim=-1)])
        for k in range(0, len(rows), 16):
            r = rows[k:k + 16]
            m, _ = frame_anomaly_maps(enc, src.get([int(frame_index[i]) for i in r]), text,
                                      backbone.image_size, backbone.mean, backbone.std, tau)
            maps[r] = np.clip(m, 0.0, 1.0)
    return frame_index, maps


def write_outputs(out: Path, path: Path, res: dict, events, threshold: Threshold, labels, meta: dict,
                  video_out: bool = True) -> None:
    """scores.csv/.parquet, events.json, timeline.png, annotated.mp4 into ``out`` (a fresh folder)."""
    import pandas as pd

    from vadlib.io import write_json

    n, fps = res["n_frames"], res["fps"]
    df = pd.DataFrame({"frame": np.arange(n), "time_s": np.arange(n) / fps, "score": res["scores"]})
    if res["fired"] is not None and labels:
        df["fired"] = [labels[i] for i in res["fired"]]
    df.to_csv(out / "scores.csv", index=False)
    df.to_parquet(out / "scores.parquet", index=False)
    write_json(out / "events.json", {"video": str(path), "fps": fps, "n_frames": n,
                                     "threshold": asdict(threshold), "events": [asdict(e) for e in events],
                                     **meta})
    plot_timeline(out / "timeline.png", path, res["scores"], events, threshold, fps, meta)
    if video_out:
        annotate_video(out / "annotated.mp4", path, res["scores"], events, threshold, heat=res.get("heat"))


def plot_timeline(target: Path, path: Path, scores: np.ndarray, events, threshold: Threshold, fps: float,
                  meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from vadlib.data import open_video
    from vadlib.report.plots import mark_random

    k = min(len(events), 6)
    fig = plt.figure(figsize=(10, 3.2 + (1.6 if k else 0)))
    ax = fig.add_axes([0.09, 0.38 if k else 0.15, 0.88, 0.55 if k else 0.75])   # room for the y label
    t = np.arange(len(scores)) / fps
    ax.plot(t, scores, lw=1.2)
    source = threshold.source if len(threshold.source) <= 90 else threshold.source[:87] + "..."
    ax.axhline(threshold.value, ls="--", color="tab:red", lw=1, label=f"threshold {threshold.value:.4g} ({source})")
    for e in events:
        ax.axvspan(e.start_s, e.end_s, color="tab:red", alpha=0.15, lw=0)
    ax.set(xlabel="time (s)", ylabel="anomaly score", title=f"{path.name} — {meta.get('method')}")
    ax.legend(fontsize=7, loc="upper right")
    if k:
        src = open_video(path)
        frames = src.get([e.peak_frame for e in events[:k]])
        for i, (e, fr) in enumerate(zip(events[:k], frames)):
            a = fig.add_axes([0.09 + i * 0.15, 0.02, 0.14, 0.24])
            a.imshow(fr)
            a.set_title(f"{e.peak_frame / fps:.1f}s {e.label or ''}"[:40], fontsize=6)
            a.axis("off")
    mark_random(fig, bool(meta.get("real_weights", True)))
    fig.savefig(target, dpi=120)
    plt.close(fig)


def annotate_video(target: Path, path: Path, scores: np.ndarray, events, threshold: Threshold,
                   batch_size: int = 64, heat: tuple[np.ndarray, np.ndarray] | None = None,
                   alpha: float = 0.45) -> None:
    """Write the input with a score bar and the event label per frame (same frame count); with
    ``heat = (frame_index, maps)`` the patch-level map of the last encoded frame at or before each
    frame is blended in as a colour map (JET; red = anomalous patches)."""
    import cv2

    from vadlib.data import iter_batches, open_video

    src = open_video(path)
    h, w = src.size
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), float(src.fps or DEFAULT_FPS), (w, h))
    if not writer.isOpened():
        raise DataError(target, "OpenCV cannot open an mp4v writer here")
    label_at = {}
    for e in events:
        for f in range(e.start, e.end + 1):
            label_at[f] = e.label or "anomaly"
    hi = max(float(np.max(scores)), threshold.value, 1e-9)
    lo = min(float(np.min(scores)), 0.0)
    try:
        for idx, frames in iter_batches(src, range(len(src)), batch_size):
            for i, fr in zip(idx, frames):
                img = cv2.cvtColor(fr, cv2.COLOR_RGB2BGR)
                if heat is not None:
                    k = int(np.searchsorted(heat[0], i, side="right")) - 1
                    m = np.clip(np.asarray(heat[1][max(k, 0)], np.float32), 0, 1)
                    col = cv2.applyColorMap((m * 255).astype(np.uint8), cv2.COLORMAP_JET)
                    img = cv2.addWeighted(img, 1 - alpha, col, alpha, 0)
                frac = (scores[i] - lo) / (hi - lo + 1e-12)
                bar_h = max(4, h // 30)
                cv2.rectangle(img, (0, h - bar_h), (int(frac * (w - 1)), h - 1),
                              (0, 0, 255) if i in label_at else (0, 200, 0), -1)
                tx = int((threshold.value - lo) / (hi - lo + 1e-12) * (w - 1))
                cv2.line(img, (tx, h - bar_h), (tx, h - 1), (255, 255, 255), 1)
                if i in label_at:
                    cv2.putText(img, label_at[i][:40], (4, max(12, h // 12)), cv2.FONT_HERSHEY_SIMPLEX,
                                max(0.3, w / 900), (0, 0, 255), 1, cv2.LINE_AA)
                writer.write(img)
    finally:
        writer.release()
