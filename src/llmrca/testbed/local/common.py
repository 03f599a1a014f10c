"""Helpers shared by the pod processes: pod log lines and the metrics body.

Log line format (one line per event, appended to ``<pod>.log``)::

    2026-11-25T03:40:00.123456Z INFO engine[1234] message

Spans go to ``spans.jsonl`` (the span-file format of :mod:`llmrca.collect.traces`,
W3C ``traceparent`` propagation: gateway → router → replica).
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


def new_id(nbytes: int = 8) -> str:
    """A random hex id of ``nbytes`` bytes (``2 * nbytes`` characters)."""
    return secrets.token_hex(nbytes)


def metrics_body(registry: CollectorRegistry) -> bytes:
    """Classic text exposition: keeps vLLM's ``vllm:`` names intact (OpenMetrics would rename them)."""
    return generate_latest(registry)


def metrics_app(registry: CollectorRegistry, health_paths: tuple[str, ...] = ("/health",)) -> Any:
    """An aiohttp app serving ``/metrics`` from ``registry`` and ``ok`` on each health path."""
    from aiohttp import web

    app = web.Application()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics_body(registry), headers={"Content-Type": CONTENT_TYPE})

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/metrics", metrics)
    for path in health_paths:
        app.router.add_get(path, health)
    return app


async def serve(app: Any, port: int) -> Any:
    """Start ``app`` on 127.0.0.1:``port``; returns the runner: keep a reference for as long as it serves."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
    return runner


def now() -> float:
    """Epoch seconds (the wall clock every component stamps with)."""
    return time.time()


def parse_traceparent(header: str | None) -> tuple[str, str] | None:
    """(trace id, parent span id) from a W3C ``traceparent`` header, or None."""
    if not header:
        return None
    parts = header.strip().lower().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    return parts[1], parts[2]


class SpanWriter:
    """Appends spans to ``spans.jsonl`` in the format :func:`llmrca.collect.traces.read_span_files` reads.

    The pod processes do not use :class:`llmrca.collect.traces.SpanWriter`
    because importing :mod:`llmrca.collect` loads pandas (≈100 MB and seconds
    of start-up per process), which would dominate a 384 MiB pod.
    """

    def __init__(self, path: str | Path, service: str) -> None:
        self.service = service
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, trace_id: str, span_id: str, parent: str, operation: str, method: str, start_s: float, duration_s: float, status: int) -> None:
        """Append one span (times in seconds, written as µs integers) as a JSON line."""
        rec = {"traceID": trace_id, "spanID": span_id, "parentSpanID": parent, "serviceName": self.service, "methodName": method,
               "operationName": operation, "duration": int(duration_s * 1e6), "statusCode": int(status), "startTime": int(start_s * 1e6)}
        os.write(self._fd, (json.dumps(rec, separators=(",", ":")) + "\n").encode())

    def record(self, operation: str, start_s: float, duration_s: float, *, method: str = "", status: int = 200, traceparent: str | None = None) -> str:
        """Write a span under the W3C ``traceparent`` (a new trace without one); returns the new span id."""
        ctx = parse_traceparent(traceparent)
        trace, parent = ctx if ctx else (new_id(16), "")
        sid = new_id(8)
        self.write(trace, sid, parent, operation, method, start_s, duration_s, status)
        return sid
