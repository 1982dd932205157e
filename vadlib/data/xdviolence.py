"""XD-Violence adapter (``xdviolence``), Wu et al. ECCV 2020.

Release layout: ``root`` holds the videos, e.g. ``Train/*.mp4`` (3,954) and ``Test/*.mp4`` (800);
videos are found by name anywhere under ``root``. Which video is train or test comes from the
official lists ``rgb.list`` / ``rgb_test.list`` (XDVioDet feature lists, five lines per video;
plain video-name lists work too), looked up in ``gt_root`` (and its ``xdviodet/``), ``root`` and
``root/list``; without lists, videos under a first-level folder whose name starts with ``test``
are the test split and the others the training split.

Labels are in the file names: ``…_label_<c1>-<c2>-<c3>`` (up to three codes, first = main, ``0`` =
padding) or ``…_label_A`` (normal). Codes → ``class_names`` (fixed order):
``normal`` (A), ``fighting`` (B1), ``shooting`` (B2), ``riot`` (B4), ``abuse`` (B5),
``car accident`` (B6), ``explosion`` (G). There is no B3.

Frame GT (``gt``, default ``annotations.txt``): ``<video> s1 e1 [s2 e2 …]`` frame ranges of the
500 violent test videos (a stray ``.mp4`` suffix on 14 names is removed); normal test videos
are all-normal. Ranges are 0-based, end exclusive by default (the convention of the
RTFM/XDVioDet-derived GT scripts), ``end_inclusive=True`` to include the end frame; ends past the
last frame are clipped. ``frame_classes`` give the main class on anomalous frames, or, with
``gt_classes="annotations_multiclasses.txt"`` (VadCLIP's per-segment codes), each segment's class
(later segments win where segments overlap). Frame counts are known only after decoding: the
labels are built by :meth:`Video.check_labels`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from vadlib.data.base import NORMAL, Video, VideoDataset
from vadlib.data.registry import register_dataset
from vadlib.data.release import find_path, interval_labels, is_hidden, need_root, strict_options
from vadlib.data.video import VIDEO_EXTENSIONS
from vadlib.errors import DataError

XD_CODES = {"A": NORMAL, "B1": "fighting", "B2": "shooting", "B4": "riot", "B5": "abuse",
            "B6": "car accident", "G": "explosion"}
CLASS_NAMES = [NORMAL, "fighting", "shooting", "riot", "abuse", "car accident", "explosion"]
XD_DESCRIPTIONS = {
    "fighting": "people fighting, punching and kicking each other",
    "shooting": "a person firing a gun",
    "riot": "a violent crowd rioting in the street, throwing objects, clashing with police",
    "abuse": "a person being beaten or abused by another person",
    "car accident": "cars crashing into each other or into people",
    "explosion": "an explosion with fire, smoke and flying debris",
}
_LABEL = re.compile(r"_label_([A-Z0-9-]+)$")
_FEATURE_SUFFIX = re.compile(r"(__\d+)?(\.npy)?$")


def xd_name(token: str) -> str:
    """A list/annotation token → the video name (no folder, ``.mp4``, ``__N.npy`` crop suffix)."""
    base = token.strip().replace("\\", "/").rsplit("/", 1)[-1]
    for ext in VIDEO_EXTENSIONS:
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return _FEATURE_SUFFIX.sub("", base)


def parse_xd_name(name: str) -> list[str]:
    """Label codes in a video name, main code first: ``…_label_G-B2-0`` → ``["G", "B2"]``."""
    m = _LABEL.search(xd_name(name))
    if not m:
        raise DataError(None, f"video name '{name}' has no '_label_<codes>' suffix")
    codes = [c for c in m.group(1).split("-") if c != "0"]
    bad = [c for c in codes if c not in XD_CODES]
    if not codes or bad or ("A" in codes and len(codes) > 1):
        raise DataError(None, f"video name '{name}': bad label codes {m.group(1)!r} (known: {', '.join(XD_CODES)})")
    return codes


def parse_xd_annotations(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """``annotations.txt`` → ``{video: [(start, end), …]}`` (as written; see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "annotation file does not exist")
    out: dict[str, list[tuple[int, int]]] = {}
    for k, line in enumerate(path.read_text().splitlines(), 1):
        f = line.split()
        if not f:
            continue
        try:
            nums = [int(x) for x in f[1:]]
        except ValueError:
            raise DataError(path, f"line {k}: frame numbers are not integers: {line.strip()!r}") from None
        if not nums or len(nums) % 2:
            raise DataError(path, f"line {k}: expected '<video> s1 e1 [s2 e2 …]', got {line.strip()!r}")
        ivs = list(zip(nums[::2], nums[1::2]))
        if any(s < 0 or e < s for s, e in ivs):
            raise DataError(path, f"line {k}: bad interval in {line.strip()!r}")
        name = xd_name(f[0])
        if name in out:
            raise DataError(path, f"line {k}: video '{name}' annotated twice")
        out[name] = ivs
    if not out:
        raise DataError(path, "annotation file is empty")
    return out


