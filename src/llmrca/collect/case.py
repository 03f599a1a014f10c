"""Put one Case together from a Prometheus, log files and span files."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from llmrca.collect.logs import read_log_files
from llmrca.collect.metrics import GpuJoin, collect_metrics, split_frame
from llmrca.collect.prom import PromClient, PrometheusError
from llmrca.collect.traces import read_span_files
from llmrca.model import Case, FaultRecord, Topology
from llmrca.telemetry import MetricDef


class CollectionError(RuntimeError):
    """The collected data cannot make a case (e.g. no metric had data)."""


def _targets_snapshot(prom: str | PromClient) -> list[dict[str, Any]] | str:
    """Scrape targets' health at collection time (a network fault shows as scrape errors), or why not."""
    client = PromClient(prom) if isinstance(prom, str) else prom
    try:
        return [
            {
                "job": t.get("labels", {}).get("job"),
                "url": t.get("scrapeUrl"),
                "health": t.get("health"),
                "last_error": t.get("lastError"),
            }
            for t in client.targets()
        ]
    except PrometheusError as e:  # e.g. a query frontend without /api/v1/targets
        return f"unavailable: {e}"
    finally:
        if isinstance(prom, str):
            client.close()


def collect_case(
    prom_url: str | PromClient,
    components: Mapping[str, str],
    start: float,
    end: float,
    inject_time: float,
    fault_record: FaultRecord | None,
    topology: Topology | None,
    step_s: float = 5.0,
    log_files: Mapping[str, str | Path | Sequence[str | Path]] | None = None,
    span_files: Sequence[str | Path] | Mapping[str, str | Path | Sequence[str | Path]] | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    name: str = "case",
    metric_sets: Sequence[str] = ("basic", "extended"),
    queries: Mapping[str, str | Sequence[str] | MetricDef] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    rate_window_s: float | None = None,
    scrape_interval_s: float = 15.0,
    roles: Mapping[str, Sequence[str]] | None = None,
    gpu_selectors: Mapping[str, str] | None = None,
    gpu_join: GpuJoin | str | None = None,
) -> Case:
    """Collect ``[start, end]`` into a validated :class:`Case`.

    ``components`` maps component names to PromQL label selectors; metrics
    come from :func:`llmrca.collect.metrics.collect_metrics` (one pass over
    the extended set, the basic set is its subset), logs from ``log_files``
    (component → path(s), missing files listed, not fatal), spans from
    ``span_files``.  The root cause is ``fault_record.target``.  How the case
    was collected (queries per column, dropped columns and why, missing
    components, GPU selectors and unmapped GPUs, log and span counts) is in
    ``meta["collection"]``.  ``gpu_selectors`` / ``gpu_join``: see
    :func:`llmrca.collect.metrics.collect_metrics`.
    """
    unknown = [s for s in metric_sets if s not in ("basic", "extended")]
    if unknown or "basic" not in metric_sets:
        raise ValueError(f"metric_sets must include 'basic' and may add 'extended', got {list(metric_sets)}")
    full = "extended" if "extended" in metric_sets else "basic"
    res = collect_metrics(
        prom_url,
        components,
        start,
        end,
        step_s=step_s,
        metric_set=full,
        queries=queries,
        aliases=aliases,
        rate_window_s=rate_window_s,
        scrape_interval_s=scrape_interval_s,
        roles=roles,
        gpu_selectors=gpu_selectors,
        gpu_join=gpu_join,
    )
    sets = split_frame(res.frame, queries) if full == "extended" else {"basic": res.frame}
    if sets["basic"].shape[1] <= 1:
        why = "; ".join(f"{c}: {r}" for c, r in list(res.dropped.items())[:5])
        others = [c for c in sets.get("extended", res.frame).columns if c != "time"]
        held = (f" The extended set did return {len(others)} column(s) (e.g. {', '.join(others[:3])}), but a case needs its "
                "basic set (CPU and memory from cAdvisor's container_cpu_usage_seconds_total and "
                "container_memory_working_set_bytes, or the mesh latency): scrape the kubelet's cAdvisor endpoint "
                "for these pods." if others else "")
        raise CollectionError(
            f"no basic metric returned data from {getattr(prom_url, 'url', prom_url)} for {start}..{end} "
            f"(components {dict(components)}); first reasons: {why}.{held} Check the selectors against {getattr(prom_url, 'url', prom_url)}/targets"
        )
    logs = traces = None
    info: dict[str, Any] = {
        "prometheus": getattr(prom_url, "url", prom_url),
        "start": start,
        "end": end,
        "step_s": step_s,
        "selectors": dict(components),
        "collected_at": time.time(),
        **res.report(),
    }
    info["targets"] = _targets_snapshot(prom_url)
    if log_files:
        lr = read_log_files(log_files, start, end, missing_ok=True)
        logs = lr.frame
        info["logs"] = {"rows": len(logs), "unparsed_lines": lr.unparsed, "missing_files": lr.missing_files}
    if span_files:
        sr = read_span_files(span_files, start, end, missing_ok=True)
        traces = sr.frame
        info["traces"] = {"spans": len(traces), "truncated_lines": sr.truncated_lines, "missing_files": sr.missing_files}
    case = Case(
        metrics=sets["basic"],
        inject_time=float(inject_time),
        name=name,
        logs=logs,
        traces=traces,
        fault=fault_record,
        root_causes=frozenset([fault_record.target]) if fault_record is not None and fault_record.injected and fault_record.target else frozenset(),
        topology=topology,
        meta={**dict(meta or {}), "collection": info},
        metric_sets=sets,
        metric_set="basic",
    )
    return case.validate()
