"""UCF-Crime adapter (``ucfcrime``), Sultani et al. CVPR 2018.

Release layout: ``root`` holds the class folders of videos (or a ``Videos/`` folder with them):
``Abuse/Abuse001_x264.mp4`` …, ``Training_Normal_Videos_Anomaly/``, ``Testing_Normal_Videos_Anomaly/``.
A listed video that is not at its listed relative path is looked up by file name anywhere under
``root`` (downloads differ in how the normal-video folders are named).

GT and lists (looked up in ``gt_root`` if given, else ``root``, its parent,
``UCF_Crimes-Train-Test-Split/Anomaly_Detection_splits`` under either):

* ``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` (``gt``) — ``<video>.mp4 <Class> s1 e1 s2 e2``,
  ``-1`` = no event; read as 0-based frame numbers with the end inclusive (RTFM's
  ``make_gt_ucf.py`` convention; ``end_inclusive=False`` reads it as exclusive); ends past the last frame are clipped (5 such videos). It
  defines the 290 test videos (140 anomalous + 150 normal).
* ``Anomaly_Train.txt`` (1,610 = 810 anomalous + 800 normal; video-level labels only) and
  ``Anomaly_Test.txt`` (290; must equal the annotation's videos). Without ``Anomaly_Test.txt`` the
  test videos are the annotation's (a warning is logged), found by file name under ``root``.
* ``frame_counts`` (optional): a file whose lines are ``<video path> <n_frames> …`` (e.g.
  ekosman's ``Test_Annotation.txt``); with it the per-frame labels are built at once, otherwise
  when the video is decoded (:meth:`Video.check_labels`).

``class_names``: ``normal`` then the 13 anomaly classes in alphabetical order (the order of the
release's ``ClassIDs.txt`` without its normal class): Abuse, Arrest, Arson, Assault, Burglary,
Explosion, Fighting, RoadAccidents, Robbery, Shooting, Shoplifting, Stealing, Vandalism.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset
from vadlib.data.registry import register_dataset
from vadlib.data.release import find_path, interval_labels, is_hidden, need_root, strict_options
from vadlib.data.video import VIDEO_EXTENSIONS
from vadlib.errors import DataError

UCF_CLASSES = ["Abuse", "Arrest", "Arson", "Assault", "Burglary", "Explosion", "Fighting", "RoadAccidents",
               "Robbery", "Shooting", "Shoplifting", "Stealing", "Vandalism"]
CLASS_NAMES = [NORMAL, *UCF_CLASSES]
UCF_DESCRIPTIONS = {
    "Abuse": "a person or animal being beaten, kicked or mistreated",
    "Arrest": "police arresting, handcuffing or restraining a person",
    "Arson": "a person deliberately setting fire to a building, car or object",
    "Assault": "a person attacking and hitting another person",
    "Burglary": "a person breaking into a house, shop or office to steal",
    "Explosion": "an explosion with a fireball, smoke and debris",
    "Fighting": "two or more people fighting, punching and wrestling",
    "RoadAccidents": "a road accident: vehicles colliding or hitting a pedestrian",
    "Robbery": "a person robbing someone or a shop, often threatening with a weapon",
    "Shooting": "a person shooting a gun at people",
    "Shoplifting": "a person stealing goods from a shop and hiding them",
    "Stealing": "a person stealing a car, bike or other property",
    "Vandalism": "a person damaging or destroying property",
}
NORMAL_TEST_FOLDER = "Testing_Normal_Videos_Anomaly"
log = logging.getLogger(__name__)
SPLIT_DIRS = ("", "Anomaly_Detection_splits", "UCF_Crimes-Train-Test-Split/Anomaly_Detection_splits")


@dataclass
class UCFAnnotation:
    """One line of the temporal annotation: intervals are 0-based, end inclusive."""

    video: str                      # file stem, e.g. "Abuse028_x264"
    class_name: str                 # "normal" or one of UCF_CLASSES
    intervals: list[tuple[int, int]]


def _class_of(token: str, path: Path, where: str) -> str:
    if "normal" in token.lower():
        return NORMAL
    if token not in UCF_CLASSES:
        raise DataError(path, f"{where}: unknown class '{token}' (known: {', '.join(UCF_CLASSES)})")
    return token


def parse_ucf_temporal_annotation(path: str | Path) -> list[UCFAnnotation]:
    """``Temporal_Anomaly_Annotation_for_Testing_Videos.txt`` → one :class:`UCFAnnotation` per video."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "temporal annotation file does not exist")
    out, seen = [], set()
    for k, line in enumerate(path.read_text().splitlines(), 1):
        f = line.split()
        if not f:
            continue
        if len(f) != 6:
            raise DataError(path, f"line {k}: expected '<video> <Class> s1 e1 s2 e2', got {line.strip()!r}")
        try:
            nums = [int(x) for x in f[2:]]
        except ValueError:
            raise DataError(path, f"line {k}: frame numbers are not integers: {line.strip()!r}") from None
        cls = _class_of(f[1], path, f"line {k}")
        ivs = [(s, e) for s, e in (nums[:2], nums[2:]) if s != -1 or e != -1]
        if any(s < 0 or e < s for s, e in ivs):
            raise DataError(path, f"line {k}: bad interval in {line.strip()!r}")
        if (cls == NORMAL) != (not ivs):
            raise DataError(path, f"line {k}: class {f[1]} with intervals {ivs} (normal videos have none, "
                            "anomalous ones at least one)")
        stem = Path(f[0]).stem
        if stem in seen:
            raise DataError(path, f"line {k}: video '{stem}' annotated twice")
        seen.add(stem)
        out.append(UCFAnnotation(stem, cls, ivs))
    if not out:
        raise DataError(path, "temporal annotation is empty")
    return out