def parse_xd_multiclass(path: str | Path) -> dict[str, list[tuple[str, int, int]]]:
    """VadCLIP's ``annotations_multiclasses.txt`` → ``{video: [(code, start, end), …]}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "multi-class annotation file does not exist")
    out: dict[str, list[tuple[str, int, int]]] = {}
    for k, line in enumerate(path.read_text().splitlines(), 1):
        f = line.split()
        if not f:
            continue
        rest = f[1:]
        if not rest or len(rest) % 3:
            raise DataError(path, f"line {k}: expected '<video> code s e [code s e …]', got {line.strip()!r}")
        segs = []
        for j in range(0, len(rest), 3):
            code = rest[j]
            if code not in XD_CODES or code == "A":
                raise DataError(path, f"line {k}: unknown violence code {code!r}")
            try:
                segs.append((code, int(rest[j + 1]), int(rest[j + 2])))
            except ValueError:
                raise DataError(path, f"line {k}: frame numbers are not integers: {line.strip()!r}") from None
        out[xd_name(f[0])] = segs
    return out


def parse_xd_list(path: str | Path) -> list[str]:
    """A train/test list (feature paths, five crops per video, or plain names) → video names in order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "video list does not exist")
    names = list(dict.fromkeys(xd_name(ln) for ln in path.read_text().splitlines() if ln.strip()))
    if not names:
        raise DataError(path, "video list is empty")
    return names


def _builder(video: str, intervals, class_ids, gt_path: Path, end_inclusive: bool):
    def build(n: int) -> tuple[np.ndarray, np.ndarray]:
        if not intervals:
            return np.zeros(n, np.uint8), np.zeros(n, np.int64)
        return interval_labels(n, intervals, class_ids, gt_path, video, one_based=False,
                               end_inclusive=end_inclusive)

    return build


def _multiclass_builder(video: str, binary, segs, main_id: int, gt_path: Path, cls_path: Path, end_inclusive: bool):
    def build(n: int) -> tuple[np.ndarray, np.ndarray]:
        lab, cls = interval_labels(n, binary, [main_id] * len(binary), gt_path, video, one_based=False,
                                   end_inclusive=end_inclusive)
        _, seg_cls = interval_labels(n, [(s, e) for _, s, e in segs], [CLASS_NAMES.index(XD_CODES[c]) for c, _, _ in segs],
                                     cls_path, video, one_based=False, end_inclusive=end_inclusive)
        cls = np.where((lab == 1) & (seg_cls > 0), seg_cls, cls)
        return lab, cls

    return build


