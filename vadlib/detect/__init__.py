"""``vadlib detect``: your own video in, an explained anomaly timeline out.

For each input video (any file decord reads, or a frames folder): features streamed through
the extractor, per-frame scores from the chosen method, events above a threshold that was
given or calibrated on *normal* reference footage, and an output folder with

* ``scores.csv`` / ``scores.parquet`` — frame, time, score, the prompt/class that fired;
* ``events.json`` — start, end, peak frame, peak score, label, the threshold and its source;
* ``timeline.png`` — score over time, events shaded, thumbnails of each event's peak frame;
* ``annotated.mp4`` — the input with a score bar and the event label drawn on each frame.

Methods: ``zeroshot`` (prompts), ``transfer`` (the transfer stage's VideoAnomalyCLIP of one source,
with the target's anomalies as prompts), ``flow_nf`` (the flow_nf stage's model), ``anomalyclip`` /
``sultani`` / ``rtfm`` (a train_mil checkpoint; AnomalyCLIP also names the class that fired), and
fusions ``a+b`` of them. A checkpoint is a path or a stage output name (``train_mil@demo_a``,
``transfer@demo_a``, ``flow_nf``). Features are encoded as the checkpoint's were (backbone, weights, sampling); asking
for anything else is an error. Thresholds calibrated on normal footage are saved beside the
checkpoint and reused when no threshold is given.
"""

from vadlib.detect.cli import (build_methods, build_parser, check_video, main, reference_videos,
                               threshold_beside)
from vadlib.detect.fusion import FusionMethod
from vadlib.detect.methods import (CHECKPOINT_METHODS, CLIP_METHODS, METHODS, DetectMethod, FlowNFMethod,
                                   TrainMILMethod, TransferMethod, ZeroShotMethod, as_prompt_list, check_features,
                                   default_flow_cache, encode_video, read_prompts, resolve_checkpoint, score_video)
from vadlib.detect.render import annotate_video, patch_heat_maps, plot_timeline, write_outputs

__all__ = ["CHECKPOINT_METHODS", "CLIP_METHODS", "METHODS", "DetectMethod", "FlowNFMethod", "FusionMethod",
           "TrainMILMethod", "TransferMethod", "ZeroShotMethod", "annotate_video", "as_prompt_list",
           "build_methods", "build_parser", "check_features", "check_video", "default_flow_cache", "encode_video",
           "main", "patch_heat_maps", "plot_timeline", "read_prompts", "reference_videos", "resolve_checkpoint",
           "score_video", "threshold_beside", "write_outputs"]

import sys  # noqa: E402
import types  # noqa: E402

from vadlib.detect.api import Detection, detect_videos  # noqa: E402

__all__ += ["Detection", "detect_videos"]


class _CallableModule(types.ModuleType):
    """``vadlib.detect(videos, method=..., out=...)`` calls :func:`detect_videos` (the package stays a
    package: ``vadlib.detect.cli`` etc.). A module cannot be shadowed by a function of the same name in
    ``vadlib/__init__.py`` (importing a submodule rebinds the name), so the package itself is callable."""

    def __call__(self, *args, **kwargs):
        return detect_videos(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
