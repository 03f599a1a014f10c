"""The metric vocabulary: any exporter's column name → a semantic kind with a unit.

A metrics column is ``<component>_<metric>`` (RCAEval's convention).  The
*metric* part is named by whoever exported it: cAdvisor
(``container_cpu_usage_seconds_total``), node-exporter (``node_cpu_seconds_total``),
vLLM v1 (``vllm:kv_cache_usage_perc``) and v0 (``vllm:gpu_cache_usage_perc``),
Ray Serve (``ray_vllm:…``, ``ray_serve_deployment_…``), DCGM (old and new field
names: ``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` / ``DCGM_FI_DEV_CLOCKS_EVENT_REASONS``),
nvidia_gpu_exporter / nvidia-smi, Istio (``istio_request_duration_milliseconds``),
ingress-nginx, the paper's artifact (``ctn_cpu``, ``node_memory``) and RCAEval
(``cpu``, ``mem``, ``latency-90``, sock-shop's ``lat_90``), or llmrca's own
catalogue (:mod:`llmrca.telemetry.catalogue`).

Code that needs to know what a column *is* — ``llm-rca``, the SLI choice, the
heal loop, ``llmrca dataset describe`` — asks this module, never a spelling:

* :func:`meaning` — one metric name → :class:`Meaning` (kind, the unit the
  name implies, the factor to the kind's canonical unit, where the rule
  comes from), or ``None`` when nothing is known about it;
* :func:`describe_columns` — every column of a frame with its meaning;
* :func:`canonical_frame` — a frame whose recognised columns are renamed to
  ``<component>_<canonical name>`` and converted to canonical units (the
  renaming map is returned so answers can name the original columns);
* :func:`find_column` — a component's column of the first kind in a
  preference list.

Units of the kinds (canonical): cpu in cores, memory in bytes, network in B/s,
latencies in seconds, power in W, clocks in MHz, utilisation in %, KV-cache
usage as a fraction (0..1), rates per second.  A name's unit is read from
its suffix (``_seconds``, ``_milliseconds``, ``_ms``, ``_bytes``, ``_mb``,
``_hz``…, Prometheus' naming practice); a name that says nothing is taken to
be in the canonical unit.

Sources: Prometheus naming best practices (units as suffixes); cAdvisor's
Prometheus metrics; vLLM's production-metrics docs (v0 and v1 names);
Ray Serve's metrics docs; DCGM field identifiers (``dcgm_fields.h``; the
``CLOCK_THROTTLE_REASONS`` → ``CLOCKS_EVENT_REASONS`` rename in DCGM 3.3);
Istio standard metrics; ingress-nginx metrics; RCAEval's data layout; the
paper's artifact (``ctn_*`` / ``node_*`` names, §4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from llmrca.model import split_column


@dataclass(frozen=True)
class Kind:
    """A semantic kind of signal.

    ``canonical`` is the metric part of the column that carries this kind in
    llmrca's own catalogue (what :func:`canonical_frame` renames to);
    ``unit`` its unit; ``group`` what it tells about (resources, latency,
    engine, accelerator, lifecycle, errors, traffic, node).
    """

    name: str
    canonical: str
    unit: str
    group: str
    description: str


def _k(name: str, canonical: str, unit: str, group: str, description: str) -> Kind:
    return Kind(name, canonical, unit, group, description)


#: Every kind, by name.  Latency-like kinds come in quantile variants (``_p50``, ``_p90``, ``_p99``, ``_mean``).
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        _k("cpu", "cpu", "cores", "resources", "CPU used by the component's containers"),
        _k("cpu_throttled", "container_cpu_cfs_throttled_seconds_total:rate", "s/s", "resources", "CFS throttled time per second"),
        _k("memory", "mem", "bytes", "resources", "working-set memory"),
        _k("memory_failcnt", "container_memory_failcnt:rate", "1/s", "resources", "memory-limit hits per second"),
        _k("memory_limit", "container_spec_memory_limit_bytes", "bytes", "resources", "memory limit"),
        _k("net_rx", "net-rx", "B/s", "resources", "bytes received per second"),
        _k("net_tx", "net-tx", "B/s", "resources", "bytes sent per second"),
        _k("net", "net", "B/s", "resources", "bytes received + sent per second (one series)"),
        _k("disk_io", "disk-io", "B/s", "resources", "disk I/O"),
        _k("sockets", "sockets", "count", "resources", "open sockets"),
        _k("latency_p50", "latency-50", "s", "latency", "median latency of requests into the component"),
        _k("latency_p90", "latency-90", "s", "latency", "p90 latency of requests into the component"),
        _k("latency_p95", "latency-95", "s", "latency", "p95 latency of requests into the component"),
        _k("latency_p99", "latency-99", "s", "latency", "p99 latency of requests into the component"),
        _k("latency_mean", "latency", "s", "latency", "mean (or unspecified) latency of requests into the component"),
        _k("gateway_latency_p50", "nginx_ingress_controller_request_duration_seconds:p50", "s", "latency", "gateway request duration p50"),
        _k("gateway_latency_p90", "nginx_ingress_controller_request_duration_seconds:p90", "s", "latency", "gateway request duration p90"),
        _k("error_rate", "errors:rate", "1/s", "errors", "failed requests per second"),
        _k("gateway_5xx_rate", "nginx_ingress_controller_requests_5xx:rate", "1/s", "errors", "gateway 5xx responses per second"),
        _k("request_rate", "requests:rate", "1/s", "traffic", "requests per second"),
        _k("gpu_util", "gpu", "%", "accelerator", "GPU utilisation"),
        _k("gpu_memory", "DCGM_FI_DEV_FB_USED", "MiB", "accelerator", "GPU framebuffer used"),
        _k("gpu_mem_copy_util", "DCGM_FI_DEV_MEM_COPY_UTIL", "%", "accelerator", "GPU memory-copy utilisation"),
        _k("tensor_active", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "fraction", "accelerator", "tensor pipe active"),
        _k("power", "DCGM_FI_DEV_POWER_USAGE", "W", "accelerator", "GPU power draw"),
        _k("power_limit", "DCGM_FI_DEV_POWER_MGMT_LIMIT", "W", "accelerator", "GPU power limit (enforced or management)"),
        _k("power_violation", "DCGM_FI_DEV_POWER_VIOLATION:rate", "us/s", "accelerator", "time throttled by the power limit, per second"),
        _k("thermal_violation", "DCGM_FI_DEV_THERMAL_VIOLATION:rate", "us/s", "accelerator", "time throttled by temperature, per second"),
        _k("sm_clock", "DCGM_FI_DEV_SM_CLOCK", "MHz", "accelerator", "SM clock"),
        _k("clock_events", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "bitmask", "accelerator", "clock event (throttle) reasons; 0x4 = SW power cap"),
        _k("gpu_temperature", "DCGM_FI_DEV_GPU_TEMP", "C", "accelerator", "GPU temperature"),
        _k("xid_errors", "DCGM_FI_DEV_XID_ERRORS", "code", "accelerator", "last Xid error of the GPU (0: none; 79 fell off the bus, 48 double-bit ECC)"),
        _k("cpu_pressure", "container_pressure_cpu_waiting_seconds_total:rate", "s/s", "resources", "CPU pressure (PSI some): time runnable threads waited"),
        _k("tcp_retransmits", "node_netstat_Tcp_RetransSegs:rate", "1/s", "resources", "TCP segments retransmitted per second"),
        _k("kv_cache", "vllm:kv_cache_usage_perc", "fraction", "engine", "KV-cache usage (0..1)"),
        _k("running", "vllm:num_requests_running", "requests", "engine", "requests in the engine's batch"),
        _k("engine_queue", "vllm:num_requests_waiting", "requests", "engine", "requests waiting in the engine"),
        _k("router_queue", "ray_serve_deployment_queued_queries", "requests", "engine", "requests queued in the router"),
        _k("preemptions", "vllm:num_preemptions_total:rate", "1/s", "engine", "preemptions per second"),
        _k("prompt_tokens", "vllm:prompt_tokens_total:rate", "tokens/s", "engine", "prefill tokens per second"),
        _k("generation_tokens", "vllm:generation_tokens_total:rate", "tokens/s", "engine", "decode tokens per second"),
        _k("finished_requests", "vllm:request_success_total:rate", "1/s", "engine", "finished requests per second"),
        _k("ttft_p50", "vllm:time_to_first_token_seconds:p50", "s", "engine", "time to first token p50 (server side)"),
        _k("ttft_p90", "vllm:time_to_first_token_seconds:p90", "s", "engine", "time to first token p90 (server side)"),
        _k("ttft_mean", "vllm:time_to_first_token_seconds:mean", "s", "engine", "mean time to first token"),
        _k("itl_p50", "vllm:inter_token_latency_seconds:p50", "s", "engine", "inter-token latency (TPOT) p50"),
        _k("itl_p90", "vllm:inter_token_latency_seconds:p90", "s", "engine", "inter-token latency (TPOT) p90"),
        _k("itl_mean", "vllm:inter_token_latency_seconds:mean", "s", "engine", "mean inter-token latency"),
        _k("e2e_p90", "vllm:e2e_request_latency_seconds:p90", "s", "engine", "engine end-to-end latency p90"),
        _k("e2e_p50", "vllm:e2e_request_latency_seconds:p50", "s", "engine", "engine end-to-end latency p50"),
        _k("e2e_mean", "vllm:e2e_request_latency_seconds:mean", "s", "engine", "mean engine end-to-end latency (from _sum/_count)"),
        _k("queue_time_p90", "vllm:request_queue_time_seconds:p90", "s", "engine", "time queued in the engine p90"),
        _k("replica_starts", "ray_serve_deployment_replica_starts_total:rate", "1/s", "lifecycle", "replica (re)starts per second"),
        _k("replica_healthy", "ray_serve_deployment_replica_healthy", "0/1", "lifecycle", "replica healthy"),
        _k("replica_errors", "ray_serve_deployment_error_counter_total:rate", "1/s", "errors", "replica errors per second"),
        _k("restarts", "restarts", "count", "lifecycle", "container restarts"),
        _k("router_requests", "ray_serve_num_router_requests_total:rate", "1/s", "traffic", "requests routed per second"),
        _k("node_cpu", "node-cpu", "cores", "node", "CPU of the node the component runs on"),
        _k("node_memory", "node-mem", "bytes", "node", "memory of the node the component runs on"),
        _k("node_net", "node-net", "B/s", "node", "network of the node the component runs on"),
    )
}


@dataclass(frozen=True)
class Meaning:
    """What one metric name means: its kind, the unit its name implies, and the factor to the kind's unit."""

    kind: str
    unit: str
    factor: float
    source: str
    #: The name is a raw cumulative counter (``…_total`` / ``…_count`` with no ``:rate``) of a per-second kind.
    counter: bool = False

    @property
    def canonical(self) -> str:
        return KINDS[self.kind].canonical


