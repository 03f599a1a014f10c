"""Typed configuration dataclasses that round-trip to dict and YAML."""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from collections.abc import Mapping
from typing import Any, ClassVar, Self

#: Old option spellings -> the one spelling every method uses (docs/methods.md, "Option vocabulary").
#: ``Config.from_dict`` still accepts the old ones, with a FutureWarning (shown to users by default, unlike a DeprecationWarning), so saved configs load.
RENAMED_OPTIONS: dict[str, str] = {"anomal_window_s": "anomalous_window_s", "budget_s": "time_budget_s"}
#: Options that are a window length in seconds, ``None`` = the whole window (an old ``0`` meant the same).
WINDOW_OPTIONS: tuple[str, ...] = ("normal_window_s", "anomalous_window_s")


class ConfigError(ValueError):
    """A configuration has an unknown key or a value of the wrong type or out of its range."""


#: The range of the methods' numeric options, by option name (one meaning per name, docs/methods.md
#: "Option vocabulary"): an interval ``"(0, 1)"``, ``"[1, inf)"``, ...  Checked by :meth:`Config.from_dict`
#: for the configs of ``llmrca.methods`` (and of any class that sets ``checked_ranges = True``), so a value
#: that would fail every run (``hazard_lambda=0``: a division by zero) is refused before the first.  A class
#: narrows or widens a name in its own :attr:`Config.option_bounds`.  ``None`` stays allowed where the
#: type allows it.
METHOD_OPTION_BOUNDS: dict[str, str] = {
    # significance levels and probabilities
    **dict.fromkeys(("alpha", "alpha_mci", "alpha_pc", "alpha_step", "chunk_alpha", "final_alpha", "pyrca_alpha", "pvalue_thres"), "(0, 1)"),
    "damping": "(0, 1)",  # PageRank's damping factor (networkx: the walk must be able to restart)
    "restart": "[0, 1)",
    "rho": "[0, 1]",
    "q_low": "[0, 1]",
    "q_high": "[0, 1]",
    "min_support": "[0, inf)",  # a share of traces; above 1 keeps no set (every candidate 'Not Found')
    # windows and budgets (seconds); the seed (numpy takes no negative one)
    "normal_window_s": "(0, inf)",
    "anomalous_window_s": "(0, inf)",
    "time_budget_s": "(0, inf)",
    "seed": "[0, inf)",
    # counts; the work of a run grows with the ones given an upper limit (a walk keeps every step in memory, the
    # others repeat a pass over the data), set hundreds of times above their defaults, where one run still ends in
    # minutes on one core
    "max_columns": "[2, inf)",
    **dict.fromkeys(("max_iter", "cpd_max_dims", "min_violations", "max_lag", "max_set_size"), "[1, inf)"),
    "walk_steps": "[1, 10000000]",  # 10^7 steps: 80 MB of draws (default 10^4)
    "iterations": "[1, 100000]",  # MicroRank's PageRank rounds (default 25)
    **dict.fromkeys(("n_permutations", "bootstrap_time"), "[1, 100000]"),  # ε-Diagnosis (defaults 199, 200; 20000 take ~6 s)
    **dict.fromkeys(("epochs", "max_outer"), "[1, 100000]"),  # CausalRCA's DAG-GNN (defaults 50, 4)
    "hidden": "[1, 65536]",  # CausalRCA's hidden units (default 64)
    "bins": "[2, inf)",
    **dict.fromkeys(("max_cond", "max_conds", "max_condition_set_size", "tau_max"), "[0, inf)"),
    **dict.fromkeys(("depth", "pc_depth", "max_path_length"), "[-1, inf)"),  # -1: no limit (causal-learn)
    # scales
    "hazard_lambda": "(1, inf)",  # BOCPD's hazard 1 / lambda must be a probability below 1
    **dict.fromkeys(("k", "tol", "lr", "cap"), "(0, inf)"),
    **dict.fromkeys(("l1", "graph_threshold", "call_weight", "weight_logs", "weight_metrics", "weight_traces"), "[0, inf)"),
    # thresholds on scores, z-scores and edge weights (non-negative, finite: infinity would keep or refuse every one)
    **dict.fromkeys(("abstain_below", "da_threshold", "lingam_threshold", "onset_z", "min_strength"), "[0, inf)"),
    "z_threshold": "(0, inf)",  # llm-rca divides a change by it
    # shares of a value
    "rel_floor": "[0, 1]",
    "power_tolerance": "[0, 1)",
}


