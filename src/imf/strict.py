"""Strict construction of the config dataclasses from plain mappings (YAML, config.json).

``from_mapping(cls, data, where)`` is the one parser every config uses (model, data, training sections,
editor training, editor): it rejects what is not a mapping, names unknown keys, checks each value against
the field's type annotation (bool, int, float, str, Path, tuples, ``X | None``, nested dataclasses),
converts YAML lists to the tuples the fields hold and ints to floats, and turns any remaining constructor
error into a ``ConfigError`` naming ``where``. ``check_types(self, section)`` applies the same type rules in a
``__post_init__``, so that a config built directly in Python (``DataConfig(size="64")``) is checked as one read
from YAML; ``require`` checks ranges from a table of rules. Cross-field rules stay in each class.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from pathlib import Path
from typing import Any, Union

from imf.errors import ConfigError

MAX_DEPTH = 8
"""Nesting deeper than this inside one value is refused (no config nests lists of lists of lists)."""


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _depth(value: Any, limit: int) -> int:
    if limit < 0:
        return 0
    if isinstance(value, (list, tuple)):
        return 1 + max((_depth(v, limit - 1) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v, limit - 1) for v in value.values()), default=0)
    return 0


def check_value(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against the annotation ``hint`` and converted (lists to tuples, ints to floats)."""
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{where} must not be null")
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return check_value(value, option, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {_describe(value)} fits none of "
                          f"{' | '.join(getattr(a, '__name__', str(a)) for a in args)}")
    if value is None:
        raise ConfigError(f"{where} must not be null")
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {_describe(value)}")
        return value
    if hint is Path:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where} must be a path, got {_describe(value)}")
        return Path(value)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {_describe(value)}")
        if _depth(value, MAX_DEPTH + 1) > MAX_DEPTH:
            raise ConfigError(f"{where} is nested deeper than {MAX_DEPTH} levels")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where} must have {len(args)} values, got {len(value)}")
            items = [check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            item = args[0] if args else Any
            items = [check_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_mapping(hint, value, where)
    return value


def from_mapping(cls, data: Any, where: str):
    """An instance of the dataclass ``cls`` from ``data`` (a mapping; None = all defaults), checked as the
    module docstring says. ``where`` names the config in messages, e.g. "config section 'loss'"."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown {where} key(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    hints = _hints(cls)
    kwargs = {k: check_value(v, hints.get(k, Any), f"{where}: {k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise  # already names its key
    except (TypeError, ValueError, OverflowError) as e:
        raise ConfigError(f"{where}: {e}") from None


def check_types(obj: Any, section: str) -> None:
    """Every field of the dataclass instance ``obj`` checked against its annotation as ``from_mapping`` does,
    and converted in place (lists to tuples, ints to floats; also on frozen dataclasses). Nested dataclass
    values check themselves. Messages name ``section.field``."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue
        checked = check_value(value, hints.get(f.name, Any), f"{section}.{f.name}")
        if checked is not value:
            object.__setattr__(obj, f.name, checked)


def require(section: str, obj: Any, rules: dict[str, tuple[Any, str]]) -> None:
    """Range rules of a config: {field: (predicate(value) -> bool, "must be ...")}; the first broken one is a
    ConfigError naming ``section.field``, the rule and the value."""
    for name, (ok, rule) in rules.items():
        value = getattr(obj, name)
        try:
            good = bool(ok(value))
        except (TypeError, ValueError):
            good = False
        if not good:
            raise ConfigError(f"{section}.{name} {rule}, got {value!r}")


def finite_at_least(low: float, inclusive: bool = True):
    """A predicate: a finite number >= low (> low when not inclusive)."""
    import math

    return lambda v: math.isfinite(v) and (v >= low if inclusive else v > low)
