"""llm-rca names the serving faults beyond the paper's four, on any component, under any exporter's naming.

Cases come from the simulator (seeds 31.., not the seeds the method was tuned or measured on)
with a short protocol; the columns are then renamed to other exporters' spellings (vLLM v0,
Ray's ``ray_vllm:`` prefix, DCGM's renamed clock-event field, nvidia-smi's temperature,
node-exporter's raw counters) — the method reads them by kind.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from llmrca.methods.llm import LlmRca
from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend

START = 1_767_225_600.0
PROTO = Timeline(normal_s=150.0, fault_s=60.0, tail_s=10.0, warmup_s=20.0)

#: (fault type, target, seed)
CASES = [
    ("kv-cache", "ray-worker-2", 31),
    ("gpu-thermal", "ray-head", 32),
    ("gpu-error", "ray-worker-1", 33),
    ("model-load", "ray-worker-3", 34),
    ("packet-loss", "nginx-gateway", 35),
    ("packet-loss", "ray-worker-2", 36),
    ("noisy-neighbour", "ray-head", 37),
    ("noisy-neighbour", "nginx-gateway", 38),
    ("cpu", "nginx-gateway", 39),
    ("network", "ray-head", 40),
    ("memory", "kuberay-operator", 41),
]

#: our catalogue's name -> another exporter's spelling of the same series
FOREIGN = {
    "vllm:kv_cache_usage_perc": "vllm:gpu_cache_usage_perc",
    "vllm:num_preemptions_total:rate": "ray_vllm:num_preemptions_total:rate",
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
    "DCGM_FI_DEV_GPU_TEMP": "nvidia_smi_temperature_gpu",
    "DCGM_FI_DEV_XID_ERRORS": "dcgm_xid_errors",
    "container_pressure_cpu_waiting_seconds_total:rate": "node_pressure_cpu_waiting_seconds:rate",
    "node_cpu_seconds_total:rate": "node_cpu",
    "node_netstat_Tcp_RetransSegs:rate": "netstat_tcp_retrans_segs:rate",
}


def _case(ftype: str, target: str, seed: int, foreign: bool):
    case = SimBackend().run_case(FaultSpec(ftype, target, duration_s=PROTO.fault_s), seed=seed, protocol=PROTO, start_time=START)
    case = case.with_metric_set("extended").without_truth()
    if foreign:
        ren = {}
        for col in case.metrics.columns:
            comp, _, metric = col.partition("_")
            if metric in FOREIGN:
                ren[col] = f"{comp}_{FOREIGN[metric]}"
        frame = case.metrics.rename(columns=ren)
        case = dataclasses.replace(case, metrics=frame, metric_sets={"extended": frame})
    return case


@pytest.mark.parametrize(("ftype", "target", "seed"), CASES)
def test_names_the_fault_and_its_component(ftype: str, target: str, seed: int) -> None:
    r = LlmRca().rank(_case(ftype, target, seed, foreign=False))
    assert r.components[0] == target, r.explanation["summary"]
    assert r.fault_type == ftype, r.explanation["summary"]
    assert r.explanation["summary"].startswith(f"{target} ({ftype}):")


@pytest.mark.parametrize(("ftype", "target", "seed"), [c for c in CASES if c[0] in ("kv-cache", "gpu-thermal", "gpu-error", "packet-loss", "noisy-neighbour")])
def test_reads_the_serving_signals_under_other_exporters_names(ftype: str, target: str, seed: int) -> None:
    case = _case(ftype, target, seed, foreign=True)
    assert not any(c.partition("_")[2] in FOREIGN for c in case.metrics.columns)
    r = LlmRca().rank(case)
    assert (r.components[0], r.fault_type) == (target, ftype), r.explanation["summary"]
    # the answer names the user's own columns
    named = {m for m, _ in r.metrics[:6]}
    assert any(col.partition("_")[2] in FOREIGN.values() for col in named), named


def test_a_thermal_slowdown_is_not_named_a_power_cap_and_vice_versa() -> None:
    thermal = LlmRca().rank(_case("gpu-thermal", "ray-worker-1", 42, foreign=False))
    cap = LlmRca().rank(_case("gpu", "ray-worker-1", 42, foreign=False))
    assert (thermal.fault_type, cap.fault_type) == ("gpu-thermal", "gpu")
    assert "thermal" in thermal.explanation["summary"] and "power limit lowered" in cap.explanation["summary"]
    assert np.isfinite(thermal.scores[0]) and thermal.scores[0] > 1
