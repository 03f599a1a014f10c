"""Helpers shared by the pod processes: pod log lines and the metrics body.

Log line format (one line per event, appended to ``<pod>.log``)::

    2026-11-25T03:40:00.123456Z INFO engine[1234] message

Spans go to ``spans.jsonl`` through :class:`llmrca.collect.traces.SpanWriter`
(W3C ``traceparent`` propagation: gateway → router → replica).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

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


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


def metrics_body(registry: CollectorRegistry) -> bytes:
    """Classic text exposition: keeps vLLM's ``vllm:`` names intact (OpenMetrics would rename them)."""
    return generate_latest(registry)


def now() -> float:
    return time.time()
