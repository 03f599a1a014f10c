"""Median seconds per case of the statistical / topology / trace / multi-source methods.

Two sizes: the paper's (6 components: gateway, head, 3 workers, operator;
6 basic metrics each; 72 samples at 5 s; logs and traces as
:func:`llmrca.synthetic.make_case` produces) and 60 components (57 workers).
Each method runs on ``--cases`` synthetic cases per size (different seeds
and roots); the table shows the median and the maximum, and how many cases
had the true root ranked first (top1).  At 60 components
the request rate grows with the number of workers (44 traces per 5 s step
instead of 3), so each worker receives as many requests as at paper size.
One untimed warm-up run per method loads its imports first.

    PYTHONPATH=src python benchmarks/bench_methods2.py [--cases 5] [--methods e-diagnosis,microrca]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from llmrca.methods.registry import get_method
from llmrca.synthetic import make_case

METHODS = ["e-diagnosis", "microrca", "microscope", "monitorrank", "microrank", "tracerca", "mm-baro", "pdiagnose"]
SIZES = {6: 3, 60: 57}  # components -> workers
FAULTS = ("cpu", "memory", "network", "gpu")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=5)
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    cases = {}
    for comps, workers in SIZES.items():
        per_step = math.ceil(3 * (workers + 1) / 4)  # same requests per serving replica as the paper size
        cases[comps] = [
            make_case(
                root=f"ray-worker-{1 + (7 * i) % workers}",
                fault=FAULTS[i % len(FAULTS)],
                n_workers=workers,
                seed=100 + i,
                traces_per_step=per_step,
            )
            for i in range(args.cases)
        ]
        c0 = cases[comps][0]  # ground truth kept here only to count top-1 hits; methods see without_truth()
        print(
            f"# {comps} components: {c0.metrics.shape[1] - 1} metric columns x {len(c0.metrics)} rows, "
            f"{len(c0.logs)} log lines, {len(c0.traces)} spans"
        )
    print(
        f"{'method':<12} {'6 comp median s':>16} {'6 comp max s':>13} {'60 comp median s':>17} {'60 comp max s':>14} {'ratio':>6}"
        f" {'top1 6':>7} {'top1 60':>8}"
    )
    for name in names:
        get_method(name).rank(cases[6][0])  # warm-up: imports
        row = []
        for comps in SIZES:
            times = []
            hits = 0
            for case in cases[comps]:
                m = get_method(name)
                blind = case.without_truth()
                t0 = time.perf_counter()
                r = m.rank(blind)
                times.append(time.perf_counter() - t0)
                hits += r.top(1)[0] in case.root_causes
            row.append((statistics.median(times), max(times), f"{hits}/{len(cases[comps])}"))
        ratio = row[1][0] / row[0][0] if row[0][0] > 0 else float("nan")
        print(
            f"{name:<12} {row[0][0]:>16.4f} {row[0][1]:>13.4f} {row[1][0]:>17.4f} {row[1][1]:>14.4f} {ratio:>6.1f}"
            f" {row[0][2]:>7} {row[1][2]:>8}"
        )


if __name__ == "__main__":
    main()
