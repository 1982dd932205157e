"""One plain PyTorch training loop for the weakly supervised methods (AnomalyCLIP, Sultani MIL,
RTFM top-k) and the ``train_mil`` stage logic.

* seeded and repeatable on CPU (numpy Generator, torch seeds, deterministic algorithms);
* batches of half abnormal / half normal videos; an epoch runs ``max(n_abn, n_nor) // half``
  steps, the shorter list cycled (Lightning's ``max_size_cycle``, as the reference);
* warm-up + cosine schedule stepped per optimisation step; warm-up starts at ``lr / warm_steps``,
  not 0 (fixes AnomalyCLIP flaw 4: "first epoch at lr 0");
* a validation split drawn from the TRAINING videos (stratified by class) selects the checkpoint
  (video-level AUC of the top-frame score + video-class accuracy — video labels only, since
  training videos carry weak labels); the test set is never looked at (fixes flaw 6);
* checkpoints hold only tensors and plain types (config, class names) and load with
  ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from vadlib.errors import ConfigError, DataError
from vadlib.features.store import average_crops
from vadlib.io import atomic_path
from vadlib.registry import Registry


@dataclass
class WeakVideo:
    """A training video: features ``(T, D)`` float32 and its video-level class id (0 = normal)."""

    name: str
    features: np.ndarray
    class_id: int

    @property
    def label(self) -> int:
        return int(self.class_id != 0)


def check_videos(videos: Sequence[WeakVideo], n_classes: int) -> None:
    """Raise a :class:`DataError` naming the video for bad shapes, NaN/inf or class ids."""
    dims = set()
    for v in videos:
        f = v.features
        if f.ndim != 2 or f.shape[0] == 0:
            raise DataError(None, f"video '{v.name}': features must be (T, D) with T ≥ 1, got {f.shape}")
        if not np.isfinite(f).all():
            raise DataError(None, f"video '{v.name}': features contain NaN or inf")
        if not (0 <= v.class_id < n_classes):
            raise DataError(None, f"video '{v.name}': class id {v.class_id} outside 0..{n_classes - 1}")
        dims.add(f.shape[1])
    if len(dims) > 1:
        raise DataError(None, f"videos have different feature widths {sorted(dims)}")


# ---------------------------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------------------------


class Method:
    """Adapter the loop drives: ``prepare`` → (``batch`` → ``loss``)* → ``predict``."""

    name: str = ""
    module: torch.nn.Module
    class_names: list[str]
    cfg: object

    def prepare(self, train: Sequence[WeakVideo]) -> None:
        """Statistics from the training videos (e.g. the normality prototype)."""

    def batch(self, abn: Sequence[WeakVideo], nor: Sequence[WeakVideo], rng: np.random.Generator):
        raise NotImplementedError

    def loss(self, batch, gen: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        raise NotImplementedError

    def predict(self, videos: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """``{video: (T, D)}`` → ``{video: (scores (T,), class probs (T, C) or None)}``."""
        raise NotImplementedError

    def optimizer(self) -> torch.optim.Optimizer:
        raise NotImplementedError

    def checkpoint_extra(self) -> dict:
        return {}


METHODS: Registry[Callable[..., Method]] = Registry("weakly supervised method")


class AnomalyCLIPMethod(Method):
    """AnomalyCLIP (:mod:`vadlib.models.anomalyclip`)."""

    name = "anomalyclip"

    def __init__(self, cfg: Mapping, class_names: Sequence[str], feat_dim: int, *, backbone=None,
                 text_embeddings: np.ndarray | None = None, text_module: torch.nn.Module | None = None):
        from vadlib.models import anomalyclip as ac

        self.cfg = ac.AnomalyCLIPConfig.from_dict(cfg)
        self.class_names = list(class_names)
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
        self._ac = ac

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
        x = np.stack([v.features[self._ac.sample_grid_indices(len(v.features), cfg.num_segments,
                                                                cfg.seg_length, rng, narrow)] for v in vids])
        return torch.from_numpy(x), torch.tensor([v.class_id for v in vids])

    def loss(self, batch, gen):
        x, classes = batch
        out = self.module(x)
        return self._ac.anomalyclip_loss(out, classes, self.cfg, gen)

    def predict(self, videos):
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


class _MILMethod(Method):
    def __init__(self, cfg: Mapping, class_names: Sequence[str], feat_dim: int, **_):
        from vadlib.models import mil

        self._mil = mil
        self.cfg = mil.MILConfig.from_dict({**self.defaults, **dict(cfg)})
        self.class_names = list(class_names)
        self._segs: dict[str, np.ndarray] = {}

    def _seg(self, v: WeakVideo) -> np.ndarray:
        if v.name not in self._segs:
            self._segs[v.name] = self._mil.segment_means(v.features, self.cfg.num_segments, self.cfg.normalize_frames)
        return self._segs[v.name]

    def batch(self, abn, nor, rng):
        return (torch.from_numpy(np.stack([self._seg(v) for v in abn])),
                torch.from_numpy(np.stack([self._seg(v) for v in nor])))

    def optimizer(self):
        c = self.cfg
        if c.optimizer == "adagrad":
            return torch.optim.Adagrad(self.module.parameters(), lr=c.lr, eps=1e-8, weight_decay=c.weight_decay)
        return torch.optim.Adam(self.module.parameters(), lr=c.lr, weight_decay=c.weight_decay)


class SultaniMethod(_MILMethod):
    """Sultani MIL ranking (:mod:`vadlib.models.mil`)."""

    name = "sultani"

    def __init__(self, cfg, class_names, feat_dim, **kw):
        from vadlib.models.mil import SULTANI

        self.defaults = SULTANI
        super().__init__(cfg, class_names, feat_dim, **kw)
        self.module = self._mil.SultaniNet(feat_dim, self.cfg.hidden, self.cfg.dropout)

    def loss(self, batch, gen):
        a, n = batch
        return self._mil.sultani_loss(self.module(a), self.module(n), self.cfg, self.module)

    def predict(self, videos):
        return {k: (s, None) for k, s in self._mil.predict_sultani(self.module, videos, self.cfg).items()}


class RTFMMethod(_MILMethod):
    """RTFM-style feature-magnitude top-k MIL (:mod:`vadlib.models.mil`)."""

    name = "rtfm"

    def __init__(self, cfg, class_names, feat_dim, **kw):
        from vadlib.models.mil import RTFM_CFG

        self.defaults = RTFM_CFG
        super().__init__(cfg, class_names, feat_dim, **kw)
        self.module = self._mil.RTFMNet(feat_dim, self.cfg.hidden, self.cfg.dropout)

    def loss(self, batch, gen):
        a, n = batch
        sa, fa = self.module(a)
        sn, fn = self.module(n)
        return self._mil.rtfm_loss(sa, fa, sn, fn, self.cfg, gen)

    def predict(self, videos):
        return {k: (s, None) for k, s in self._mil.predict_rtfm(self.module, videos, self.cfg).items()}


METHODS.register("anomalyclip")(AnomalyCLIPMethod)
METHODS.register("sultani")(SultaniMethod)
METHODS.register("rtfm")(RTFMMethod)


def build_method(name: str, cfg: Mapping, class_names: Sequence[str], feat_dim: int, *, seed: int | None = None,
                 **kw) -> Method:
    """A registered method (``anomalyclip``, ``sultani``, ``rtfm``) built from a config dict.

    ``seed``: seed the initial weights (the loop's :func:`fit` seeds everything else)."""
    if seed is not None:
        seed_everything(seed)
    return METHODS.get(name)(cfg, class_names, feat_dim, **kw)


# ---------------------------------------------------------------------------------------------
# configurations (paper hyperparameters per dataset + fast demo)
# ---------------------------------------------------------------------------------------------


def method_config(method: str, preset: str, overrides: Mapping | None = None) -> dict:
    """Config dict of ``method`` for a preset (``shanghaitech``, ``ucf_crime``, ``xd_violence``,
    ``demo``) with ``overrides``. AnomalyCLIP presets: :data:`vadlib.models.anomalyclip.CONFIGS`.
    The MIL baselines use their papers' settings for every dataset; their epoch count is derived
    from the papers' iteration counts where the preset is a paper dataset."""
    from vadlib.models import anomalyclip as ac

    overrides = dict(overrides or {})
    if method == "anomalyclip":
        return ac.anomalyclip_config(preset, **overrides).to_dict()
    METHODS.get(method)
    if preset not in ac.CONFIGS:
        raise ConfigError(f"unknown config preset '{preset}'; known: {', '.join(sorted(ac.CONFIGS))}")
    fast = {"demo": dict(epochs=100, batch_size=16, num_segments=16)}.get(preset, {})
    return {**fast, **overrides}


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------


def seed_everything(seed: int) -> None:
    """Seed numpy/torch and switch on deterministic algorithms (CPU runs repeat exactly)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def split_validation(videos: Sequence[WeakVideo], fraction: float, seed: int) -> tuple[list[WeakVideo], list[WeakVideo]]:
    """Split TRAINING videos into (train, validation), seeded and stratified.

    ``round(fraction · n)`` abnormal (at least one when ``fraction > 0`` and there are ≥ 2) and as
    many normal videos go to validation; abnormal ones are taken round-robin over the classes, and
    every class keeps at least one training video. ``fraction = 0`` → no validation set."""
    if not (0 <= fraction < 1):
        raise ConfigError(f"validation fraction must be in [0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    va_names: set[str] = set()
    for abnormal in (True, False):
        group = [v for v in videos if (v.class_id != 0) == abnormal]
        if fraction == 0 or len(group) < 2:
            continue
        n_val = max(1, int(round(fraction * len(group))))
        by: dict[int, list[WeakVideo]] = {}
        for v in group:
            by.setdefault(v.class_id, []).append(v)
        queues = {c: [by[c][i] for i in rng.permutation(len(by[c]))] for c in sorted(by)}
        order = [c for c in rng.permutation(sorted(by))]
        taken = 0
        while taken < n_val:
            moved = False
            for c in order:
                if taken < n_val and len(queues[c]) > 1:
                    va_names.add(queues[c].pop().name)
                    taken += 1
                    moved = True
            if not moved:
                break
    tr = [v for v in videos if v.name not in va_names]
    va = [v for v in videos if v.name in va_names]
    return tr, va


def lr_factor(step: int, total: int, warmup: int, schedule: str = "cosine") -> float:
    """Warm-up (linear from ``1/warmup``, never 0) then half-cosine to 0 at ``total``."""
    if schedule == "constant":
        return 1.0 if warmup <= 0 or step >= warmup else (step + 1) / warmup
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    rest = max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, rest) / rest))


def lr_factor_epoch(epoch: int, epochs: int, warmup: int) -> float:
    """The reference's ``WarmupCosineAnnealingLR`` stepped per EPOCH (reference switch
    ``lr_zero_first_epoch``, flaw 4): ``epoch / warmup`` during warm-up (0 at epoch 0: no update),
    then half-cosine from 1 to 0 at ``epochs``."""
    if warmup > 0 and epoch < warmup:
        return epoch / warmup
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - warmup) / max(1, epochs - warmup))))


def reference_switches(cfg) -> object | None:
    """The method's reference-mode switches (AnomalyCLIP), or None."""
    return getattr(cfg, "reference", None)


