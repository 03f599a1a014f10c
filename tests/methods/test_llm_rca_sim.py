"""llm-rca on simulated cases (short windows): each fault localized and named, gateway not blamed."""

from __future__ import annotations

import pytest

from llmrca.campaign import Protocol, make_backend
from llmrca.methods.llm import LlmRca
from llmrca.model import Case, FaultSpec
from llmrca.telemetry import GATEWAY, HEAD

SHORT = Protocol(normal_s=120.0, fault_s=60.0, tail_s=0.0, cooldown_s=0.0, warmup_s=20.0)


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    be = make_backend("sim", workers=3, qps=None, scrape_interval_s=None)
    try:
        return {
            f: be.run_case(FaultSpec(f, "ray-worker-3", {}, SHORT.fault_s), seed=21, protocol=SHORT, start_time=1_767_225_600.0)
            for f in ("cpu", "memory", "network", "gpu")
        }
    finally:
        be.close()


@pytest.mark.parametrize("fault", ["cpu", "memory", "network", "gpu"])
def test_sim_fault_localized_and_named(cases: dict[str, Case], fault: str) -> None:
    case = cases[fault].with_metric_set("extended").without_truth()
    r = LlmRca().rank(case)
    assert r.components[0] == "ray-worker-3", r.explanation["summary"]
    assert r.fault_type == fault, r.explanation["summary"]
    assert r.components.index(GATEWAY) > 0 and r.components.index(HEAD) > 0


def test_sim_gpu_evidence_is_the_power_cap(cases: dict[str, Case]) -> None:
    r = LlmRca().rank(cases["gpu"].with_metric_set("extended").without_truth())
    names = {s["signal"] for s in r.explanation["signals"] if s["hypothesis"] == "gpu"}
    assert {"DCGM_FI_DEV_POWER_MGMT_LIMIT", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"} <= names


@pytest.fixture(scope="module")
def direct_cases() -> dict[str, Case]:
    """The same cases with the basic set read directly (working set in bytes), not as the paper's exporter queried it."""
    be = make_backend("sim", workers=3, qps=None, scrape_interval_s=None, sim_params={"basic_queries": "direct"})
    try:
        return {
            f: be.run_case(FaultSpec(f, "ray-worker-3", {}, SHORT.fault_s), seed=21, protocol=SHORT, start_time=1_767_225_600.0)
            for f in ("cpu", "memory", "network")
        }
    finally:
        be.close()


@pytest.mark.parametrize("fault", ["cpu", "memory", "network"])
def test_sim_basic_set_still_localizes(direct_cases: dict[str, Case], fault: str) -> None:
    r = LlmRca().rank(direct_cases[fault].with_metric_set("basic").without_truth())
    assert r.components[0] == "ray-worker-3", r.explanation["summary"]
    assert "accelerator power" in r.explanation["lacking"]


@pytest.mark.parametrize("fault", ["cpu", "network"])
def test_sim_artifact_basic_set_still_localizes(cases: dict[str, Case], fault: str) -> None:
    # on the exporter's basic set (mem = rate() of the working-set gauge) a memory leak's level is gone:
    # llm-rca misses memory faults there (docs/simulator.md), CPU and network faults it still finds
    r = LlmRca().rank(cases[fault].with_metric_set("basic").without_truth())
    assert r.components[0] == "ray-worker-3", r.explanation["summary"]
