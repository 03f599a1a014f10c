"""MM-BARO and PDiagnose on synthetic metrics + logs + traces."""

from __future__ import annotations

import pytest

from llmrca.methods.registry import get_method
from llmrca.synthetic import make_case

MULTI = ["mm-baro", "pdiagnose"]


@pytest.mark.parametrize("fault", ["cpu", "memory", "network"])
def test_pdiagnose_root_first(fault: str) -> None:
    case = make_case(root="ray-worker-1", fault=fault, seed=4).without_truth()
    r = get_method("pdiagnose").rank(case)
    assert r.top(1) == ["ray-worker-1"]
    assert r.explanation["sources_used"] == ["metrics", "logs", "traces"]


@pytest.mark.parametrize("fault", ["cpu", "memory", "network"])
def test_mm_baro_documented_top_k(fault: str) -> None:
    """Top-1 with all sources: the root's error-log count is zero before the injection and moves after it.

    A flat normal window has its spread floored at 1e-6 x its level (the house zero-spread
    convention, as BARO), so that series outranks the span latencies of the gateway and head;
    with scikit-learn's convention (a zero IQR becomes 1) it would score its raw count only.
    """
    case = make_case(root="ray-worker-1", fault=fault, seed=4).without_truth()
    r = get_method("mm-baro").rank(case)
    assert r.top(1) == ["ray-worker-1"]
    assert r.explanation["top_series"][0][0] == "ray-worker-1_log-error-count"
    unit = get_method("mm-baro", zero_spread="unit").rank(case)
    assert "_trace-latency-" in unit.explanation["top_series"][0][0]
    assert get_method("mm-baro", use_traces=False).rank(case).top(1) == ["ray-worker-1"]


def test_mm_baro_uses_error_logs_alone() -> None:
    """No metric shift at all: the root's error log lines alone identify it."""
    case = make_case(root="ray-worker-3", seed=5, shift=0.0).without_truth()
    r = get_method("mm-baro", use_traces=False).rank(case)
    assert r.top(1) == ["ray-worker-3"]
    assert r.explanation["top_series"][0][0].startswith("ray-worker-3_log")


@pytest.mark.parametrize("name", MULTI)
def test_missing_sources_are_reported_not_fatal(name: str) -> None:
    case = make_case(root="ray-worker-2", fault="cpu", seed=1, with_logs=False, with_traces=False).without_truth()
    r = get_method(name).rank(case)
    assert set(r.explanation["sources_missing"]) == {"logs", "traces"}
    assert r.top(1) == ["ray-worker-2"]


def test_pdiagnose_reference_mode_counts_raw() -> None:
    case = make_case(root="ray-worker-2", seed=1).without_truth()
    r = get_method("pdiagnose", reference_mode="rcaeval").rank(case)
    c = r.explanation["counts"]
    assert r.scores[0] == pytest.approx(5.0 * sum(c[s][r.components[0]] for s in c))


@pytest.mark.parametrize("name", MULTI)
def test_deterministic(name: str) -> None:
    case = make_case(seed=8).without_truth()
    assert get_method(name).rank(case).to_dict() == get_method(name).rank(case).to_dict()
