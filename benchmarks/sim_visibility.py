"""How visible are the faults in a dataset's basic metrics?

For every case: z-score of each basic column (mean over the fault window vs
mean and sd of the normal window); report per fault type how often the
most-shifted column belongs to the target (a crude 1-sigma-style detector:
faults should be visible, yet not trivially so), and which component wins
otherwise.  ``PYTHONPATH=src python benchmarks/sim_visibility.py DATASET [--metric-set basic]``
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

import numpy as np

from llmrca.dataset.io import Dataset
from llmrca.model import split_column


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("--metric-set", default="basic")
    a = ap.parse_args()
    hits: dict[str, list[bool]] = defaultdict(list)
    winners: dict[str, Counter] = defaultdict(Counter)
    metric_of_win: dict[str, Counter] = defaultdict(Counter)
    for _, case in Dataset(a.dataset).iter_cases():
        if isinstance(case, Exception):
            raise case
        df = case.metric_sets[a.metric_set]
        normal = df[df["time"] < case.inject_time]
        fault = df[(df["time"] >= case.inject_time) & (df["time"] <= case.fault.end)]
        best, best_z = None, -1.0
        for col in df.columns[1:]:
            sd = float(np.nanstd(normal[col]))
            mu = float(np.nanmean(normal[col]))
            fm = float(np.nanmean(fault[col])) if fault[col].notna().any() else mu
            z = abs(fm - mu) / sd if sd > 0 else (0.0 if fm == mu else np.inf)
            if z > best_z:
                best, best_z = col, z
        comp, metric = split_column(best)
        ft = case.fault.type
        hits[ft].append(comp == case.fault.target)
        winners[ft][comp if comp != case.fault.target else "TARGET"] += 1
        metric_of_win[ft][metric] += 1
    print(f"{'fault':8s} {'cases':>5s} {'top-z on target':>16s}  top-z component (counts)   top-z metric (counts)")
    for ft in sorted(hits):
        h = hits[ft]
        print(f"{ft:8s} {len(h):5d} {np.mean(h):16.2f}  {dict(winners[ft])}  {dict(metric_of_win[ft])}")


if __name__ == "__main__":
    main()