#: Kinds measured per second: a raw cumulative counter of one of these is read as its rate.
RATE_KINDS: frozenset[str] = frozenset(
    {"cpu", "cpu_throttled", "memory_failcnt", "net_rx", "net_tx", "net", "disk_io", "error_rate", "gateway_5xx_rate", "request_rate",
     "router_requests", "replica_starts", "replica_errors", "preemptions", "prompt_tokens", "generation_tokens", "finished_requests",
     "power_violation", "thermal_violation", "node_cpu", "node_net", "cpu_pressure", "tcp_retransmits"}
)


#: Kinds whose raw series are cumulative counters although their names have no ``_total`` (see :func:`meaning`).
_COUNTERS_WITHOUT_TOTAL: frozenset[str] = frozenset({"power_violation", "thermal_violation", "memory_failcnt", "tcp_retransmits"})
#: Series their exporters type counter although the name has no ``_total``: ingress-nginx's request counter,
#: Ray's cumulative node network bytes.
_COUNTER_NAMES_WITHOUT_TOTAL: frozenset[str] = frozenset({"nginx_ingress_controller_requests", "ray_node_network_received",
                                                          "ray_node_network_sent"})


# -- unit suffixes (Prometheus naming practice) ----------------------------------
_TIME_UNITS: tuple[tuple[str, str, float], ...] = (
    # token in the normalised name, unit label, factor to seconds
    ("nanoseconds", "ns", 1e-9),
    ("microseconds", "us", 1e-6),
    ("milliseconds", "ms", 1e-3),
    ("millis", "ms", 1e-3),
    ("ms", "ms", 1e-3),
    ("us", "us", 1e-6),
    ("ns", "ns", 1e-9),
    ("seconds", "s", 1.0),
    ("sec", "s", 1.0),
    ("s", "s", 1.0),
)
_BYTE_UNITS: tuple[tuple[str, str, float], ...] = (
    ("bytes", "bytes", 1.0),
    ("kb", "KB", 1e3),
    ("kib", "KiB", 2.0**10),
    ("mb", "MB", 1e6),
    ("mib", "MiB", 2.0**20),
    ("gb", "GB", 1e9),
    ("gib", "GiB", 2.0**30),
)


