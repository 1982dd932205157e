"""A planted-signal transfer benchmark whose truth is known (issue 4, item 7).

Text and "visual" features live in one space: the text features of the tiny random open_clip
text encoder (``vadlib-tiny``, random weights — the geometry is arbitrary but shared by both
sides, which is all the benchmark needs). A frame feature is

    x_t = normalize( s_video + γ · T(normal description) + α · a_t · T(anomaly description_k)
                     + ρ · drift_t + σ · ε_t )

* ``s_video``: the dataset's scene vector (random, different for source and target) plus a small
  per-video jitter — the two datasets have **different normal content**, and their normal
  descriptions differ too;
* ``a_t ∈ {0, 1}``: contiguous anomaly intervals; the anomaly direction is the text feature of
  the event's description (**shared anomaly semantics**: source and target events are described
  in the same text space; the target has classes the source never shows);
* ``drift_t``: slow AR(1) content change; ``ε_t``: white per-frame noise that a temporal model
  can average out.

Source training videos carry weak video labels only (MIL); target test videos carry frame labels.
:func:`vadlib.bench.transfer.run_planted` trains on the source and scores the target with the
ablations of :mod:`vadlib.methods.transfer.model` (``python -m vadlib.bench transfer`` prints the table).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from vadlib.methods.transfer.model import TargetPrompts, VideoFeatures, text_encoder_for


@dataclass
class PlantedTransferConfig:
    """Knobs of the planted benchmark (defaults are what the tests assert on)."""

    seed: int = 0
    n_train: int = 48
    abnormal_fraction: float = 0.5
    n_test: int = 24
    length: tuple = (64, 128)
    anomaly_length: tuple = (20, 48)
    scene: float = 0.3
    alpha: float = 0.6
    gamma: float = 0.6
    jitter: float = 0.1
    drift: float = 0.1
    noise: float = 0.25
    source_normal: str = "students walking across a university campus"
    target_normal: str = "people walking on a pedestrian walkway"
    source_anomalies: list = field(default_factory=lambda: ["a person riding a bicycle", "a person running fast",
                                                            "two people fighting"])
    target_anomalies: list = field(default_factory=lambda: ["a person riding a bicycle", "a person on a skateboard",
                                                            "a small cart on a walkway"])


def tiny_text_backbone(seed: int = 0):
    """The tiny random-weight open_clip model (text encoder = the benchmark's shared space)."""
    from vadlib.features import load_backbone

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_backbone("vadlib-tiny", "random")


def _video(rng: np.random.Generator, scene: np.ndarray, normal_dir: np.ndarray, anomaly_dirs: list,
           cfg: PlantedTransferConfig, abnormal: bool, name: str, label_frames: bool) -> VideoFeatures:
    d = scene.shape[0]
    n = int(rng.integers(cfg.length[0], cfg.length[1] + 1))
    s = scene + cfg.jitter * rng.standard_normal(d) / np.sqrt(d)
    a = np.zeros(n, np.uint8)
    base = np.tile(s + cfg.gamma * normal_dir, (n, 1))
    if abnormal:
        k = int(rng.integers(len(anomaly_dirs)))
        ln = int(rng.integers(cfg.anomaly_length[0], min(cfg.anomaly_length[1], n - 1) + 1))
        st = int(rng.integers(0, n - ln + 1))
        a[st:st + ln] = 1
        base = base + cfg.alpha * a[:, None] * anomaly_dirs[k][None]
    drift = np.zeros((n, d))
    z = rng.standard_normal(d) / np.sqrt(d)
    for t in range(n):
        z = 0.95 * z + np.sqrt(1 - 0.95 ** 2) * rng.standard_normal(d) / np.sqrt(d)
        drift[t] = z
    x = base + cfg.drift * drift + cfg.noise * rng.standard_normal((n, d))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return VideoFeatures(name=name, feats=x.astype(np.float32), frame_index=np.arange(n), n_frames=n,
                         label=int(abnormal), frame_labels=a if label_frames else None)


def make_planted_transfer(cfg: PlantedTransferConfig, backbone=None) -> tuple[dict, dict, object]:
    """Build the benchmark. Returns ``(data, prompts, backbone)``: ``data[(dataset, split)]`` =
    list of :class:`VideoFeatures` for ``("source", "train")`` and ``("target", "test")``;
    ``prompts["target"]`` the target's semantic prompts (its normal and anomaly descriptions)."""
    backbone = backbone or tiny_text_backbone(0)
    enc = text_encoder_for(backbone)
    rng = np.random.default_rng(cfg.seed)
    d = backbone.embed_dim
    t = lambda texts: enc(texts).cpu().numpy().astype(np.float64)  # noqa: E731
    scenes = cfg.scene * rng.standard_normal((2, d)) / np.sqrt(d)
    src_n, tgt_n = t([cfg.source_normal])[0], t([cfg.target_normal])[0]
    src_a, tgt_a = list(t(cfg.source_anomalies)), list(t(cfg.target_anomalies))
    n_ab = int(round(cfg.abnormal_fraction * cfg.n_train))
    train = [_video(rng, scenes[0], src_n, src_a, cfg, i < n_ab, f"src_{i:03d}", False) for i in range(cfg.n_train)]
    test = [_video(rng, scenes[1], tgt_n, tgt_a, cfg, i % 4 != 3, f"tgt_{i:03d}", True) for i in range(cfg.n_test)]
    data = {("source", "train"): train, ("target", "test"): test}
    prompts = {"target": TargetPrompts(normal=[cfg.target_normal],
                                       anomaly={f"a{i}": s for i, s in enumerate(cfg.target_anomalies)})}
    return data, prompts, backbone
