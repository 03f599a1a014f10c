"""MicroRCA, Microscope, MonitorRank on synthetic cases with a known root cause."""

from __future__ import annotations

from dataclasses import replace

import pytest

from llmrca.errors import MethodUnavailable
from llmrca.methods.registry import get_method
from llmrca.model import Topology
from llmrca.synthetic import make_case

TOPOLOGY = ["microrca", "microscope", "monitorrank"]


@pytest.mark.parametrize("name", ["microrca", "microscope"])
@pytest.mark.parametrize("root", ["ray-worker-1", "ray-worker-3"])
def test_latency_fault_root_ranked_first(name: str, root: str) -> None:
    """Documented top-k: a latency fault (network / gpu) on a worker is ranked first."""
    case = make_case(root=root, fault="network", seed=5).without_truth()
    assert get_method(name).rank(case).top(1) == [root]


def test_microrca_explains_its_anomalous_edge() -> None:
    case = make_case(root="ray-worker-1", fault="gpu", seed=2).without_truth()
    r = get_method("microrca").rank(case)
    assert r.explanation["anomalous_edges"] == [["ray-head", "ray-worker-1"]]
    assert r.explanation["forced_edge"] is None


def test_microscope_candidate_has_no_anomalous_callee() -> None:
    case = make_case(root="ray-worker-2", fault="network", seed=1).without_truth()
    r = get_method("microscope").rank(case)
    assert r.explanation["candidates"][0] == "ray-worker-2"
    assert "ray-head" in r.explanation["anomalous"]  # a symptom, not a candidate: its callee is anomalous
    assert "ray-head" not in r.explanation["candidates"]


@pytest.mark.parametrize("fault", ["cpu", "network"])
def test_monitorrank_strong_fault_in_top2(fault: str) -> None:
    """Documented top-k: top-2 once the fault moves the front end's latency clearly (shift 20 sigma)."""
    case = make_case(root="ray-worker-2", fault=fault, seed=3, shift=20.0).without_truth()
    r = get_method("monitorrank").rank(case)
    assert "ray-worker-2" in r.top(2)
    assert r.explanation["similarity"]["ray-worker-2"] > r.explanation["similarity"]["ray-worker-1"]


@pytest.mark.parametrize("name", TOPOLOGY)
def test_unavailable_without_call_graph(name: str) -> None:
    case = make_case(seed=0).without_truth()
    bare = replace(case, topology=Topology(nodes=case.topology.nodes))
    with pytest.raises(MethodUnavailable, match="call graph"):
        get_method(name).rank(bare)
    with pytest.raises(MethodUnavailable):
        get_method(name).rank(replace(case, topology=None))


@pytest.mark.parametrize("name", TOPOLOGY)
def test_deterministic(name: str) -> None:
    case = make_case(root="ray-worker-1", fault="network", seed=9).without_truth()
    assert get_method(name).rank(case).to_dict() == get_method(name).rank(case).to_dict()


@pytest.mark.parametrize("name", TOPOLOGY)
def test_unavailable_without_latency(name: str) -> None:
    case = make_case(seed=0).without_truth()
    m = case.metrics[[c for c in case.metrics.columns if "latency" not in c]]
    with pytest.raises(MethodUnavailable, match="latency"):
        get_method(name).rank(replace(case, metrics=m, metric_sets={"basic": m}))
