"""Tune and measure llm-rca's abstention ("no root cause") on healthy and faulty cases.

For every case of the given datasets, llm-rca runs with abstention off and
records its alarm level (:func:`llmrca.methods.llm.evidence.alarm_level`),
whether its first component is the culprit and the fault type it names.
Then, for each threshold in ``--thresholds``, it prints the false-alarm rate
on the healthy cases and AC@1 per fault type on the faulty ones (an
abstention on a faulty case is a miss).

    # tuning (seeds 1-5)
    for s in 1 2 3 4 5; do llmrca campaign --profile quick --seed $s --healthy 8 --out /tmp/tune/s$s -q; done
    python benchmarks/llm_abstain.py /tmp/tune/s1 ... /tmp/tune/s5
    # measuring on an unseen seed, at the default threshold only
    llmrca campaign --profile quick --seed 7707 --healthy 24 --out /tmp/heldout -q
    python benchmarks/llm_abstain.py /tmp/heldout --thresholds default
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from llmrca.dataset.io import Dataset
from llmrca.methods.common.metric_set import choose_metric_set
from llmrca.methods.llm.method import ABSTAIN_BELOW, LlmRca


def levels(folders: list[str]) -> list[dict]:
    """One row per case: dataset, case, fault ("none" for healthy), alarm level, hit (top1 is a root cause)."""
    rows = []
    m = LlmRca(abstain_below=None)
    for folder in folders:
        try:
            ds = Dataset(folder)
        except (OSError, ValueError) as e:
            raise SystemExit(f"error: {e}") from None
        for d, case in ds.iter_cases():
            if isinstance(case, Exception):
                raise SystemExit(f"{d}: {case}")
            blind = case.with_metric_set(choose_metric_set(case.metric_sets, m.tags.metric_set, None)).without_truth()
            r = m.rank(blind)
            rows.append(
                {
                    "dataset": folder,
                    "case": ds.case_id(d),
                    "fault": case.fault_type,
                    "level": float(r.confidence),
                    "hit": bool(r.components and r.components[0] in case.root_causes),
                    "type_ok": r.fault_type == case.fault_type,
                }
            )
    return rows


def report(rows: list[dict], thresholds: list[float]) -> None:
    if not rows:
        raise SystemExit("error: no case in the given folders (campaign folders with case subfolders)")
    healthy = np.array([r["level"] for r in rows if r["fault"] == "none"])
    faulty = [r for r in rows if r["fault"] != "none"]
    if healthy.size:
        print(f"{len(healthy)} healthy cases: alarm level max {healthy.max():.2f}, p95 {np.quantile(healthy, 0.95):.2f}, median {np.median(healthy):.2f}")
    else:
        print("no healthy cases (campaign --healthy N adds some): false alarms cannot be measured")
    fl = np.array([r["level"] for r in faulty])
    if fl.size:
        print(f"{len(faulty)} faulty cases: alarm level min {fl.min():.2f}, p5 {np.quantile(fl, 0.05):.2f}, median {np.median(fl):.2f}")
    by: dict[str, list[dict]] = defaultdict(list)
    for r in faulty:
        by[r["fault"]].append(r)
    for th in thresholds:
        fa = f"{np.mean(healthy >= th):.3f}" if healthy.size else "n/a"
        acc = {f: float(np.mean([r["hit"] and r["level"] >= th for r in rs])) for f, rs in by.items()}
        typ = {f: float(np.mean([r["type_ok"] and r["level"] >= th for r in rs])) for f, rs in by.items()}
        print(
            f"threshold {th:5.2f}: false alarms {fa} ({int(np.sum(healthy >= th))}/{healthy.size}); AC@1 "
            + ", ".join(f"{f} {a:.3f} (n={len(by[f])})" for f, a in acc.items())
            + "; type named " + ", ".join(f"{f} {a:.2f}" for f, a in typ.items())
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--thresholds", default="1,1.5,2,2.5,3,4", help="comma-separated, or 'default' (the method's default)")
    a = ap.parse_args()
    ths = [ABSTAIN_BELOW] if a.thresholds == "default" else [float(x) for x in a.thresholds.split(",")]
    report(levels(a.datasets), ths)


if __name__ == "__main__":
    main()
