"""The one protocol every method package implements, and the method registry.

A method (one package under :mod:`vadlib.methods`) is a :class:`Method`:

* ``fit(train, val)``: train on weakly labelled :class:`WeakVideo` s (the generic loop of
  :mod:`vadlib.train` drives the method's ``prepare`` / ``batch`` / ``loss`` / ``optimizer`` hooks);
* ``predict({video: (T, D)})`` → ``{video: (scores (T,), class probs (T, C) or None)}``;
* ``save(path, meta)`` / ``cls.load(checkpoint, path)``: a ``weights_only`` checkpoint (tensors and
  plain types) in the format :data:`CHECKPOINT_FORMAT`; :func:`vadlib.methods.load` is the one reader;
* ``feature_spec``: the features the method was trained on (backbone, weights, sampling, crops,
  width); :meth:`Method.check_features` refuses features made another way.

:data:`METHODS` maps a name to its :class:`Method` class; training (:mod:`vadlib.train`), ``vadlib
detect`` (:mod:`vadlib.detect.methods`) and the stages build methods through it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from vadlib.errors import ConfigError, DataError
from vadlib.io import atomic_path
from vadlib.registry import Registry

#: the format tag of a method checkpoint (kept from the first version, so old checkpoints still load)
CHECKPOINT_FORMAT = "vadlib.train/1"

#: the keys of a feature store's ``info`` a model depends on
FEATURE_KEYS = ("backbone", "pretrained", "real_weights", "sampling", "stride", "snippet_len", "crops", "embed_dim",
                "clip_len", "clip_stride")


@dataclass
class WeakVideo:
    """A training video: features ``(T, D)`` float32 and its video-level class id (0 = normal)."""

    name: str
    features: np.ndarray
    class_id: int

    @property
    def label(self) -> int:
        return int(self.class_id != 0)


def feature_spec(info: Mapping) -> dict:
    """The part of a feature store's ``info`` a model depends on (backbone, weights, sampling, crops);
    saved with every checkpoint so ``vadlib detect`` can refuse features made another way."""
    return {k: info.get(k) for k in FEATURE_KEYS if k in info}


def seed_everything(seed: int) -> None:
    """Seed numpy/torch and switch on deterministic algorithms (CPU runs repeat exactly)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


