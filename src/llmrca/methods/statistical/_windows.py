"""Shared helpers of the window-based statistical methods (NSigma, BARO)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.errors import MethodUnavailable
from llmrca.model import Case, numeric_block, split_column


def metric_matrix(case: Case) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(time, values[n_rows, n_metrics], column names) of the candidates' numeric metric columns."""
    df = case.metrics
    cands = set(case.components)
    dtypes = df.dtypes
    cols = [c for c in df.columns if c != "time" and split_column(str(c))[0] in cands and pd.api.types.is_numeric_dtype(dtypes[c])]
    if not cols:
        raise MethodUnavailable("the case has no numeric metric columns of its candidate components")
    return df["time"].to_numpy(dtype=float), numeric_block(df, cols), [str(c) for c in cols]


def split_at(time: np.ndarray, x: np.ndarray, at: float, *, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Rows before ``at`` (normal) and from ``at`` on (anomalous); each needs ``min_rows``.

    A series absent before ``at`` and present after it counts as zero before
    (see :func:`llmrca.methods.common.anomaly.absent_before_as_zero`).
    """
    from llmrca.methods.common.anomaly import absent_before_as_zero

    before = time < at
    normal, anomal = x[before], x[~before]
    if len(normal) < min_rows or len(anomal) < 1:
        raise MethodUnavailable(
            f"the split at t={at} leaves {len(normal)} normal and {len(anomal)} anomalous rows; "
            f"need at least {min_rows} before and 1 after the injection"
        )
    return absent_before_as_zero(normal, anomal), anomal


def floor_scale(scale: np.ndarray, centre: np.ndarray, rel: float = 1e-6) -> np.ndarray:
    """Replace zero / tiny spreads so a constant-then-moving metric scores high but finite."""
    floor = rel * np.maximum(1.0, np.abs(centre))
    return np.where(np.isfinite(scale) & (scale > floor), scale, floor)


def max_abs(scaled: np.ndarray) -> np.ndarray:
    """Column-wise max |value| ignoring NaN (NaN where a column has no finite value)."""
    a = np.abs(scaled)
    a[~np.isfinite(a)] = np.nan
    with np.errstate(all="ignore"):
        out = np.full(a.shape[1], np.nan)
        ok = ~np.isnan(a).all(axis=0)
        out[ok] = np.nanmax(a[:, ok], axis=0)
    return out
