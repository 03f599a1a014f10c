"""Conformance over the whole registry: every method passes llmrca.methods.checks.check_method."""

from __future__ import annotations

import importlib.util
import itertools
import sys
import warnings
from pathlib import Path

import pytest

from llmrca.config import Config
from llmrca.methods import registry
from llmrca.methods.base import Method
from llmrca.methods.checks import CHECKS, MethodCheckError, check_method, default_case
from llmrca.methods.registry import REGISTRY, available, method_class
from llmrca.model import Case, Ranking

NAMES = list(REGISTRY)


@pytest.fixture(scope="module")
def case():
    return default_case()


@pytest.mark.parametrize("name", NAMES)
def test_check_method(name: str, case) -> None:
    ok, why = available(name)
    if not ok:
        pytest.skip(f"{name} unavailable here: {why}")
    results = check_method(method_class(name), case=case)
    assert {r.check for r in results} == set(CHECKS)
    assert all(r.passed is not False for r in results)
    ran = {r.check for r in results if r.passed}
    assert {"registry_row", "config_round_trip", "rank_contract", "ignores_truth", "no_mutation"} <= ran
    row = REGISTRY[name]
    if set(row.needs) & {"logs", "traces", "topology"}:
        assert "unavailable_without_input" in ran


def _load_template():
    """tests/data/template_method.py, imported under a unique module name (the doc's template)."""
    path = Path(__file__).parent / "data" / "template_method.py"
    name = "llmrca_test_template_method"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def test_the_documented_template_method_passes(case) -> None:
    mod = _load_template()
    registry.register(mod.ENTRY, replace=True)
    try:
        results = check_method(mod.MedianShift, case=case)
        assert sum(r.passed is True for r in results) == 1 + 2 * 5  # registry row + 5 checks x 2 test configs
        r = registry.get_method("median-shift").rank(case.without_truth())
        assert r.components[0] == "ray-worker-1"  # the synthetic case's root cause
    finally:
        registry.unregister("median-shift")
    doc = (Path(__file__).parents[1] / "docs" / "add-a-method.md").read_text()
    assert (Path(__file__).parent / "data" / "template_method.py").read_text().strip() in doc  # the doc shows this very file


class _PeeksAndMutates(Method):
    """A broken method: it reads the ground truth and edits its input."""

    name = "peeks-and-mutates"

    def _rank(self, case: Case) -> Ranking:
        case.metrics.iloc[0, 1] = -1.0
        first = sorted(case.root_causes)[0] if case.root_causes else case.components[-1]
        return Ranking([first, *(c for c in case.components if c != first)])


def test_check_method_catches_truth_peeking_mutation_and_a_missing_row(case) -> None:
    results = check_method(_PeeksAndMutates, case=case, raise_on_failure=False)
    failed = {r.check for r in results if r.passed is False}
    assert failed == {"registry_row", "ignores_truth", "no_mutation"}
    with pytest.raises(MethodCheckError, match="ignores_truth"):
        check_method(_PeeksAndMutates, case=case)


def test_registry_rows_feed_the_table_views() -> None:
    from llmrca.evaluate.tables import SOURCE_OF_FAMILY
    from llmrca.report.tables import PAPER_NAMES

    assert {n: PAPER_NAMES[n] for n in REGISTRY} == registry.paper_names()
    assert registry.PAPER_NAMES["e-diagnosis"] == "ε-Diagnosis" and registry.PAPER_NAMES["llm-rca"] == "LLM-RCA (ours)"
    assert {f: SOURCE_OF_FAMILY[f] for f in registry.SOURCE_OF_FAMILY} == registry.SOURCE_OF_FAMILY
    assert REGISTRY["tracerca"].data_source == "Trace" and REGISTRY["mm-baro"].data_source == "Multi Source"
    rows = {r["name"]: r for r in registry.list_methods()}
    assert rows["microrca"]["needs"] == ["metrics", "topology"] and rows["causalrca"]["extra"] == "torch"


