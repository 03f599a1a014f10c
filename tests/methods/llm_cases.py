"""A small generator of extended-telemetry cases for the llm-rca tests.

It is not the simulator: a few lines of physics per fault, enough to check
that the method localizes and names each fault, discounts upstream
symptoms, and degrades to the basic set.  Healthy replicas absorb the load
the faulty one sheds (the peers move together), as in a real Ray Serve
deployment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.model import Case, FaultRecord
from llmrca.synthetic import paper_topology
from llmrca.telemetry import BASIC_NAMES, GATEWAY, HEAD, OPERATOR

GIB = 2.0**30


def make_llm_case(fault: str, root: str = "ray-worker-2", *, n_workers: int = 3, seed: int = 0, n_normal: int = 60, n_anomal: int = 12) -> Case:
    rng = np.random.default_rng(seed)
    topo = paper_topology(n_workers)
    replicas = [HEAD] + [n for n in topo.nodes if n.startswith("ray-worker-")]
    n = n_normal + n_anomal
    t = 1_700_000_000.0 + 5.0 * np.arange(n)
    f = np.zeros(n)
    f[n_normal:] = 1.0  # fault active

    def noisy(base: float, rel: float = 0.03) -> np.ndarray:
        return base * (1.0 + rng.normal(0.0, rel, n))

    cols: dict[str, np.ndarray] = {"time": t}
    shed = 0.1  # share of load the peers take over
    lat_by_rep: dict[str, np.ndarray] = {}
    for r in replicas:
        hit = r == root
        load = 1.0 + (0.0 if hit else shed * f)
        ttft = noisy(0.12) * load
        itl = noisy(0.03) * (1 + 0.05 * (load - 1))
        net_delay = np.zeros(n)
        cpu = noisy(1.5) * load
        mem = noisy(6 * GIB, 0.005)
        limit = np.full(n, 300.0)
        power = noisy(240.0, 0.02)
        clock = noisy(1410.0, 0.002)
        thr = np.zeros(n)
        starts = np.zeros(n)
        healthy = np.ones(n)
        if hit and fault == "cpu":
            cpu = cpu + 6.0 * f
            ttft *= 1 + 0.5 * f
            itl *= 1 + 0.15 * f
        if hit and fault == "gpu":
            limit = np.where(f > 0, 150.0, 300.0)
            power = np.where(f > 0, 148.0 + rng.normal(0, 1, n), power)
            clock = np.where(f > 0, 1000.0 + rng.normal(0, 5, n), clock)
            thr = np.where(f > 0, 4.0, 0.0)
            ttft *= 1 + 0.4 * f
            itl *= 1 + 0.2 * f
        if hit and fault == "network":
            net_delay = 1.0 * f
        if hit and fault == "memory":
            k = np.arange(n) - n_normal
            ramp = np.clip(k / 6.0, 0, 1) * 8 * GIB
            oom = k >= 6
            mem = np.where(oom, 0.8 * GIB + rng.normal(0, 1e7, n), mem + ramp * (k >= 0))
            starts = np.where(oom & (k < 9), 0.02, 0.0)
            healthy = np.where(oom & (k < 9), 0.0, 1.0)
        e2e = ttft + 256 * itl
        lat = e2e + net_delay + noisy(0.02)
        lat_by_rep[r] = lat
        cols.update(
            {
                f"{r}_cpu": cpu,
                f"{r}_mem": mem,
                f"{r}_net-rx": noisy(8e4) * load * (1 - 0.5 * f * (hit and fault == "network")),
                f"{r}_net-tx": noisy(2e5) * load,
                # a slower (capped) GPU is busier for the same work
                f"{r}_gpu": np.clip(noisy(80.0, 0.01) * (1 + 0.12 * f * (hit and fault == "gpu")), 0, 100),
                f"{r}_latency-50": lat * 0.8,
                f"{r}_latency-90": lat,
                f"{r}_vllm:num_requests_running": noisy(10.0, 0.1) * load,
                f"{r}_vllm:num_requests_waiting": np.abs(rng.normal(0, 0.2, n)),
                f"{r}_vllm:kv_cache_usage_perc": noisy(0.2, 0.05) * load,
                f"{r}_vllm:time_to_first_token_seconds:p90": ttft,
                f"{r}_vllm:inter_token_latency_seconds:p90": itl,
                f"{r}_vllm:e2e_request_latency_seconds:p90": e2e,
                f"{r}_vllm:request_queue_time_seconds:p90": np.abs(rng.normal(0.01, 0.003, n)),
                f"{r}_ray_serve_deployment_replica_starts_total:rate": starts,
                f"{r}_ray_serve_deployment_replica_healthy": healthy,
                f"{r}_DCGM_FI_DEV_POWER_USAGE": power,
                f"{r}_DCGM_FI_DEV_POWER_MGMT_LIMIT": limit,
                f"{r}_DCGM_FI_DEV_SM_CLOCK": clock,
                f"{r}_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": thr,
                f"{r}_container_cpu_cfs_throttled_seconds_total:rate": np.abs(rng.normal(0.01, 0.005, n)) + (2.0 * f if hit and fault == "cpu" else 0.0),
                f"{r}_container_memory_failcnt:rate": np.zeros(n),
            }
        )
        if hit and fault == "network":
            gaps = (f > 0) & (rng.random(n) < 0.3)
            for k in [k for k in cols if k.startswith(f"{r}_")]:
                cols[k] = np.where(gaps, np.nan, cols[k])
    mix = np.mean(np.vstack(list(lat_by_rep.values())), axis=0)
    for comp, extra in ((HEAD, 0.01), (GATEWAY, 0.02)):
        base = mix + extra + noisy(0.01)
        if comp == HEAD:
            base = np.maximum(base, cols[f"{HEAD}_latency-90"])
        cols[f"{comp}_latency-90"] = base
        cols[f"{comp}_latency-50"] = base * 0.8
    for comp in (GATEWAY, OPERATOR):
        cols[f"{comp}_cpu"] = noisy(0.3)
        cols[f"{comp}_mem"] = noisy(0.5 * GIB, 0.005)
        cols[f"{comp}_net-rx"] = noisy(3e5)
        cols[f"{comp}_net-tx"] = noisy(3e5)
    cols[f"{OPERATOR}_latency-50"] = noisy(0.005)
    cols[f"{OPERATOR}_latency-90"] = noisy(0.01)
    ext = pd.DataFrame(cols)
    basic_cols = ["time"] + [c for c in ext.columns if c != "time" and c.split("_", 1)[1] in BASIC_NAMES]
    inject = float(t[n_normal])
    rows = [(float(ti), r, f"{r} INFO engine step") for ti in t[::4] for r in replicas]
    if fault == "memory":
        rows.append((inject + 31.0, root, "Task was killed due to the node running low on memory (OOM)"))
        rows.append((inject + 32.0, root, "Restarting replica after actor died"))
    logs = pd.DataFrame(rows, columns=["time", "container_name", "message"]).sort_values("time", kind="stable").reset_index(drop=True)
    return Case(
        metrics=ext[basic_cols],
        metric_sets={"basic": ext[basic_cols], "extended": ext},
        inject_time=inject,
        name=f"{root}_{fault}/gen-{seed}",
        logs=logs,
        fault=FaultRecord(type=fault, target=root, start=inject, end=float(t[-1])),
        root_causes=frozenset({root}),
        topology=topo,
        meta={"backend": "test-generator", "seed": seed},
    )
