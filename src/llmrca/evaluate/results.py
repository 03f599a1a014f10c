"""``results.jsonl``: one JSON line per (method, case) run, appended as runs finish.

Each record is written with one ``write`` of the whole line on an
``O_APPEND`` descriptor; a write the disk cannot take (``ENOSPC``, quota, I/O
error) is cut back so the file still ends at a line boundary, and raises
:class:`ResultsWriteError`.  A line that a crash left without its newline
is dropped on reopen (and reported in :attr:`ResultStore.notes`).

A stored run is reused on resume only when its key — method, case id,
``config_hash``, ``case_fp``, ``dataset_fp`` (see
:mod:`llmrca.evaluate.fingerprint`) — matches the run about to be made;
older lines without fingerprints never match, so they are re-run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrca.errors import LlmrcaError
from llmrca.evaluate.metrics import case_scores

STATUSES: tuple[str, ...] = ("ok", "failed", "timeout", "unavailable")
#: error_kind of a run whose case could not be read or is malformed: the case
#: is skipped for every method (not counted against any method).
INVALID_CASE = "invalid_case"
#: what ``--retry`` accepts: the statuses that are not ``ok``, and invalid cases
RETRYABLE: tuple[str, ...] = ("failed", "timeout", "invalid_case", "unavailable")

RunKey = tuple[str, str, str, str | None, str | None]


class ResultsWriteError(LlmrcaError, ValueError):
    """``results.jsonl`` (or another output) could not be written, e.g. the disk is full."""


def run_key(rec: dict[str, Any]) -> RunKey:
    """(method, case, config_hash, case_fp, dataset_fp); the last two are None in records older than fingerprints."""
    return (rec["method"], rec["case"], rec["config_hash"], rec.get("case_fp"), rec.get("dataset_fp"))


def status_class(rec: dict[str, Any]) -> str:
    """The record's status in ``--retry`` terms: ``invalid_case`` for unreadable cases, else its status."""
    return INVALID_CASE if rec.get("error_kind") == INVALID_CASE else rec["status"]


#: What every line of ``results.jsonl`` holds as text, at least (:func:`read_results` refuses a line without them).
RECORD_KEYS: tuple[str, ...] = ("method", "case", "status")


