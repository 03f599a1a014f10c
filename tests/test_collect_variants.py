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

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from _promhelpers import Backfilled, backfilled_prometheus, histogram_quantile_ref
from llmrca.collect import collect_metrics, default_aliases
from llmrca.collect.metrics import MetricsResult, candidates, metric_defs, query_forms
from llmrca.telemetry.aliases import (
    EQUIVALENTS,
    POD_LABELS,
    POD_REGEX_MATCHER,
    RENAMES,
    canonical,
    pod_labels_held,
    selector_schemes,
)

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
    return histogram_quantile_ref(q, per_sample, BUCKETS)


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
    # cAdvisor of current kubelets (pod, container): each container and the pod's cgroup (container="", image="": their sum)
    for w in ("ray-worker-1", "ray-worker-2", "ray-worker-3"):
        pod = {"namespace": "llm", "pod": w}
        for ctr, image, cores, mem in (("vllm", "vllm/vllm-openai:v0.11.0", 1.0, 1.8e9), ("istio-proxy", "istio/proxyv2:1.22", 0.2, 0.2e9)):
            L += _counter("container_cpu_usage_seconds_total", pod | {"container": ctr, "image": image}, cores, t0)
            L += _gauge("container_memory_working_set_bytes", pod | {"container": ctr, "image": image}, mem, t0)
        L += _counter("container_cpu_usage_seconds_total", pod | {"container": "", "image": ""}, 1.2, t0)
        L += _gauge("container_memory_working_set_bytes", pod | {"container": "", "image": ""}, 2e9, t0)
    # ray-worker-4: a kubelet < 1.16 (pod_name, container_name) and a kubernetes-pods scrape job (kubernetes_pod_name)
    old = {"namespace": "llm", "pod_name": "ray-worker-4", "container_name": "vllm"}
    L += _counter("container_cpu_usage_seconds_total", old, 1.5, t0)
    L += _gauge("container_memory_working_set_bytes", old, 3e9, t0)  # no image label: one series per container
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
    # the head's sidecar also reports its own calls out (reporter="source"), far slower: not requests into the head
    L += _histogram("istio_request_duration_milliseconds", {"pod": "ray-head", "reporter": "source"}, {5.0: 4}, 4 * 4.0, t0, scale=1000)
    L += _histogram("istio_request_duration_seconds", {"namespace": "llm", "pod": "ray-worker-1", "reporter": "destination"}, REQ, REQ_SUM, t0)
    # gateways: ingress-nginx (status label) and nginx-prometheus-exporter (stub_status: no status, no latency)
    ing = {"pod": "ingress-nginx", "ingress": "llm", "status": "200"}
    L += _histogram("nginx_ingress_controller_request_duration_seconds", ing, REQ, REQ_SUM, t0)
    L += _counter("nginx_ingress_controller_requests", ing, 4.0, t0)
    L += _counter("nginx_ingress_controller_requests", ing | {"status": "503"}, 0.5, t0)
    oss = {"pod": "nginx-oss"}
    L += _counter("nginx_http_requests_total", oss, 6.0, t0)
    L += _gauge("nginx_connections_active", oss, 12, t0)
    L += _counter("nginx_ingress_nginx_http_requests_total", {"pod": "nginx-inc", "class": "nginx"}, 2.5, t0)  # nginxinc's controller
    for gw in ("ingress-nginx", "nginx-oss", "nginx-inc"):
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
    L += _gauge("DCGM_FI_DEV_GPU_UTIL", _dev("n5", "0"), 70, t0)  # no pod label; joined through kube_pod_info
    L += _gauge("kube_pod_info", {"namespace": "monitoring", "pod": "ksm-0", "exported_namespace": "llm", "exported_pod": "ray-worker-5", "node": "n5"}, 1, t0)
    ksm = {"instance": "10.0.0.9:8080", "job": "kube-state-metrics"}
    for ns, pod, node in (("llm", "ray-worker-1", "n1"), ("llm", "ray-worker-4", "n4"), ("monitoring", "node-exporter-n4", "n4")):
        L += _gauge("kube_pod_info", ksm | {"namespace": ns, "pod": pod, "node": node}, 1, t0)
    return "\n".join(L) + "\n# EOF\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from backfilled_prometheus(tmp_path_factory, openmetrics)


COMPONENTS = {f"ray-worker-{i}": f'namespace="llm",pod="ray-worker-{i}"' for i in range(1, 5)}
COMPONENTS |= {"ray-head": 'pod="ray-head"', "ingressnginx": 'pod="ingress-nginx"', "nginxoss": 'pod="nginx-oss"', "nginxinc": 'pod="nginx-inc"'}
ROLES = {"ingressnginx": ["gateway"], "nginxoss": ["gateway"], "nginxinc": ["gateway"]}


