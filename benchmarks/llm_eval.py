"""Shared helpers of the llm-rca benchmarks: score llm-rca on a dataset (AC@1 per fault, type accuracy)."""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from llmrca.dataset.io import Dataset
from llmrca.methods.llm import LlmRca
from llmrca.model import FAULT_TYPES, Case


def score_case(case: Case, metric_set: str, method: LlmRca | None = None) -> dict[str, Any]:
    """Rank one case (ground truth stripped) and compare with its truth."""
    m = method or LlmRca()
    view = case.with_metric_set(metric_set) if metric_set in case.metric_sets else case
    t0 = time.perf_counter()
    r = m.rank(view.without_truth())
    ms = (time.perf_counter() - t0) * 1e3
    truth = case.fault_type or "?"
    return {
        "case": case.name,
        "fault": truth,
        "target": sorted(case.root_causes),
        "top": r.components[0],
        "hit1": r.components[0] in case.root_causes,
        "hit3": bool(set(r.components[:3]) & set(case.root_causes)),
        "type": r.fault_type,
        "type_ok": r.fault_type == truth,
        "ms": ms,
        "summary": (r.explanation or {}).get("summary", ""),
        "metric_set": view.metric_set,
    }


def score_dataset(root: str | Path, metric_set: str) -> list[dict[str, Any]]:
    ds = Dataset(root)
    out = []
    for _folder, case in ds.iter_cases():
        if isinstance(case, Exception):
            raise case
        out.append(score_case(case, metric_set))
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """AC@1 per fault type, AC@1 overall, fault-type accuracy overall and per fault."""
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by[r["fault"]].append(r)
    out: dict[str, float] = {}
    for f in FAULT_TYPES:
        rs = by.get(f, [])
        out[f"ac1_{f}"] = sum(r["hit1"] for r in rs) / len(rs) if rs else float("nan")
        out[f"type_{f}"] = sum(r["type_ok"] for r in rs) / len(rs) if rs else float("nan")
    out["ac1"] = sum(r["hit1"] for r in rows) / len(rows) if rows else float("nan")
    out["type_acc"] = sum(r["type_ok"] for r in rows) / len(rows) if rows else float("nan")
    out["n"] = float(len(rows))
    return out
