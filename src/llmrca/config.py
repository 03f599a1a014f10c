"""Typed configuration dataclasses that round-trip to dict and YAML."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, Self


class ConfigError(ValueError):
    """A configuration has an unknown key or a value of the wrong type."""


@dataclasses.dataclass
class Config:
    """Base of every method / component configuration.

    Subclasses are dataclasses with defaults for every field.  ``to_dict`` and
    ``from_dict`` round-trip exactly; ``from_dict`` rejects unknown keys with
    the list of valid ones, so a typo in a YAML file is an error, not a silent
    default.
    """

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None = None) -> Self:
        d = dict(d or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown option(s) {unknown}; valid options: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        kwargs = {k: _coerce(cls.__name__, k, v, hints.get(k)) for k, v in d.items()}
        return cls(**kwargs)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> Self:
        import yaml

        return cls.from_dict(yaml.safe_load(text) or {})

    def replace(self, **changes: Any) -> Self:
        return self.from_dict({**self.to_dict(), **changes})


def _coerce(owner: str, key: str, value: Any, hint: Any) -> Any:
    """Light coercion for values that come from YAML / CLI strings."""
    if hint is None or value is None:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(owner, key, value, non_none[0])
        return value
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError as e:
            raise ConfigError(f"{owner}.{key}: expected a number, got {value!r}") from e
    if hint is int and isinstance(value, str):
        try:
            return int(value)
        except ValueError as e:
            raise ConfigError(f"{owner}.{key}: expected an integer, got {value!r}") from e
    if hint is bool and isinstance(value, str):
        low = value.lower()
        if low in {"true", "1", "yes", "on"}:
            return True
        if low in {"false", "0", "no", "off"}:
            return False
        raise ConfigError(f"{owner}.{key}: expected true/false, got {value!r}")
    return value


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings (CLI ``--set``) into a dict; values via YAML."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"option {item!r} is not key=value")
        out[key.strip()] = yaml.safe_load(raw)
    return out
