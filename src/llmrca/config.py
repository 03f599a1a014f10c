"""Typed configuration dataclasses that round-trip to dict and YAML."""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Self

#: Old option spellings -> the one spelling every method uses (docs/methods.md, "Option vocabulary").
#: ``Config.from_dict`` still accepts the old ones, with a DeprecationWarning, so saved configs load.
RENAMED_OPTIONS: dict[str, str] = {"anomal_window_s": "anomalous_window_s", "budget_s": "time_budget_s"}
#: Options that are a window length in seconds, ``None`` = the whole window (an old ``0`` meant the same).
WINDOW_OPTIONS: tuple[str, ...] = ("normal_window_s", "anomalous_window_s")


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

    #: The reference implementation an old ``reference_mode: true`` meant (``None``: the class has none).
    legacy_reference: ClassVar[str | None] = "rcaeval"
    #: Text fields whose value may be written as a plain number (a Kubernetes quantity ``8`` or ``0.5``): a
    #: number there is the same value as its text, so ``--set cpu=8`` is taken as ``"8"`` instead of refused.
    numeric_text: ClassVar[frozenset[str]] = frozenset()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None = None) -> Self:
        d = _upgrade_legacy(cls, dict(d or {}))
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown option(s) {unknown}; valid options: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        for k in cls.numeric_text & set(d):
            v = d[k]
            if isinstance(v, int | float) and not isinstance(v, bool):
                d[k] = str(int(v)) if float(v).is_integer() else repr(float(v))
        kwargs = {k: _coerce(cls.__name__, k, v, hints.get(k)) for k, v in d.items()}
        ref = kwargs.get("reference_mode")
        if ref is not None and "reference_mode" in names and ref != cls.legacy_reference:
            allowed = "null (the paper's algorithm)" + (f" or {cls.legacy_reference!r}" if cls.legacy_reference else "")
            raise ConfigError(f"{cls.__name__}: reference_mode must be {allowed}, got {ref!r}")
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


def _upgrade_legacy(cls: type[Config], d: dict[str, Any]) -> dict[str, Any]:
    """Rewrite old option spellings / values to the current vocabulary, warning once per option.

    * a renamed option (:data:`RENAMED_OPTIONS`) takes its new name (an error if both are given);
    * ``reference_mode``: ``true`` -> the class's reference implementation
      (:attr:`Config.legacy_reference`), ``false`` / ``"paper"`` -> ``None`` (the paper's algorithm);
    * a window length (:data:`WINDOW_OPTIONS`) of ``0`` -> ``None`` (the whole window).
    """
    fields = {f.name for f in dataclasses.fields(cls)}
    owner = cls.__name__

    def note(msg: str) -> None:
        warnings.warn(f"{owner}: {msg}; saved configurations still load, but please update them", DeprecationWarning, stacklevel=4)

    for old, new in RENAMED_OPTIONS.items():
        if old in d and old not in fields and new in fields:
            if new in d:
                raise ConfigError(f"{owner}: both {old!r} (old spelling) and {new!r} are given; keep only {new!r}")
            note(f"option {old!r} is now called {new!r}")
            d[new] = d.pop(old)
    if "reference_mode" in fields and "reference_mode" in d:
        v = d["reference_mode"]
        if isinstance(v, bool) or v == "paper":
            new_v = (cls.legacy_reference if v is True else None)
            note(f"reference_mode={v!r} is now reference_mode={new_v!r}")
            d["reference_mode"] = new_v
    for w in WINDOW_OPTIONS:
        v = d.get(w)
        if w in fields and isinstance(v, int | float) and not isinstance(v, bool) and v == 0:
            note(f"{w}=0 (the whole window) is now {w}=None")
            d[w] = None
    return d


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
    if hint in (float, int) and isinstance(value, bool):
        raise ConfigError(f"{owner}.{key}: expected a number, got {value!r}")
    if hint is bool and isinstance(value, int | float) and not isinstance(value, bool):
        if value in (0, 1):
            return bool(value)
        raise ConfigError(f"{owner}.{key}: expected true/false, got {value!r}")
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
    if hint is int and isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ConfigError(f"{owner}.{key}: expected an integer, got {value!r}")
    if hint is str and isinstance(value, bool | int | float):
        # a YAML value such as 2.50 or true was read as a number / boolean: its text is lost, so ask for quotes
        raise ConfigError(f"{owner}.{key}: expected text, got {type(value).__name__} {value!r}; quote the value, e.g. --set '{key}=\"...\"'")
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
