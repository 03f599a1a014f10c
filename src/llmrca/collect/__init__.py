"""Collection: Prometheus HTTP API, log files and span files → :class:`llmrca.model.Case`.

The collector takes a Prometheus URL and PromQL label selectors, so the
local testbed and a Kubernetes cluster share it.  See docs/collect.md.
"""

from llmrca.collect.case import CollectionError, collect_case
from llmrca.collect.logs import LogsResult, parse_line, read_log_files
from llmrca.collect.metrics import (
    GpuJoin,
    MetricsResult,
    collect_metrics,
    component_tags,
    default_aliases,
    is_gpu_metric,
    metric_defs,
    resolve_gpu_selectors,
    split_frame,
    time_grid,
)
from llmrca.collect.prom import PromClient, PrometheusError, Series
from llmrca.collect.traces import Span, SpansResult, SpanWriter, parse_traceparent, read_span_files

__all__ = [
    "CollectionError",
    "GpuJoin",
    "LogsResult",
    "MetricsResult",
    "PromClient",
    "PrometheusError",
    "Series",
    "Span",
    "SpanWriter",
    "SpansResult",
    "collect_case",
    "collect_metrics",
    "component_tags",
    "default_aliases",
    "is_gpu_metric",
    "metric_defs",
    "parse_line",
    "parse_traceparent",
    "read_log_files",
    "read_span_files",
    "resolve_gpu_selectors",
    "split_frame",
    "time_grid",
]
