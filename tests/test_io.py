from pathlib import Path

import numpy as np
import pytest

from vadlib.io import atomic_dir, atomic_path, save_npy, write_json
from vadlib.registry import Registry
from vadlib.errors import ConfigError


def test_atomic_path_leaves_nothing_on_error(tmp_path: Path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_replaces_only_when_complete(tmp_path: Path):
    target = tmp_path / "a.npy"
    save_npy(target, np.arange(3))
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            np.save(tmp, np.arange(5))
            raise KeyError
    assert np.load(target).tolist() == [0, 1, 2]


def test_atomic_dir(tmp_path: Path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert (target / "x").read_text() == "1"
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "y").write_text("2")
            raise ValueError
    assert sorted(p.name for p in target.iterdir()) == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_write_json_numpy(tmp_path: Path):
    import json

    p = write_json(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(2)})
    assert json.loads(p.read_text()) == {"a": 0.5, "b": [0, 1]}


def test_registry_lists_known_names():
    reg: Registry[int] = Registry("thing")
    reg.register("one")(1)
    assert reg.get("one") == 1
    with pytest.raises(ConfigError, match="unknown thing 'two'; known: one"):
        reg.get("two")


def test_outputs_get_the_usual_permissions(tmp_path: Path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_dir(tmp_path / "d") as d:
            (d / "f.txt").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def _killed_writer(folder: Path, code: str) -> None:
    """Run ``code`` (an atomic write into ``folder``) in a child process that kills itself with SIGKILL
    half-way, as ``kill -9`` would."""
    import subprocess
    import sys

    prog = ("import os, signal, numpy as np\nfrom pathlib import Path\nfrom vadlib.io import atomic_path\n"
            f"folder = Path({str(folder)!r})\n{code}\n")
    r = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True)
    assert r.returncode == -9, r.stderr


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path):
    import vadlib.io as vio

    _killed_writer(tmp_path, "with atomic_path(folder / 'v.npy') as t:\n"
                             "    np.save(t, np.zeros(3)); os.kill(os.getpid(), signal.SIGKILL)")
    (left,) = [p.name for p in tmp_path.iterdir()]
    assert left.startswith(".v.") and left.endswith(".tmp.npy")
    # the next run's first atomic write into the folder removes it (and is itself killed)
    _killed_writer(tmp_path, "with atomic_path(folder / 'index.json') as t:\n"
                             "    t.write_text('{'); os.kill(os.getpid(), signal.SIGKILL)")
    (left,) = [p.name for p in tmp_path.iterdir()]
    assert left.startswith(".index.") and left.endswith(".tmp.json")
    # files that only look similar, a fresh temporary of an earlier version and one whose writer is
    # alive (this process) stay
    keep = [".v.tmp.npy", "notes.tmp", ".cfg.abcdefgh.tmp.json", f".w.{vio._writer_tag()}.abcdefgh.tmp.npy"]
    for k in keep:
        (tmp_path / k).write_text("x")
    vio._cleaned.discard(str(tmp_path.resolve()))
    write_json(tmp_path / "index.json", {"a": 1})             # the next run's first write into the folder
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["index.json", *keep])


def test_old_temporaries_are_stale_whoever_wrote_them(tmp_path: Path):
    import os
    import time

    from vadlib.io import STALE_AFTER_S, remove_stale_temps

    old = tmp_path / ".x.12@otherhost.abcdefgh.tmp.npy"
    legacy = tmp_path / ".y.abcdefgh.tmp.npy"
    new = tmp_path / ".z.13@otherhost.abcdefgh.tmp.npy"
    d = tmp_path / ".out.14@otherhost.abcdefgh.tmp"
    for p in (old, legacy, new):
        p.write_bytes(b"half")
    d.mkdir()
    (d / "f").write_text("1")
    t = time.time() - STALE_AFTER_S - 60
    for p in (old, legacy, d):
        os.utime(p, (t, t))
    assert sorted(p.name for p in remove_stale_temps(tmp_path)) == sorted([old.name, legacy.name, d.name])
    assert [p.name for p in tmp_path.iterdir()] == [new.name]