@pytest.fixture(scope="module")
def collected(backfilled: Backfilled) -> MetricsResult:
    return collect_metrics(
        backfilled.url, COMPONENTS, backfilled.start, backfilled.end, step_s=QSTEP, metric_set="extended", rate_window_s=60, roles=ROLES
    )


def _unit(metric: str) -> str:
    return next(m.unit for m in metric_defs("extended") if m.name == metric)


@pytest.mark.system
def test_vllm_names_of_other_versions_and_prefixes(collected: MetricsResult) -> None:
    df, q, maps = collected.frame, collected.queries, collected.mappings
    assert len(df) == 5
    # >= 0.11: the v1 histogram is read, not the deprecated TPOT one beside it (written with other values); engines summed
    np.testing.assert_allclose(df["ray-worker-1_vllm:inter_token_latency_seconds:p90"], quantile(0.9, ITL))
    assert quantile(0.9, ITL) == pytest.approx(0.0475) and quantile(0.9, {0.1: 10}) != pytest.approx(0.0475)
    np.testing.assert_allclose(df["ray-worker-1_vllm:inter_token_latency_seconds:mean"], ITL_SUM / 10)
    np.testing.assert_allclose(df["ray-worker-1_vllm:num_requests_running"], 2 * 3)
    np.testing.assert_allclose(df["ray-worker-1_vllm:kv_cache_usage_perc"], 0.25)
    assert "ray-worker-1_vllm:kv_cache_usage_perc" not in maps  # the catalogue's own names need no mapping
    # Ray Serve with ':' sanitised to '_', no model_name
    np.testing.assert_allclose(df["ray-worker-2_vllm:kv_cache_usage_perc"], 0.5)
    np.testing.assert_allclose(df["ray-worker-2_vllm:num_requests_waiting"], 7)
    np.testing.assert_allclose(df["ray-worker-2_vllm:prompt_tokens_total:rate"], 20.0)
    np.testing.assert_allclose(df["ray-worker-2_vllm:inter_token_latency_seconds:p50"], quantile(0.5, ITL))
    assert maps["ray-worker-2_vllm:inter_token_latency_seconds:p50"]["series"] == {
        "vllm:inter_token_latency_seconds": "ray_vllm_inter_token_latency_seconds"
    }
    assert "ray_vllm_prompt_tokens_total{" in q["ray-worker-2_vllm:prompt_tokens_total:rate"]
    assert _unit("vllm:inter_token_latency_seconds:p50") == "s" and _unit("vllm:kv_cache_usage_perc") == "fraction"
    # escaped vllm_ names; the per-request TPOT histogram is another signal: no ITL column, and the message says what was looked for
    np.testing.assert_allclose(df["ray-worker-3_vllm:kv_cache_usage_perc"], 0.75)
    assert not any(c.startswith("ray-worker-3_vllm:inter_token") for c in df.columns)
    why = collected.dropped["ray-worker-3_vllm:inter_token_latency_seconds:p90"]
    assert why.startswith("inter-token latency p90 (s): no series for any of:")
    assert "vllm:inter_token_latency_seconds_bucket{" in why  # the query asked
    names = set(why.split("Prometheus holds no series named ")[1].removesuffix(" in the window").split(", "))
    assert {"ray_vllm:time_per_output_token_seconds_bucket", "vllm_inter_token_latency_seconds_bucket"} <= names  # not held
    assert "vllm:time_per_output_token_seconds_bucket" not in names  # held (worker 1), so asked for worker 3: in the queries
    assert "vllm:time_per_output_token_seconds_bucket{namespace=\"llm\",pod=\"ray-worker-3\"}" in why
    assert "request_time_per_output_token" not in why
    # the kubernetes-pods scrape job's kubernetes_pod_name / kubernetes_namespace
    np.testing.assert_allclose(df["ray-worker-4_vllm:num_requests_running"], 5)
    assert maps["ray-worker-4_vllm:num_requests_running"]["labels"] == {"namespace": "kubernetes_namespace", "pod": "kubernetes_pod_name"}
    assert maps["ray-worker-4_vllm:num_requests_running"]["label_scheme"] == "kubernetes-pods"


