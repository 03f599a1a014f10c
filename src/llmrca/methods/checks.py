"""Conformance checks every RCA method must pass (like scikit-learn's ``check_estimator``).

:func:`check_method` runs each check on a method class and raises
:class:`MethodCheckError` listing every failure (or returns the results with
``raise_on_failure=False``).  The checks:

``registry_row``
    the class is registered under its ``name``, the row's target is the
    class, the row's tags are the class's tags, and the row has a paper name,
    a citation and a known family;
``config_round_trip``
    every test configuration survives ``to_dict``/``from_dict`` and
    ``to_yaml``/``from_yaml`` unchanged, and an unknown option is rejected;
``rank_contract``
    ``rank`` returns a :class:`~llmrca.model.Ranking` of distinct candidate
    components that survives a JSON round trip (an empty ranking, "no root
    cause", is valid: it is an abstention);
``ignores_truth``
    the ranking is the same with and without the ground truth
    (:meth:`~llmrca.model.Case.without_truth`); for a method tagged
    non-deterministic, its first answer does not follow a ground truth
    planted on two different components in turn;
``no_mutation``
    ``rank`` leaves the case (metrics, logs, traces, topology, meta) as it was;
``deterministic``
    a fresh instance with the same configuration (hence the same seed) gives
    the same ranking (skipped for methods tagged non-deterministic);
``unavailable_without_input``
    for every input the row says the method needs (logs, traces, topology),
    a case without it raises :class:`~llmrca.errors.MethodUnavailable`.

Each check runs on every configuration of the class's ``test_configs()``
(default: the default configuration), on a seeded synthetic case
(:func:`llmrca.synthetic.make_case`) with metrics, logs, traces and a call
graph.  Methods whose optional modules are missing raise
:class:`~llmrca.errors.MissingDependency` from :func:`check_method`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from llmrca.config import ConfigError
from llmrca.errors import MethodUnavailable, MissingDependency
from llmrca.model import Case, Ranking

CHECKS: tuple[str, ...] = (
    "registry_row",
    "config_round_trip",
    "rank_contract",
    "ignores_truth",
    "no_mutation",
    "deterministic",
    "unavailable_without_input",
)


@dataclass
class CheckResult:
    """One check on one configuration: ``passed`` is True, False, or None when skipped (``message`` says why)."""

    check: str
    config: dict[str, Any]
    passed: bool | None
    message: str = ""


class MethodCheckError(AssertionError):
    """A method failed conformance checks; ``results`` holds every result, failures first in the message."""

    def __init__(self, name: str, results: list[CheckResult]) -> None:
        self.results = results
        bad = [r for r in results if r.passed is False]
        lines = [f"  {r.check} (config {r.config}): {r.message}" for r in bad]
        super().__init__(f"method {name!r} fails {len(bad)} conformance check(s):\n" + "\n".join(lines))


def default_case(seed: int = 7) -> Case:
    """The seeded synthetic case the checks use: metrics, logs, traces, call graph and ground truth."""
    from llmrca.synthetic import make_case

    return make_case(root="ray-worker-1", fault="cpu", seed=seed)


def check_method(cls: type, *, case: Case | None = None, raise_on_failure: bool = True) -> list[CheckResult]:
    """Run every conformance check (:data:`CHECKS`) on method class ``cls``.

    ``case`` (default :func:`default_case`) must carry its ground truth.
    Returns one :class:`CheckResult` per check and test configuration; raises
    :class:`MethodCheckError` when any failed (unless ``raise_on_failure`` is
    False) and :class:`~llmrca.errors.MissingDependency` when the method's
    optional modules are not installed.
    """
    from llmrca.methods import registry

    if not isinstance(cls, type):
        raise TypeError(f"check_method takes a method class (e.g. llmrca.methods.registry.method_class({cls!r})), not {type(cls).__name__} {cls!r}")
    name = getattr(cls, "name", cls.__name__)
    if name in registry.REGISTRY:
        ok, _ = registry.available(name)
        row = registry.REGISTRY[name]
        if not ok:
            raise MissingDependency(row.requires[0], row.extra, what=f"method {name!r}")
    case = default_case() if case is None else case
    results: list[CheckResult] = [_run("registry_row", {}, lambda: _registry_row(cls))]
    configs = cls.test_configs() if hasattr(cls, "test_configs") else [{}]
    for cfg in configs:
        results.append(_run("config_round_trip", cfg, lambda cfg=cfg: _config_round_trip(cls, cfg)))
        results += _rank_checks(cls, cfg, case)
    results += [_run("unavailable_without_input", configs[0], lambda: _unavailable(cls, configs[0], case))]
    if raise_on_failure and any(r.passed is False for r in results):
        raise MethodCheckError(name, results)
    return results


# -- the checks ---------------------------------------------------------------------------


class _Skip(Exception):
    pass


def _run(check: str, cfg: dict[str, Any], fn: Callable[[], None]) -> CheckResult:
    try:
        fn()
    except _Skip as e:
        return CheckResult(check, cfg, None, str(e))
    except AssertionError as e:
        return CheckResult(check, cfg, False, str(e) or "assertion failed")
    except Exception as e:
        return CheckResult(check, cfg, False, f"{type(e).__name__}: {e}")
    return CheckResult(check, cfg, True)


def _registry_row(cls: type) -> None:
    from llmrca.methods import registry

    name = cls.name
    assert name in registry.REGISTRY, f"{name!r} is not registered (llmrca.methods.registry.register)"
    row = registry.REGISTRY[name]
    module, _, attr = row.target.partition(":")
    assert (cls.__module__, cls.__qualname__) == (module, attr), f"row target {row.target} is not {cls.__module__}:{cls.__qualname__}"
    assert cls.tags == row.tags, f"class tags {cls.tags} differ from the registry row's {row.tags}"
    assert row.family in registry.SOURCES, f"family {row.family!r} is none of {sorted(registry.SOURCES)}"
    assert row.display, "the row has no paper name (display)"
    assert row.citation, "the row cites no paper (citation)"
    assert cls.paper == row.citation, "the class's paper differs from the row's citation"
    assert set(row.needs) <= {"metrics", "logs", "traces", "topology"}, f"unknown needs {row.needs}"


def _config_round_trip(cls: type, cfg_dict: dict[str, Any]) -> None:
    cfg = cls.config_cls.from_dict(cfg_dict)
    assert cls.config_cls.from_dict(cfg.to_dict()) == cfg, "to_dict/from_dict changes the config"
    assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg, "to_yaml/from_yaml changes the config"
    try:
        cls.config_cls.from_dict({**cfg.to_dict(), "no_such_option_xyz": 1})
    except ConfigError:
        pass
    else:
        raise AssertionError("an unknown option is accepted silently")


def _snapshot(case: Case) -> dict[str, Any]:
    frames = {f"metrics[{k}]": v for k, v in case.metric_sets.items()}
    frames["metrics"] = case.metrics
    if case.logs is not None:
        frames["logs"] = case.logs
    if case.traces is not None:
        frames["traces"] = case.traces
    return {
        "frames": {k: v.copy(deep=True) for k, v in frames.items()},
        "topology": copy.deepcopy(case.topology),
        "meta": copy.deepcopy(case.meta),
        "inject_time": case.inject_time,
    }


def _same(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    diff = [k for k in a["frames"] if k not in b["frames"] or not _frame_equal(a["frames"][k], b["frames"][k])]
    diff += [k for k in ("topology", "meta", "inject_time") if a[k] != b[k]]
    return diff


def _frame_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True


def _key(r: Ranking) -> tuple[Any, ...]:
    return (tuple(r.components), tuple(round(float(s), 12) if s == s else None for s in r.scores))


def _rank_checks(cls: type, cfg: dict[str, Any], case: Case) -> list[CheckResult]:
    blind = case.without_truth()
    out: list[CheckResult] = []
    state: dict[str, Ranking] = {}

    def contract() -> None:
        before = _snapshot(blind)
        r = cls(cfg).rank(blind)
        state["mutated"] = _same(before, _snapshot(blind))  # type: ignore[assignment]  # taken first: no_mutation never lacks it
        state["blind"] = r
        assert isinstance(r, Ranking), f"rank returned {type(r).__name__}"
        # an empty ranking is valid: "no root cause", an abstention (Ranking.abstained)
        extra = set(r.components) - set(blind.components)
        assert not extra, f"ranked non-candidates {sorted(extra)}"
        back = Ranking.from_dict(json.loads(json.dumps(r.to_dict())))
        assert back.components == r.components and back.abstained == r.abstained, "the ranking does not survive JSON"

    out.append(_run("rank_contract", cfg, contract))
    if "blind" not in state:
        return out + [CheckResult(c, cfg, None, "rank failed") for c in ("ignores_truth", "no_mutation", "deterministic")]

    def truth() -> None:
        if not cls.tags.deterministic:
            _truth_by_decoys(cls, cfg, case)
            return
        with_truth = cls(cfg).rank(case)
        assert _key(with_truth) == _key(state["blind"]), (
            f"ranking with ground truth {with_truth.components[:3]} differs from without {state['blind'].components[:3]}"
        )

    def mutation() -> None:
        changed = state["mutated"]
        assert not changed, f"rank changed the case's {', '.join(changed)}"  # type: ignore[arg-type]

    def deterministic() -> None:
        if not cls.tags.deterministic:
            raise _Skip("tagged non-deterministic")
        again = cls(cfg).rank(blind)
        assert _key(again) == _key(state["blind"]), f"same config and case, different ranking: {again.components[:3]} vs {state['blind'].components[:3]}"

    out += [_run("ignores_truth", cfg, truth), _run("no_mutation", cfg, mutation), _run("deterministic", cfg, deterministic)]
    return out


def _truth_by_decoys(cls: type, cfg: dict[str, Any], case: Case) -> None:
    """``ignores_truth`` for a method tagged non-deterministic: its rankings differ run to run anyway, so the
    truth is planted on each of two components in turn; a method whose first answer follows the planted
    truth every time (:data:`DECOY_RUNS` runs per plant) reads it."""
    comps = [c for c in case.without_truth().components if c not in case.root_causes] or list(case.components)
    true = sorted(case.root_causes) or comps[:1]
    plants = [true[0], comps[-1] if comps[-1] != true[0] else comps[0]]
    if plants[0] == plants[1]:
        raise _Skip("one component only: nothing to plant a decoy on")
    followed = 0
    for plant in plants:
        fault = replace(case.fault, target=plant) if case.fault is not None else None
        planted = replace(case, root_causes=frozenset({plant}), fault=fault, meta={**case.meta, "target": plant})
        followed += sum(cls(cfg).rank(planted).components[:1] == [plant] for _ in range(DECOY_RUNS))
    assert followed < 2 * DECOY_RUNS, f"its first answer follows the ground truth wherever it is planted ({plants}): it reads the truth"


#: Runs per planted truth in the decoy check of a non-deterministic method.
DECOY_RUNS = 3


def _unavailable(cls: type, cfg: dict[str, Any], case: Case) -> None:
    blind = case.without_truth()
    tags = cls.tags
    removals = {
        "logs": (tags.needs_logs, lambda c: dataclasses.replace(c, logs=None, metric_sets=dict(c.metric_sets))),
        "traces": (tags.needs_traces, lambda c: dataclasses.replace(c, traces=None, metric_sets=dict(c.metric_sets))),
        "topology": (tags.needs_topology, lambda c: dataclasses.replace(c, topology=None, metric_sets=dict(c.metric_sets))),
    }
    needed = [k for k, (need, _) in removals.items() if need]
    if not needed:
        raise _Skip("needs no logs, traces or topology")
    for what in needed:
        stripped = removals[what][1](blind)
        try:
            cls(cfg).rank(stripped)
        except MethodUnavailable:
            continue
        raise AssertionError(f"tagged as needing {what} but ranks a case without {what} instead of raising MethodUnavailable")