def validation_score(method: Method, val: Sequence[WeakVideo], top_frames: int = 16) -> dict:
    """Video-level checks on validation TRAINING videos (weak labels only): AUC of the mean of the
    ``top_frames`` highest frame scores vs the video label, and (methods with class probabilities)
    the accuracy of the video class = argmax of the anomaly-class probabilities summed over frames."""
    from sklearn.metrics import roc_auc_score

    if not val:
        return {"auc": math.nan, "class_acc": math.nan, "score": math.nan}
    pred = method.predict({v.name: v.features for v in val})
    y, s, hits = [], [], []
    for v in val:
        sc, pr = pred[v.name]
        k = min(top_frames, len(sc))
        s.append(float(np.sort(sc)[-k:].mean()))
        y.append(v.label)
        if pr is not None and v.class_id != 0:
            hits.append(int(np.argmax(pr[:, 1:].sum(0)) + 1 == v.class_id))
    auc = float(roc_auc_score(y, s)) if 0 < sum(y) < len(y) else math.nan
    acc = float(np.mean(hits)) if hits else math.nan
    parts = [x for x in (auc, acc) if not math.isnan(x)]
    return {"auc": auc, "class_acc": acc, "score": float(np.mean(parts)) if parts else math.nan}


@dataclass
class FitResult:
    """What :func:`fit` returns: the method (best weights loaded), history rows, chosen epoch."""

    method: Method
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    seconds: float = 0.0


