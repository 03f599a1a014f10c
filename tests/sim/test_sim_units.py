"""Units of the simulator: Prometheus arithmetic, GPU equations, determinism, metric sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrca.config import ConfigError
from llmrca.model import FaultSpec
from llmrca.telemetry import BASIC_NAMES, EXTENDED, GATEWAY, HEAD, OPERATOR, PROMETHEUS_EXTRA
from llmrca.testbed.base import Timeline
from llmrca.testbed.gpu import GpuModel
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import GpuCoefficients
from llmrca.testbed.sim.faults import fault_params
from llmrca.testbed.sim.observe import counter_rate, window_mean, window_quantiles

START = 1_767_225_600.0
SHORT = Timeline(normal_s=60.0, fault_s=30.0, tail_s=10.0, warmup_s=10.0)


def test_counter_rate_handles_resets():
    # 1/s for 4 scrapes, reset to 0, then 1/s again
    x = np.array([0.0, 5, 10, 15, 20, 2, 7, 12])
    r = counter_rate(x, 1, 5.0)
    assert np.allclose(r[1:], [1, 1, 1, 1, 0.4, 1, 1])


def _hq(q: float, values: np.ndarray, le: tuple[float, ...]) -> float:
    """Prometheus' histogram_quantile on one window, written plainly."""
    counts = [np.sum(values <= b) for b in le] + [values.size]
    rank = q * values.size
    for i, c in enumerate(counts):
        if c >= rank:
            if i == len(le):
                return le[-1]
            lo = 0.0 if i == 0 else le[i - 1]
            below = 0 if i == 0 else counts[i - 1]
            return lo + (le[i] - lo) * (rank - below) / (c - below)
    raise AssertionError


def test_window_quantiles_match_histogram_quantile():
    rng = np.random.default_rng(0)
    le = (0.1, 0.25, 0.5, 1.0, 2.5)
    t = np.sort(rng.uniform(0, 100, 400))
    v = rng.lognormal(-1, 0.8, 400)
    st = np.arange(5.0, 101.0, 5.0)
    got = window_quantiles(t, v, None, st, le, 20.0, (0.5, 0.9))
    for s in (5, 10, 19):
        m = (t > st[s] - 20.0) & (t <= st[s])
        assert got[s, 0] == pytest.approx(_hq(0.5, v[m], le))
        assert got[s, 1] == pytest.approx(_hq(0.9, v[m], le))
    assert np.isnan(window_quantiles(t[:0], v[:0], None, st, le, 20.0, (0.5,))).all()


def test_window_mean_is_sum_over_count_of_the_window():
    rng = np.random.default_rng(1)
    t = np.sort(rng.uniform(0, 100, 300))
    v = rng.lognormal(1.3, 0.5, 300)
    st = np.arange(5.0, 101.0, 5.0)
    got = window_mean(t, v, st, 4, 5.0)  # rate(_sum[20s]) / rate(_count[20s])
    for s in (5, 10, 19):
        m = (t > st[s] - 20.0) & (t <= st[s])
        assert got[s] == pytest.approx(v[m].mean())
    assert np.isnan(window_mean(t[:0], v[:0], st, 4, 5.0)).all()


def test_mesh_mean_latency_shows_a_network_delay_the_buckets_blur():
    """Istio's buckets (2.5 s, 5 s) quantise whole-request latencies of seconds; the _sum/_count mean does not
    (one proxy on the head: a worker's mesh edge carries only the requests its replica serves)."""
    be = SimBackend(SimConfig(ingress="head", artifact_latency=False))
    spec = FaultSpec("network", "ray-worker-1")
    faulty = be.run_case(spec, seed=3, protocol=SHORT, start_time=START).metric_sets["extended"]
    t0 = START + SHORT.normal_s
    w = (faulty["time"] >= t0 + 10) & (faulty["time"] < t0 + SHORT.fault_s)
    n = faulty["time"] < t0
    share = faulty["ray-worker-1_latency"] - faulty["ray-worker-1_vllm:e2e_request_latency_seconds:mean"]
    assert share[n].median() == pytest.approx(0.0, abs=0.02)  # the mesh mean is the engine's plus a hop
    assert share[w].median() > 0.3  # the delay (1 s per request entering the pod's proxy, less for actor calls)
    peer = faulty["ray-worker-2_latency"] - faulty["ray-worker-2_vllm:e2e_request_latency_seconds:mean"]
    assert abs(peer[w].median()) < 0.05


