"""The signals the LLM-aware method reads, by their catalogue names.

Each constant is the metric part of a ``<component>_<metric>`` column as
listed in :mod:`llmrca.telemetry`.  ``FLOORS`` gives, per signal, the smallest
change that is physically meaningful (in the signal's unit); it keeps robust
z-scores finite on signals that are flat in the normal window (a power limit,
an error counter at zero) without tuning anything to a dataset.
"""

from __future__ import annotations

# -- basic set (paper) --------------------------------------------------------
CPU = "cpu"
MEM = "mem"
NET_RX = "net-rx"
NET_TX = "net-tx"
GPU_UTIL = "gpu"
LAT50 = "latency-50"
LAT90 = "latency-90"

# -- extended: vLLM engine ----------------------------------------------------
RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV_CACHE = "vllm:kv_cache_usage_perc"
PROMPT_TPS = "vllm:prompt_tokens_total:rate"
GEN_TPS = "vllm:generation_tokens_total:rate"
PREEMPT = "vllm:num_preemptions_total:rate"
SUCCESS = "vllm:request_success_total:rate"
TTFT50 = "vllm:time_to_first_token_seconds:p50"
TTFT90 = "vllm:time_to_first_token_seconds:p90"
ITL50 = "vllm:inter_token_latency_seconds:p50"
ITL90 = "vllm:inter_token_latency_seconds:p90"
E2E90 = "vllm:e2e_request_latency_seconds:p90"
QUEUE90 = "vllm:request_queue_time_seconds:p90"

# -- extended: Ray Serve --------------------------------------------------------
REPLICA_STARTS = "ray_serve_deployment_replica_starts_total:rate"
REPLICA_HEALTHY = "ray_serve_deployment_replica_healthy"
REPLICA_ERRORS = "ray_serve_deployment_error_counter_total:rate"

# -- extended: DCGM ----------------------------------------------------------------
POWER = "DCGM_FI_DEV_POWER_USAGE"
POWER_LIMIT = "DCGM_FI_DEV_POWER_MGMT_LIMIT"
SM_CLOCK = "DCGM_FI_DEV_SM_CLOCK"
THROTTLE = "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"
SW_POWER_CAP_BIT = 0x4  # DCGM clock event reason "SW power cap"

# -- extended: cAdvisor --------------------------------------------------------------
CFS_THROTTLED = "container_cpu_cfs_throttled_seconds_total:rate"
MEM_FAILCNT = "container_memory_failcnt:rate"
MEM_LIMIT = "container_spec_memory_limit_bytes"

# -- derived (computed by the method from two catalogue columns) -----------------
#: mesh p90 latency minus the engine's own e2e p90: the network's share of a request.
NET_SHARE = "net-share:p90"

#: Engine latencies: how long the replica itself takes (excludes the network).
ENGINE_LATENCY = (TTFT90, ITL90, QUEUE90, E2E90)

#: Signals the method uses when present, grouped by what they reveal; the
#: explanation lists the groups a case lacked.
GROUPS: dict[str, tuple[str, ...]] = {
    "resources (basic)": (CPU, MEM, NET_RX, NET_TX, GPU_UTIL),
    "mesh latency (basic)": (LAT50, LAT90),
    "engine latency decomposition": (TTFT90, ITL90, QUEUE90, E2E90),
    "engine load": (RUNNING, WAITING, KV_CACHE, PREEMPT),
    "replica lifecycle": (REPLICA_STARTS, REPLICA_HEALTHY, REPLICA_ERRORS),
    "accelerator power": (POWER, POWER_LIMIT, SM_CLOCK, THROTTLE),
    "container limits": (CFS_THROTTLED, MEM_FAILCNT),
}

_MIB = 2.0**20

#: Smallest meaningful change per signal (unit of the signal).
FLOORS: dict[str, float] = {
    CPU: 0.05,  # cores
    MEM: 32 * _MIB,  # bytes
    NET_RX: 1024.0,  # B/s
    NET_TX: 1024.0,
    GPU_UTIL: 1.0,  # %
    LAT50: 0.01,  # s
    LAT90: 0.01,
    NET_SHARE: 0.01,
    RUNNING: 0.5,  # requests
    WAITING: 0.5,
    KV_CACHE: 0.01,  # fraction
    PROMPT_TPS: 10.0,  # tokens/s
    GEN_TPS: 5.0,
    PREEMPT: 0.05,  # 1/s
    SUCCESS: 0.05,
    TTFT50: 0.005,  # s
    TTFT90: 0.005,
    ITL50: 0.0005,
    ITL90: 0.0005,
    E2E90: 0.01,
    QUEUE90: 0.01,
    REPLICA_STARTS: 0.001,  # 1/s: one start within a few minutes
    REPLICA_HEALTHY: 0.5,
    REPLICA_ERRORS: 0.02,
    POWER: 2.0,  # W
    POWER_LIMIT: 1.0,
    SM_CLOCK: 10.0,  # MHz
    CFS_THROTTLED: 0.02,  # s/s
    MEM_FAILCNT: 0.01,
}

#: Default floor for signals not listed (relative to nothing: an absolute epsilon).
DEFAULT_FLOOR = 1e-6
