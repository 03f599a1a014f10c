"""Other exporters' and versions' series, backfilled into a real Prometheus and collected.

Each component below is scraped the way another operator's stack would
expose it (names and labels from the sources cited in
:mod:`llmrca.telemetry.aliases`): vLLM >= 0.11 v1 names with several engines,
Ray Serve's ``ray_vllm_`` names, prometheus-client's escaped ``vllm_`` names,
vLLM's per-request TPOT (not the inter-token latency), DCGM series with
``pod`` / ``exported_pod`` / ``pod_name`` labels, dcgm-exporter 1.x names,
``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` alone (MIG), cAdvisor of kubelets < 1.16
(``pod_name`` / ``container_name``), the ``kubernetes-pods`` scrape job's
``kubernetes_pod_name``, Istio's milliseconds and seconds histograms,
ingress-nginx and nginx-prometheus-exporter gateways, node-exporter before
and after 0.16.  The series are written as OpenMetrics text, backfilled with
``promtool tsdb create-blocks-from openmetrics`` and served by
``/usr/bin/prometheus`` on 127.0.0.1.  Expected values are computed from what
is written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from llmrca.collect import collect_metrics
from llmrca.collect.metrics import MetricsResult
from llmrca.collect.prometheus_server import PrometheusServer

STEP = 5  # s between written samples
N = 144  # samples per series: 12 minutes
QSTEP = 15  # query step
BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
ITL = {0.05: 10}  # 10 observations of 0.04 s per written sample
ITL_SUM = 10 * 0.04
REQ = {1.0: 4}  # 4 requests of 0.8 s per written sample
REQ_SUM = 4 * 0.8
NODE_BUSY = {"n1": 0.6, "n4": 1.2}  # cores busy (not idle) on each node
Value = float | Callable[[int], float]


def _labels(d: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in d.items())


def _gauge(name: str, labels: dict[str, str], value: Value, t0: int) -> list[str]:
    ls = _labels(labels)
    return [f"{name}{{{ls}}} {value(k) if callable(value) else value} {t0 + STEP * k}" for k in range(N)]


def _counter(name: str, labels: dict[str, str], per_s: float, t0: int) -> list[str]:
    return _gauge(name, labels, lambda k: 1000 + per_s * STEP * k, t0)


def _histogram(name: str, labels: dict[str, str], per_sample: dict[float, int], per_sample_sum: float, t0: int, scale: float = 1.0) -> list[str]:
    """Cumulative ``_bucket``/``_sum``/``_count`` lines; ``scale`` multiplies bucket bounds and sums (ms: 1000)."""
    ls = _labels(labels)
    lines = []
    for le in (*BUCKETS, float("inf")):
        inc = sum(c for ub, c in per_sample.items() if ub <= le)
        le_s = "+Inf" if le == float("inf") else repr(round(le * scale, 6))
        lines += [f'{name}_bucket{{{ls},le="{le_s}"}} {k * inc} {t0 + STEP * k}' for k in range(N)]
    total = sum(per_sample.values())
    lines += [f"{name}_sum{{{ls}}} {k * per_sample_sum * scale:.6f} {t0 + STEP * k}" for k in range(N)]
    lines += [f"{name}_count{{{ls}}} {k * total} {t0 + STEP * k}" for k in range(N)]
    return lines


def quantile(q: float, per_sample: dict[float, int]) -> float:
    """histogram_quantile's linear interpolation inside the bucket holding rank q*total."""
    total = sum(per_sample.values())
    rank, below, lower = q * total, 0, 0.0
    for ub in BUCKETS:
        n = per_sample.get(ub, 0)
        if below + n >= rank and n:
            return lower + (ub - lower) * (rank - below) / n
        below, lower = below + n, ub
    raise AssertionError("quantile outside the buckets")


def _dev(host: str, gpu: str) -> dict[str, str]:
    return {"gpu": gpu, "UUID": f"GPU-{host}-{gpu}", "device": f"nvidia{gpu}", "modelName": "NVIDIA A100-SXM4-80GB", "Hostname": host}


