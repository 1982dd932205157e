"""Sultani MIL ranking and RTFM top-k behind the :class:`~vadlib.methods.base.Method` protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from vadlib.methods.base import METHODS, Method, WeakVideo, check_config_preset, read_presets
from vadlib.methods.mil import model as mil

_PRESETS = read_presets(Path(__file__).with_name("presets"))
#: dataset presets: the papers' settings are used for every dataset; ``demo`` is short
DATASET_PRESETS = ("shanghaitech", "ucf_crime", "xd_violence", "demo")


class _MILMethod(Method):
    defaults: dict = {}

    def __init__(self, cfg: Mapping, class_names, feat_dim: int, **_):
        self.cfg = mil.MILConfig.from_dict({**self.defaults, **dict(cfg)})
        self.class_names = list(class_names)
        self.feat_dim = int(feat_dim)
        self._segs: dict[str, np.ndarray] = {}

    @classmethod
    def preset(cls, preset: str, overrides: Mapping | None = None) -> dict:
        """The dataset preset's changes to the paper settings (``presets/<preset>.yaml``) with
        ``overrides`` (the paper settings themselves are applied when the method is built)."""
        check_config_preset(cls.name, preset, DATASET_PRESETS)
        return {**_PRESETS[preset], **dict(overrides or {})}

    @classmethod
    def example(cls, class_names, feat_dim, *, text_embeddings=None, epochs: int = 2) -> "_MILMethod":
        """The ``demo`` preset shrunk (hidden 16, 8 segments, batch 8)."""
        return cls(cls.preset("demo", {"epochs": epochs, "hidden": 16, "num_segments": 8, "batch_size": 8}),
                   class_names, feat_dim)

    def _seg(self, v: WeakVideo) -> np.ndarray:
        if v.name not in self._segs:
            self._segs[v.name] = mil.segment_means(v.features, self.cfg.num_segments, self.cfg.normalize_frames)
        return self._segs[v.name]

    def batch(self, abn, nor, rng):
        return (torch.from_numpy(np.stack([self._seg(v) for v in abn])),
                torch.from_numpy(np.stack([self._seg(v) for v in nor])))

    def optimizer(self):
        c = self.cfg
        if c.optimizer == "adagrad":
            return torch.optim.Adagrad(self.module.parameters(), lr=c.lr, eps=1e-8, weight_decay=c.weight_decay)
        return torch.optim.Adam(self.module.parameters(), lr=c.lr, weight_decay=c.weight_decay)


@METHODS.register("sultani")
class SultaniMethod(_MILMethod):
    """Sultani MIL ranking (:mod:`vadlib.methods.mil.model`)."""

    name = "sultani"
    defaults = mil.SULTANI

    def __init__(self, cfg, class_names, feat_dim, **kw):
        super().__init__(cfg, class_names, feat_dim, **kw)
        self.module = mil.SultaniNet(feat_dim, self.cfg.hidden, self.cfg.dropout)

    def loss(self, batch, gen):
        a, n = batch
        return mil.sultani_loss(self.module(a), self.module(n), self.cfg, self.module)

    def predict(self, videos):
        self.check_inputs(videos)
        return {k: (s, None) for k, s in mil.predict_sultani(self.module, videos, self.cfg).items()}


@METHODS.register("rtfm")
class RTFMMethod(_MILMethod):
    """RTFM-style feature-magnitude top-k MIL (:mod:`vadlib.methods.mil.model`)."""

    name = "rtfm"
    defaults = mil.RTFM_CFG

    def __init__(self, cfg, class_names, feat_dim, **kw):
        super().__init__(cfg, class_names, feat_dim, **kw)
        self.module = mil.RTFMNet(feat_dim, self.cfg.hidden, self.cfg.dropout)

    def loss(self, batch, gen):
        a, n = batch
        sa, fa = self.module(a)
        sn, fn = self.module(n)
        return mil.rtfm_loss(sa, fa, sn, fn, self.cfg, gen)

    def predict(self, videos):
        self.check_inputs(videos)
        return {k: (s, None) for k, s in mil.predict_rtfm(self.module, videos, self.cfg).items()}
