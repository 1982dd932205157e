"""Dense optical flow between consecutive frames, computed once per dataset and cached.

* Methods (registry ``FLOW_METHODS``): ``dis`` (OpenCV DIS, default; preset ``ultrafast`` |
  ``fast`` | ``medium``) and ``farneback`` (OpenCV Farnebäck).
* Frames are converted to gray and, when ``FlowConfig.ref_size`` is set, resized to that
  ``(H, W)`` *reference size* first, so flow of every dataset is in reference-pixel units
  (what makes a model transferable across resolutions).
* ``FlowConfig.upscale`` > 1 computes the flow on frames upscaled by that factor (finer detail for
  small objects, as Reiss & Hoshen run FlowNet2 at ≈ 2.8× Ped2's size) and resizes the field back to
  the reference size, displacements divided by the factor (so units stay reference pixels).
  DIS options (``options``: ``FinestScale``, ``VariationalRefinementIterations``, …; the setters of
  ``cv2.DISOpticalFlow``) refine the pyramid and the variational step.
* Cache: one ``<video>.npz`` per video holding ``flow`` ``(T-1, H, W, 2)`` float16
  (``flow[i]`` = motion from frame ``i`` to ``i+1``), quantised to ``1/quant`` px so zlib
  compresses it, written atomically; a ``flow.json`` beside the files records the config.
  Frame ``t`` of a video uses ``flow[max(t-1, 0)]`` (:func:`frame_flow_index`).
* Videos are processed in parallel by a process pool; a tqdm bar shows frames/s.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vadlib.defaults import DEFAULT_FPS
from vadlib.errors import ConfigError, DataError
from vadlib.io import atomic_path, write_json
from vadlib.registry import Registry

FLOW_METHODS: Registry[Callable[..., "FlowFn"]] = Registry("optical-flow method")
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

_DIS_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


@dataclass
class FlowConfig:
    """How flow is computed. ``ref_size``: ``(H, W)`` frames are resized to before flow
    (``None`` = native size). ``quant``: flow is rounded to multiples of ``1/quant`` px."""

    method: str = "dis"
    preset: str = "medium"
    ref_size: tuple[int, int] | None = None
    quant: int = 32
    options: dict = field(default_factory=dict)
    upscale: float = 1.0

    def __post_init__(self):
        if not self.upscale >= 1:
            raise ConfigError(f"flow.upscale must be >= 1 (1 = the reference size itself), got {self.upscale}")

    def key(self) -> dict:
        d = asdict(self)
        d["ref_size"] = list(self.ref_size) if self.ref_size else None
        if self.upscale == 1:   # caches written before `upscale` existed stay valid
            del d["upscale"]
        return d

    def folder_name(self) -> str:
        """``<method>-<preset>-<ref>-q<quant>`` plus ``-x<upscale>`` and a hash of ``options`` when set:
        one cache folder per flow configuration."""
        import hashlib

        ref = "native" if self.ref_size is None else f"{self.ref_size[0]}x{self.ref_size[1]}"
        name = f"{self.method}-{self.preset}-{ref}-q{self.quant}"
        if self.upscale != 1:
            name += f"-x{self.upscale:g}"
        if self.options:
            name += "-o" + hashlib.sha1(json.dumps(self.options, sort_keys=True).encode()).hexdigest()[:8]
        return name


@FLOW_METHODS.register("dis")
def _make_dis(preset: str = "medium", **options) -> FlowFn:
    import cv2

    if preset not in _DIS_PRESETS:
        raise ConfigError(f"unknown DIS preset '{preset}' (known: {', '.join(_DIS_PRESETS)})")
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
    for k, v in options.items():
        setter = getattr(dis, f"set{k}", None)
        if setter is None:
            raise ConfigError(f"DIS optical flow has no option '{k}'")
        setter(v)
    return lambda a, b: dis.calc(a, b, None)


@FLOW_METHODS.register("farneback")
def _make_farneback(preset: str = "", pyr_scale: float = 0.5, levels: int = 3, winsize: int = 15,
                    iterations: int = 3, poly_n: int = 5, poly_sigma: float = 1.2) -> FlowFn:
    import cv2

    return lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale, levels, winsize, iterations,
                                                     poly_n, poly_sigma, 0)


def make_flow_fn(cfg: FlowConfig) -> FlowFn:
    """The ``(gray_a, gray_b) -> (H, W, 2) float32`` function of ``cfg.method``."""
    return FLOW_METHODS.get(cfg.method)(preset=cfg.preset, **cfg.options)


def to_gray(frames: np.ndarray, ref_size: Sequence[int] | None = None) -> np.ndarray:
    """``(T, H, W[, 3])`` uint8 → ``(T, h, w)`` uint8 gray, resized to ``ref_size=(h, w)`` if given."""
    import cv2

    out = []
    for f in frames:
        g = cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.ndim == 3 else f
        if ref_size is not None and tuple(g.shape) != tuple(ref_size):
            g = cv2.resize(g, (int(ref_size[1]), int(ref_size[0])), interpolation=cv2.INTER_AREA)
        out.append(g)
    return np.stack(out)


def read_gray_video(video, ref_size: Sequence[int] | None = None) -> np.ndarray:
    """All frames of a :class:`~vadlib.data.Video` as ``(T, h, w)`` uint8 gray.

    Raises :class:`DataError` naming the video's path for one-frame videos and for frames of
    different sizes within the video.
    """
    src = video.open()
    n = len(src)
    if n < 2:
        raise DataError(video.path, f"video '{video.name}' has {n} frame(s); optical flow needs at least 2")
    grays, shape = [], None
    for start in range(0, n, 64):
        idx = list(range(start, min(n, start + 64)))
        try:
            frames = src.get(idx)
        except DataError:
            raise
        except Exception as exc:  # decoder errors
            raise DataError(video.path, f"cannot decode frames {idx[0]}..{idx[-1]} ({exc})") from exc
        if shape is None:
            shape = frames.shape[1:3]
        elif frames.shape[1:3] != shape:
            raise DataError(video.path, f"frames of different sizes within one video: "
                            f"{tuple(shape)} and {tuple(frames.shape[1:3])}")
        grays.append(to_gray(frames, ref_size))
    return np.concatenate(grays)


def compute_flow(gray: np.ndarray, cfg: FlowConfig) -> np.ndarray:
    """``(T, H, W)`` uint8 → ``(T-1, H, W, 2)`` float16 flow (quantised to ``1/cfg.quant`` px)."""
    if gray.ndim != 3 or gray.shape[0] < 2:
        raise DataError(None, f"need (T>=2, H, W) gray frames, got shape {gray.shape}")
    import cv2

    fn = make_flow_fn(cfg)
    h, w = gray.shape[1:]
    up = float(cfg.upscale)
    big = (int(round(w * up)), int(round(h * up)))
    prev = cv2.resize(gray[0], big, interpolation=cv2.INTER_LINEAR) if up != 1 else gray[0]
    out = np.empty((gray.shape[0] - 1, h, w, 2), np.float16)
    for i in range(gray.shape[0] - 1):
        cur = cv2.resize(gray[i + 1], big, interpolation=cv2.INTER_LINEAR) if up != 1 else gray[i + 1]
        f = fn(prev, cur)
        if up != 1:   # back to the reference size, in reference pixels
            f = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) / up
        out[i] = np.round(f * cfg.quant) / cfg.quant if cfg.quant else f
        prev = cur
    return out


def frame_flow_index(n_frames: int) -> np.ndarray:
    """``(T,)`` index into the ``(T-1)`` flow fields for each frame: ``max(t-1, 0)``."""
    return np.maximum(np.arange(n_frames) - 1, 0)


@dataclass(frozen=True)
class VideoRef:
    """A picklable stand-in for a :class:`~vadlib.data.Video` (for worker processes)."""

    name: str
    path: Path
    split: str
    fps: float = DEFAULT_FPS
    num_frames: int | None = None

    def open(self):
        from vadlib.data.video import open_video

        return open_video(self.path, fps=self.fps)


def video_ref(video) -> VideoRef:
    """Strip a video down to what flow/feature workers need (closures do not pickle)."""
    return VideoRef(video.name, Path(video.path), video.split, float(getattr(video, "fps", DEFAULT_FPS)),
                    getattr(video, "num_frames", None))


def flow_path(cache_dir: str | Path, video) -> Path:
    return Path(cache_dir) / video.split / f"{video.name}.npz"


def _flow_job(video, cfg: FlowConfig, path: Path) -> tuple[str, int, float]:
    import cv2

    cv2.setNumThreads(1)
    t0 = time.perf_counter()
    gray = read_gray_video(video, cfg.ref_size)
    flow = compute_flow(gray, cfg)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, flow=flow, native_size=np.asarray(video.open().size, np.int64))
    return video.name, int(gray.shape[0]), time.perf_counter() - t0


def load_flow(path: str | Path) -> np.ndarray:
    """``(T-1, H, W, 2)`` float32 flow of one cached video."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "cached flow file is missing (run compute_dataset_flow first)")
    try:
        with np.load(path) as z:
            return z["flow"].astype(np.float32)
    except Exception as exc:
        raise DataError(path, f"cached flow file is unreadable ({exc}); delete it to recompute") from exc