@pytest.mark.parametrize("limit", [300.0, 220.0, 150.0])
def test_vector_step_times_equal_the_gpu_model(limit):
    gm = GpuModel()
    coef = GpuCoefficients.probe(GpuModel())
    gm.set_power_limit(limit)
    for batch, ctx, load in [(1, 600, 0.3), (8, 6000, 0.7), (200, 150000, 1.0), (600, 100, 0.9)]:
        slow = gm.slowdown(load)
        got = coef.decode_s(np.array([batch]), np.array([ctx]), np.array([slow]))[0]
        assert got == pytest.approx(gm.decode_step_s(batch, ctx, load), rel=1e-9)
        assert coef.prefill_per_token_s * 512 * slow == pytest.approx(gm.prefill_s(512, load), rel=1e-9)


def test_same_seed_same_case_other_seed_other_case():
    be = SimBackend()
    a = be.run_case(FaultSpec("cpu", "ray-worker-1"), seed=5, protocol=SHORT, start_time=START)
    b = be.run_case(FaultSpec("cpu", "ray-worker-1"), seed=5, protocol=SHORT, start_time=START)
    c = be.run_case(FaultSpec("cpu", "ray-worker-1"), seed=6, protocol=SHORT, start_time=START)
    for name in ("basic", "extended"):
        pd.testing.assert_frame_equal(a.metric_sets[name], b.metric_sets[name])
    pd.testing.assert_frame_equal(a.logs, b.logs)
    pd.testing.assert_frame_equal(a.traces, b.traces)
    assert a.fault.achieved == b.fault.achieved
    assert not a.metric_sets["basic"].equals(c.metric_sets["basic"])


def test_metric_sets_follow_the_catalogue():
    case = SimBackend(SimConfig(n_workers=2)).run_case(FaultSpec("gpu", "ray-worker-2"), seed=1, protocol=SHORT, start_time=START)
    case.validate()
    comps = [GATEWAY, HEAD, "ray-worker-1", "ray-worker-2", OPERATOR]
    basic = case.metric_sets["basic"]
    want = ["time"] + [f"{c}_{m}" for c in comps for m in BASIC_NAMES if m != "gpu" or c not in (GATEWAY, OPERATOR)]
    # the paper's methods saw no received-bytes rate and no p50 (rca-llm's exporter, preparation and harness)
    assert list(basic.columns) == [c for c in want if not c.endswith(("_net-rx", "_latency-50"))]
    ext = case.metric_sets["extended"]
    assert set(basic.columns) <= set(ext.columns)
    extra = set(ext.columns) - set(basic.columns)
    assert "ray-worker-2_DCGM_FI_DEV_POWER_USAGE" in extra and f"{GATEWAY}_DCGM_FI_DEV_POWER_USAGE" not in extra
    assert f"{HEAD}_ray_serve_num_router_requests_total:rate" in extra and "ray-worker-1_ray_serve_num_router_requests_total:rate" not in extra
    assert f"{GATEWAY}_nginx_ingress_controller_requests:rate" in extra
    # what a real Prometheus gives the collector, and the basic series the artifact's methods did not see
    assert {m.name for m in (*EXTENDED, *PROMETHEUS_EXTRA)} | {"net-rx", "latency-50"} == {c.split("_", 1)[1] for c in extra}
    assert case.fault.requested == {"power_limit_w": 150.0}
    # the proxy's actor calls to the replicas are invisible to the eBPF tracer (trace_actor_calls="missing")
    assert set(case.traces["serviceName"]) == {GATEWAY, HEAD}
    linked = SimBackend(SimConfig(n_workers=2, trace_actor_calls="linked")).run_case(FaultSpec("gpu", "ray-worker-2"), seed=1, protocol=SHORT, start_time=START)
    assert set(linked.traces["serviceName"]) == {GATEWAY, HEAD, "ray-worker-1", "ray-worker-2"}
    assert (~linked.traces["spanID"].str.endswith("-r")).sum() == len(case.traces)  # the same requests, without the replica spans
    assert case.logs["message"].str.contains("Avg prompt throughput").any()
    assert case.traces["startTime"].dtype.kind == "i" and case.traces["startTime"].min() > START * 1e6


