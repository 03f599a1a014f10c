"""Accuracy metrics of RCA rankings: AC@k and Avg@k (paper eq. (1)), misattribution.

For one case with ranking ``R`` and true root-cause set ``V``::

    AC@k(case) = |{i < k : R[i] ∈ V}| / min(k, |V|)
    Avg@k(case) = (AC@1 + ... + AC@k) / k

and AC@k over a set of cases is the mean of the per-case values (eq. (1)).

Ties: when a method gives several components the same score their order is
arbitrary, so by default (``ties="expected"``) a tie group that straddles
position k contributes its expected number of hits under a uniformly random
order of the group.  Without ties this is exactly eq. (1); ``ties="order"``
takes the ranking's order literally (RCAEval's behaviour).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

KS: tuple[int, ...] = (1, 2, 3, 4, 5)


def hits_at_k(components: Sequence[str], roots: Iterable[str], k: int, scores: Sequence[float] | None = None, *, ties: str = "expected") -> float:
    """(Expected) number of true root causes among the top ``k`` of a ranking."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    truth = set(roots)
    comps = list(components)
    if ties == "order" or scores is None or len(scores) != len(comps):
        return float(sum(c in truth for c in comps[:k]))
    if ties != "expected":
        raise ValueError(f"ties must be 'expected' or 'order', got {ties!r}")
    total = 0.0
    start = 0
    n = len(comps)
    while start < n and start < k:
        end = start + 1
        while end < n and _same(scores[end], scores[start]):
            end += 1
        group = comps[start:end]
        in_top = min(end, k) - start
        total += in_top * sum(c in truth for c in group) / len(group)
        start = end
    return total


def _same(a: float, b: float) -> bool:
    a, b = float(a), float(b)
    return a == b or (np.isnan(a) and np.isnan(b))


def ac_at_k(components: Sequence[str], roots: Iterable[str], k: int, scores: Sequence[float] | None = None, *, ties: str = "expected") -> float:
    """Per-case AC@k of eq. (1): hits in the top k over min(k, |root causes|)."""
    truth = set(roots)
    if not truth:
        raise ValueError("a case without root causes cannot be scored")
    return hits_at_k(components, truth, k, scores, ties=ties) / min(k, len(truth))


def avg_at_k(components: Sequence[str], roots: Iterable[str], k: int, scores: Sequence[float] | None = None, *, ties: str = "expected") -> float:
    """Per-case Avg@k: the mean of AC@1 .. AC@k."""
    truth = set(roots)
    return float(np.mean([ac_at_k(components, truth, j, scores, ties=ties) for j in range(1, k + 1)]))


def case_scores(components: Sequence[str], roots: Iterable[str], scores: Sequence[float] | None = None, *, ties: str = "expected") -> dict[str, float]:
    """AC@1..5 and Avg@5 of one ranking."""
    truth = set(roots)
    out = {f"ac@{k}": ac_at_k(components, truth, k, scores, ties=ties) for k in KS}
    out["avg@5"] = float(np.mean([out[f"ac@{k}"] for k in KS]))
    return out


def summarize(scored: pd.DataFrame, *, by: Sequence[str] = ("method", "fault")) -> pd.DataFrame:
    """Mean per-case scores per method and fault type, plus ``fault == "all"``.

    ``scored`` has one row per scored run with columns method, fault, ac@1..ac@5,
    avg@5.  Returns columns ``method, fault, n, ac@1, ac@3, avg@5``.
    """
    cols = ["method", "fault", "n", "ac@1", "ac@3", "avg@5"]
    if scored.empty:
        return pd.DataFrame(columns=cols)
    metrics = ["ac@1", "ac@3", "avg@5"]
    per_fault = scored.groupby(list(by), sort=False)[metrics].agg("mean").reset_index()
    per_fault.insert(2, "n", scored.groupby(list(by), sort=False).size().to_numpy())
    overall = scored.groupby("method", sort=False)[metrics].agg("mean").reset_index()
    overall.insert(1, "fault", "all")
    overall.insert(2, "n", scored.groupby("method", sort=False).size().to_numpy())
    out = pd.concat([per_fault, overall], ignore_index=True)
    order = {m: i for i, m in enumerate(dict.fromkeys(scored["method"]))}
    out["_m"] = out["method"].map(order)
    out["_f"] = out["fault"].map(lambda f: (1, "") if f == "all" else (0, _fault_key(f)))
    out = out.sort_values(["_m", "_f"], kind="stable").drop(columns=["_m", "_f"]).reset_index(drop=True)
    return out[cols]


def with_false_alarms(summary: pd.DataFrame, false_alarms: pd.DataFrame) -> pd.DataFrame:
    """``summary`` plus one row per method with ``fault == "none"`` (healthy cases) and a ``false_alarm`` column.

    ``false_alarms`` is :func:`llmrca.evaluate.results.false_alarm_summary`
    (method, n, false_alarms, false_alarm).  The healthy row's ``n`` is the
    number of healthy cases answered, its AC@k are NaN (nothing to rank) and
    ``false_alarm`` is the share of them where the method named a root cause;
    ``false_alarm`` is NaN on the other rows.  Without healthy cases the
    summary is returned unchanged (no new column).
    """
    from llmrca.model import NO_FAULT

    if false_alarms.empty:
        return summary
    out = summary.copy()
    out["false_alarm"] = np.nan
    rows = pd.DataFrame(
        {"method": false_alarms["method"], "fault": NO_FAULT, "n": false_alarms["n"].astype(int), "false_alarm": false_alarms["false_alarm"].astype(float)}
    )
    out = pd.concat([out, rows], ignore_index=True) if not out.empty else rows.reindex(columns=[*summary.columns, "false_alarm"])
    order = {m: i for i, m in enumerate(dict.fromkeys([*summary["method"], *false_alarms["method"]]))}
    out["_m"] = out["method"].map(order)
    out["_f"] = out["fault"].map(lambda f: 2 if f == NO_FAULT else (1 if f == "all" else 0))
    return out.sort_values(["_m", "_f"], kind="stable").drop(columns=["_m", "_f"]).reset_index(drop=True)