def _tokens(metric: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", metric.lower()) if t]


def _unit(tokens: Sequence[str], table: Sequence[tuple[str, str, float]], default: tuple[str, float]) -> tuple[str, float]:
    toks = set(tokens)
    for tok, label, factor in table:
        if tok in toks:
            return label, factor
    return default


_QUANTILE = re.compile(r"^(?:p|q|quantile)?(50|90|95|99)$|^0?\.?(5|9|95|99)$")


def _quantile(tokens: Sequence[str]) -> str | None:
    """``p50``/``50``/``0.5``/``quantile 0.9`` … → ``p50``/``p90``/``p95``/``p99``; ``mean``/``avg`` → ``mean``."""
    for i, t in enumerate(tokens):
        if t in ("p50", "p90", "p95", "p99", "median"):
            return "p50" if t == "median" else t
        if t in ("50", "90", "95", "99"):
            return f"p{t}"
        if t == "0" and i + 1 < len(tokens) and tokens[i + 1] in ("5", "9", "95", "99"):
            return {"5": "p50", "9": "p90", "95": "p95", "99": "p99"}[tokens[i + 1]]
        if t in ("mean", "avg", "average"):
            return "mean"
    return None


def _has(tokens: Sequence[str], *words: str) -> bool:
    s = set(tokens)
    return any(w in s for w in words)


def _seq(tokens: Sequence[str], *words: str) -> bool:
    """``words`` appear consecutively in ``tokens``."""
    n = len(words)
    return any(tuple(tokens[i : i + n]) == words for i in range(len(tokens) - n + 1))


def _latency(tokens: Sequence[str], prefix: str, source: str, default_unit: tuple[str, float] = ("s", 1.0)) -> Meaning:
    q = _quantile(tokens) or "mean"
    unit, factor = _unit(tokens, _TIME_UNITS, default_unit)
    kind = f"{prefix}_{q}"
    if kind not in KINDS:  # a quantile the kind has no variant for
        kind = f"{prefix}_p90" if q in ("p95", "p99") and f"{prefix}_p90" in KINDS else f"{prefix}_mean"
        if kind not in KINDS:
            kind = f"{prefix}_p90"
    return Meaning(kind, unit, factor, source)


_CANONICAL: dict[str, Kind] = {k.canonical: k for k in KINDS.values()}

#: Names recognised by a run of words (any of the sequences) -> (kind, unit, source); checked in order.
_SEQUENCE_RULES: tuple[tuple[tuple[tuple[str, ...], ...], str, str, str], ...] = (
    ((("num", "requests", "running"),), "running", "requests", "vLLM requests running"),
    ((("num", "requests", "waiting"),), "engine_queue", "requests", "vLLM requests waiting"),
    ((("queued", "queries"), ("queue", "len"), ("queue", "length"), ("queue", "size")), "router_queue", "requests", "router / deployment queue length"),
    ((("num", "preemptions"), ("preemptions",)), "preemptions", "1/s", "vLLM preemptions"),
    ((("prompt", "tokens"), ("prompt", "throughput")), "prompt_tokens", "tokens/s", "vLLM prompt tokens (v0 avg_prompt_throughput_toks_per_s)"),
    ((("generation", "tokens"), ("generation", "throughput")), "generation_tokens", "tokens/s", "vLLM generation tokens (v0 avg_generation_throughput_toks_per_s)"),
    ((("request", "success"),), "finished_requests", "1/s", "vLLM finished requests"),
    ((("replica", "starts"),), "replica_starts", "1/s", "Ray Serve replica starts"),
    ((("replica", "healthy"),), "replica_healthy", "0/1", "Ray Serve replica health"),
    ((("error", "counter"),), "replica_errors", "1/s", "Ray Serve deployment errors"),
    ((("router", "requests"),), "router_requests", "1/s", "Ray Serve routed requests"),
)


def _via_aliases(raw: str) -> Meaning | None:
    """``raw`` read through :mod:`llmrca.telemetry.aliases`: a renamed or prefixed series whose current name is canonical.

    The base series name may carry a qualifier after ``:`` (``…_seconds:p90``, ``…_total:rate``).
    """
    from llmrca.telemetry import aliases

    cuts = [len(raw)] + [i for i in range(len(raw) - 1, 0, -1) if raw[i] == ":"]
    for cut in cuts:
        base, rest = raw[:cut], raw[cut:]
        current = aliases.canonical(base)
        if current == base:
            continue
        kind = _CANONICAL.get(current + rest) or _CANONICAL.get(aliases.canonical(current) + rest)
        if kind is None:
            for old, new in aliases.RENAMES.items():  # the catalogue may hold the older name of a renamed series
                if new == current and old + rest in _CANONICAL:
                    kind = _CANONICAL[old + rest]
                    break
        if kind is not None:
            return Meaning(kind.name, kind.unit, 1.0, f"{raw} is {current}{rest} (telemetry.aliases)")
    for cut in cuts:  # another LLM server's series of a vLLM signal (SGLang, TGI: telemetry.aliases.EQUIVALENTS)
        base, rest = raw[:cut], raw[cut:]
        for cat, eqs in aliases.EQUIVALENTS.items():
            if not cat.startswith("vllm:"):
                continue
            for e in eqs:
                if base == e.name and (kind := _CANONICAL.get(cat + rest)) is not None:
                    return Meaning(kind.name, kind.unit, e.factor, f"{raw} is {cat}{rest}'s signal ({e.source})")
    return None


@lru_cache(maxsize=65536)
def meaning(metric: str) -> Meaning | None:
    """The meaning of one metric name (the part after ``<component>_``), or ``None``.

    Histogram parts are told apart: ``…_sum`` (cumulative seconds) has no kind of
    its own, ``…_count`` counts observations (requests).  A raw cumulative
    counter of a per-second kind (``…_total`` with no ``:rate``) is flagged
    ``counter`` and read as its rate by :func:`canonical_frame`.

    >>> meaning("ctn_cpu").kind
    'cpu'
    >>> m = meaning("istio_request_duration_milliseconds:p90"); (m.kind, m.factor)
    ('latency_p90', 0.001)
    """
    raw = metric.strip()
    toks = _tokens(raw)
    if raw in _CANONICAL or not toks:
        return _meaning_of_name(raw)
    qualified = "rate" in toks or any(q in toks for q in ("p50", "p90", "p95", "p99", "mean", "avg"))
    if not qualified and toks[-1] in ("sum", "bucket") and len(toks) > 1:
        return None  # a histogram's cumulative sum or one bucket's count: no level of its own
    if not qualified and toks[-1] == "count" and len(toks) > 1 and toks[-2] not in _COUNTED_THINGS:
        return Meaning("request_rate", "1/s", 1.0, "observations of a histogram (its _count), read as a rate", counter=True)
    m = _meaning_of_name(raw)
    from llmrca.telemetry.aliases import canonical

    # a counter: named ..._total, or a name whose current one is (Ray < 2.10 exported counters as unsuffixed gauges)
    cumulative = toks[-1] == "total" or (canonical(raw) != raw and canonical(raw).endswith("_total"))
    # counters their exporters name without _total: DCGM's violation times (us since boot; dcgm-exporter types them
    # counter), cAdvisor's container_memory_failcnt (a counter), node-exporter's node_netstat_* (/proc/net/snmp totals)
    cumulative = cumulative or (m is not None and m.kind in _COUNTERS_WITHOUT_TOTAL) or raw in _COUNTER_NAMES_WITHOUT_TOTAL
    if m is not None and not qualified and cumulative and m.kind in RATE_KINDS:
        return Meaning(m.kind, m.unit, m.factor, m.source + "; a cumulative counter, read as its per-second rate", counter=True)
    return m


def _meaning_of_name(metric: str) -> Meaning | None:
    """What the name says, before histogram parts and raw counters are told apart (see :func:`meaning`)."""
    raw = metric.strip()
    if not raw:
        return None
    # Exact canonical names first (llmrca's own catalogue), then the same names under another
    # exporter version's spelling (vLLM v0, Ray's prefixes, DCGM renames: telemetry.aliases).
    exact = _CANONICAL.get(raw)
    if exact is not None:
        return Meaning(exact.name, exact.unit, 1.0, "catalogue")
    renamed = _via_aliases(raw)
    if renamed is not None:
        return renamed
    t = _tokens(raw)
    if not t:
        return None
    # Strip exporter prefixes that do not change the meaning (Ray's node metrics are node-level: ray_node_x is node_x).
    if t[0] == "ray" and len(t) > 1 and t[1] in ("vllm", "node"):
        t = t[1:]
    s = set(t)
    if _not_a_kind(t, s):
        return None

    # -- accelerator (DCGM field names, nvidia-smi / nvidia_gpu_exporter) ---------
    if _seq(t, "throttle", "reasons") or _seq(t, "event", "reasons") or _seq(t, "events", "reasons"):
        return Meaning("clock_events", "bitmask", 1.0, "DCGM clock event / throttle reasons")
    if _seq(t, "power", "violation"):
        return Meaning("power_violation", "us/s", 1.0, "DCGM power violation")
    if _seq(t, "thermal", "violation"):
        return Meaning("thermal_violation", "us/s", 1.0, "DCGM thermal violation")
    if "power" in s and ("limit" in s or "cap" in s) and not _has(t, "min", "max", "default", "def"):
        return Meaning("power_limit", "W", 1.0, "power limit (DCGM POWER_MGMT_LIMIT / ENFORCED_POWER_LIMIT, nvidia-smi)")
    if "power" in s and _has(t, "usage", "draw", "w", "watts", "power"):
        mw = _has(t, "milliwatts", "mw")
        return Meaning("power", "mW" if mw else "W", 1e-3 if mw else 1.0, "GPU power draw")
    if _seq(t, "sm", "clock") or _seq(t, "clocks", "current", "sm") or _seq(t, "graphics", "clock") or _seq(t, "sm", "clk"):
        if _has(t, "hz") and not _has(t, "mhz"):
            return Meaning("sm_clock", "Hz", 1e-6, "SM clock")
        return Meaning("sm_clock", "MHz", 1.0, "SM clock")
    if _seq(t, "fb", "used"):
        return Meaning("gpu_memory", "MiB", 1.0, "DCGM framebuffer used")
    if _seq(t, "mem", "copy", "util"):
        return Meaning("gpu_mem_copy_util", "%", 1.0, "DCGM memory copy utilisation")
    if _seq(t, "tensor", "active"):
        return Meaning("tensor_active", "fraction", 1.0, "DCGM tensor pipe active")
    if _has(t, "temp", "temperature"):  # only a GPU's reaches here (_not_a_kind); DCGM MEMORY_TEMP is its HBM's
        return Meaning("gpu_temperature", "C", 1.0, "GPU temperature (DCGM GPU_TEMP; MEMORY_TEMP, the GPU memory's, read alike)")
    if _has(t, "nvidia", "smi", "dcgm", "gpu") and _has(t, "memory", "mem") and _has(t, "utilization", "utilisation", "util"):
        ratio = _has(t, "ratio", "fraction")  # nvidia-smi utilization.memory: the memory controller's busy share, DCGM MEM_COPY_UTIL
        return Meaning("gpu_mem_copy_util", "fraction" if ratio else "%", 100.0 if ratio else 1.0, "GPU memory-controller utilisation")
    if _has(t, "nvidia", "smi", "dcgm", "gpu", "accelerator") and _has(t, "memory", "mem") and _has(t, "used", "usage"):
        unit, f = _unit(t, _BYTE_UNITS, ("MiB", 2.0**20))
        return Meaning("gpu_memory", unit, f / 2.0**20, "GPU memory used (nvidia_gpu_exporter nvidia_smi_memory_used_bytes)")
    if "xid" in s:
        return Meaning("xid_errors", "code", 1.0, "DCGM XID_ERRORS (last Xid of the GPU)")
    if any(x.startswith("retrans") for x in t):
        return Meaning("tcp_retransmits", "1/s", 1.0, "TCP retransmitted segments (node-exporter netstat, /proc/net/snmp)")
    if "pressure" in s and "cpu" in s:
        return Meaning("cpu_pressure", "s/s", 1.0, "CPU pressure stall information (cAdvisor / node-exporter PSI, kernel psi.rst)")
    # -- vLLM engine (v1 and v0 names; Ray Serve's ray_vllm prefix) -----------------
    if "cache" in s and _has(t, "usage", "perc", "utilization") and _has(t, "kv", "gpu"):
        if "cpu" in s:  # v0's CPU swap cache is not the KV cache on the GPU
            return None
        pct = "percent" in s or "pct" in s
        return Meaning("kv_cache", "%" if pct else "fraction", 0.01 if pct else 1.0, "vLLM KV-cache usage (v1 kv_cache_usage_perc, v0 gpu_cache_usage_perc)")
    if _seq(t, "request", "time", "per", "output", "token") or _seq(t, "mean", "time", "per", "token"):
        return None  # a request's mean time per output token (vLLM >= 0.10, TGI): not the gap between two tokens
    if _seq(t, "gr", "engine", "active"):
        return Meaning("gpu_util", "fraction", 100.0, "DCGM PROF_GR_ENGINE_ACTIVE (0..1), read as GPU utilisation in %")
    if "sglang" in s and _seq(t, "token", "usage"):
        return Meaning("kv_cache", "fraction", 1.0, "SGLang token_usage: share of the KV-cache token pool in use")
    if _seq(t, "time", "to", "first", "token") or "ttft" in s:
        return _latency(t, "ttft", "vLLM time to first token")
    if _seq(t, "inter", "token") or _seq(t, "time", "per", "output", "token") or "tpot" in s or "itl" in s:
        return _latency(t, "itl", "vLLM inter-token latency (v0 time_per_output_token)")
    if _seq(t, "e2e", "request", "latency"):
        q = _quantile(t)
        kind = {"p50": "e2e_p50", "mean": "e2e_mean"}.get(q or "", "e2e_p90")
        return Meaning(kind, "s", 1.0, "vLLM end-to-end request latency")
    if _seq(t, "request", "queue", "time"):
        return Meaning("queue_time_p90", "s", 1.0, "vLLM request queue time")
    for seqs, kind, unit, source in _SEQUENCE_RULES:
        if any(_seq(t, *q) for q in seqs):
            return Meaning(kind, unit, 1.0, source)
    if _has(t, "restarts", "restart", "restarted"):
        return Meaning("restarts", "count", 1.0, "container / pod restarts (kube-state-metrics)")
    # -- container limits (cAdvisor) ----------------------------------------------------
    if _seq(t, "cfs", "throttled") or _seq(t, "cpu", "throttled") or _seq(t, "cpu", "throttling"):
        return Meaning("cpu_throttled", "s/s", 1.0, "cAdvisor CFS throttled time")
    if "failcnt" in s or _seq(t, "oom", "events"):
        return Meaning("memory_failcnt", "1/s", 1.0, "cAdvisor memory failcnt")
    if "memory" in s and "limit" in s:
        unit, f = _unit(t, _BYTE_UNITS, ("bytes", 1.0))
        return Meaning("memory_limit", unit, f, "memory limit")
    # -- errors and traffic ------------------------------------------------------------------
    if "5xx" in s or _has(t, "error", "errors", "err", "failed", "failures", "fail"):
        if "5xx" in s and _has(t, "nginx", "ingress", "gateway"):
            return Meaning("gateway_5xx_rate", "1/s", 1.0, "gateway 5xx responses")
        if _has(t, "ratio", "fraction", "share", "percent", "pct", "percentage"):  # a share of requests, not per second
            pct = _has(t, "percent", "pct", "percentage")
            return Meaning("error_rate", "%" if pct else "fraction", 0.01 if pct else 1.0, "share of failed requests (a ratio, not per second)")
        return Meaning("error_rate", "1/s", 1.0, "failed requests")
    # -- latency (mesh, gateway, RCAEval) ----------------------------------------------------
    if _has(t, "latency", "lat", "duration", "rt", "responsetime") or _seq(t, "response", "time"):
        if _has(t, "nginx", "ingress") and not _has(t, "istio"):
            q = _quantile(t)
            kind = "gateway_latency_p50" if q == "p50" else "gateway_latency_p90"
            unit, f = _unit(t, _TIME_UNITS, ("s", 1.0))
            return Meaning(kind, unit, f, "ingress-nginx request duration")
        if "processing" in s and "ray" in s:
            return _latency(t, "latency", "Ray Serve processing latency", ("ms", 1e-3))
        return _latency(t, "latency", "request latency (mesh / RCAEval latency-50/-90, lat_50/lat_90)")
    if _has(t, "requests", "request") and _has(t, "seconds", "milliseconds", "ms"):  # http_server_requests_seconds:p90, _max
        return _latency(t, "latency", "request duration (Micrometer http_server_requests_seconds)")
    if _has(t, "qps", "rps", "throughput", "lod", "load", "requests"):
        return Meaning("request_rate", "1/s", 1.0, "requests per second")
    # -- node level (the artifact's node_*, node-exporter) -------------------------------------
    if t[0] == "node":
        if "cpu" in s:
            return Meaning("node_cpu", "cores", 1.0, "node CPU (artifact node_cpu, node-exporter)")
        if _has(t, "memory", "mem"):
            unit, f = _unit(t, _BYTE_UNITS, ("bytes", 1.0))
            return Meaning("node_memory", unit, f, "node memory")
        if _has(t, "network", "net"):
            return Meaning("node_net", "B/s", 1.0, "node network")
    # -- accelerator utilisation ------------------------------------------------------------
    if "gpu" in s and (len(t) <= 2 or _has(t, "util", "utilization", "utilisation", "usage", "duty", "busy")):
        if _has(t, "ratio", "fraction"):  # nvidia_gpu_exporter's *_ratio series are 0..1
            return Meaning("gpu_util", "fraction", 100.0, "GPU utilisation (0..1 ratio)")
        return Meaning("gpu_util", "%", 1.0, "GPU utilisation (DCGM GPU_UTIL, artifact ctn_gpu, RCAEval gpu)")
    if _seq(t, "gpus", "utilization") or _seq(t, "duty", "cycle"):
        return Meaning("gpu_util", "%", 1.0, "GPU utilisation")
    # -- container resources (cAdvisor, RCAEval, artifact ctn_*) -------------------------------
    if "cpu" in s:
        if _has(t, "percent", "pct", "percentage"):  # docker stats / psutil: 100 % is one core busy
            return Meaning("cpu", "%", 0.01, "CPU in percent of one core (docker stats, psutil), read as cores")
        return Meaning("cpu", "cores", 1.0, "CPU (cAdvisor container_cpu_usage_seconds_total rate, RCAEval cpu, artifact ctn_cpu)")
    if _has(t, "mem", "memory", "rss") and _has(t, "percent", "pct", "percentage"):
        return None  # a share of a limit, no byte count: not the memory kind's bytes (left unmapped, used as it is)
    if _has(t, "mem", "memory", "rss") or _seq(t, "working", "set"):
        unit, f = _unit(t, _BYTE_UNITS, ("bytes", 1.0))
        return Meaning("memory", unit, f, "memory (cAdvisor working set, RCAEval mem, artifact ctn_memory)")
    if _has(t, "receive", "rx", "in", "received", "ingress") and _has(t, "net", "network", "receive", "rx", "received", "bytes"):
        return Meaning("net_rx", "B/s", 1.0, "network received")
    if _has(t, "transmit", "tx", "out", "sent", "egress") and _has(t, "net", "network", "transmit", "tx", "sent", "bytes"):
        return Meaning("net_tx", "B/s", 1.0, "network sent")
    if _has(t, "net", "network"):
        return Meaning("net", "B/s", 1.0, "network (one series, artifact ctn_network)")
    if _has(t, "disk", "diskio", "io", "fs"):
        return Meaning("disk_io", "B/s", 1.0, "disk I/O")
    if _has(t, "socket", "sockets"):
        return Meaning("sockets", "count", 1.0, "open sockets")
    return None


#: Resource nouns before ``_count``: a count of things (``ray_node_cpu_count``), not a histogram's observations.
_COUNTED_THINGS = frozenset({"cpu", "cpus", "gpu", "gpus", "core", "cores", "node", "nodes", "replica", "replicas", "pod", "pods",
                             "device", "devices", "thread", "threads", "worker", "workers", "process", "processes", "container", "containers"})
#: Memory series that are not a usage: capacity, what is left, caches and swap (node-exporter ``node_memory_MemFree_bytes``,
#: ``node_memory_MemAvailable_bytes``, cAdvisor ``container_memory_cache`` / ``_swap``, Ray ``ray_node_mem_total``).
_NOT_MEMORY_USE = frozenset({"free", "available", "avail", "total", "capacity", "allocatable", "cache", "cached", "buffers", "swap",
                             "memfree", "memavailable", "memtotal", "swapfree", "swaptotal", "swapcached", "reservation", "mapped",
                             "failures", "pressure", "temp", "temperature", "clock", "clk", "virtual", "max"})


def _not_a_kind(t: Sequence[str], s: set[str]) -> bool:
    """Names whose words look like a kind's but which measure something else: left unmapped (used as they are),
    never read in a wrong unit.  Sources: cAdvisor (``container_spec_*`` configuration, ``cfs_periods``,
    ``container_memory_failures_total`` page faults, ``container_fs_usage_bytes`` space used), kube-state-metrics
    (``kube_pod_container_resource_requests`` / ``_limits``: the spec's cores or bytes), node-exporter
    (``node_disk_io_time_seconds_total`` busy time, PSI ``node_pressure_memory_*``), vLLM v0
    (``cpu_cache_usage_perc``: the CPU swap space, not a CPU load; ``num_requests_swapped``), DCGM (PCIe / NVLink
    bytes, memory clock), Ray (``ray_node_cpu_utilization`` in percent of the node, ``ray_node_cpu_count``),
    Prometheus' ``*_info`` convention (the value is 1; the labels hold the data)."""
    if t[-1] in ("info", "created"):  # *_info (value 1) and OpenMetrics' *_created (a creation timestamp)
        return True
    if _has(t, "gc", "scrape", "compaction"):  # the runtime's / Prometheus' own durations, not requests'
        return True
    if _has(t, "allocatable", "capacity") or _seq(t, "load", "average") or _has(t, "frequency", "hertz"):
        return True  # what a node offers, a load average, a clock frequency: no usage kind
    if _has(t, "max", "min", "slowdown", "shutdown") and _has(t, "clock", "clocks", "temp", "temperature", "power", "limit"):
        return True  # a device's limits and thresholds (DCGM MAX_SM_CLOCK, POWER_MGMT_LIMIT_MAX, SLOWDOWN_TEMP)
    if _has(t, "network", "net") and _has(t, "speed", "mtu", "up", "carrier") and not _has(
            t, "receive", "received", "transmit", "sent", "send", "rx", "tx"):
        return True  # a link's speed / MTU / state (node-exporter), not its traffic
    if _has(t, "disk", "diskio") and _has(t, "completed", "ops", "operations", "iops", "utilization", "percentage", "percent"):
        return True  # operations or a busy share, not bytes per second
    if _has(t, "ongoing", "inflight", "inprogress"):
        return True  # requests in flight (a gauge), not a rate
    if "cache" in s and "cpu" in s:  # vLLM v0 cpu_cache_usage_perc
        return True
    if _has(t, "pcie", "nvlink"):
        return True
    if "spec" in s and not ("memory" in s and "limit" in s):
        return True
    if "resource" in s and _has(t, "requests", "limits", "request", "limit"):
        return True
    if "periods" in s:  # CFS periods (throttled or not): a count of 100 ms periods, not seconds
        return True
    if "pressure" in s and "cpu" not in s:  # memory / io PSI: no kind
        return True
    if _seq(t, "requests", "swapped"):
        return True
    if t[-1] == "count" and len(t) > 1 and t[-2] in _COUNTED_THINGS:
        return True
    if "cpu" in s and _has(t, "utilization", "utilisation", "util") and "gpu" not in s:
        return True  # a share of a node's or a limit's capacity (Ray: percent of the node), not cores
    if _has(t, "temp", "temperature") and not _has(t, "gpu", "dcgm", "nvidia", "smi"):
        return True  # a temperature that is no GPU's (hwmon): no kind
    if _has(t, "clock", "clocks", "clk") and "reasons" not in s and not (_seq(t, "sm", "clock") or _seq(t, "clocks", "current", "sm")
                                                  or _seq(t, "graphics", "clock") or _seq(t, "sm", "clk")):
        return True  # memory / video clocks (MHz): no kind
    if _has(t, "network", "net", "netstat") and _has(t, "packets", "dropped", "drop", "errors", "errs", "err"):
        return True  # packets and their drops or errors, not bytes per second
    if _has(t, "memory", "mem", "rss") and (s & _NOT_MEMORY_USE) and not (_has(t, "gpu", "dcgm", "nvidia", "smi") and _has(t, "temp", "temperature")):
        return not ("limit" in s and "memory" in s and "spec" in s and "swap" not in s)  # cAdvisor's memory limit keeps its kind
    if _has(t, "disk", "fs", "diskio") and _has(t, "usage", "used", "capacity", "size", "free", "available", "avail", "inodes", "time", "seconds", "limit"):
        return True  # space, or time busy: not bytes per second
    return False


@dataclass(frozen=True)
class ColumnMeaning:
    """One column of a frame with what it means (``kind`` None when unknown)."""

    column: str
    component: str
    metric: str
    kind: str | None
    unit: str | None
    factor: float
    source: str | None
    counter: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "column": self.column,
            "component": self.component,
            "metric": self.metric,
            "kind": self.kind,
            "unit": self.unit,
            "to_canonical": self.factor,
            "counter": self.counter,
            "source": self.source,
        }