@register_dataset("xdviolence")
@strict_options("xdviolence")
def xdviolence(root: str | Path | None, gt: str = "annotations.txt", gt_root: str | Path | None = None,
               gt_classes: str | None = None, train_list: str = "rgb.list", test_list: str = "rgb_test.list",
               end_inclusive: bool = False, fps: float = 24.0) -> VideoDataset:
    """XD-Violence: 3,954 weakly labelled training videos, 800 test videos (500 violent) with frame GT."""
    root = need_root(root, "xdviolence")
    gt_root = None if gt_root is None else Path(gt_root)
    folders = [gt_root, None if gt_root is None else gt_root / "xdviodet",
               None if gt_root is None else gt_root / "vadclip", root, root / "list"]
    gt_path = find_path(gt, folders, f"XD-Violence annotation file '{gt}'")
    ann = parse_xd_annotations(gt_path)
    cls_path, multi = None, None
    if gt_classes is not None:
        cls_path = find_path(gt_classes, folders, f"XD-Violence multi-class annotation '{gt_classes}'")
        multi = parse_xd_multiclass(cls_path)

    index: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in VIDEO_EXTENSIONS and not is_hidden(p) and p.is_file():
            index.setdefault(p.stem, p)
    try:
        lists = (find_path(train_list, folders, "train list"), find_path(test_list, folders, "test list"))
    except DataError:
        lists = None
    if lists is not None:
        split_names = {"train": parse_xd_list(lists[0]), "test": parse_xd_list(lists[1])}
        for split, names in split_names.items():
            missing = [n for n in names if n not in index]
            if missing:
                raise DataError(root / f"{missing[0]}.mp4", f"{len(missing)} video(s) of {lists[split == 'test'].name} "
                                f"not found under {root} (first: {missing[0]})")
    else:
        def top(p: Path) -> str:
            return p.relative_to(root).parts[0].lower() if len(p.relative_to(root).parts) > 1 else ""
        split_names = {"test": [n for n, p in index.items() if top(p).startswith("test")]}
        in_test = set(split_names["test"])
        split_names["train"] = [n for n in index if n not in in_test]
        if not split_names["test"]:
            raise DataError(root / "Test", f"no test videos: neither the lists {train_list}/{test_list} "
                            f"(set gt_root) nor a Test/ folder of videos under {root}")

    test_set = set(split_names["test"])
    both = sorted(test_set & set(split_names["train"]))
    if both:
        raise DataError(lists[1] if lists else root, f"{len(both)} video(s) in both train and test (first: {both[0]})")
    stray = sorted(set(ann) - test_set)
    if stray:
        raise DataError(gt_path, f"{len(stray)} annotated video(s) are not in the test split (first: {stray[0]})")
    splits: dict[str, list[Video]] = {}
    for split in ("train", "test"):
        vids = []
        for name in split_names[split]:
            try:
                codes = parse_xd_name(name)
            except DataError as exc:
                raise DataError(index.get(name, root / name), exc.problem) from None
            violent = codes[0] != "A"
            main = XD_CODES[codes[0]]
            v = Video(name=name, path=index[name], split=split, label=int(violent), class_name=main, fps=fps,
                      meta={"codes": codes, "classes": [XD_CODES[c] for c in codes]})
            if split == "test":
                if violent and name not in ann:
                    raise DataError(gt_path, f"violent test video '{name}' has no annotation line")
                ivs = ann.get(name, [])
                v.meta.update(gt_path=str(gt_path), intervals=ivs)
                main_id = CLASS_NAMES.index(main)
                if multi is not None and name in multi:
                    v.label_builder = _multiclass_builder(name, ivs, multi[name], main_id, gt_path, cls_path,
                                                          bool(end_inclusive))
                else:
                    v.label_builder = _builder(name, ivs, [main_id] * len(ivs), gt_path, bool(end_inclusive))
            vids.append(v)
        splits[split] = vids
    return VideoDataset(name="xdviolence", root=root, splits=splits, class_names=list(CLASS_NAMES),
                        descriptions=dict(XD_DESCRIPTIONS), gt_file=gt,
                        meta={"fps": fps, "gt_path": str(gt_path), "gt_classes": None if cls_path is None else str(cls_path),
                              "lists": None if lists is None else [str(p) for p in lists],
                              "interval_convention": f"0-based, end {'inclusive' if end_inclusive else 'exclusive'}, "
                                                     "clipped to the video"})
