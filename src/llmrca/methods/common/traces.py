"""Span tables and trace-derived time series (``traces.csv``).

Columns: ``traceID, spanID, parentSpanID, serviceName, methodName,
operationName, duration`` (µs), ``statusCode, startTime`` (µs).

* :func:`prepare_spans` checks the columns and adds ``operation``
  (``<service>_<operationName>``, methodName where operationName is empty),
  ``start_s`` / ``end_s`` (epoch seconds), ``error`` (bool) and
  ``self_us`` (duration minus the direct children's durations);
* :func:`trace_series` builds per-component series on the metrics' time
  grid: ``<component>_trace-latency-p50`` / ``-p90`` (span duration, s) and
  ``<component>_trace-error-count`` (spans with an error status per bucket);
* :func:`operation_slo` gives each operation's normal mean / std duration.

A span is an error when its status code is a number ≥ 500 (HTTP 5xx) or a
string naming an error (OpenTelemetry ``STATUS_CODE_ERROR``, ``ERROR``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from llmrca.methods.common.timeutil import bucket_index

SPAN_COLUMNS = ("traceID", "spanID", "parentSpanID", "serviceName", "operationName", "duration", "startTime")


def _error_flags(status: pd.Series) -> np.ndarray:
    num = pd.to_numeric(status, errors="coerce")
    text = status.astype(str).str.lower()
    return ((num >= 500).fillna(False) | (num.isna() & text.str.contains("error"))).to_numpy(dtype=bool)


def prepare_spans(traces: pd.DataFrame) -> pd.DataFrame:
    """A copy of the span table with the derived columns described above."""
    missing = [c for c in SPAN_COLUMNS if c not in traces.columns]
    if missing:
        raise ValueError(
            f"traces lack column(s) {missing} (have {list(traces.columns)}); traces.csv needs "
            "traceID, spanID, parentSpanID, serviceName, methodName, operationName, duration (µs), statusCode, startTime (µs)"
        )
    s = traces.copy()
    s["parentSpanID"] = s["parentSpanID"].fillna("").astype(str)
    s["spanID"] = s["spanID"].astype(str)
    s["traceID"] = s["traceID"].astype(str)
    s["serviceName"] = s["serviceName"].astype(str)
    op = s["operationName"].astype("string")
    if "methodName" in s.columns:
        op = op.fillna(s["methodName"].astype("string"))
    s["operation"] = s["serviceName"] + "_" + op.fillna("").astype(str)
    s["duration"] = pd.to_numeric(s["duration"], errors="coerce").astype(float)
    start = pd.to_numeric(s["startTime"], errors="coerce").astype(float)
    s["start_s"] = start / 1e6
    s["end_s"] = (start + s["duration"]) / 1e6
    s["error"] = _error_flags(s["statusCode"]) if "statusCode" in s.columns else False
    # span ids are unique only within a trace: key children by (trace, parent)
    parent_key = s["traceID"] + "\x00" + s["parentSpanID"]
    child_sum = s["duration"].groupby(parent_key).sum()
    own_key = s["traceID"] + "\x00" + s["spanID"]
    s["self_us"] = (s["duration"] - own_key.map(child_sum).fillna(0.0)).clip(lower=0.0)
    return s


def map_services(spans: pd.DataFrame, components: Sequence[str]) -> pd.Series:
    """Component of each span (service name as is, or the longest component it contains)."""
    from llmrca.methods.common.logs import map_container

    mapping = {n: map_container(n, components) for n in spans["serviceName"].unique()}
    return spans["serviceName"].map(mapping)


def trace_series(spans: pd.DataFrame, grid: np.ndarray, components: Sequence[str]) -> pd.DataFrame:
    """Per-bucket span latency p50 / p90 (s) and error counts per component.

    Buckets without spans carry the last latency seen (forward fill, then
    backward fill at the start), as RCAEval's trace series do; error counts
    of empty buckets are 0.
    """
    grid = np.asarray(grid, dtype=float)
    n = grid.size
    comp = map_services(spans, components)
    idx = bucket_index(spans["start_s"].to_numpy(), grid)
    frame = pd.DataFrame({"b": idx, "c": comp.to_numpy(), "d": spans["duration"].to_numpy() / 1e6, "e": spans["error"].to_numpy(dtype=float)})
    frame = frame[(frame["b"] >= 0) & frame["c"].notna()]
    out: dict[str, np.ndarray] = {"time": grid}
    if frame.empty:
        return pd.DataFrame(out)
    q = frame.groupby(["c", "b"])["d"].quantile([0.5, 0.9]).unstack()
    errs = frame.groupby(["c", "b"])["e"].sum()
    present = set(frame["c"].unique())
    for c in [c for c in components if c in present]:
        for qq, name in ((0.5, "p50"), (0.9, "p90")):
            col = pd.Series(np.nan, index=range(n))
            vals = q.loc[c, qq]
            col.loc[vals.index.to_numpy(dtype=int)] = vals.to_numpy()
            out[f"{c}_trace-latency-{name}"] = col.ffill().bfill().to_numpy()
        e = np.zeros(n)
        ev = errs.loc[c]
        e[ev.index.to_numpy(dtype=int)] = ev.to_numpy()
        out[f"{c}_trace-error-count"] = e
    return pd.DataFrame(out)


def operation_slo(spans: pd.DataFrame) -> pd.DataFrame:
    """Mean and std (µs, ddof=1, 0 when single) of each operation's duration."""
    g = spans.groupby("operation")["duration"]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1).fillna(0.0)})


def split_at(spans: pd.DataFrame, inject_time: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spans that ended before ``inject_time`` (normal) and the rest (anomalous window).

    A span still running at injection belongs to the anomalous window, as in
    RCAEval's trace methods.
    """
    before = spans["end_s"] < inject_time
    return spans[before], spans[~before]


def split_traces_at(spans: pd.DataFrame, inject_time: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Whole traces that ended before ``inject_time`` (normal) and the rest (anomalous window).

    Keeps every trace in one piece, so a request that straddles the
    injection is judged with all of its spans.
    """
    trace_end = spans.groupby("traceID")["end_s"].transform("max")
    before = trace_end < inject_time
    return spans[before], spans[~before]
