"""Log-count time series from ``logs.csv`` (columns ``time``, ``container_name``, ``message``).

Multi-source methods (MM-BARO, PDiagnose) turn logs into two series per
component on the metrics' time grid: ``<component>_log-count`` (lines per
bucket) and ``<component>_log-error-count`` (lines matching the error
pattern).  A container is mapped to the case component whose name equals it,
or else the longest component name it contains (pod names carry suffixes:
``ray-worker-1-7f9c`` -> ``ray-worker-1``).  Lines of unmapped containers are
dropped and listed by :func:`log_count_series` so a caller can say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from llmrca.methods.common.timeutil import bucket_index, to_epoch_seconds

#: What counts as an error line (case-insensitive), after PDiagnose / RCAEval's "error|fail".
ERROR_PATTERN = r"error|fail|exception|traceback|fatal|critical|out of memory|oom|killed"

LOG_COLUMNS = ("time", "container_name", "message")


def map_container(name: str, components: Sequence[str]) -> str | None:
    """The component a container / pod name belongs to, or None."""
    if name in components:
        return name
    best = None
    for c in components:
        if c in name and (best is None or len(c) > len(best)):
            best = c
    return best


def check_logs(logs: pd.DataFrame) -> None:
    missing = [c for c in LOG_COLUMNS if c not in logs.columns]
    if missing:
        raise ValueError(f"logs lack column(s) {missing} (have {list(logs.columns)}); logs.csv needs time, container_name, message")


def log_count_series(
    logs: pd.DataFrame,
    grid: np.ndarray,
    components: Sequence[str],
    *,
    error_pattern: str = ERROR_PATTERN,
) -> tuple[pd.DataFrame, list[str]]:
    """Per-bucket log and error-line counts per component on ``grid`` (epoch s).

    Returns the frame (``time`` + two columns per component seen in the logs)
    and the container names that matched no component.
    """
    check_logs(logs)
    grid = np.asarray(grid, dtype=float)
    t = to_epoch_seconds(logs["time"].to_numpy())
    idx = bucket_index(t, grid)
    names = logs["container_name"].astype(str)
    uniq = names.unique()
    mapping = {n: map_container(n, components) for n in uniq}
    unmapped = sorted(n for n, c in mapping.items() if c is None)
    comp = names.map(mapping)
    is_err = logs["message"].astype(str).str.contains(error_pattern, flags=re.IGNORECASE, regex=True).to_numpy()
    keep = (idx >= 0) & comp.notna().to_numpy()
    frame = pd.DataFrame({"b": idx[keep], "c": comp[keep].to_numpy(), "err": is_err[keep].astype(float)})
    out: dict[str, np.ndarray] = {"time": grid}
    n = grid.size
    present = set(frame["c"].unique())
    b_idx = frame["b"].to_numpy(dtype=int)
    errs = frame["err"].to_numpy()
    groups = frame.groupby("c", sort=False).indices
    for c in [c for c in components if c in present]:
        rows = groups[c]
        out[f"{c}_log-count"] = np.bincount(b_idx[rows], minlength=n).astype(float)[:n]
        out[f"{c}_log-error-count"] = np.bincount(b_idx[rows], weights=errs[rows], minlength=n)[:n]
    return pd.DataFrame(out), unmapped


def error_line_counts(
    logs: pd.DataFrame,
    components: Sequence[str],
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    error_pattern: str = ERROR_PATTERN,
) -> dict[str, int]:
    """Error lines per component between ``start_s`` and ``end_s`` (either may be None)."""
    check_logs(logs)
    t = to_epoch_seconds(logs["time"].to_numpy())
    mask = np.ones(t.size, dtype=bool)
    if start_s is not None:
        mask &= t >= start_s
    if end_s is not None:
        mask &= t < end_s
    names = logs["container_name"].astype(str)[mask]
    msgs = logs["message"].astype(str)[mask]
    is_err = msgs.str.contains(error_pattern, flags=re.IGNORECASE, regex=True)
    counts = {c: 0 for c in components}
    for name, k in names[is_err].value_counts().items():
        c = map_container(str(name), components)
        if c is not None:
            counts[c] += int(k)
    return counts
