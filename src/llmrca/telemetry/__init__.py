"""Telemetry names and their meaning.

* :mod:`llmrca.telemetry.catalogue` — the columns llmrca's own backends emit
  (the ``basic`` and ``extended`` metric sets) and the PromQL that collects them;
* :mod:`llmrca.telemetry.aliases` — other exporters' and versions' series names
  for the same signals (vLLM ≤ 0.10, Ray Serve prefixes, DCGM field renames);
* :mod:`llmrca.telemetry.vocabulary` — any column name → semantic kind + unit.
"""

from llmrca.telemetry.catalogue import (
    BASIC,
    BASIC_NAMES,
    EXTENDED,
    EXTENDED_NAMES,
    GATEWAY,
    HEAD,
    OPERATOR,
    PROMETHEUS_EXTRA,
    MetricDef,
    is_serving,
    paper_topology,
    worker_name,
)

__all__ = [
    "BASIC",
    "BASIC_NAMES",
    "EXTENDED",
    "EXTENDED_NAMES",
    "GATEWAY",
    "HEAD",
    "OPERATOR",
    "PROMETHEUS_EXTRA",
    "MetricDef",
    "is_serving",
    "paper_topology",
    "worker_name",
]
