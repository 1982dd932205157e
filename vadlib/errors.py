"""Exceptions that name the thing that is wrong (file, video, field) and what to do."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable[..., int])


class VadlibError(Exception):
    """Base class for every error vadlib raises on bad input or configuration."""


class ConfigError(VadlibError, ValueError):
    """A parameter, registry name or configuration value is wrong."""


class DataError(VadlibError, ValueError):
    """A data file or folder is missing, empty, corrupt or inconsistent.

    The message always starts with the offending path so it can be found in a log.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class WeightsUnavailableError(VadlibError, RuntimeError):
    """Pretrained backbone weights could not be obtained (no network, wrong tag, bad file)."""


def cli_errors(main: F) -> F:
    """Decorate a command's ``main``: a :class:`VadlibError` is printed as ``error: …`` on stderr and
    the command exits with status 2 (no traceback: the message already names the thing and the fix)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except VadlibError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    return wrapper  # type: ignore[return-value]
