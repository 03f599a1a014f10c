"""Small synthetic cases with a known root cause, for tests and examples.

This is *not* the simulator (:mod:`llmrca.testbed.sim`): it is a linear
structural system over the paper's topology in which the root cause's
metrics shift at the injection time and the shift propagates upstream to its
callers, attenuated.  Fast, seeded, and enough to check that a method can
find an obvious culprit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.model import Case, FaultRecord, Topology
from llmrca.telemetry import GATEWAY, HEAD
from llmrca.telemetry.catalogue import paper_topology

#: Which basic metric a fault type moves most (before propagation).
_FAULT_METRIC = {"cpu": "cpu", "memory": "mem", "network": "latency-90", "gpu": "latency-90"}


def make_case(
    *,
    root: str = "ray-worker-2",
    fault: str = "cpu",
    n_workers: int = 3,
    seed: int = 0,
    n_normal: int = 60,
    n_anomal: int = 12,
    step_s: float = 5.0,
    shift: float = 6.0,
    with_logs: bool = True,
    with_traces: bool = True,
    start: float = 1_700_000_000.0,
    traces_per_step: int = 3,
) -> Case:
    """A case whose root cause ``root`` shifts by ``shift`` noise-sigmas at injection.

    ``traces_per_step`` requests start per time step (raise it with
    ``n_workers`` so that every worker keeps receiving traffic).
    """
    rng = np.random.default_rng(seed)
    topo = paper_topology(n_workers)
    n = n_normal + n_anomal
    t = start + step_s * np.arange(n)
    inject = float(t[n_normal])
    metrics = ("cpu", "mem", "net-rx", "net-tx", "latency-50", "latency-90")
    # depth from the root upwards: callers inherit an attenuated shift
    atten = {root: 1.0}
    frontier = [root]
    while frontier:
        nxt = []
        for c in frontier:
            for caller in topo.callers(c):
                if caller not in atten:
                    atten[caller] = atten[c] * 0.35
                    nxt.append(caller)
        frontier = nxt
    cols: dict[str, np.ndarray] = {"time": t}
    key = _FAULT_METRIC.get(fault, "cpu")
    for comp in topo.nodes:
        for m in metrics:
            base = {"cpu": 2.0, "mem": 4e9, "net-rx": 1e5, "net-tx": 1e5, "latency-50": 0.5, "latency-90": 1.0}[m]
            sigma = base * 0.05
            x = base + rng.normal(0.0, sigma, n)
            a = atten.get(comp, 0.0)
            if a > 0:
                if m == key:
                    x[n_normal:] += shift * sigma * a
                elif m.startswith("latency") and comp != root:
                    x[n_normal:] += shift * sigma * a
            cols[f"{comp}_{m}"] = x
    df = pd.DataFrame(cols)
    logs = traces = None
    if with_logs:
        rows = []
        for comp in topo.nodes:
            for ti in t:
                k = rng.poisson(3)
                rows += [(ti + 0.1 * j, comp, f"{comp} INFO request handled") for j in range(k)]
                if comp == root and ti >= inject:
                    rows += [(ti + 0.05, comp, f"{comp} ERROR engine step failed")] * int(rng.integers(2, 5))
        logs = pd.DataFrame(rows, columns=["time", "container_name", "message"]).sort_values("time", kind="stable").reset_index(drop=True)
    if with_traces:
        traces = _traces(topo, root, t, inject, rng, traces_per_step)
    return Case(
        metrics=df,
        inject_time=inject,
        name=f"{root}_{fault}/synthetic-{seed}",
        logs=logs,
        traces=traces,
        fault=FaultRecord(type=fault, target=root, requested={"shift_sigma": shift}, achieved={}, start=inject, end=float(t[-1])),
        root_causes=frozenset({root}),
        topology=topo,
        meta={"backend": "synthetic", "seed": seed},
    )


def _traces(topo: Topology, root: str, t: np.ndarray, inject: float, rng: np.random.Generator, per_step: int = 3) -> pd.DataFrame:
    """gateway -> head -> worker spans; the root's self time grows after injection."""
    workers = [w for w in topo.nodes if w.startswith("ray-worker-")] + [HEAD]
    rows = []
    tid = 0
    for ti in t:
        for _ in range(per_step):
            tid += 1
            w = workers[int(rng.integers(len(workers)))]
            self_us = rng.normal(400_000, 20_000)
            if w == root and ti >= inject:
                self_us *= 3.0
            start_us = int(ti * 1e6 + rng.integers(0, 4_000_000))
            head_over = abs(rng.normal(5_000, 500))
            gw_over = abs(rng.normal(2_000, 200))
            rep = int(self_us)
            hd = int(rep + head_over)
            gw = int(hd + gw_over)
            trace = f"t{tid:08x}"
            rows.append((trace, f"{trace}-g", "", GATEWAY, "POST", "/v1/chat/completions", gw, 200, start_us))
            rows.append((trace, f"{trace}-h", f"{trace}-g", HEAD, "POST", "proxy", hd, 200, start_us + 500))
            if w != HEAD:
                rows.append((trace, f"{trace}-r", f"{trace}-h", w, "POST", "generate", rep, 200, start_us + 1000))
    cols = ["traceID", "spanID", "parentSpanID", "serviceName", "methodName", "operationName", "duration", "statusCode", "startTime"]
    return pd.DataFrame(rows, columns=cols)
