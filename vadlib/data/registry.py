"""The dataset registry: ``name -> factory(root, **options) -> VideoDataset``."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from vadlib.data.base import VideoDataset
from vadlib.errors import DataError
from vadlib.registry import Registry

DatasetFactory = Callable[..., VideoDataset]
DATASETS: Registry[DatasetFactory] = Registry("dataset")


def register_dataset(name: str) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator registering a dataset factory ``f(root, **options) -> VideoDataset``."""
    return DATASETS.register(name)


def get_dataset(name: str, root: str | Path | None = None, **options) -> VideoDataset:
    """Build the dataset ``name`` from ``root``; unknown names list the known ones.

    A missing ``root`` folder raises :class:`DataError` naming it.
    """
    factory = DATASETS.get(name)
    if root is not None:
        root = Path(root).expanduser()
        if not root.exists():
            raise DataError(root, f"dataset root for '{name}' does not exist "
                            "(set its root in params.yaml: datasets.<name>.root, or pass -S)")
    return factory(root, **options)


def list_datasets() -> list[str]:
    return DATASETS.names()