def _cycle(videos: Sequence[WeakVideo], rng: np.random.Generator):
    while True:
        for i in rng.permutation(len(videos)):
            yield videos[i]


def fit(method: Method, train: Sequence[WeakVideo], val: Sequence[WeakVideo] = (), *, seed: int = 0,
        epochs: int | None = None, log: Callable[[str], None] | None = print, val_every: int = 1,
        max_steps_per_epoch: int | None = None) -> FitResult:
    """Train ``method`` on weakly labelled ``train`` videos; select the epoch on ``val``.

    Batches: ``batch_size // 2`` abnormal + as many normal videos. The best validation epoch
    (ties → the later one) is restored at the end; without validation the last epoch is kept.
    """
    check_videos(list(train) + list(val), len(method.class_names))
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    abn = [v for v in train if v.class_id != 0]
    nor = [v for v in train if v.class_id == 0]
    if not abn or not nor:
        raise DataError(None, f"weakly supervised training needs abnormal AND normal training videos "
                        f"(got {len(abn)} abnormal, {len(nor)} normal)")
    cfg = method.cfg
    epochs = int(epochs if epochs is not None else cfg.epochs)
    half = max(1, cfg.batch_size // 2)
    steps = max(1, max(len(abn), len(nor)) // half)
    if max_steps_per_epoch:
        steps = min(steps, max_steps_per_epoch)
    method.prepare(train)
    opt = method.optimizer()
    base = [g["lr"] for g in opt.param_groups]
    total = epochs * steps
    warm = int(getattr(cfg, "warmup_epochs", 0)) * steps
    schedule = getattr(cfg, "schedule", "cosine")
    per_epoch = bool(getattr(reference_switches(cfg), "lr_zero_first_epoch", False))
    ia, inn = _cycle(abn, rng), _cycle(nor, rng)
    res = FitResult(method)
    best, best_state, step = -math.inf, None, 0
    t0 = time.perf_counter()
    for ep in range(epochs):
        method.module.train()
        te = time.perf_counter()
        sums: dict[str, float] = {}
        for _ in range(steps):
            f = lr_factor_epoch(ep, epochs, int(cfg.warmup_epochs)) if per_epoch else lr_factor(step, total, warm, schedule)
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * f
            batch = method.batch([next(ia) for _ in range(half)], [next(inn) for _ in range(half)], rng)
            loss, terms = method.loss(batch, gen)
            if not torch.isfinite(loss):
                raise DataError(None, f"{method.name}: loss became {float(loss)} at epoch {ep} ({terms})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            for k, v in {"loss": float(loss.detach()), **terms}.items():
                sums[k] = sums.get(k, 0.0) + v / steps
        last_f = lr_factor_epoch(ep, epochs, int(cfg.warmup_epochs)) if per_epoch else lr_factor(step - 1, total, warm, schedule)
        row = {"epoch": ep, "lr": base[0] * last_f,
               "seconds": time.perf_counter() - te, **sums}
        if val and ((ep + 1) % val_every == 0 or ep == epochs - 1):
            vs = validation_score(method, val)
            row.update({f"val_{k}": v for k, v in vs.items()})
            sc = vs["score"]
            if not math.isnan(sc) and sc >= best:
                best, res.best_epoch = sc, ep
                best_state = copy.deepcopy(method.module.state_dict())
        res.history.append(row)
        if log:
            log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                         if k != "seconds"))   # wall time: not printed, so an executed notebook is reproducible
    if best_state is not None:
        method.module.load_state_dict(best_state)
    else:
        res.best_epoch = epochs - 1
    method.module.eval()
    res.seconds = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------------------------
# checkpoints
# ---------------------------------------------------------------------------------------------


FEATURE_KEYS = ("backbone", "pretrained", "real_weights", "sampling", "stride", "snippet_len", "crops", "embed_dim")


def feature_spec(info: Mapping) -> dict:
    """The part of a feature store's ``info`` a model depends on (backbone, weights, sampling, crops);
    saved with every checkpoint so ``vadlib detect`` can refuse features made another way."""
    return {k: info.get(k) for k in FEATURE_KEYS if k in info}


def save_checkpoint(path: str | Path, method: Method, meta: Mapping | None = None) -> Path:
    """Write weights + config + class names (atomically); loadable with ``weights_only=True``."""
    extra = method.checkpoint_extra()
    sd = {k: v.detach().cpu().clone() for k, v in method.module.state_dict().items()}
    first = next((v for k, v in sd.items() if k in ("centroid", "fc1.weight", "mtn.d1.weight")), None)
    feat_dim = int(first.shape[1] if first is not None and first.ndim > 1 else first.shape[0]) if first is not None else -1
    ckpt = {"format": "vadlib.train/1", "method": method.name, "config": method.cfg.to_dict(),
            "class_names": list(method.class_names), "feat_dim": feat_dim, "extra": dict(extra),
            "meta": dict(meta or {}), "state_dict": sd}
    with atomic_path(path, suffix=".pt") as tmp:
        with open(tmp, "wb") as fh:   # a file object: the archive is named "archive", not after the temp file
            torch.save(ckpt, fh)
    return Path(path)


def load_checkpoint(path: str | Path, backbone=None) -> Method:
    """Rebuild a method from :func:`save_checkpoint` output (``torch.load(weights_only=True)``).

    AnomalyCLIP with learned prompts: without ``backbone`` the model is loaded for inference
    (text features from the stored cache); with it, it can be trained further.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint file does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(path, f"not a loadable checkpoint ({exc})") from exc
    if not isinstance(ck, dict) or ck.get("format") != "vadlib.train/1":
        raise DataError(path, "not a vadlib.train checkpoint (format key missing)")
    name, cfg, classes, D, sd = ck["method"], ck["config"], ck["class_names"], ck["feat_dim"], ck["state_dict"]
    kw: dict = {}
    strict = True
    if name == "anomalyclip":
        from vadlib.models import anomalyclip as ac

        if cfg.get("text_source") == "embeddings":
            kw["text_embeddings"] = sd["text.embeddings"]
        elif backbone is not None:
            kw["backbone"] = backbone
        else:
            kw["text_module"] = ac.CachedText()
            sd = {k: v for k, v in sd.items() if not k.startswith("text.")}
            strict = False
    m = build_method(name, cfg, classes, D, **kw)
    missing, unexpected = m.module.load_state_dict(sd, strict=strict)
    if unexpected or (missing and strict):
        raise DataError(path, f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}")
    m.module.eval()
    m.checkpoint = {"path": str(path), "meta": ck.get("meta", {})}
    return m


# ---------------------------------------------------------------------------------------------
# the train_mil stage: feature store + dataset → trained method, predictions, metrics
# ---------------------------------------------------------------------------------------------


def resolve_class_id(video_name: str, class_name: str | None, label: int, class_names: Sequence[str]) -> int:
    """Video-level class id of a training video; unknown class names raise naming the video."""
    if label == 0 or class_name == "normal":
        return 0
    if label != 1:
        raise DataError(None, f"video '{video_name}': video-level label {label} is unknown (need 0 or 1 to train)")
    if class_name is None:
        if len(class_names) == 2:
            return 1
        raise DataError(None, f"video '{video_name}': abnormal training video without a class name "
                        f"(the config has {len(class_names) - 1} anomaly classes)")
    if class_name not in class_names:
        raise ConfigError(f"video '{video_name}': class '{class_name}' is not in the configured classes "
                          f"{list(class_names)}")
    return list(class_names).index(class_name)


def load_features(store, name: str) -> np.ndarray:
    """``(N, D)`` float32 features of a video from a feature store (crops averaged), checked finite."""
    f = average_crops(np.asarray(store.load(name), dtype=np.float32))
    if f.ndim != 2 or f.shape[0] == 0:
        raise DataError(None, f"video '{name}': features must be (N, D) with N ≥ 1, got {f.shape}")
    if not np.isfinite(f).all():
        raise DataError(None, f"video '{name}': features contain NaN or inf")
    return f


def load_weak_videos(store, videos, class_names: Sequence[str]) -> list[WeakVideo]:
    """Training :class:`WeakVideo` s from a store and the dataset's :class:`~vadlib.data.Video` records."""
    return [WeakVideo(v.name, load_features(store, v.name),
                      resolve_class_id(v.name, v.class_name, v.label, class_names)) for v in videos]


def predict_store(method: Method, store, videos) -> "Predictions":
    """Per-frame scores (and class probabilities) of ``videos`` from the store, rows expanded to frames."""
    from vadlib.features.store import expand_to_frames
    from vadlib.results import Predictions, VideoScores

    feats = {v.name: load_features(store, v.name) for v in videos}
    out = method.predict(feats)
    res = Predictions(class_names=list(method.class_names), meta={"method": method.name})
    for v in videos:
        s, p = out[v.name]
        fi = store.frame_index(v.name)
        n = store.num_frames(v.name)
        s = expand_to_frames(s, fi, n)
        p = expand_to_frames(p, fi, n) if p is not None else None
        res.videos[v.name] = VideoScores(scores=np.asarray(s, np.float32),
                                         class_probs=None if p is None else np.asarray(p, np.float32),
                                         fired=None if p is None else p.argmax(1).astype(np.int64))
    return res


def run_train_mil(method: str, preset: str, dataset, store, *, overrides: Mapping | None = None,
                  class_names: Sequence[str] | None = None, seed: int = 0, val_fraction: float = 0.2,
                  backbone=None, checkpoint_in: str | Path | None = None,
                  checkpoint_out: str | Path | None = None, log: Callable[[str], None] | None = print) -> dict:
    """Train (or load) ``method`` on the dataset's weakly labelled training videos; predict the test split.

    Args:
        method: ``anomalyclip`` | ``sultani`` | ``rtfm``; preset: ``shanghaitech`` | ``ucf_crime``
            | ``xd_violence`` | ``demo``; overrides: config keys to change.
        dataset: a :class:`~vadlib.data.VideoDataset`; store: its :class:`FeatureStore`.
        class_names: the configured class list (default: the dataset's); a training video whose
            class is not in it raises.
        val_fraction: share of the TRAINING videos held out for checkpoint selection.
        backbone: the CLIP backbone (AnomalyCLIP's learned prompts go through its text encoder).
        checkpoint_in: evaluate this checkpoint instead of training (no training epochs): a vadlib
            checkpoint, or a published lucazanella/AnomalyCLIP ``last.ckpt`` (imported with its
            ``ncentroid.pt`` when found beside it, else the prototype is computed from the normal
            training videos as the reference does; saved to ``checkpoint_out`` in vadlib's format).
        checkpoint_out: where to save the trained checkpoint.
    Returns ``{"method", "predictions", "history", "best_epoch", "config", "checkpoint", "seconds",
    "n_train", "n_val"}``.
    """
    classes = list(class_names or dataset.class_names)
    if classes[0] != "normal":
        raise ConfigError(f"train_mil: the class list must start with 'normal', got {classes}")
    test = dataset.videos("test")
    hist: list[dict] = []
    best, secs, n_tr, n_va = -1, 0.0, 0, 0
    if checkpoint_in and Path(checkpoint_in).suffix == ".ckpt":
        # a published lucazanella/AnomalyCLIP checkpoint: imported (vadlib.compat.zanella), evaluated as is
        from vadlib.compat.zanella import import_anomalyclip

        if method != "anomalyclip":
            raise ConfigError(f"checkpoint_in {checkpoint_in} is an AnomalyCLIP (lucazanella) checkpoint; set method: anomalyclip")
        m = import_anomalyclip(checkpoint_in, class_names=classes, require_centroid=False,
                               overrides=dict(overrides or {}))
        if m.imported["ncentroid"] is None:      # as the reference does when ncentroid.pt is absent
            m.prepare(load_weak_videos(store, dataset.videos("train"), classes))
            m.imported["ncentroid"] = "computed from the normal training videos"
        ckpt = Path(checkpoint_in)
        if checkpoint_out:
            ckpt = save_checkpoint(checkpoint_out, m, meta={"dataset": dataset.name, "imported": m.imported,
                                                            "features": feature_spec(getattr(store, "info", {}))})
    elif checkpoint_in:
        m = load_checkpoint(checkpoint_in, backbone=backbone)
        if list(m.class_names) != classes:
            raise ConfigError(f"checkpoint {checkpoint_in} has classes {m.class_names}, the run expects {classes}")
        ckpt = Path(checkpoint_in)
    else:
        train = load_weak_videos(store, dataset.videos("train"), classes)
        cfg = method_config(method, preset, overrides)
        if (cfg.get("reference") or {}).get("no_validation_split"):
            val_fraction = 0.0       # reference switch (flaw 6): all training videos, last epoch kept
        tr, va = split_validation(train, val_fraction, seed)
        n_tr, n_va = len(tr), len(va)
        D = train[0].features.shape[1]
        m = build_method(method, cfg, classes, D, backbone=backbone, seed=seed)
        r = fit(m, tr, va, seed=seed, log=log)
        hist, best, secs = r.history, r.best_epoch, r.seconds
        ckpt = None
        if checkpoint_out:
            ckpt = save_checkpoint(checkpoint_out, m, meta={"dataset": dataset.name, "seed": seed, "preset": preset,
                                                            "best_epoch": best, "val_fraction": val_fraction,
                                                            "features": feature_spec(getattr(store, "info", {}))})
    preds = predict_store(m, store, test)
    preds.meta.update(dataset=dataset.name, preset=preset, seed=seed)
    return {"method": m, "predictions": preds, "history": hist, "best_epoch": best, "config": m.cfg.to_dict(),
            "checkpoint": None if ckpt is None else str(ckpt), "seconds": secs, "n_train": n_tr, "n_val": n_va}