@pytest.mark.system
def test_dcgm_labels_names_and_mig(collected: MetricsResult) -> None:
    df, q, maps = collected.frame, collected.queries, collected.mappings
    # pod labels from dcgm-exporter's Kubernetes mapping: the component's selector as is
    np.testing.assert_allclose(df["ray-worker-1_gpu"], 80.0)
    np.testing.assert_allclose(df["ray-worker-1_DCGM_FI_DEV_POWER_USAGE"], 250.5)
    np.testing.assert_allclose(df["ray-worker-1_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"], 4)
    assert "ray-worker-1_gpu" not in maps
    # exported_pod (the exporter's own pod holds the pod label): read through the renamed labels, the renamed clock field too
    np.testing.assert_allclose(df["ray-worker-2_gpu"], 60.0)
    np.testing.assert_allclose(df["ray-worker-2_DCGM_FI_DEV_POWER_USAGE"], 200.0)
    np.testing.assert_allclose(df["ray-worker-2_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"], 0)
    assert q["ray-worker-2_gpu"] == 'avg(DCGM_FI_DEV_GPU_UTIL{exported_namespace="llm",exported_pod="ray-worker-2"})'
    m2 = maps["ray-worker-2_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"]
    assert m2["labels"] == {"namespace": "exported_namespace", "pod": "exported_pod"} and m2["label_scheme"] == "exported"
    assert m2["series"] == {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"} and m2["factor"] == 1.0
    # dcgm-exporter 1.x: old names and old pod labels
    np.testing.assert_allclose(df["ray-worker-3_gpu"], 40.0)
    np.testing.assert_allclose(df["ray-worker-3_DCGM_FI_DEV_POWER_USAGE"], 100.0)
    assert maps["ray-worker-3_gpu"]["series"] == {"DCGM_FI_DEV_GPU_UTIL": "dcgm_gpu_utilization"}
    assert maps["ray-worker-3_gpu"]["labels"] == {"namespace": "pod_namespace", "pod": "pod_name"}
    # a MIG slice reports only DCGM_FI_PROF_GR_ENGINE_ACTIVE (0..1): the gpu column in % (x100), recorded with its source
    assert _unit("gpu") == "%"
    np.testing.assert_allclose(df["ray-worker-4_gpu"], 35.0)
    m4 = maps["ray-worker-4_gpu"]
    assert m4["factor"] == 100.0 and m4["series"] == {"DCGM_FI_DEV_GPU_UTIL": "DCGM_FI_PROF_GR_ENGINE_ACTIVE"} and "MIG" in m4["sources"][0]
    assert q["ray-worker-4_gpu"].endswith(") * 100")
    # no power series for the MIG slice: dropped with the names looked for, never a column of zeros
    assert "ray-worker-4_DCGM_FI_DEV_POWER_USAGE" not in df
    assert "DCGM_FI_DEV_POWER_USAGE" in collected.dropped["ray-worker-4_DCGM_FI_DEV_POWER_USAGE"]
    # only the head has no GPU series at all; its message lists every DCGM name held and the device labels
    assert set(collected.gpu_unmapped) == {"ray-head"}
    msg = collected.gpu_unmapped["ray-head"]
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in msg and "dcgm_gpu_utilization" in msg
    assert collected.dcgm_series["pod_labels"] == ["exported_pod", "pod_name", "pod"]  # the exporter's own pod label last
    assert "exported, kubelet<1.16, dcgm-exporter-1.x, kubernetes-pods" in msg and 'exported_pod="<pod>"' in msg


@pytest.mark.system
def test_cadvisor_of_old_kubelets(collected: MetricsResult) -> None:
    df, maps = collected.frame, collected.mappings
    np.testing.assert_allclose(df["ray-worker-4_cpu"], 1.5)
    np.testing.assert_allclose(df["ray-worker-4_mem"], 3e9)
    assert _unit("cpu") == "cores" and _unit("mem") == "bytes"
    assert maps["ray-worker-4_mem"] == {"series": {}, "labels": {"pod": "pod_name"}, "label_scheme": "kubelet<1.16", "factor": 1.0, "sources": []}
    # current kubelets: the containers' series, not the pod's cgroup on top of them (2.4 cores, 4e9 bytes)
    np.testing.assert_allclose(df["ray-worker-1_cpu"], 1.2)
    np.testing.assert_allclose(df["ray-worker-1_mem"], 2e9)
    assert 'image!=""' in collected.queries["ray-worker-1_cpu"] and "ray-worker-1_mem" not in maps
    assert "ray-worker-4" not in collected.missing_components
    # no network series anywhere: said so by name, not tried label by label
    assert collected.dropped["ray-worker-4_net-rx"] == "bytes received (B/s): Prometheus holds no series named container_network_receive_bytes_total in the window"


@pytest.mark.system
def test_mesh_latency_in_seconds_or_milliseconds(collected: MetricsResult) -> None:
    df, q, maps = collected.frame, collected.queries, collected.mappings
    p50, p90, mean = quantile(0.5, REQ), quantile(0.9, REQ), REQ_SUM / 4
    assert (p50, p90, mean) == pytest.approx((0.75, 0.95, 0.8))
    # milliseconds (Istio >= 1.5) and seconds (Mixer) give the same columns in s; the head's reporter="source" series
    # (its calls out, 4 s each) are left out: summed in, they moved the head's mean to 2.4 s and its p90 to 4.5 s
    for comp in ("ray-head", "ray-worker-1"):
        np.testing.assert_allclose(df[f"{comp}_latency-50"], p50)
        np.testing.assert_allclose(df[f"{comp}_latency-90"], p90)
        np.testing.assert_allclose(df[f"{comp}_latency"], mean)
    assert _unit("latency-50") == "s" and "ray-head_latency-50" not in maps
    assert "istio_request_duration_seconds_bucket{" in q["ray-worker-1_latency-90"] and q["ray-worker-1_latency-90"].endswith(") * 1000")
    assert maps["ray-worker-1_latency"]["factor"] == 1000.0
    assert maps["ray-worker-1_latency"]["series"] == {"istio_request_duration_milliseconds": "istio_request_duration_seconds"}


@pytest.mark.system
def test_gateways_ingress_nginx_and_nginx_exporter(collected: MetricsResult) -> None:
    df, maps, dropped = collected.frame, collected.mappings, collected.dropped
    np.testing.assert_allclose(df["ingressnginx_nginx_ingress_controller_request_duration_seconds:p90"], quantile(0.9, REQ))
    np.testing.assert_allclose(df["ingressnginx_nginx_ingress_controller_requests:rate"], 4.5)
    np.testing.assert_allclose(df["ingressnginx_nginx_ingress_controller_requests_5xx:rate"], 0.5)
    # nginx-prometheus-exporter: requests/s from nginx_http_requests_total; no latency, no status -> no 5xx column
    np.testing.assert_allclose(df["nginxoss_nginx_ingress_controller_requests:rate"], 6.0)
    assert maps["nginxoss_nginx_ingress_controller_requests:rate"]["series"] == {"nginx_ingress_controller_requests": "nginx_http_requests_total"}
    assert "nginxoss_nginx_ingress_controller_requests_5xx:rate" not in df
    why = dropped["nginxoss_nginx_ingress_controller_requests_5xx:rate"]
    assert why.startswith("gateway 5xx responses/s (1/s): no series") and "nginx_http_requests_total was not tried: it has no status label" in why
    np.testing.assert_allclose(df["nginxinc_nginx_ingress_controller_requests:rate"], 2.5)
    assert "nginx_ingress_nginx_http_requests_total{" in collected.queries["nginxinc_nginx_ingress_controller_requests:rate"]
    assert "nginxinc_nginx_ingress_controller_requests_5xx:rate" not in df
    assert "nginxoss_nginx_ingress_controller_request_duration_seconds:p50" not in df
    assert "nginx_ingress_controller_request_duration_seconds_bucket{" in dropped["nginxoss_nginx_ingress_controller_request_duration_seconds:p50"]


@pytest.mark.system
def test_node_exporter_names_and_joins(collected: MetricsResult) -> None:
    df, q = collected.frame, collected.queries
    np.testing.assert_allclose(df["ray-worker-1_node_cpu_seconds_total:rate"], NODE_BUSY["n1"])  # instance = node name
    np.testing.assert_allclose(df["ray-worker-4_node_cpu_seconds_total:rate"], NODE_BUSY["n4"])  # exporter's pod -> node; node_cpu
    assert "node_cpu{" in q["ray-worker-4_node_cpu_seconds_total:rate"] and "node_cpu_seconds_total" not in q["ray-worker-4_node_cpu_seconds_total:rate"]
    assert collected.mappings["ray-worker-4_node_cpu_seconds_total:rate"]["series"] == {"node_cpu_seconds_total": "node_cpu"}
    for w in ("ray-worker-1", "ray-worker-4"):
        np.testing.assert_allclose(df[f"{w}_node_netstat_Tcp_RetransSegs:rate"], 3.0)
    assert "ray-worker-2_node_cpu_seconds_total:rate" not in df  # no kube_pod_info for it


@pytest.mark.system
def test_mappings_are_recorded_in_the_case(backfilled: Backfilled, tmp_path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.dataset.io import read_case

    comps = tmp_path / "components.yaml"
    comps.write_text("ray-worker-2: 'namespace=\"llm\",pod=\"ray-worker-2\"'\nray-worker-4: 'namespace=\"llm\",pod=\"ray-worker-4\"'\n")
    args = ["collect", backfilled.url, "--components", str(comps), "--start", str(backfilled.start), "--end", str(backfilled.end)]
    args += ["--inject", str(backfilled.start + 30), "--step", "15", "--scrape-interval", "15", "--out", str(tmp_path / "c")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "columns read from other names (case.json collection.mappings)" in res.output
    assert "pod -> exported_pod" in res.output and "DCGM_FI_DEV_GPU_UTIL -> DCGM_FI_PROF_GR_ENGINE_ACTIVE" in res.output
    case = read_case(tmp_path / "c")
    np.testing.assert_allclose(case.metrics["ray-worker-2_gpu"], 60.0)
    np.testing.assert_allclose(case.metrics["ray-worker-4_gpu"], 35.0)
    maps = case.meta["collection"]["mappings"]
    assert maps["ray-worker-2_gpu"]["labels"]["pod"] == "exported_pod" and maps["ray-worker-4_gpu"]["factor"] == 100.0
    assert maps["ray-worker-4_cpu"]["label_scheme"] == "kubelet<1.16"
    # a selector written in another scheme's labels finds the series under the pod's own (it was tried only as given)
    comps.write_text("ray-worker-4: 'kubernetes_namespace=\"llm\",kubernetes_pod_name=\"ray-worker-4\"'\n")
    res = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "k")])
    assert res.exit_code == 0, res.output
    again = read_case(tmp_path / "k")
    np.testing.assert_allclose(again.metrics["ray-worker-4_cpu"], case.metrics["ray-worker-4_cpu"])
    assert again.meta["collection"]["mappings"]["ray-worker-4_cpu"]["label_scheme"] == "kubelet<1.16"


