"""CLIP zero-shot scoring behind the :class:`~vadlib.methods.base.Method` protocol, registered as
``zeroshot``: no ``fit`` (the prompts are its only parameters); ``predict`` on ``(T, D)`` image features,
``save`` / ``load`` of the encoded prompts (a loaded one scores without a backbone), ``feature_spec``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from vadlib.errors import ConfigError
from vadlib.methods.base import METHODS, UntrainedMethod, check_config_preset, read_presets

_PRESETS = read_presets(Path(__file__).with_name("presets"))


@dataclass
class ZeroShotConfig:
    """The prompts (``normal``: texts; ``anomaly``: class -> text), ``templates`` (None: the default
    ensemble), ``tau`` and the ``score`` predicted (``softmax`` or ``max_cos``)."""

    normal: list[str] = field(default_factory=list)
    anomaly: dict[str, str] = field(default_factory=dict)
    templates: list[str] | str | None = None   # a list, or a template set name ("actionclip")
    tau: float = 0.01
    score: str = "softmax"

    @classmethod
    def from_dict(cls, d: Mapping) -> "ZeroShotConfig":
        from vadlib.config import check

        return check(cls, d, "zeroshot config")       # unknown keys and wrong types raise ConfigError

    def to_dict(self) -> dict:
        return {"normal": list(self.normal), "anomaly": dict(self.anomaly),
                "templates": None if self.templates is None else (self.templates if isinstance(self.templates, str) else list(self.templates)), "tau": float(self.tau),
                "score": self.score}


class _EncodedPrompts(torch.nn.Module):
    """The encoded prompts as buffers (what a saved zero-shot method holds)."""

    def __init__(self, normal: torch.Tensor, anomaly: torch.Tensor):
        super().__init__()
        self.register_buffer("normal", torch.as_tensor(normal, dtype=torch.float32))
        self.register_buffer("anomaly", torch.as_tensor(anomaly, dtype=torch.float32))


@METHODS.register("zeroshot")
class ZeroShotMethod(UntrainedMethod):
    """CLIP zero-shot prompt scores (:class:`~vadlib.methods.zeroshot.model.ZeroShotScorer`).

    ``ZeroShotMethod(cfg, class_names, feat_dim, backbone=bb)`` encodes the prompts with the backbone's
    text tower; ``text_embeddings=(normal (Kn, D), anomaly (Ka, D))`` gives them already encoded.
    ``class_names``: ``["normal", *anomaly classes]`` (checked against the prompts; None: taken from them).
    """

    name = "zeroshot"
    has_class_probs = True
    why_no_fit = "zero-shot scoring has no training; its prompts are its only parameters"

    def __init__(self, cfg: Mapping, class_names: Sequence[str] | None, feat_dim: int, *, backbone=None,
                 text_embeddings: tuple[np.ndarray, np.ndarray] | None = None, **_):
        from vadlib.methods.zeroshot.model import SCORES, ZeroShotScorer
        from vadlib.prompts.text import PromptSet, resolve_templates

        self.cfg = ZeroShotConfig.from_dict(cfg)
        c = self.cfg
        if not c.normal or not c.anomaly:
            raise ConfigError("zeroshot: the config needs 'normal' prompts and 'anomaly' prompts (class -> text); "
                              "give them as overrides of the preset, e.g. params.yaml: zeroshot.prompts")
        if c.score not in SCORES:
            raise ConfigError(f"zeroshot: unknown score '{c.score}' (known: {', '.join(SCORES)})")
        prompts = PromptSet(normal=list(c.normal), anomaly=dict(c.anomaly),
                            templates=resolve_templates(c.templates, "zeroshot templates"))
        if text_embeddings is None:
            if backbone is None:
                raise ConfigError("zeroshot: needs a CLIP backbone to encode its prompts (backbone=...), or the "
                                  "encoded prompts (text_embeddings=(normal, anomaly)) as a saved one holds")
            text = None
        else:
            text = tuple(torch.as_tensor(np.asarray(t), dtype=torch.float32) for t in text_embeddings)
        self.scorer = ZeroShotScorer(backbone, prompts, tau=c.tau, text=text)
        self.module = _EncodedPrompts(self.scorer.normal_text, self.scorer.anomaly_text)
        self.class_names = list(self.scorer.class_names)
        if class_names is not None and list(class_names) != self.class_names:
            raise ConfigError(f"zeroshot: class_names {list(class_names)} differ from the prompts' classes "
                              f"{self.class_names} (normal first, then the anomaly prompts' classes in order)")
        d = int(self.module.normal.shape[1])
        if feat_dim not in (None, -1) and int(feat_dim) != d:
            raise ConfigError(f"zeroshot: feat_dim {feat_dim} differs from the text embeddings' width {d}")
        self.feat_dim = d

    @classmethod
    def preset(cls, preset: str, overrides: Mapping | None = None) -> dict:
        """``presets/<preset>.yaml`` (``default``) with ``overrides`` (the prompts)."""
        check_config_preset(cls.name, preset, tuple(_PRESETS))
        return {**_PRESETS[preset], **dict(overrides or {})}

    @classmethod
    def example(cls, class_names, feat_dim, *, text_embeddings=None, epochs: int = 2) -> "ZeroShotMethod":
        """One prompt per anomaly class, encoded as ``text_embeddings`` (A, D) (random when None); the
        normal prompt's embedding is the negated mean of the anomaly ones."""
        if text_embeddings is None:
            text_embeddings = np.random.default_rng(0).standard_normal((len(class_names) - 1, feat_dim))
        a = torch.nn.functional.normalize(torch.as_tensor(np.asarray(text_embeddings), dtype=torch.float32), dim=-1)
        n = torch.nn.functional.normalize(-a.mean(0, keepdim=True), dim=-1)
        cfg = cls.preset("default", {"normal": ["normal"], "anomaly": {c: c for c in class_names[1:]}})
        return cls(cfg, class_names, feat_dim, text_embeddings=(n, a))

    def predict(self, videos: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """``{video: (T, D)}`` → ``{video: (scores (T,) of the config's score, class probs (T, C))}``."""
        self.check_inputs(videos)
        out = {}
        for k, f in videos.items():
            o = self.scorer.score(f)
            out[k] = (getattr(o, self.cfg.score), o.class_probs)
        return out

    @classmethod
    def load(cls, ck: Mapping, path: Path, backbone=None) -> "ZeroShotMethod":
        """From the stored encoded prompts (no backbone needed)."""
        sd = ck["state_dict"]
        m = cls(ck["config"], ck["class_names"], ck["feat_dim"], text_embeddings=(sd["normal"], sd["anomaly"]))
        m._load_state(sd, path, strict=True)
        return m
