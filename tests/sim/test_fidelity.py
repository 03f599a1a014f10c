"""The paper's observations must emerge from the simulator's mechanisms.

Every check compares a faulty run with its counterfactual: the same seed (same
arrivals, lengths and routing draws) without the fault, so a difference is
the fault's effect and nothing else.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.engine import ACTIVE, DONE, FAILED, PENDING
from llmrca.testbed.sim.observe import build_frames
from llmrca.testbed.sim.traces import build_traces

SEED = 11
START = 1_767_225_600.0
TARGET = "ray-worker-2"
PROTO = Timeline()
INJECT = START + PROTO.normal_s
END = INJECT + PROTO.fault_s


def _run(fault: str | None):
    be = SimBackend()
    spec = FaultSpec(fault, TARGET) if fault else None
    res = be.simulate(spec, seed=SEED, protocol=PROTO, start_time=START)
    frames = build_frames(res, np.random.default_rng(0))
    return res, frames["extended"]


@pytest.fixture(scope="module")
def runs():
    return {k: _run(k) for k in (None, "cpu", "memory", "network", "gpu")}


def _win(df: pd.DataFrame, col: str, lo: float, hi: float) -> np.ndarray:
    m = (df["time"] >= lo) & (df["time"] <= hi)
    return df.loc[m, col].to_numpy(dtype=float)


def _fault_mean(df: pd.DataFrame, col: str) -> float:
    # after the 30 s rate window has filled with fault-time samples
    return float(np.nanmean(_win(df, col, INJECT + 30, END)))


def test_cpu_hog_raises_target_cpu_and_ttft(runs):
    _, base = runs[None]
    _, cpu = runs["cpu"]
    assert _fault_mean(cpu, f"{TARGET}_cpu") > _fault_mean(base, f"{TARGET}_cpu") + 4.0  # quota is 8 cores
    assert _fault_mean(cpu, f"{TARGET}_cpu") <= 8.0 * 1.1
    for col in ("vllm:time_to_first_token_seconds:p90", "vllm:inter_token_latency_seconds:mean"):
        assert _fault_mean(cpu, f"{TARGET}_{col}") > 1.1 * _fault_mean(base, f"{TARGET}_{col}"), col
    # the other workers are untouched
    other = "ray-worker-1_cpu"
    assert abs(_fault_mean(cpu, other) - _fault_mean(base, other)) < 0.1 * _fault_mean(base, other)


def test_memory_leak_ooms_restarts_and_shifts_load(runs):
    res, mem = runs["memory"]
    _, base = runs[None]
    kinds = [(k, c) for t, c, k in res.events]
    assert ("oom-kill", TARGET) in kinds and ("replica-starting", TARGET) in kinds and ("replica-healthy", TARGET) in kinds
    t_oom = next(t for t, c, k in res.events if k == "oom-kill")
    t_ok = next(t for t, c, k in res.events if k == "replica-healthy")
    assert INJECT < t_oom < END
    # in-flight requests on the killed replica failed
    rq = res.requests
    assert ((rq["status"] == FAILED) & (rq["replica"] == 1 + 1)).sum() > 0
    # memory: rises with the leak, drops at the kill, rises again as the actor reloads
    col = f"{TARGET}_mem"
    before = _win(mem, col, t_oom - 6, t_oom)[-1]
    after = _win(mem, col, t_oom, t_oom + 6)[0]
    assert before > after + 3 * 2**30  # the actor's memory is gone
    reload = _win(mem, col, END + 1, t_ok + 5)  # the stressor has exited; the new actor loads
    assert np.argmax(reload) > np.argmin(reload) and reload.max() > reload.min() + 2**30
    assert _win(mem, f"{TARGET}_ray_serve_deployment_replica_healthy", t_oom, t_ok).min() == 0
    # the surviving replicas take the load: more prompt tokens/s (paper Fig. 7)
    survivors = [c for c in mem.columns if c.endswith("vllm:prompt_tokens_total:rate") and not c.startswith(TARGET)]
    lo, hi = t_oom + 15, t_ok + 5
    got = sum(np.nanmean(_win(mem, c, lo, hi)) for c in survivors)
    ref = sum(np.nanmean(_win(base, c, lo, hi)) for c in survivors)
    assert got > 1.1 * ref


def test_network_delay_adds_a_second_and_lowers_traffic(runs):
    res, net = runs["network"]
    base_res, base = runs[None]
    # the replica's own spans, as a tracer that parses the actor calls would record them
    linked = lambda r: dataclasses.replace(r, cfg=dataclasses.replace(r.cfg, trace_actor_calls="linked"))  # noqa: E731
    tr = build_traces(linked(res), np.random.default_rng(0))
    tb = build_traces(linked(base_res), np.random.default_rng(0))

    def beyond_engine(r, t: pd.DataFrame) -> float:
        """Mean time (s) a TARGET span holds beyond its request's engine time (the same requests: the last
        8 hex digits of a trace id are the request's index); the requests differ in length, so span means
        of two runs would compare different work."""
        m = (t["serviceName"] == TARGET) & (t["startTime"] >= INJECT * 1e6) & (t["startTime"] < (END - 2) * 1e6)
        i = np.array([int(x[-8:], 16) for x in t.loc[m, "traceID"]])
        engine = r.requests["t_done"][i] - r.requests["t_ready"][i]
        return float(np.mean(t.loc[m, "duration"].to_numpy() / 1e6 - engine))

    assert abs(beyond_engine(base_res, tb)) < 0.05
    added = beyond_engine(res, tr)
    assert 0.85 < added < 1.3, added
    # one crossing of the delayed interface per request the target serves that entered through another pod's
    # proxy (its response stream); a request its own proxy accepted crosses it two or three times
    rq = res.requests
    window = (rq["arrival"] >= INJECT) & (rq["arrival"] < END)
    once = window & (rq["replica"] == 2) & (rq["ingress"] != 2)
    assert once.sum() > 5 and np.mean(rq["delay"][once]) == pytest.approx(1.0, abs=0.06)
    assert 1000 - 60 < res.achieved["mean_added_latency_ms"] < 3 * 1000 + 60
    routed = lambda r: ((r.requests["replica"] == 2) & (r.requests["arrival"] >= INJECT) & (r.requests["arrival"] < END)).sum()  # noqa: E731
    assert routed(res) < routed(base_res)
    assert _fault_mean(net, f"{TARGET}_net-tx") < _fault_mean(base, f"{TARGET}_net-tx")
    assert _fault_mean(net, f"{TARGET}_latency-90") > _fault_mean(base, f"{TARGET}_latency-90")


def test_network_delay_loses_scrapes_of_the_target():
    lost = 0
    for seed in range(3):
        res = SimBackend().simulate(FaultSpec("network", TARGET), seed=seed, protocol=PROTO, start_time=START)
        assert not res.scrape_lost[:, 0].any() and not res.scrape_lost[:, 1].any()
        lost += int(res.scrape_lost[:, 2].sum())
    assert lost > 0


def test_gpu_throttle_hides_in_utilisation_but_not_in_power_or_itl(runs):
    res, gpu = runs["gpu"]
    _, base = runs[None]
    normal = base[base["time"] < INJECT]
    sd = float(normal[f"{TARGET}_gpu"].std())
    assert abs(_fault_mean(gpu, f"{TARGET}_gpu") - _fault_mean(base, f"{TARGET}_gpu")) < 3 * sd
    assert np.array_equal(_win(gpu, f"{TARGET}_DCGM_FI_DEV_FB_USED", INJECT, END), _win(base, f"{TARGET}_DCGM_FI_DEV_FB_USED", INJECT, END))
    power = _win(gpu, f"{TARGET}_DCGM_FI_DEV_POWER_USAGE", INJECT + 6, END)
    assert power.mean() < 150 + 6 and _fault_mean(base, f"{TARGET}_DCGM_FI_DEV_POWER_USAGE") > 180
    assert (_win(gpu, f"{TARGET}_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", INJECT + 6, END).astype(int) & 0x4).all()
    assert _fault_mean(gpu, f"{TARGET}_vllm:inter_token_latency_seconds:mean") > 1.03 * _fault_mean(base, f"{TARGET}_vllm:inter_token_latency_seconds:mean")
    assert res.achieved["power_limit_w_read_back"] == 150.0


@pytest.mark.parametrize("fault", ["cpu", "memory", "network", "gpu"])
def test_gateway_latency_rises_under_every_fault(runs, fault):
    _, df = runs[fault]
    _, base = runs[None]
    # the mean (histogram _sum / _count): a p90 interpolated inside the 5-10 s bucket can hide a small rise
    col = "nginx-gateway_latency"
    assert _fault_mean(df, col) > _fault_mean(base, col)


@pytest.mark.parametrize("fault", [None, "cpu", "memory", "network", "gpu"])
def test_conservation(runs, fault):
    res, _ = runs[fault]
    rq = res.requests
    st = rq["status"]
    n = st.size
    assert (st == DONE).sum() + (st == FAILED).sum() + (st == ACTIVE).sum() + (st == PENDING).sum() == n
    assert (st == PENDING).sum() == 0  # nothing stuck at the router at 5 QPS
    done = st == DONE
    assert np.allclose(rq["gen"][done], rq["output"][done])
    # the engine's counters equal the tokens the requests received
    assert res.totals["gen_tokens"].sum() == pytest.approx(rq["gen"].sum(), rel=1e-9)
    per_rep = np.bincount(rq["replica"][rq["replica"] >= 0], weights=rq["gen"][rq["replica"] >= 0], minlength=res.n_replicas)
    assert np.allclose(per_rep, res.totals["gen_tokens"])
    assert res.totals["success"].sum() == done.sum()
    # every finished request ended after it arrived; first tokens precede completion
    assert (rq["t_done"][done] >= rq["t_first"][done] - 1e-9).all()
    assert (rq["t_first"][done] > rq["arrival"][done]).all()
