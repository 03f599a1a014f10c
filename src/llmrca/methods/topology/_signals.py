"""Per-component signals the topology methods share: latency and resource series, correlations."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.methods.common.edges import latency_column
from llmrca.methods.common.scaling import abs_corr
from llmrca.model import split_column


def component_columns(metrics: pd.DataFrame, component: str) -> list[str]:
    return [c for c in metrics.columns if c != "time" and split_column(c)[0] == component]


def resource_columns(metrics: pd.DataFrame, component: str) -> list[str]:
    """The component's columns that are not latency (cpu, memory, network, gpu, ...)."""
    return [c for c in component_columns(metrics, component) if "latency" not in split_column(c)[1]]


def latency_series(metrics: pd.DataFrame, component: str) -> np.ndarray | None:
    col = latency_column(metrics, component)
    return None if col is None else metrics[col].to_numpy(dtype=float)


def max_corr(target: np.ndarray | None, metrics: pd.DataFrame, columns: list[str]) -> tuple[float, str | None]:
    """Largest |corr| between ``target`` and any of ``columns``, with that column."""
    if target is None:
        return 0.0, None
    best, arg = 0.0, None
    for c in columns:
        r = abs_corr(target, metrics[c].to_numpy(dtype=float))
        if r > best:
            best, arg = r, c
    return best, arg