def test_gaps_where_the_replica_is_dead_and_logs_tell_the_story():
    case = SimBackend().run_case(FaultSpec("memory", "ray-worker-3"), seed=2, protocol=Timeline(), start_time=START)
    ext = case.metric_sets["extended"]
    assert ext["ray-worker-3_vllm:num_requests_running"].isna().any()
    assert not ext["ray-worker-1_vllm:num_requests_running"].isna().any()
    msgs = case.logs.loc[case.logs["container_name"] == "ray-worker-3", "message"]
    assert msgs.str.contains("out of memory").any()
    assert case.logs["message"].str.contains("died unexpectedly").any()
    assert case.fault.achieved["oom_killed"] is True
    assert (case.logs["message"].str.contains('" 500 |" 502 ', regex=True)).any()


def test_fault_parameter_errors_are_actionable():
    with pytest.raises(ConfigError, match="valid"):
        fault_params("cpu", {"threads": 4})
    with pytest.raises(ConfigError, match="correlation"):
        fault_params("network", {"correlation": 25})
    with pytest.raises(ConfigError, match="unknown fault"):
        fault_params("disk")
    with pytest.raises(ConfigError, match="multiple of tick_s"):
        SimConfig(scrape_interval_s=5.1).validate()
    # a GPU fault on the gateway (no GPU there) is refused, naming the roles it applies to
    with pytest.raises(ValueError, match=r"not a serving pod.*applies to head, worker"):
        SimBackend().simulate(FaultSpec("gpu", "nginx-gateway"), seed=0, protocol=SHORT, start_time=START)
    with pytest.raises(ConfigError, match=r"'gpu' does not apply to nginx-gateway \(gateway\)"):
        SimBackend().check_fault(FaultSpec("gpu", "nginx-gateway"))
    with pytest.raises(ValueError, match="not a serving pod"):
        SimBackend().simulate(FaultSpec("cpu", "no-such-pod"), seed=0, protocol=SHORT, start_time=START)


def test_power_cap_outside_the_range_is_rejected():
    with pytest.raises(ValueError, match="outside the range"):
        SimBackend().simulate(FaultSpec("gpu", "ray-worker-1", {"power_limit_w": 100}), seed=0, protocol=SHORT, start_time=START)


def test_scales_to_many_replicas():
    cfg = SimConfig(n_workers=31, qps=40.0)
    res = SimBackend(cfg).simulate(FaultSpec("gpu", "ray-worker-7"), seed=0, protocol=SHORT, start_time=START)
    st = res.requests["status"]
    assert (st == 2).mean() > 0.9
    per = np.bincount(res.requests["replica"][res.requests["replica"] >= 0], minlength=32)
    assert per.min() > 0.5 * per.mean()  # power of two choices spreads the load


