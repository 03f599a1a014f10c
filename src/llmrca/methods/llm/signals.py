"""The signals the LLM-aware method reads, by their semantic kind.

Each constant is the canonical metric name of a kind of the metric vocabulary
(:mod:`llmrca.telemetry.vocabulary`); the method renames whatever columns a
case has (any exporter's names and units) to these canonical names before it
reads them (:func:`~llmrca.telemetry.vocabulary.canonical_frame`).  ``FLOORS`` gives, per signal, the smallest
change that is physically meaningful (in the signal's unit); it keeps robust
z-scores finite on signals that are flat in the normal window (a power limit,
an error counter at zero) without tuning anything to a dataset.
"""

from __future__ import annotations

from llmrca.telemetry.vocabulary import KINDS


def _c(kind: str) -> str:
    return KINDS[kind].canonical


# -- basic set (paper) --------------------------------------------------------
CPU = _c("cpu")
MEM = _c("memory")
NET_RX = _c("net_rx")
NET_TX = _c("net_tx")
GPU_UTIL = _c("gpu_util")
LAT50 = _c("latency_p50")
LAT90 = _c("latency_p90")
#: Mean mesh latency (histogram ``_sum`` / ``_count``): not quantised by the bucket layout.
LAT_MEAN = _c("latency_mean")

# -- extended: vLLM engine ----------------------------------------------------
RUNNING = _c("running")
WAITING = _c("engine_queue")
KV_CACHE = _c("kv_cache")
PROMPT_TPS = _c("prompt_tokens")
GEN_TPS = _c("generation_tokens")
PREEMPT = _c("preemptions")
SUCCESS = _c("finished_requests")
TTFT50 = _c("ttft_p50")
TTFT90 = _c("ttft_p90")
ITL50 = _c("itl_p50")
ITL90 = _c("itl_p90")
E2E90 = _c("e2e_p90")
E2E_MEAN = _c("e2e_mean")
QUEUE90 = _c("queue_time_p90")

# -- extended: Ray Serve --------------------------------------------------------
REPLICA_STARTS = _c("replica_starts")
REPLICA_HEALTHY = _c("replica_healthy")
REPLICA_ERRORS = _c("replica_errors")

# -- extended: DCGM ----------------------------------------------------------------
POWER = _c("power")
POWER_LIMIT = _c("power_limit")
SM_CLOCK = _c("sm_clock")
THROTTLE = _c("clock_events")
POWER_VIOLATION = _c("power_violation")
RESTARTS = _c("restarts")
SW_POWER_CAP_BIT = 0x4  # DCGM clock event reason "SW power cap"

# -- extended: cAdvisor --------------------------------------------------------------
CFS_THROTTLED = _c("cpu_throttled")
MEM_FAILCNT = _c("memory_failcnt")
MEM_LIMIT = _c("memory_limit")

# -- extended: beyond the paper's faults (issue 16) ------------------------------------
GPU_TEMP = _c("gpu_temperature")
THERMAL_VIOLATION = _c("thermal_violation")
XID = _c("xid_errors")
CPU_PRESSURE = _c("cpu_pressure")
NODE_CPU = _c("node_cpu")
TCP_RETRANS = _c("tcp_retransmits")
#: NVML clock-event reasons that are not the power cap: HW slowdown, SW / HW thermal slowdown, HW power brake
THERMAL_BITS = 0x8 | 0x20 | 0x40 | 0x80

# -- derived (computed by the method from two catalogue columns) -----------------
#: mesh p90 latency minus the engine's own e2e p90: the network's share of a request.
NET_SHARE = "net-share:p90"
#: the same from the means (mesh mean − engine mean): moves with a delay the buckets hide.
NET_SHARE_MEAN = "net-share:mean"

#: Mesh latency statistics the propagation reads, quantiles first then the mean.
MESH_LATENCY = (LAT50, LAT90, LAT_MEAN)

#: Engine latencies: how long the replica itself takes (excludes the network).
ENGINE_LATENCY = (TTFT90, ITL90, QUEUE90, E2E90)

#: Signals the method uses when present, grouped by what they reveal; the
#: explanation lists the groups a case lacked.
GROUPS: dict[str, tuple[str, ...]] = {
    "resources (basic)": (CPU, MEM, NET_RX, NET_TX, GPU_UTIL),
    "mesh latency (basic)": (LAT50, LAT90, LAT_MEAN),
    "engine latency decomposition": (TTFT90, ITL90, QUEUE90, E2E90),
    "engine load": (RUNNING, WAITING, KV_CACHE, PREEMPT),
    "replica lifecycle": (REPLICA_STARTS, REPLICA_HEALTHY, REPLICA_ERRORS),
    "accelerator power": (POWER, POWER_LIMIT, SM_CLOCK, THROTTLE, POWER_VIOLATION),
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
    LAT_MEAN: 0.01,
    NET_SHARE: 0.01,
    NET_SHARE_MEAN: 0.01,
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
    E2E_MEAN: 0.01,
    QUEUE90: 0.01,
    REPLICA_STARTS: 0.001,  # 1/s: one start within a few minutes
    REPLICA_HEALTHY: 0.5,
    REPLICA_ERRORS: 0.02,
    POWER: 2.0,  # W
    POWER_LIMIT: 1.0,
    SM_CLOCK: 10.0,  # MHz
    POWER_VIOLATION: 1000.0,  # µs/s: throttled 0.1 % of the time
    RESTARTS: 0.5,  # count
    CFS_THROTTLED: 0.02,  # s/s
    MEM_FAILCNT: 0.01,
    GPU_TEMP: 1.0,  # C
    THERMAL_VIOLATION: 1000.0,  # µs/s: held back 0.1 % of the time
    XID: 0.5,  # an Xid code
    CPU_PRESSURE: 0.01,  # s/s
    NODE_CPU: 0.1,  # cores
    TCP_RETRANS: 1.0,  # segments/s
}

#: Default floor for signals not listed (relative to nothing: an absolute epsilon).
DEFAULT_FLOOR = 1e-6
