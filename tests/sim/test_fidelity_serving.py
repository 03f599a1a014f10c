"""The serving faults beyond the paper's (issue 16), and faults on the gateway, head and operator, act on
the simulator's mechanisms: every check compares a faulty run with the same seed without the fault
(same arrivals, lengths and routing draws), so a difference is the fault's effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrca.campaign import PROFILES, plan_cases
from llmrca.config import ConfigError
from llmrca.model import ALL_FAULT_TYPES, FaultSpec
from llmrca.testbed.base import Timeline, fault_roles
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import DONE, FAILED
from llmrca.testbed.sim.observe import build_frames
from llmrca.testbed.sim.textlogs import build_logs

SEED = 21
START = 1_767_225_600.0
PROTO = Timeline(normal_s=90.0, fault_s=60.0, tail_s=10.0, warmup_s=20.0)
INJECT = START + PROTO.normal_s
END = INJECT + PROTO.fault_s

#: name -> (fault type, target)
RUNS = {
    "kv": ("kv-cache", "ray-worker-2"),
    "thermal": ("gpu-thermal", "ray-worker-2"),
    "xid": ("gpu-error", "ray-worker-1"),
    "load": ("model-load", "ray-worker-3"),
    "loss": ("packet-loss", "ray-worker-1"),
    "loss-gw": ("packet-loss", "nginx-gateway"),
    "nn": ("noisy-neighbour", "ray-worker-2"),
    "cpu-gw": ("cpu", "nginx-gateway"),
    "cpu-head": ("cpu", "ray-head"),
    "net-gw": ("network", "nginx-gateway"),
    "net-head": ("network", "ray-head"),
    "mem-gw": ("memory", "nginx-gateway"),
    "cpu-op": ("cpu", "kuberay-operator"),
    # with one Serve proxy, on the head, relaying every request (not the default: the paper's Fig. 4 has one per pod)
    "net-head-relay": ("network", "ray-head", {"ingress": "head"}),
    "base-relay": (None, "", {"ingress": "head"}),
}


def _run(ftype: str | None, target: str = "", cfg: dict | None = None):
    spec = FaultSpec(ftype, target, duration_s=PROTO.fault_s) if ftype else None
    res = SimBackend(SimConfig(**(cfg or {}))).simulate(spec, seed=SEED, protocol=PROTO, start_time=START)
    return res, build_frames(res, np.random.default_rng(0))["extended"]


@pytest.fixture(scope="module")
def runs():
    out = {"base": _run(None)}
    out.update({k: _run(*v) for k, v in RUNS.items()})
    return out


def _win(df: pd.DataFrame, col: str, lo: float = INJECT + 30, hi: float = END) -> np.ndarray:
    m = (df["time"] >= lo) & (df["time"] <= hi)
    return df.loc[m, col].to_numpy(dtype=float)


def _mean(df: pd.DataFrame, col: str, lo: float = INJECT + 30, hi: float = END) -> float:
    return float(np.nanmean(_win(df, col, lo, hi)))


def _latency(res, lo: float = INJECT, hi: float = END - 5) -> np.ndarray:
    """Client-side seconds of the requests that arrived in ``[lo, hi)`` and finished (one array, arrival order)."""
    rq = res.requests
    m = (rq["arrival"] >= lo) & (rq["arrival"] < hi) & (rq["status"] == DONE)
    return rq["t_done"][m] - rq["arrival"][m]


def test_kv_cache_pressure_fills_the_cache_preempts_and_queues(runs):
    res, df = runs["kv"]
    _, base = runs["base"]
    t = "ray-worker-2"
    assert np.nanmax(_win(df, f"{t}_vllm:kv_cache_usage_perc", INJECT, END)) > 0.9
    assert np.nanmax(_win(base, f"{t}_vllm:kv_cache_usage_perc", INJECT, END)) < 0.05
    assert _mean(df, f"{t}_vllm:num_preemptions_total:rate") > 0.05 and _mean(base, f"{t}_vllm:num_preemptions_total:rate") == 0
    assert _mean(df, f"{t}_vllm:num_requests_waiting") > _mean(base, f"{t}_vllm:num_requests_waiting") + 0.5
    assert _mean(df, f"{t}_vllm:time_to_first_token_seconds:p90") > 3 * _mean(base, f"{t}_vllm:time_to_first_token_seconds:p90")
    # the other replicas keep their normal cache
    assert np.nanmax(_win(df, "ray-worker-1_vllm:kv_cache_usage_perc", INJECT, END)) < 0.05
    a = res.achieved
    assert a["kv_capacity_tokens"] < 0.01 * a["normal_kv_capacity_tokens"] and a["preemptions"] > 0 and a["peak_kv_usage"] > 0.9
    logs = build_logs(res, np.random.default_rng(0))
    assert logs["message"].str.contains("not enough KV cache space").any()


def test_gpu_thermal_slowdown_is_not_a_power_cap(runs):
    res, df = runs["thermal"]
    _, base = runs["base"]
    t = "ray-worker-2"
    clock = _win(df, f"{t}_DCGM_FI_DEV_SM_CLOCK")
    assert clock.max() < 0.55 * 1410 + 20 and _mean(base, f"{t}_DCGM_FI_DEV_SM_CLOCK") > 1400
    bits = _win(df, f"{t}_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS").astype(int)
    assert (bits & 0x40).all() and (bits & 0x8).all() and not (bits & 0x4).any()
    # the draw falls far below an untouched limit (a power cap would pin it at a lowered one)
    assert (_win(df, f"{t}_DCGM_FI_DEV_POWER_MGMT_LIMIT") == 300).all()
    assert _mean(df, f"{t}_DCGM_FI_DEV_POWER_USAGE") < 0.5 * 300 < _mean(base, f"{t}_DCGM_FI_DEV_POWER_USAGE")
    assert _mean(df, f"{t}_DCGM_FI_DEV_GPU_TEMP") > _mean(base, f"{t}_DCGM_FI_DEV_GPU_TEMP") + 15
    assert _mean(df, f"{t}_DCGM_FI_DEV_THERMAL_VIOLATION:rate") > 5e5  # µs/s: held back most of the time
    col = f"{t}_vllm:inter_token_latency_seconds:mean"
    assert _mean(df, col) > 1.2 * _mean(base, col)
    assert res.achieved["slowdown_after_s"] == pytest.approx(10.0, abs=0.3) and res.achieved["power_limit_w"] == 300.0


def test_gpu_xid_error_kills_the_engine_which_reloads_cold(runs):
    res, df = runs["xid"]
    t = "ray-worker-1"
    rq = res.requests
    failed = (rq["status"] == FAILED) & (rq["replica"] == 1) & (rq["code"] == 500)
    assert failed.sum() > 0 and res.achieved["requests_failed"] == int(failed.sum())
    kinds = [(c, k) for _, c, k in res.events]
    assert (t, "gpu-xid") in kinds and (t, "replica-starting") in kinds and (t, "replica-healthy") in kinds
    a = res.achieved
    assert a["xid"] == 79 and a["gpu_back_after_s"] == pytest.approx(20.0, abs=0.3)
    assert a["replica_healthy_after_s"] == pytest.approx(20.0 + 45.0, abs=1.0)  # reset, then the cold reload
    # DCGM keeps the last Xid; the lost GPU's other fields are gaps
    assert (_win(df, f"{t}_DCGM_FI_DEV_XID_ERRORS", INJECT + 1, END) == 79).all()
    assert np.isnan(_win(df, f"{t}_DCGM_FI_DEV_POWER_USAGE", INJECT + 1, INJECT + 15)).all()
    assert (_win(df, f"{t}_ray_serve_deployment_replica_healthy", INJECT + 2, INJECT + 60) == 0).all()
    msgs = build_logs(res, np.random.default_rng(0))["message"]
    assert msgs.str.contains(r"NVRM: Xid \(PCI:[0-9a-f:]+\): 79, pid=\d+", regex=True).any()
    assert msgs.str.contains("EngineDeadError").any()


def test_slow_model_load_keeps_the_replica_unready_and_moves_its_load(runs):
    res, df = runs["load"]
    _, base = runs["base"]
    t = "ray-worker-3"
    a = res.achieved
    assert a["load_s"] > 10 * a["normal_load_s"] and a["healthy_after_s"] is None  # still loading when the window ends
    assert (_win(df, f"{t}_ray_serve_deployment_replica_healthy", INJECT + 25, END) == 0).all()
    assert a["unready_s"] > 40
    # graceful: the drained replica finished its requests, nothing failed
    assert (res.requests["status"] == FAILED).sum() == 0
    # its pod receives the weights; the others take its load
    assert _mean(df, f"{t}_net-rx") > 10 * _mean(base, f"{t}_net-rx")
    others = [f"ray-worker-{i}_vllm:num_requests_running" for i in (1, 2)] + ["ray-head_vllm:num_requests_running"]
    assert sum(_mean(df, c) for c in others) > 1.15 * sum(_mean(base, c) for c in others)


def test_packet_loss_is_a_heavy_tail_not_a_constant_delay(runs):
    res, df = runs["loss"]
    base_res, base = runs["base"]
    t = "ray-worker-1"
    mine = lambda r: (r.requests["replica"] == 1) & (r.requests["arrival"] >= INJECT) & (r.requests["arrival"] < END - 5) & (r.requests["status"] == DONE)  # noqa: E731
    d = (res.requests["t_done"] - res.requests["arrival"])[mine(res)]
    b = (base_res.requests["t_done"] - base_res.requests["arrival"])[mine(base_res)]
    assert np.median(d) > np.median(b) + 0.3
    stalls = np.asarray(res.requests["delay"])[mine(res)]
    assert np.quantile(stalls, 0.9) - np.quantile(stalls, 0.5) > 0.3  # spread, unlike netem delay's ±jitter
    assert _mean(df, f"{t}_node_netstat_Tcp_RetransSegs:rate") > 10 * max(_mean(base, f"{t}_node_netstat_Tcp_RetransSegs:rate"), 0.1)
    assert _mean(df, f"{t}_latency-90") > _mean(base, f"{t}_latency-90") + 0.5
    # the engine itself is as fast as ever, and scrapes still arrive
    e2e = f"{t}_vllm:e2e_request_latency_seconds:p90"
    assert abs(_mean(df, e2e) - _mean(base, e2e)) < 0.15 * _mean(base, e2e)
    assert not res.scrape_lost.any()
    assert 0.08 < res.achieved["retransmitted_share"] < 0.13


def test_packet_loss_on_the_gateway_slows_every_request(runs):
    res, df = runs["loss-gw"]
    base_res, _ = runs["base"]
    assert np.median(_latency(res)) > np.median(_latency(base_res)) + 0.3
    assert _mean(df, "nginx-gateway_node_netstat_Tcp_RetransSegs:rate") > 20
    assert res.achieved["requests"] == int(((res.requests["arrival"] >= INJECT) & (res.requests["arrival"] < END)).sum())


def test_noisy_neighbour_raises_pressure_not_the_pods_own_cpu(runs):
    res, df = runs["nn"]
    _, base = runs["base"]
    t = "ray-worker-2"
    assert _mean(df, f"{t}_cpu") <= 1.05 * _mean(base, f"{t}_cpu")
    assert _mean(df, f"{t}_container_pressure_cpu_waiting_seconds_total:rate") > _mean(base, f"{t}_container_pressure_cpu_waiting_seconds_total:rate") + 0.1
    assert _mean(df, f"{t}_node_cpu_seconds_total:rate") > _mean(base, f"{t}_node_cpu_seconds_total:rate") + 10
    thr = f"{t}_container_cpu_cfs_throttled_seconds_total:rate"
    assert _mean(df, thr) == pytest.approx(_mean(base, thr), abs=0.01)  # under its quota: no throttling
    # each engine step waits for a core: decode slows (a prefill is mostly GPU time, TTFT moves little)
    for col in ("vllm:inter_token_latency_seconds:mean", "vllm:e2e_request_latency_seconds:p90", "latency-90"):
        assert _mean(df, f"{t}_{col}") > 1.1 * _mean(base, f"{t}_{col}"), col
    assert 0.4 < res.achieved["cpu_share"] < 0.5


def test_cpu_hog_on_the_gateway_slows_every_request_but_no_engine(runs):
    res, df = runs["cpu-gw"]
    base_res, base = runs["base"]
    assert _mean(df, "nginx-gateway_cpu") > _mean(base, "nginx-gateway_cpu") + 6  # the 8-core quota fills
    assert _mean(df, "nginx-gateway_container_cpu_cfs_throttled_seconds_total:rate") > 1
    assert np.mean(_latency(res)) > np.mean(_latency(base_res)) + 0.01
    assert res.achieved["requests_delayed"] > 0 and res.achieved["mean_proxy_wait_ms"] > 10
    itl = "ray-worker-1_vllm:inter_token_latency_seconds:mean"
    assert _mean(df, itl) == pytest.approx(_mean(base, itl), rel=0.05)


def test_cpu_hog_on_the_head_starves_its_engine_and_its_proxy(runs):
    res, df = runs["cpu-head"]
    _, base = runs["base"]
    assert _mean(df, "ray-head_vllm:inter_token_latency_seconds:mean") > 1.1 * _mean(base, "ray-head_vllm:inter_token_latency_seconds:mean")
    assert res.achieved["requests_delayed"] > 0


def test_network_delay_on_the_gateway_or_the_head_delays_every_request(runs):
    for key, own, unaffected, ref in (("net-gw", "nginx-gateway", "ray-head", "base"), ("net-head-relay", "ray-head", "ray-worker-2", "base-relay")):
        res, df = runs[key]
        base_res, base = runs[ref]
        added = np.median(_latency(res)) - np.median(_latency(base_res))
        assert 0.8 < added < 1.3, (key, added)
        # (a mesh histogram's 2.5-5 s bucket blurs the shift a little)
        assert _mean(df, f"{own}_latency-50") > _mean(base, f"{own}_latency-50") + 0.5
        # the callee's mesh latency does not contain the wait upstream of it
        assert abs(_mean(df, f"{unaffected}_latency-50") - _mean(base, f"{unaffected}_latency-50")) < 0.3, key
        arrived = int(((res.requests["arrival"] >= INJECT) & (res.requests["arrival"] < END)).sum())
        assert abs(res.achieved["requests_delayed"] - arrived) <= 2, key  # every request, whatever replica served it


def test_network_delay_on_the_head_with_a_proxy_on_every_pod_delays_only_what_it_accepts_or_serves(runs):
    """With a Serve proxy on every pod (ingress="every-pod", the default) the head is one entry point of four: a
    delay there slows the requests its proxy accepts or its replica serves, not every request as behind the
    head's one proxy."""
    res, _ = runs["net-head"]
    base_res, _ = runs["base"]
    relay, _ = runs["net-head-relay"]
    arrived = int(((res.requests["arrival"] >= INJECT) & (res.requests["arrival"] < END)).sum())
    assert 0.1 * arrived < res.achieved["requests_delayed"] < 0.7 * arrived
    assert relay.achieved["requests_delayed"] > 0.95 * arrived
    # the head's own replica is dropped by the routers once its probe answers come late
    served = lambda r: int(((r.requests["replica"] == 0) & (r.requests["arrival"] >= INJECT + 15) & (r.requests["arrival"] < END)).sum())  # noqa: E731
    assert served(res) < 0.5 * served(base_res)