def test_basic_set_reads_cpu_and_mem_as_the_exporter_queried_them():
    """The basic set's cpu / mem are rate() over 30-s Prometheus scrapes; the extended set keeps the direct reads."""
    tl = Timeline()
    inject = START + tl.normal_s
    art = SimBackend().run_case(FaultSpec("memory", "ray-worker-2"), seed=3, protocol=tl, start_time=START)
    direct = SimBackend(SimConfig(basic_queries="direct")).run_case(FaultSpec("memory", "ray-worker-2"), seed=3, protocol=tl, start_time=START)
    b, e, d = art.metric_sets["basic"], art.metric_sets["extended"], direct.metric_sets["basic"]
    # cpu: one value per 30-s scrape, repeated at the exporter's 5-s step; the same level as the direct read
    cpu = b["ray-worker-1_cpu"].to_numpy()
    assert np.count_nonzero(np.diff(cpu)) <= len(cpu) // 6 + 1
    assert np.median(cpu) == pytest.approx(np.median(d["ray-worker-1_cpu"]), rel=0.05)
    # mem: rate() of the working-set gauge in kB/s: during the leak (8 GB over 60 s) the target grows by
    # ~133,000 kB/s; a healthy pod's working set creeps with its logs (a few kB/s) except where it fell
    # (a counter reset to Prometheus: the whole working set / 30 s / 1000)
    t = b["time"].to_numpy()
    tgt = b["ray-worker-2_mem"].to_numpy()
    kill = art.fault.achieved["oom_kill_after_s"]
    assert art.fault.achieved["oom_killed"] and 30 < kill < 60
    growing = (t > inject + 15) & (t < inject + kill)
    assert 0.5 * 8e9 / 60 / 1000 < np.max(tgt[growing]) < 1.1 * 8e9 / 60 / 1000
    # the kill drops the working set: Prometheus reads a reset and rate() adds the whole remaining set
    after = (t > inject + kill) & (t < inject + kill + 30)
    assert np.max(tgt[after]) > 1e10 / 30 / 1000
    calm = b["ray-worker-1_mem"].to_numpy()[t < inject]
    # a serving pod's working set creeps with its logs, mostly the replica's whole-request lines (~6.5 kB per
    # request, replica_request_log_bytes): tens of kB/s, so the charge jitter (ws_jitter_bytes) rarely makes it fall
    reset = calm > 1e5
    assert reset.mean() < 0.2 and 5.0 < np.median(calm[~reset]) < 200.0
    # without those lines the creep is a few kB/s and the set falls between many scrapes: the column alternates
    # between the creep and resets of the whole ~10-GiB set per second (rate() reads a counter reset)
    quiet = SimBackend(SimConfig(replica_request_log_bytes=0.0, replica_log_bytes_per_prompt_token=0.0)).run_case(
        FaultSpec("memory", "ray-worker-2"), seed=3, protocol=tl, start_time=START)
    qcalm = quiet.metric_sets["basic"]["ray-worker-1_mem"].to_numpy()[t < inject]
    qreset = qcalm > 1e5
    assert 0.2 < qreset.mean() < 0.8 and np.all(qcalm[~qreset] < 200.0)
    assert np.median(qcalm[qreset]) == pytest.approx(e["ray-worker-1_mem"].median() / 30 / 1000, rel=0.1)
    # the extended set still holds the working set in bytes, as the direct basic set does
    assert e["ray-worker-1_mem"].median() > 5e9 and d["ray-worker-1_mem"].median() > 5e9
    # the direct basic set keeps every catalogue column; the artifact's leaves out net-rx and latency-50
    assert list(b.columns) == [c for c in d.columns if not c.endswith(("_net-rx", "_latency-50"))]
    assert any(c.endswith("_net-rx") for c in d.columns) and any(c.endswith("_latency-50") for c in d.columns)


