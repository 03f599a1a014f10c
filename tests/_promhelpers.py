"""Test-only helpers for tests that backfill histograms into a real Prometheus."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest


def histogram_quantile_ref(q: float, per_sample: dict[float, int], buckets: Sequence[float]) -> float:
    """What PromQL's ``histogram_quantile(q, …)`` gives for one step's bucket increments ``per_sample``
    (upper bound -> count, bounds from ``buckets``): linear interpolation inside the bucket holding rank
    ``q * total`` (Prometheus docs, "histogram_quantile()")."""
    total = sum(per_sample.values())
    rank, below, lower = q * total, 0, 0.0
    for ub in buckets:
        n = per_sample.get(ub, 0)
        if below + n >= rank and n:
            return lower + (ub - lower) * (rank - below) / n
        below, lower = below + n, ub
    raise AssertionError("quantile outside the buckets")


@dataclass
class Backfilled:
    """A running Prometheus holding backfilled series, and the query window on the written sample grid."""

    url: str
    start: float
    end: float


def backfilled_prometheus(tmp_path_factory: pytest.TempPathFactory, openmetrics: Callable[[int], str]) -> Iterator[Backfilled]:
    """Body of a module fixture: ``openmetrics(t0)`` (an hour ago, inside the server's retention) written as TSDB
    blocks by ``promtool tsdb create-blocks-from openmetrics`` and served by a real Prometheus; the query window is
    ``t0 + 300 .. t0 + 360``.  Skips without ``/usr/bin/prometheus`` and ``promtool`` (Debian package prometheus)."""
    from llmrca.collect.prometheus_server import PrometheusServer

    if not (os.path.exists("/usr/bin/prometheus") and shutil.which("promtool")):
        pytest.skip("needs /usr/bin/prometheus and promtool (Debian package prometheus)")
    data = tmp_path_factory.mktemp("prom")
    t0 = (int(time.time()) // 60) * 60 - 3600
    src = data / "series.om"
    src.write_text(openmetrics(t0))
    done = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(src), str(data / "tsdb")], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with PrometheusServer({}, data_dir=data) as prom:
        yield Backfilled(prom.url, float(t0 + 300), float(t0 + 360))
