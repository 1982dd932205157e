"""Extraction across processes: a real 2-process gloo run, kill -9 and resume, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from vadlib.features.store import FeatureStore

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys, time, warnings
    from pathlib import Path
    import torch
    import torch.distributed as dist

    root, out, world, slow = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])

    def build():
        from vadlib.data.base import Video, VideoDataset
        vids = [Video(name=p.stem, path=p, split="test", num_frames=len(list(p.iterdir())))
                for p in sorted(root.iterdir())]
        return VideoDataset(name="toy", root=root, splits={"test": vids})

    def run(rank, world):
        torch.set_num_threads(1)
        warnings.simplefilter("ignore")
        if slow:
            from vadlib.data.video import FrameFolder
            orig = FrameFolder.get
            def get(self, idx):
                time.sleep(slow)
                return orig(self, idx)
            FrameFolder.get = get
        from vadlib.features import load_backbone
        from vadlib.features.extract import ExtractConfig, extract_dataset
        if world > 1:
            dist.init_process_group("gloo", init_method=f"file://{out}.rdv", rank=rank, world_size=world)
        torch.manual_seed(0)
        bb = load_backbone("vadlib-tiny", "random")
        store = extract_dataset(build(), bb, out, ExtractConfig(stride=2, batch_size=4, progress=False),
                                splits=("test",))
        if world > 1:
            dist.destroy_process_group()
        if rank == 0:
            print("STORE", store.path, len(store))

    if __name__ == "__main__":
        if world > 1:
            import torch.multiprocessing as mp
            mp.start_processes(run, args=(world,), nprocs=world, start_method="fork")
        else:
            run(0, 1)
''')


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    root = tmp / "videos"
    for i, n in enumerate([9, 14, 5, 11, 3]):
        _frames(root / f"v{i}", n, seed=i)
    script = tmp / "run.py"
    script.write_text(SCRIPT)

    def run(out: Path, world: int = 1, slow: float = 0.0, wait: bool = True):
        cmd = [sys.executable, str(script), str(root), str(out), str(world), str(slow)]
        if not wait:
            return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        res = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
        assert res.returncode == 0, res.stderr[-3000:]
        line = [ln for ln in res.stdout.splitlines() if ln.startswith("STORE")][-1]
        return FeatureStore.open(line.split()[1])

    cache: dict = {}

    def reference():
        """The single-process run, in this process (same seed → same random weights)."""
        if "ref" not in cache:
            import warnings

            import torch

            from vadlib.data.base import Video, VideoDataset
            from vadlib.features import load_backbone
            from vadlib.features.extract import ExtractConfig, extract_dataset

            torch.set_num_threads(1)
            vids = [Video(name=p.stem, path=p, split="test") for p in sorted(root.iterdir())]
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bb = load_backbone("vadlib-tiny", "random")
            cache["ref"] = extract_dataset(VideoDataset(name="toy", root=root, splits={"test": vids}), bb,
                                           tmp / "reference", ExtractConfig(stride=2, batch_size=4, progress=False),
                                           splits=("test",))
        return cache["ref"]

    run.reference = reference
    return run


def _frames(folder: Path, n: int, seed: int) -> None:
    import cv2

    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for t in range(n):
        cv2.imwrite(str(folder / f"{t:03d}.png"), rng.integers(0, 256, (32, 40, 3), dtype=np.uint8))


def _same(a: FeatureStore, b: FeatureStore):
    assert sorted(a.videos()) == sorted(b.videos())
    for v in a.videos():
        np.testing.assert_allclose(a.load(v), b.load(v), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(a.frame_index(v), b.frame_index(v))
        assert a.num_frames(v) == b.num_frames(v)


def test_two_process_gloo_run_equals_single_process(runner, tmp_path):
    single = runner.reference()
    multi = runner(tmp_path / "multi", world=2)
    assert len(single) == 5
    _same(single, multi)
    assert not list(multi.path.glob("index.part-*")), "rank 0 should have merged the partial indexes"
    assert single.path.name == multi.path.name  # same config → same store key


def test_kill_9_then_resume_gives_identical_store(runner, tmp_path):
    out = tmp_path / "killed"
    proc = runner(out, slow=0.3, wait=False)
    deadline = time.time() + 180
    done: list = []
    while time.time() < deadline and proc.poll() is None:
        idx = list(out.glob("toy/*/index.json"))
        if idx:
            try:
                done = list(json.loads(idx[0].read_text())["videos"])
            except (json.JSONDecodeError, OSError):
                done = []
            if done:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done, "the run finished no video before the deadline"
    store = FeatureStore.open(next(out.glob("toy/*")))
    assert 1 <= len(store) < 5, f"kill landed too late ({len(store)} videos finished)"
    for v in store.videos():  # everything listed is complete
        assert store.load(v).shape[0] == len(store.frame_index(v)) == store.meta(v)["n_rows"]
    resumed = runner(out)
    assert len(resumed) == 5
    _same(resumed, runner.reference())


def test_cli_single_process(tmp_path, gen, capsys):
    """``main([...])`` (what ``python -m vadlib.features.extract`` runs) on a registered toy dataset."""
    from vadlib.data import Video, VideoDataset, register_dataset
    from vadlib.data.registry import DATASETS
    from vadlib.features.extract import main

    root = tmp_path / "videos"
    for i, n in enumerate([6, 4]):
        gen.frames(root / f"v{i}", n, h=32, w=40, seed=i)
    if "toy_cli" not in DATASETS:
        @register_dataset("toy_cli")
        def toy(root, **kw):
            vids = [Video(name=p.name, path=p, split="test") for p in sorted(Path(root).iterdir())]
            return VideoDataset(name="toy_cli", root=Path(root), splits={"test": vids})
    rc = main(["--dataset", "toy_cli", "--root", str(root), "--backbone", "vadlib-tiny", "--pretrained", "random",
               "--out", str(tmp_path / "feat"), "--sampling", "every", "--stride", "2", "--splits", "test",
               "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "RANDOM WEIGHTS" in out and "2 videos" in out
    store = FeatureStore.open(out.split()[0])
    assert store.load("v0").shape[0] == 3 and store.info["stride"] == 2


def test_cli_bad_root_exits_2(tmp_path, capsys):
    from vadlib.features.extract import main

    rc = main(["--dataset", "ucsd_ped2", "--root", str(tmp_path / "nope"), "--backbone", "vadlib-tiny",
               "--pretrained", "random"])
    assert rc == 2 and "nope: dataset root for 'ucsd_ped2' does not exist" in capsys.readouterr().err
