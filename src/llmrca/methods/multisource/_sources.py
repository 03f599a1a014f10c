"""Assemble the time series a multi-source method sees: metrics, log counts, trace series."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from llmrca.methods.base import none_usable
from llmrca.methods.common.logs import log_count_series
from llmrca.methods.common.traces import prepare_spans, trace_series
from llmrca.model import Case


@dataclass
class Sources:
    """Series per source on the metrics' time grid, plus what was missing and why."""

    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    spans: pd.DataFrame | None = None

    def used(self) -> list[str]:
        return list(self.frames)


def collect_sources(case: Case, *, use_logs: bool = True, use_traces: bool = True) -> Sources:
    out = Sources()
    grid = case.metrics["time"].to_numpy(dtype=float)
    out.frames["metrics"] = case.metrics
    if not use_logs:
        out.missing["logs"] = "disabled by configuration"
    elif case.logs is None or case.logs.empty:
        out.missing["logs"] = "the case has no logs" + none_usable(case, "logs.csv")
    else:
        frame, unmapped = log_count_series(case.logs, grid, case.components)
        if unmapped:
            out.notes.append(f"log lines of containers {unmapped[:10]} match no component and were ignored")
        if frame.shape[1] > 1:
            out.frames["logs"] = frame
        else:
            out.missing["logs"] = "no log line maps to a component of the case"
    if not use_traces:
        out.missing["traces"] = "disabled by configuration"
    elif case.traces is None or case.traces.empty:
        out.missing["traces"] = "the case has no traces" + none_usable(case, "traces.csv")
    else:
        spans = prepare_spans(case.traces)
        out.spans = spans
        frame = trace_series(spans, grid, case.components)
        if frame.shape[1] > 1:
            out.frames["traces"] = frame
        else:
            out.missing["traces"] = "no span maps to a component of the case"
    return out
