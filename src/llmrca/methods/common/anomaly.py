"""Per-metric anomaly scoring of an anomalous window against a normal window.

Two scorers, both vectorised over columns:

* :func:`zscore_scores` — standard scaling fitted on the normal window
  (mean / standard deviation), as N-Sigma does;
* :func:`robust_scores` — robust scaling fitted on the normal window
  (median / inter-quartile range), as BARO does (Pham et al., FSE 2024,
  "BARO: Robust Root Cause Analysis for Microservices via Multivariate
  Bayesian Online Change Point Detection").

The centre / spread come from :mod:`llmrca.methods.common.scaling`, with its
one convention for a zero spread (a flat normal window): the spread is
floored at 1e-6 times the column's level, so a metric that was flat and then
moves scores high but finite, whatever its unit (``zero_spread="unit"``
gives scikit-learn's replacement by 1, as RCAEval's scalers do).  The score of a column
is the maximum of its scaled anomalous values (signed, upward deviations, as
the reference implementations rank) or of their absolute values when
``absolute`` is set.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.methods.common.scaling import robust_centre_scale, standard_centre_scale


def absent_before_as_zero(normal: np.ndarray, anomal: np.ndarray) -> np.ndarray:
    """``normal`` with every column that is all-missing before the injection but present after set to 0.

    Missing data is evidence: a series that first appears with the fault (an
    error counter, a restart count, a throttle-reason series an exporter only
    emits once non-zero) started from nothing, so its normal level is zero and
    its appearance scores as a change instead of being ignored as NaN.
    Shapes: ``normal`` (n_normal, k), ``anomal`` (n_anomal, k); returns a copy
    only when something changes.
    """
    if normal.size == 0 or anomal.size == 0:
        return normal
    with np.errstate(invalid="ignore"):
        appeared = np.isnan(normal).all(axis=0) & np.isfinite(anomal).any(axis=0)
    if not appeared.any():
        return normal
    out = normal.copy()
    out[:, appeared] = 0.0
    return out


def _as_frames(normal: pd.DataFrame, anomal: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = [c for c in normal.columns if c != "time" and c in anomal.columns]
    n, a = normal[cols].astype(float), anomal[cols].astype(float)
    return pd.DataFrame(absent_before_as_zero(n.to_numpy(), a.to_numpy()), index=n.index, columns=cols), a


def robust_center_scale(normal: pd.DataFrame, *, zero_spread: str = "relative") -> tuple[pd.Series, pd.Series]:
    """Median and inter-quartile range per column (spread floored by the house convention)."""
    med, iqr = robust_centre_scale(normal.to_numpy(dtype=float), zero_spread=zero_spread)
    return pd.Series(med, index=normal.columns), pd.Series(iqr, index=normal.columns)


def standard_center_scale(normal: pd.DataFrame, *, zero_spread: str = "relative") -> tuple[pd.Series, pd.Series]:
    """Mean and (population) standard deviation per column (spread floored by the house convention)."""
    mean, std = standard_centre_scale(normal.to_numpy(dtype=float), zero_spread=zero_spread)
    return pd.Series(mean, index=normal.columns), pd.Series(std, index=normal.columns)


def _score(anomal: pd.DataFrame, center: pd.Series, scale: pd.Series, absolute: bool) -> pd.Series:
    z = (anomal - center) / scale
    if absolute:
        z = z.abs()
    out = z.max(skipna=True)
    return out.astype(float)


def robust_scores(normal: pd.DataFrame, anomal: pd.DataFrame, *, absolute: bool = False, zero_spread: str = "relative") -> pd.Series:
    """BARO's score per column: max over the anomalous window of (x - median) / IQR."""
    n, a = _as_frames(normal, anomal)
    med, iqr = robust_center_scale(n, zero_spread=zero_spread)
    return _score(a, med, iqr, absolute)


def zscore_scores(normal: pd.DataFrame, anomal: pd.DataFrame, *, absolute: bool = False, zero_spread: str = "relative") -> pd.Series:
    """N-Sigma's score per column: max over the anomalous window of (x - mean) / std."""
    n, a = _as_frames(normal, anomal)
    mean, std = standard_center_scale(n, zero_spread=zero_spread)
    return _score(a, mean, std, absolute)


def robust_scale(frame: pd.DataFrame, normal: pd.DataFrame, *, zero_spread: str = "relative") -> pd.DataFrame:
    """``frame`` scaled with the normal window's median / IQR (columns of ``normal``)."""
    n, f = _as_frames(normal, frame)
    med, iqr = robust_center_scale(n, zero_spread=zero_spread)
    return (f - med) / iqr


def sigma_exceedances(normal: pd.DataFrame, anomal: pd.DataFrame, *, k: float = 3.0, upper_only: bool = True) -> pd.Series:
    """Per column, how many anomalous points lie beyond mean + k*std of the normal window."""
    n, a = _as_frames(normal, anomal)
    mean = n.mean()
    std = n.std(ddof=1).fillna(0.0)
    if upper_only:
        hit = a.ge(mean + k * std) & (std > 0).to_numpy()
    else:
        hit = ((a - mean).abs().ge(k * std)) & (std > 0).to_numpy()
    return hit.sum().astype(float)


def finite(series: pd.Series) -> pd.Series:
    """Replace NaN / inf scores by -inf so they sort last."""
    v = series.to_numpy(dtype=float)
    v = np.where(np.isfinite(v), v, -np.inf)
    return pd.Series(v, index=series.index)