def test_selector_schemes() -> None:
    assert selector_schemes('job="gateway"') == [("as given", 'job="gateway"', {})]
    got = {name: sel for name, sel, _ in selector_schemes('namespace="llm",pod=~"w-1|w-2",container!=""')}
    assert got == {
        "as given": 'namespace="llm",pod=~"w-1|w-2",container!=""',
        "exported": 'exported_namespace="llm",exported_pod=~"w-1|w-2",exported_container!=""',
        "kubelet<1.16": 'namespace="llm",pod_name=~"w-1|w-2",container_name!=""',
        "dcgm-exporter-1.x": 'pod_namespace="llm",pod_name=~"w-1|w-2",container_name!=""',
        "kubernetes-pods": 'kubernetes_namespace="llm",kubernetes_pod_name=~"w-1|w-2",container!=""',
    }
    # a label value that looks like a label name is not renamed
    assert selector_schemes('pod="namespace"')[1][1] == 'exported_pod="namespace"'
    # a selector written in another scheme's labels is tried in the standard ones and every other scheme
    got = {name: sel for name, sel, _ in selector_schemes('kubernetes_namespace="llm",kubernetes_pod_name="w1"')}
    assert got == {
        "as given": 'kubernetes_namespace="llm",kubernetes_pod_name="w1"',
        "standard": 'namespace="llm",pod="w1"',
        "exported": 'exported_namespace="llm",exported_pod="w1"',
        "kubelet<1.16": 'namespace="llm",pod_name="w1"',
        "dcgm-exporter-1.x": 'pod_namespace="llm",pod_name="w1"',
    }
    assert selector_schemes('pod_name="w1"')[1] == ("standard", 'pod="w1"', {"pod_name": "pod"})


