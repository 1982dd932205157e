from pathlib import Path

import cv2
import numpy as np
import pytest

from vadlib.data import FrameFolder, VideoFile, get_dataset, iter_batches, open_video
from vadlib.errors import ConfigError, DataError


def _write_video(path: Path, n: int = 12, size=(48, 64)) -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (size[1], size[0]))
    for i in range(n):
        w.write(np.full((*size, 3), i * 20 % 255, np.uint8))
    w.release()
    return path


def test_video_file_reads_all_frames_in_batches(tmp_path):
    v = open_video(_write_video(tmp_path / "v.mp4", n=12))
    assert isinstance(v, VideoFile) and len(v) == 12 and v.size == (48, 64)
    got = [f for _, f in iter_batches(v, range(12), batch_size=5)]
    assert [len(f) for f in got] == [5, 5, 2]
    frames = np.concatenate(got)
    assert frames.shape == (12, 48, 64, 3) and frames.dtype == np.uint8
    assert frames[:, 0, 0, 0].argmax() > frames[:, 0, 0, 0].argmin()  # content varies over time


def test_frame_folder_natural_order_and_gray_to_rgb(tmp_path):
    d = tmp_path / "frames"
    d.mkdir()
    for i in (0, 1, 2, 10):  # 10 must come after 2
        cv2.imwrite(str(d / f"{i}.png"), np.full((8, 8), i * 10, np.uint8))
    v = open_video(d)
    assert isinstance(v, FrameFolder) and len(v) == 4
    frames = v.get([0, 3])
    assert frames.shape == (2, 8, 8, 3)
    assert frames[1, 0, 0].tolist() == [100, 100, 100]


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_empty_or_corrupt_video_names_the_file(tmp_path, content):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(DataError, match="bad.mp4"):
        open_video(p)


def test_unreadable_frame_and_mixed_sizes(tmp_path):
    d = tmp_path / "f"
    d.mkdir()
    cv2.imwrite(str(d / "000.png"), np.zeros((8, 8), np.uint8))
    cv2.imwrite(str(d / "001.png"), np.zeros((9, 8), np.uint8))
    (d / "002.png").write_bytes(b"garbage")
    v = FrameFolder(d)
    with pytest.raises(DataError, match="different sizes"):
        v.get([0, 1])
    with pytest.raises(DataError, match="002.png"):
        v.get([2])


def test_missing_things_are_named(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        get_dataset("ucsd_ped2", root=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="unknown dataset 'nope'.*ucsd_ped2"):
        get_dataset("nope")
    with pytest.raises(DataError, match="frames folder holds no image"):
        FrameFolder(tmp_path)


def test_png_frames_stay_readable_after_a_video_was_opened(tmp_path):
    """decord bundles its own zlib: imported first, it breaks cv2's PNG decoding. vadlib imports it
    through `import_decord`, which initialises OpenCV's PNG decoder first (fresh process: import order)."""
    import subprocess
    import sys

    import cv2

    png = tmp_path / "000.png"
    cv2.imwrite(str(png), np.full((8, 8), 7, np.uint8))
    code = ("import cv2, sys\n"
            "from vadlib.data.video import import_decord\n"
            "import_decord()\n"
            f"img = cv2.imread({str(png)!r})\n"
            "sys.exit(0 if img is not None and img[0, 0, 0] == 7 else 3)\n")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
