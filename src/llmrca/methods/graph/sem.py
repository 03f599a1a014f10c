"""A linear structural system with lagged propagation, for tests and benchmarks of graph methods.

Unlike :func:`llmrca.synthetic.make_case` (independent noise plus a step),
the metrics here are caused by each other, so a causal-discovery algorithm
has a true graph to find.  Per component ``c`` and time ``t`` (unit noise
``e``, shared AR(1) workload ``w``)::

    cpu_c(t)        = 0.5 w(t) + e
    throttled_c(t)  = 0.8 cpu_c(t) + e
    mem_c(t)        = 0.7 mem_c(t-1) + e
    gpu_c(t)        = 0.5 w(t) + e
    net-rx_c(t)     = 0.6 w(t) + e
    net-tx_c(t)     = 0.7 net-rx_c(t) + e
    latency-50_c(t) = cpu_c(t) + 0.3 gpu_c(t) + 0.3 mem_c(t)
                      + sum over callees k of latency-50_k(t-1) / sqrt(#callees) + 0.5 e
    latency-90_c(t) = 0.9 latency-50_c(t) + e

A fault adds ``shift`` (noise units) from the injection on to the root's
``cpu`` (cpu), ``mem`` (memory) or ``latency-50`` (network, gpu), and the
effect reaches the callers' latencies one step later per hop.  Values are
offset and scaled into plausible units (cores, bytes, seconds).  The call
graph is the paper's: gateway -> head -> workers, plus the operator.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.model import Case, FaultRecord, Topology
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, worker_name

METRICS: tuple[str, ...] = (
    "cpu",
    "mem",
    "net-rx",
    "net-tx",
    "gpu",
    "latency-50",
    "latency-90",
    "container_cpu_cfs_throttled_seconds_total:rate",
)
_FAULT_METRIC = {"cpu": "cpu", "memory": "mem", "network": "latency-50", "gpu": "latency-50"}
_UNITS = {"cpu": (2.0, 0.1), "mem": (4e9, 5e7), "net-rx": (1e5, 5e3), "net-tx": (1e5, 5e3), "gpu": (60.0, 3.0),
          "latency-50": (0.5, 0.02), "latency-90": (1.0, 0.04), "container_cpu_cfs_throttled_seconds_total:rate": (0.1, 0.01)}


def sem_topology(n_components: int = 6) -> Topology:
    """gateway -> head -> (n_components - 3) workers, plus the operator."""
    if n_components < 4:
        raise ValueError(f"need at least 4 components (gateway, head, one worker, operator), got {n_components}")
    workers = [worker_name(i) for i in range(1, n_components - 2)]
    edges = [(GATEWAY, HEAD)] + [(HEAD, w) for w in workers]
    return Topology(nodes=(GATEWAY, HEAD, *workers, OPERATOR), edges=tuple(edges), entry=GATEWAY)


def sem_case(
    *,
    root: str = "ray-worker-2",
    fault: str = "cpu",
    n_components: int = 6,
    n_normal: int = 60,
    n_anomal: int = 12,
    step_s: float = 5.0,
    shift: float = 8.0,
    seed: int = 0,
    start: float = 1_700_000_000.0,
) -> Case:
    """A case of the structural system above with a fault at ``root`` (72 samples at 5 s by default)."""
    topo = sem_topology(n_components)
    if root not in topo.nodes:
        raise ValueError(f"root {root!r} is not a component ({', '.join(topo.nodes)})")
    if fault not in _FAULT_METRIC:
        raise ValueError(f"fault must be one of {sorted(_FAULT_METRIC)}, got {fault!r}")
    rng = np.random.default_rng(seed)
    n = n_normal + n_anomal
    comps = list(topo.nodes)
    k = len(comps)
    w = np.zeros(n)
    for t in range(1, n):
        w[t] = 0.6 * w[t - 1] + rng.normal()
    e = {m: rng.normal(size=(n, k)) for m in METRICS}
    fault_on = np.zeros((n, k))
    fault_on[n_normal:, comps.index(root)] = shift
    key = _FAULT_METRIC[fault]
    bump = {m: (fault_on if m == key else 0.0) for m in METRICS}
    cpu = 0.5 * w[:, None] + e["cpu"] + bump["cpu"]
    thr = 0.8 * cpu + e["container_cpu_cfs_throttled_seconds_total:rate"]
    mem = np.zeros((n, k))
    for t in range(n):
        mem[t] = (0.7 * mem[t - 1] if t else 0.0) + e["mem"][t]
    mem += bump["mem"]
    gpu = 0.5 * w[:, None] + e["gpu"]
    rx = 0.6 * w[:, None] + e["net-rx"]
    tx = 0.7 * rx + e["net-tx"]
    callees = {i: [comps.index(b) for b in topo.callees(c)] for i, c in enumerate(comps)}
    lat = cpu + 0.3 * gpu + 0.3 * mem + 0.5 * e["latency-50"] + bump["latency-50"]
    # callers after callees: process components in reverse topological order
    order = list(range(k))[::-1]
    for t in range(1, n):
        for i in order:
            if callees[i]:
                lat[t, i] += lat[t - 1, callees[i]].sum() / np.sqrt(len(callees[i]))
    lat90 = 0.9 * lat + e["latency-90"]
    values = {"cpu": cpu, "mem": mem, "net-rx": rx, "net-tx": tx, "gpu": gpu, "latency-50": lat, "latency-90": lat90,
              "container_cpu_cfs_throttled_seconds_total:rate": thr}
    time = start + step_s * np.arange(n)
    cols: dict[str, np.ndarray] = {"time": time}
    for i, c in enumerate(comps):
        for m in METRICS:
            base, scale = _UNITS[m]
            cols[f"{c}_{m}"] = base + scale * values[m][:, i]
    inject = float(time[n_normal])
    return Case(
        metrics=pd.DataFrame(cols),
        inject_time=inject,
        name=f"{root}_{fault}/sem-{seed}",
        fault=FaultRecord(type=fault, target=root, requested={"shift_sigma": shift}, start=inject, end=float(time[-1])),
        root_causes=frozenset({root}),
        topology=topo,
        meta={"backend": "sem", "seed": seed, "n_components": n_components},
    )


#: Fault mix of :func:`sem_cases`: (fault, worker index; 0 = the head).
BENCH_FAULTS: tuple[tuple[str, int], ...] = (("cpu", 2), ("network", 0), ("memory", 1))


def sem_cases(n_components: int, n: int, *, seed: int = 100) -> list[Case]:
    """``n`` seeded cases cycling through :data:`BENCH_FAULTS` and the workers (for benchmarks)."""
    workers = n_components - 3
    out = []
    for i in range(n):
        fault, w = BENCH_FAULTS[i % len(BENCH_FAULTS)]
        root = "ray-head" if w == 0 else f"ray-worker-{1 + (w + i) % workers}"
        out.append(sem_case(root=root, fault=fault, n_components=n_components, seed=seed + i))
    return out
