"""Density models with one sklearn-like API: ``fit(X)``, ``score_samples(X) -> (N,)`` (higher =
more normal), ``save(path)`` / ``load(path)``.

* ``gmm`` — :class:`GMMDensity`, a wrapper of ``sklearn.mixture.GaussianMixture`` (velocity
  features; Reiss & Hoshen: 2 components on Ped2, ``random_state=0``). Saved with joblib.
* ``knn`` — :class:`KNNDensity`: minus the mean squared L2 distance to the ``k`` nearest training
  samples (R&H use k = 1). ``score_samples(X, exclude_self=True)`` skips each sample's own
  nearest neighbour, for calibrating on the training set itself. Saved with joblib.
* ``pose_flow`` — :func:`PoseFlowDensity`: a small Glow normalizing flow on 34-d pose vectors in
  the spirit of STG-NF (single frames, not 24-frame tracks: Ped2's pose file has no tracks). The
  vector is a ``(34, 1, 1)`` "image" without squeeze, so each 1×1/3×3 conv acts as a linear
  layer: K steps of ActNorm → LU 1×1 conv (a learned linear mix) → affine coupling with an MLP.
* ``glow`` — :class:`~vadlib.methods.flow_nf.glow.GlowDensity` on flow patches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vadlib._moved import old_module_paths
from vadlib.errors import ConfigError, DataError
from vadlib.io import atomic_path
from vadlib.methods.flow_nf.glow import GlowDensity
from vadlib.registry import Registry

DENSITY_MODELS: Registry = Registry("density model")


def _check_2d(X, who: str) -> np.ndarray:
    X = np.asarray(X, np.float64)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataError(None, f"{who}: expected (N, D) samples, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise DataError(None, f"{who}: samples contain NaN/inf")
    return X


class _JoblibMixin:
    def save(self, path: str | Path) -> Path:
        import joblib

        with atomic_path(path) as tmp:
            joblib.dump(self, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path):
        import joblib

        path = Path(path)
        if not path.is_file():
            raise DataError(path, f"{cls.__name__} file does not exist")
        with old_module_paths():                # files written before vadlib.models moved into methods/
            obj = joblib.load(path)
        if not isinstance(obj, cls):
            raise DataError(path, f"holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj


@DENSITY_MODELS.register("gmm")
class GMMDensity(_JoblibMixin):
    """Gaussian mixture on ``(N, D)`` features; ``score_samples`` = log-likelihood ``(N,)``."""

    def __init__(self, n_components: int = 2, covariance_type: str = "full", random_state: int = 0,
                 reg_covar: float = 1e-6):
        self.n_components, self.covariance_type = n_components, covariance_type
        self.random_state, self.reg_covar = random_state, reg_covar
        self.gmm_ = None

    def fit(self, X) -> "GMMDensity":
        from sklearn.mixture import GaussianMixture

        X = _check_2d(X, "GMMDensity.fit")
        if len(X) < self.n_components:
            raise DataError(None, f"GMMDensity.fit: {len(X)} samples for {self.n_components} components")
        self.gmm_ = GaussianMixture(self.n_components, covariance_type=self.covariance_type,
                                    random_state=self.random_state, reg_covar=self.reg_covar).fit(X)
        return self

    def score_samples(self, X) -> np.ndarray:
        if self.gmm_ is None:
            raise ConfigError("GMMDensity.score_samples called before fit")
        return self.gmm_.score_samples(_check_2d(X, "GMMDensity.score_samples"))


@DENSITY_MODELS.register("knn")
class KNNDensity(_JoblibMixin):
    """``score = −mean squared L2 distance to the k nearest training samples`` ``(N,)``."""

    def __init__(self, k: int = 1):
        if k < 1:
            raise ConfigError(f"KNNDensity needs k >= 1, got {k}")
        self.k = k
        self.nn_ = None

    def fit(self, X) -> "KNNDensity":
        from sklearn.neighbors import NearestNeighbors

        X = _check_2d(X, "KNNDensity.fit")
        if len(X) < self.k + 1:
            raise DataError(None, f"KNNDensity.fit: need more than k={self.k} samples, got {len(X)}")
        self.nn_ = NearestNeighbors(n_neighbors=self.k + 1).fit(X)
        return self

    def score_samples(self, X, exclude_self: bool = False) -> np.ndarray:
        if self.nn_ is None:
            raise ConfigError("KNNDensity.score_samples called before fit")
        X = _check_2d(X, "KNNDensity.score_samples")
        if len(X) == 0:
            return np.zeros(0)
        d, _ = self.nn_.kneighbors(X, n_neighbors=self.k + int(exclude_self))
        d = d[:, 1:] if exclude_self else d
        return -(d ** 2).mean(1)


@DENSITY_MODELS.register("pose_flow")
def PoseFlowDensity(K: int = 8, hidden: int = 64, epochs: int = 20, batch_size: int = 256, lr: float = 1e-3,
                    seed: int = 0, **kw) -> GlowDensity:
    """A small Glow on ``(N, 34)`` pose vectors (treated as ``(34, 1, 1)``, no squeeze, L = 1)."""
    return GlowDensity(K=K, L=1, hidden=hidden, squeeze=False, epochs=epochs, batch_size=batch_size, lr=lr,
                       seed=seed, **kw)


DENSITY_MODELS.register("glow")(GlowDensity)


def make_density(kind: str, **params):
    """Build a density model by registry name (``gmm``, ``knn``, ``pose_flow``, ``glow``)."""
    return DENSITY_MODELS.get(kind)(**params)


def save_density(model, path: str | Path) -> Path:
    """Save any model of this module (torch state for Glow, joblib otherwise)."""
    return model.save(path)


def load_density(path: str | Path):
    """Load a model saved by :func:`save_density` (``.pt`` = Glow, else joblib)."""
    path = Path(path)
    if path.suffix == ".pt":
        return GlowDensity.load(path)
    import joblib

    if not path.is_file():
        raise DataError(path, "density model file does not exist")
    with old_module_paths():                    # files written before vadlib.models moved into methods/
        return joblib.load(path)