def test_old_option_spellings_still_load_with_a_deprecation_note() -> None:
    cases = [
        ("nsigma", {"anomal_window_s": 30, "normal_window_s": 0}, {"anomalous_window_s": 30.0, "normal_window_s": None}),
        ("rcd", {"budget_s": 5}, {"time_budget_s": 5.0}),
        ("circa", {"reference_mode": True}, {"reference_mode": "rcaeval"}),
        ("pc-pagerank", {"reference_mode": False}, {"reference_mode": None}),
        ("e-diagnosis", {"reference_mode": True}, {"reference_mode": "pyrca"}),
        ("tracerca", {"reference_mode": "paper"}, {"reference_mode": None}),
    ]
    for name, old, new in cases:
        cls = method_class(name)
        with pytest.warns(FutureWarning, match="please use the new one"):
            cfg = cls.config_cls.from_dict(old)
        assert {k: getattr(cfg, k) for k in new} == new, name
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg  # the new spelling loads without a warning
    with pytest.raises(ValueError, match="keep only 'time_budget_s'"):
        method_class("rcd").config_cls.from_dict({"budget_s": 1, "time_budget_s": 2})
    with pytest.raises(ValueError, match="reference_mode must be null"):
        registry.get_method("circa", reference_mode="nope").rank(default_case().without_truth())


def test_every_config_is_a_config() -> None:
    for name in NAMES:
        if available(name)[0]:
            assert issubclass(method_class(name).config_cls, Config)


def test_the_metric_set_rule() -> None:
    from llmrca.errors import MethodUnavailable
    from llmrca.methods.common.metric_set import choose_metric_set

    assert choose_metric_set({"basic", "extended"}, REGISTRY["llm-rca"].metric_set) == "extended"
    assert choose_metric_set({"basic"}, "extended") == "basic"
    assert choose_metric_set({"basic", "extended"}, "extended", forced="basic") == "basic"
    with pytest.raises(MethodUnavailable, match="has: basic"):
        choose_metric_set({"basic"}, "basic", forced="extended")


class _Shuffles(Method):
    """An honest method that is not deterministic: each call shuffles the components differently (seeds 0, 1, 2 ...)."""

    name = "shuffles"
    tags = registry.Tags(deterministic=False)
    calls = itertools.count()

    def _rank(self, case: Case) -> Ranking:
        import numpy as np

        comps = list(case.components)
        np.random.default_rng(next(self.calls)).shuffle(comps)
        return Ranking(comps)


class _ShufflesAndPeeks(_Shuffles):
    """Not deterministic and reads the truth: the truth first, the rest shuffled."""

    name = "shuffles-and-peeks"

    def _rank(self, case: Case) -> Ranking:
        rest = super()._rank(case).components
        first = sorted(case.root_causes)[:1]
        return Ranking(first + [c for c in rest if c not in first])


def test_a_non_deterministic_method_is_checked_for_truth_use_by_decoys(case) -> None:
    honest = {r.check: r.passed for r in check_method(_Shuffles, case=case, raise_on_failure=False)}
    assert honest["ignores_truth"] is True and honest["deterministic"] is None  # skipped, not failed
    peeker = {r.check: r for r in check_method(_ShufflesAndPeeks, case=case, raise_on_failure=False)}
    assert peeker["ignores_truth"].passed is False and "follows the ground truth" in peeker["ignores_truth"].message


def test_a_bad_reference_mode_or_a_wrongly_typed_value_is_refused_when_read() -> None:
    from llmrca.config import ConfigError
    from llmrca.evaluate.runner import EvaluationError, full_config
    from llmrca.testbed.sim.config import SimConfig

    with pytest.raises(EvaluationError, match=r"reference_mode must be null .* or 'rcaeval', got 'foo'"):
        full_config("nsigma", {"reference_mode": "foo"})
    assert full_config("nsigma", {"reference_mode": "rcaeval"})["reference_mode"] == "rcaeval"
    with pytest.raises(ConfigError, match="expected true/false, got 2"):
        SimConfig.from_dict({"upstream_keepalive": 2})
    assert SimConfig.from_dict({"upstream_keepalive": 1}).upstream_keepalive is True
    for key in ("router_queue_cache_s", "n_workers"):
        with pytest.raises(ConfigError, match="expected a number, got True"):
            SimConfig.from_dict({key: True})


def test_a_reference_mode_is_said_apart_from_non_default_options() -> None:
    from llmrca.evaluate.outputs import non_default_sentence

    s = non_default_sentence({"nsigma": {"reference_mode": ("rcaeval", None)}, "baro": {"reference_mode": ("rcaeval", None), "q_low": (0.1, 0.25)}})
    assert "reference implementation's mode" in s and "nsigma rcaeval, baro rcaeval" in s
    assert "not the methods as published): baro q_low=0.1 (default 0.25)." in s and "nsigma reference_mode" not in s
    assert non_default_sentence({}) == ""
