"""AnomalyCLIP behind the :class:`~vadlib.methods.base.Method` protocol (model: :mod:`.model`)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from vadlib.errors import ConfigError, DataError
from vadlib.methods.anomalyclip import model as ac
from vadlib.methods.base import METHODS, Method, WeakVideo


@METHODS.register("anomalyclip")
class AnomalyCLIPMethod(Method):
    """AnomalyCLIP (:mod:`vadlib.methods.anomalyclip.model`): selector + axial temporal model, MIL.

    ``text_source="prompts"`` learns the prompt contexts through the CLIP ``backbone``'s text encoder;
    ``"embeddings"`` takes fixed ``text_embeddings`` (A, D). ``text_module`` overrides both."""

    name = "anomalyclip"
    has_class_probs = True
    uses_backbone = True

    def __init__(self, cfg: Mapping, class_names: Sequence[str], feat_dim: int, *, backbone=None,
                 text_embeddings: np.ndarray | None = None, text_module: torch.nn.Module | None = None):
        self.cfg = ac.AnomalyCLIPConfig.from_dict(cfg)
        self.class_names = list(class_names)
        self.feat_dim = int(feat_dim)
        anomaly = self.class_names[1:]
        if text_module is None:
            if self.cfg.text_source == "embeddings":
                if text_embeddings is None:
                    raise ConfigError("anomalyclip: text_source='embeddings' needs text_embeddings (A, D)")
                text_module = ac.EmbeddingText(torch.as_tensor(text_embeddings))
            else:
                if backbone is None:
                    raise ConfigError("anomalyclip: text_source='prompts' needs the CLIP backbone")
                text_module = ac.PromptText(backbone, anomaly, self.cfg.n_ctx, self.cfg.ctx_init_std)
        self.module = ac.AnomalyCLIP(self.cfg, self.class_names, feat_dim, text_module)

    @classmethod
    def preset(cls, preset: str, overrides: Mapping | None = None) -> dict:
        """A preset of :data:`~vadlib.methods.anomalyclip.model.CONFIGS` (``presets/*.yaml``) with ``overrides``."""
        return ac.anomalyclip_config(preset, **dict(overrides or {})).to_dict()

    @classmethod
    def example(cls, class_names, feat_dim, *, text_embeddings=None, epochs: int = 2) -> "AnomalyCLIPMethod":
        """The ``demo`` preset shrunk (emb 16, 2 heads, 4 × 4 grid), text from ``text_embeddings`` (A, D)
        (random when None)."""
        if text_embeddings is None:
            text_embeddings = np.random.default_rng(0).standard_normal((len(class_names) - 1, feat_dim))
        cfg = cls.preset("demo", {"text_source": "embeddings", "epochs": epochs, "emb_size": 16, "heads": 2,
                                  "num_segments": 4, "seg_length": 4, "batch_size": 8})
        return cls(cfg, class_names, feat_dim, text_embeddings=np.asarray(text_embeddings, np.float32))

    def prepare(self, train: Sequence[WeakVideo]) -> None:
        normal = [v.features for v in train if v.class_id == 0]
        if not normal:
            raise DataError(None, "anomalyclip: no normal training video to compute the normality prototype from")
        total = sum(f.astype(np.float64).sum(0) for f in normal)
        self.module.set_centroid(total / sum(len(f) for f in normal))

    def batch(self, abn, nor, rng):
        cfg = self.cfg
        vids = list(abn) + list(nor)
        narrow = cfg.reference.narrow_segment_starts
        x = np.stack([v.features[ac.sample_grid_indices(len(v.features), cfg.num_segments,
                                                         cfg.seg_length, rng, narrow)] for v in vids])
        return torch.from_numpy(x), torch.tensor([v.class_id for v in vids])

    def loss(self, batch, gen):
        x, classes = batch
        out = self.module(x)
        return ac.anomalyclip_loss(out, classes, self.cfg, gen)

    def predict(self, videos):
        self.check_inputs(videos)
        return self.module.predict(videos)

    def optimizer(self):
        m = self.module
        temporal = [p for n, p in m.named_parameters() if not n.startswith("text.")]
        proj = [p for n, p in m.text.named_parameters() if n == "text_projection"]
        prompts = [p for n, p in m.text.named_parameters() if n != "text_projection"]
        groups = [{"params": g} for g in (temporal, prompts, proj) if g]
        return torch.optim.AdamW(groups, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def checkpoint_extra(self) -> dict:
        self.module.eval()
        self.module.text_features()   # fills the text cache stored with the weights
        return {"text_source": self.cfg.text_source}

    @classmethod
    def load(cls, ck: Mapping, path: Path, backbone=None) -> "AnomalyCLIPMethod":
        """Learned prompts: without ``backbone`` the model is loaded for inference (text features from
        the stored cache); with it, it can be trained further."""
        cfg, sd = ck["config"], ck["state_dict"]
        kw: dict = {}
        strict = True
        if cfg.get("text_source") == "embeddings":
            kw["text_embeddings"] = sd["text.embeddings"]
        elif backbone is not None:
            kw["backbone"] = backbone
        else:
            kw["text_module"] = ac.CachedText()
            sd = {k: v for k, v in sd.items() if not k.startswith("text.")}
            strict = False
        m = cls(cfg, ck["class_names"], ck["feat_dim"], **kw)
        m._load_state(sd, path, strict=strict)
        return m
