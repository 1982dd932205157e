"""The one plain PyTorch training loop for the weakly supervised methods of
:data:`vadlib.methods.METHODS` (AnomalyCLIP, Sultani MIL, RTFM top-k); the ``train_mil`` stage
(:mod:`vadlib.stages.train_mil`) calls it.

* seeded and repeatable on CPU (numpy Generator, torch seeds, deterministic algorithms);
* batches of half abnormal / half normal videos; an epoch runs ``max(n_abn, n_nor) // half``
  steps, the shorter list cycled (Lightning's ``max_size_cycle``, as the reference);
* warm-up + cosine schedule stepped per optimisation step; warm-up starts at ``lr / warm_steps``,
  not 0 (fixes AnomalyCLIP flaw 4: "first epoch at lr 0");
* a validation split drawn from the TRAINING videos (stratified by class) selects the checkpoint
  (video-level AUC of the top-frame score + video-class accuracy — video labels only, since
  training videos carry weak labels); the test set is never looked at (fixes flaw 6);
* the methods themselves (adapters, registry, checkpoints) live in :mod:`vadlib.methods`; this
  module only drives their training hooks (``prepare`` / ``batch`` / ``loss`` / ``optimizer``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from vadlib.errors import ConfigError, DataError
from vadlib.methods import Method, WeakVideo, seed_everything


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
# the loop
# ---------------------------------------------------------------------------------------------


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
    A registered method that is not trained this way (``method.weak`` false, e.g. ``zeroshot``) is refused.
    """
    if not method.weak:
        raise ConfigError(f"method '{method.name}' is not trained on weakly labelled features by vadlib.train "
                          "(it declares weak = False); train one of vadlib.methods.METHODS that declares weak = True "
                          "(anomalyclip, sultani, rtfm)")
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