def describe_columns(columns: Iterable[str]) -> list[ColumnMeaning]:
    """Every ``<component>_<metric>`` column (``time`` skipped) with its meaning."""
    out: list[ColumnMeaning] = []
    for col in columns:
        col = str(col)
        if col == "time":
            continue
        comp, metric = split_column(col)
        m = meaning(metric) if metric else None
        out.append(ColumnMeaning(col, comp, metric, m.kind if m else None, m.unit if m else None, m.factor if m else 1.0, m.source if m else None, bool(m and m.counter)))
    return out


def canonical_names(columns: Sequence[str]) -> dict[str, str]:
    """Original column → canonical column ``<component>_<canonical>`` for the columns that can be renamed.

    A column keeps its name when it already is canonical or when another
    column of the same component already holds (or earlier claimed) that
    canonical name: the first column of a kind per component wins, exact
    canonical names before anything else.  Unknown columns are not in the map.
    """
    taken = {str(c) for c in columns}
    out: dict[str, str] = {}
    described = describe_columns(columns)
    # exact canonical names claim their slot first
    for cm in described:
        if cm.kind is not None and cm.metric == KINDS[cm.kind].canonical:
            taken.add(cm.column)
    for cm in described:
        if cm.kind is None or cm.metric == KINDS[cm.kind].canonical:
            continue
        new = f"{cm.component}_{KINDS[cm.kind].canonical}"
        if new in taken:
            continue
        taken.add(new)
        out[cm.column] = new
    return out


