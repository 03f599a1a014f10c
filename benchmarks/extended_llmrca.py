"""llm-rca on the ``extended`` simulator campaign: AC@1 and fault type named, per fault type and per placement.

Runs the faulty cases of the ``extended`` profile (every fault type on every component it
applies to) for a campaign seed, unless the folder exists, and scores llm-rca on the extended
metric set::

    PYTHONPATH=src python benchmarks/extended_llmrca.py --seed 8801 --out /tmp/ext-8801 [--set sim.qps=8]

The method was tuned on seeds 1 and 2; 8801 and 8802 were only measured.  Healthy cases are
left out here (they are scored by ``llmrca evaluate`` as false alarms); every method's numbers
on the same folder: ``llmrca evaluate <out> --methods all``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
from pathlib import Path

from llmrca import campaign
from llmrca.dataset.io import read_case
from llmrca.methods.llm.method import LlmRca
from llmrca.testbed.base import component_role


def score(folder: Path) -> list[dict[str, object]]:
    """One row per case: fault type, placement role, whether the culprit was first, whether the type was named."""
    rows = []
    for e in json.loads((folder / "dataset.json").read_text())["cases"]:
        case = read_case(folder / e["path"]).with_metric_set("extended")
        assert case.fault is not None
        r = LlmRca().rank(case)
        rows.append({
            "case": e["path"], "fault": case.fault.type, "role": component_role(case.fault.target),
            "ac1": r.components[0] == case.fault.target, "typed": r.fault_type == case.fault.type, "named": r.fault_type,
        })  # fmt: skip
    return rows


def table(rows: list[dict[str, object]], key: str) -> None:
    groups: dict[object, list[dict[str, object]]] = collections.defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    for k, v in sorted(groups.items(), key=lambda kv: str(kv[0])):
        ac1 = sum(bool(r["ac1"]) for r in v) / len(v)
        typed = sum(bool(r["typed"]) for r in v) / len(v)
        print(f"  {k!s:16s} n={len(v):3d}  AC@1 {ac1:.3f}  type named {typed:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=8801)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--set", action="append", default=[], help="sim.<option>=V (e.g. sim.qps=8)")
    a = ap.parse_args()
    if not (a.out / "dataset.json").exists():
        sim = {k.split(".", 1)[1]: v for k, v in (s.split("=", 1) for s in a.set)}
        for k, v in sim.items():
            try:
                sim[k] = float(v)
            except ValueError:
                pass
        campaign.PROFILES["extended"] = dataclasses.replace(campaign.PROFILES["extended"], healthy=0)
        campaign.run_campaign("sim", "extended", seed=a.seed, out=a.out, progress=False, sim_params=sim)
    rows = score(a.out)
    print(f"llm-rca on {a.out} ({len(rows)} faulty cases)")
    print("by fault type")
    table(rows, "fault")
    print("by placement")
    table(rows, "role")
    n = len(rows)
    print(f"  all              n={n:3d}  AC@1 {sum(bool(r['ac1']) for r in rows) / n:.3f}  type named {sum(bool(r['typed']) for r in rows) / n:.3f}")
    for r in rows:
        if not (r["ac1"] and r["typed"]):
            print("  miss:", r["case"], "named", r["named"])


if __name__ == "__main__":
    main()
