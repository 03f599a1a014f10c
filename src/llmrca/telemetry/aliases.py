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
"""

from __future__ import annotations

import re

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

#: Every rename above in one table, old -> current.
RENAMES: dict[str, str] = {**VLLM_RENAMES, **DCGM_RENAMES, **DCGM_1X_NAMES}

#: Suffixes an exporter appends to a base name (counter, histogram, created timestamp).
SERIES_SUFFIXES: tuple[str, ...] = ("_bucket", "_sum", "_count", "_total", "_created")

_SUFFIX = re.compile("(" + "|".join(SERIES_SUFFIXES) + ")$")


def _unprefixed(name: str) -> str:
    """``ray_vllm:x`` / ``ray_vllm_x`` / ``vllm_x`` -> ``vllm:x``; other names unchanged."""
    for exposed, canon in sorted(VLLM_PREFIXES.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(exposed):
            return canon + name[len(exposed) :]
    return name


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
