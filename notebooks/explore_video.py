# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore a video
# Point this notebook at any video (or frames folder) and a list of descriptions; it shows the
# zero-shot anomaly timeline, the top frames, which description fired when, where in those frames
# (patch-level heat maps), and what happens to the timeline when a description is removed (prompt
# ablation). Not a DVC stage: run it by hand
# or with papermill:
#
# ```
# papermill notebooks/explore_video.ipynb out.ipynb -p video path/to/clip.mp4 -p prompts '["a person riding a bicycle"]'
# ```
# (`-p` hands papermill's parameters over as strings: a list parameter may be given as a JSON/YAML list,
# as here, or as one description; `-y 'prompts: [...]'` passes a real list.)
# (`jupytext --to ipynb notebooks/explore_video.py` makes the `.ipynb`.)

# %% tags=["parameters"]
video = ""
prompts = ["a person riding a bicycle", "a person falling down and lying on the ground"]
normal_prompts = ["people walking on a pedestrian walkway"]
backbone = "ViT-B-16"
pretrained = "openai"
every = 8
tau = 0.01
sigma = 2.0
top_k = 6

# %%
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from vadlib.data import Video
from vadlib.detect import ZeroShotMethod, as_prompt_list, score_video
from vadlib.events import temporal_nms
from vadlib.features import load_backbone
from vadlib.features.extract import ExtractConfig
from vadlib.report.plots import mark_random

try:  # vadlib's plotting modules select Agg on import (for the pipeline): show this notebook's figures inline
    get_ipython().run_line_magic("matplotlib", "inline")  # noqa: F821
except NameError:  # run as a plain script
    pass

if not video:
    raise ValueError("set the `video` parameter to a video file or frames folder")
prompts = as_prompt_list(prompts, "prompts")
normal_prompts = as_prompt_list(normal_prompts, "normal_prompts")
path = Path(video)
bb = load_backbone(backbone, pretrained)
cfg = ExtractConfig(sampling="every", stride=every)
method = ZeroShotMethod(bb, cfg, prompts=prompts, normal_prompts=normal_prompts, tau=tau)
res = score_video(path, method, sigma)
scores, fired, fps = res["scores"], res["fired"], res["fps"]
print(f"{res['n_frames']} frames, {res['realtime_factor']:.2f}x real time, real weights: {bb.real_weights}")
print(f"{len(prompts)} descriptions: {prompts}")

# %% [markdown]
# ## Timeline and which description fired

# %%
t = np.arange(len(scores)) / fps
fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
a1.plot(t, scores)
a1.set_ylabel("anomaly score (softmax)")
for i, p in enumerate(prompts):
    m = fired == i
    a2.scatter(t[m], np.full(m.sum(), i), s=3)
a2.set_yticks(range(len(prompts)), [p[:40] for p in prompts], fontsize=7)
a2.set_xlabel("time (s)")
mark_random(fig, bb.real_weights)

# %% [markdown]
# ## Top frames (one per event: temporal non-maximum suppression)

# %%
peaks = temporal_nms(scores, radius=int(2 * fps), top_k=top_k)
frames = Video(name=path.stem, path=path, split="x").open().get(peaks)
fig, axes = plt.subplots(1, len(peaks), figsize=(2.4 * len(peaks), 2.4), squeeze=False)
for ax, i, fr in zip(axes[0], peaks, frames):
    ax.imshow(fr)
    ax.set_title(f"{i / fps:.1f}s  {scores[i]:.3f}\n{prompts[fired[i]][:30]}", fontsize=7)
    ax.axis("off")
mark_random(fig, bb.real_weights)

# %% [markdown]
# ## Where in the frame: patch-level heat maps of the top frames
# DPAM maps (`vadlib.detect.patch_heat_maps`, the overlay `vadlib detect --heatmap` draws): each top
# frame's ViT patches against the normal descriptions and the description that fired there; red =
# patches closer to that description.

# %%
from vadlib.detect import patch_heat_maps

_, maps = patch_heat_maps(bb, Video(name=path.stem, path=path, split="x"), np.asarray(peaks), fired[peaks],
                          method.scorer.normal_text, method.scorer.anomaly_text)
fig, axes = plt.subplots(1, len(peaks), figsize=(2.4 * len(peaks), 2.4), squeeze=False)
for ax, i, fr, m in zip(axes[0], peaks, frames, maps):
    ax.imshow(fr)
    ax.imshow(m.astype(np.float32), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    ax.set_title(f"{i / fps:.1f}s {prompts[fired[i]][:30]}", fontsize=7)
    ax.axis("off")
mark_random(fig, bb.real_weights)

# %% [markdown]
# ## Prompt ablation: the timeline without each description

# %%
fig, ax = plt.subplots(figsize=(10, 3))
ax.plot(t, scores, label="all descriptions", lw=2)
for i, p in enumerate(prompts):
    rest = [q for j, q in enumerate(prompts) if j != i]
    if not rest:
        continue
    m = ZeroShotMethod(bb, cfg, prompts=rest, normal_prompts=normal_prompts, tau=tau)
    ax.plot(t, score_video(path, m, sigma, progress=False)["scores"], lw=1, label=f"without '{p[:30]}'")
ax.set(xlabel="time (s)", ylabel="score")
ax.legend(fontsize=7)
mark_random(fig, bb.real_weights)