def test_pod_labels_of_every_scheme_and_the_exported_pod_first() -> None:
    # beside exported_pod, pod names the exporter's own pod (Prometheus renamed the target's): it comes last
    assert pod_labels_held({"pod", "exported_pod", "gpu", "UUID"}) == ["exported_pod", "pod"]
    assert pod_labels_held(["pod", "pod_name", "exported_pod"]) == ["exported_pod", "pod_name", "pod"]
    assert pod_labels_held(["kubernetes_pod_name", "instance"]) == ["kubernetes_pod_name"]
    assert pod_labels_held(["pod_name", "pod"]) == ["pod", "pod_name"]
    assert pod_labels_held(["job", "instance"]) == []
    # a regex matcher on any scheme's pod label, not on a label that only ends in one
    for label in ("pod", "pod_name", "kubernetes_pod_name", "exported_pod"):
        m = POD_REGEX_MATCHER.search(f'namespace="llm",{label}=~"vllm-.*"')
        assert m is not None and m.group(1) == label
    assert POD_REGEX_MATCHER.search('mypod=~"x"') is None and POD_REGEX_MATCHER.search('pod="x"') is None
    # series naming (llmrca.names, which imports nothing of llmrca) writes the same list out, less exported_pod
    from llmrca import names

    assert set(names._POD_LABELS) == set(POD_LABELS) - {"exported_pod"} and set(names._POD_LABELS) <= set(names.COMPONENT_LABELS)


def test_query_forms_scale_and_skip_what_a_series_lacks() -> None:
    defs = {m.name: m for m in metric_defs("extended")}
    forms = query_forms(defs["latency-90"], default_aliases())
    assert [f.factor for f in forms] == [1.0, 1000.0]
    assert forms[1].template == "(" + defs["latency-90"].promql.replace("milliseconds", "seconds") + ") * 1000"
    assert [f.template for f in forms] == candidates(defs["latency-90"], default_aliases())
    five = query_forms(defs["nginx_ingress_controller_requests_5xx:rate"], default_aliases())
    assert len(five) == 1  # nginx_http_requests_total has no status label
    from llmrca.heal.watch import EXTRA_DEFS

    # watch's 5xx rate reads 0 while requests flow: never from a counter that cannot tell a 5xx
    watch_5xx = next(m for m in EXTRA_DEFS if m.name == "nginx_ingress_controller_requests_5xx:rate")
    assert [f.template for f in query_forms(watch_5xx, default_aliases())] == [watch_5xx.promql]
    assert any("nginx_http_requests_total" in f.template for f in query_forms(defs["nginx_ingress_controller_requests:rate"], default_aliases()))
    assert "DCGM_FI_PROF_GR_ENGINE_ACTIVE" in default_aliases()["DCGM_FI_DEV_GPU_UTIL"]
    assert canonical("node_cpu") == "node_cpu_seconds_total"
    # every equivalent is named once, and none is also a rename (a rename keeps the unit; an equivalent says its factor)
    names = [e.name for es in EQUIVALENTS.values() for e in es]
    assert len(names) == len(set(names)) and not set(names) & set(RENAMES)