def test_working_set_jitter_makes_the_mem_column_fall_back_more_often():
    """``ws_jitter_bytes`` (memcg's per-CPU charge batches): the working set moves between scrapes whatever the
    processes do, so rate() reads more counter resets in a healthy pod's mem column than without it."""
    def resets(cfg: SimConfig) -> float:
        run = SimBackend(cfg).run_case(FaultSpec("cpu", "ray-worker-1"), seed=5, protocol=SHORT, start_time=START)
        b = run.metric_sets["basic"]
        t = b["time"].to_numpy()
        calm = np.concatenate([b[f"{c}_mem"].to_numpy()[t < START + SHORT.normal_s] for c in ("nginx-gateway", "ray-head", "ray-worker-2")])
        return float(np.mean(calm > 1e3))  # a reset reads as the whole working set / 30 s / 1000 (> 1e3 for these pods)

    plain, jittered = resets(SimConfig(ws_trim_rate_hz=0.0, ws_jitter_bytes=0.0)), resets(SimConfig(ws_trim_rate_hz=0.0, ws_jitter_bytes=131072.0))
    assert plain == 0.0 < 0.15 < jittered  # no drop at all without trims or jitter; frequent ones with the measured jitter
    with pytest.raises(ConfigError, match=r"ws_jitter_bytes must be >= 0 \(got -1.0\)"):
        SimConfig(ws_jitter_bytes=-1.0).validate()
    with pytest.raises(ConfigError, match=r"ray_heap_jitter_bytes must be at most 1 GiB .*757760"):
        SimConfig(ray_heap_jitter_bytes=2.0**31).validate()
    # an empty --set value (None), nan or inf is refused by name, before any comparison could fail on it
    for bad in (None, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match=r"ws_trim_rate_hz must be a finite number"):
            SimConfig(ws_trim_rate_hz=bad).validate()
    with pytest.raises(ConfigError, match=r"must be a finite number \(got an empty value\)"):
        SimConfig(ws_trim_rate_hz=None).validate()
    with pytest.raises(ConfigError, match=r"replica_request_log_bytes must be >= 0 \(got -1.0\)"):
        SimConfig(replica_request_log_bytes=-1.0).validate()


def test_ray_heap_jitter_moves_only_the_ray_pods_working_set():
    """``ray_heap_jitter_bytes`` / ``ray_heap_growth_bytes_s`` (a Ray node's heaps, benchmarks/ray_working_set.py): between
    resets the Ray pods' mem column reads a faster and far more variable creep, and with the measured creep the set
    falls between scrapes about as often as measured (25-39 %); the gateway's and the operator's are drawn alike."""
    def calm(cfg: SimConfig) -> pd.DataFrame:
        tl = Timeline()  # the campaign's protocol: ~10 of Prometheus' 30-s samples before the fault
        run = SimBackend(cfg).run_case(FaultSpec("cpu", "ray-worker-1"), seed=5, protocol=tl, start_time=START)
        b = run.metric_sets["basic"]
        return b[b["time"] < START + tl.normal_s]

    base, heaps = calm(SimConfig()), calm(SimConfig(ray_heap_jitter_bytes=757760.0, ray_heap_growth_bytes_s=20000.0))
    ray = ("ray-head", "ray-worker-2", "ray-worker-3")

    def column(b: pd.DataFrame, cs: tuple[str, ...]) -> np.ndarray:
        return np.concatenate([b[f"{c}_mem"].to_numpy() for c in cs])

    def creep(b: pd.DataFrame, cs: tuple[str, ...]) -> np.ndarray:
        v = column(b, cs)
        return v[v < 1e3]  # a reset reads as the whole working set / 30 s / 1000 (> 1e3 for these pods)

    assert np.median(creep(heaps, ray)) > np.median(creep(base, ray)) + 10.0  # 20 kB/s more
    assert np.std(creep(heaps, ray)) > 3 * np.std(creep(base, ray))
    assert 0.1 < np.mean(column(heaps, ray) > 1e3) < 0.5
    for c in ("nginx-gateway", "kuberay-operator"):
        assert np.mean(column(heaps, (c,)) > 1e3) == pytest.approx(np.mean(column(base, (c,)) > 1e3), abs=0.15)


def test_options_without_effect_warn_once_and_absurd_growth_is_refused():
    """An option that cannot act in the chosen layout warns once per process (a campaign validates per case)."""
    import warnings

    from llmrca.testbed.sim import config as simcfg

    simcfg._WARNED.clear()  # as in a fresh process
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        for _ in range(3):
            SimConfig(ingress="head", upstream_keepalive=True).validate()
            SimConfig(basic_queries="direct", ray_heap_growth_bytes_s=20000.0).validate()
    texts = [str(w.message) for w in got]
    assert sum("act only with ingress='every-pod'" in t for t in texts) == 1
    assert sum("act only with basic_queries='artifact'" in t for t in texts) == 1
    with pytest.raises(ConfigError, match=r"ray_heap_growth_bytes_s must be at most 1 MiB/s"):
        SimConfig(ray_heap_growth_bytes_s=1e300).validate()
