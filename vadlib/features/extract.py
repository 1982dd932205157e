"""Streaming CLIP feature extraction into the :mod:`feature store <vadlib.features.store>`.

Frames are decoded in batches (decord ``get_batch`` for files, OpenCV for frame folders) by a
torch ``DataLoader`` over an ``IterableDataset``; with ``num_workers > 0`` decoding and
preprocessing run in worker processes and overlap the encoder. Preprocessing is done on
tensors, in batch: ``uint8 (B, H, W, 3)`` → resize shorter side to the encoder's size (bicubic,
antialiased, as open_clip/PIL) → centre crop (or 5 / 10 crops) → normalise.

Runs are resumable (finished videos are skipped) and scale out under ``torchrun``: each rank
takes a disjoint, frame-count-balanced share of the videos and rank 0 merges the indexes.

CLI::

    python -m vadlib.features.extract --dataset demo_a --root data/demo --backbone vadlib-tiny \\
        --pretrained random --out data/features --sampling every --stride 2
    torchrun --nproc_per_node=4 -m vadlib.features.extract --dataset ucf_crime --root ... \\
        --backbone ViT-B-16 --pretrained openai --out data/features --device cuda --precision fp16
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError, cli_errors
from vadlib.features.precision import PRECISIONS as PRECISIONS_ALL
from vadlib.features.precision import resolve_precision
from vadlib.features.store import CROPS, SAMPLINGS, FeatureStore, merge_indexes, store_dir

log = logging.getLogger("vadlib.features.extract")

try:  # torchvision's uint8 antialiased bicubic resize (optional; a float fallback is used without it)
    from torchvision.transforms.v2.functional import InterpolationMode as _IM
    from torchvision.transforms.v2.functional import resize as _tv_resize

    _BICUBIC = _IM.BICUBIC
except Exception:  # pragma: no cover
    _tv_resize, _BICUBIC = None, None

PRECISIONS = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
RESIZES = ("shorter", "squash")
ON_ERROR = ("raise", "skip")
CROP_RESIZE = 8 / 7  # multi-crop: shorter side to image_size * 8/7 (224 → 256), then crops of image_size


@dataclass
class ExtractConfig:
    """How frames become features.

    Attributes:
        sampling: ``"frame"`` (every frame), ``"every"`` (every ``stride``-th frame),
            ``"snippet"`` (one row per ``snippet_len`` frames = mean of their frame features) or
            ``"clip"`` (video backbones: one row per clip of ``clip_len`` consecutive frames, encoded
            together; clips past the end padded by repeating the last frame, see :func:`clip_starts`;
            a video shorter than one clip is filled by the backbone's ``short_video_indices(n)`` when
            it has one (ActionCLIP: every frame repeated in order), else by repeating its last frame).
        stride: frame step for ``"every"``.
        snippet_len: frames per snippet for ``"snippet"``.
        clip_len: frames per clip for ``"clip"``; None = the backbone's (:meth:`for_backbone`
            resolves it; another count than the checkpoint's raises).
        clip_stride: frames between clip starts; None = ``clip_len`` (non-overlapping clips).
        crops: 1 (centre), 5 (4 corners + centre) or 10 (5 + horizontal flips).
        batch_size: frames per encoder batch (a batch never spans two videos; clips: rounded down
            to whole clips, at least one).
        num_workers: DataLoader worker processes decoding + preprocessing (0 = in the main process).
        device: torch device of the encoder (preprocessing runs there too when it is CUDA).
        precision: None (default) = the backbone's precision (``load_backbone(precision=...)``, which
            casts the weights: the fast path); ``"bf16"`` / ``"fp16"`` over an fp32 backbone =
            ``torch.autocast`` (slower than casting on CPU; fp16 needs CUDA, bf16 a CPU with bf16 units).
        on_error: ``"raise"`` a :class:`DataError` naming the file, or ``"skip"`` the video
            (logged and listed under ``skipped`` in the index).
        resize: ``"shorter"`` (shorter side to the input size, then crop; as open_clip) or
            ``"squash"`` (whole frame to a square, no crop).
        progress: show a tqdm bar (frames/s).
        torch_threads: encoder threads in the main process (None = torch's default).
    """

    sampling: str = "every"
    stride: int = 1
    snippet_len: int = 16
    clip_len: int | None = None
    clip_stride: int | None = None
    crops: int = 1
    batch_size: int = 32
    num_workers: int = 0
    device: str = "cpu"
    precision: str | None = None
    on_error: str = "raise"
    resize: str = "shorter"
    progress: bool = True
    torch_threads: int | None = None

    def validate(self) -> "ExtractConfig":
        from vadlib.config import check

        checked = check(type(self), self, "extract")   # types: stride 2.5 or batch_size "32" raise, never truncate
        self.__dict__.update(checked.__dict__)         # 2.0 -> 2
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling '{self.sampling}'; known: {', '.join(SAMPLINGS)}")
        if int(self.crops) not in CROPS:
            raise ConfigError(f"crops must be one of {CROPS}, got {self.crops}")
        if int(self.stride) < 1 or int(self.snippet_len) < 1 or int(self.batch_size) < 1:
            raise ConfigError(f"stride, snippet_len and batch_size must be >= 1 "
                              f"(got {self.stride}, {self.snippet_len}, {self.batch_size})")
        if self.sampling == "clip":
            if self.clip_len is not None and int(self.clip_len) < 1 or \
                    self.clip_stride is not None and int(self.clip_stride) < 1:
                raise ConfigError(f"clip_len and clip_stride must be >= 1 (got {self.clip_len}, {self.clip_stride})")
            if int(self.crops) != 1:
                raise ConfigError(f"sampling 'clip' takes one centre crop: set crops to 1 (got {self.crops})")
        if int(self.num_workers) < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision '{self.precision}'; known: {', '.join(PRECISIONS)} "
                              "(or None: the backbone's)")
        if self.precision is not None:
            resolve_precision(self.precision, self.device)  # refuses fp16 off CUDA, bf16 without bf16 units
        if self.on_error not in ON_ERROR:
            raise ConfigError(f"on_error must be one of {ON_ERROR}, got '{self.on_error}'")
        if self.resize not in RESIZES:
            raise ConfigError(f"unknown resize '{self.resize}'; known: {', '.join(RESIZES)}")
        return self

    def for_backbone(self, backbone) -> "ExtractConfig":
        """This config checked against ``backbone`` (a copy): a video backbone (``kind == "clip"``) needs
        sampling ``clip`` and gets ``clip_len`` (None → the checkpoint's; another count raises) and
        ``clip_stride`` (None → ``clip_len``) resolved; a frame backbone refuses sampling ``clip``."""
        from dataclasses import replace

        from vadlib.features.backbones.base import is_clip_backbone

        cfg = replace(self).validate()
        name = f"{getattr(backbone, 'name', '?')} ({getattr(backbone, 'pretrained', '?')})"
        if is_clip_backbone(backbone):
            if cfg.sampling != "clip":
                raise ConfigError(f"backbone {name} encodes clips of {backbone.clip_len} frames: set extract.sampling "
                                  f"to clip (got '{cfg.sampling}')")
            want = int(backbone.clip_len)
            if cfg.clip_len is not None and int(cfg.clip_len) != want:
                raise ConfigError(f"checkpoint {name} was trained on {want}-frame clips but extract.clip_len is "
                                  f"{cfg.clip_len}: set clip_len to {want} (or null = the checkpoint's), or load a "
                                  f"checkpoint trained on {cfg.clip_len}-frame clips")
            cfg.clip_len = want
            cfg.clip_stride = int(cfg.clip_stride or want)
        elif cfg.sampling == "clip":
            raise ConfigError(f"backbone {name} encodes single frames: sampling 'clip' needs a video backbone "
                              "(xclip, actionclip/<arch>); for frame features over clips use sampling 'snippet'")
        return cfg

    def _clip(self) -> tuple[int, int]:
        if self.clip_len is None:
            raise ConfigError("sampling 'clip' with clip_len unresolved: call ExtractConfig.for_backbone(backbone)")
        return int(self.clip_len), int(self.clip_stride or self.clip_len)

    @property
    def step(self) -> int:
        """Frame step between decoded frames."""
        return int(self.stride) if self.sampling == "every" else 1

    @property
    def batch_frames(self) -> int:
        """Frames per decoded batch (clips: whole clips, at least one)."""
        if self.sampling == "clip":
            t = self._clip()[0]
            return max(1, int(self.batch_size) // t) * t
        return int(self.batch_size)

    def decode_indices(self, n_frames: int, short_fill: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
        """Frames to decode for a video of ``n_frames`` frames (clips: ``clip_len`` per clip, padded
        clips repeating the last frame). ``short_fill``: ``{n: (clip_len,) indices}`` filling a video of
        ``n < clip_len`` frames (:func:`short_clip_fill`); without an entry the last frame is repeated."""
        if self.sampling == "clip":
            t, _ = self._clip()
            if short_fill and int(n_frames) in short_fill:
                return np.asarray(short_fill[int(n_frames)], dtype=np.int64).reshape(t)
            starts = self.row_index(n_frames)
            return np.minimum(starts[:, None] + np.arange(t)[None, :], int(n_frames) - 1).reshape(-1)
        return np.arange(0, int(n_frames), self.step, dtype=np.int64)

    def row_index(self, n_frames: int) -> np.ndarray:
        """``(N,)`` first frame covered by each output row."""
        if self.sampling == "clip":
            return clip_starts(n_frames, *self._clip())
        step = int(self.snippet_len) if self.sampling == "snippet" else self.step
        return np.arange(0, int(n_frames), step, dtype=np.int64)

    def row_spans(self, n_frames: int) -> np.ndarray:
        """``(N, 2)`` int64 ``[start, end)`` frames of each row, padding excluded."""
        fi = self.row_index(n_frames)
        if self.sampling == "clip":
            return np.stack([fi, np.minimum(fi + self._clip()[0], int(n_frames))], 1)
        return np.stack([fi, np.append(fi[1:], int(n_frames))], 1)


REPEAT_LAST = "repeat last frame (clips past the video's end)"


def short_clip_fill(backbone, cfg: ExtractConfig) -> dict[int, np.ndarray] | None:
    """``{n: (clip_len,) int64 indices}`` for every ``n < clip_len``: how the backbone's authors fill a clip
    from a video shorter than one clip (its ``short_video_indices(n)``; ActionCLIP: 3 frames into 8 ->
    0 0 0 1 1 1 2 2). None when the backbone has no such rule (the last frame is repeated). A plain table
    (not the backbone's method) so DataLoader workers receive a few small arrays, not the model."""
    rule = getattr(backbone, "short_video_indices", None)
    if cfg.sampling != "clip" or rule is None:
        return None
    t = cfg._clip()[0]
    table = {n: np.asarray(rule(n), dtype=np.int64) for n in range(1, t)}
    for n, idx in table.items():
        if idx.shape != (t,) or idx.min() < 0 or idx.max() >= n:
            raise ConfigError(f"{backbone.name}: short_video_indices({n}) returned {idx.tolist()}, not {t} "
                              f"indices in 0..{n - 1}")
    return table


def padding_rule(backbone, cfg: ExtractConfig) -> str | None:
    """The store index's ``padding`` entry: how clips past the end and videos shorter than a clip are filled."""
    if cfg.sampling != "clip":
        return None
    if getattr(backbone, "short_video_indices", None) is None:
        return REPEAT_LAST
    return (REPEAT_LAST + "; a video shorter than one clip: every frame repeated in order, the authors' "
            "test-time rule (3 frames into 8: 0 0 0 1 1 1 2 2)")


def clip_starts(n_frames: int, clip_len: int, clip_stride: int) -> np.ndarray:
    """``(N,)`` int64 first frames of the clips of a video: ``0, stride, 2·stride, …`` until a clip
    reaches the last frame (``start + clip_len >= n_frames``), so every frame is covered and at most
    the last clip runs past the end (padded by repeating the last frame). A video shorter than one
    clip gives the single clip ``[0]``."""
    n, t, s = int(n_frames), int(clip_len), int(clip_stride)
    if n < 1 or t < 1 or s < 1:
        raise ConfigError(f"clip_starts: n_frames, clip_len and clip_stride must be >= 1 (got {n}, {t}, {s})")
    last = max(n - t, 0)
    starts = np.arange(0, last + 1, s, dtype=np.int64)
    if starts[-1] + t < n and starts[-1] + s < n:   # the stride skipped the last full clip: one more, padded
        starts = np.append(starts, starts[-1] + s)
    return starts


# ---------------------------------------------------------------------------------------------
# preprocessing on tensors


def resized_size(h: int, w: int, size: int) -> tuple[int, int]:
    """Shorter side to ``size`` keeping the aspect ratio (torchvision ``Resize(int)`` rule)."""
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def _center_box(h: int, w: int, ch: int, cw: int) -> tuple[int, int]:
    return int(round((h - ch) / 2.0)), int(round((w - cw) / 2.0))


class Preprocessor:
    """``uint8 (B, H, W, 3)`` RGB frames → normalised ``(B, 3, S, S)`` or ``(B, crops, 3, S, S)`` float32.

    Matches open_clip's PIL pipeline (Resize(S, bicubic, antialias) → CenterCrop(S) → ToTensor →
    Normalize) up to the rounding of PIL's integer resampling.
    """

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float], crops: int = 1,
                 resize: str = "shorter", resize_scale: float | None = None):
        self.size = int(image_size)
        self.crops = int(crops)
        self.resize = resize
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        if resize_scale is not None and float(resize_scale) < 1:
            raise ConfigError(f"Preprocessor: resize_scale must be >= 1 (resize, then crop), got {resize_scale}")
        scale = CROP_RESIZE if self.crops != 1 else (float(resize_scale) if resize_scale else 1.0)
        self.resize_to = int(round(self.size * scale))

    def describe(self) -> dict:
        """What goes in the store index under ``preprocessing``."""
        return {"image_size": self.size, "mean": [float(m) for m in self.mean.flatten() / 255.0],
                "std": [float(s) for s in self.std.flatten() / 255.0], "resize": self.resize,
                "interpolation": "bicubic-antialias", "resize_to": self.resize_to,
                "crop": {1: "center", 5: "five (tl,tr,bl,br,center)", 10: "ten (five + hflip)"}[self.crops]}

    def _resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(B, 3, H, W)`` uint8 → uint8 at ``size`` (bicubic, antialiased, PIL-like rounding)."""
        if _tv_resize is not None:  # torchvision's uint8 kernel: within 1 grey level of PIL, ~10x the float path
            return _tv_resize(x, list(size), interpolation=_BICUBIC, antialias=True)
        y = F.interpolate(x.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
        return y.round_().clamp_(0, 255).to(torch.uint8)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ConfigError(f"Preprocessor expects (B, H, W, 3) uint8 frames, got {tuple(frames.shape)}")
        x = frames.permute(0, 3, 1, 2)  # channels-last view: the fast layout for the uint8 kernel
        h, w = x.shape[-2:]
        if self.resize == "squash":
            nh, nw = self.resize_to, self.resize_to
        else:
            nh, nw = resized_size(h, w, self.resize_to)
        if (nh, nw) != (h, w):
            x = self._resize(x, (nh, nw))
        s = self.size
        top, left = _center_box(nh, nw, s, s)
        if self.crops == 1:
            x = x[:, :, top:top + s, left:left + s]
        else:
            boxes = [(0, 0), (0, nw - s), (nh - s, 0), (nh - s, nw - s), (top, left)]
            views = [x[:, :, t:t + s, l:l + s] for t, l in boxes]
            if self.crops == 10:
                views += [v.flip(-1) for v in views]  # the same five views mirrored
            x = torch.stack(views, 1)
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        if x.ndim == 5:
            mean, std = mean.unsqueeze(1), std.unsqueeze(1)
        return x.float().sub_(mean).div_(std).contiguous()


def preprocessor_for(backbone, cfg: ExtractConfig) -> Preprocessor:
    """The backbone's preprocessing; a backbone with ``resize_scale`` (ActionCLIP: 256/224, its authors'
    test view) resizes the shorter side to ``image_size * resize_scale`` before the centre crop."""
    return Preprocessor(backbone.image_size, backbone.mean, backbone.std, crops=cfg.crops, resize=cfg.resize,
                        resize_scale=getattr(backbone, "resize_scale", None))


# ---------------------------------------------------------------------------------------------
# frame batches (runs in DataLoader workers)


def _describe(exc: BaseException, video) -> tuple[str, str]:
    if isinstance(exc, DataError):
        return str(exc.path if exc.path is not None else video.path), exc.problem
    msg = str(exc).splitlines()[0] if str(exc) else ""
    return str(video.path), f"video '{video.name}': {exc.__class__.__name__}: {msg}"


class FrameBatches(torch.utils.data.IterableDataset):
    """Yields one dict per frame batch of every video, in order.

    Batches are numbered globally across videos and batch ``g`` is produced by worker
    ``g % num_workers``, so the DataLoader's round-robin order is exactly the global order
    and the main process holds at most one video's rows. A video that cannot be opened
    (or whose GT length mismatches) counts as one batch carrying the error.
    """

    def __init__(self, videos: Sequence, cfg: ExtractConfig, pre: Preprocessor | None,
                 short_fill: Mapping[int, np.ndarray] | None = None):
        self.videos = list(videos)
        self.cfg = cfg
        self.pre = pre
        self.short_fill = short_fill

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        g = 0
        for vi, video in enumerate(self.videos):
            try:
                src = video.open()
                n = len(src)
                if n == 0:
                    raise DataError(video.path, f"video '{video.name}' has no frames")
                video.check_labels(n)
                fps = float(src.fps or video.fps or DEFAULT_FPS)
            except Exception as exc:  # every worker sees the same failure: one error batch
                if g % nw == wid:
                    yield {"vi": vi, "b": 0, "nb": 1, "error": _describe(exc, video)}
                g += 1
                continue
            idx = self.cfg.decode_indices(n, self.short_fill)
            bs = self.cfg.batch_frames
            nb = (len(idx) + bs - 1) // bs
            failed = None
            for b in range(nb):
                if (g + b) % nw != wid:
                    continue
                chunk = idx[b * bs:(b + 1) * bs]
                item = {"vi": vi, "b": b, "nb": nb, "n_frames": n, "fps": fps, "idx": torch.from_numpy(chunk)}
                if failed is not None:  # keep the order: one placeholder per remaining batch
                    yield {**item, "error": failed}
                    continue
                try:
                    want, inverse = np.unique(chunk, return_inverse=True)  # a padded clip repeats frames
                    frames = src.get(want.tolist())
                    if len(frames) != len(want):
                        raise DataError(video.path, f"decoder returned {len(frames)} frames for {len(want)} "
                                        f"requested at {want[0]}..{want[-1]}")
                    if len(want) != len(chunk):
                        frames = np.asarray(frames)[inverse]
                    x = torch.from_numpy(np.ascontiguousarray(frames))
                    if self.pre is not None:
                        x = self.pre(x)
                except Exception as exc:
                    failed = _describe(exc, video)
                    yield {**item, "error": failed}
                    continue
                yield {**item, "x": x, "error": None}
            g += nb


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def _loader(videos: Sequence, cfg: ExtractConfig, pre: Preprocessor | None,
            short_fill: Mapping[int, np.ndarray] | None = None) -> torch.utils.data.DataLoader:
    nw = int(cfg.num_workers)
    kw: dict[str, Any] = {}
    if nw > 0:
        kw = {"worker_init_fn": _worker_init, "prefetch_factor": 2, "persistent_workers": False}
    return torch.utils.data.DataLoader(FrameBatches(videos, cfg, pre, short_fill), batch_size=None, num_workers=nw,
                                       pin_memory=str(cfg.device).startswith("cuda"), **kw)


# ---------------------------------------------------------------------------------------------
# the encoding loop


@dataclass
class VideoResult:
    """One video's outcome: features + frame index, or the error that stopped it."""

    video: Any
    feats: np.ndarray | None = None
    frame_index: np.ndarray | None = None
    n_frames: int = 0
    fps: float = DEFAULT_FPS
    error: tuple[str, str] | None = None
    spans: np.ndarray | None = None
    aux: np.ndarray | None = None
    padded_frames: int = 0


