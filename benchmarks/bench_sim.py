"""Speed and memory of the simulator (issue 3 and issue 12 targets).

Targets (CPU time, one core; the shared machine makes wall time noisy):

* paper size (3 workers + head, 5 QPS): >= 1000 simulated seconds per CPU
  second of a campaign, writing included (a 360-s recorded case in <= 0.36 CPU s)
* 256 replicas at 320 QPS: >= 100 simulated seconds per CPU second, writing included
* memory per case: well under 100 MB at paper size

"Campaign" is what ``llmrca campaign`` does per case: ``run_case`` (model,
telemetry, logs, traces) and ``add_case`` (validation and the files), one
case per fault type in turn.

Run: ``PYTHONPATH=src python benchmarks/bench_sim.py [--workers 255 --qps 320] [--repeat 5] [--memory]``.
Prints medians over ``--repeat`` cases (and ``--json`` for a machine-readable line).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

from llmrca.dataset.io import add_case
from llmrca.model import FAULT_TYPES, FaultSpec
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig

try:
    from llmrca.testbed.base import Timeline
except ImportError:  # an older tree, for before/after comparisons
    from llmrca.campaign import Protocol as Timeline

START = 1_767_225_600.0


def _case(be: SimBackend, i: int, out: Path, counts: dict[str, int]) -> dict[str, float]:
    tl = Timeline()
    spec = FaultSpec(FAULT_TYPES[i % len(FAULT_TYPES)], "ray-worker-2", duration_s=tl.fault_s)
    w, c = time.perf_counter(), time.process_time()
    be.simulate(spec, seed=i, protocol=tl, start_time=START)
    sim_cpu = time.process_time() - c
    w, c = time.perf_counter(), time.process_time()
    case = be.run_case(spec, seed=i, protocol=tl, start_time=START)
    add_case(case, out, counts)
    return {"model_cpu_s": sim_cpu, "campaign_cpu_s": time.process_time() - c, "campaign_wall_s": time.perf_counter() - w,
            "recorded_s": tl.normal_s + tl.fault_s + tl.tail_s}


def _peak_mb(cfg: SimConfig) -> float:
    tracemalloc.start()
    SimBackend(cfg).run_case(FaultSpec("memory", "ray-worker-2"), seed=0, protocol=Timeline(), start_time=START)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=3, help="Ray worker pods (the head hosts one more replica); 255 = 256 replicas")
    ap.add_argument("--qps", type=float, default=5.0, help="offered load (requests/s)")
    ap.add_argument("--repeat", type=int, default=5, help="cases measured (one fault type after another)")
    ap.add_argument("--memory", action="store_true", help="also the peak traced memory of one case")
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    a = ap.parse_args()
    cfg = SimConfig(n_workers=a.workers, qps=a.qps)
    be = SimBackend(cfg)
    with tempfile.TemporaryDirectory() as d:
        counts: dict[str, int] = {}
        _case(be, 0, Path(d), counts)  # warm imports and caches
        rows = [_case(be, i, Path(d), counts) for i in range(1, a.repeat + 1)]
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    res = {
        "replicas": a.workers + 1,
        "qps": a.qps,
        "cases": a.repeat,
        "model_cpu_s_per_case": med["model_cpu_s"],
        "campaign_cpu_s_per_case": med["campaign_cpu_s"],
        "campaign_wall_s_per_case": med["campaign_wall_s"],
        "sim_s_per_cpu_s": med["recorded_s"] / med["campaign_cpu_s"],
    }
    if a.memory:
        res["peak_traced_mb"] = _peak_mb(cfg)
    if a.json:
        print(json.dumps(res))
        return
    target = ">= 1000" if a.workers <= 3 else (">= 100" if a.workers + 1 >= 256 else "")
    print(f"{a.workers + 1} replicas, {a.qps:g} QPS, median of {a.repeat} cases (360 s recorded each)")
    print(f"  model only: CPU s per case            {res['model_cpu_s_per_case']:8.3f}")
    print(f"  campaign (run_case + add_case): CPU s {res['campaign_cpu_s_per_case']:8.3f}   wall s {res['campaign_wall_s_per_case']:.3f}")
    print(f"  simulated s per CPU s, writing included {res['sim_s_per_cpu_s']:8.1f}   target {target}")
    if a.memory:
        print(f"  peak traced memory per case: MB        {res['peak_traced_mb']:8.1f}   target << 100")


if __name__ == "__main__":
    main()
