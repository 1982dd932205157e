"""The common shape of a reference's switch set: a frozen dataclass whose defaults are vadlib's
behaviour and whose :meth:`reference` instance is the reference code's, flaws included."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import ClassVar, Mapping, TypeVar

from vadlib.errors import ConfigError

S = TypeVar("S", bound="ReferenceSwitches")


class ReferenceSwitches:
    """Mixin for a frozen dataclass of switches. Subclasses set ``KIND`` (the name used in errors) and
    ``REFERENCE_VALUES`` (the field values that reproduce the reference)."""

    KIND: ClassVar[str] = "reference"
    REFERENCE_VALUES: ClassVar[Mapping[str, object]] = {}

    @classmethod
    def reference(cls: type[S]) -> S:
        """Every switch set to the reference's behaviour."""
        return cls(**dict(cls.REFERENCE_VALUES))

    @classmethod
    def from_params(cls: type[S], p: Mapping | str | None) -> S:
        """``"default"``, ``"reference"`` or a mapping of fields (unknown keys refused)."""
        if p is None or p == "default":
            return cls()
        if p == "reference":
            return cls.reference()
        if isinstance(p, str):
            raise ConfigError(f"{cls.KIND} switches: '{p}' is neither 'default', 'reference' nor a mapping")
        known = sorted(f.name for f in fields(cls))
        bad = sorted(set(p) - set(known))
        if bad:
            raise ConfigError(f"{cls.KIND} switches: unknown keys {bad} (known: {known})")
        return cls(**dict(p))

    def to_dict(self) -> dict:
        return asdict(self)

    def reference_switches(self) -> list[str]:
        """Names of the switches set to the reference's behaviour (for reports)."""
        ref = asdict(self.reference())
        return [k for k, v in asdict(self).items() if v == ref[k]]
