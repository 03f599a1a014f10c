"""The nine graph/causal methods on structural systems with a known root cause."""

from __future__ import annotations

import numpy as np
import pytest

from llmrca.errors import MethodUnavailable
from llmrca.methods.graph import heads
from llmrca.methods.graph.discovery import DiscoveryTimeout
from llmrca.methods.graph.methods import EmptyGraphError
from llmrca.methods.graph.sem import sem_case
from llmrca.methods.registry import entry, get_method, method_class
from llmrca.model import Case
from llmrca.synthetic import make_case

#: method -> documented top-k (see the class docstrings)
TOP_K = {
    "pc-pagerank": 2,
    "pc-randomwalk": 2,
    "fci-pagerank": 2,
    "fci-randomwalk": 2,
    "granger-pagerank": 2,
    "granger-randomwalk": 2,
    "lingam-pagerank": 3,
    "lingam-randomwalk": 2,
    "microcause": 2,
}

CASES = {
    "sem-worker-cpu": lambda: sem_case(root="ray-worker-2", fault="cpu", seed=0),
    "sem-head-network": lambda: sem_case(root="ray-head", fault="network", seed=1),
    "synthetic-worker-cpu": lambda: make_case(root="ray-worker-3", fault="cpu", seed=5),
}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {k: f() for k, f in CASES.items()}


def _truth(case: Case) -> str:
    return next(iter(case.root_causes))


#: constraint-based and LiNGAM discovery cost seconds per case: two cases keep the suite fast
#: (the conformance test runs them on a third)
SLOW = {"pc-pagerank", "pc-randomwalk", "fci-pagerank", "fci-randomwalk", "lingam-pagerank", "lingam-randomwalk"}


@pytest.mark.parametrize("name", list(TOP_K))
def test_ranks_the_root_cause_in_its_top_k(name: str, cases: dict[str, Case]) -> None:
    for label, case in cases.items():
        if name in SLOW and label == "synthetic-worker-cpu":
            continue
        r = get_method(name).rank(case.without_truth())
        assert set(r.components) == set(case.components)
        assert _truth(case) in r.top(TOP_K[name]), f"{name} on {label}: {r.components}"
        assert r.metrics is not None and r.explanation is not None
    assert entry(name).family == ("causal" if name == "microcause" else "graph")
    assert "19" in method_class(name).paper or "20" in method_class(name).paper  # cites a dated paper


@pytest.mark.parametrize("name", ["granger-randomwalk", "lingam-pagerank", "microcause"])
def test_same_seed_same_ranking(name: str, cases: dict[str, Case]) -> None:
    case = cases["sem-worker-cpu"].without_truth()
    opts = {"max_columns": 12} if name.startswith("lingam") else {}
    a = get_method(name, seed=4, **opts).rank(case)
    b = get_method(name, seed=4, **opts).rank(case)
    assert a.components == b.components and a.scores == b.scores


def test_config_round_trip_with_non_defaults() -> None:
    cls = method_class("granger-randomwalk")
    cfg = cls.config_cls(seed=9, max_lag=2, walk_steps=777, normal_window_s=None, reference_mode="rcaeval", granger_test="lrtest")
    assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg
    assert cls.config_cls.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown option"):
        cls.config_cls.from_dict({"depth": 2})  # a PC option is not a Granger option
    assert method_class("lingam-pagerank").config_cls().max_columns == 24


def test_random_walk_follows_the_data_not_the_column_order(cases: dict[str, Case]) -> None:
    case = cases["sem-worker-cpu"]
    cols = [c for c in case.metrics.columns if c != "time"]
    permuted = Case(metrics=case.metrics[["time", *cols[::-1]]], inject_time=case.inject_time, topology=case.topology)
    m = get_method("granger-randomwalk")
    assert m.rank(case.without_truth()).top(1) == m.rank(permuted).top(1) == ["ray-worker-2"]
    other = sem_case(root="ray-worker-1", fault="cpu", seed=0)
    assert m.rank(other.without_truth()).top(1) == ["ray-worker-1"]


def test_reference_random_walk_reproduces_the_column_order_defect(cases: dict[str, Case]) -> None:
    m = get_method("granger-randomwalk", reference_mode="rcaeval")
    a = sem_case(root="ray-worker-2", fault="cpu", seed=0)
    b = sem_case(root="ray-head", fault="network", seed=3)
    ra, rb = m.rank(a.without_truth()), m.rank(b.without_truth())
    # different data, different root causes: the same answer
    assert ra.components == rb.components
    names = [c for c in a.metrics.columns if c != "time"]
    assert [mt for mt, _ in ra.metrics] == [n for n, _ in heads.reference_random_walk(names)]
    # reversing the columns permutes the answer the same data-free way
    rev = Case(metrics=a.metrics[["time", *names[::-1]]], inject_time=a.inject_time, topology=a.topology)
    assert [mt for mt, _ in m.rank(rev).metrics] == [n for n, _ in heads.reference_random_walk(names[::-1])]


def test_reference_pagerank_runs_without_window_or_normalisation(cases: dict[str, Case]) -> None:
    r = get_method("granger-pagerank", reference_mode="rcaeval").rank(cases["sem-worker-cpu"].without_truth())
    assert r.explanation["reference_mode"] == "rcaeval" and r.explanation["topology_used"] is False
    assert len(r.metrics) == 48
    assert np.isclose(sum(s for _, s in r.metrics), 1.0)


def test_reference_mode_raises_where_the_reference_returns_column_order(cases: dict[str, Case]) -> None:
    case = cases["synthetic-worker-cpu"]
    # independent noise plus a step: statsmodels finds no Granger edge at p < 1e-12
    with pytest.raises(EmptyGraphError, match="column order"):
        get_method("granger-pagerank", reference_mode="rcaeval").rank(
            Case(metrics=case.metrics[["time", "ray-head_cpu", "kuberay-operator_mem"]], inject_time=case.inject_time)
        )


def test_walk_without_an_sli_is_unavailable(cases: dict[str, Case]) -> None:
    case = cases["synthetic-worker-cpu"]
    no_latency = case.metrics[[c for c in case.metrics.columns if "latency" not in c]]
    with pytest.raises(MethodUnavailable, match=r"latency column .*--sli"):
        get_method("granger-randomwalk").rank(Case(metrics=no_latency, inject_time=case.inject_time, topology=case.topology))


def test_time_budget_raises_a_timeout(cases: dict[str, Case]) -> None:
    with pytest.raises(DiscoveryTimeout, match="time budget"):
        get_method("pc-pagerank", time_budget_s=1e-9).rank(cases["sem-worker-cpu"].without_truth())


def test_works_without_the_call_graph(cases: dict[str, Case]) -> None:
    case = cases["sem-head-network"]
    bare = Case(metrics=case.metrics, inject_time=case.inject_time)
    r = get_method("microcause").rank(bare)
    assert r.explanation["topology_used"] is False and r.top(2).count("ray-head") == 1
    r = get_method("granger-pagerank", use_topology=False).rank(case.without_truth())
    assert r.explanation["topology_used"] is False and "ray-head" in r.top(2)