def canonical_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """``frame`` with recognised columns renamed to canonical names and converted to canonical units.

    Returns ``(frame, renamed)`` where ``renamed`` maps each *new* column name
    to the original one (so a method's answer can name the column the user
    has).  ``time`` and unknown columns pass through unchanged.  The input is
    not modified.  Shape: the same rows and columns as ``frame``.
    """
    names = canonical_names([str(c) for c in frame.columns])
    if not names:
        return frame, {}
    out = frame.rename(columns=names)
    factors = {}
    counters = []
    for old, new in names.items():
        m = meaning(split_column(old)[1])
        if m is not None and m.factor != 1.0:
            factors[new] = m.factor
        if m is not None and m.counter:
            counters.append(new)
    if factors or counters:
        out = out.copy()
        for col, f in factors.items():
            out[col] = pd.to_numeric(out[col], errors="coerce") * f
        if "time" in out.columns:
            t = pd.to_numeric(out["time"], errors="coerce").to_numpy(dtype=float)
            for col in counters:
                v = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=float)
                if is_cumulative(v):
                    out[col] = counter_rate(t, v)
    return out, {new: old for old, new in names.items()}


def is_cumulative(v: np.ndarray) -> bool:
    """Whether a series looks like a raw counter: it never falls except at a few resets, and it moves.

    (A series named ``…_total`` may already be a rate someone exported under the counter's
    name; a rate goes up and down, a counter only up.)  Shape ``(n,)``.
    """
    x = v[np.isfinite(v)]
    if x.size < 3:
        return False
    d = np.diff(x)
    moving = d != 0
    if not moving.any():
        return False
    return bool((d < 0).sum() <= max(1, 0.05 * moving.sum()))


