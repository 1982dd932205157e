"""The demo benchmark's renderer: two surveillance scenes with walkers and five anomaly classes.

``generate_demo(root, seed, size)`` writes, deterministically from ``seed``, for each scene
``root/<scene>/``:

* ``videos/{train,test}/<name>.mp4`` (OpenCV ``mp4v``; decord reads them) and the same frames as
  ``frames/{train,test}/<name>/000.jpg…``;
* ``annotations/<name>.npz`` (``frame_labels`` (T,) uint8, ``frame_classes`` (T,) int64 into
  ``["normal", *DEMO_CLASSES]``) and ``annotations/<name>.npy`` (the 0/1 labels alone) for test videos;
* ``masks/<name>.npz`` (``packed`` bits of a (T, H, W) bool array and its ``shape``) for test videos;
* ``index.json``: the videos of each split with video-level label/class and frame count. Weakly
  labelled abnormal training videos (for MIL) have a video-level label and class only.

and at the root ``classes.json`` (names + descriptions), ``manifest.json`` (the seed design's
format, read by the ``manifest`` adapter) and the marker ``demo.json`` (config + seed), written
last: the root is built in a temporary folder and renamed when complete.

Scenes: ``a`` — a paved plaza seen from high up (tiles, little perspective, few people walking
left/right); ``b`` — an asphalt path through grass seen obliquely (converging walkway, people far
away are small, many people walking towards/away from the camera).

Frame labels are 1 exactly on the frames where an anomalous object is visible (its mask has at
least ``min_mask_pixels`` pixels); masks are the object's drawn pixels (occlusion ignored, shadows
excluded).

The dataset adapters that read what it writes (``demo_a``, ``demo_b``), its class names and mask
format are :mod:`vadlib.data.demo`; ``python -m vadlib.synthetic.demo`` runs :func:`main` here.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from vadlib.data.base import NORMAL
from vadlib.data.demo import (CLASS_NAMES, DEMO_CLASSES, DEMO_DESCRIPTIONS, MARKER, SCENE_DESCRIPTIONS, SCENES,
                              save_masks)
from vadlib.errors import ConfigError, DataError
from vadlib.io import atomic_dir, write_json

GENERATOR_VERSION = 2  # bump when the output changes: a root of another version is regenerated


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo benchmark (per scene)."""

    train_normal: int = 7
    train_abnormal: int = 5
    test_normal: int = 2
    test_anomalous: int = 6
    frames: int = 60
    width: int = 160
    height: int = 120
    fps: float = 25.0
    second_event_prob: float = 0.35
    noise_std: float = 2.0
    min_mask_pixels: int = 3
    jpeg_quality: int = 95

    @classmethod
    def preset(cls, size: str) -> "DemoConfig":
        if size == "small":
            return cls()
        if size == "tiny":
            return cls(train_normal=3, train_abnormal=2, test_normal=1, test_anomalous=3, frames=28,
                       width=96, height=72)
        raise ConfigError(f"demo size {size!r} is not one of 'tiny', 'small'")


# ----------------------------------------------------------------------------- scenes (geometry)

