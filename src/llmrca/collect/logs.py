"""Logs from the components' log files (no Loki needed) → ``logs.csv`` rows.

Each component has one or more log files (a pod's container log, an nginx
access log, a process's stderr).  Every line that starts a record carries a
timestamp in one of these forms, detected per line:

- Kubernetes/CRI container log: ``2026-11-25T03:26:35.123456789Z stdout F message``
- ISO 8601 at the start: ``2026-11-25T03:26:35.123Z ...``, ``2026-11-25 03:26:35,123 ...``
  (with or without a zone; a naive time is taken as ``naive_tz``, UTC by default)
- nginx/Apache: ``... [25/Nov/2026:03:26:35 +0000] ...``
- JSON lines with a ``time`` / ``ts`` / ``timestamp`` / ``@timestamp`` field
  (epoch seconds or ISO 8601) and ``msg`` / ``message`` for the text
- epoch seconds at the start: ``1795577389.75 message``

A line without a timestamp continues the previous record (a traceback, a
wrapped message) and is appended to it with a newline, so one event stays one
row.  Lines before the first timestamp are counted in ``unparsed``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd

from llmrca.dataset.io import LOG_COLUMNS

_CRI = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)) (?:stdout|stderr) [FP] ?(.*)$")
_ISO = re.compile(r"^\[?(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?)(Z|[+-]\d\d:?\d\d)?\]?\s?(.*)$")
_CLF = re.compile(r"\[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d) ([+-]\d{4})\]")
_EPOCH = re.compile(r"^(1\d{9}(?:\.\d+)?)\s(.*)$")


def _iso_to_epoch(stamp: str, zone: str | None, naive_tz: timezone) -> float:
    stamp = stamp.replace(",", ".").replace(" ", "T")
    if "." in stamp:  # Python parses at most microseconds
        head, frac = stamp.split(".", 1)
        stamp = f"{head}.{frac[:6]}"
    dt = datetime.fromisoformat(stamp)
    if zone:
        z = "+00:00" if zone == "Z" else (zone if ":" in zone else f"{zone[:3]}:{zone[3:]}")
        dt = dt.replace(tzinfo=datetime.fromisoformat("2000-01-01T00:00:00" + z).tzinfo)
    elif dt.tzinfo is None:
        dt = dt.replace(tzinfo=naive_tz)
    return dt.timestamp()


def parse_line(line: str, naive_tz: timezone = UTC) -> tuple[float, str] | None:
    """(epoch s, message) if ``line`` starts a record, else None (a continuation line)."""
    m = _CRI.match(line)
    if m:
        stamp = m.group(1)
        zone = "Z" if stamp.endswith("Z") else stamp[-6:]
        return _iso_to_epoch(stamp.removesuffix("Z") if zone == "Z" else stamp[:-6], zone, naive_tz), m.group(2)
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            for key in ("time", "ts", "timestamp", "@timestamp"):
                if key in obj:
                    v = obj[key]
                    msg = str(obj.get("msg", obj.get("message", line)))
                    if isinstance(v, int | float):
                        return float(v) / (1000.0 if v > 1e11 else 1.0), msg
                    parsed = parse_line(str(v) + " x", naive_tz)
                    if parsed:
                        return parsed[0], msg
    m = _ISO.match(line)
    if m:
        return _iso_to_epoch(m.group(1), m.group(2), naive_tz), m.group(3)
    m = _EPOCH.match(line)
    if m:
        return float(m.group(1)), m.group(2)
    m = _CLF.search(line)
    if m:
        dt = datetime.strptime(m.group(1), "%d/%b/%Y:%H:%M:%S")
        off = int(m.group(2)[:3]) * 60 + (1 if m.group(2)[0] == "+" else -1) * int(m.group(2)[3:])
        return dt.replace(tzinfo=timezone(timedelta(minutes=off))).timestamp(), line
    return None


@dataclass
class LogsResult:
    frame: pd.DataFrame
    unparsed: dict[str, int] = field(default_factory=dict)  # file -> lines before any timestamp
    missing_files: list[str] = field(default_factory=list)


def read_log_files(
    files: Mapping[str, str | Path | Sequence[str | Path]],
    start: float | None = None,
    end: float | None = None,
    *,
    naive_tz: timezone = UTC,
    missing_ok: bool = False,
) -> LogsResult:
    """Read ``{component: path | [paths]}`` into a ``time, container_name, message`` frame, sorted by time.

    Records outside ``[start, end]`` are left out.  A missing file raises
    FileNotFoundError unless ``missing_ok`` (then it is listed in
    ``missing_files``: a pod that never logged is information, not an error).
    """
    rows: list[tuple[float, str, str]] = []
    res = LogsResult(frame=pd.DataFrame(columns=LOG_COLUMNS))
    for comp, paths in files.items():
        for path in [paths] if isinstance(paths, str | Path) else list(paths):
            p = Path(path)
            if not p.exists():
                if missing_ok:
                    res.missing_files.append(str(p))
                    continue
                raise FileNotFoundError(
                    f"log file {p} of component {comp!r} does not exist; fix the path or pass missing_ok=True"
                )
            cur: list | None = None
            unparsed = 0
            with p.open(encoding="utf-8", errors="replace") as fh:
                for raw in fh:
                    line = raw.rstrip("\n")
                    if not line.strip():
                        continue
                    parsed = parse_line(line, naive_tz)
                    if parsed is None:
                        if cur is None:
                            unparsed += 1
                        else:
                            cur[2] += "\n" + line
                        continue
                    if cur is not None:
                        rows.append(tuple(cur))
                    cur = [parsed[0], comp, parsed[1]]
            if cur is not None:
                rows.append(tuple(cur))
            if unparsed:
                res.unparsed[str(p)] = unparsed
    df = pd.DataFrame(rows, columns=LOG_COLUMNS)
    if start is not None:
        df = df[df["time"] >= start]
    if end is not None:
        df = df[df["time"] <= end]
    res.frame = df.sort_values("time", kind="stable").reset_index(drop=True)
    return res
