"""Time-unit normalisation shared by the log and trace helpers."""

from __future__ import annotations

import numpy as np


def to_epoch_seconds(values: np.ndarray) -> np.ndarray:
    """Epoch timestamps in s, ms, µs or ns -> seconds (decided by magnitude).

    Epoch seconds of this era are ~1.7e9; milliseconds ~1.7e12, microseconds
    ~1.7e15, nanoseconds ~1.7e18.  Small values (relative times, tests) are
    taken as seconds.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return v
    mag = float(np.nanmedian(np.abs(v)))
    if mag > 1e17:
        return v / 1e9
    if mag > 1e14:
        return v / 1e6
    if mag > 1e11:
        return v / 1e3
    return v


def bucket_index(times_s: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index of the grid interval [grid[i], grid[i+1]) holding each time; -1 outside.

    The last interval is as wide as the grid step before it.
    """
    grid = np.asarray(grid, dtype=float)
    if grid.size == 0:
        return np.full(np.shape(times_s), -1, dtype=int)
    step = float(grid[-1] - grid[-2]) if grid.size > 1 else 1.0
    idx = np.searchsorted(grid, times_s, side="right") - 1
    out_of_range = (idx < 0) | (times_s >= grid[-1] + step)
    return np.where(out_of_range, -1, idx)
