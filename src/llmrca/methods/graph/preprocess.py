"""Shared preprocessing of a :class:`~llmrca.model.Case` for graph-based methods.

Graph discovery runs on a numeric matrix: one row per sample, one column per
``<component>_<metric>``.  :func:`prepare` builds it from a Case:

1. select the window around the injection (``normal_window_s`` before it,
   ``anomalous_window_s`` from it on; ``None`` keeps everything);
2. drop all-NaN and constant columns, and exact copies of another column
   (|r| = 1, which makes Fisher-z tests singular), recording the reason;
3. fill gaps (forward, then backward fill) — a gap is a missing scrape, and
   carrying the last value forward is what a dashboard would show;
4. optionally cap the number of columns, keeping per component the columns
   that move most at the injection (round-robin over components, so every
   component keeps its most anomalous column before any gets a second one);
5. optionally normalise (z-score over the window).

:func:`prepare_reference` reproduces RCAEval's ``preprocess`` (drop ``time``,
drop constant columns, memory in MB; no window, no normalisation) for the
reference mode of the methods.

Anomaly scores (:func:`anomaly_scores`) are the |z| of the anomalous window
against the normal window's mean and standard deviation (max over the
anomalous rows), as in the N-sigma rule that MicroRCA/CloudRanger-style methods
use to weigh metrics.  The service-level indicator (:func:`sli_column`) is the
entry point's latency (p90 preferred; chosen through the metric vocabulary, see
:mod:`llmrca.methods.common.sli`), never anything derived from ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from llmrca.methods.common.scaling import floor_spread
from llmrca.methods.common.windows import Windows, clip_frame, n_normal_rows
from llmrca.model import Case, split_column


class PreprocessError(ValueError):
    """The case leaves too little data for a graph method (says what and why)."""


#: A case as a numeric matrix for graph discovery: the shared window split type
#: (:class:`llmrca.methods.common.windows.Windows`), kept under its old name.
Prepared = Windows


def sli_column(case: Case, columns: Sequence[str] | None = None) -> str | None:
    """The SLI column (see :func:`llmrca.methods.common.sli.sli_column`: the entry's latency, by meaning)."""
    from llmrca.methods.common.sli import sli_column as choose

    return choose(case, columns)


def _window(case: Case, normal_window_s: float | None, anomalous_window_s: float | None) -> pd.DataFrame:
    return clip_frame(case.metrics, case.inject_time, normal_window_s, anomalous_window_s)


def _constant(values: pd.DataFrame) -> pd.Series:
    """Columns whose values are all equal (NaNs ignored)."""
    return values.nunique(dropna=True) <= 1


def prepare(
    case: Case,
    *,
    normal_window_s: float | None = None,
    anomalous_window_s: float | None = None,
    max_columns: int | None = None,
    normalize: bool = True,
    keep: Sequence[str] = (),
    min_rows: int = 10,
) -> Prepared:
    """Turn ``case`` into a :class:`Prepared` matrix (see the module docstring).

    ``keep`` names columns that survive the column cap (e.g. the SLI).  Raises
    :class:`PreprocessError` when fewer than ``min_rows`` rows, no normal or no
    anomalous row, or fewer than two usable columns remain.
    """
    df = _window(case, normal_window_s, anomalous_window_s)
    times = df["time"].to_numpy(dtype=float)
    n_normal = n_normal_rows(times, case.inject_time)
    where = case.label
    if len(df) < min_rows:
        if normal_window_s is None and anomalous_window_s is None:  # the windows are already the whole case
            raise PreprocessError(f"{where}: only {len(df)} rows in the whole case (need {min_rows})")
        raise PreprocessError(f"{where}: only {len(df)} rows in the analysis window (need {min_rows}); widen normal_window_s/anomalous_window_s")
    if n_normal == 0 or n_normal == len(df):
        raise PreprocessError(f"{where}: the window has {n_normal} normal and {len(df) - n_normal} anomalous rows; both are needed")
    data = df.drop(columns=["time"]).apply(pd.to_numeric, errors="coerce").astype(float)
    data = data.replace([np.inf, -np.inf], np.nan)
    dropped: dict[str, str] = {}
    all_nan = data.columns[data.isna().all()]
    dropped.update({str(c): "all NaN in the window" for c in all_nan})
    data = data.drop(columns=all_nan)
    data = data.ffill().bfill()
    const = data.columns[_constant(data)]
    dropped.update({str(c): "constant in the window" for c in const})
    data = data.drop(columns=const)
    dup = duplicate_columns(data, keep)
    dropped.update(dup)
    data = data.drop(columns=list(dup))
    data = data.reset_index(drop=True)
    prepared = Prepared(data=data, times=times, n_normal=n_normal, dropped=dropped)
    if max_columns is not None and data.shape[1] > max_columns:
        chosen = cap_columns(prepared, max_columns, keep=keep)
        for c in data.columns:
            if c not in chosen:
                dropped[str(c)] = f"column cap (max_columns={max_columns})"
        data = data[chosen]
    if data.shape[1] < 2:
        raise PreprocessError(
            f"{where}: {data.shape[1]} usable metric column(s) after dropping constant/empty ones "
            f"({len(dropped)} dropped); a causal graph needs at least two"
        )
    if normalize:
        data = (data - data.mean()) / data.std(ddof=0)
    prepared.data = data
    prepared.sli = sli_column(case, list(data.columns))
    return prepared


def duplicate_columns(data: pd.DataFrame, keep: Sequence[str]) -> dict[str, str]:
    """Columns that are an exact affine copy of another (|r| = 1): they make Fisher-z singular.

    Columns in ``keep`` win over their copies; otherwise the first column wins.
    """
    if data.shape[1] < 2:
        return {}
    x = data.to_numpy(dtype=float)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    r = np.abs(x.T @ x) / x.shape[0]
    cols = [str(c) for c in data.columns]
    order = [cols.index(c) for c in keep if c in cols] + [i for i, c in enumerate(cols) if c not in keep]
    kept: list[int] = []
    out: dict[str, str] = {}
    for i in order:
        twin = next((j for j in kept if r[i, j] > 1 - 1e-9), None)
        if twin is None:
            kept.append(i)
        else:
            out[cols[i]] = f"duplicate of {cols[twin]}"
    return out


def prepare_reference(case: Case) -> Prepared:
    """RCAEval 1.8.1's ``preprocess(data, dataset=...)``: the reference mode's input.

    Drops ``time`` and every column whose values all equal its first value,
    converts ``*_mem`` columns to MB, and keeps the whole frame (no window,
    no gap filling, no normalisation).
    """
    df = case.metrics
    times = df["time"].to_numpy(dtype=float)
    data = df.drop(columns=["time"])
    data = data.loc[:, (data != data.iloc[0]).any()]
    dropped = {str(c): "constant (reference rule)" for c in df.columns if c != "time" and c not in data.columns}
    data = data.apply(lambda x: x / 1e6 if str(x.name).endswith("_mem") else x)
    n_normal = n_normal_rows(times, case.inject_time)
    out = Prepared(data=data.reset_index(drop=True).astype(float), times=times, n_normal=n_normal, dropped=dropped)
    out.sli = sli_column(case, out.columns)
    return out


def anomaly_scores(prepared: Prepared, *, stat: str = "mean") -> pd.Series:
    """Per column: |z| of the anomalous rows against the normal rows' mean and standard deviation.

    ``stat`` aggregates the anomalous rows' |z|: ``"mean"`` (default; robust
    to a single noisy sample in a short window) or ``"max"``.  A zero normal
    spread is floored by the house convention
    (:func:`llmrca.methods.common.scaling.floor_spread`), so a column flat
    before the injection scores high but finite.
    """
    if stat not in ("mean", "max"):
        raise ValueError(f"anomaly score stat must be 'mean' or 'max', got {stat!r}")
    z = _abs_z(prepared)
    agg = z.mean(axis=0) if stat == "mean" else z.max(axis=0)
    return pd.Series(agg, index=prepared.columns)


def _abs_z(prepared: Prepared) -> np.ndarray:
    x = prepared.values
    normal = x[: prepared.n_normal]
    anomal = x[prepared.n_normal :]
    mu = normal.mean(axis=0)
    sd = floor_spread(normal.std(axis=0), mu)
    return np.abs(anomal - mu) / sd


def anomaly_onsets(prepared: Prepared, *, threshold: float = 3.0) -> pd.Series:
    """Per column: the first anomalous row (0 = injection row) where |z| > threshold.

    Columns that never cross the threshold get the number of anomalous rows.
    """
    over = _abs_z(prepared) > threshold
    first = np.where(over.any(axis=0), over.argmax(axis=0), over.shape[0])
    return pd.Series(first.astype(float), index=prepared.columns)


def cap_columns(prepared: Prepared, max_columns: int, *, keep: Sequence[str] = ()) -> list[str]:
    """Choose at most ``max_columns`` columns, most anomalous first, fairly across components.

    Columns in ``keep`` are always chosen.  The others are taken round-robin
    over components (each component's columns ordered by anomaly score, ties
    by column order), so a component loses its quieter metrics before any
    component disappears.  The result keeps the original column order.
    """
    if max_columns < 2:
        raise PreprocessError(f"max_columns={max_columns} is too small; a causal graph needs at least two columns")
    scores = anomaly_scores(prepared)
    cols = prepared.columns
    chosen = [c for c in keep if c in scores.index][:max_columns]
    by_comp: dict[str, list[str]] = {}
    for c in cols:
        if c not in chosen:
            by_comp.setdefault(split_column(c)[0], []).append(c)
    for comp, lst in by_comp.items():
        by_comp[comp] = sorted(lst, key=lambda c: -float(scores[c]))
    rank = 0
    while len(chosen) < max_columns:
        layer = [lst[rank] for lst in by_comp.values() if len(lst) > rank]
        if not layer:
            break
        layer.sort(key=lambda c: -float(scores[c]))
        chosen.extend(layer[: max_columns - len(chosen)])
        rank += 1
    chosen_set = set(chosen)
    return [c for c in cols if c in chosen_set]
