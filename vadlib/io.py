"""Atomic writes: every output is written to a temporary name and renamed when complete,
so an interrupted run never leaves a file that looks finished.

Temporary names are ``.<name>.<pid>@<host>.<random>.tmp[.<ext>]`` beside the target. A writer
killed outright (``kill -9``, power loss) leaves its temporary behind; the first atomic write into
a folder in a process removes the stale ones there (:func:`remove_stale_temps`): those whose writer
ran on this host and is no longer alive, and any older than :data:`STALE_AFTER_S` (temporaries
written on another host sharing the folder, or by versions that did not name their writer).
A temporary whose writer is alive is never touched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np


log = logging.getLogger(__name__)

STALE_AFTER_S = 6 * 3600          # a temporary this old is stale whoever wrote it
_HOST = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:32] or "host"
# .<name>.<pid>@<host>.<random>.tmp[.ext] (this version) and .<name>.<random>.tmp[.ext] (earlier ones)
_TEMP = re.compile(r"^\..+?\.(?:(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]+)\.)?[a-z0-9_]{8}\.tmp(?:\.[A-Za-z0-9]+)?$")
_cleaned: set[str] = set()


def _writer_tag() -> str:
    return f"{os.getpid()}@{_HOST}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries of interrupted atomic writes in ``folder`` (not recursive); return them.

    Stale: named by a writer on this host whose process is gone, or (any writer) last modified more
    than ``older_than_s`` seconds ago. Files that do not follow the temporary naming are never touched.
    """
    folder = Path(folder)
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP.match(e.name)
        if not m:
            continue
        try:
            age = now - e.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid, host = m.group("pid"), m.group("host")
        dead = pid is not None and host == _HOST and int(pid) != os.getpid() and not _pid_alive(int(pid))
        if not (dead or age > older_than_s):
            continue
        p = Path(e.path)
        with contextlib.suppress(OSError):
            shutil.rmtree(p) if e.is_dir(follow_symlinks=False) else p.unlink()
            removed.append(p)
    if removed:
        log.warning("removed %d stale temporary file(s) of interrupted writes in %s: %s", len(removed), folder,
                    ", ".join(p.name for p in removed[:5]) + (" …" if len(removed) > 5 else ""))
    return removed


def _clean_once(folder: Path) -> None:
    key = str(folder.resolve())
    if key not in _cleaned:
        _cleaned.add(key)
        remove_stale_temps(folder)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_mode(tmp: Path) -> None:
    """Give a finished temporary file or folder the mode a plain ``open``/``mkdir`` would have
    (``mkstemp``/``mkdtemp`` create them readable by their owner only)."""
    with contextlib.suppress(FileNotFoundError):
        os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    ``suffix`` defaults to the target's suffix so writers that look at the extension
    (``np.save``, matplotlib, cv2.VideoWriter) behave. On an exception the temporary
    file (or folder) is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    _clean_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.{_writer_tag()}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        _publish_mode(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            if tmp_path.is_dir():
                shutil.rmtree(tmp_path)
            else:
                tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it onto ``path`` when complete.

    An existing ``path`` is replaced only after the new folder is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _clean_once(path.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.{_writer_tag()}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _publish_mode(tmp)
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays allowed)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_default, sort_keys=False) + "\n")
    return Path(path)


def save_npy(path: str | Path, array: np.ndarray) -> Path:
    """``np.save`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array)
    return Path(path)


def file_key(path: str | Path, with_path: bool = True) -> str:
    """Short hash of a file's size and modification time (a folder, e.g. of frames: its files'), and
    of its resolved path unless ``with_path=False`` — an identity that changes when the file does."""
    import hashlib

    path = Path(path)
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    h = hashlib.sha1(str(path.resolve()).encode() if with_path else b"")
    for f in files:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:10]


def read_checkpoint(path: str | Path, fmt: str | None, *, what: str = "a vadlib checkpoint",
                    missing: str = "checkpoint file does not exist", unreadable: str = "not a loadable checkpoint",
                    wrong: str | None = None) -> dict:
    """The dict of a checkpoint file read with ``torch.load(weights_only=True)`` whose ``format`` is ``fmt``
    (None: any; a file holding no dict then reads as ``{}``).

    Raises :class:`DataError` naming the file when it is missing (``missing``), unreadable with
    ``weights_only`` (``unreadable (cause)``) or of another format (``wrong``)."""
    import torch

    from vadlib.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError(path, missing)
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DataError(path, f"{unreadable} ({exc})") from exc
    if fmt is None:
        return ck if isinstance(ck, dict) else {}
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise DataError(path, wrong or f"not {what} (format {fmt!r} missing)")
    return ck
