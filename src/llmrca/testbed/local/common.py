"""Helpers shared by the pod processes: pod log lines, span records, metrics handler.

Log line format (one line per event, appended to ``<pod>.log``)::

    2026-11-25T03:40:00.123456Z INFO engine[1234] message

Span records are JSON lines in ``spans.jsonl`` with the columns of the
RCAEval ``traces.csv`` layout (``traceID``, ``spanID``, ``parentSpanID``,
``serviceName``, ``methodName``, ``operationName``, ``duration`` µs,
``statusCode``, ``startTime`` µs).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PodLog:
    """Appends timestamped lines to the pod's log file (safe across processes: O_APPEND, one write per line)."""

    def __init__(self, path: str | Path, proc: str) -> None:
        self.path = Path(path)
        self.proc = f"{proc}[{os.getpid()}]"
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def __call__(self, msg: str, level: str = "INFO") -> None:
        ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        line = f"{ts} {level} {self.proc} {msg}\n".encode()
        with self._lock:
            os.write(self._fd, line)


class SpanWriter:
    """Appends finished spans to ``spans.jsonl``."""

    def __init__(self, path: str | Path, service: str) -> None:
        self.service = service
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(
        self,
        trace_id: str,
        span_id: str,
        parent: str,
        operation: str,
        start_s: float,
        end_s: float,
        status: int,
        method: str = "POST",
        **attrs: Any,
    ) -> None:
        rec = {
            "traceID": trace_id,
            "spanID": span_id,
            "parentSpanID": parent,
            "serviceName": self.service,
            "methodName": method,
            "operationName": operation,
            "duration": int((end_s - start_s) * 1e6),
            "statusCode": int(status),
            "startTime": int(start_s * 1e6),
        }
        rec.update(attrs)
        os.write(self._fd, (json.dumps(rec) + "\n").encode())


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def metrics_body(registry: CollectorRegistry) -> bytes:
    """Classic text exposition: keeps vLLM's ``vllm:`` names intact (OpenMetrics would rename them)."""
    return generate_latest(registry)


def now() -> float:
    return time.time()