def openmetrics(t0: int) -> str:
    L: list[str] = []
    # ray-worker-1: vLLM >= 0.11 (v1 names, two engines, model_name), the deprecated TPOT histogram beside the ITL one
    for e in ("0", "1"):
        lab = {"namespace": "llm", "pod": "ray-worker-1", "model_name": "m", "engine": e}
        L += _gauge("vllm:num_requests_running", lab, 3, t0)
        L += _gauge("vllm:kv_cache_usage_perc", lab, 0.25, t0)
        L += _histogram("vllm:inter_token_latency_seconds", lab, ITL, ITL_SUM, t0)
        L += _histogram("vllm:time_per_output_token_seconds", lab, {0.1: 10}, 10 * 0.09, t0)
    # ray-worker-2: Ray Serve LLM with ':' sanitised to '_' (no model_name)
    lab = {"namespace": "llm", "pod": "ray-worker-2", "ReplicaId": "r2"}
    L += _gauge("ray_vllm_kv_cache_usage_perc", lab, 0.5, t0)
    L += _gauge("ray_vllm_num_requests_waiting", lab, 7, t0)
    L += _histogram("ray_vllm_inter_token_latency_seconds", lab, ITL, ITL_SUM, t0)
    L += _counter("ray_vllm_prompt_tokens_total", lab, 20.0, t0)
    # ray-worker-3: escaped vllm_ names; only the per-request TPOT histogram (a different signal from the ITL)
    lab = {"namespace": "llm", "pod": "ray-worker-3", "model_name": "m"}
    L += _gauge("vllm_kv_cache_usage_perc", lab, 0.75, t0)
    L += _histogram("vllm:request_time_per_output_token_seconds", lab, ITL, ITL_SUM, t0)
    # cAdvisor: current kubelets (pod, container) for workers 1-3
    for w in ("ray-worker-1", "ray-worker-2", "ray-worker-3"):
        L += _gauge("container_memory_working_set_bytes", {"namespace": "llm", "pod": w, "container": "vllm"}, 2e9, t0)
    # ray-worker-4: a kubelet < 1.16 (pod_name, container_name) and a kubernetes-pods scrape job (kubernetes_pod_name)
    old = {"namespace": "llm", "pod_name": "ray-worker-4", "container_name": "vllm"}
    L += _counter("container_cpu_usage_seconds_total", old, 1.5, t0)
    L += _gauge("container_memory_working_set_bytes", old, 3e9, t0)
    L += _gauge("vllm:num_requests_running", {"kubernetes_namespace": "llm", "kubernetes_pod_name": "ray-worker-4"}, 5, t0)
    # DCGM: with pod labels (worker 1), renamed exported_pod (worker 2, Prometheus kept the exporter's own pod label),
    # dcgm-exporter 1.x names and labels (worker 3), GR_ENGINE_ACTIVE only (worker 4, a MIG slice)
    k8s = {"pod": "ray-worker-1", "namespace": "llm", "container": "vllm"}
    L += _gauge("DCGM_FI_DEV_GPU_UTIL", _dev("n1", "0") | k8s, 80, t0)
    L += _gauge("DCGM_FI_DEV_POWER_USAGE", _dev("n1", "0") | k8s, 250.5, t0)
    L += _gauge("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", _dev("n1", "0") | k8s, 4, t0)
    exp = {"pod": "dcgm-exporter-7f9c", "namespace": "gpu-operator", "exported_pod": "ray-worker-2", "exported_namespace": "llm"}
    L += _gauge("DCGM_FI_DEV_GPU_UTIL", _dev("n2", "0") | exp, 60, t0)
    L += _gauge("DCGM_FI_DEV_POWER_USAGE", _dev("n2", "0") | exp, 200, t0)
    L += _gauge("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", _dev("n2", "0") | exp, 0, t0)
    v1x = {"pod_name": "ray-worker-3", "pod_namespace": "llm", "container_name": "vllm"}
    L += _gauge("dcgm_gpu_utilization", _dev("n3", "0") | v1x, 40, t0)
    L += _gauge("dcgm_power_usage", _dev("n3", "0") | v1x, 100, t0)
    mig = {"pod": "ray-worker-4", "namespace": "llm", "GPU_I_PROFILE": "3g.40gb", "GPU_I_ID": "1"}
    L += _gauge("DCGM_FI_PROF_GR_ENGINE_ACTIVE", _dev("n4", "0") | mig, 0.35, t0)
    # mesh: Istio >= 1.5 milliseconds (the head), an older Mixer-era seconds histogram (worker 1)
    L += _histogram("istio_request_duration_milliseconds", {"pod": "ray-head", "reporter": "destination"}, REQ, REQ_SUM, t0, scale=1000)
    L += _histogram("istio_request_duration_seconds", {"namespace": "llm", "pod": "ray-worker-1", "reporter": "destination"}, REQ, REQ_SUM, t0)
    # gateways: ingress-nginx (status label) and nginx-prometheus-exporter (stub_status: no status, no latency)
    ing = {"pod": "ingress-nginx", "ingress": "llm", "status": "200"}
    L += _histogram("nginx_ingress_controller_request_duration_seconds", ing, REQ, REQ_SUM, t0)
    L += _counter("nginx_ingress_controller_requests", ing, 4.0, t0)
    L += _counter("nginx_ingress_controller_requests", ing | {"status": "503"}, 0.5, t0)
    oss = {"pod": "nginx-oss"}
    L += _counter("nginx_http_requests_total", oss, 6.0, t0)
    L += _gauge("nginx_connections_active", oss, 12, t0)
    for gw in ("ingress-nginx", "nginx-oss"):
        L += _gauge("container_memory_working_set_bytes", {"namespace": "llm", "pod": gw, "container": "nginx"}, 1e8, t0)
    # node-exporter >= 0.16 on n1 named by instance = node name (kube-prometheus); < 0.16 (node_cpu) on n4 named by
    # the exporter's own namespace/pod (a ServiceMonitor of the Prometheus Operator; instance is host:port there)
    by_node = {
        "n1": ("node_cpu_seconds_total", {"instance": "n1", "job": "node-exporter"}, NODE_BUSY["n1"]),
        "n4": ("node_cpu", {"instance": "10.0.0.4:9100", "job": "node-exporter", "namespace": "monitoring", "pod": "node-exporter-n4"}, NODE_BUSY["n4"]),
    }
    for name, lab, busy in by_node.values():
        for cpu in ("0", "1"):
            L += _counter(name, lab | {"cpu": cpu, "mode": "user"}, busy / 2, t0)
            L += _counter(name, lab | {"cpu": cpu, "mode": "idle"}, 1 - busy / 2, t0)
        L += _counter("node_netstat_Tcp_RetransSegs", lab, 3.0, t0)
    ksm = {"instance": "10.0.0.9:8080", "job": "kube-state-metrics"}
    for ns, pod, node in (("llm", "ray-worker-1", "n1"), ("llm", "ray-worker-4", "n4"), ("monitoring", "node-exporter-n4", "n4")):
        L += _gauge("kube_pod_info", ksm | {"namespace": ns, "pod": pod, "node": node}, 1, t0)
    return "\n".join(L) + "\n# EOF\n"


