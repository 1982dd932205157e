"""Typed configuration: one generic check for every ``params.yaml`` section and option set.

A section is a dataclass whose annotations say what each key holds. :func:`check` turns a mapping
read from YAML (or given on a command line) into that dataclass, or raises :class:`ConfigError`
naming the file, the key path, what was expected and what was given::

    params.yaml: zeroshot.sigma: expected a number, got 'abc'
    params.yaml: zeroshot: unknown key 'sigmaa' (did you mean 'sigma'?; known: prompts, run_on, …)

Rules (the same everywhere):

* unknown keys are listed with the known ones; a missing key takes the dataclass default;
* ``bool`` accepts only ``true``/``false`` (never the string ``"false"``, which Python reads as true);
* ``int`` accepts integers and integral floats (``2.0``), never ``2.5`` (no silent truncation) nor a bool;
* ``float`` accepts numbers and numeric strings (YAML 1.1 reads ``1e-3`` as a string), never ``abc``,
  ``nan`` or ``inf``;
* ``str`` accepts only strings; ``Path`` accepts strings or paths and returns a :class:`~pathlib.Path`;
* ``list[X]``/``tuple[X, ...]``/``dict[str, X]`` check every element; a string where a list is
  expected, or a list where a mapping is expected, is an error;
* ``X | None`` accepts ``null``; unions try each member in order; ``Literal[...]`` lists the choices;
* a nested dataclass is checked recursively; ``Any`` accepts anything;
* ``field(metadata={"min": a, "max": b, "gt": c})`` (:func:`bounded`) bounds a number (``gt``: strictly
  greater); :func:`section_dict` checks a dict field by a dataclass and keeps it a dict;
* a dataclass may define ``_config_check(self, path, source)`` for checks its annotations cannot
  express; :func:`check` calls it on the checked instance.

Each stage's ``params.yaml`` section is declared once, by ``vadlib.stages.<stage>.Params`` (its types,
bounds and defaults); :data:`SECTIONS`/:func:`section_class` find it by the section's name, and
:func:`validate_section`/:func:`validate_params` check sections before a notebook runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, Union

from vadlib.errors import ConfigError

T = TypeVar("T")

__all__ = ["check", "check_value", "bounded", "section_dict", "SECTIONS", "section_class", "validate_section",
           "validate_params", "validate_datasets", "to_plain", "BackboneParams", "CompareParams"]


def bounded(default: Any, *, min: float | None = None, max: float | None = None,  # noqa: A002
            gt: float | None = None) -> Any:
    """A dataclass field with numeric bounds checked by :func:`check`."""
    meta = {k: v for k, v in (("min", min), ("max", max), ("gt", gt)) if v is not None}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def section_dict(schema: type, default: Mapping | None = None, *, each: bool = False) -> Any:
    """A dict field checked by the dataclass ``schema`` (unknown keys, types, bounds) that stays a plain
    dict: the given keys with checked values (missing keys are not filled in; the field's default,
    ``default`` or ``schema()``'s values, is where a stage merges them from). ``each=True``: a dict of
    such dicts (``{dataset: {...}}``), each checked by ``schema``; the default is then ``{}``."""
    meta = {"schema": schema, "each": each}
    if each:
        return field(default_factory=lambda: dict(default or {}), metadata=meta)
    return field(default_factory=lambda: dict(default) if default is not None else to_plain(schema()),
                 metadata=meta)


def _check_schema(schema: type, each: bool, value: Any, path: str, source: str | None) -> Any:
    if each:
        check_value(dict[str, Any], value, path, source)
        return {k: _check_schema(schema, False, v, f"{path}.{k}", source) for k, v in value.items()}
    checked = check(schema, value, path, source)
    return {k: to_plain(getattr(checked, k)) for k in (value or {})}


def _show(value: Any) -> str:
    s = repr(value)
    return s if len(s) <= 60 else s[:57] + "..."


def _where(source: str | None, path: str) -> str:
    return f"{source}: {path}" if source else path


def _type_name(tp: Any) -> str:
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if tp is Path:
        return "a path (string)"
    origin = typing.get_origin(tp)
    if origin in (list, tuple):
        return "a list"
    if origin in (dict, Mapping) or tp is dict or tp is Mapping:
        return "a mapping"
    if origin is Literal:
        return "one of " + ", ".join(map(repr, typing.get_args(tp)))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        return " or ".join(_type_name(a) for a in args if not (a is str and Path in args))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _fail(source: str | None, path: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(f"{_where(source, path)}: expected {expected}, got {_show(value)}")


def check_value(tp: Any, value: Any, path: str, source: str | None = None) -> Any:
    """``value`` checked (and converted) against the type annotation ``tp``; see the module rules."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if Path in args:                    # "str | Path": a path given as a string becomes a Path
            args = (Path, *(a for a in args if a is not Path))
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(a, value, path, source)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise _fail(source, path, _type_name(tp), value)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices or isinstance(value, bool) != any(isinstance(c, bool) for c in choices):
            raise _fail(source, path, _type_name(tp), value)
        return value
    if tp is type(None):
        if value is not None:
            raise _fail(source, path, "null", value)
        return None
    if tp is bool:
        if not isinstance(value, bool):
            hint = " (write true or false without quotes)" if isinstance(value, str) else ""
            raise ConfigError(f"{_where(source, path)}: expected true or false, got {_show(value)}{hint}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
            raise _fail(source, path, "an integer", value)
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _fail(source, path, "a number", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, path, "a number", value)
        if not math.isfinite(value):
            raise _fail(source, path, "a finite number", value)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, path, "a string", value)
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)) or str(value) == "":
            raise _fail(source, path, "a path (string)", value)
        return Path(value).expanduser()
    if dataclasses.is_dataclass(tp):
        return check(tp, value, path, source)
    if origin is list or tp is list:
        (item,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise _fail(source, path, "a list", value)
        return [check_value(item, v, f"{path}[{i}]", source) for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        args = typing.get_args(tp) or (Any, ...)
        if not isinstance(value, (list, tuple)):
            raise _fail(source, path, "a list", value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise _fail(source, path, f"a list of {len(args)} entries", value)
        return tuple(check_value(a, v, f"{path}[{i}]", source) for i, (a, v) in enumerate(zip(args, value)))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        kt, vt = typing.get_args(tp) or (Any, Any)
        if not isinstance(value, Mapping):
            raise _fail(source, path, "a mapping (key: value lines)", value)
        return {check_value(kt, k, f"{path} key", source): check_value(vt, v, f"{path}.{k}", source)
                for k, v in value.items()}
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise _fail(source, path, _type_name(tp), value)
        return value
    raise TypeError(f"vadlib.config: unsupported annotation {tp!r} at {path}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check(cls: type[T], data: Mapping | None, path: str, source: str | None = None, what: str = "key") -> T:
    """``data`` as a ``cls`` instance: unknown keys, wrong types and out-of-bounds numbers raise
    :class:`ConfigError` naming ``source`` (e.g. ``params.yaml``) and the key path under ``path``
    (``what`` names a key in the unknown-key message: ``key``, ``option``…).

    ``data=None`` (an empty YAML section) gives the defaults.
    """
    if data is None:
        data = {}
    if dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    if not isinstance(data, Mapping):
        raise _fail(source, path, "a mapping (key: value lines)", data)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(str(k), list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        more = f" (and {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
        raise ConfigError(f"{_where(source, path)}: unknown {what} {k!r}{hint}{more}; "
                          f"known: {', '.join(fields)}")
    hints = _hints(cls)
    kwargs = {}
    for k, v in data.items():
        sub = f"{path}.{k}" if path else str(k)
        meta = fields[k].metadata
        if "schema" in meta:
            kwargs[k] = _check_schema(meta["schema"], meta.get("each", False), v, sub, source)
            continue
        val = check_value(hints[k], v, sub, source)
        if meta and isinstance(val, (int, float)) and not isinstance(val, bool):
            if "min" in meta and val < meta["min"]:
                raise ConfigError(f"{_where(source, sub)}: must be >= {meta['min']}, got {_show(v)}")
            if "gt" in meta and val <= meta["gt"]:
                raise ConfigError(f"{_where(source, sub)}: must be > {meta['gt']}, got {_show(v)}")
            if "max" in meta and val > meta["max"]:
                raise ConfigError(f"{_where(source, sub)}: must be <= {meta['max']}, got {_show(v)}")
        kwargs[k] = val
    obj = cls(**kwargs)
    extra = getattr(obj, "_config_check", None)
    if callable(extra):         # checks the annotations cannot say (e.g. a nested model config)
        extra(path, source)
    return obj


def to_plain(value: Any) -> Any:
    """A checked value back in YAML/JSON terms (paths as strings, tuples as lists, dataclasses as dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------
# the params.yaml sections: each stage's section is declared (types, bounds, defaults) once, by the
# ``Params`` dataclass of its module ``vadlib.stages.<stage>``; here only the shared sections that
# belong to no stage (``backbone``; ``seed`` is a plain integer) and ``compare`` (a hand-run notebook)
# ---------------------------------------------------------------------------------------------


@dataclass
class BackboneParams:
    """``backbone``: an open_clip model name and pretrained tag (or checkpoint path), and the image
    tower's precision (``auto`` | ``fp32`` | ``bf16`` | ``fp16``; :mod:`vadlib.features.precision`)."""

    name: str = "ViT-B-16"
    pretrained: str = "openai"
    device: str = "cpu"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"


@dataclass
class CompareParams:
    """``compare``: experiment comparison (``notebooks/compare.py``, run by hand; no stage module)."""

    metric: str = "micro_auc"
    metrics_file: str = ""
    param: str = ""
    hue: str = ""
    runs: list[str] = field(default_factory=list)
    max_runs: int = bounded(6, min=1)
    roc_path: str = ""
    pr_path: str = ""
    all_commits: bool = False


#: the stages whose section is their module's ``Params`` (``vadlib.stages.<name>``)
STAGE_SECTIONS = ("demo", "extract", "zeroshot", "flow_nf", "train_mil", "transfer", "report")
_OWN_SECTIONS: dict[str, type] = {"backbone": BackboneParams, "compare": CompareParams}


def section_class(name: str) -> type | None:
    """The typed declaration of ``params.yaml`` section ``name``: ``vadlib.stages.<name>.Params`` for a
    stage (imported by name, so checking one stage imports only that stage's module), the classes above
    for the shared sections, ``None`` for a section without one."""
    if name in STAGE_SECTIONS:
        import importlib

        return importlib.import_module(f"vadlib.stages.{name}").Params
    return _OWN_SECTIONS.get(name)


class _Sections(Mapping):
    """``{section: typed class}``; a stage's class is imported when it is looked up."""

    def __getitem__(self, name: str) -> type:
        if name not in self:
            raise KeyError(name)
        return section_class(name)

    def __contains__(self, name: object) -> bool:
        return name in STAGE_SECTIONS or name in _OWN_SECTIONS

    def __iter__(self):
        return iter((*_OWN_SECTIONS, *STAGE_SECTIONS))

    def __len__(self) -> int:
        return len(_OWN_SECTIONS) + len(STAGE_SECTIONS)


#: each ``params.yaml`` section with a typed declaration (see :func:`section_class`)
SECTIONS: Mapping[str, type] = _Sections()


def validate_datasets(datasets: Any, source: str | None = "params.yaml") -> dict[str, dict]:
    """``datasets``: ``{name: {root, adapter options…}}``; each entry's options are checked against its
    adapter's signature (unknown option, wrong type) without reading any data."""
    from vadlib.data.registry import DATASETS
    from vadlib.data.release import check_options

    check_value(dict[str, Any], datasets or {}, "datasets", source)
    out = {}
    for name, opts in (datasets or {}).items():
        if opts is None:
            opts = {}
        if not isinstance(opts, Mapping):
            raise _fail(source, f"datasets.{name}", "a mapping of options (root: …)", opts)
        if name in DATASETS.names():
            out[name] = to_plain(check_options(name, DATASETS.get(name), dict(opts),
                                               where=_where(source, f"datasets.{name}")))
        else:
            out[name] = dict(opts)
    return out


def validate_section(params: Mapping, name: str, source: str | None = "params.yaml",
                     cls: type | None = None) -> Any:
    """The section ``name`` of ``params`` checked by ``cls`` (default: :func:`section_class`); returns it
    with checked values (only the keys given: defaults stay where they are defined). Sections without a
    typed config (and the shared ``seed``/``datasets``) are checked by their own rules."""
    value = params.get(name)
    if name == "seed":
        return check_value(int, value if value is not None else 0, "seed", source)
    if name == "datasets":
        return validate_datasets(value, source)
    cls = cls or section_class(name)
    if cls is None:
        return value
    checked = check(cls, value, name, source)
    # the given value where it already equals the checked one (3 stays 3, not 3.0: notebooks and the
    # outputs that echo parameters are unchanged); the converted value otherwise ("1e-3" -> 0.001)
    return {k: v if v == (c := to_plain(getattr(checked, k))) else c for k, v in (value or {}).items()}


def validate_params(params: Mapping, source: str | None = "params.yaml",
                    sections: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Every known section of ``params`` (or those in ``sections``) checked; a copy with checked values."""
    out = dict(params)
    for name in sections or tuple(params):
        if name in params and (name in SECTIONS or name in ("seed", "datasets")):
            out[name] = validate_section(params, name, source)
    return out


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read ``params.yaml``; a missing or malformed file raises ConfigError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found (run from the repository root)")
    import yaml

    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return params
