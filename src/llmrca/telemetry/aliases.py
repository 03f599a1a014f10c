"""Other names of the catalogue's series: exporter versions and prefixes.

Used by :mod:`llmrca.collect` (alternative series to query) and by
:mod:`llmrca.telemetry.vocabulary` (column names that mean the same signal).

The tables are plain data, ``old name -> current name`` (``dict[str, str]``),
one per source below.  Names are *base* series names: a counter's ``_total``
and a histogram's ``_bucket`` / ``_sum`` / ``_count`` suffixes are added by
the exporter and kept when a name is swapped (``vllm:time_per_output_token_seconds_bucket``
-> ``vllm:inter_token_latency_seconds_bucket``).  The catalogue
(:mod:`llmrca.telemetry.catalogue`) may name a signal by its old or its new
name; :func:`same_signal` gives every name of the signal either way.

Units: every rename here keeps the value and the unit (the exporter reads the
same field under a new name).  Names whose signal has no counterpart in the
other version are listed apart (:data:`VLLM_V0_ONLY`), never mapped.
Another exporter's series of the same signal in another unit, or with fewer
labels, is an :class:`Equivalent` (:data:`EQUIVALENTS`: its factor to the
catalogue's unit and the labels it lacks).  Label names of the same
Kubernetes identity in other setups (``exported_pod``, ``pod_name``,
``kubernetes_pod_name``, ...) are in :data:`LABEL_SCHEMES`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: vLLM renames, old (v0 engine / vLLM <= 0.10) -> current (v1 engine).
#:
#: Sources: vLLM pull requests #18354 ("Deprecate metrics with gpu_ prefix for
#: non GPU specific metrics": ``gpu_cache_usage_perc`` -> ``kv_cache_usage_perc``,
#: ``gpu_prefix_cache_queries`` -> ``prefix_cache_queries``,
#: ``gpu_prefix_cache_hits`` -> ``prefix_cache_hits``; released in 0.9.2/0.10,
#: hidden in 0.11 by #24245, removed in 0.12 by #29330) and #24110
#: (``time_per_output_token_seconds`` renamed ``inter_token_latency_seconds``
#: in 0.11: the old histogram held the gap between consecutive tokens, which
#: the new name says).  The v1 design document (``docs/design/metrics.md``,
#: "v0 Metrics") lists the v0 names.
VLLM_RENAMES: dict[str, str] = {
    "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries": "vllm:prefix_cache_queries",
    "vllm:gpu_prefix_cache_hits": "vllm:prefix_cache_hits",
    "vllm:time_per_output_token_seconds": "vllm:inter_token_latency_seconds",
}

#: vLLM v0 series with no v1 counterpart (name -> why); deprecated in 0.8
#: (vLLM PR #14136) and hidden in 0.9 (PR #15458).  Not aliased: no v1 signal
#: means the same.  Collect them with an explicit query if needed.
VLLM_V0_ONLY: dict[str, str] = {
    "vllm:num_requests_swapped": "requests swapped to CPU (v0 swap preemption; v1 recomputes instead)",
    "vllm:cpu_cache_usage_perc": "CPU KV-cache usage, 0..1 (v0 swap space)",
    "vllm:gpu_prefix_cache_hit_rate": "prefix-cache hit rate gauge (v1: rate(prefix_cache_hits) / rate(prefix_cache_queries))",
    "vllm:cpu_prefix_cache_hit_rate": "CPU prefix-cache hit rate gauge (v0 swap space)",
    "vllm:time_in_queue_requests": "queue time histogram, duplicate of vllm:request_queue_time_seconds",
    "vllm:model_forward_time_milliseconds": "forward time histogram (only with detailed tracing)",
    "vllm:model_execute_time_milliseconds": "execute time histogram (only with detailed tracing)",
}

#: How vLLM's ``vllm:`` prefix is exposed elsewhere: exposed prefix -> ``vllm:``.
#:
#: ``vllm_``: prometheus-client >= 0.23 escapes ``:`` to ``_`` when Prometheus
#: scrapes with OpenMetrics (Prometheus >= 2.42 asks for it).  ``ray_vllm:`` /
#: ``ray_vllm_``: Ray Serve LLM re-exports the engine's metrics through Ray's
#: metrics agent with the ``ray_`` namespace prefix.
VLLM_PREFIXES: dict[str, str] = {
    "vllm_": "vllm:",
    "ray_vllm:": "vllm:",
    "ray_vllm_": "vllm:",
}

#: DCGM field renames, old -> current.
#:
#: Source: DCGM 3.3 ``dcgm_fields.h`` renamed field 112
#: ``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` to ``DCGM_FI_DEV_CLOCKS_EVENT_REASONS``
#: (same NVML clocks-event bitmask: 0x4 SW power cap, 0x20 SW thermal, ...);
#: dcgm-exporter names a series after the field given in its counters CSV, so
#: both names occur depending on the exporter's version and configuration.
DCGM_RENAMES: dict[str, str] = {
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": "DCGM_FI_DEV_CLOCKS_EVENT_REASONS",
}

#: dcgm-exporter 1.x names -> 2.x and later (the DCGM field name).
#:
#: Source: NVIDIA/dcgm-exporter ``etc/1.x-compatibility-metrics.csv`` (the
#: exporter's ``-m`` option with this file keeps the 1.x names; same fields,
#: same units).  1.x also named the Kubernetes labels ``pod_name`` /
#: ``pod_namespace`` / ``container_name`` instead of ``pod`` / ``namespace`` /
#: ``container`` (a selector matter, not a series name).
DCGM_1X_NAMES: dict[str, str] = {
    "dcgm_sm_clock": "DCGM_FI_DEV_SM_CLOCK",
    "dcgm_memory_clock": "DCGM_FI_DEV_MEM_CLOCK",
    "dcgm_memory_temp": "DCGM_FI_DEV_MEMORY_TEMP",
    "dcgm_gpu_temp": "DCGM_FI_DEV_GPU_TEMP",
    "dcgm_power_usage": "DCGM_FI_DEV_POWER_USAGE",
    "dcgm_total_energy_consumption": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "dcgm_pcie_tx_throughput": "DCGM_FI_DEV_PCIE_TX_THROUGHPUT",
    "dcgm_pcie_rx_throughput": "DCGM_FI_DEV_PCIE_RX_THROUGHPUT",
    "dcgm_pcie_replay_counter": "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
    "dcgm_gpu_utilization": "DCGM_FI_DEV_GPU_UTIL",
    "dcgm_mem_copy_utilization": "DCGM_FI_DEV_MEM_COPY_UTIL",
    "dcgm_enc_utilization": "DCGM_FI_DEV_ENC_UTIL",
    "dcgm_dec_utilization": "DCGM_FI_DEV_DEC_UTIL",
    "dcgm_xid_errors": "DCGM_FI_DEV_XID_ERRORS",
    "dcgm_fb_free": "DCGM_FI_DEV_FB_FREE",
    "dcgm_fb_used": "DCGM_FI_DEV_FB_USED",
    "dcgm_nvlink_bandwidth_total": "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL",
    "dcgm_fi_prof_gr_engine_active": "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
    "dcgm_fi_prof_pipe_tensor_active": "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
    "dcgm_fi_prof_dram_active": "DCGM_FI_PROF_DRAM_ACTIVE",
    "dcgm_fi_prof_pcie_tx_bytes": "DCGM_FI_PROF_PCIE_TX_BYTES",
    "dcgm_fi_prof_pcie_rx_bytes": "DCGM_FI_PROF_PCIE_RX_BYTES",
}

#: node-exporter renames, old -> current.
#:
#: Source: prometheus/node_exporter CHANGELOG 0.16.0 ("breaking changes": metric
#: names gained their unit, ``node_cpu`` -> ``node_cpu_seconds_total``; same
#: counter of CPU seconds per ``cpu`` and ``mode``).  The ``node_netstat_*``
#: names were not renamed.
NODE_EXPORTER_RENAMES: dict[str, str] = {
    "node_cpu": "node_cpu_seconds_total",
}

#: Every rename above in one table, old -> current.
#: Ray counters before Ray 2.10, old -> current.
#:
#: Source: Ray's ``ray.util.metrics.Counter`` docstring and its metrics agent
#: (``RAY_EXPORT_COUNTER_AS_GAUGE``, ray-project/ray#43795): before 2.10 a
#: counter was exported as a Prometheus *gauge* without the ``_total`` suffix
#: (same cumulative value); from 2.10 both are exported, the gauge only for
#: compatibility, and ``RAY_EXPORT_COUNTER_AS_GAUGE=0`` drops it.  A cluster on
#: Ray < 2.10 therefore has only the unsuffixed name; ``rate()`` reads it as it
#: reads the counter.  The counters the catalogue reads:
RAY_COUNTER_GAUGES: dict[str, str] = {
    name.removesuffix("_total"): name
    for name in ("ray_serve_num_router_requests_total", "ray_serve_deployment_error_counter_total", "ray_serve_deployment_replica_starts_total")
}

RENAMES: dict[str, str] = {**VLLM_RENAMES, **DCGM_RENAMES, **DCGM_1X_NAMES, **NODE_EXPORTER_RENAMES, **RAY_COUNTER_GAUGES}


@dataclass(frozen=True)
class Equivalent:
    """Another exporter's series for a catalogue series' signal, in another unit or with fewer labels.

    ``value in the catalogue's unit = factor x value of this series``.  The
    collector multiplies the whole query by ``factor``, which is exact for the
    catalogue's templates (each is linear in its series: a gauge's
    ``avg``/``sum``, a counter's ``rate``, a histogram's quantile -- its bucket
    bounds carry the unit -- or ``_sum / _count``).  ``lacks``: labels the
    series does not carry; a template that selects on one of them (the 5xx
    rate's ``status``) is not tried with it, so it never reads a 0 the series
    cannot know.  ``source``: where the names and units come from.
    """

    name: str
    factor: float
    lacks: tuple[str, ...]
    source: str


#: Catalogue series name -> other exporters' series of the same signal (tried after the renames).
EQUIVALENTS: dict[str, tuple[Equivalent, ...]] = {
    "istio_request_duration_milliseconds": (
        Equivalent(
            "istio_request_duration_seconds",
            1000.0,
            (),
            "Istio before 1.5 (Mixer telemetry) named the request duration histogram istio_request_duration_seconds "
            "(buckets in s); Istio >= 1.5 standard metrics name it istio_request_duration_milliseconds (ms)",
        ),
    ),
    "DCGM_FI_DEV_GPU_UTIL": (
        Equivalent(
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            100.0,
            (),
            "DCGM profiling field 1001, ratio (0..1) of time the graphics/compute engine was active: the finer "
            "measure of GPU utilisation and the one a MIG instance reports (DCGM_FI_DEV_GPU_UTIL is not supported "
            "on MIG); dcgm-exporter etc/default-counters.csv lists both",
        ),
    ),
    # other LLM servers' engine series of vLLM's signals (same unit: requests, 0..1, seconds)
    "vllm:num_requests_running": (
        Equivalent("sglang:num_running_reqs", 1.0, (), "SGLang's production metrics (docs 'Production Metrics', sglang/srt/metrics/collector.py): requests in the running batch"),
        Equivalent("tgi_batch_current_size", 1.0, (), "Hugging Face text-generation-inference's router metrics (docs 'Metrics', router/src): requests in the current batch"),
    ),
    "vllm:num_requests_waiting": (
        Equivalent("sglang:num_queue_reqs", 1.0, (), "SGLang's production metrics (docs 'Production Metrics', sglang/srt/metrics/collector.py): requests waiting in the scheduler's queue"),
        Equivalent("tgi_queue_size", 1.0, (), "Hugging Face text-generation-inference's router metrics (docs 'Metrics', router/src): requests waiting in the router's queue for the batcher"),
    ),
    "vllm:kv_cache_usage_perc": (
        Equivalent("sglang:token_usage", 1.0, (), "SGLang's production metrics (docs 'Production Metrics', sglang/srt/metrics/collector.py): share (0..1) of the KV-cache token pool in use"),
    ),
    "vllm:time_to_first_token_seconds": (
        Equivalent("sglang:time_to_first_token_seconds", 1.0, (), "SGLang's production metrics (docs 'Production Metrics', sglang/srt/metrics/collector.py): time to first token histogram, seconds"),
    ),
    "vllm:inter_token_latency_seconds": (
        Equivalent("sglang:inter_token_latency_seconds", 1.0, (), "SGLang's production metrics (docs 'Production Metrics', sglang/srt/metrics/collector.py): gap between consecutive output tokens, seconds"),
    ),
    "vllm:e2e_request_latency_seconds": (
        Equivalent("sglang:e2e_request_latency_seconds", 1.0, (), "SGLang's production metrics (docs 'Production Metrics', sglang/srt/metrics/collector.py): end-to-end request latency histogram, seconds"),
        Equivalent("tgi_request_duration", 1.0, (), "Hugging Face text-generation-inference's router metrics (docs 'Metrics', router/src): end-to-end request duration histogram, seconds"),
    ),
    "nginx_ingress_controller_requests": (
        Equivalent(
            "nginx_http_requests_total",
            1.0,
            ("status", "ingress", "method", "path"),
            "nginx-prometheus-exporter (NGINX stub_status): total client requests, no status label, "
            "no latency histogram; ingress-nginx counts requests by status in nginx_ingress_controller_requests",
        ),
        Equivalent(
            "nginx_ingress_nginx_http_requests_total",
            1.0,
            ("status", "ingress", "method", "path"),
            "NGINX Ingress Controller (nginxinc/kubernetes-ingress) exposes NGINX's stub_status counters with the "
            "nginx_ingress_nginx_ prefix: total client requests, no status label",
        ),
    ),
}

#: Suffixes an exporter appends to a base name (counter, histogram, created timestamp).
SERIES_SUFFIXES: tuple[str, ...] = ("_bucket", "_sum", "_count", "_total", "_created")

_SUFFIX = re.compile("(" + "|".join(SERIES_SUFFIXES) + ")$")


def _unprefixed(name: str) -> str:
    """``ray_vllm:x`` / ``ray_vllm_x`` / ``vllm_x`` -> ``vllm:x``; other names unchanged."""
    for exposed, canon in sorted(VLLM_PREFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(exposed):
            return canon + name[len(exposed) :]
    return name


#: Label names that hold a Kubernetes identity in other setups, per scheme: ``scheme -> {label: its name there}``.
#: A component's selector written with ``pod`` / ``namespace`` / ``container`` is retried in each scheme
#: (in this order) when it finds no series.
#:
#: * ``exported``: Prometheus renames a scraped label that clashes with a target label to ``exported_<name>``
#:   unless ``honor_labels: true`` (Prometheus docs, ``scrape_config``); dcgm-exporter's ``pod`` then
#:   becomes ``exported_pod`` beside the exporter's own ``pod``.
#: * ``kubelet<1.16``: cAdvisor labels of kubelets before 1.16 (``pod_name``, ``container_name``; removed in
#:   1.16 by the metrics overhaul, Kubernetes 1.16 CHANGELOG, kubernetes/kubernetes#80376).
#: * ``dcgm-exporter-1.x``: dcgm-exporter 1.x pod labels (``pod_name``, ``pod_namespace``,
#:   ``container_name``; NVIDIA/dcgm-exporter ``etc/1.x-compatibility-metrics.csv`` era).
#: * ``kubernetes-pods``: Prometheus' example Kubernetes configuration
#:   (``documentation/examples/prometheus-kubernetes.yml``, job ``kubernetes-pods``) and configurations
#:   derived from it map ``__meta_kubernetes_pod_name`` / ``__meta_kubernetes_namespace`` to
#:   ``kubernetes_pod_name`` / ``kubernetes_namespace``.
LABEL_SCHEMES: dict[str, dict[str, str]] = {
    "exported": {"pod": "exported_pod", "namespace": "exported_namespace", "container": "exported_container"},
    "kubelet<1.16": {"pod": "pod_name", "container": "container_name"},
    "dcgm-exporter-1.x": {"pod": "pod_name", "namespace": "pod_namespace", "container": "container_name"},
    "kubernetes-pods": {"pod": "kubernetes_pod_name", "namespace": "kubernetes_namespace"},
}

#: Label names that name the pod in some scheme (``pod`` first).
POD_LABELS: tuple[str, ...] = ("pod", *dict.fromkeys(s["pod"] for s in LABEL_SCHEMES.values()))


def pod_labels_held(labels: Iterable[str]) -> list[str]:
    """The :data:`POD_LABELS` among ``labels``, the one that names the pod a series is *about* first.

    When Prometheus renamed a target's own ``pod`` label to ``exported_pod`` (``honor_labels: false``, as with
    dcgm-exporter's Kubernetes mapping scraped through a ServiceMonitor), ``pod`` names the exporter's pod and
    ``exported_pod`` the workload's: ``pod`` then comes last.  Otherwise the order of :data:`POD_LABELS`.  Empty
    when none is held.
    """
    held = set(labels)
    out = [k for k in POD_LABELS if k in held]
    if "exported_pod" in held and "pod" in held:
        out.remove("pod")
        out.append("pod")
    return out


#: A selector that matches one of :data:`POD_LABELS` with a regular expression (``pod=~"vllm-.*"``); group 1 is
#: the label.
POD_REGEX_MATCHER = re.compile(rf"\b({'|'.join(POD_LABELS)})\s*=~")

_MATCHER = re.compile(r'(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*(?P<value>"(?:[^"\\]|\\.)*")')


#: Each scheme's label name -> the standard one (``kubernetes_pod_name`` -> ``pod``): a selector written in any
#: scheme is first read back into the standard labels, then rewritten into the others.
_STANDARD: dict[str, str] = {there: std for names in LABEL_SCHEMES.values() for std, there in names.items() if there != std}


def selector_schemes(selector: str) -> list[tuple[str, str, dict[str, str]]]:
    """The selector as written, then rewritten in the standard labels and in each :data:`LABEL_SCHEMES` scheme that
    changes it.

    Returns ``[(scheme, selector, {label as written: its name there})]``, ``("as given", selector, {})`` first;
    a selector written in a scheme's labels (``kubernetes_pod_name="w1"``) is read back into the standard
    ``pod`` / ``namespace`` / ``container`` (scheme ``"standard"``) and rewritten into the other schemes from
    there; a scheme that renames none of the selector's labels is left out.
    ``selector_schemes('namespace="llm",pod="w1"')[1]`` is
    ``("exported", 'exported_namespace="llm",exported_pod="w1"', {"namespace": "exported_namespace", "pod": "exported_pod"})``.
    """
    out: list[tuple[str, str, dict[str, str]]] = [("as given", selector, {})]
    seen = {selector}
    back: dict[str, str] = {}  # label as written -> standard label

    def to_standard(m: re.Match[str]) -> str:
        label = m.group("label")
        if label not in _STANDARD:
            return m.group(0)
        back[label] = _STANDARD[label]
        return f"{_STANDARD[label]}{m.group('op')}{m.group('value')}"

    standard = _MATCHER.sub(to_standard, selector)
    if back:
        seen.add(standard)
        out.append(("standard", standard, dict(back)))
    written = {std: label for label, std in back.items()}  # standard label -> as written
    for scheme, names in LABEL_SCHEMES.items():
        renamed: dict[str, str] = {}

        def sub(m: re.Match[str], names: dict[str, str] = names, renamed: dict[str, str] = renamed) -> str:
            label = m.group("label")
            if label not in names:
                return m.group(0)
            renamed[written.get(label, label)] = names[label]
            return f"{names[label]}{m.group('op')}{m.group('value')}"

        sel = _MATCHER.sub(sub, standard)
        if renamed and sel not in seen:
            seen.add(sel)
            out.append((scheme, sel, renamed))
    return out


def equivalents(name: str) -> tuple[Equivalent, ...]:
    """Other exporters' series of ``name``'s signal (:data:`EQUIVALENTS`), looked up by its current name."""
    return EQUIVALENTS.get(name, ()) or EQUIVALENTS.get(canonical(name), ())


def canonical(name: str) -> str:
    """The current name of a base series name: prefixes undone, renames followed.

    ``canonical("ray_vllm:gpu_cache_usage_perc") == "vllm:kv_cache_usage_perc"``;
    a name no table knows is returned unchanged.
    """
    n = _unprefixed(name)
    seen = {n}
    while n in RENAMES:
        n = RENAMES[n]
        if n in seen:  # a cycle in the tables would be a bug; stop rather than loop
            break
        seen.add(n)
    return n


def split_suffix(series: str) -> tuple[str, str]:
    """``("vllm:x", "_bucket")`` for ``vllm:x_bucket`` when the base is a known name, else ``(series, "")``."""
    m = _SUFFIX.search(series)
    if m:
        base = series[: m.start()]
        if canonical(base) != base or base in RENAMES.values() or base in VLLM_V0_ONLY:
            return base, m.group(1)
    return series, ""


def same_signal(name: str) -> tuple[str, ...]:
    """Every base series name of ``name``'s signal, ``name`` first, current names before old ones.

    For a ``vllm:`` name each name also comes with the exposed prefixes of
    :data:`VLLM_PREFIXES`, e.g. ``same_signal("vllm:kv_cache_usage_perc")`` is
    ``vllm:kv_cache_usage_perc, vllm_kv_cache_usage_perc, ray_vllm:kv_cache_usage_perc,
    ray_vllm_kv_cache_usage_perc, vllm:gpu_cache_usage_perc, vllm_gpu_cache_usage_perc, ...``.
    """
    canon = canonical(name)
    olds = sorted(k for k in RENAMES if canonical(k) == canon and k != canon)
    out: list[str] = []
    for n in (_unprefixed(name), canon, *olds):
        variants = [n]
        if n.startswith("vllm:"):
            rest = n.removeprefix("vllm:")
            variants += [p + rest for p in VLLM_PREFIXES]
        for v in variants:
            if v not in out:
                out.append(v)
    if name in out:
        out.remove(name)
    return (name, *out)
