"""``results.jsonl``: one JSON line per (method, case) run, appended as runs finish.

Lines are flushed one by one so a killed evaluation loses at most the line
being written; :class:`ResultStore` drops a truncated last line on reopen and
knows which (method, case, config-hash) runs are done, which is what resume
skips.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrca.evaluate.metrics import case_scores

STATUSES: tuple[str, ...] = ("ok", "failed", "timeout", "unavailable")
#: error_kind of a run whose case could not be read or is malformed: the case
#: is skipped for every method (not counted against any method).
INVALID_CASE = "invalid_case"


def run_key(rec: dict[str, Any]) -> tuple[str, str, str]:
    return (rec["method"], rec["case"], rec["config_hash"])


def read_results(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Every complete record of ``path``; a truncated last line is ignored (and cut off if ``repair``)."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # no newline: the writer was killed mid-line
        line = data[pos:nl].strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if data.find(b"\n", nl + 1) >= 0:
                    lineno = data[:pos].count(b"\n") + 1
                    raise ValueError(f"{path}: line {lineno} is not valid JSON; fix or delete it") from None
                break
        pos = nl + 1
        good_end = pos
    if repair and good_end < len(data):
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
    return records


class ResultStore:
    """Append-only ``results.jsonl`` with the set of runs already done."""

    def __init__(self, path: str | Path, *, resume: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume and self.path.exists():
            self.path.unlink()
        self.records = read_results(self.path, repair=True)
        self.done = {run_key(r) for r in self.records}
        self._fh = open(self.path, "a", encoding="utf-8")

    def append(self, rec: dict[str, Any]) -> None:
        key = run_key(rec)
        if key in self.done:
            return
        self._fh.write(json.dumps(rec, default=_default, allow_nan=True) + "\n")
        self._fh.flush()
        self.done.add(key)
        self.records.append(rec)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    if isinstance(o, os.PathLike):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def scored_frame(records: Iterable[dict[str, Any]], *, random_on_failure: bool = False) -> pd.DataFrame:
    """One row per scored run: method, case, fault, status, fallback, top1, hit1, ac@1..5, avg@5.

    ``ok`` runs are scored on their ranking.  ``failed`` and ``timeout`` runs
    score 0 (a miss), or — with ``random_on_failure`` — on the seeded random
    ranking stored with them (``fallback`` = True).  ``unavailable`` runs and
    runs of invalid cases are not scored.
    """
    rows = []
    for r in records:
        if r.get("error_kind") == INVALID_CASE or r["status"] == "unavailable" or not r.get("root_causes"):
            continue
        fallback = False
        if r["status"] == "ok":
            comps, scores = r["ranking"], r.get("scores")
        elif random_on_failure and r.get("fallback_ranking"):
            comps, scores, fallback = r["fallback_ranking"], None, True
        else:
            comps, scores = [], None
        s = case_scores(comps, r["root_causes"], [float(x) for x in scores] if scores else None)
        top1 = comps[0] if comps else None
        rows.append(
            {
                "method": r["method"],
                "case": r["case"],
                "fault": r.get("fault") or "unknown",
                "status": r["status"],
                "fallback": fallback,
                "top1": top1,
                "hit1": top1 in set(r["root_causes"]) if top1 is not None else False,
                "scored_ranking": bool(comps),
                **s,
            }
        )
    cols = ["method", "case", "fault", "status", "fallback", "top1", "hit1", "scored_ranking", "ac@1", "ac@2", "ac@3", "ac@4", "ac@5", "avg@5"]
    return pd.DataFrame(rows, columns=cols)


def status_counts(records: Iterable[dict[str, Any]], *, random_on_failure: bool = False) -> pd.DataFrame:
    """Per method: ok, failed, timeout, unavailable, invalid_case, fallbacks, median duration."""
    rows: dict[str, dict[str, Any]] = {}
    durations: dict[str, list[float]] = {}
    for r in records:
        row = rows.setdefault(r["method"], {"method": r["method"], **dict.fromkeys(STATUSES, 0), INVALID_CASE: 0, "fallbacks": 0})
        if r.get("error_kind") == INVALID_CASE:
            row[INVALID_CASE] += 1
            continue
        row[r["status"]] += 1
        if random_on_failure and r["status"] in ("failed", "timeout") and r.get("fallback_ranking"):
            row["fallbacks"] += 1
        if r["status"] == "ok" and r.get("duration_s") is not None:
            durations.setdefault(r["method"], []).append(float(r["duration_s"]))
    for m, row in rows.items():
        row["median_duration_s"] = float(np.median(durations[m])) if durations.get(m) else float("nan")
    cols = ["method", *STATUSES, INVALID_CASE, "fallbacks", "median_duration_s"]
    return pd.DataFrame(list(rows.values()), columns=cols)
