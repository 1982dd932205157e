"""``python -m vadlib.bench reference velocity --reference-repo PATH``: vadlib's velocity feature
against Reiss & Hoshen's code (``talreiss/Accurate-Interpretable-VAD``) on identical flow fields and boxes.

The reference's ``feature_extraction.extract_velocity`` and ``video_dataset.get_foreground`` /
``VideoDatasetWithFlows.resize_batch`` are imported from the user's clone at PATH at run time
(nothing of them is copied into vadlib). Their ``extract`` loop needs the dataset on disk, so
the bench calls those functions the way that loop does for one frame (a thin shim, below; plus,
under NumPy ≥ 2, :func:`_numpy1_setitem`): the
flow field ``(H, W, 2)`` is laid out as ``__getitem__`` lays it (``(1, 2, H, W)``), cropped and
resized to 224×224 per box (whole frame when there is no box), then ``cartToPolar`` → L1
magnitude (÷ box height for ShanghaiTech persons) → ``extract_velocity``.

Cases: Ped2-like (1 bin), Avenue-like (8 bins), ShanghaiTech-like (8 bins, person heights), a frame
without boxes; smooth random flows with fractional box corners and angles placed on bin edges
and next to 360°. Prints max absolute and relative (``max|Δ| / max|reference|``) differences with
every switch at the reference's behaviour (target relative ≤ 1e-5), then what each fix changes.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np

from vadlib.compat import aivad

ENV = "VADLIB_REFERENCE_AIVAD"
TARGET_REL = 1e-5


def import_reference(repo: str | Path) -> types.SimpleNamespace:
    """``feature_extraction`` and ``video_dataset`` from the clone at ``repo`` (its ``models`` imports
    OpenAI's ``clip`` package: ``pip install 'vadlib[reference]'``)."""
    from vadlib.bench.reference_dpam import ensure_pkg_resources

    repo = Path(repo).resolve()
    if not (repo / "feature_extraction.py").is_file() or not (repo / "video_dataset.py").is_file():
        raise SystemExit(f"--reference-repo {repo}: not a clone of talreiss/Accurate-Interpretable-VAD "
                         "(needs feature_extraction.py and video_dataset.py)")
    ensure_pkg_resources()
    sys.path.insert(0, str(repo))
    sys.dont_write_bytecode = True
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            fe = importlib.import_module("feature_extraction")
            vd = importlib.import_module("video_dataset")
    except ModuleNotFoundError as exc:
        raise SystemExit(f"the reference imports '{exc.name}', which is not installed: "
                         f"pip install 'vadlib[reference]' (or pip install {exc.name})") from exc
    finally:
        sys.path.remove(str(repo))
    _numpy1_setitem(fe)
    return types.SimpleNamespace(extract_velocity=fe.extract_velocity, get_foreground=vd.get_foreground,
                                 resize_batch=vd.VideoDatasetWithFlows.resize_batch)


class _Numpy1Array(np.ndarray):
    """An array that stores a size-1 array into one element as NumPy 1.x did."""

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray) and value.size == 1 and value.ndim > 0:
            value = value.reshape(())
        super().__setitem__(key, value)