def test_memory_leak_on_the_gateway_and_cpu_hog_on_the_operator_stay_in_their_pod(runs):
    res, df = runs["mem-gw"]
    base_res, base = runs["base"]
    grown = np.nanmax(_win(df, "nginx-gateway_mem", INJECT, END)) - _mean(base, "nginx-gateway_mem", INJECT, END)
    assert 7e9 < grown < 8.5e9 and res.achieved["peak_bytes_held"] > 7.5e9
    assert np.array_equal(res.requests["t_done"], base_res.requests["t_done"], equal_nan=True)  # nothing in the request path changed
    res, df = runs["cpu-op"]
    assert _mean(df, "kuberay-operator_cpu") > _mean(base, "kuberay-operator_cpu") + 6
    assert np.array_equal(res.requests["t_done"], base_res.requests["t_done"], equal_nan=True)


def test_each_fault_class_says_where_it_applies():
    be = SimBackend()
    assert set(fault_roles("sim", "gpu")) == {"head", "worker"}
    assert set(fault_roles("sim", "cpu")) == {"gateway", "head", "worker", "operator"}
    assert "operator" not in fault_roles("sim", "packet-loss")
    for ft in ALL_FAULT_TYPES:
        for comp, role in be.placements().items():
            spec = FaultSpec(ft, comp)
            if role in fault_roles("sim", ft):
                be.check_fault(spec)
            else:
                with pytest.raises(ConfigError, match=f"does not apply to {comp}"):
                    be.check_fault(spec)


def test_extended_profile_places_every_fault_type_on_every_component_it_applies_to():
    be = SimBackend()
    prof = PROFILES["extended"]
    specs = plan_cases(prof, be.workers(), None, Timeline(), placements=be.placements(), roles_of=lambda ft: fault_roles("sim", ft))
    faulty = [s for s in specs if s.type != "none"]
    assert {s.type for s in faulty} == set(ALL_FAULT_TYPES)
    assert sum(s.type == "none" for s in specs) == prof.healthy > 0
    assert len(faulty) == 141 and len(specs) == 161
    by = {(s.type, s.target) for s in faulty}
    assert ("cpu", "nginx-gateway") in by and ("memory", "kuberay-operator") in by and ("packet-loss", "ray-head") in by
    assert not any(t == "nginx-gateway" for ft, t in by if ft in ("gpu", "gpu-thermal", "gpu-error", "kv-cache", "model-load"))
    # the paper's profiles are unchanged
    assert len(plan_cases(PROFILES["paper"], be.workers(), None, Timeline())) == 120
    assert {s.target for s in plan_cases(PROFILES["quick"], be.workers(), None, Timeline())} == set(be.workers())
