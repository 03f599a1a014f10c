"""Median seconds per case of the graph/causal methods, at the paper's size and at 60 components.

Cases come from the linear structural system :func:`llmrca.methods.graph.sem.sem_case`
(8 metrics per component, 72 samples at 5 s, fault injected at sample 60).
Size (a) is the paper's deployment (6 components), size (b) has 60
components (480 metric columns before the method's column cap).  The root
cause rotates over workers and the head, with cpu / network / memory faults.

    python benchmarks/bench_causal.py                 # all nine methods, 3 cases per size
    python benchmarks/bench_causal.py --cases 5 --methods pc-pagerank,microcause
    python benchmarks/bench_causal.py --set max_columns=128

Prints one row per method and size: median wall-clock and median CPU seconds
per case (CPU time is what to compare on a shared, loaded machine), the
maximum wall-clock, and how often the root cause came first (AC@1).  BLAS
runs single-threaded, as in the evaluator's process pool.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmrca.config import parse_overrides  # noqa: E402
from llmrca.methods.graph.sem import sem_case, sem_cases  # noqa: E402
from llmrca.methods.registry import get_method  # noqa: E402

METHODS = [
    "pc-pagerank",
    "pc-randomwalk",
    "fci-pagerank",
    "fci-randomwalk",
    "granger-pagerank",
    "granger-randomwalk",
    "lingam-pagerank",
    "lingam-randomwalk",
    "microcause",
]
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3, help="cases per size (default 3)")
    ap.add_argument("--sizes", default="6,60", help="numbers of components (default 6,60)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--set", action="append", default=[], help="config override key=value for every method")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    sizes = [int(s) for s in args.sizes.split(",")]
    overrides = parse_overrides(args.set)
    data = {s: sem_cases(s, args.cases) for s in sizes}
    head = f"{'method':<20}" + "".join(f" | {f'{s} comp: wall s':>15} {'cpu s':>6} {'max s':>6} {'AC@1':>5}" for s in sizes)
    print(f"cases per size: {args.cases}; samples per case: 72 (5 s); overrides: {overrides or 'none'}")
    print(head)
    print("-" * len(head))
    warm = sem_case(root="ray-worker-1", n_components=4, seed=0).without_truth()
    for name in args.methods.split(","):
        get_method(name, **overrides).rank(warm)  # untimed: imports and caches
        row = f"{name:<20}"
        for s in sizes:
            secs, cpu, hits, err = [], [], 0, ""
            for case in data[s]:
                m = get_method(name, **overrides)
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    r = m.rank(case.without_truth())
                    hits += int(r.top(1) == sorted(case.root_causes))
                except Exception as e:  # report, do not hide: the row says which error
                    err = f"{type(e).__name__}"
                secs.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            cell = f" | {statistics.median(secs):>15.2f} {statistics.median(cpu):>6.2f} {max(secs):>6.2f} {hits:>2}/{len(secs):<2}"
            row += cell + (f" ({err})" if err else "")
        print(row, flush=True)


if __name__ == "__main__":
    main()