def parse_ucf_list(path: str | Path) -> list[str]:
    """``Anomaly_Train.txt`` / ``Anomaly_Test.txt`` → relative video paths (``Class/video.mp4``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video list does not exist")
    lines = [ln.strip().replace("\\", "/") for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise DataError(path, "video list is empty")
    return lines


def parse_ucf_frame_counts(path: str | Path) -> dict[str, int]:
    """Lines ``<video path> <n_frames> …`` → ``{video stem: n_frames}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "frame-count file does not exist")
    out = {}
    for k, line in enumerate(path.read_text().splitlines(), 1):
        f = line.split()
        if not f:
            continue
        try:
            out[Path(f[0]).stem] = int(f[1])
        except (IndexError, ValueError):
            raise DataError(path, f"line {k}: expected '<video> <n_frames> …', got {line.strip()!r}") from None
    return out


def _videos_root(root: Path) -> Path:
    return root / "Videos" if (root / "Videos").is_dir() and not (root / "Abuse").is_dir() else root


class _Locator:
    """Find a listed video: at its relative path, else by file name anywhere under root."""

    def __init__(self, root: Path):
        self.root = root
        self._index: dict[str, Path] | None = None

    def __call__(self, rel: str, list_path: Path) -> Path:
        p = self.root / rel
        if p.is_file():
            return p
        if self._index is None:
            self._index = {q.name: q for q in self.root.rglob("*")
                           if q.suffix.lower() in VIDEO_EXTENSIONS and not is_hidden(q) and q.is_file()}
        if Path(rel).name in self._index:
            return self._index[Path(rel).name]
        raise DataError(p, f"video listed in {list_path.name} is missing (not found anywhere under {self.root})")


def _builder(ann: UCFAnnotation, gt_path: Path, end_inclusive: bool = True):
    cid = CLASS_NAMES.index(ann.class_name)

    def build(n: int) -> tuple[np.ndarray, np.ndarray]:
        return interval_labels(n, ann.intervals, [cid] * len(ann.intervals), gt_path, ann.video,
                               one_based=False, end_inclusive=end_inclusive)

    return build


