"""Speed and memory of the simulator (issue 3 targets).

* one 360-s case of the 4-replica stack at 5 QPS: <= 0.4 s wall on one core
* a 64-replica stack at 80 QPS: >= 50x real time
* memory per case: well under 100 MB

Run: ``PYTHONPATH=src python benchmarks/bench_sim.py [--repeat 5]``.  Prints
medians; wall time on a shared machine is noisy, so CPU time is shown too.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig

START = 1_767_225_600.0


def _case(cfg: SimConfig, seed: int) -> tuple[float, float, float]:
    be = SimBackend(cfg)
    p = Timeline()
    w, c = time.perf_counter(), time.process_time()
    be.run_case(FaultSpec("cpu", "ray-worker-2"), seed=seed, protocol=p, start_time=START)
    return time.perf_counter() - w, time.process_time() - c, p.warmup_s + p.normal_s + p.fault_s + p.tail_s


def _peak_mb(cfg: SimConfig) -> float:
    tracemalloc.start()
    SimBackend(cfg).run_case(FaultSpec("memory", "ray-worker-2"), seed=0, protocol=Timeline(), start_time=START)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    small, big = SimConfig(), SimConfig(n_workers=63, qps=80.0)
    _case(small, 0)  # warm imports
    s = [_case(small, i) for i in range(a.repeat)]
    b = [_case(big, i) for i in range(max(1, a.repeat // 2))]
    sim_s = b[0][2]
    rows = [
        ("4 replicas, 5 QPS, one 360-s case: wall s", statistics.median(x[0] for x in s), "<= 0.4"),
        ("4 replicas, 5 QPS, one 360-s case: CPU s", statistics.median(x[1] for x in s), ""),
        ("64 replicas, 80 QPS: x real time (wall)", sim_s / statistics.median(x[0] for x in b), ">= 50"),
        ("64 replicas, 80 QPS: x real time (CPU)", sim_s / statistics.median(x[1] for x in b), ""),
        ("peak traced memory per case, 4 replicas: MB", _peak_mb(small), "<< 100"),
        ("peak traced memory per case, 64 replicas: MB", _peak_mb(big), "<< 100"),
    ]
    print(f"{'figure':48s} {'median':>10s}  target")
    for name, v, target in rows:
        print(f"{name:48s} {v:10.3f}  {target}")


if __name__ == "__main__":
    main()