def _numpy1_setitem(module) -> None:
    """``extract_velocity`` stores the 1×1 array ``temp_filt[subsample]`` into one element of
    ``np.zeros(orientations)``; NumPy ≥ 2 refuses that (1.x, which the reference was written for,
    did it with a deprecation warning). Shim: the module's ``np`` is numpy with ``zeros`` returning
    an array that accepts it; nothing else changes."""
    if int(np.__version__.split(".")[0]) < 2:
        return
    shim = types.ModuleType("numpy_as_1x")
    shim.__dict__.update({k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
    shim.zeros = lambda *a, **k: np.zeros(*a, **k).view(_Numpy1Array)
    module.np = shim


def reference_velocities(ref, flow: np.ndarray, boxes: np.ndarray, bins: int,
                         heights: np.ndarray | None = None) -> np.ndarray:
    """The reference's velocities of one frame (shim of ``extract``'s loop body; see module doc)."""
    import cv2

    flows_batch = np.asarray(flow, np.float32).transpose(2, 0, 1)[None]           # (1, 2, H, W)
    if len(boxes) > 0:
        crops = ref.get_foreground(img=flows_batch, bboxes=boxes, patch_size=224)  # (n, 1, 2, 224, 224)
    else:
        dummy = np.zeros((1, 3) + flows_batch.shape[2:], np.uint8)
        _, crops = ref.resize_batch(types.SimpleNamespace(patch_size=224), [0], dummy, flows_batch)
        crops = crops[None]
    crops = crops[:, 0]
    length_y = np.ones(1) if heights is None or len(boxes) == 0 else heights
    out = []
    for i in range(crops.shape[0]):
        img_flow = np.transpose(crops[i], [1, 2, 0])
        _, ang = cv2.cartToPolar(img_flow[..., 0], img_flow[..., 1])
        mag = np.sqrt(img_flow[..., 0] ** 2) + np.sqrt(img_flow[..., 1] ** 2)
        mag = mag / length_y[i] if heights is not None else mag
        out.append(np.asarray(ref.extract_velocity(img_flow, mag, ang, orientations=bins))[None])
    return np.concatenate(out)


def make_cases(seed: int = 0) -> list[dict]:
    """Flow fields ``(240, 360, 2)`` with boxes (fractional corners), per dataset-like setting."""
    import cv2

    rng = np.random.default_rng(seed)
    h, w = 240, 360

    def field():
        small = rng.normal(0, 2.0, (h // 20, w // 20, 2)).astype(np.float32)
        f = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        f += rng.normal(0, 0.3, f.shape).astype(np.float32)
        # angles on bin edges (0°, 45°, 90°, …) and just below 360° (u > 0, v = −tiny)
        f[10:30, 20:60] = np.array([1.5, 0.0], np.float32)
        f[30:50, 20:60] = np.array([1.0, 1.0], np.float32)
        f[50:70, 20:60] = np.array([0.0, -2.0], np.float32)
        f[70:90, 20:60] = np.array([3.0, -1e-7], np.float32)
        return f

    def boxes(n):
        x0 = rng.uniform(0, w - 80, n)
        y0 = rng.uniform(0, h - 100, n)
        return np.stack([x0, y0, x0 + rng.uniform(12, 80, n), y0 + rng.uniform(20, 100, n)], 1)

    fixed = np.array([[15.3, 5.7, 70.2, 95.9]])                      # covers the constructed angles
    ped = np.concatenate([fixed, boxes(5)])
    sht = np.concatenate([fixed, boxes(4)])
    person = np.array([True, True, False, True, False])
    return [
        {"name": "ped2-like, 1 bin, 6 boxes", "flow": field(), "boxes": ped, "bins": 1, "heights": None},
        {"name": "avenue-like, 8 bins, 6 boxes", "flow": field(), "boxes": ped, "bins": 8, "heights": None},
        {"name": "shanghaitech-like, 8 bins, /height", "flow": field(), "boxes": sht, "bins": 8,
         "heights": np.where(person, sht[:, 3] - sht[:, 1], 1.0)},
        {"name": "no box (whole frame), 8 bins", "flow": field(), "boxes": np.zeros((0, 4)), "bins": 8, "heights": None},
    ]


def diff(a, b) -> tuple[float, float]:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = float(np.abs(a - b).max())
    return d, d / max(float(np.abs(b).max()), 1e-30)


def compare(repo: str | Path, seed: int = 0) -> dict:
    """``{"reference": {case: (abs, rel)}, "fixes": {switch: {case: (abs, rel)}}}``."""
    ref = import_reference(repo)
    cases = make_cases(seed)
    want = {c["name"]: reference_velocities(ref, c["flow"], c["boxes"], c["bins"], c["heights"]) for c in cases}

    def table(sw):
        return {c["name"]: diff(aivad.frame_velocities(c["flow"], c["boxes"], c["bins"], sw, c["heights"]), want[c["name"]])
                for c in cases}

    res = {"reference": table(aivad.REFERENCE), "fixes": {}}
    for field in aivad.DEFAULT.to_dict():
        res["fixes"][field] = table(replace(aivad.REFERENCE, **{field: getattr(aivad.DEFAULT, field)}))
    res["fixes"]["all (vadlib default)"] = table(aivad.DEFAULT)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vadlib.bench reference velocity", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-repo", default=os.environ.get(ENV),
                    help=f"clone of talreiss/Accurate-Interpretable-VAD (default: ${ENV})")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not args.reference_repo:
        ap.error(f"give --reference-repo PATH (a clone of talreiss/Accurate-Interpretable-VAD) or set ${ENV}")
    res = compare(args.reference_repo, args.seed)
    print("velocity feature: vadlib vs talreiss/Accurate-Interpretable-VAD, identical flow fields (240x360) and boxes")
    print("relative = max|vadlib - reference| / max|reference|")
    print(f"\nreference mode (every switch at the reference's behaviour), target relative <= {TARGET_REL:g}:")
    print(f"  {'case':40s} {'max abs':>10s} {'relative':>10s}")
    ok = True
    for name, (a, r) in res["reference"].items():
        ok &= r <= TARGET_REL
        print(f"  {name:40s} {a:10.3g} {r:10.3g}{'' if r <= TARGET_REL else '  ABOVE TARGET'}")
    print("\ndefault mode: what each vadlib fix changes (that switch at vadlib's default, the others at the reference's):")
    for field, rows in res["fixes"].items():
        print(f"  [{field}]")
        for name, (a, r) in rows.items():
            print(f"    {name:38s} {a:10.3g} {r:10.3g}")
    print("\nreference mode:", "within target" if ok else "ABOVE TARGET")
    return 0 if ok else 1