@register_dataset("ucfcrime")
@strict_options("ucfcrime")
def ucfcrime(root: str | Path | None, gt: str = "Temporal_Anomaly_Annotation_for_Testing_Videos.txt",
             gt_root: str | Path | None = None, train_list: str = "Anomaly_Train.txt",
             test_list: str = "Anomaly_Test.txt", frame_counts: str | Path | None = None,
             end_inclusive: bool = True, fps: float = 30.0) -> VideoDataset:
    """UCF-Crime: 1,610 weakly labelled training videos, 290 test videos with temporal GT."""
    root = _videos_root(need_root(root, "ucfcrime"))
    bases = [Path(gt_root)] if gt_root is not None else [root, root.parent]
    folders = [b / d if d else b for b in bases for d in SPLIT_DIRS]
    gt_path = find_path(gt, folders, f"UCF-Crime temporal annotation '{gt}'")
    train_path = find_path(train_list, folders, f"UCF-Crime training list '{train_list}'")
    anns = {a.video: a for a in parse_ucf_temporal_annotation(gt_path)}
    try:
        test_path = find_path(test_list, folders, f"UCF-Crime test list '{test_list}'")
    except DataError as exc:
        # the temporal annotation lists exactly the test videos: without Anomaly_Test.txt it is the list
        test_path = gt_path
        test_rels = [f"{a.class_name if a.class_name != NORMAL else NORMAL_TEST_FOLDER}/{a.video}.mp4"
                     for a in anns.values()]
        log.warning("ucfcrime: %s; the %d test videos are taken from the temporal annotation %s instead",
                    exc, len(test_rels), gt_path)
    else:
        test_rels = parse_ucf_list(test_path)
    counts = None
    if frame_counts is not None:
        counts = parse_ucf_frame_counts(find_path(frame_counts, folders, f"frame-count file '{frame_counts}'"))
    locate = _Locator(root)

    train = []
    for rel in parse_ucf_list(train_path):
        cls = _class_of(rel.split("/")[0], train_path, rel)
        if Path(rel).stem in anns:
            raise DataError(train_path, f"training video '{rel}' is also a test video in {gt_path.name}")
        train.append(Video(name=Path(rel).stem, path=locate(rel, train_path), split="train",
                           label=int(cls != NORMAL), class_name=cls, fps=fps, meta={"list": str(train_path)}))
    listed = {Path(r).stem for r in test_rels}
    if listed != set(anns):
        only_l, only_a = sorted(listed - set(anns)), sorted(set(anns) - listed)
        raise DataError(test_path, f"test list and {gt_path.name} disagree: only in the list {only_l[:5]}, "
                        f"only in the annotation {only_a[:5]}")
    test = []
    for rel in test_rels:
        ann = anns[Path(rel).stem]
        v = Video(name=ann.video, path=locate(rel, test_path), split="test", label=int(ann.class_name != NORMAL),
                  class_name=ann.class_name, fps=fps,
                  meta={"gt_path": str(gt_path), "intervals": ann.intervals})
        build = _builder(ann, gt_path, bool(end_inclusive))
        if counts is not None:
            if ann.video not in counts:
                raise DataError(Path(str(frame_counts)), f"no frame count for test video '{ann.video}'")
            v.frame_labels, v.frame_classes = build(counts[ann.video])
        else:
            v.label_builder = build
        test.append(v)
    return VideoDataset(name="ucfcrime", root=root, splits={"train": train, "test": test},
                        class_names=list(CLASS_NAMES), descriptions=dict(UCF_DESCRIPTIONS), gt_file=gt,
                        meta={"fps": fps, "gt_path": str(gt_path), "lists": [str(train_path), str(test_path)],
                              "interval_convention": f"0-based, end {'inclusive' if end_inclusive else 'exclusive'}, "
                                                     "clipped to the video"})
