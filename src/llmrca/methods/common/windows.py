"""The normal / anomalous window split: the one home every method uses.

A case is split at its injection time ``t0`` (:attr:`llmrca.model.Case.inject_time`):
rows with ``time < t0`` form the *normal* window, rows with ``time >= t0``
the *anomalous* window.  Methods never see the fault's end (it is ground
truth; the evaluator strips it), so the anomalous window runs to the end of
the data; optional lengths clip both windows (``None`` keeps everything).

Two forms of the same split:

* :class:`Windows` — a numeric matrix (one column per ``<component>_<metric>``,
  rows in time order) whose first ``n_normal`` rows are the normal window.
  The graph methods (``Prepared``) and the causal methods use it;
* :func:`split_at` / :func:`split_frame` — the arrays / frames of the two
  windows, for the window-based scorers (N-Sigma, BARO, MM-BARO, PDiagnose,
  Microscope, ε-Diagnosis).

A series absent before ``t0`` and present after it counts as zero before
(:func:`llmrca.methods.common.anomaly.absent_before_as_zero`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llmrca.errors import MethodUnavailable
from llmrca.model import MIN_NORMAL_ROWS, Case, numeric_block, split_column


@dataclass
class Windows:
    """A case as a numeric matrix split at the injection time.

    ``data`` has one column per kept metric (no ``time``), rows in time order
    (shape ``(n_rows, n_columns)``); its first ``n_normal`` rows come before
    the injection.  ``times`` (shape ``(n_rows,)``, seconds) are the rows'
    timestamps.  ``dropped`` maps each removed column to the reason; ``sli``
    is the service-level-indicator column when one was chosen; ``steps`` the
    dropped columns that only step at the injection (see
    :func:`llmrca.methods.causal._data.windows`).
    """

    data: pd.DataFrame
    times: np.ndarray
    n_normal: int
    dropped: dict[str, str] = field(default_factory=dict)
    sli: str | None = None
    steps: tuple[str, ...] = ()  # dropped step columns (constant in each window, changing at the injection)

    @property
    def frame(self) -> pd.DataFrame:
        """Alias of ``data`` (the causal methods' spelling)."""
        return self.data

    @property
    def time(self) -> np.ndarray:
        """Alias of ``times``."""
        return self.times

    @property
    def columns(self) -> list[str]:
        return [str(c) for c in self.data.columns]

    @property
    def column_components(self) -> list[str]:
        return [split_column(c)[0] for c in self.columns]

    @property
    def values(self) -> np.ndarray:
        return self.data.to_numpy(dtype=float)

    @property
    def normal(self) -> pd.DataFrame:
        return self.data.iloc[: self.n_normal]

    @property
    def anomalous(self) -> pd.DataFrame:
        return self.data.iloc[self.n_normal :]


def clip_mask(times: np.ndarray, inject_time: float, normal_window_s: float | None, anomalous_window_s: float | None) -> np.ndarray:
    """Rows inside ``[t0 - normal_window_s, t0 + anomalous_window_s)``; ``None`` = no limit on that side.

    Shape ``(n_rows,)`` boolean; ``times`` in seconds.
    """
    t = np.asarray(times, dtype=float)
    keep = np.ones(len(t), dtype=bool)
    if normal_window_s is not None:
        keep &= t >= inject_time - float(normal_window_s)
    if anomalous_window_s is not None:
        keep &= t < inject_time + float(anomalous_window_s)
    return keep


def clip_frame(df: pd.DataFrame, inject_time: float, normal_window_s: float | None = None, anomalous_window_s: float | None = None) -> pd.DataFrame:
    """The rows of ``df`` (a frame with a ``time`` column, sorted by time) inside the analysis window."""
    df = df.sort_values("time", kind="stable")
    return df.loc[clip_mask(df["time"].to_numpy(dtype=float), inject_time, normal_window_s, anomalous_window_s)]


def n_normal_rows(times: np.ndarray, inject_time: float) -> int:
    """How many rows lie strictly before the injection (rows sorted by time)."""
    return int((np.asarray(times, dtype=float) < inject_time).sum())


def split_frame(df: pd.DataFrame, inject_time: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with ``time < t0``, rows with ``time >= t0``) of a frame with a ``time`` column."""
    before = df["time"] < inject_time
    return df[before], df[~before]


def split_at(time: np.ndarray, x: np.ndarray, at: float, *, min_rows: int = MIN_NORMAL_ROWS, min_anomalous: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``x`` (shape ``(n, k)``) before ``at`` (normal) and from ``at`` on (anomalous).

    A series absent before ``at`` and present after it counts as zero before.
    Raises :class:`~llmrca.errors.MethodUnavailable` when fewer than
    ``min_rows`` normal or ``min_anomalous`` anomalous rows remain.
    """
    from llmrca.methods.common.anomaly import absent_before_as_zero

    before = np.asarray(time, dtype=float) < at
    normal, anomal = x[before], x[~before]
    if len(normal) < min_rows or len(anomal) < min_anomalous:
        raise MethodUnavailable(
            f"the split at t={at} leaves {len(normal)} normal and {len(anomal)} anomalous rows; "
            f"need at least {min_rows} before and {min_anomalous} from the injection on"
        )
    return absent_before_as_zero(normal, anomal), anomal


def metric_matrix(case: Case) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(times ``(n,)``, values ``(n, k)``, column names) of the candidates' numeric metric columns.

    Raises :class:`~llmrca.errors.MethodUnavailable` when no such column exists.
    """
    df = case.metrics
    cands = set(case.components)
    dtypes = df.dtypes
    cols = [c for c in df.columns if c != "time" and split_column(str(c))[0] in cands and pd.api.types.is_numeric_dtype(dtypes[c])]
    if not cols:
        raise MethodUnavailable("the case has no numeric metric columns of its candidate components")
    return df["time"].to_numpy(dtype=float), numeric_block(df, cols), [str(c) for c in cols]