class Scene:
    """Ground plane (``s`` along the walkway, ``c`` across, metres) → image, and a background."""

    name = ""
    s_range = (0.0, 1.0)      # where walkers enter/leave along the walkway
    c_range = (0.0, 1.0)      # walkway width
    c_side = (0.0, 1.0)       # off-walkway positions (loiterers step there)
    density = (2, 4)          # number of normal walkers kept in view
    vehicle_heading = (0.0, 0.0)  # |angle| (rad) of cyclists/carts to the walkway axis
    event_s = (0.0, 1.0)      # where a walker who falls or starts loitering is along the walkway
    anomaly_forward_prob = 0.5  # share of cyclists/carts/runners entering at s_range[0]
    side_fall_prob = 0.3

    def __init__(self, w: int, h: int):
        self.w, self.h = w, h

    def project(self, s: np.ndarray, c: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def scale(self, s: float, c: float) -> float:
        """Pixels per metre of a vertical object standing at ``(s, c)``."""
        raise NotImplementedError

    def background(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def haze(self, s: float) -> tuple[float, tuple[int, int, int]]:
        """Aerial perspective at distance ``s``: (blend weight, RGB colour) applied to drawn objects."""
        return 0.0, (0, 0, 0)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    import cv2

    n = rng.standard_normal(shape).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / (n.std() + 1e-6)


class PlazaScene(Scene):
    """Scene ``a``: paving tiles seen from a high camera, walkers move left/right."""

    name = "a"
    density = (2, 4)
    side_fall_prob = 0.0  # a sideways fall would be foreshortened to a standing shape from this camera

    def __init__(self, w: int, h: int):
        super().__init__(w, h)
        self.ppm = 0.16 * h                   # pixels per metre (horizontal)
        self.depth = 6.0                      # walkway width (m)
        self.y0 = 0.30 * h
        self.kc = (0.75 * h - self.y0) / self.depth
        self.s_range = (-1.0, w / self.ppm + 1.0)
        self.c_range = (0.5, self.depth - 0.5)
        self.c_side = (-0.6, self.depth + 0.4)
        self.event_s = (0.3 * w / self.ppm, 0.7 * w / self.ppm)

    def _persp(self, c):
        return 0.88 + 0.12 * np.asarray(c) / self.depth

    def project(self, s, c, z):
        p = self._persp(c)
        x = self.w / 2 + (np.asarray(s) * self.ppm - self.w / 2) * p
        y = self.y0 + np.asarray(c) * self.kc - np.asarray(z) * self.ppm * 0.8 * p
        return x, y

    def scale(self, s, c):
        return float(self.ppm * 0.8 * self._persp(c))

    def background(self, rng):
        h, w = self.h, self.w
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        c = (yy - self.y0) / self.kc
        p = self._persp(np.clip(c, -2, self.depth + 2))
        s = (self.w / 2 + (xx - self.w / 2) / p) / self.ppm
        tile = 0.6
        ti, tj = np.floor(s / tile).astype(int), np.floor(c / tile).astype(int)
        shade = rng.normal(0, 9, size=(64, 64)).astype(np.float32)
        tile_shade = shade[ti % 64, tj % 64]
        fs, fc = (s / tile) % 1.0, (c / tile) % 1.0
        grout = (fs < 0.07) | (fc < 0.09)
        base = np.array([176, 164, 146], np.float32)  # RGB beige stone
        img = base + tile_shade[..., None] + 4 * _smooth_noise(rng, (h, w), 1.0)[..., None]
        img[grout] = np.array([118, 110, 100], np.float32) + 3 * rng.standard_normal((int(grout.sum()), 1))
        grass = (c < -0.2) | (c > self.depth + 0.2)
        g = _smooth_noise(rng, (h, w), 2.5)[grass]
        fine = rng.standard_normal(int(grass.sum()))
        img[grass] = (np.array([70, 112, 52], np.float32) + (10 * g + 8 * fine)[:, None]
                      * np.array([0.6, 1.0, 0.5], np.float32))
        curb = (np.abs(c + 0.2) < 0.1) | (np.abs(c - self.depth - 0.2) < 0.1)
        img[curb] = np.array([200, 198, 190], np.float32)
        return np.clip(img, 0, 255)


class PathScene(Scene):
    """Scene ``b``: asphalt path through grass seen obliquely, walkers move towards/away."""

    name = "b"
    density = (6, 9)
    vehicle_heading = (0.12, 0.22)
    side_fall_prob = 1.0  # a forward fall along the line of sight is foreshortened to a blob
    anomaly_forward_prob = 1.0  # enter at the bottom edge and move away: from the far end they would
                                # stay tiny for most of a short video

    def __init__(self, w: int, h: int):
        super().__init__(w, h)
        self.yh = 0.12 * h                    # horizon
        self.f = 1.06 * h                     # focal length (px)
        self.cam = 0.88 * h * 4.0 / self.f    # camera height (m): the foot at 4 m is at the bottom row
        self.s_range = (3.2, 21.0)            # distance from the camera (m)
        self.c_range = (-1.7, 1.7)
        self.c_side = (-2.8, 2.8)
        self.event_s = (5.0, 9.0)

    def project(self, s, c, z):
        s = np.maximum(np.asarray(s, dtype=np.float64), 0.5)
        x = self.w / 2 + self.f * np.asarray(c) / s
        y = self.yh + self.f * (self.cam - np.asarray(z)) / s
        return x, y

    def scale(self, s, c):
        return float(self.f / max(s, 0.5))

    def haze(self, s):
        return float(np.clip(s / 60.0, 0, 0.6)), (186, 204, 222)

    def background(self, rng):
        h, w = self.h, self.w
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.zeros((h, w, 3), np.float32)
        below = yy > self.yh + 0.5
        d = np.where(below, self.f * self.cam / np.maximum(yy - self.yh, 0.5), 1e3)
        gx = (xx - w / 2) * d / self.f
        path = below & (np.abs(gx) < 2.0)
        grass = below & ~path
        n1 = _smooth_noise(rng, (h, w), 1.2)
        n2 = _smooth_noise(rng, (h, w), 5.0)
        fog = np.clip(d / 60.0, 0, 0.6)[..., None]  # same as haze()
        asphalt = np.array([92, 92, 96], np.float32) + (6 * n1 + 5 * n2)[..., None]
        stripes = path & ((d % 3.0) < 0.08) & (np.abs(gx) < 0.06)  # centre dashes
        edge = below & (np.abs(np.abs(gx) - 2.0) < 0.09)
        gr = (np.array([62, 104, 44], np.float32)
              + (14 * n1 + 10 * n2)[..., None] * np.array([0.5, 1.0, 0.4], np.float32))
        img = np.where(path[..., None], asphalt, gr)
        img[stripes] = np.array([210, 210, 200], np.float32)
        img[edge] = np.array([150, 150, 145], np.float32)
        sky_col = np.array(self.haze(0.0)[1], np.float32)
        img = np.where(below[..., None], img * (1 - fog) + sky_col * fog, 0)
        # sky and a row of buildings on the horizon
        sky = ~below
        img[sky] = sky_col - (self.yh - yy[sky])[:, None] * 1.5
        bx = 0
        while bx < w:
            bw = int(rng.integers(max(3, w // 14), max(5, w // 6)))
            bh = float(rng.uniform(0.04, 0.11)) * h
            col = np.array([120, 118, 125], np.float32) + rng.normal(0, 14, 3).astype(np.float32)
            y0 = int(max(0, self.yh - bh))
            img[y0:int(self.yh) + 1, bx:bx + bw] = col
            bx += bw + int(rng.integers(0, 3))
        return np.clip(img, 0, 255)


SCENE_TYPES: dict[str, type[Scene]] = {"a": PlazaScene, "b": PathScene}


# ----------------------------------------------------------------------------- agents

SHIRTS = [(200, 60, 50), (60, 90, 170), (230, 230, 225), (40, 40, 45), (90, 140, 80), (210, 170, 60),
          (150, 80, 140), (120, 120, 125), (70, 150, 170), (190, 120, 90)]
TROUSERS = [(40, 45, 70), (30, 30, 32), (90, 85, 80), (70, 55, 40), (60, 70, 95)]
SKIN = [(235, 200, 170), (205, 160, 125), (160, 115, 80), (110, 75, 50)]
VEHICLE = [(230, 200, 40), (210, 40, 40), (240, 240, 240), (40, 110, 200)]


@dataclass
class Agent:
    kind: str                  # walker | running | cyclist | cart | falling | loitering
    s: float
    c: float
    vs: float                  # m/frame along the walkway
    vc: float                  # m/frame across
    height: float              # m
    colors: dict
    phase: float = 0.0
    cadence: float = 0.0       # radians per metre walked
    anomalous: bool = False    # drawn into the anomaly mask on this frame
    cls: int = 0               # class id while anomalous
    event: int = -1
    state: str = ""
    timer: int = 0
    angle: float = 0.0         # pitch (falling, running lean), radians
    roll: bool = False         # falls sideways instead of forwards
    hs: float = 1.0            # heading (unit vector on the ground), kept while standing still
    hc: float = 0.0
    target_c: float = 0.0
    stand_frames: int = 0
    speed: float = 0.0


def _new_person(rng: np.random.Generator, kind: str, s: float, c: float, direction: float, fps: float) -> Agent:
    speed = float(rng.uniform(1.1, 1.5))
    ang = float(rng.normal(0, 0.05))
    return Agent(kind=kind, s=s, c=c, vs=direction * speed * math.cos(ang) / fps,
                 vc=speed * math.sin(ang) / fps, height=float(rng.normal(1.72, 0.07)),
                 hs=direction * math.cos(ang), hc=math.sin(ang),
                 colors={"shirt": SHIRTS[rng.integers(len(SHIRTS))], "trousers": TROUSERS[rng.integers(len(TROUSERS))],
                         "skin": SKIN[rng.integers(len(SKIN))],
                         "jitter": tuple(int(v) for v in rng.integers(-18, 19, 3))},
                 phase=float(rng.uniform(0, 2 * math.pi)), cadence=2 * math.pi / 1.4, speed=speed)


def _col(rgb, jitter=(0, 0, 0)) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(v + j, 0, 255)) for v, j in zip(rgb, jitter))
    return (b, g, r)  # OpenCV draws BGR


SHIFT = 4
ONE = 1 << SHIFT


def _pt(x, y) -> tuple[int, int]:
    return int(round(float(x) * ONE)), int(round(float(y) * ONE))


class Painter:
    """Draws agents on a BGR frame and (optionally) on a mask, with sub-pixel accuracy."""

    def __init__(self, scene: Scene):
        self.scene = scene

    def _proj(self, a: Agent, pts: np.ndarray) -> np.ndarray:
        """Body points ``(N, 3)`` = (forward, left, up) metres → image ``(N, 2)``."""
        fwd = np.array([a.hs, a.hc], np.float64)
        left = np.array([-fwd[1], fwd[0]])
        f, l, u = pts[:, 0], pts[:, 1], pts[:, 2]
        if a.angle:
            ca, sa = math.cos(a.angle), math.sin(a.angle)
            if a.roll:
                l, u = l * ca + u * sa, -l * sa + u * ca
            else:
                f, u = f * ca + u * sa, -f * sa + u * ca
        s = a.s + f * fwd[0] + l * left[0]
        c = a.c + f * fwd[1] + l * left[1]
        x, y = self.scene.project(s, c, u)
        return np.stack([x, y], 1)

    def prims(self, a: Agent) -> list[tuple]:
        """Drawing primitives ``(kind, points, size_px, colour_key)`` of one agent, back to front."""
        k = a.kind
        if k == "cart":
            return self._cart(a)
        hm = a.height
        px = self.scene.scale(a.s, a.c)
        sw = math.sin(a.phase)
        out: list[tuple] = []
        if k == "cyclist":
            r = 0.34
            th = np.linspace(0, 2 * np.pi, 14, endpoint=False)
            for cx in (-0.55, 0.55):
                ring = np.stack([cx + r * np.cos(th), np.full_like(th, 0.0), r + r * np.sin(th)], 1)
                out.append(("ring", self._proj(a, ring), max(1.0, 0.05 * px), "tyre"))
            frame = np.array([[-0.55, 0, r], [0.0, 0, r], [-0.15, 0, 0.95], [0.55, 0, r], [0.45, 0, 1.05]])
            out.append(("poly_line", self._proj(a, frame[[0, 1, 2, 0]]), max(1.0, 0.04 * px), "bike"))
            out.append(("poly_line", self._proj(a, frame[[1, 3, 4]]), max(1.0, 0.04 * px), "bike"))
            crank = np.array([0.18 * math.cos(a.phase), 0, r + 0.18 * math.sin(a.phase)])
            crank2 = np.array([-0.18 * math.cos(a.phase), 0, r - 0.18 * math.sin(a.phase)])
            hip = np.array([-0.15, 0, 1.0])
            knee = np.array([0.2, 0, 0.75])
            sh = np.array([0.2, 0, 1.45])
            for foot in (crank, crank2):
                out.append(("poly_line", self._proj(a, np.stack([hip, knee + [0, 0, foot[2] - r], foot])),
                            max(1.0, 0.08 * px * 0.9), "trousers"))
            out.append(("line", self._proj(a, np.stack([hip, sh])), max(1.5, 0.2 * px), "shirt"))
            out.append(("line", self._proj(a, np.stack([sh, np.array([0.45, 0, 1.05])])), max(1.0, 0.06 * px), "shirt"))
            out.append(("circle", self._proj(a, np.array([[0.27, 0, 1.62]])), max(1.0, 0.13 * px), "helmet"))
            return out
        stride = {"running": 0.5, "falling": 0.3, "walker": 0.3, "loitering": 0.3}.get(k, 0.3)
        if k == "loitering" and a.state in ("stand", "idle"):
            stride = 0.04
        if k == "falling" and a.state in ("fall", "lie"):
            stride = 0.12
        arm = 1.2 * stride
        hip = np.array([0.0, 0, 0.5 * hm])
        sh = np.array([0.03 if k == "running" else 0.0, 0, 0.8 * hm])
        head = np.array([sh[0] + 0.02, 0, 0.925 * hm])
        feet = [np.array([stride * sw, 0.08, 0.0]), np.array([-stride * sw, -0.08, 0.0])]
        hands = [np.array([-arm * sw * 0.8, 0.16, 0.47 * hm]), np.array([arm * sw * 0.8, -0.16, 0.47 * hm])]
        if k == "running":
            feet = [f + [0, 0, 0.12 * max(0.0, math.sin(a.phase + s))] for f, s in zip(feet, (0, math.pi))]
            hands = [np.array([-arm * sw * 0.5, 0.16, 0.6 * hm]), np.array([arm * sw * 0.5, -0.16, 0.6 * hm])]
        if k == "loitering" and a.state == "idle":
            hands = [np.array([0.1, 0.22, 0.55 * hm]), np.array([0.1, -0.22, 0.55 * hm])]
        leg_w = max(1.0, 0.075 * hm * px)
        for f in feet:
            out.append(("line", self._proj(a, np.stack([hip, f])), leg_w, "trousers"))
        out.append(("line", self._proj(a, np.stack([hip + [0, 0, 0.04 * hm], sh])), max(1.5, 0.15 * hm * px), "shirt"))
        for hnd in hands:
            out.append(("line", self._proj(a, np.stack([sh, hnd])), max(1.0, 0.05 * hm * px), "shirt"))
        out.append(("circle", self._proj(a, head[None]), max(0.8, 0.07 * hm * px), "skin"))
        return out

    def _cart(self, a: Agent) -> list[tuple]:
        px = self.scene.scale(a.s, a.c)
        L, W, Hh = 1.5, 0.95, 1.05
        box = np.array([[x, y, z] for x in (-L / 2, L / 2) for y in (-W / 2, W / 2) for z in (0.25, Hh)])
        top = np.array([[-L / 2, -W / 2, Hh], [L / 2, -W / 2, Hh], [L / 2, W / 2, Hh], [-L / 2, W / 2, Hh]])
        glass = np.array([[L / 2 - 0.05, -W / 2, 0.75], [L / 2 - 0.05, W / 2, 0.75], [L / 2 - 0.3, W / 2, 1.55],
                          [L / 2 - 0.3, -W / 2, 1.55]])
        out: list[tuple] = []
        for wx in (-L / 2 + 0.3, L / 2 - 0.3):
            for wy in (-W / 2, W / 2):
                out.append(("circle", self._proj(a, np.array([[wx, wy, 0.2]])), max(1.0, 0.2 * px), "tyre"))
        out.append(("hull", self._proj(a, box), 0, "body"))
        out.append(("hull", self._proj(a, top), 0, "top"))
        out.append(("hull", self._proj(a, glass), 0, "glass"))
        return out

    def colours(self, a: Agent) -> dict[str, tuple[int, int, int]]:
        c = a.colors
        j = c.get("jitter", (0, 0, 0))
        out = {"shirt": _col(c["shirt"], j), "trousers": _col(c["trousers"]), "skin": _col(c["skin"]),
               "tyre": _col((25, 25, 25)), "bike": _col(c.get("bike", (180, 30, 30))),
               "helmet": _col(c.get("helmet", (240, 240, 240)))}
        if a.kind == "cart":
            body = c["body"]
            out.update(body=_col(body), top=_col(tuple(min(255, v + 25) for v in body)), glass=_col((70, 90, 110)))
        k, haze = self.scene.haze(a.s)
        if k > 0:
            hz = haze[::-1]  # BGR
            out = {n: tuple(int(round(v * (1 - k) + h * k)) for v, h in zip(col, hz)) for n, col in out.items()}
        return out

    def draw(self, img: np.ndarray, a: Agent, mask: np.ndarray | None = None) -> None:
        import cv2

        cols = self.colours(a)
        # soft shadow on the ground (frame only, not part of the mask)
        px = self.scene.scale(a.s, a.c)
        x, y = self.scene.project(a.s, a.c, 0.0)
        ax = (max(1.0, 0.35 * px * (1.6 if a.kind in ("cart", "cyclist") else 1.0)), max(1.0, 0.1 * px))
        if a.kind != "falling" or a.state not in ("lie",):
            roi = img.copy()
            cv2.ellipse(roi, _pt(x, y), _pt(*ax), 0, 0, 360, (0, 0, 0), -1, cv2.LINE_AA, SHIFT)
            cv2.addWeighted(roi, 0.25, img, 0.75, 0, dst=img)
        for kind, pts, size, key in self.prims(a):
            targets = [(img, cols[key], cv2.LINE_AA)]
            if mask is not None:
                targets.append((mask, 255, cv2.LINE_8))
            for canvas, col, lt in targets:
                if kind == "line":
                    cv2.line(canvas, _pt(*pts[0]), _pt(*pts[1]), col, max(1, int(round(size))), lt, SHIFT)
                elif kind in ("poly_line", "ring"):
                    arr = np.round(pts * ONE).astype(np.int32)[None]
                    cv2.polylines(canvas, arr, kind == "ring", col, max(1, int(round(size))), lt, SHIFT)
                elif kind == "circle":
                    cv2.circle(canvas, _pt(*pts[0]), int(round(size * ONE)), col, -1, lt, SHIFT)
                elif kind == "hull":
                    hull = cv2.convexHull(np.round(pts * ONE).astype(np.int32))
                    cv2.fillPoly(canvas, [hull], col, lt, SHIFT)


# ----------------------------------------------------------------------------- simulation

@dataclass
class Event:
    cls: str
    start: int


class Simulator:
    """One video: normal walkers plus scheduled anomaly events, frame by frame."""

    def __init__(self, scene: Scene, rng: np.random.Generator, cfg: DemoConfig, events: list[Event]):
        self.scene, self.rng, self.cfg = scene, rng, cfg
        self.fps = cfg.fps
        self.events = sorted(events, key=lambda e: e.start)
        self.agents: list[Agent] = []
        self.painter = Painter(scene)
        lo, hi = scene.density
        self.target = int(rng.integers(lo, hi + 1))
        self.direction_bias = float(rng.uniform(0.4, 0.6))  # share of walkers moving towards +s
        for _ in range(self.target):
            self._spawn_walker(anywhere=True)
        self.next_event = 0
        self.light = float(rng.uniform(-6, 6))
        # a walker who will be well in view when a fall/loitering event starts (it is normal until then)
        self.reserved: dict[int, Agent] = {}
        for k, ev in enumerate(self.events):
            if ev.cls in ("falling", "loitering"):
                a = _new_person(rng, "walker", 0.0, float(rng.uniform(*scene.c_range)), self._direction(), self.fps)
                a.s = float(rng.uniform(*scene.event_s)) - a.vs * ev.start
                a.c -= a.vc * ev.start
                self.agents.append(a)
                self.reserved[k] = a

    # -- spawning
    def _direction(self) -> float:
        return 1.0 if self.rng.random() < self.direction_bias else -1.0

    def _spawn_walker(self, anywhere: bool = False) -> Agent:
        r = self.rng
        d = self._direction()
        s0, s1 = self.scene.s_range
        s = float(r.uniform(s0 + 0.3, s1 - 0.3)) if anywhere else (s0 if d > 0 else s1)
        c = float(r.uniform(*self.scene.c_range))
        a = _new_person(r, "walker", s, c, d, self.fps)
        self.agents.append(a)
        return a

    def _visible_walker(self) -> Agent | None:
        """A walker well inside the frame (to turn into a faller or loiterer)."""
        cands = []
        for a in self.agents:
            if a.kind != "walker":
                continue
            x, y = self.scene.project(a.s, a.c, 0.0)
            _, yt = self.scene.project(a.s, a.c, a.height)
            if (0.2 * self.scene.w < x < 0.8 * self.scene.w and yt > 0.03 * self.scene.h
                    and y < 0.95 * self.scene.h and self.scene.scale(a.s, a.c) * a.height > 0.14 * self.scene.h):
                cands.append(a)
        return cands[int(self.rng.integers(len(cands)))] if cands else None

    def _start_event(self, k: int) -> bool:
        ev = self.events[k]
        r = self.rng
        cid = CLASS_NAMES.index(ev.cls)
        if ev.cls in ("falling", "loitering"):
            a = self.reserved.get(k)
            if a is None or a not in self.agents or a.kind != "walker":
                a = self._visible_walker()
            if a is None:
                return False
            a.kind, a.anomalous, a.cls, a.event = ev.cls, True, cid, k
            if ev.cls == "falling":
                a.state, a.timer = "stumble", int(r.integers(2, 5))
                a.roll = bool(r.random() < self.scene.side_fall_prob)
            else:
                a.state = "leave"
                side = self.scene.c_side
                near = side[0] if abs(a.c - side[0]) < abs(a.c - side[1]) else side[1]
                step = min(abs(near - a.c), float(r.uniform(0.4, 1.2)))  # a short sidestep out of the flow
                a.target_c = a.c + math.copysign(step, near - a.c)
                a.stand_frames = int(r.integers(40, 90))
                a.vc = math.copysign(0.8 / self.fps, a.target_c - a.c)
                a.vs = math.copysign(0.25 / self.fps, a.vs)
            return True
        d = 1.0 if r.random() < self.scene.anomaly_forward_prob else -1.0
        s0, s1 = self.scene.s_range
        a = _new_person(r, ev.cls, s0 if d > 0 else s1, float(r.uniform(*self.scene.c_range)), d, self.fps)
        speed = {"running": r.uniform(3.8, 5.0), "cyclist": r.uniform(4.5, 6.0), "cart": r.uniform(2.6, 3.4)}[ev.cls]
        head = float(r.uniform(*self.scene.vehicle_heading)) * (1 if r.random() < 0.5 else -1)
        if ev.cls == "running":
            head *= 0.3
        a.vs, a.vc, a.speed = d * speed * math.cos(head) / self.fps, speed * math.sin(head) / self.fps, float(speed)
        a.hs, a.hc = d * math.cos(head), math.sin(head)
        if abs(head) > 0.05:  # enters from the side it heads away from, so it crosses the walkway
            a.c = self.scene.c_range[0] if head > 0 else self.scene.c_range[1]
        a.cadence = {"running": 2 * math.pi / 2.4, "cyclist": 2 * math.pi / 2.0, "cart": 0.0}[ev.cls]
        if ev.cls == "running":
            a.angle = 0.22
        if ev.cls == "cyclist":
            a.colors["bike"] = tuple(int(v) for v in r.integers(20, 230, 3))
            a.colors["helmet"] = SHIRTS[int(r.integers(len(SHIRTS)))]
        if ev.cls == "cart":
            a.colors["body"] = VEHICLE[int(r.integers(len(VEHICLE)))]
        a.anomalous, a.cls, a.event = True, cid, k
        self.agents.append(a)
        return True

    # -- dynamics
    def _step(self, a: Agent) -> None:
        r = self.rng
        if a.kind == "falling":
            if a.state == "stumble":
                a.timer -= 1
                if a.timer <= 0:
                    a.state, a.timer = "fall", 0
            elif a.state == "fall":
                a.timer += 1
                a.angle = min(math.pi / 2 - 0.05, a.angle + (math.pi / 2) / 7 * (0.5 + a.timer / 7))
                a.vs *= 0.7
                a.vc *= 0.7
                if a.angle >= math.pi / 2 - 0.06:
                    a.state = "lie"
            elif a.state == "lie":
                a.vs *= 0.3
                a.vc *= 0.3
                a.phase = 0.0
                return
        if a.kind == "loitering":
            if a.state == "leave":
                if abs(a.c - a.target_c) < 0.1:
                    a.state, a.timer = "stand", 0
                    a.vc = 0.0
                    a.vs = math.copysign(1e-6, a.vs)
            elif a.state in ("stand", "idle"):
                a.timer += 1
                a.c += 0.004 * math.sin(a.timer / 6.0)
                if a.timer % 25 == 0:
                    a.state = "idle" if a.state == "stand" else "stand"
                    a.vs, a.hs, a.hc = -a.vs, -a.hs, -a.hc  # turns around
                if a.timer > a.stand_frames:
                    a.state, a.anomalous = "resume", False  # walks on: normal again
                    a.kind = "walker"
                    a.vs = math.copysign(a.speed / self.fps, a.vs)
                    a.vc = (float(np.mean(self.scene.c_range)) - a.c) / (3.0 * self.fps)
                return
        a.s += a.vs
        a.c += a.vc
        dist = math.hypot(a.vs, a.vc)
        if dist > 0.05 / self.fps:
            a.hs, a.hc = a.vs / dist, a.vc / dist
        a.phase += a.cadence * dist
        if a.kind == "walker":
            lo, hi = self.scene.c_range
            if a.c < lo or a.c > hi:
                a.vc = -a.vc * 0.5
            a.vc += float(r.normal(0, 0.01)) / self.fps

    def _outside(self, a: Agent) -> bool:
        s0, s1 = self.scene.s_range
        return a.s < s0 - 1.0 or a.s > s1 + 1.0

    def run(self, frames: int, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Render ``frames`` frames → (frames (T, H, W, 3) uint8 BGR, masks (T, H, W) bool, classes (T,))."""
        h, w = bg.shape[:2]
        out = np.empty((frames, h, w, 3), np.uint8)
        masks = np.zeros((frames, h, w), bool)
        classes = np.zeros(frames, np.int64)
        pending_since = -1
        for t in range(frames):
            # anomaly schedule: one event at a time
            busy = any(a.anomalous for a in self.agents)
            if self.next_event < len(self.events) and not busy and t >= self.events[self.next_event].start:
                if self._start_event(self.next_event):
                    self.next_event += 1
                elif pending_since < 0:
                    pending_since = t
            for a in self.agents:
                self._step(a)
            self.agents = [a for a in self.agents if not self._outside(a)]
            n_walk = sum(a.kind == "walker" for a in self.agents)
            if n_walk < self.target and self.rng.random() < 0.08:
                self._spawn_walker()
            frame = np.clip(bg + self.light, 0, 255).astype(np.uint8)
            mask = np.zeros((h, w), np.uint8)
            order = sorted(self.agents, key=lambda a: self.scene.project(a.s, a.c, 0.0)[1])
            cls = 0
            for a in order:
                if a.anomalous:
                    m = np.zeros((h, w), np.uint8)
                    self.painter.draw(frame, a, m)
                    if int((m > 0).sum()) >= self.cfg.min_mask_pixels:
                        mask |= m
                        cls = a.cls
                else:
                    self.painter.draw(frame, a)
            noise = self.rng.normal(0.0, self.cfg.noise_std, frame.shape)
            out[t] = np.clip(frame + noise, 0, 255).astype(np.uint8)
            masks[t] = mask > 0
            classes[t] = cls if masks[t].any() else 0
        return out, masks, classes


# ----------------------------------------------------------------------------- writing

def _plan(cfg: DemoConfig, rng: np.random.Generator, n: int, offset: int) -> list[list[Event]]:
    """Events of ``n`` anomalous videos; the main classes go round the class list from ``offset``."""
    plans = []
    T = cfg.frames
    for i in range(n):
        main = DEMO_CLASSES[(offset + i) % len(DEMO_CLASSES)]
        start = int(rng.integers(int(0.12 * T), max(int(0.12 * T) + 1, int(0.4 * T))))
        evs = [Event(main, start)]
        if rng.random() < cfg.second_event_prob:
            other = [c for c in DEMO_CLASSES if c not in ("falling",) and c != main]
            if main != "falling":  # a fallen person lies until the end: no room for a second event
                evs.append(Event(other[int(rng.integers(len(other)))], start + int(0.3 * T)))
        plans.append(evs)
    return plans


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    import cv2

    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not vw.isOpened():
        raise DataError(path, "OpenCV cannot write mp4v videos here")
    for f in frames:
        vw.write(f)
    vw.release()


def _write_frames(folder: Path, frames: np.ndarray, quality: int) -> None:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        if not cv2.imwrite(str(folder / f"{i:03d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
            raise DataError(folder / f"{i:03d}.jpg", "OpenCV could not write the frame")


def _scene_seed(seed: int, scene: str) -> list[int]:
    return [int(seed), SCENES.index(scene) if scene in SCENES else sum(map(ord, scene))]


def _generate_scene(out: Path, scene_name: str, seed: int, cfg: DemoConfig) -> dict:
    scene = SCENE_TYPES[scene_name](cfg.width, cfg.height)
    base = _scene_seed(seed, scene_name)
    bg = scene.background(np.random.default_rng(base + [0]))[..., ::-1].astype(np.float32)  # RGB → BGR
    plan_rng = np.random.default_rng(base + [1])
    train_plans = _plan(cfg, plan_rng, cfg.train_abnormal, int(plan_rng.integers(len(DEMO_CLASSES))))
    test_plans = _plan(cfg, plan_rng, cfg.test_anomalous, int(plan_rng.integers(len(DEMO_CLASSES))))
    specs = {"train": [[] for _ in range(cfg.train_normal)] + train_plans,
             "test": [[] for _ in range(cfg.test_normal)] + test_plans}
    order = plan_rng.permutation(len(specs["test"]))
    specs["test"] = [specs["test"][i] for i in order]
    index: dict = {"scene": scene_name, "description": SCENE_DESCRIPTIONS.get(scene_name, ""), "fps": cfg.fps,
                   "width": cfg.width, "height": cfg.height, "videos": {}}
    for si, split in enumerate(("train", "test")):
        entries = []
        for i, events in enumerate(specs[split]):
            name = f"{scene_name}_{split}_{i:03d}"
            for attempt in range(5):  # a planned anomaly must be visible; retry with another stream if not
                rng = np.random.default_rng(base + [2 + si, i, attempt])
                frames, masks, classes = Simulator(scene, rng, cfg, events).run(cfg.frames, bg)
                if not events or classes.any():
                    break
            else:
                raise RuntimeError(f"demo generator: the planned anomaly of {name} never became visible")
            labels = masks.reshape(len(masks), -1).any(1).astype(np.uint8)
            _write_video(out / "videos" / split / f"{name}.mp4", frames, cfg.fps)
            _write_frames(out / "frames" / split / name, frames, cfg.jpeg_quality)
            present = [CLASS_NAMES[c] for c in dict.fromkeys(classes.tolist()) if c]
            anomalous = bool(events) and bool(labels.any())
            entry = {"name": name, "label": int(anomalous), "class_name": events[0].cls if anomalous else NORMAL,
                     "classes": present, "num_frames": int(cfg.frames)}
            if split == "test":
                np.savez_compressed(out / "annotations" / f"{name}.npz", frame_labels=labels, frame_classes=classes)
                np.save(out / "annotations" / f"{name}.npy", labels)
                save_masks(out / "masks" / f"{name}.npz", masks)
                entry["events"] = [[int(np.flatnonzero(classes == c)[0]), int(np.flatnonzero(classes == c)[-1]) + 1,
                                    CLASS_NAMES[c]] for c in dict.fromkeys(classes.tolist()) if c]
            entries.append(entry)
        index["videos"][split] = entries
    return index


def _marker_content(cfg: DemoConfig, seed: int, scenes: Sequence[str]) -> dict:
    return {"generator": "vadlib.data.demo", "version": GENERATOR_VERSION, "seed": int(seed),
            "scenes": list(scenes), "config": asdict(cfg), "classes": list(DEMO_CLASSES)}


def generate_demo(root: str | Path, seed: int = 0, size: str = "small", scenes: Sequence[str] = SCENES,
                  force: bool = False, **overrides) -> Path:
    """Write the demo benchmark under ``root`` (atomically); skip if it exists with the same config.

    ``overrides`` replace :class:`DemoConfig` fields of the ``size`` preset
    (e.g. ``frames=32, test_anomalous=5``). Returns ``root``.
    """
    root = Path(root)
    cfg = DemoConfig.preset(size)
    bad = sorted(set(overrides) - set(asdict(cfg)))
    if bad:
        raise ConfigError(f"generate_demo: unknown option(s) {', '.join(bad)}; known: {', '.join(asdict(cfg))}")
    cfg = replace(cfg, **overrides)
    unknown = [s for s in scenes if s not in SCENE_TYPES]
    if unknown:
        raise ConfigError(f"generate_demo: unknown scene(s) {unknown}; known: {', '.join(SCENE_TYPES)}")
    marker = _marker_content(cfg, seed, scenes)
    if not force and (root / MARKER).is_file():
        try:
            if json.loads((root / MARKER).read_text()) == json.loads(json.dumps(marker)):
                return root
        except ValueError:
            pass
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not (root / MARKER).is_file())):
        raise DataError(root, f"exists and is not a demo root (no {MARKER}); it would be replaced: "
                        "remove it or choose another root")
    with atomic_dir(root) as tmp:
        manifest: dict = {"train": {}, "test": {}, "class_names": CLASS_NAMES, "descriptions": DEMO_DESCRIPTIONS}
        for sc in scenes:
            out = tmp / sc
            for sub in ("videos/train", "videos/test", "frames/train", "frames/test", "annotations", "masks"):
                (out / sub).mkdir(parents=True, exist_ok=True)
            index = _generate_scene(out, sc, seed, cfg)
            write_json(out / "index.json", index)
            write_json(out / "classes.json", {"class_names": CLASS_NAMES, "descriptions": DEMO_DESCRIPTIONS})
            for split in ("train", "test"):
                manifest[split][sc] = [
                    {"video_path": f"{sc}/videos/{split}/{e['name']}.mp4", "anomaly": e["label"],
                     **({"gt_path": f"{sc}/annotations/{e['name']}.npy"} if split == "test" else {}),
                     "class_name": e["class_name"]}
                    for e in index["videos"][split]]
        write_json(tmp / "classes.json", {"class_names": CLASS_NAMES, "descriptions": DEMO_DESCRIPTIONS})
        write_json(tmp / "manifest.json", manifest)
        write_json(tmp / MARKER, marker)
    return root


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m vadlib.synthetic.demo", description=__doc__.splitlines()[0])
    p.add_argument("--root", default="data/demo")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="small", choices=("tiny", "small"))
    p.add_argument("--scenes", default=",".join(SCENES))
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    import time

    t0 = time.perf_counter()
    root = generate_demo(args.root, seed=args.seed, size=args.size, scenes=tuple(args.scenes.split(",")),
                         force=args.force)
    print(f"demo benchmark at {root} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    raise SystemExit(main())