@dataclass
class FlowCache:
    """Cached flow of one dataset: ``root/<split>/<video>.npz`` plus ``root/flow.json``."""

    root: Path
    config: FlowConfig
    stats: dict = field(default_factory=dict)

    def path(self, video) -> Path:
        return flow_path(self.root, video)

    def load(self, video) -> np.ndarray:
        """``(T-1, H, W, 2)`` float32."""
        return load_flow(self.path(video))


def compute_dataset_flow(videos: Sequence, cache_dir: str | Path, cfg: FlowConfig | None = None,
                         workers: int = 2, progress: bool = True) -> FlowCache:
    """Compute (or reuse) the flow of ``videos`` into ``cache_dir``; returns the cache.

    Videos whose ``.npz`` exists with the same config are skipped. A different config in
    ``flow.json`` raises (use another ``cache_dir``). Prints frames/s of the computed part.
    """
    from tqdm.auto import tqdm

    cfg = cfg or FlowConfig()
    cache_dir = Path(cache_dir)
    meta_path = cache_dir / "flow.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text()).get("config")
        if old != cfg.key():
            raise ConfigError(f"{meta_path}: flow cache was made with {old}, not {cfg.key()}; "
                              "use another cache folder or delete this one")
    cache_dir.mkdir(parents=True, exist_ok=True)
    write_json(meta_path, {"config": cfg.key(), "layout": "<split>/<video>.npz, key 'flow' (T-1,H,W,2) float16"})
    todo = [v for v in videos if not flow_path(cache_dir, v).is_file()]
    n_frames, t0 = 0, time.perf_counter()
    if todo:
        bar = tqdm(total=len(todo), desc=f"flow ({cfg.method})", unit="video", disable=not progress)
        if workers <= 1:
            results = (_flow_job(v, cfg, flow_path(cache_dir, v)) for v in todo)
            for name, n, _ in results:
                n_frames += n
                bar.update(1)
                bar.set_postfix(fps=f"{n_frames / (time.perf_counter() - t0):.0f} frames/s")
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futs = [pool.submit(_flow_job, video_ref(v), cfg, flow_path(cache_dir, v)) for v in todo]
                for fut in as_completed(futs):
                    name, n, _ = fut.result()
                    n_frames += n
                    bar.update(1)
                    bar.set_postfix(fps=f"{n_frames / (time.perf_counter() - t0):.0f} frames/s")
        bar.close()
    dt = time.perf_counter() - t0
    stats = {"videos_computed": len(todo), "videos_cached": len(videos) - len(todo), "frames": n_frames,
             "seconds": dt, "frames_per_s": n_frames / dt if n_frames else None, "workers": workers}
    # "wall time:" lines depend on the run (speed, what was cached): stored notebooks drop them (vadlib.pipeline)
    if n_frames:
        print(f"wall time: optical flow ({cfg.method}/{cfg.preset}): {n_frames} frames of {len(todo)} videos in "
              f"{dt:.1f} s = {n_frames / dt:.1f} frames/s with {workers} worker(s)")
    else:
        print(f"wall time: optical flow: all {len(videos)} videos already cached in {cache_dir}")
    return FlowCache(cache_dir, cfg, stats)
