"""The collector against a real Prometheus scraping a real prometheus_client exporter on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from llmrca.collect import PromClient, SpanWriter, collect_case, collect_metrics
from llmrca.collect.prometheus_server import PrometheusServer, ScrapeTarget, free_port, kill_stale
from llmrca.load import run_load
from llmrca.load.stub_server import StubBehaviour, StubServer
from llmrca.model import FaultRecord, Topology

pytestmark = pytest.mark.skipif(
    not os.path.exists("/usr/bin/prometheus"), reason="needs /usr/bin/prometheus (Debian package 'prometheus')"
)

CPU = {"ray-worker-1": 0.5, "ray-worker-2": 1.5}  # cores burned, as a counter of seconds
MEM = {"ray-worker-1": 1e9, "ray-worker-2": 2e9}
GPU = {"ray-worker-1": 80.0, "ray-worker-2": 40.0}
TTFT = {"ray-worker-1": 0.12, "ray-worker-2": 0.3}  # every observation; buckets below
W = 3  # rate window, s (three 1-s scrapes)
SELECTORS = {"ray-worker-1": 'pod="ray-worker-1"', "ray-worker-2": 'pod="ray-worker-2"', "ray-worker-3": 'pod="ray-worker-3"'}


@dataclass
class Stack:
    prom: PrometheusServer
    client: PromClient
    stub: StubServer
    t_start: float
    t_first: float  # first successful scrape


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    reg = CollectorRegistry()
    cpu = Counter("container_cpu_usage_seconds_total", "cpu", ["pod"], registry=reg)
    mem = Gauge("container_memory_working_set_bytes", "mem", ["pod"], registry=reg)
    gpu = Gauge("DCGM_FI_DEV_GPU_UTIL", "gpu", ["pod"], registry=reg)
    ttft = Histogram(
        "vllm:time_to_first_token_seconds", "ttft", ["pod", "model_name"], buckets=(0.05, 0.1, 0.2, 0.5, 1.0), registry=reg
    )
    lat = Histogram("istio_request_duration_milliseconds", "mesh", ["pod"], buckets=(100, 200, 500, 1000), registry=reg)
    running = Gauge("vllm:num_requests_running", "running", ["pod"], registry=reg)
    ray_running = Gauge("ray_vllm:num_requests_running", "running under Ray Serve", ["pod", "ReplicaId"], registry=reg)
    for pod in CPU:
        mem.labels(pod).set(MEM[pod])
        gpu.labels(pod).set(GPU[pod])
    running.labels("ray-worker-1").set(3)
    ray_running.labels("ray-worker-2", "r2").set(7)  # worker 2 only under the Ray Serve name: the alias must find it
    stop = threading.Event()

    def drive() -> None:
        last = time.monotonic()
        while not stop.wait(0.05):
            now = time.monotonic()
            for pod, cores in CPU.items():
                cpu.labels(pod).inc(cores * (now - last))
                ttft.labels(pod, "m").observe(TTFT[pod])
            lat.labels("ray-worker-1").observe(250)
            last = now

    port = free_port()
    server, _thread = start_http_server(port, addr="127.0.0.1", registry=reg)
    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    t_start = time.time()
    try:
        with StubServer(StubBehaviour(ttft_s=0.05, itl_s=0.01)) as stub:
            targets = [
                ScrapeTarget("exporter", f"127.0.0.1:{port}"),
                ScrapeTarget("stub", stub.url.removeprefix("http://"), labels={"pod": "ray-worker-9"}),
            ]
            with PrometheusServer(targets, scrape_interval_s=1.0) as prom, PromClient(prom.url) as client:
                prom.wait_for_scrapes(n=1, timeout_s=20)  # Prometheus' first scrape comes ~5 s after start
                t_first = time.time()
                time.sleep(7.5)  # enough 1-s scrapes for the windows of _window()
                yield Stack(prom, client, stub, t_start, t_first)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert prom.proc is None


def _window(s: Stack, points: int = 3) -> tuple[float, float]:
    """``points`` 1-s points whose 3-s rate windows hold only full scrapes (rate() extrapolates less at a series start)."""
    end = float(int(time.time()) - 1)
    assert end - (points - 1) - W >= s.t_first - 0.5
    return end - (points - 1), end


def test_health_and_targets(stack: Stack) -> None:
    assert stack.client.healthy() and stack.client.ready()
    targets = stack.client.targets()
    assert len(targets) == 2 and {t["health"] for t in targets} == {"up"}
    assert not PromClient("http://127.0.0.1:1").healthy()


def test_query_range_frame_rates_and_quantiles(stack: Stack) -> None:
    start, end = _window(stack)
    res = collect_metrics(stack.client, SELECTORS, start, end, step_s=1, metric_set="extended", rate_window_s=W)
    df = res.frame
    assert list(df["time"]) == [start + k for k in range(3)]
    for pod in CPU:
        assert np.allclose(df[f"{pod}_cpu"], CPU[pod], rtol=0.1), df[f"{pod}_cpu"].tolist()
        assert np.allclose(df[f"{pod}_mem"], MEM[pod])
        assert np.allclose(df[f"{pod}_gpu"], GPU[pod])
    # histogram_quantile interpolates linearly inside the bucket holding the quantile
    assert np.allclose(df["ray-worker-1_vllm:time_to_first_token_seconds:p50"], 0.15, atol=0.005)
    assert np.allclose(df["ray-worker-1_vllm:time_to_first_token_seconds:p90"], 0.19, atol=0.005)
    assert np.allclose(df["ray-worker-2_vllm:time_to_first_token_seconds:p50"], 0.35, atol=0.005)
    assert np.allclose(df["ray-worker-1_latency-50"], 0.35, atol=0.005)  # 250 ms in (200, 500] ms -> 350 ms
    assert "ray-worker-2_latency-50" not in df and "ray-worker-2_latency-50" in res.dropped  # never observed
    # the same metric under its canonical name for worker 1 and under Ray Serve's name for worker 2
    assert np.allclose(df["ray-worker-1_vllm:num_requests_running"], 3)
    assert np.allclose(df["ray-worker-2_vllm:num_requests_running"], 7)
    assert "ray_vllm" in res.queries["ray-worker-2_vllm:num_requests_running"]
    # prometheus-client >= 0.23 renders "vllm:" as "vllm_" on an OpenMetrics scrape; either form is found
    assert res.queries["ray-worker-1_vllm:num_requests_running"] in (
        'sum(vllm:num_requests_running{pod="ray-worker-1"})',
        'sum(vllm_num_requests_running{pod="ray-worker-1"})',
    )
    # a component with no series at all: reported, no invented columns
    assert res.missing_components == ["ray-worker-3"]
    assert not any(c.startswith("ray-worker-3_") for c in df.columns)
    assert "ray-worker-3_cpu" in res.dropped and "no series" in res.dropped["ray-worker-3_cpu"]
    assert not df.drop(columns="time").isna().all().any()


def test_aliases_can_be_disabled_and_queries_overridden(stack: Stack) -> None:
    start, end = _window(stack)
    res = collect_metrics(
        stack.client,
        {"ray-worker-2": SELECTORS["ray-worker-2"]},
        start,
        end,
        step_s=1,
        metric_set="extended",
        rate_window_s=W,
        aliases={},
        queries={"cpu-millicores": "sum(rate(container_cpu_usage_seconds_total{{{sel}}}[{w}])) * 1000"},
    )
    assert "ray-worker-2_vllm:num_requests_running" in res.dropped
    assert np.allclose(res.frame["ray-worker-2_cpu-millicores"], 1500, rtol=0.1)


def test_samples_outside_the_data_stay_missing(stack: Stack) -> None:
    # a window that starts before the exporter existed: those grid points are NaN, not filled
    end = float(int(time.time()) - 1)
    start = stack.t_start - 30
    res = collect_metrics(stack.client, {"ray-worker-1": SELECTORS["ray-worker-1"]}, start, end, step_s=5, rate_window_s=W)
    mem = res.frame["ray-worker-1_mem"]
    assert mem.iloc[0] != mem.iloc[0] and mem.iloc[-1] == MEM["ray-worker-1"]  # NaN first, data last
    assert len(res.frame) == int((end - start) // 5) + 1


def test_collect_case_with_logs_and_spans(stack: Stack, tmp_path) -> None:
    start, end = _window(stack, points=4)
    inject = start + 2  # two rows before it: the least a case may have (the methods' normal window)
    log = tmp_path / "w1.log"
    log.write_text(
        f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(start))}.000Z stdout F engine started\n"
        f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(inject))}.500Z stderr F Traceback (most recent call last):\n"
        "  File x, line 1\nMemoryError\n"
    )
    spans = tmp_path / "spans.jsonl"
    with SpanWriter(spans, "nginx-gateway") as gw, SpanWriter(spans, "ray-worker-1") as w1:
        root = gw.record("/v1/chat/completions", start + 0.5, 0.2, method="POST")
        w1.record("generate", start + 0.6, 0.1, traceparent=root.traceparent)
        gw.record("/v1/chat/completions", end + 5, 0.1)  # after the window: left out
    topo = Topology(nodes=("ray-worker-1", "ray-worker-2", "ray-worker-3"), edges=(("ray-worker-1", "ray-worker-2"),))
    fault = FaultRecord("cpu", "ray-worker-2", requested={"workers": 2}, achieved={"cpu_s": 1.0}, start=inject, end=end)
    case = collect_case(
        stack.client,
        SELECTORS,
        start,
        end,
        inject,
        fault,
        topo,
        step_s=1,
        log_files={"ray-worker-1": log, "ray-worker-3": tmp_path / "absent.log"},
        span_files=[spans],
        meta={"campaign": "t"},
        rate_window_s=W,
    )
    assert case.root_causes == {"ray-worker-2"}
    assert "ray-worker-1_cpu" in case.metrics and "ray-worker-1_vllm:num_requests_running" not in case.metrics
    assert "ray-worker-1_vllm:num_requests_running" in case.metric_sets["extended"]
    assert list(case.logs["container_name"]) == ["ray-worker-1", "ray-worker-1"]
    assert case.logs["message"].iloc[1].endswith("MemoryError")
    assert len(case.traces) == 2 and case.traces["traceID"].nunique() == 1
    info = case.meta["collection"]
    assert info["missing_components"] == ["ray-worker-3"] and info["logs"]["missing_files"] == [str(tmp_path / "absent.log")]
    assert {t["health"] for t in info["targets"]} == {"up"} and len(info["targets"]) == 2
    json.dumps(case.meta)  # provenance must serialise into case.json


def test_load_then_collect_client_vs_server_ttft(stack: Stack) -> None:
    """Load -> stub server (vLLM-named /metrics, text format) -> Prometheus -> frame."""
    t0 = time.time()
    rep = run_load(stack.stub.url, qps=10, duration_s=4, output_tokens=10, prompt_tokens=32)
    point = float(int(t0) + 4)  # its 3-s rate window lies inside the load
    time.sleep(max(0.0, point + 1.5 - time.time()))
    res = collect_metrics(
        stack.client, {"ray-worker-9": 'pod="ray-worker-9"'}, point, point, step_s=1, metric_set="extended", rate_window_s=W
    )
    df = res.frame
    assert np.allclose(df["ray-worker-9_vllm:generation_tokens_total:rate"], 100, rtol=0.2)  # 10 QPS x 10 tokens
    assert np.allclose(df["ray-worker-9_vllm:request_success_total:rate"], 10, rtol=0.2)
    assert np.allclose(df["ray-worker-9_vllm:time_to_first_token_seconds:p50"], 0.05, atol=0.006)
    # served as text, the colon survives: the canonical name answered, no alias needed
    assert "vllm:generation_tokens_total" in res.queries["ray-worker-9_vllm:generation_tokens_total:rate"]
    # the client's TTFT includes what the server's misses (HTTP, parsing); never less
    assert rep.summary["ttft_s"]["p50"] >= 0.05 and rep.summary["n_ok"] == 40


def test_collect_cli_writes_a_readable_case(stack: Stack, tmp_path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.dataset.io import read_case

    start, end = _window(stack, points=4)
    comps = tmp_path / "components.yaml"
    comps.write_text("".join(f"{c}: '{s}'\n" for c, s in SELECTORS.items()))
    args = ["collect", stack.prom.url, "--components", str(comps), "--start", str(start), "--end", str(end)]
    more = ["--fault-type", "mem", "--target", "ray-worker-1", "--step", "1", "--scrape-interval", "0.75", "--out", str(tmp_path / "case")]
    res = CliRunner().invoke(app, [*args, "--inject", str(start + 1), *more], terminal_width=400)  # one point before it: refused up front
    assert res.exit_code == 2 and "leaves fewer than 2 points of --step 1 s after --start" in res.output, res.output
    assert not (tmp_path / "case").exists()
    res = CliRunner().invoke(app, [*args, "--inject", str(start + 2), *more])
    assert res.exit_code == 0, res.output
    assert "missing components: ['ray-worker-3']" in res.output
    case = read_case(tmp_path / "case")
    assert case.root_causes == {"ray-worker-1"} and case.fault_type == "memory"
    assert set(case.metric_sets) == {"basic", "extended"} and "ray-worker-2_cpu" in case.metrics


def test_prometheus_server_is_stopped_and_stale_ones_are_removed(tmp_path) -> None:
    data = tmp_path / "prom"
    srv = PrometheusServer({"nothing": "127.0.0.1:1"}, data_dir=data).start()
    pid = srv.proc.pid
    assert (data / "prometheus.pid").exists()
    srv.proc = None  # forget it, as a crashed run would
    assert os.path.exists(f"/proc/{pid}")
    assert kill_stale(data)
    os.waitpid(pid, 0)  # reap it: we are its parent here, a crashed run would not be
    assert not os.path.exists(f"/proc/{pid}")
    with pytest.raises(RuntimeError, match="boom"), PrometheusServer({"nothing": "127.0.0.1:1"}) as p2:
        pid2, d2 = p2.proc.pid, p2.data_dir
        raise RuntimeError("boom")
    assert not os.path.exists(f"/proc/{pid2}") and not d2.exists()
    assert shutil.which("promtool")