class Method(ABC):
    """A weakly supervised frame scorer on ``(T, D)`` features (see the module docstring).

    Subclasses set :attr:`name`, build :attr:`module` (a ``torch.nn.Module``), :attr:`cfg` (a config
    with ``to_dict``, ``epochs``, ``batch_size``) and :attr:`class_names` (``normal`` first) in
    ``__init__(cfg, class_names, feat_dim, **kw)`` and implement the training hooks and ``predict``.
    """

    name: str = ""
    module: torch.nn.Module
    class_names: list[str]
    cfg: object
    feat_dim: int = -1
    #: whether ``predict`` returns class probabilities (T, C)
    has_class_probs: bool = False
    #: whether building it for training takes the CLIP ``backbone`` (e.g. learned prompts)
    uses_backbone: bool = False
    #: trained by :mod:`vadlib.train` on weakly labelled ``(T, D)`` features (the ``train_mil`` stage
    #: and ``vadlib detect --checkpoint`` serve these)
    weak: bool = True
    #: the parts of the protocol it implements (the contract test checks exactly these)
    supports: frozenset[str] = frozenset({"fit", "predict", "save", "load", "feature_spec"})

    # ---- configuration --------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def preset(cls, preset: str, overrides: Mapping | None = None) -> dict:
        """The config dict of a named preset (a file in the method's ``presets/``) with ``overrides``."""
        raise NotImplementedError

    @classmethod
    def example(cls, class_names: Sequence[str], feat_dim: int, *, text_embeddings: np.ndarray | None = None,
                epochs: int = 2) -> "Method":
        """A small, fast instance for checks (the contract test, docs): the ``demo`` preset, shrunk.
        ``text_embeddings`` (A, D): class text embeddings, for methods that use them."""
        return cls(cls.preset("demo", {"epochs": epochs}), class_names, feat_dim)

    # ---- training hooks (driven by vadlib.train.fit) --------------------------------------------
    def prepare(self, train: Sequence[WeakVideo]) -> None:
        """Statistics from the training videos (e.g. the normality prototype)."""

    @abstractmethod
    def batch(self, abn: Sequence[WeakVideo], nor: Sequence[WeakVideo], rng: np.random.Generator):
        raise NotImplementedError

    @abstractmethod
    def loss(self, batch, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    @abstractmethod
    def optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def checkpoint_extra(self) -> dict:
        return {}

    # ---- the protocol ---------------------------------------------------------------------------
    def fit(self, train: Sequence[WeakVideo], val: Sequence[WeakVideo] = (), **kw):
        """Train with the one loop (:func:`vadlib.train.fit`); returns its ``FitResult``."""
        from vadlib.train import fit

        return fit(self, train, val, **kw)

    @abstractmethod
    def predict(self, videos: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """``{video: (T, D)}`` → ``{video: (scores (T,), class probs (T, C) or None)}``."""
        raise NotImplementedError

    @property
    def feature_spec(self) -> dict:
        """The features this method was trained on: the store's spec saved with the checkpoint
        (``meta["features"]``) plus ``feat_dim``."""
        spec = dict((getattr(self, "checkpoint", None) or {}).get("meta", {}).get("features") or {})
        spec.update(getattr(self, "_features", {}) or {})
        if self.feat_dim > 0:
            spec["feat_dim"] = int(self.feat_dim)
        return spec

    def set_feature_spec(self, spec: Mapping) -> None:
        """Record the feature spec (``feature_spec(store.info)``) the method is trained on."""
        self._features = dict(spec)

    def check_features(self, spec: Mapping, where: str = "features") -> None:
        """Raise :class:`ConfigError` when ``spec`` (a feature spec, or ``{"feat_dim": D}``) differs
        from :attr:`feature_spec` in a key both record."""
        mine = self.feature_spec
        bad = [f"{k}: method {mine[k]!r}, {where} {v!r}" for k, v in spec.items()
               if v is not None and mine.get(k) is not None and str(mine[k]) != str(v)]
        if bad:
            raise ConfigError(f"{self.name}: trained on features made differently from the {where} "
                              f"({'; '.join(bad)}); use features made as the method's, or retrain it on these")

    def check_inputs(self, videos: Mapping[str, np.ndarray]) -> None:
        """Refuse videos whose feature width differs from the one the method was built for."""
        for k, f in videos.items():
            d = int(np.shape(f)[-1])
            if self.feat_dim > 0 and d != self.feat_dim:
                raise ConfigError(f"{self.name}: video '{k}' has {d}-wide features, the method was trained "
                                  f"on {self.feat_dim}-wide ones (feature spec {self.feature_spec}); extract "
                                  "the features as the method's training features were")

    def save(self, path: str | Path, meta: Mapping | None = None) -> Path:
        """Write weights + config + class names (atomically); loadable with ``weights_only=True``."""
        extra = self.checkpoint_extra()
        sd = {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}
        meta = dict(meta or {})
        if getattr(self, "_features", None) and "features" not in meta:
            meta["features"] = dict(self._features)
        ckpt = {"format": CHECKPOINT_FORMAT, "method": self.name, "config": self.cfg.to_dict(),
                "class_names": list(self.class_names), "feat_dim": int(self.feat_dim), "extra": dict(extra),
                "meta": meta, "state_dict": sd}
        with atomic_path(path, suffix=".pt") as tmp:
            with open(tmp, "wb") as fh:   # a file object: the archive is named "archive", not after the temp file
                torch.save(ckpt, fh)
        return Path(path)

    @classmethod
    def load(cls, ck: Mapping, path: Path, backbone=None) -> "Method":
        """Rebuild from a checkpoint dict read by :func:`vadlib.methods.load` (default: build from the
        stored config and load the weights strictly)."""
        m = cls(ck["config"], ck["class_names"], ck["feat_dim"])
        m._load_state(ck["state_dict"], path, strict=True)
        return m

    def _load_state(self, sd: Mapping, path: Path, strict: bool) -> None:
        missing, unexpected = self.module.load_state_dict(dict(sd), strict=strict)
        if unexpected or (missing and strict):
            raise DataError(path, f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
        self.module.eval()


class UntrainedMethod(Method):
    """A registered method without training (``supports`` lacks ``fit``): the training hooks refuse."""

    weak = False
    supports = frozenset({"predict", "save", "load", "feature_spec"})
    #: why it has no fit (in the error)
    why_no_fit: str = "it has no training"

    def _refuse(self, *_, **__):
        raise ConfigError(f"method '{self.name}' cannot be fitted: {self.why_no_fit}")

    fit = batch = loss = optimizer = _refuse


METHODS: Registry[type[Method]] = Registry("method")


def check_config_preset(method: str, preset: str, known: Sequence[str]) -> None:
    if preset not in known:
        raise ConfigError(f"unknown config preset '{preset}'; known: {', '.join(sorted(known))}")


def read_presets(folder: Path) -> dict[str, dict]:
    """``{name: config dict}`` of the ``*.yaml`` preset files in ``folder`` (as open_clip's
    ``model_configs/``)."""
    import yaml

    out = {}
    for p in sorted(Path(folder).glob("*.yaml")):
        d = yaml.safe_load(p.read_text()) or {}
        if not isinstance(d, dict):
            raise ConfigError(f"{p}: a preset must be a mapping of config keys, got {type(d).__name__}")
        out[p.stem] = d
    return out
