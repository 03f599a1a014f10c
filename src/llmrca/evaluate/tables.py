"""Table 1 of the paper as a DataFrame: methods grouped by data source × fault types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from llmrca.model import FAULT_TYPES, NO_FAULT


#: Method family -> the paper's "Data Source" group (read from the registry, the one home of method metadata).
def _source_of_family() -> dict[str, str]:
    from llmrca.methods.registry import SOURCE_OF_FAMILY as table

    return dict(table)


SOURCE_OF_FAMILY: dict[str, str] = _source_of_family()
SOURCE_ORDER: tuple[str, ...] = ("Metric", "Trace", "Multi Source", "LLM-aware", "Other")
TABLE_METRICS: tuple[str, ...] = ("ac@1", "ac@3", "avg@5")
METRIC_LABELS: dict[str, str] = {"ac@1": "AC@1", "ac@3": "AC@3", "avg@5": "Avg@5"}
#: Table 1's columns for healthy cases: the false-alarm rate and the number of healthy cases it is over.
FALSE_ALARM = "False alarm"
HEALTHY_N = "n"


def source_of(family: str | None) -> str:
    return SOURCE_OF_FAMILY.get(family or "", "Other")


def table1(summary: pd.DataFrame, families: Mapping[str, str], method_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Rows: (source, method); columns: (fault, metric) for the paper's four faults plus any other present.

    Missing combinations are NaN (a fault absent from the dataset, or a method
    with no scored run for it).  When the summary has healthy rows (``fault ==
    "none"``, see :func:`llmrca.evaluate.metrics.with_false_alarms`) two last
    columns ``("none", "False alarm")`` (share of healthy cases where the
    method named a root cause) and ``("none", "n")`` (healthy cases answered).
    """
    per = summary[summary["fault"] != "all"]
    healthy = per[per["fault"] == NO_FAULT]
    per = per[per["fault"] != NO_FAULT]
    faults = list(FAULT_TYPES) + sorted(set(per["fault"]) - set(FAULT_TYPES))
    methods = list(method_order) if method_order is not None else list(dict.fromkeys(summary["method"]))
    methods += [m for m in dict.fromkeys(summary["method"]) if m not in methods]
    rows = sorted(
        ((source_of(families.get(m)), m) for m in methods),
        key=lambda sm: (SOURCE_ORDER.index(sm[0]), methods.index(sm[1])),
    )
    tuples = [(f, METRIC_LABELS[k]) for f in faults for k in TABLE_METRICS]
    if not healthy.empty:
        tuples += [(NO_FAULT, FALSE_ALARM), (NO_FAULT, HEALTHY_N)]
    cols = pd.MultiIndex.from_tuples(tuples, names=["fault", "metric"])
    idx = pd.MultiIndex.from_tuples(rows, names=["source", "method"]) if rows else pd.MultiIndex.from_tuples([], names=["source", "method"])
    table = pd.DataFrame(index=idx, columns=cols, dtype=float)
    lookup = per.set_index(["method", "fault"])
    for src, m in rows:
        for f in faults:
            if (m, f) in lookup.index:
                r = lookup.loc[(m, f)]
                for k in TABLE_METRICS:
                    table.loc[(src, m), (f, METRIC_LABELS[k])] = float(r[k])
    for _, r in healthy.iterrows():
        for src, m in rows:
            if m == r["method"]:
                table.loc[(src, m), (NO_FAULT, FALSE_ALARM)] = float(r["false_alarm"])
                table.loc[(src, m), (NO_FAULT, HEALTHY_N)] = float(r["n"])
    return table