#: The values of the methods' text options that take one of a few, by option name (checked as
#: :data:`METHOD_OPTION_BOUNDS` is; a class adds its own in :attr:`Config.option_choices`).  Sources: the
#: modules that read them (``llmrca.methods.trace._spectrum.FORMULAS``, ``graph.discovery.GRANGER_TESTS``,
#: ``common.scaling.ZERO_SPREAD_CHOICES``; tests/test_methods2_config.py keeps them equal).
METHOD_OPTION_CHOICES: dict[str, tuple[str, ...]] = {
    "anomaly_stat": ("mean", "max"),
    "ci_test": ("chisq", "gsq"),
    "cpd_model": ("diagonal", "full"),
    "detector": ("birch", "sigma"),
    "granger_test": ("ssr_ftest", "ssr_chi2test", "lrtest", "params_ftest", "mean"),
    "lingam_variant": ("direct", "ica"),
    "rank_on": ("latency", "all"),
    "spectrum": ("dstar2", "ochiai", "jaccard", "tarantula", "sorensen-dice", "russell-rao"),
    "walk_weight": ("corr", "corr_anomaly"),
    "zero_spread": ("relative", "unit"),
}


def _in_range(value: float, interval: str) -> bool:
    """Whether ``value`` lies in ``interval`` (``"(0, 1]"``, ``"[1, inf)"``: brackets inclusive, parentheses not)."""
    lo_s, hi_s = (x.strip() for x in interval[1:-1].split(","))
    lo, hi = float(lo_s), float(hi_s)
    above = value >= lo if interval[0] == "[" else value > lo
    below = value <= hi if interval[-1] == "]" else value < hi
    return above and below


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
    #: Ranges of this class's numeric options beyond (or instead of) :data:`METHOD_OPTION_BOUNDS`.
    option_bounds: ClassVar[dict[str, str]] = {}
    #: Values of this class's text options that take one of a few, beyond :data:`METHOD_OPTION_CHOICES`.
    option_choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: Whether :data:`METHOD_OPTION_BOUNDS` and :data:`METHOD_OPTION_CHOICES` apply, and NaN is refused
    #: (default: for the classes of ``llmrca.methods``).
    checked_ranges: ClassVar[bool | None] = None

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
        choices = _option_choices(cls)
        for k, v in d.items():  # a number where the text takes one of a few: name the few, not quoting
            if k in choices and isinstance(v, bool | int | float) and hints.get(k) is str:
                raise ConfigError(f"{cls.__name__}: option {k!r} must be one of {', '.join(choices[k])}; got {v!r}")
        if "reference_mode" in d and isinstance(d["reference_mode"], int | float) and not isinstance(d["reference_mode"], bool):
            allowed = "null (the paper's algorithm)" + (f" or {cls.legacy_reference!r}" if cls.legacy_reference else "")
            raise ConfigError(f"{cls.__name__}: reference_mode must be {allowed}, got {d['reference_mode']!r}")
        bounds = {**(METHOD_OPTION_BOUNDS if _checked(cls) else {}), **cls.option_bounds}
        kwargs = {}
        for k, v in d.items():
            try:
                kwargs[k] = _coerce(cls.__name__, k, v, hints.get(k))
            except ConfigError as e:  # a wrong type: say the range too, where the option has one
                if k in bounds:
                    raise ConfigError(f"{e} (the option takes {_type_name(hints.get(k))} in {bounds[k]})") from None
                raise
        _check_ranges(cls, kwargs)
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


def _checked(cls: type[Config]) -> bool:
    return cls.checked_ranges if cls.checked_ranges is not None else cls.__module__.startswith("llmrca.methods.")


def _option_choices(cls: type[Config]) -> dict[str, tuple[str, ...]]:
    """The text options of ``cls`` that take one of a few values, and those values."""
    return {**(METHOD_OPTION_CHOICES if _checked(cls) else {}), **cls.option_choices}