def read_results(path: str | Path, *, repair: bool = False, notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Every complete record of ``path``; a truncated last line is ignored (and cut off if ``repair``).

    A note saying how many bytes were dropped is appended to ``notes``.
    Raises ``ValueError`` naming the line when a line other than the last is
    not JSON, or when a line is JSON but no run record (an object with the
    :data:`RECORD_KEYS` as text and a status of :data:`STATUSES`): the file was edited by hand; fix or delete that line.
    """
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
                rec = json.loads(line)
            except json.JSONDecodeError:
                if data.find(b"\n", nl + 1) >= 0:
                    lineno = data[:pos].count(b"\n") + 1
                    raise ValueError(f"{path}: line {lineno} is not valid JSON; fix or delete it") from None
                break
            lacking = [k for k in RECORD_KEYS if not isinstance(rec, dict) or not isinstance(rec.get(k), str)]
            if lacking:  # JSON, but no run record (an edit by hand, another tool's file): every reader says so alike
                lineno = data[:pos].count(b"\n") + 1
                json_type = {list: "an array", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(rec), "null")
                what = json_type if not isinstance(rec, dict) else f"an object without {', '.join(lacking)}"
                raise ValueError(f"{path}: line {lineno} is not a run record (it holds {what}; a record is an object with "
                                 f"{', '.join(RECORD_KEYS)} as text); fix or delete it")
            if rec["status"] not in STATUSES:  # counted nowhere otherwise: a run that vanished from every table
                lineno = data[:pos].count(b"\n") + 1
                raise ValueError(f"{path}: line {lineno} is not a run record (its status {rec['status']!r} is none of "
                                 f"{', '.join(STATUSES)}); fix or delete it")
            records.append(rec)
        pos = nl + 1
        good_end = pos
    if good_end < len(data):
        lineno = data[:good_end].count(b"\n") + 1
        if notes is not None:
            notes.append(f"{path}: ignored an incomplete last line ({len(data) - good_end} bytes, line {lineno}) left by an interrupted write; that run is not counted (a resumed evaluation runs it again)")
        if repair:
            with open(path, "r+b") as fh:
                fh.truncate(good_end)
    return records


class ResultStore:
    """Append-only ``results.jsonl``, with the latest record of each run key.

    ``latest`` maps :func:`run_key` to the last record with that key (a
    ``--retry`` appends a newer one; readers take the last).  ``notes`` holds
    what the store repaired on open.  Only one process may write (see
    :mod:`llmrca.evaluate.lock`).
    """

    def __init__(self, path: str | Path, *, resume: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not resume and self.path.exists():
            self.path.unlink()
        self.notes: list[str] = []
        self.records = read_results(self.path, repair=True, notes=self.notes)
        self.latest: dict[RunKey, dict[str, Any]] = {}
        for r in self.records:
            self.latest[run_key(r)] = r
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    @property
    def done(self) -> set[RunKey]:
        return set(self.latest)

    def forget(self, key: RunKey) -> None:
        """Let the run with ``key`` be appended again (``--retry``); its old line stays in the file."""
        self.latest.pop(key, None)

    def append(self, rec: dict[str, Any]) -> None:
        """Write ``rec`` as one line (one ``write`` call); a run already stored is not written twice.

        Raises :class:`ResultsWriteError` if the line cannot be written
        whole; the file is then cut back to its previous end.
        """
        key = run_key(rec)
        if key in self.latest:
            return
        if self._fd is None:
            raise ResultsWriteError(f"{self.path} is closed")
        data = (json.dumps(rec, default=_default, allow_nan=True) + "\n").encode()
        start = os.fstat(self._fd).st_size
        try:
            n = os.write(self._fd, data)
            if n != len(data):  # a short write on a regular file: the disk filled up
                raise OSError(28, os.strerror(28))
        except OSError as e:
            try:
                os.ftruncate(self._fd, start)
            except OSError:
                pass
            raise ResultsWriteError(
                f"cannot write to {self.path}: {e.strerror or e}; the file keeps its {len(self.records)} complete record(s). "
                "Free some space (or choose another --out) and rerun the same command: it resumes"
            ) from e
        self.latest[key] = rec
        self.records.append(rec)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

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


def is_healthy_record(rec: dict[str, Any]) -> bool:
    """A run on a healthy case (fault type ``none``: nothing injected, no root cause)."""
    from llmrca.model import NO_FAULT

    return rec.get("fault") == NO_FAULT and not rec.get("root_causes")


def scored_frame(records: Iterable[dict[str, Any]], *, random_on_failure: bool = False) -> pd.DataFrame:
    """One row per scored run on a faulty case: method, case, fault, status, fallback, top1, hit1, blamed1, blame_weight,
    abstained, ac@1..5, avg@5.

    ``blamed1``: the components that are no root cause among those tied for rank 1 (by the ranking's scores; the
    first component alone without scores); each carries ``blame_weight`` = 1 / the size of that tie, so a run
    blames as much as it misses at AC@1 (three tied first with the culprit among them: 1/3 each to the two others).

    Healthy cases (no root cause) are not here: see :func:`false_alarm_frame`.
    ``ok`` runs are scored on their ranking; an ``ok`` run whose method
    abstained (answered "no root cause": ``abstained`` or an empty ranking)
    scores 0, a miss, whatever ranking it kept for information.  ``failed`` and ``timeout`` runs
    score 0 (a miss), or — with ``random_on_failure`` — on the seeded random
    ranking stored with them (``fallback`` = True).  ``unavailable`` runs and
    runs of invalid cases are not scored.
    """
    rows = []
    for r in records:
        if r.get("error_kind") == INVALID_CASE or r["status"] == "unavailable" or not r.get("root_causes"):
            continue
        fallback = False
        abstained = r["status"] == "ok" and (bool(r.get("abstained")) or not r.get("ranking"))
        if r["status"] == "ok" and abstained:
            comps, scores = [], None
        elif r["status"] == "ok":
            comps, scores = r["ranking"], r.get("scores")
        elif random_on_failure and r.get("fallback_ranking"):
            comps, scores, fallback = r["fallback_ranking"], None, True
        else:
            comps, scores = [], None
        fscores = [float("-inf") if x is None else float(x) for x in scores] if scores else None
        s = case_scores(comps, r["root_causes"], fscores)
        top1 = comps[0] if comps else None
        # the components tied for rank 1 (AC@1's tie rule): the wrong ones among them share the blame, 1/|tie| each
        tied = [c for c, x in zip(comps, fscores, strict=False) if x == fscores[0]] if comps and fscores and len(fscores) == len(comps) else comps[:1]
        tied = tied or comps[:1]  # a NaN first score ties with nothing
        roots = set(r["root_causes"])
        rows.append(
            {
                "method": r["method"],
                "case": r["case"],
                "fault": r.get("fault") or "unknown",
                "status": r["status"],
                "fallback": fallback,
                "top1": top1,
                "hit1": top1 in roots if top1 is not None else False,
                "blamed1": [c for c in tied if c not in roots],
                "blame_weight": 1.0 / len(tied) if tied else 1.0,
                "scored_ranking": bool(comps),
                "abstained": abstained,
                **s,
            }
        )
    cols = ["method", "case", "fault", "status", "fallback", "top1", "hit1", "blamed1", "blame_weight", "scored_ranking", "abstained",
            "ac@1", "ac@2", "ac@3", "ac@4", "ac@5", "avg@5"]
    return pd.DataFrame(rows, columns=cols)


def false_alarm_frame(records: Iterable[dict[str, Any]], *, random_on_failure: bool = False) -> pd.DataFrame:
    """One row per answered run on a healthy case: method, case, status, fallback, alarm, blamed, confidence.

    On a healthy case the right answer is "no root cause": an ``ok`` run is
    a false alarm (``alarm`` True) unless the method abstained (``abstained``
    or an empty ranking); ``blamed`` is the component it ranked first.  With
    ``random_on_failure`` a failed or timed-out run is answered by its seeded
    random ranking, which names a root cause: a false alarm.  Otherwise
    failed and timed-out runs gave no answer and are left out (counted in
    ``status.csv``), as are unavailable runs and invalid cases.
    """
    rows = []
    for r in records:
        if r.get("error_kind") == INVALID_CASE or r["status"] == "unavailable" or not is_healthy_record(r):
            continue
        if r["status"] == "ok":
            abstained = bool(r.get("abstained")) or not r.get("ranking")
            blamed = None if abstained else r["ranking"][0]
            fallback = False
        elif random_on_failure and r.get("fallback_ranking"):
            blamed, fallback = r["fallback_ranking"][0], True
        else:
            continue
        rows.append(
            {
                "method": r["method"],
                "case": r["case"],
                "status": r["status"],
                "fallback": fallback,
                "alarm": blamed is not None,
                "blamed": blamed,
                "confidence": r.get("confidence"),
            }
        )
    return pd.DataFrame(rows, columns=["method", "case", "status", "fallback", "alarm", "blamed", "confidence"])


def false_alarm_summary(fa: pd.DataFrame, methods: Iterable[str] | None = None) -> pd.DataFrame:
    """Per method: ``n`` healthy cases answered, ``false_alarms`` (how many named a root cause), ``false_alarm`` (their share, 0 to 1).

    ``methods``: every method to list (pass them when the dataset has healthy cases): a method that
    answered none of them (e.g. every run failed) gets ``n`` 0 and ``false_alarm`` NaN, so the healthy
    columns and their per-method ``n`` are always there.
    """
    cols = ["method", "n", "false_alarms", "false_alarm"]
    if fa.empty:
        out = pd.DataFrame(columns=cols)
    else:
        g = fa.groupby("method", sort=False)["alarm"]
        out = pd.DataFrame({"n": g.size(), "false_alarms": g.sum().astype(int)}).reset_index()
        out["false_alarm"] = out["false_alarms"] / out["n"]
    missing = [m for m in dict.fromkeys(methods or []) if m not in set(out["method"])]
    if missing:
        extra = pd.DataFrame({"method": missing, "n": 0, "false_alarms": 0, "false_alarm": np.nan})
        out = pd.concat([out, extra], ignore_index=True) if not out.empty else extra
        order = {m: i for i, m in enumerate(dict.fromkeys([*(methods or []), *out["method"]]))}
        out = out.sort_values("method", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return out[cols]


def has_healthy_cases(records: Iterable[dict[str, Any]]) -> bool:
    """True when any readable case of the runs is healthy (nothing injected)."""
    return any(r.get("error_kind") != INVALID_CASE and is_healthy_record(r) for r in records)


def failure_reasons(records: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Per method with runs that failed, timed out or were unavailable: its most frequent reason, as
    ``"<error kind>: <first line of the message, at most 160 characters>"`` (from ``results.jsonl``)."""
    seen: dict[str, Counter[str]] = {}
    for r in records:
        if r.get("status") in ("failed", "timeout", "unavailable") and r.get("error_kind") != INVALID_CASE:
            msg = str(r.get("error") or "").strip().splitlines()
            text = msg[0] if msg else ""
            if len(text) > 160:  # cut at a word, and say so
                text = text[:159].rsplit(" ", 1)[0].rstrip(",;:") + "…"
            kind = r.get("error_kind") or r["status"]
            said = text if text.startswith(f"{kind}:") else (f"{kind}: {text}" if text else str(kind))
            seen.setdefault(r["method"], Counter())[said] += 1
    return {m: c.most_common(1)[0][0] for m, c in seen.items()}


def mostly_fallback(status: pd.DataFrame) -> dict[str, tuple[int, int]]:
    """``{method: (fallbacks, scored runs)}`` for the methods of :func:`status_counts` with at least half of their
    scored runs (ok, failed, timed out) scored on the random fallback (``random_on_failure``)."""
    out = {}
    for _, r in status.iterrows():
        n = int(r["ok"]) + int(r["failed"]) + int(r["timeout"])
        if n and int(r["fallbacks"]) >= n / 2:
            out[str(r["method"])] = (int(r["fallbacks"]), n)
    return out


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


def completeness(records: Iterable[dict[str, Any]], session: dict[str, Any]) -> tuple[int, int] | None:
    """``(runs done, methods x cases)`` when the evaluation did not run every method on every case, else None.

    The methods and cases are the last session's (``run.json``: as it was asked to run); without one, those the
    records name.  An interrupted (or still running) evaluation, or a results.jsonl cut short, is incomplete.
    """
    recs = list(records)
    cases = list(session.get("cases") or {str(r.get("case")) for r in recs})
    methods = list(session.get("methods") or dict.fromkeys(str(r.get("method")) for r in recs))
    if not cases or not methods:
        return None
    done = {(str(r.get("method")), str(r.get("case"))) for r in recs}
    have = sum((m, c) in done for m in methods for c in cases)
    expected = len(methods) * len(cases)
    return (have, expected) if have < expected else None

