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
