"""llm-rca with a Serve proxy on every pod (the paper's Fig. 4, the simulator's default).

The mesh edge into a pod then carries the requests that entered there, served by any replica, so the pod's
mesh latency minus its own engine's latency is not the network's share of anything.  The method must tell
the two layouts apart from the healthy window alone (:func:`carries_own_requests`), stay quiet on healthy
windows and still find a network delay.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmrca.methods.llm import LlmRca
from llmrca.methods.llm.baseline import NormalModel, WindowStats, with_derived
from llmrca.methods.llm.evidence import Evidence
from llmrca.methods.llm.propagation import carries_own_requests
from llmrca.model import NO_FAULT, FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig

START = 1_767_225_600.0
TL = Timeline()
WORKERS = ("ray-worker-1", "ray-worker-2", "ray-worker-3")


def _case(cfg: SimConfig, fault: str, target: str, seed: int):
    spec = FaultSpec(fault, target if fault != NO_FAULT else None)
    return SimBackend(cfg).run_case(spec, seed=seed, protocol=TL, start_time=START)


def _evidence(case) -> Evidence:
    ext = with_derived(case.metric_sets["extended"])
    normal = ext[ext["time"] < case.fault.start]
    nm = NormalModel.fit(normal, rel_floor=0.02)
    return Evidence(nm, WindowStats.of(normal, nm.index), np.zeros(0), z_threshold=3.0, power_tolerance=0.03, cap=100.0, replicas=list(WORKERS))


@pytest.mark.parametrize("ingress, carries", [("head", True), ("every-pod", False)])
def test_the_healthy_window_tells_whether_a_pods_mesh_edge_carries_its_own_requests(ingress, carries):
    cfg = SimConfig(ingress=ingress, artifact_latency=ingress == "every-pod")
    ev = _evidence(_case(cfg, NO_FAULT, "", seed=4))
    assert [carries_own_requests(ev, w) for w in WORKERS] == [carries] * 3
    # a component without mesh and engine latency cannot be told: assumed to carry its own
    assert carries_own_requests(ev, "kuberay-operator")


def test_no_false_alarm_on_healthy_windows_and_the_delayed_pod_found_with_a_proxy_on_every_pod():
    m = LlmRca()
    levels = []
    for seed in range(1, 7):
        r = m.rank(_case(SimConfig(), NO_FAULT, "", seed=seed).with_metric_set("extended").without_truth())
        levels.append(r.confidence)
        assert r.abstained, (seed, r.explanation["ranking_for_information"])
    assert max(levels) < m.config.abstain_below
    for seed, target in ((1, "ray-worker-1"), (2, "ray-worker-3")):
        r = m.rank(_case(SimConfig(), "network", target, seed=seed).with_metric_set("extended").without_truth())
        assert not r.abstained and r.components[0] == target and r.fault_type == "network"
