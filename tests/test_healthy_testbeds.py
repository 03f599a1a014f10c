"""A healthy case (nothing injected) on the Kubernetes backend (fake API: no chaos object is made) and on the
local testbed (real processes: no stressor, the fault window still waited)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llmrca.model import NO_FAULT, FaultSpec
from llmrca.testbed.base import Timeline

HEALTHY = FaultSpec(type=NO_FAULT, target="", duration_s=0.3)


def test_k8s_healthy_case_makes_no_chaos_object() -> None:
    pytest.importorskip("kubernetes_validate")
    from llmrca.load.stub_server import StubBehaviour, StubServer
    from llmrca.synthetic import make_case
    from llmrca.testbed.k8s.backend import K8sBackend, K8sOptions
    from llmrca.testbed.k8s.config import K8sConfig
    from llmrca.testbed.k8s.fake import FakeCluster, FakePrometheus

    seen: list = []

    def collect(prom_url, components, start, end, inject_time, record, topology, *, step_s, meta, name):
        # stand-in for collect_case (no Prometheus with series here): a synthetic frame carrying the backend's record
        seen.append((record, inject_time, name))
        case = make_case(root="ray-worker-1", fault="cpu", n_workers=1, seed=1, with_traces=False, with_logs=False)
        case.fault, case.root_causes, case.name = record, frozenset(), name
        case.meta.update(meta)
        return case.validate()

    fc = FakeCluster()
    tl = Timeline(normal_s=0.2, fault_s=0.3, tail_s=0.1, cooldown_s=0.0, warmup_s=0.1)
    with StubServer(StubBehaviour(ttft_s=0.005, itl_s=0.001)) as srv:
        opts = K8sOptions(gateway_url=srv.url, prometheus_url="http://127.0.0.1:9", qps=20.0, prompt_tokens=8, output_tokens=4, step_s=0.01)
        be = K8sBackend(K8sConfig(workers=1), opts, api=fc, prom=FakePrometheus(fc), collector=collect, sleep=time.sleep)
        be.check_fault(HEALTHY)  # no target, no parameters: accepted
        case = be.run_case(HEALTHY, seed=1, protocol=tl, start_time=0.0)
    record, inject_time, name = seen[0]
    assert case.healthy and name == "healthy" and case.root_causes == frozenset()
    assert record.type == NO_FAULT and record.target is None and record.achieved == {"injected": False}
    assert record.start == pytest.approx(inject_time, abs=0.05) and record.end - record.start == pytest.approx(0.3, abs=0.1)
    kinds = [k for v, k, _, _ in fc.calls if v == "apply"]
    assert "StressChaos" not in kinds and "NetworkChaos" not in kinds and "Job" not in kinds and "RayService" in kinds


@pytest.mark.system
@pytest.mark.slow
def test_local_testbed_healthy_case(tmp_path: Path) -> None:
    from _localtestbed import require_local_testbed

    require_local_testbed()
    from llmrca.testbed.local.backend import LocalBackend, LocalLoad
    from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig, leftovers

    tl = Timeline(normal_s=20.0, fault_s=10.0, tail_s=3.0, cooldown_s=0.0, warmup_s=5.0)
    tb = LocalTestbed.up(LocalTestbedConfig(workers=1, run_dir=str(tmp_path / "run"), scrape_interval_s=1.0))
    run_id, groups = tb.state.run_id, dict(tb.state.groups)
    try:
        be = LocalBackend(testbed=tb, load=LocalLoad(qps=1.5, prompt_tokens=48, output_tokens=32, arrival="constant"))
        t0 = time.time()
        case = be.run_case(FaultSpec(type=NO_FAULT, target="", duration_s=tl.fault_s), seed=0, protocol=tl, start_time=0.0)
        wall = time.time() - t0
        groups.update(tb.state.groups)
    finally:
        tb.down()
    assert leftovers(run_id, groups, tmp_path / "run") == []
    case.validate()
    assert case.healthy and case.root_causes == frozenset() and case.name == "healthy"
    assert case.fault.achieved == {"injected": False}
    assert case.fault.end - case.fault.start == pytest.approx(10.0, abs=1.0)  # the window was waited out
    assert wall >= tl.warmup_s + tl.normal_s + tl.fault_s + tl.tail_s
    assert case.meta["requests"]["failed"] == 0 and case.meta["requests"]["ok"] > 0
    # nothing was injected: the worker's CPU in the window stays near its normal level
    df = case.metric_sets["basic"]
    col = "ray-worker-1_cpu"
    normal = df.loc[df["time"] < case.inject_time, col].median()
    window = df.loc[(df["time"] >= case.inject_time) & (df["time"] < case.fault.end), col].median()
    assert window < 2 * normal + 0.05