def test_names_held_falls_back_when_prometheus_cannot_list_them() -> None:
    from llmrca.collect import PromClient
    from llmrca.collect.metrics import _names_held

    with PromClient("http://127.0.0.1:1", timeout_s=1) as c:
        assert _names_held(c, 0, 10) is None


@pytest.mark.system
def test_gpu_join_through_kube_pod_info_with_exported_labels(backfilled: Backfilled) -> None:
    # kube-state-metrics scraped without honor_labels: kube_pod_info{exported_namespace, exported_pod, node}
    res = collect_metrics(
        backfilled.url, {"ray-worker-5": 'namespace="llm",pod="ray-worker-5"'}, backfilled.start, backfilled.end,
        step_s=QSTEP, metric_set="basic", rate_window_s=60, gpu_join="kube_pod_info:node=Hostname",
    )
    assert res.gpu_selectors["ray-worker-5"]["selector"] == 'Hostname="n5"'
    np.testing.assert_allclose(res.frame["ray-worker-5_gpu"], 70.0)
    assert res.gpu_unmapped == {}


@pytest.mark.system
def test_audit_finds_pods_by_every_setups_pod_label(backfilled: Backfilled) -> None:
    from llmrca.heal.audit import audit

    rep = audit(backfilled.url, window_s=backfilled.end - backfilled.start, scrape_interval_s=STEP, end=backfilled.end)
    found = set(rep.present) | set(rep.missing_components)
    # ray-worker-4's series are named by pod_name (old kubelet) and kubernetes_pod_name only; ray-worker-2's DCGM
    # series by exported_pod; ray-worker-5 appears only as kube_pod_info's exported_pod
    assert {"ray-worker-1", "ray-worker-2", "ray-worker-3", "ray-worker-4", "ray-worker-5", "ray-head"} <= found
    assert {"cpu", "memory"} <= set(rep.present["ray-worker-4"]), rep.present["ray-worker-4"]


@pytest.mark.system
def test_roles_of_components_named_otherwise_are_read_from_their_series(backfilled: Backfilled) -> None:
    """Components not named as the paper's pods (vllm-0, gw) got no vLLM, Ray, GPU or gateway column, silently:
    those metrics were asked only for ray-head / ray-worker-N / nginx-gateway."""
    comps = {"vllm-0": 'namespace="llm",pod="ray-worker-1"', "old-kubelet-pod": 'pod="ray-worker-4"', "gw": 'pod="ingress-nginx"',
             "oss": 'pod="nginx-oss"', "nodeexp": 'pod="node-exporter-n4"'}
    res = collect_metrics(backfilled.url, comps, backfilled.start, backfilled.end, step_s=QSTEP, metric_set="extended", rate_window_s=60)
    # nginx-oss: nginx-prometheus-exporter's request counter; node-exporter's pod: no role
    assert res.roles_inferred == {"vllm-0": ["serving"], "old-kubelet-pod": ["serving"], "gw": ["gateway"], "oss": ["gateway"]}, res.roles_inferred
    cols = set(res.frame.columns)
    assert {"vllm-0_vllm:num_requests_running", "vllm-0_vllm:kv_cache_usage_perc", "vllm-0_gpu"} <= cols, sorted(cols)
    assert "old-kubelet-pod_vllm:num_requests_running" in cols  # found through kubernetes_pod_name
    assert "gw_nginx_ingress_controller_requests:rate" in cols
    assert not any(c.startswith(("nodeexp_vllm", "nodeexp_nginx")) for c in cols)
    assert res.report()["roles_inferred"]["gw"] == ["gateway"]
    from llmrca.heal.audit import audit

    rep = audit(backfilled.url, comps, window_s=backfilled.end - backfilled.start, scrape_interval_s=STEP, end=backfilled.end)
    assert {"vllm-0", "old-kubelet-pod"} <= set(rep.replicas), rep.replicas


