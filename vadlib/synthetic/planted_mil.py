"""A planted-signal feature benchmark where the truth is known (for the weakly supervised methods).

Feature sequences with CLIP-like geometry (raw, unnormalised features as CLIP's ``visual``
outputs them):

* a prototype ``μ`` (D,) of norm ``proto_norm``; normal frames = ``μ`` + the offset of one of
  ``n_scenes`` scenes shared by normal and abnormal videos (std ``scene_std``) + a small per-video
  offset (``video_std``) + temporally correlated noise (AR(1), per-dimension std ``noise``);
* ``n_classes`` anomaly classes with unit directions ``u_c`` (random, near-orthogonal); an
  abnormal video of class ``c`` adds ``strength · u_c`` (with a soft onset) over one span of
  ``span`` (fraction range) of its frames;
* "text features" of the classes planted near the directions: ``t_c = μ + text_scale · u_c + ε``,
  ``ε ~ N(0, text_noise²)`` per dimension (the stand-in for CLIP text embeddings of class names —
  AnomalyCLIP sees them through its trainable text projection, :class:`EmbeddingText`);
* training videos carry the video label and class only (weak labels); test videos carry per-frame
  labels and classes.

Sizes: ``"test"`` (tiny, for unit tests), ``"small"``, ``"shanghaitech"`` (≈ 240 training videos —
63 abnormal + 177 normal as ShanghaiTech's weakly supervised split — × ≈ 1000 frames × 512-d; test
40 videos × 1000 frames = 40,000 frames, for the speed benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vadlib.errors import ConfigError


@dataclass
class PlantedVideo:
    """One generated video: ``features`` (T, D) float32, weak labels, and frame truth."""

    name: str
    features: np.ndarray
    label: int
    class_id: int
    frame_labels: np.ndarray
    frame_classes: np.ndarray


@dataclass
class PlantedBenchmark:
    """Generated train/test videos, class names (0 = ``normal``), text embeddings (A, D), truth."""

    train: list[PlantedVideo]
    test: list[PlantedVideo]
    class_names: list[str]
    text_embeddings: np.ndarray
    prototype: np.ndarray
    directions: np.ndarray
    params: dict = field(default_factory=dict)


SIZES: dict[str, dict] = {
    "test": dict(dim=64, n_classes=4, n_train_abnormal=32, n_train_normal=32, n_test=16, frames=(200, 256)),
    "small": dict(dim=128, n_classes=5, n_train_abnormal=40, n_train_normal=60, n_test=30, frames=(200, 500)),
    "shanghaitech": dict(dim=512, n_classes=17, n_train_abnormal=63, n_train_normal=177, n_test=40,
                         frames=(1000, 1000)),
}


def make_planted_mil(size: str = "test", seed: int = 0, *, strength: float = 3.0, noise: float = 0.5,
                 proto_norm: float = 10.0, scene_std: float = 0.3, n_scenes: int = 4, video_std: float = 0.05, text_scale: float = 3.0,
                 text_noise: float = 0.1, span: tuple[float, float] = (0.15, 0.4),
                 test_abnormal_fraction: float = 0.6, **overrides) -> PlantedBenchmark:
    """Generate the planted benchmark (deterministic in ``seed``). See the module docstring."""
    if size not in SIZES:
        raise ConfigError(f"unknown planted size '{size}'; known: {', '.join(SIZES)}")
    p = {**SIZES[size], **overrides}
    D, C = int(p["dim"]), int(p["n_classes"])
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=D)
    mu *= proto_norm / np.linalg.norm(mu)
    U = np.linalg.qr(rng.normal(size=(D, max(C, 1))))[0].T[:C]          # (C, D) orthonormal
    U = U.astype(np.float64)
    names = ["normal"] + [f"class_{i + 1}" for i in range(C)]
    text = mu[None] + text_scale * U + rng.normal(scale=text_noise, size=(C, D))
    lo, hi = p["frames"]
    scenes = rng.normal(scale=scene_std, size=(n_scenes, D))

    def video(name: str, cls: int, with_truth: bool) -> PlantedVideo:
        T = int(rng.integers(lo, hi + 1))
        scene = scenes[rng.integers(n_scenes)] + rng.normal(scale=video_std, size=D)
        # AR(1) noise along time: correlated like consecutive video frames
        eps = rng.normal(size=(T, D)).astype(np.float32)
        a = 0.8
        out = np.empty_like(eps)
        out[0] = eps[0]
        for t in range(1, T):
            out[t] = a * out[t - 1] + np.sqrt(1 - a * a) * eps[t]
        x = (mu + scene)[None].astype(np.float32) + noise * out
        fl = np.zeros(T, np.uint8)
        fc = np.zeros(T, np.int64)
        if cls:
            n = max(2, int(rng.uniform(*span) * T))
            s = int(rng.integers(0, T - n + 1))
            ramp = np.minimum(1.0, np.minimum(np.arange(n) + 1, n - np.arange(n)) / 2.0)
            x[s:s + n] += (strength * ramp[:, None] * U[cls - 1][None]).astype(np.float32)
            fl[s:s + n] = 1
            fc[s:s + n] = cls
        return PlantedVideo(name, x.astype(np.float32), int(cls > 0), int(cls), fl, fc)

    train = [video(f"train_abn_{i:03d}", 1 + i % C, False) for i in range(p["n_train_abnormal"])]
    train += [video(f"train_nor_{i:03d}", 0, False) for i in range(p["n_train_normal"])]
    n_abn = int(round(p["n_test"] * test_abnormal_fraction))
    test = [video(f"test_abn_{i:03d}", 1 + i % C, True) for i in range(n_abn)]
    test += [video(f"test_nor_{i:03d}", 0, True) for i in range(p["n_test"] - n_abn)]
    return PlantedBenchmark(train=train, test=test, class_names=names, text_embeddings=text.astype(np.float32),
                            prototype=mu.astype(np.float32), directions=U.astype(np.float32),
                            params=dict(size=size, seed=seed, strength=strength, noise=noise,
                                        proto_norm=proto_norm, scene_std=scene_std, n_scenes=n_scenes, video_std=video_std, text_scale=text_scale,
                                        text_noise=text_noise, span=list(span), **p))
