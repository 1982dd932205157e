"""A tiny name -> object registry (datasets, backbones, methods).

Unknown names raise :class:`~vadlib.errors.ConfigError` listing the known ones. An entry can be lazy
(:meth:`Registry.register_lazy`: ``"module:attribute"``), imported on first :meth:`Registry.get`, so
that listing the names imports nothing and using one entry does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Callable, Generic, Iterator, TypeVar

from vadlib.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Map names to objects; used as a decorator: ``@DATASETS.register("demo")``."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ConfigError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Register ``name`` as ``"package.module:attribute"``, imported on first :meth:`get` (the
        module registers the object under ``name`` itself, or the attribute is taken)."""
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ConfigError(f"{self.kind} '{name}': lazy target {target!r} must be 'package.module:attribute'")
        if name in self._items or self._lazy.get(name, target) != target:
            raise ConfigError(f"{self.kind} '{name}' is registered twice")
        self._lazy[name] = target

    def get(self, name: str) -> T:
        if name not in self._items and name in self._lazy:
            module, _, attr = self._lazy[name].partition(":")
            obj = getattr(importlib.import_module(module), attr)
            self._items.setdefault(name, obj)
            if self._items[name] is not obj:
                raise ConfigError(f"{self.kind} '{name}': {module} registered another object than {attr}")
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy))

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