def _check_ranges(cls: type[Config], kwargs: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the option, the value and its range when a numeric option given in
    ``kwargs`` is out of range (:data:`METHOD_OPTION_BOUNDS`, :attr:`Config.option_bounds`), or when
    ``q_low`` is not below ``q_high``."""
    checked = _checked(cls)
    bounds = {**(METHOD_OPTION_BOUNDS if checked else {}), **cls.option_bounds}
    choices = _option_choices(cls)
    for k, v in kwargs.items():
        if isinstance(v, str) and k in choices and v not in choices[k]:
            raise ConfigError(f"{cls.__name__}: option {k!r} must be one of {', '.join(choices[k])}; got {v!r}")
        if v is None or isinstance(v, bool) or not isinstance(v, int | float):
            continue
        if checked and v != v:
            raise ConfigError(f"{cls.__name__}: option {k!r} is NaN; give a number")
        interval = bounds.get(k)
        if interval is not None and (v != v or not _in_range(float(v), interval)):  # NaN is in no range
            whole = "; null (or the old 0) means the whole window" if k in WINDOW_OPTIONS else ""
            raise ConfigError(f"{cls.__name__}: option {k!r} must be in {interval}, got {v!r}{whole}")
    names = {f.name: f.default for f in dataclasses.fields(cls)}
    if checked and "q_low" in names and "q_high" in names and ("q_low" in kwargs or "q_high" in kwargs):
        lo, hi = kwargs.get("q_low", names["q_low"]), kwargs.get("q_high", names["q_high"])
        if isinstance(lo, int | float) and isinstance(hi, int | float) and not lo < hi:
            raise ConfigError(f"{cls.__name__}: option 'q_low' ({lo!r}) must be below 'q_high' ({hi!r})")


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
        warnings.warn(f"{owner}: {msg}; the old spelling still works, but please use the new one", FutureWarning, stacklevel=4)

    def yaml_text(v: Any) -> str:  # as --set and a YAML file write it: true / null / 'paper'
        return "null" if v is None else "true" if v is True else "false" if v is False else repr(v)

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
            note(f"reference_mode={yaml_text(v)} is now reference_mode={yaml_text(new_v)}")
            d["reference_mode"] = new_v
    for w in WINDOW_OPTIONS:
        v = d.get(w)
        if w in fields and isinstance(v, int | float) and not isinstance(v, bool) and v == 0:
            note(f"{w}=0 (the whole window) is now {w}=null")
            d[w] = None
    return d


def _coerce(owner: str, key: str, value: Any, hint: Any) -> Any:
    """Light coercion for values that come from YAML / CLI strings.

    Raises :class:`ConfigError` for a value of the wrong type: text that is no number where one is expected,
    ``null`` where the type has no None, a list or mapping where a single value is expected."""
    if hint is None:
        return value
    if value is None:
        if hint is not Any and not _allows_none(hint):
            raise ConfigError(f"{owner}.{key}: null is not a value of this option (expected {_type_name(hint)})")
        return value
    if hint in (int, float, str, bool) and isinstance(value, list | dict | tuple | set):
        raise ConfigError(f"{owner}.{key}: expected {_type_name(hint)}, not a {type(value).__name__}: got {value!r}")
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
        except ValueError:
            pass
        try:  # 1e6: YAML 1.1 reads an exponent without a dot as text; a whole number all the same
            f = float(value)
        except ValueError:
            f = float("nan")
        if f.is_integer():
            return int(f)
        raise ConfigError(f"{owner}.{key}: expected an integer, got {value!r}")
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
    # what YAML reads besides numbers, text and booleans (a date 2001-01-01, !!binary bytes) is no such value
    import datetime
    import numbers

    odd = isinstance(value, bytes | bytearray | datetime.date | datetime.time)
    if odd or (hint is int and not isinstance(value, numbers.Integral)) or (hint is float and not isinstance(value, numbers.Real)):
        raise ConfigError(f"{owner}.{key}: expected {_type_name(hint)}, got {type(value).__name__} {value!r}")
    return value


def _allows_none(hint: Any) -> bool:
    """Whether the type ``hint`` admits None (``float | None``, ``Optional[str]``, ``Any``, ``None``)."""
    if hint is Any or hint is type(None) or hint is None:
        return True
    return typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in typing.get_args(hint)


def _type_name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "text", bool: "true/false"}.get(hint, str(hint).replace("typing.", ""))


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Parse ``key=value`` strings (CLI ``--set``) into a dict; values via YAML."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            k, colon, v = item.partition(":")
            hint = f"; did you mean '{k.strip()}={v.strip()}'?" if colon and k.strip() and not sep else ""
            raise ConfigError(f"option {item!r} is not key=value{hint}")
        out[key.strip()] = yaml.safe_load(raw)
    return out