@dataclass
class Backfilled:
    url: str
    start: float
    end: float


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    if not (os.path.exists("/usr/bin/prometheus") and shutil.which("promtool")):
        pytest.skip("needs /usr/bin/prometheus and promtool (Debian package prometheus)")
    data = tmp_path_factory.mktemp("prom")
    t0 = (int(time.time()) // 60) * 60 - 3600
    src = data / "series.om"
    src.write_text(openmetrics(t0))
    done = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(src), str(data / "tsdb")], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with PrometheusServer({}, data_dir=data) as prom:
        yield Backfilled(prom.url, float(t0 + 300), float(t0 + 360))


COMPONENTS = {f"ray-worker-{i}": f'namespace="llm",pod="ray-worker-{i}"' for i in range(1, 5)}
COMPONENTS |= {"ray-head": 'pod="ray-head"', "ingressnginx": 'pod="ingress-nginx"', "nginxoss": 'pod="nginx-oss"'}
ROLES = {"ingressnginx": ["gateway"], "nginxoss": ["gateway"]}


@pytest.fixture(scope="module")
def collected(backfilled: Backfilled) -> MetricsResult:
    return collect_metrics(
        backfilled.url, COMPONENTS, backfilled.start, backfilled.end, step_s=QSTEP, metric_set="extended", rate_window_s=60, roles=ROLES
    )
