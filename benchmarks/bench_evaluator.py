"""Evaluator overhead: NSigma on 1,000 small synthetic cases with two worker processes.

Prints cases/s (median of 3 repetitions, each from scratch: no resume) and
peak memory (parent, and the largest worker) measured with resource.getrusage
(psutil, if installed, adds the summed RSS of parent + workers sampled at the end).

    PYTHONPATH=src python benchmarks/bench_evaluator.py [--cases 1000] [--jobs 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from llmrca.dataset.io import Dataset
from llmrca.evaluate import run_evaluation
from llmrca.report import write_report
from llmrca.synthetic import make_case


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--method", default="nsigma")
    args = ap.parse_args()
    roots = ["ray-worker-1", "ray-worker-2", "ray-worker-3"]
    faults = ["cpu", "memory", "network", "gpu"]
    with tempfile.TemporaryDirectory(prefix="llmrca-bench-") as tmp:
        t0 = time.perf_counter()
        cases = (
            make_case(root=roots[i % 3], fault=faults[(i // 3) % 4], seed=i, with_logs=False, with_traces=False)
            for i in range(args.cases)
        )
        Dataset.write(cases, Path(tmp) / "ds")
        t_write = time.perf_counter() - t0
        rates, evals, reports = [], [], []
        for rep in range(args.reps):
            out = Path(tmp) / f"out{rep}"
            t0 = time.perf_counter()
            res = run_evaluation(Path(tmp) / "ds", [args.method], out, jobs=args.jobs, resume=False, progress=False)
            total = time.perf_counter() - t0
            t1 = time.perf_counter()
            write_report(out)
            reports.append(time.perf_counter() - t1)
            assert res.n_ok == args.cases, res.counts
            evals.append(total)
            rates.append(args.cases / total)
        acc = res.summary.set_index(["method", "fault"]).loc[(args.method, "all"), "ac@1"]
    unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit / 2**20
    print(f"evaluator benchmark: {args.method}, {args.cases} cases, jobs={args.jobs}, {args.reps} repetitions")
    print(f"{'quantity':<44}{'value':>12}")
    print(f"{'write dataset (s)':<44}{t_write:>12.1f}")
    print(f"{'run_evaluation incl. report (s, median)':<44}{statistics.median(evals):>12.2f}")
    print(f"{'  of which write_report (s, median)':<44}{statistics.median(reports):>12.2f}")
    print(f"{'cases/s (median)':<44}{statistics.median(rates):>12.1f}")
    print(f"{'cases/s (min .. max)':<44}{min(rates):>6.1f}..{max(rates):<5.1f}")
    print(f"{'peak RSS parent (MiB)':<44}{parent:>12.0f}")
    print(f"{'peak RSS largest worker (MiB)':<44}{child:>12.0f}")
    print(f"{'peak parent + jobs x largest worker (MiB)':<44}{parent + args.jobs * child:>12.0f}")
    print(f"{'AC@1 (sanity)':<44}{acc:>12.3f}")


if __name__ == "__main__":
    main()
