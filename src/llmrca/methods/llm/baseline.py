"""Robust per-signal baselines learned from the normal window, and window statistics.

The normal window defines what a healthy component looks like: for every
column the median and a robust scale (1.4826·MAD, floored by a relative share
of the level and by the signal's smallest meaningful change, see
:data:`~llmrca.methods.llm.signals.FLOORS`).  A window is then summarised per
column by its quartiles, extremes and share of missing samples; everything is
vectorised over columns so that one decision at hundreds of replicas costs
milliseconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llmrca.methods.llm.signals import DEFAULT_FLOOR, FLOORS
from llmrca.model import split_column


def _shares() -> tuple[tuple[str, str, str], ...]:
    """Derived network shares: (share, mesh latency, engine latency of the same statistic)."""
    from llmrca.methods.llm.signals import E2E90, E2E_MEAN, LAT90, LAT_MEAN, NET_SHARE, NET_SHARE_MEAN

    return ((NET_SHARE, LAT90, E2E90), (NET_SHARE_MEAN, LAT_MEAN, E2E_MEAN))


def with_derived(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` plus the derived per-replica series the method reads.

    ``<c>_net-share:p90`` = mesh latency p90 − engine e2e p90 of the same
    replica, sample by sample: the two move together with load, so their
    difference has a far smaller normal spread than either and isolates the
    network's share of a request.  ``<c>_net-share:mean`` is the same from the
    means (histogram ``_sum`` / ``_count``), when the case has them: a p90
    interpolated inside a wide bucket can stay put under a delay the mean shows.
    """
    extra = {}
    ordered = frame.columns.to_numpy(dtype=object).tolist()
    names = set(ordered)
    for col in ordered:
        comp, sig = split_column(col)
        for share, mesh, engine in _shares():
            if sig == mesh and f"{comp}_{engine}" in names:
                extra[f"{comp}_{share}"] = frame[col].to_numpy(dtype=float) - frame[f"{comp}_{engine}"].to_numpy(dtype=float)
    if not extra:
        return frame
    return pd.concat([frame, pd.DataFrame(extra, index=frame.index)], axis=1)


@dataclass
class ColumnIndex:
    """Where each (component, signal) lives in the column arrays."""

    columns: list[str]
    where: dict[str, dict[str, int]]  # component -> signal -> column index

    @classmethod
    def of(cls, columns: list[str]) -> ColumnIndex:
        where: dict[str, dict[str, int]] = {}
        for i, col in enumerate(columns):
            comp, sig = split_column(col)
            if sig:
                where.setdefault(comp, {})[sig] = i
        return cls(columns=list(columns), where=where)

    def get(self, comp: str, sig: str) -> int | None:
        return self.where.get(comp, {}).get(sig)

    def signals(self) -> set[str]:
        out: set[str] = set()
        for sigs in self.where.values():
            out.update(sigs)
        return out


def _data_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c != "time"]


def _quiet_nan(fn, *args, **kwargs):
    # All-NaN columns are expected (a component silent in a window): the
    # resulting NaN is handled by the caller as "no data".
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def nan_quantiles(x: np.ndarray, qs: list[float]) -> np.ndarray:
    """Column quantiles ignoring NaN (linear interpolation, as numpy's default), vectorised.

    ``np.nanquantile`` falls back to a per-column Python loop as soon as one
    column has a NaN; sorting once (NaN sorts last) and interpolating by the
    per-column count of valid samples is one pass over the array.
    """
    srt = np.sort(x, axis=0)
    n = np.sum(~np.isnan(x), axis=0)
    out = np.full((len(qs), x.shape[1]), np.nan)
    ok = n > 0
    cols = np.nonzero(ok)[0]
    if cols.size == 0:
        return out
    nv = n[ok].astype(float)
    for k, q in enumerate(qs):
        pos = q * (nv - 1.0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, n[ok] - 1)
        frac = pos - lo
        out[k, cols] = srt[lo, cols] * (1.0 - frac) + srt[hi, cols] * frac
    return out