def _fault_key(f: str) -> str:
    from llmrca.model import FAULT_TYPES

    return f"{FAULT_TYPES.index(f):02d}" if f in FAULT_TYPES else f"99{f}"


def blame_rows(scored: pd.DataFrame) -> pd.DataFrame:
    """One row per (run, component blamed at rank 1 that is no root cause): columns of ``scored`` plus ``blamed`` and
    ``weight``.

    A tie for rank 1 shares the blame: each wrong component of the tie weighs 1 / the tie's size (the columns
    ``blamed1`` / ``blame_weight`` of :func:`llmrca.evaluate.results.scored_frame`); without them (a frame made
    by hand), ``top1`` weighs 1 when ``hit1`` is false.  A run with no component first (an empty ranking, an
    abstention, a failed run without fallback) blames ``"(no root cause)"`` with weight 1.
    """
    if scored.empty:
        return scored.assign(blamed=pd.Series(dtype=object), weight=pd.Series(dtype=float))
    df = scored.copy()
    if "blamed1" not in df:
        df["blamed1"] = [[t] if isinstance(t, str) and not h else [] for t, h in zip(df["top1"], df["hit1"].astype(bool), strict=True)]
        df["blame_weight"] = 1.0
    none_first = df["top1"].isna()
    df["blamed1"] = [["(no root cause)"] if n else list(b) for n, b in zip(none_first, df["blamed1"], strict=True)]
    df["weight"] = np.where(none_first, 1.0, df["blame_weight"].astype(float))
    out = df.explode("blamed1").dropna(subset=["blamed1"]).rename(columns={"blamed1": "blamed"})
    return out.drop(columns=["blame_weight"])


def misattribution(scored: pd.DataFrame) -> pd.DataFrame:
    """How often each component was blamed at rank 1 when it is not a root cause (ties share the blame, see
    :func:`blame_rows`; a count is then a fraction of a run).

    ``scored`` needs columns method, fault, top1 and hit1 (whether top1 is a root cause), and uses ``blamed1`` /
    ``blame_weight`` when present.  Returns columns ``method, fault, blamed, count``.
    """
    cols = ["method", "fault", "blamed", "count"]
    if scored.empty:
        return pd.DataFrame(columns=cols)
    rows = blame_rows(scored)
    if rows.empty:
        return pd.DataFrame(columns=cols)
    out = rows.groupby(["method", "fault", "blamed"], sort=False)["weight"].sum().reset_index(name="count")
    out["count"] = out["count"].round(3)
    if (out["count"] == out["count"].round()).all():
        out["count"] = out["count"].astype(int)
    return out[cols]


def named_fault_type(record: dict[str, Any]) -> str | None:
    """The fault type a run's method named (``Ranking.fault_type`` as stored in the record, or its explanation's
    ``fault_type``), normalised (:func:`llmrca.model.normalize_fault_type`); None when it named none."""
    from llmrca.model import normalize_fault_type

    named = record.get("fault_type")
    expl = record.get("explanation")
    if not named and isinstance(expl, dict):
        named = expl.get("fault_type")
    return normalize_fault_type(named) if isinstance(named, str) and named.strip() else None


def type_named_frame(records: Sequence[dict[str, Any]], scored: pd.DataFrame) -> pd.DataFrame:
    """Per method and fault type (and ``all``): the share of its scored faulty runs whose named fault type is the
    true one (columns ``method, fault, type_named``, 0..1).

    Only methods that named a type in at least one run appear; a run that named
    none (abstained, failed, or silent) counts as not named.  ``scored`` is
    :func:`llmrca.evaluate.results.scored_frame` (the runs counted).
    """
    cols = ["method", "fault", "type_named"]
    named = {(r["method"], r["case"]): named_fault_type(r) for r in records}
    namers = {m for (m, _), t in named.items() if t is not None}
    if scored.empty or not namers:
        return pd.DataFrame(columns=cols)
    s = scored[scored["method"].isin(namers)]
    hit = pd.Series([named.get((m, c)) == f for m, c, f in zip(s["method"], s["case"], s["fault"], strict=True)], index=s.index, dtype=float)
    s = s.assign(_hit=hit)
    per = s.groupby(["method", "fault"], sort=False)["_hit"].mean().reset_index()
    overall = s.groupby("method", sort=False)["_hit"].mean().reset_index().assign(fault="all")
    return pd.concat([per, overall], ignore_index=True).rename(columns={"_hit": "type_named"})[cols]


def with_type_named(summary: pd.DataFrame, type_named: pd.DataFrame) -> pd.DataFrame:
    """``summary`` plus a ``type_named`` column (:func:`type_named_frame`; NaN for methods that name no type and on
    healthy rows).  Without any method naming a type the summary is returned unchanged (no new column)."""
    if type_named.empty:
        return summary
    return summary.merge(type_named, on=["method", "fault"], how="left")
