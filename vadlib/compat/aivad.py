"""Reiss & Hoshen's attribute-based VAD (repo ``talreiss/Accurate-Interpretable-VAD``; methods.md §6.1):
reference-mode switches of the velocity feature.

The reference computes the velocity of an object from the flow crop of its box resized to
224×224 (``video_dataset.get_foreground``, ``cv2.resize`` INTER_LINEAR, displacements not
rescaled), box corners rounded up (``np.ceil``), magnitude ``|u| + |v|``, orientation from
``cv2.cartToPolar`` in radians × 180/π, ``B`` half-open bins over 0–360° (1 on Ped2, 8 on Avenue /
ShanghaiTech), each bin = the box mean of the magnitudes whose orientation falls in it
(``feature_extraction.extract_velocity``); on ShanghaiTech a person box's magnitudes are divided
by the box height. A frame without any box uses the whole flow field resized to 224×224.

:func:`vadlib.flow.descriptors.velocity_descriptor` computes the same histogram with these fixes,
each a field of :class:`AIVADSwitches` (defaults = vadlib; :data:`REFERENCE` = the reference):

* ``native_crop`` — vadlib averages over the box's own pixels; the reference over the 224×224
  resize of the crop (bilinear resampling weights some pixels more than others, and a box
  smaller than 224 px is upsampled).
* ``box_rounding`` — vadlib floors fractional box corners; the reference rounds them up.
* ``orientation`` — vadlib bins the angle in degrees from ``cartToPolar`` and puts an angle at
  360° in the last bin; the reference converts radians in float32 and drops an angle that rounds
  to 360° from every bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np

from vadlib.compat._switches import ReferenceSwitches
from vadlib.errors import ConfigError
from vadlib.flow.descriptors import BOX_ROUNDING, ORIENTATIONS, velocity_descriptor

#: the reference's crop size (``VideoDatasetWithFlows(patch_size=224)``)
REFERENCE_CROP = 224
#: orientation bins per dataset in the reference (``feature_extraction.extract``)
REFERENCE_BINS = {"ucsd_ped2": 1, "avenue": 8, "shanghaitech": 8}


@dataclass(frozen=True)
class AIVADSwitches(ReferenceSwitches):
    """Reference-mode switches of the velocity feature (module docstring)."""

    KIND: ClassVar[str] = "aivad"
    REFERENCE_VALUES: ClassVar[Mapping[str, object]] = {"native_crop": False, "box_rounding": "ceil",
                                                         "orientation": "radians"}

    native_crop: bool = True
    box_rounding: str = "floor"
    orientation: str = "degrees"

    def __post_init__(self):
        if self.box_rounding not in BOX_ROUNDING:
            raise ConfigError(f"aivad switch box_rounding='{self.box_rounding}' is unknown "
                              f"(known: {', '.join(BOX_ROUNDING)})")
        if self.orientation not in ORIENTATIONS:
            raise ConfigError(f"aivad switch orientation='{self.orientation}' is unknown "
                              f"(known: {', '.join(ORIENTATIONS)})")


DEFAULT = AIVADSwitches()
REFERENCE = AIVADSwitches.reference()


def velocity_feature(flow: np.ndarray, box: Sequence[float] | None, bins: int = 1,
                     switches: AIVADSwitches = DEFAULT, scale: float = 1.0) -> np.ndarray:
    """``(bins,)`` velocity of ``flow (H, W, 2)`` in ``box`` (None = whole frame) under ``switches``;
    ``scale`` divides the magnitudes (ShanghaiTech persons: the box height ``y1 − y0``)."""
    return velocity_descriptor(flow, box, bins, scale=scale,
                               crop_size=None if switches.native_crop else REFERENCE_CROP,
                               box_rounding=switches.box_rounding, orientation=switches.orientation)


def frame_velocities(flow: np.ndarray, boxes: np.ndarray, bins: int = 1, switches: AIVADSwitches = DEFAULT,
                     scales: Sequence[float] | None = None) -> np.ndarray:
    """``(n, bins)`` velocities of a frame's ``boxes (n, 4)``; no box → ``(1, bins)`` of the whole
    frame, as the reference."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return velocity_feature(flow, None, bins, switches)[None]
    scales = np.ones(len(boxes)) if scales is None else np.asarray(scales, np.float64)
    return np.stack([velocity_feature(flow, b, bins, switches, float(s)) for b, s in zip(boxes, scales)])
