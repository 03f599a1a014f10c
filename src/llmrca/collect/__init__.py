"""Collection: Prometheus HTTP API, log files and span files → :class:`llmrca.model.Case`.

The collector takes a Prometheus URL and PromQL label selectors, so the
local testbed and a Kubernetes cluster share it.  See docs/collect.md.
"""

from llmrca.collect.case import CollectionError, collect_case
from llmrca.collect.logs import LogsResult, parse_line, read_log_files
from llmrca.collect.metrics import (
    MetricsResult,
    collect_metrics,
    component_tags,
    default_aliases,
    metric_defs,
    split_frame,
    time_grid,
)
from llmrca.collect.prom import PromClient, PrometheusError, Series
from llmrca.collect.traces import Span, SpansResult, SpanWriter, parse_traceparent, read_span_files

__all__ = [
    "CollectionError",
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
    "metric_defs",
    "parse_line",
    "parse_traceparent",
    "read_log_files",
    "read_span_files",
    "split_frame",
    "time_grid",
]
