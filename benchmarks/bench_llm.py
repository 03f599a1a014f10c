"""Decision time of llm-rca at the paper's size and at 64 workers (simulator cases).

    PYTHONPATH=src python benchmarks/bench_llm.py [--repeat 15]

For each size it simulates one GPU-throttling case (per-replica load kept at
the paper's 5 QPS over 4 replicas), then times (a) an offline ``rank`` of the
case (learn the baseline + decide) and (b) one online ``decide`` on a 60 s
sliding window after ``fit_normal`` — what a heal loop pays per tick.
Prints the median over ``--repeat`` runs, measured in this one process.
"""

from __future__ import annotations

import argparse
import statistics
import time

from llmrca.campaign import Protocol, make_backend
from llmrca.methods.llm import LlmRca
from llmrca.model import FaultSpec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--sizes", default="3,64", help="worker counts")
    a = ap.parse_args()
    print("| workers | components | metric columns | rank (offline) median ms | decide (online) median ms | top | fault type |")
    print("|---|---|---|---|---|---|---|")
    for n in (int(x) for x in a.sizes.split(",")):
        be = make_backend("sim", workers=n, qps=5.0 * (n + 1) / 4.0, scrape_interval_s=None)
        case = be.run_case(FaultSpec("gpu", "ray-worker-2", {}, 60.0), seed=7, protocol=Protocol(), start_time=1_767_225_600.0)
        be.close()
        c = case.with_metric_set("extended").without_truth()
        m = LlmRca()
        ranks = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            r = m.rank(c)
            ranks.append(time.perf_counter() - t)
        df = c.metrics
        m.fit_normal(df[df["time"] < c.inject_time], topology=c.topology)
        window = df[(df["time"] >= c.inject_time) & (df["time"] < c.inject_time + 60.0)]
        decides = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            d = m.decide(window)
            decides.append(time.perf_counter() - t)
        assert d.components[0] == r.components[0]
        print(
            f"| {n} | {len(c.components)} | {df.shape[1] - 1} | {statistics.median(ranks) * 1e3:.1f} | "
            f"{statistics.median(decides) * 1e3:.1f} | {r.components[0]} | {r.fault_type} |"
        )


if __name__ == "__main__":
    main()
