"""Spans as JSON lines: a tiny writer for servers and a reader → ``traces.csv`` rows.

File format (one span per line, UTF-8, appended; see docs/collect.md)::

    {"traceID": "4bf92f3577b34da6a3ce929d0e0e4736", "spanID": "00f067aa0ba902b7",
     "parentSpanID": "", "serviceName": "ray-worker-1", "methodName": "POST",
     "operationName": "/v1/chat/completions", "duration": 183042,
     "statusCode": 200, "startTime": 1795577389755238}

The keys are exactly the ``traces.csv`` columns (``TRACE_COLUMNS`` of
:mod:`llmrca.dataset.io`); ``startTime`` and ``duration`` are integer
microseconds (epoch for ``startTime``); ``parentSpanID`` is ``""`` for a root
span.  Trace context travels between services in the W3C ``traceparent``
header, so the gateway's, router's and replica's spans of one request share a
``traceID`` and chain by ``parentSpanID``.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.dataset.io import TRACE_COLUMNS

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


def parse_traceparent(header: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a W3C ``traceparent`` header, or None if absent/invalid."""
    if not header:
        return None
    m = _TRACEPARENT.match(header.strip().lower())
    return (m.group(1), m.group(2)) if m else None


def _new_id(nbytes: int) -> str:
    # Identifiers, not experiment randomness: they must be unique across processes, so no seed.
    return os.urandom(nbytes).hex()


@dataclass
class Span:
    """An open span; set ``status`` before it ends (default 200, 500 if the block raised)."""

    trace_id: str
    span_id: str
    parent_id: str
    service: str
    operation: str
    method: str
    start_us: int
    status: int | str = 200
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def traceparent(self) -> str:
        """The header to send to the next service so its span becomes this one's child."""
        return f"00-{self.trace_id}-{self.span_id}-01"


class SpanWriter:
    """Append spans of one service to a JSON-lines file; safe across threads and processes.

    Each span is one ``write`` of one line on an ``O_APPEND`` descriptor, so
    several processes may share a file without interleaving lines.
    """

    def __init__(self, path: str | Path, service: str) -> None:
        if "_" in service:
            raise ValueError(f"service name {service!r} contains '_'; component names must not (they prefix metric columns)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.service = service
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> SpanWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def span(self, operation: str, *, method: str = "", traceparent: str | None = None) -> Iterator[Span]:
        """Time the block as a span; child of ``traceparent`` when given, else a new trace's root."""
        ctx = parse_traceparent(traceparent)
        trace_id, parent = ctx if ctx else (_new_id(16), "")
        sp = Span(trace_id, _new_id(8), parent, self.service, operation, method, time.time_ns() // 1000)
        t0 = time.perf_counter_ns()
        try:
            yield sp
        except BaseException:
            if sp.status == 200:
                sp.status = 500
            raise
        finally:
            self.write(sp, duration_us=(time.perf_counter_ns() - t0) // 1000)

    def record(
        self,
        operation: str,
        start_s: float,
        duration_s: float,
        *,
        method: str = "",
        status: int | str = 200,
        traceparent: str | None = None,
    ) -> Span:
        """Write a span measured elsewhere (e.g. an engine's queue time); returns it."""
        ctx = parse_traceparent(traceparent)
        trace_id, parent = ctx if ctx else (_new_id(16), "")
        sp = Span(trace_id, _new_id(8), parent, self.service, operation, method, int(start_s * 1e6), status)
        self.write(sp, duration_us=int(duration_s * 1e6))
        return sp

    def write(self, sp: Span, duration_us: int) -> None:
        line = json.dumps(
            {
                "traceID": sp.trace_id,
                "spanID": sp.span_id,
                "parentSpanID": sp.parent_id,
                "serviceName": sp.service,
                "methodName": sp.method,
                "operationName": sp.operation,
                "duration": int(duration_us),
                "statusCode": sp.status,
                "startTime": int(sp.start_us),
            },
            separators=(",", ":"),
        )
        data = (line + "\n").encode()
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"SpanWriter for {self.path} is closed")
            os.write(self._fd, data)


@dataclass
class SpansResult:
    frame: pd.DataFrame
    truncated_lines: dict[str, int] = field(default_factory=dict)  # file -> unfinished last line skipped
    missing_files: list[str] = field(default_factory=list)


def read_span_files(
    files: Sequence[str | Path] | Mapping[str, str | Path | Sequence[str | Path]],
    start: float | None = None,
    end: float | None = None,
    *,
    missing_ok: bool = False,
) -> SpansResult:
    """Read span files into a ``traces.csv`` frame (spans starting in ``[start, end]``, epoch s), sorted by start.

    A malformed line raises ValueError naming file and line; only an
    unfinished last line (a writer killed mid-write) is skipped and counted.
    """
    paths: list[Path] = []
    if isinstance(files, Mapping):
        for v in files.values():
            paths.extend(Path(p) for p in ([v] if isinstance(v, str | Path) else v))
    else:
        paths = [Path(p) for p in files]
    res = SpansResult(frame=pd.DataFrame(columns=TRACE_COLUMNS))
    rows: list[dict[str, Any]] = []
    for p in paths:
        if not p.exists():
            if missing_ok:
                res.missing_files.append(str(p))
                continue
            raise FileNotFoundError(f"span file {p} does not exist; fix the path or pass missing_ok=True")
        text = p.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    kind = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(type(obj), "null")
                    raise ValueError(f"a JSON {kind}, not an object")
                missing = [c for c in TRACE_COLUMNS if c not in obj]
                if missing:
                    raise ValueError(f"missing keys {missing}")
                for c in ("startTime", "duration"):
                    if isinstance(obj[c], bool) or not isinstance(obj[c], int | float):
                        raise ValueError(f"{c} is {obj[c]!r}, not a number of microseconds")
            except ValueError as e:
                if i == len(lines) and not text.endswith("\n"):
                    res.truncated_lines[str(p)] = 1
                    continue
                raise ValueError(
                    f"{p}:{i}: not a span line ({e}); each line must be a JSON object with keys {TRACE_COLUMNS}"
                ) from None
            rows.append({c: obj[c] for c in TRACE_COLUMNS})
    df = pd.DataFrame(rows, columns=TRACE_COLUMNS)
    if len(df):
        df["parentSpanID"] = df["parentSpanID"].fillna("").astype(str)
        df["startTime"] = df["startTime"].astype("int64")
        df["duration"] = df["duration"].astype("int64")
    if start is not None:
        df = df[df["startTime"] >= int(start * 1e6)]
    if end is not None:
        df = df[df["startTime"] <= int(end * 1e6)]
    res.frame = df.sort_values("startTime", kind="stable").reset_index(drop=True)
    return res
