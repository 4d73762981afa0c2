"""Typed dataclass sections loaded from YAML plus dotted ``key=value`` overrides.

The machinery behind :mod:`wsol.config` (and any other config dataclass): values are
coerced to the field's type, a ``Literal`` is a choice and ``field(metadata=between(...))``
a range, both checked whenever a :class:`Section` is built (from YAML or in Python),
with cross-key rules in the section's ``check``. Every problem is a one-line
:class:`ConfigError` that names the key and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml

from wsol.errors import UsageError, quote, unknown_choice
from wsol.readfile import MAX_CONFIG_BYTES, InputFileError, InputMissingError, read_text
from wsol.strict_yaml import AliasBombError, load_yaml

T = TypeVar("T")


class ConfigError(UsageError):
    """A configuration that cannot be run."""


def between(
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
    length: int | None = None,
) -> dict:
    """Field metadata: the value (each item, for a list) lies in ``[lo, hi]``, with open
    ends where asked; a list has ``length`` items."""
    return {"range": (lo, hi, lo_open, hi_open), "length": length}


def registered(names: Callable[[], Iterable[str]]) -> dict:
    """Field metadata for a ``Literal`` choice that a registry extends: ``names()`` (asked
    only for a value that is none of the ``Literal``'s) lists the other valid ones."""
    return {"registered": names}


def _describe(lo, hi, lo_open, hi_open) -> str:
    if hi is None:
        return f"{'>' if lo_open else '>='} {lo}"
    if lo is None:
        return f"{'<' if hi_open else '<='} {hi}"
    return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"


def _in_range(v: float, lo, hi, lo_open, hi_open) -> bool:
    if not math.isfinite(v):  # NaN compares false with everything; inf is no setting
        return False
    if lo is not None and (v <= lo if lo_open else v < lo):
        return False
    return not (hi is not None and (v >= hi if hi_open else v > hi))


class Section:
    """Checks a dataclass's ``Literal`` choices and ``between`` ranges after ``__init__``;
    ``check`` adds the rules that tie keys together."""

    section: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            key = f"{self.section}.{f.name}" if self.section else f.name
            _check_value(getattr(self, f.name), hints[f.name], f.metadata, key)
        self.check()

    def check(self) -> None:
        """Rules between keys of this section."""


def _choices(tp: Any) -> tuple | None:
    """The allowed strings of a ``Literal`` (or of ``list[Literal]``), else None."""
    if typing.get_origin(tp) is Literal:
        return typing.get_args(tp)
    if typing.get_origin(tp) is list:
        return _choices(typing.get_args(tp)[0])
    return None


def _check_value(value: Any, tp: Any, meta: typing.Mapping, key: str) -> None:
    if value is None or dataclasses.is_dataclass(value):
        return
    items = value if isinstance(value, list) else [value]
    literal = _choices(tp)
    if literal is None and typing.get_origin(tp) in (typing.Union, types.UnionType):
        # A number or a word (boxes.threshold): a string must be one of the words.
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        words = next((_choices(a) for a in args if _choices(a)), None)
        if words is not None and isinstance(value, str) and value not in words:
            raise ConfigError(
                f"{key}: expected {' or '.join(map(_type_name, args))}, got {quote(value)}"
            )
        if isinstance(value, str):
            return
    if literal is not None:
        for v in items:
            if v in literal:
                continue
            valid = {*literal, *meta["registered"]()} if "registered" in meta else literal
            if v not in valid:
                hint = meta.get("hints", {}).get(v)
                raise ConfigError(hint or unknown_choice(key, v, valid))
        return
    if (
        meta.get("length") is not None
        and isinstance(value, list)
        and (len(value) != meta["length"])
    ):
        raise ConfigError(f"{key} must have {meta['length']} values, got {quote(value)}")
    if "range" in meta:
        for v in items:
            if isinstance(v, int | float) and not _in_range(v, *meta["range"]):
                raise ConfigError(f"{key} must be {_describe(*meta['range'])}, got {quote(v)}")


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@dataclasses.dataclass(frozen=True)
class _Typed:
    """A command-line value: its text, and the text read as YAML. A string field takes
    the text as it is (``out=2024_05_01`` stays ``"2024_05_01"``, ``data.split=no``
    stays ``"no"``); other fields take the YAML reading."""

    text: str
    parsed: Any


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` (from YAML or the command line) as type ``tp``; choices and ranges are
    checked later, by the section."""
    origin = typing.get_origin(tp)
    if isinstance(value, _Typed) and origin not in (typing.Union, types.UnionType):
        as_text = tp is str or origin is Literal
        return _coerce(value.text if as_text else value.parsed, tp, key)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, _Typed) and value.parsed is None):
            return None
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for arg in args:  # the first member that accepts the value wins
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        names = [_type_name(a) for a in args]
        raise ConfigError(f"{key}: expected {' or '.join(names)}, got {quote(value)}")
    if origin is Literal:
        if isinstance(value, str):
            return value
        choices = ", ".join(typing.get_args(tp))
        raise ConfigError(f"{key}: expected one of {choices}, got {quote(value)}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {quote(value)}")
        return [_coerce(v, item, key) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true or false, got {quote(value)}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ConfigError(f"{key}: expected an integer, got {quote(value)}")
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{key}: expected an integer, got {quote(value)}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {quote(value)}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {quote(value)}") from None
    if tp is str:
        if isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {quote(value)}")
        return "" if value is None else str(value)
    return value


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        tp, "a list" if typing.get_origin(tp) is list else str(tp)
    )


def build(cls: type[T], data: dict, prefix: str = "") -> T:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {quote(data)}")
    types_ = _field_types(cls)
    unknown = sorted(set(data) - set(types_))
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(
            f"unknown config key {quote(prefix + str(unknown[0]))} ({where}); valid keys: "
            + ", ".join(prefix + k for k in types_)
        )
    kwargs = {}
    for name, tp in types_.items():
        if name not in data:
            continue
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build(tp, data[name] or {}, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(data[name], tp, prefix + name)
    return cls(**kwargs)


def _set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {quote(key)}: {quote(p)} is not a section")
    node[parts[-1]] = value


def _split_override(item: str) -> tuple[str, str, Any]:
    """``"a.b=1"`` -> ``("a.b", "1", 1)``: the key, the text and the text read as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {quote(item)} is not of the form key=value")
    key, raw = item.split("=", 1)
    try:
        value = load_yaml(raw) if raw else ""
    except AliasBombError as e:
        raise ConfigError(f"override {quote(key.strip())}: {e}") from None
    except yaml.YAMLError:
        value = raw
    return key.strip(), raw, value


def parse_overrides(overrides: list[str]) -> dict:
    """``["a.b=1", "out=x"]`` -> ``{"a": {"b": 1}, "out": "x"}``; values parsed as YAML."""
    tree: dict = {}
    for item in overrides:
        key, _raw, value = _split_override(item)
        _set_dotted(tree, key, value)
    return tree


def _merge(base: dict, delta: dict) -> dict:
    out = dict(base)
    for k, v in delta.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _override_tree(overrides: list[str] | dict[str, Any] | None) -> dict:
    tree: dict = {}
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            _set_dotted(tree, key, value)
        return tree
    for item in overrides or []:
        key, raw, value = _split_override(item)
        _set_dotted(tree, key, _Typed(raw, value))
    return tree


def load(
    cls: type[T],
    path: str | Path | None = None,
    overrides: list[str] | dict[str, Any] | None = None,
) -> T:
    """Defaults <- YAML file <- overrides, checked against the dataclass ``cls``.

    ``overrides`` are ``["section.key=value", ...]`` as on the command line (values
    parsed as YAML) or a dict ``{"section.key": value}`` of Python values.
    """
    tree: dict = {}
    if path is not None:
        tree = read_config_file(path)
    return build(cls, _merge(tree, _override_tree(overrides)))


def read_config_file(path: str | Path) -> dict:
    """The mapping a YAML config file holds (empty for an empty file).

    Raises:
        ConfigError: missing or unreadable, not UTF-8, not valid YAML (a duplicate key
            and runaway aliases included), or not a mapping of sections.
    """
    p = Path(path)
    try:
        text = read_text(p, MAX_CONFIG_BYTES)
    except InputMissingError:
        raise ConfigError(f"config file not found: {p}") from None
    except InputFileError as e:
        raise ConfigError(f"config file {p}: {e}") from None
    try:
        tree = load_yaml(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {one_line(e)}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        kind = "a list" if isinstance(tree, list) else f"a single value ({quote(tree, 40)})"
        raise ConfigError(
            f"{p}: a config file is a mapping of sections (data:, model:, ...), not {kind}"
        )
    return tree


def one_line(error: Exception) -> str:
    """A YAML error (which spans lines, with a caret under the place) as one line."""
    return " ".join(str(error).split())


def with_overrides(cfg: T, overrides: list[str] | dict[str, Any] | None) -> T:
    """A copy of ``cfg`` with ``overrides`` applied (as in :func:`load`)."""
    return build(type(cfg), _merge(config_to_dict(cfg), _override_tree(overrides)))


def config_to_dict(cfg) -> dict:
    """A section as plain nested dicts and lists (what YAML holds)."""
    return dataclasses.asdict(cfg)