@pytest.mark.system
def test_watch_reads_the_roles_of_components_named_otherwise_once(backfilled: Backfilled, tmp_path) -> None:
    """watch on vllm-N / gateway components armed no vLLM rule and refused every action ('not a model replica')."""
    import json

    from llmrca.heal.actuators import GuardedActuator
    from llmrca.heal.watch import WatchConfig, Watcher
    from llmrca.testbed.actuator import Actuator

    class Nothing(Actuator):
        backend = "nothing"
        supported = frozenset({"restart"})

        def _do(self, action: str, target: str) -> dict:
            raise AssertionError("not asked")

    said: list[str] = []
    comps = {"vllm-0": 'namespace="llm",pod="ray-worker-1"', "gw": 'pod="ingress-nginx"', "nodeexp": 'pod="node-exporter-n4"'}
    w = Watcher(backfilled.url, comps, WatchConfig(signals="each:latency_mean,each:itl_mean"), GuardedActuator(Nothing()),
                out=tmp_path / "w", say=said.append)
    try:
        frame, _res, _logs = w._collect_window(backfilled.start + 60, backfilled.end)
        assert {"vllm-0_vllm:num_requests_running", "gw_nginx_ingress_controller_requests:rate"} <= set(frame.columns)
        w._query_signals(backfilled.start, backfilled.end)  # reuses the roles: said once
    finally:
        w.client.close()
    assert said == ["roles read from the components' series (their names give none): vllm-0 serving, gw gateway"], said
    assert w.roles == {"vllm-0": {"all", "serving"}, "gw": {"all", "gateway"}, "nodeexp": {"all"}}  # none asked again per tick
    logged = [json.loads(x) for x in (tmp_path / "w" / "audit.jsonl").read_text().splitlines()]
    assert [x["inferred"] for x in logged if x["step"] == "roles"] == [{"vllm-0": ["serving"], "gw": ["gateway"]}]