def counter_rate(t: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-second rate of a cumulative counter ``v`` sampled at ``t`` (s), as Prometheus' ``rate()`` treats resets.

    A fall is a counter reset: the increase over that step is the value after it.  The first
    sample (and any sample next to a gap) has no rate (NaN).  Shapes ``(n,)`` -> ``(n,)``.
    """
    out = np.full(v.shape, np.nan)
    dv = np.diff(v)
    dv = np.where(dv < 0, v[1:], dv)
    dt = np.diff(t)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(dt > 0, dv / dt, np.nan)
    out[1:] = r
    return out


def find_column(columns: Iterable[str], component: str, kinds: Sequence[str]) -> str | None:
    """The column of ``component`` of the first kind in ``kinds`` that it has (order = preference)."""
    by_kind: dict[str, str] = {}
    for cm in describe_columns(columns):
        if cm.component == component and cm.kind is not None:
            by_kind.setdefault(cm.kind, cm.column)
    for k in kinds:
        if k in by_kind:
            return by_kind[k]
    return None


#: Latency kinds in the order a service-level indicator prefers them (tail first).
LATENCY_KINDS: tuple[str, ...] = (
    "latency_p90",
    "gateway_latency_p90",
    "latency_p95",
    "latency_p99",
    "latency_mean",
    "latency_p50",
    "gateway_latency_p50",
)


def kinds_of(component_columns: Mapping[str, str]) -> dict[str, str]:
    """``{metric: kind}`` for a component's metric names (unknown ones left out)."""
    out = {}
    for metric in component_columns:
        m = meaning(metric)
        if m is not None:
            out[metric] = m.kind
    return out


@dataclass
class Description:
    """What the vocabulary makes of a set of columns: per kind the columns, and what is unmapped.

    ``kinds``: kind → list of columns; ``unmapped``: columns of no known kind;
    ``components``: component → kinds it has.
    """

    kinds: dict[str, list[str]]
    unmapped: list[str]
    components: dict[str, list[str]]
    columns: list[ColumnMeaning]

    def to_dict(self) -> dict[str, object]:
        return {
            "kinds": {k: {"unit": KINDS[k].unit, "group": KINDS[k].group, "columns": v} for k, v in self.kinds.items()},
            "unmapped": self.unmapped,
            "components": self.components,
            "columns": [c.to_dict() for c in self.columns],
        }


def describe(columns: Iterable[str]) -> Description:
    """Group ``columns`` by kind (kind order of :data:`KINDS`) and list the unmapped ones."""
    described = describe_columns(columns)
    by_kind: dict[str, list[str]] = {}
    comps: dict[str, list[str]] = {}
    unmapped: list[str] = []
    for cm in described:
        if cm.kind is None:
            unmapped.append(cm.column)
            continue
        by_kind.setdefault(cm.kind, []).append(cm.column)
        ks = comps.setdefault(cm.component, [])
        if cm.kind not in ks:
            ks.append(cm.kind)
    order = {k: i for i, k in enumerate(KINDS)}
    return Description(dict(sorted(by_kind.items(), key=lambda kv: order[kv[0]])), unmapped, comps, described)


#: Kinds only a model replica reports (an inference engine or an accelerator).
REPLICA_KINDS: frozenset[str] = frozenset(
    {"gpu_util", "power", "power_limit", "sm_clock", "clock_events", "kv_cache", "running", "engine_queue", "ttft_p90", "ttft_p50", "itl_p90", "itl_p50", "itl_mean", "e2e_p90", "e2e_mean"}
)


def replica_components(columns: Iterable[str]) -> list[str]:
    """Components that host a model replica, as the data shows (an engine or accelerator kind), in column order."""
    out: dict[str, None] = {}
    for cm in describe_columns(columns):
        if cm.kind in REPLICA_KINDS:
            out.setdefault(cm.component, None)
    return list(out)


def columns_of_kind(columns: Iterable[str], kind: str, component: str | None = None) -> list[str]:
    """Every column of ``kind`` (of one ``component`` when given), in column order."""
    if kind not in KINDS:
        raise KeyError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    return [cm.column for cm in describe_columns(columns) if cm.kind == kind and (component is None or cm.component == component)]