@dataclass
class NormalModel:
    """What healthy looks like, per column."""

    index: ColumnIndex
    median: np.ndarray
    scale: np.ndarray
    spread: np.ndarray  # 1.4826 * MAD, not floored (how much the column really moved)
    low: np.ndarray  # 5th percentile
    high: np.ndarray  # 95th percentile
    max: np.ndarray
    nan_frac: np.ndarray
    n_rows: int
    duration_s: float

    @classmethod
    def fit(cls, frame: pd.DataFrame, *, rel_floor: float) -> NormalModel:
        cols = _data_columns(frame)
        if not cols:
            raise ValueError("normal window has no metric columns besides 'time'; pass a frame of <component>_<metric> columns")
        if len(frame) < 3:
            raise ValueError(f"normal window has {len(frame)} rows; at least 3 are needed to learn a baseline")
        x = frame[cols].to_numpy(dtype=float)
        med = nan_quantiles(x, [0.5])[0]
        mad = nan_quantiles(np.abs(x - med), [0.5])[0] * 1.4826
        index = ColumnIndex.of(cols)
        floors = np.array([FLOORS.get(split_column(c)[1], DEFAULT_FLOOR) for c in cols])
        scale = np.fmax(np.fmax(np.nan_to_num(mad, nan=0.0), rel_floor * np.abs(np.nan_to_num(med, nan=0.0))), floors)
        # The network share is part of the request latency: a change is meaningful relative to
        # that latency's level, not to its own (near-zero) level.
        mesh_of = {share: mesh for share, mesh, _ in _shares()}
        for j, col in enumerate(cols):
            comp, sig = split_column(col)
            k = index.get(comp, mesh_of[sig]) if sig in mesh_of else None
            if k is not None and np.isfinite(med[k]):
                scale[j] = max(scale[j], rel_floor * abs(float(med[k])))
        q = nan_quantiles(x, [0.05, 0.95])
        if "time" in frame.columns and len(frame) > 1:
            t = frame["time"].to_numpy(dtype=float)
            duration = float(t[-1] - t[0] + np.median(np.diff(t)))
        else:
            duration = float(len(frame))
        return cls(
            index=index,
            median=med,
            scale=scale,
            spread=np.nan_to_num(mad, nan=0.0),
            low=q[0],
            high=q[1],
            max=_quiet_nan(np.nanmax, x, axis=0),
            nan_frac=np.isnan(x).mean(axis=0),
            n_rows=len(frame),
            duration_s=duration,
        )


@dataclass
class WindowStats:
    """Quartiles, extremes and missing share of every column in a window."""

    q25: np.ndarray
    q50: np.ndarray
    q75: np.ndarray
    min: np.ndarray
    max: np.ndarray
    nan_frac: np.ndarray
    values: np.ndarray  # rows x columns (aligned to the normal model's columns)
    duration_s: float

    @classmethod
    def of(cls, frame: pd.DataFrame, index: ColumnIndex) -> WindowStats:
        if len(frame) == 0:
            raise ValueError("the window has no rows; pass at least one sample after the injection / alert time")
        # Align to the columns learned in the normal window; columns that vanished are all-NaN.
        names = frame.columns.to_numpy(dtype=object).tolist()
        if names[0] == "time" and names[1:] == index.columns:
            x = frame.to_numpy(dtype=float)[:, 1:]
        else:
            x = frame.reindex(columns=index.columns).to_numpy(dtype=float)
        q = nan_quantiles(x, [0.25, 0.5, 0.75])
        if "time" in frame.columns and len(frame) > 1:
            t = frame["time"].to_numpy(dtype=float)
            duration = float(t[-1] - t[0] + np.median(np.diff(t)))
        else:
            duration = float(len(frame))
        return cls(
            q25=q[0],
            q50=q[1],
            q75=q[2],
            min=_quiet_nan(np.nanmin, x, axis=0),
            max=_quiet_nan(np.nanmax, x, axis=0),
            nan_frac=np.isnan(x).mean(axis=0),
            values=x,
            duration_s=duration,
        )