@pytest.mark.system
def test_watch_refuses_what_it_cannot_watch_before_it_starts(backfilled: Backfilled, tmp_path) -> None:
    """A URL without scheme, a server that is not Prometheus, a selector Prometheus refuses were retried for ever as
    'outages' (exit 0); --interval 0 was a ZeroDivisionError traceback; --duration -5 ran 0 evaluations; an
    --allow typo and --backend local --execute without a testbed were taken; a refused start deleted the previous
    run's audit.jsonl."""
    import http.server
    import subprocess
    import sys
    import threading

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    out = tmp_path / "w"
    out.mkdir()
    (out / "audit.jsonl").write_text('{"step": "start"}\n')
    comp = ["-c", 'w1=pod="ray-worker-1"']
    base = ["--run-dir", str(tmp_path / "none"), "--out", str(out)]
    cases = [
        (["127.0.0.1:9090", *comp], "is not an http(s) URL"),
        ([f"http://127.0.0.1:{srv.server_address[1]}", *comp], "does not answer as Prometheus"),
        ([backfilled.url, "-c", "w1=pod=ray-worker-1"], "Prometheus refuses the selector"),
        ([backfilled.url, *comp, "--interval", "0"], "--interval (interval_s) must be in (0, inf)"),
        ([backfilled.url, *comp, "--duration", "-5"], "--duration (duration_s) must be in [0, inf)"),
        ([backfilled.url, *comp, "--allow", "w2"], "--allow w2: not a watched component"),
        ([backfilled.url, *comp, "--backend", "local", "--execute"], "none runs in"),
        ([backfilled.url, *comp, "--log", "w1=/nonexistent/w1.log"], "--log: log file /nonexistent/w1.log does not exist"),
        ([backfilled.url, *comp, "--log", "w2=/etc/hostname"], "--log w2: not a watched component"),
        ([backfilled.url, *comp, "--gpu", "w1=Hostname=x"], "--gpu w1=Hostname=x: Prometheus refuses the selector"),
        ([backfilled.url, *comp, "--max-actions", "-1"], "--max-actions and --min-action-interval must be >= 0"),
    ]
    try:
        for args, said in cases:
            dur = [] if "--duration" in args else ["--duration", "1"]
            r = subprocess.run([sys.executable, "-m", "llmrca", "watch", *args, *base, *dur], capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and said in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
            assert (out / "audit.jsonl").read_text() == '{"step": "start"}\n', args
        # the series are an hour old: nothing to learn now, said (it printed only "0 of 0 rules armed")
        r = subprocess.run([sys.executable, "-m", "llmrca", "watch", backfilled.url, *comp, *base, "--duration", "2"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        said = " ".join((r.stdout + r.stderr).split())
        assert "warning: Prometheus holds no series of w1 now" in said and "warning: no rule could learn a baseline" in said, said
        assert "--scrape-interval" in said
        r = subprocess.run([sys.executable, "-m", "llmrca", "audit", backfilled.url, *comp, "--log", "w1=/nonexistent/w1.log"],
                           capture_output=True, text=True, timeout=60)  # audit showed '.' for it
        assert r.returncode == 2 and "does not exist" in r.stderr, r.stderr
        other = f"http://127.0.0.1:{srv.server_address[1]}"  # audit tells another server as watch does
        for url, said in [(other, "answered HTTP 501 with text/html, not the API's JSON"), (other + "/api/v1/", "give the base URL without '/api/v1'")]:
            r = subprocess.run([sys.executable, "-m", "llmrca", "audit", url, *comp], capture_output=True, text=True, timeout=60)
            flat = " ".join(r.stderr.split())
            assert r.returncode == 2 and "does not answer as Prometheus" in flat and said in flat, (url, r.stderr)
    finally:
        srv.shutdown()


@pytest.mark.system
def test_audit_maps_gpus_without_pod_labels_and_says_how(backfilled: Backfilled) -> None:
    """audit and watch told the user to pass --gpu-join, which they did not take, and advised adding DCGM counters
    that were there (unmapped, not missing)."""
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.heal.audit import audit, render

    comps = {"ray-worker-5": 'namespace="llm",pod="ray-worker-5"'}
    kw = {"window_s": backfilled.end - backfilled.start, "scrape_interval_s": STEP, "end": backfilled.end}
    rep = audit(backfilled.url, comps, **kw)
    gap = rep.faults["gpu"]["missing"][0]
    assert gap["fix"].startswith("map the GPUs to the components (--gpu COMPONENT=SELECTOR or --gpu-join"), gap
    assert "gpu utilisation" not in rep.present["ray-worker-5"]
    two = render(audit(backfilled.url, comps | {"ray-worker-6": 'pod="ray-worker-6"'}, **kw))  # the listing once, not per replica
    assert two.count("Prometheus holds DCGM_") == 1 and "ray-worker-6: no GPU series" in two and "as above" in two, two
    rep = audit(backfilled.url, comps, gpu_join="kube_pod_info:node=Hostname", **kw)
    assert "gpu utilisation" in rep.present["ray-worker-5"] and rep.gpu_unmapped == {}
    for cmd in ("audit", "watch"):  # the options exist and a malformed one is refused before Prometheus is asked
        r = CliRunner().invoke(app, [cmd, "http://127.0.0.1:9", "-c", 'ray-worker-5=pod="ray-worker-5"', "--gpu-join", "nonsense"])
        assert r.exit_code == 2 and "--gpu-join" in r.output and "No such option" not in r.output, (cmd, r.output)
    from llmrca.heal.watch import preflight

    said: list[str] = []  # watch checks the join's series up front (it was silent, and the GPU signals never armed)
    preflight(backfilled.url, comps, said.append, gpu_join="nosuch_series:node=Hostname")
    assert any("--gpu-join nosuch_series:node=Hostname: Prometheus holds no series nosuch_series now" in w for w in said), said


@pytest.mark.system
def test_audit_flags_components_not_scraped_lately(backfilled: Backfilled) -> None:
    """Every target down: audit still printed every signal present and exit 0 (the window still held old samples)."""
    from llmrca.heal.audit import audit, render

    comps = {"ray-worker-1": 'namespace="llm",pod="ray-worker-1"', "ray-head": 'pod="ray-head"'}
    fresh = audit(backfilled.url, comps, window_s=60, scrape_interval_s=STEP, end=backfilled.end)
    assert fresh.stale == {} and fresh.present["ray-worker-1"]
    last = backfilled.start - 300 + STEP * (N - 1)  # the newest sample written
    late = audit(backfilled.url, comps, window_s=600, scrape_interval_s=STEP, end=last + 120)
    assert late.stale == {"ray-worker-1": 120.0, "ray-head": 120.0}, late.stale
    assert late.present["ray-worker-1"] == {} and not late.minimum_ok
    assert "STALE: no sample lately from ray-worker-1 (120 s ago), ray-head (120 s ago)" in render(late)


@pytest.mark.system
def test_audit_of_one_namespace_and_of_many_components_reads(backfilled: Backfilled) -> None:
    """audit discovered every pod of every namespace, and printed a table 1124 characters wide with names cut to 9."""
    from llmrca.heal.audit import audit, render

    kw = {"window_s": backfilled.end - backfilled.start, "scrape_interval_s": STEP, "end": backfilled.end}
    rep = audit(backfilled.url, namespace="llm", **kw)
    # named by namespace, exported_namespace, pod_namespace (dcgm-exporter 1.x) or kubernetes_namespace
    assert set(rep.components) == {f"ray-worker-{i}" for i in range(1, 6)} | {"ingress-nginx", "nginx-oss", "nginx-inc"}, rep.components
    assert rep.components["ray-worker-1"] == 'namespace="llm",pod="ray-worker-1"'
    text = render(audit(backfilled.url, **kw))  # every pod of the Prometheus: one line per component
    per_comp = [ln for ln in text.splitlines() if ln.split(":")[0].split(" (")[0] in {"node-exporter-n4", "ray-worker-1", "ksm-0"}]
    assert len(per_comp) == 3 and max(map(len, per_comp)) < 300, per_comp  # no row wider than a screen or two
    few = render(audit(backfilled.url, {"ingress-nginx-controller": 'pod="ingress-nginx"', "ray-worker-1": 'pod="ray-worker-1"'}, **kw))
    assert "ingress-nginx-controller" in next(ln for ln in few.splitlines() if ln.startswith("signal")), few  # whole names