def effective_precision(backbone, cfg: ExtractConfig) -> str:
    """The precision features are computed in: ``cfg.precision`` if given, else the backbone's."""
    own = getattr(backbone, "precision", "fp32")
    if cfg.precision is None or cfg.precision == own:
        return own
    if own != "fp32":
        raise ConfigError(f"ExtractConfig.precision {cfg.precision} over a backbone loaded in {own}: load the "
                          f"backbone with precision='{cfg.precision}' (load_backbone(..., precision=...)) instead")
    return cfg.precision


def _input_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of the image tower's weights (``model.visual``; the model's own without one)."""
    return next(getattr(model, "visual", model).parameters()).dtype


def _autocast(backbone, cfg: ExtractConfig):
    if cfg.precision is None and getattr(backbone, "kind", "frame") == "clip":
        return contextlib.nullcontext()   # a video backbone runs its own precision (its cast vision tower)
    dtype = PRECISIONS[effective_precision(backbone, cfg)]
    if dtype is None or dtype == _input_dtype(backbone.model):
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(cfg.device).type, dtype=dtype)


def _finish(rows: list[np.ndarray], n_frames: int, cfg: ExtractConfig) -> tuple[np.ndarray, np.ndarray]:
    feats = np.concatenate(rows, 0)
    fi = cfg.row_index(n_frames)
    if cfg.sampling == "snippet":
        sums = np.add.reduceat(feats.astype(np.float64), fi, axis=0)
        counts = np.diff(np.append(fi, n_frames)).astype(np.float64)
        feats = (sums / counts.reshape(-1, *([1] * (feats.ndim - 1)))).astype(np.float32)
    if len(feats) != len(fi):
        raise DataError(None, f"internal: {len(feats)} rows for {len(fi)} row indices")
    return np.ascontiguousarray(feats, dtype=np.float32), fi


def iter_extract(videos: Sequence, backbone, cfg: ExtractConfig, progress: Any = None) -> Iterator[VideoResult]:
    """Encode ``videos`` in order; yields one :class:`VideoResult` per video (errors included)."""
    cfg = cfg.for_backbone(backbone)
    device = torch.device(cfg.device)
    pre = preprocessor_for(backbone, cfg)
    on_gpu = device.type == "cuda"
    if cfg.torch_threads:
        torch.set_num_threads(int(cfg.torch_threads))
    model = backbone.model
    if next(model.parameters()).device != device:
        if hasattr(backbone, "to"):   # a backbone with modules beside .model (ActionCLIP's visual prompt)
            backbone.to(device)
            model = backbone.model
        else:
            model = model.to(device)
    model.eval()
    wdtype = _input_dtype(model)  # a bf16 / fp16 cast image tower takes inputs of its dtype
    clips = cfg.sampling == "clip"
    t_clip = cfg._clip()[0] if clips else 1
    aux_name = getattr(backbone, "aux", None) if clips else None
    cur: VideoResult | None = None
    rows: list[np.ndarray] = []
    aux_rows: list[np.ndarray] = []
    for item in _loader(videos, cfg, None if on_gpu else pre, short_clip_fill(backbone, cfg)):
        vi = item["vi"]
        if cur is None or cur.video is not videos[vi]:
            cur, rows, aux_rows = VideoResult(videos[vi]), [], []
        if item["error"] is not None:
            cur.error = cur.error or tuple(item["error"])
        elif cur.error is None:
            # inference mode only around the work: the caller's code between yields stays unaffected
            with torch.inference_mode():
                x = item["x"].to(device, non_blocking=True)
                if on_gpu:
                    x = pre(x)
                lead = x.shape[:-3]
                with _autocast(backbone, cfg):
                    if clips:   # (B·T, 3, S, S) → (B, T, 3, S, S) → (B, D) [+ (B, P, D) aux]
                        xc = x.reshape(-1, t_clip, *x.shape[-3:])
                        if aux_name:
                            f, a = backbone.encode_clips_aux(xc)
                            aux_rows.append(a.float().cpu().numpy())
                        else:
                            f = backbone.encode_clips(xc)
                    else:
                        f = model.encode_image(x.reshape(-1, *x.shape[-3:]).to(wdtype))
                rows.append(f.float().reshape(-1, f.shape[-1]).cpu().numpy() if clips
                            else f.float().reshape(*lead, -1).cpu().numpy())
            cur.n_frames, cur.fps = int(item["n_frames"]), float(item["fps"])
            if progress is not None:
                progress.update(len(item["idx"]))
        if item["b"] == item["nb"] - 1:
            if cur.error is None:
                try:
                    cur.video.check_labels(cur.n_frames)  # builds interval GT in this process too
                    cur.feats, cur.frame_index = _finish(rows, cur.n_frames, cfg)
                    if clips:
                        cur.spans = cfg.row_spans(cur.n_frames)
                        cur.padded_frames = int(len(cur.spans) * t_clip - (cur.spans[:, 1] - cur.spans[:, 0]).sum())
                        cur.aux = np.concatenate(aux_rows, 0) if aux_name else None
                except DataError as exc:
                    cur.error = (str(exc.path or cur.video.path), exc.problem)
            rows, aux_rows = [], []
            yield cur
            cur = None


def extract_video_result(video, backbone, cfg: ExtractConfig | None = None, progress: Any = None) -> VideoResult:
    """One video → its :class:`VideoResult` (features, frame index, and for clips the spans, padding and
    the backbone's aux array); raises :class:`DataError` naming the file on failure."""
    cfg = cfg or ExtractConfig()
    for res in iter_extract([video], backbone, cfg, progress=progress):
        if res.error is not None:
            raise DataError(*res.error)
        return res
    raise DataError(video.path, "no output (internal error)")


def extract_video(video, backbone, cfg: ExtractConfig | None = None, progress: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """One video → ``(feats, frame_index)``: ``(N, D)`` (or ``(N, crops, D)``) float32 and ``(N,)`` int64.

    ``progress``: an object whose ``update(k)`` is told each batch's frame count (as in :func:`iter_extract`).
    Raises :class:`DataError` naming the file whatever ``cfg.on_error`` says.
    """
    cfg = cfg or ExtractConfig()
    for res in iter_extract([video], backbone, cfg, progress=progress):
        if res.error is not None:
            raise DataError(*res.error)
        return res.feats, res.frame_index
    raise DataError(video.path, "no output (internal error)")


# ---------------------------------------------------------------------------------------------
# datasets, sharding, resume


def store_info(dataset_name: str, backbone, cfg: ExtractConfig) -> dict:
    """The index config of a store extracted from ``dataset_name`` with ``backbone`` and ``cfg``."""
    from vadlib.features.backbones.base import text_path_of

    cfg = cfg.for_backbone(backbone)
    pre = preprocessor_for(backbone, cfg)
    clip = cfg.sampling == "clip"
    return {"dataset": dataset_name, "backbone": backbone.name, "pretrained": str(backbone.pretrained),
            "real_weights": bool(backbone.real_weights), "source": "extracted",
            "preprocessing": pre.describe(), "sampling": cfg.sampling,
            "stride": int(cfg.stride) if cfg.sampling == "every" else 1,
            "snippet_len": int(cfg.snippet_len) if cfg.sampling == "snippet" else None,
            "clip_len": int(cfg.clip_len) if clip else None, "clip_stride": int(cfg.clip_stride) if clip else None,
            "aux": getattr(backbone, "aux", None) if clip else None,
            "padding": padding_rule(backbone, cfg),
            "text_path": text_path_of(backbone),
            "crops": int(cfg.crops), "dtype": "float32", "precision": effective_precision(backbone, cfg),
            "precision_reason": (getattr(backbone, "precision_reason", "requested") if cfg.precision is None
                                 else f"ExtractConfig.precision {cfg.precision} (torch.autocast)"),
            "embed_dim": int(backbone.embed_dim)}


def frame_count(video) -> int:
    """The video's frame count (from the record, else by opening it; 1 if it cannot be opened)."""
    if video.num_frames:
        return int(video.num_frames)
    try:
        return max(len(video.open()), 1)
    except Exception:
        return 1


def shard_videos(videos: Sequence, world: int, counts: Sequence[int] | None = None) -> list[list]:
    """Split ``videos`` into ``world`` disjoint shares balanced by frame count.

    Deterministic: longest first (ties by name), each to the currently lightest share (ties to
    the lowest rank); within a share the original order is kept.
    """
    world = int(world)
    if world < 1:
        raise ConfigError(f"world size must be >= 1, got {world}")
    counts = [frame_count(v) for v in videos] if counts is None else list(counts)
    if len(counts) != len(videos):
        raise ConfigError(f"shard_videos: {len(videos)} videos but {len(counts)} counts")
    order = sorted(range(len(videos)), key=lambda i: (-int(counts[i]), str(getattr(videos[i], "name", i))))
    load = [0] * world
    owner = [0] * len(videos)
    for i in order:
        r = min(range(world), key=lambda k: (load[k], k))
        owner[i] = r
        load[r] += int(counts[i])
    return [[v for i, v in enumerate(videos) if owner[i] == r] for r in range(world)]


def dist_env() -> tuple[int, int]:
    """``(rank, world)`` from torch.distributed when initialised, else from RANK/WORLD_SIZE, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def _barrier() -> bool:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        return True
    return False


def _split_videos(dataset, splits: Sequence[str]) -> list:
    vids, seen, missing = [], set(), []
    for s in splits:
        if s not in dataset.splits:
            missing.append(s)
            continue
        for v in dataset.videos(s):
            if v.name in seen:
                raise DataError(dataset.root, f"video name '{v.name}' occurs twice in dataset '{dataset.name}'")
            seen.add(v.name)
            vids.append(v)
    if missing and len(missing) == len(splits):
        raise DataError(dataset.root, f"dataset '{dataset.name}' has none of the splits {list(splits)} "
                        f"(has: {', '.join(dataset.splits)})")
    for s in missing:
        log.warning("dataset '%s' has no split '%s'; extracting %s", dataset.name, s,
                    [x for x in splits if x not in missing])
    return vids


def extract_dataset(dataset, backbone, out_root: str | Path, cfg: ExtractConfig | None = None,
                    splits: Sequence[str] = ("train", "test"), shard: tuple[int, int] | None = None) -> FeatureStore:
    """Extract features of every video of ``splits`` into the store for this config; resumable.

    Args:
        dataset: a :class:`~vadlib.data.VideoDataset`.
        backbone: a :class:`~vadlib.features.Backbone`.
        out_root: feature root; the store is ``store_dir(out_root, dataset.name, info)``.
        shard: ``(rank, world)``; default from torch.distributed / RANK, WORLD_SIZE. Each rank
            extracts its frame-balanced share and writes a partial index; when torch.distributed
            is initialised rank 0 merges after a barrier, otherwise call :func:`merge_indexes`.
    Returns:
        the store (all ranks' videos once merged; this rank's view otherwise).
    Raises:
        DataError: a video fails (``on_error="raise"``), naming its file; finished videos stay.
    """
    cfg = (cfg or ExtractConfig()).for_backbone(backbone)
    fill = short_clip_fill(backbone, cfg)
    rank, world = shard if shard is not None else dist_env()
    info = store_info(dataset.name, backbone, cfg)
    path = store_dir(out_root, dataset.name, info)
    store = FeatureStore.create(path, info, rank=rank, world=world)
    if not backbone.real_weights:
        log.warning("RANDOM WEIGHTS: backbone %s/%s is untrained; store %s is marked real_weights=false",
                    backbone.name, backbone.pretrained, path)
    videos = _split_videos(dataset, splits)
    mine = shard_videos(videos, world)[rank] if world > 1 else videos
    todo = [v for v in mine if not store.has(v.name)]
    for v in mine:  # finished ones still get their frame labels built (interval GT)
        if store.has(v.name) and v.frame_labels is None and v.label_builder is not None:
            v.check_labels(store.num_frames(v.name))
    log.info("%s: %d videos (%d finished, %d to do) -> %s", dataset.name, len(mine), len(mine) - len(todo),
             len(todo), path)
    bar = None
    if cfg.progress and todo:
        from tqdm.auto import tqdm

        known = [v.num_frames for v in todo]
        total = sum(len(cfg.decode_indices(n, fill)) for n in known) if all(known) else None
        bar = tqdm(total=total, unit="frame", desc=f"{dataset.name}" + (f" [rank {rank}/{world}]" if world > 1 else ""),
                   file=sys.stderr, dynamic_ncols=True, mininterval=1.0)
    t0 = time.perf_counter()
    try:
        for res in iter_extract(todo, backbone, cfg, progress=bar):
            v = res.video
            if res.error is not None:
                path_s, problem = res.error
                if cfg.on_error == "raise":
                    raise DataError(path_s, problem)
                log.warning("skipping video '%s': %s: %s", v.name, path_s, problem)
                store.mark_skipped(v.name, f"{path_s}: {problem}")
                continue
            meta = {"num_frames": res.n_frames, "fps": res.fps, "split": v.split, "label": int(v.label),
                    "class_name": v.class_name}
            if res.spans is not None:
                meta["padded_frames"] = res.padded_frames
                if res.n_frames < int(cfg.clip_len):
                    how = ("repeating every frame in order (%d padding frames), as ActionCLIP's authors sample "
                           "at test time" if fill else "repeating its last frame %d times, as the X-CLIP sampler does")
                    log.warning("video '%s' has %d frames, fewer than one %d-frame clip: padded by " + how
                                + " (%s; index: padded_frames)", v.name, res.n_frames, cfg.clip_len,
                                res.padded_frames, backbone.name)
            store.write(v.name, res.feats, res.frame_index, meta, spans=res.spans, aux=res.aux)
            if bar is not None:
                bar.set_postfix_str(v.name[-24:], refresh=False)
    finally:
        if bar is not None:
            bar.close()
    log.info("%s: extracted %d videos in %.1f s", dataset.name, len(todo), time.perf_counter() - t0)
    if world > 1:
        if _barrier():
            if rank == 0:
                merge_indexes(path)
            _barrier()
            return FeatureStore.open(path)
        return store
    return FeatureStore.open(path)


# ---------------------------------------------------------------------------------------------
# CLI


def dataset_options(name: str, root: str | None = None, options: Sequence[str] = (),
                    params_file: str | Path | None = None) -> dict[str, Any]:
    """The adapter options of the command line: ``datasets.<name>`` of ``params_file`` (if given),
    then ``KEY=VALUE`` strings (values read as YAML), then ``root``. Types are checked by the
    adapter (:func:`vadlib.data.release.check_options`); a malformed option raises ConfigError."""
    import yaml

    out: dict[str, Any] = {}
    if params_file is not None:
        from vadlib.config import validate_datasets
        from vadlib.config import load_params

        datasets = load_params(params_file).get("datasets") or {}
        if name not in datasets:
            raise ConfigError(f"{params_file}: datasets has no entry '{name}' (has: {', '.join(datasets) or 'none'})")
        out.update(validate_datasets({name: datasets[name]}, str(params_file))[name])
    for opt in options:
        key, eq, text = opt.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--dataset-option {opt!r}: expected KEY=VALUE (e.g. gt_root=/data/gt)")
        try:
            out[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as exc:
            raise ConfigError(f"--dataset-option {opt!r}: the value is not valid YAML ({exc})") from exc
    if root is not None:
        out["root"] = root
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m vadlib.features.extract", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", required=True, help="registered dataset name (vadlib.data.list_datasets())")
    ap.add_argument("--root", default=None, help="dataset root folder")
    ap.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE",
                    help="an adapter option (repeatable), the value read as YAML: --dataset-option gt_root=/data/gt "
                         "--dataset-option end_inclusive=false --dataset-option 'lengths=[1, 2]'")
    ap.add_argument("--params", default=None, metavar="PARAMS_YAML",
                    help="take the dataset's root and options from this file's datasets.<dataset> "
                         "(--root and --dataset-option override them)")
    ap.add_argument("--backbone", default="ViT-B-16")
    ap.add_argument("--pretrained", default="openai", help="open_clip tag, checkpoint path, or 'random'")
    ap.add_argument("--out", default="data/features", help="feature store root")
    ap.add_argument("--splits", default="train,test")
    d = ExtractConfig()
    ap.add_argument("--sampling", default=d.sampling, choices=SAMPLINGS)
    ap.add_argument("--stride", type=int, default=d.stride)
    ap.add_argument("--snippet-len", type=int, default=d.snippet_len)
    ap.add_argument("--clip-len", type=int, default=None,
                    help="sampling clip: frames per clip (default: the video backbone's checkpoint's)")
    ap.add_argument("--clip-stride", type=int, default=None, help="sampling clip: frames between clip starts "
                    "(default: the clip length)")
    ap.add_argument("--crops", type=int, default=d.crops, choices=CROPS)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--workers", type=int, default=d.num_workers)
    ap.add_argument("--device", default=d.device, help="cpu, cuda, or cuda:N (under torchrun: cuda:LOCAL_RANK)")
    ap.add_argument("--precision", default="auto", choices=list(PRECISIONS_ALL),
                    help="backbone precision: auto = bf16 on CPUs with AMX / AVX-512-BF16, fp16 on CUDA, else fp32")
    ap.add_argument("--on-error", default=d.on_error, choices=ON_ERROR)
    ap.add_argument("--resize", default=d.resize, choices=RESIZES)
    ap.add_argument("--threads", type=int, default=None, help="encoder threads (torch.set_num_threads)")
    ap.add_argument("--seed", type=int, default=0,
                    help="torch seed before building the backbone (random weights are then the same on every rank)")
    ap.add_argument("--no-progress", action="store_true")
    return ap


@cli_errors
def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", 1))
    device = args.device
    started = False
    try:
        if world > 1 and not dist.is_initialized():
            local = int(os.environ.get("LOCAL_RANK", 0))
            if device.startswith("cuda"):
                device = f"cuda:{local}" if device == "cuda" else device
                torch.cuda.set_device(torch.device(device))
            dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
            started = True
        import warnings

        from vadlib.data import get_dataset
        from vadlib.features.backbones import RandomWeightsWarning, load_backbone

        ds = get_dataset(args.dataset, **dataset_options(args.dataset, args.root, args.dataset_option, args.params))
        torch.manual_seed(args.seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RandomWeightsWarning)  # logged by extract_dataset instead
            bb = load_backbone(args.backbone, args.pretrained, device=device, precision=args.precision,
                               clip_len=args.clip_len)
        cfg = ExtractConfig(sampling=args.sampling, stride=args.stride, snippet_len=args.snippet_len,
                            clip_len=args.clip_len, clip_stride=args.clip_stride,
                            crops=args.crops, batch_size=args.batch_size, num_workers=args.workers, device=device,
                            on_error=args.on_error, resize=args.resize,
                            progress=not args.no_progress, torch_threads=args.threads)
        store = extract_dataset(ds, bb, args.out, cfg, splits=[s for s in args.splits.split(",") if s])
        rank, _ = dist_env()
        if rank == 0:
            print(f"{store.path}  ({len(store)} videos, {len(store.skipped)} skipped"
                  + ("" if bb.real_weights else ", RANDOM WEIGHTS") + ")")
    finally:
        if started:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["ExtractConfig", "FeatureStore", "Preprocessor", "VideoResult", "extract_dataset", "extract_video",
           "clip_starts", "iter_extract", "merge_indexes", "shard_videos", "store_info"]
