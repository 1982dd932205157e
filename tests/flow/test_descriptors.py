"""Flow patches (resize + displacement rescale, stacks), velocity histograms, pose files."""

from pathlib import Path

import numpy as np
import pytest

from vadlib.data.base import Video
from vadlib.errors import ConfigError, DataError
from vadlib.flow.descriptors import (flow_patch, load_pose, normalize_pose, top_magnitude,
                                     velocity_descriptor)

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PED2 = SHARED / "datasets" / "ucsd_ped2"


def _const_flow(u, v, n=3, shape=(40, 60)):
    f = np.zeros((n, *shape, 2), np.float32)
    f[..., 0], f[..., 1] = u, v
    return f


def test_patch_rescales_displacement_by_resize_factor():
    flows = _const_flow(1.0, 2.0)
    box = (10, 4, 42, 20)  # w = 32, h = 16
    p = flow_patch(flows, 1, box, size=8)
    assert p.shape == (2, 8, 8)
    assert np.allclose(p[0], 1.0 * 8 / 32) and np.allclose(p[1], 2.0 * 8 / 16)
    q = flow_patch(flows, 1, box, size=8, rescale=False)
    assert np.allclose(q[0], 1.0) and np.allclose(q[1], 2.0)


def test_patch_stack_is_oldest_first_and_clamped():
    flows = np.stack([np.full((20, 20, 2), i, np.float32) for i in range(4)])
    p = flow_patch(flows, 2, (0, 0, 20, 20), size=4, stack=3, rescale=False)
    assert p.shape == (6, 4, 4)
    assert [float(p[2 * k, 0, 0]) for k in range(3)] == [0.0, 1.0, 2.0]
    p0 = flow_patch(flows, 0, (0, 0, 20, 20), size=4, stack=2, rescale=False)
    assert float(p0[0, 0, 0]) == 0.0 and float(p0[2, 0, 0]) == 0.0
    with pytest.raises(ConfigError):
        flow_patch(flows, 0, (5, 5, 5, 9))


def test_velocity_histogram():
    f = _const_flow(3.0, 0.0)[0]  # rightwards: angle 0
    assert velocity_descriptor(f, (0, 0, 10, 10), bins=1).tolist() == [3.0]
    v = velocity_descriptor(f, (0, 0, 10, 10), bins=4)
    assert v.tolist() == [3.0, 0.0, 0.0, 0.0]
    g = _const_flow(0.0, 2.0)[0]  # y down = 90° in image coordinates
    g[:, :30] = 0  # half the box static: box-averaged magnitude halves
    assert velocity_descriptor(g, (20, 0, 40, 40), bins=4).tolist() == [0.0, 1.0, 0.0, 0.0]
    d = _const_flow(-1.0, -2.0)[0]  # L1 magnitude 3 at 243°
    assert velocity_descriptor(d, (0, 0, 5, 5), bins=8)[5] == pytest.approx(3.0)


def test_top_magnitude():
    f = np.zeros((10, 10, 2), np.float32)
    f[0, 0] = (3.0, 4.0)
    assert top_magnitude(f, 0.01) == pytest.approx(5.0)
    assert top_magnitude(f, 0.02) == pytest.approx(2.5)


def _pose_file(path, frames_per_video, objects=2):
    kp, off, vid, fr = [], [0], [], []
    for v, n in enumerate(frames_per_video, start=1):
        for t in range(n):
            kp.append(np.random.default_rng(t).normal(size=(objects, 34)))
            off.append(off[-1] + objects)
            vid.append(v)
            fr.append(t)
    np.savez(path, keypoints=np.concatenate(kp), frame_offsets=np.array(off), video=np.array(vid, np.int16),
             frame=np.array(fr, np.int16))
    return path


def _videos(counts):
    return [Video(name=f"V{i}", path=Path(f"/nonexistent/{i}"), split="train", num_frames=n) for i, n in enumerate(counts)]


def test_load_pose_matches_videos(tmp_path):
    p = _pose_file(tmp_path / "pose.npz", [3, 2])
    pose = load_pose(p, _videos([3, 2]))
    assert list(pose) == ["V0", "V1"] and len(pose["V0"]) == 3 and pose["V1"][1].shape == (2, 34)


def test_load_pose_mismatch_names_the_file(tmp_path):
    p = _pose_file(tmp_path / "pose.npz", [3, 2])
    with pytest.raises(DataError, match="do not match the frames of 'V1'") as exc:
        load_pose(p, _videos([3, 4]))
    assert str(p) in str(exc.value)
    with pytest.raises(DataError, match="covers 2 videos but the split has 3"):
        load_pose(p, _videos([3, 2, 1]))
    np.savez(tmp_path / "bad.npz", keypoints=np.zeros((4, 30)))
    with pytest.raises(DataError, match="lacks array"):
        load_pose(tmp_path / "bad.npz", _videos([1]))
    with pytest.raises(DataError, match="does not exist"):
        load_pose(tmp_path / "nope.npz", _videos([1]))


def test_normalize_pose():
    kp = np.random.default_rng(0).normal(size=(5, 34)).astype(np.float32)
    c = normalize_pose(kp, "center").reshape(5, 17, 2)
    assert np.allclose(c.mean(1), 0, atol=1e-5)
    s = normalize_pose(kp * 7 + 3, "center_scale").reshape(5, 17, 2)
    assert np.allclose(s[..., 1].std(1), 1, atol=1e-2)
    assert np.allclose(normalize_pose(kp, "none"), kp)
    with pytest.raises(ConfigError):
        normalize_pose(kp, "bogus")


@pytest.mark.skipif(not PED2.exists(), reason="../shared (real benchmark data) not present")
def test_real_ped2_pose_matches_frames():
    from vadlib.data import get_dataset

    ds = get_dataset("ucsd_ped2", root=PED2)
    pose = load_pose(PED2 / "pose" / "testing_pose.npz", ds.videos("test"))
    assert sum(len(o) for v in pose.values() for o in v) == 14663
    assert [len(v) for v in pose.values()] == [v.num_frames for v in ds.videos("test")]
    with pytest.raises(DataError, match="training_pose.npz"):
        load_pose(PED2 / "pose" / "training_pose.npz", ds.videos("test"))


def test_velocity_keywords_scale_whole_frame_and_resize():
    f = np.zeros((12, 16, 2), np.float32)
    f[..., 1] = 2.0                                           # 90°: bin 2 of 8
    assert velocity_descriptor(f, None, bins=8).tolist() == [0, 0, 2.0, 0, 0, 0, 0, 0]
    assert velocity_descriptor(f, (0, 0, 16, 12), bins=1, scale=4.0)[0] == pytest.approx(0.5)
    assert velocity_descriptor(f, (0, 0, 16, 12), bins=1, crop_size=7)[0] == pytest.approx(2.0)
    with pytest.raises(ConfigError):
        velocity_descriptor(f, (0, 0, 4, 4), orientation="turns")
    with pytest.raises(ConfigError):
        velocity_descriptor(f, (0, 0, 4, 4), box_rounding="round")
