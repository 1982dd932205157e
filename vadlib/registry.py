"""A tiny name -> object registry (datasets, backbones, methods).

Unknown names raise :class:`~vadlib.errors.ConfigError` listing the known ones.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from vadlib.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects; used as a decorator: ``@DATASETS.register("demo")``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ConfigError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
