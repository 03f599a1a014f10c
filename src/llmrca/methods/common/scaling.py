"""Per-metric scaling against the normal window: the one home of the robust / standard scalers.

Two scalers, both fitted on the normal window and vectorised over columns:

* robust — median and inter-quartile range (``q_low`` .. ``q_high``), as BARO
  prescribes (Pham, Ha, Zhang, "BARO: Robust Root Cause Analysis for
  Microservices via Multivariate Bayesian Online Change Point Detection",
  FSE 2024, Sec. 3.3);
* standard — mean and population standard deviation, as the N-sigma rule does
  (Pham, Ha, Zhang, "Root Cause Analysis for Microservices based on Causal
  Inference: How Far Are We?", ASE 2024).

**Zero spread, one convention.**  A metric that is flat in the normal window
and then moves has a spread of zero.  The house convention
(``zero_spread="relative"``) floors the spread at ``ZERO_SPREAD_REL`` (1e-6)
times the column's level ``max(1, |centre|)``: the metric scores high but
finite, and the score does not depend on the metric's unit (bytes or GiB,
seconds or ms give the same ranking).  ``zero_spread="unit"`` replaces a zero
spread by 1 instead, which is scikit-learn's convention
(``sklearn.preprocessing._data._handle_zeros_in_scale``, used by its
``RobustScaler`` / ``StandardScaler``) and therefore what RCAEval 1.8.1's
BARO and N-Sigma do; it is offered to reproduce those numbers.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np

#: Relative floor of a zero spread (times the column's level ``max(1, |centre|)``).
ZERO_SPREAD_REL = 1e-6

ZeroSpread = Literal["relative", "unit"]
ZERO_SPREAD_CHOICES: tuple[str, ...] = ("relative", "unit")


def floor_spread(spread: np.ndarray, centre: np.ndarray, zero_spread: str = "relative") -> np.ndarray:
    """``spread`` (shape ``(k,)``) with zero / tiny / non-finite entries replaced by the convention's floor.

    ``relative``: entries not above ``ZERO_SPREAD_REL * max(1, |centre|)`` become that floor;
    ``unit``: entries that are zero or not finite become 1 (scikit-learn).  Raises ValueError on an
    unknown convention.
    """
    spread = np.asarray(spread, dtype=float)
    if zero_spread == "relative":
        centre = np.asarray(centre, dtype=float)
        level = np.where(np.isfinite(centre), np.abs(centre), 0.0)
        floor = ZERO_SPREAD_REL * np.maximum(1.0, level)
        return np.where(np.isfinite(spread) & (spread > floor), spread, floor)
    if zero_spread == "unit":
        return np.where(np.isfinite(spread) & (spread != 0), spread, 1.0)
    raise ValueError(f"zero_spread must be one of {', '.join(ZERO_SPREAD_CHOICES)}, got {zero_spread!r}")


def robust_centre_scale(
    normal: np.ndarray, *, q_low: float = 0.25, q_high: float = 0.75, zero_spread: str = "relative"
) -> tuple[np.ndarray, np.ndarray]:
    """Median and ``q_high - q_low`` quantile spread per column of ``normal`` (shape ``(n, k)``), NaN ignored.

    Returns two arrays of shape ``(k,)``; the spread is floored (:func:`floor_spread`).
    Raises ValueError unless ``0 <= q_low < q_high <= 1``.
    """
    if not 0.0 <= q_low < q_high <= 1.0:
        raise ValueError(f"need 0 <= q_low < q_high <= 1, got {q_low}, {q_high}")
    normal = np.asarray(normal, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gives NaN, which the floor replaces
        med = np.nanmedian(normal, axis=0)
        spread = np.nanquantile(normal, q_high, axis=0) - np.nanquantile(normal, q_low, axis=0)
    return med, floor_spread(spread, med, zero_spread)


def standard_centre_scale(normal: np.ndarray, *, ddof: int = 0, zero_spread: str = "relative") -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (``ddof``) per column of ``normal`` (shape ``(n, k)``), NaN ignored; spread floored."""
    normal = np.asarray(normal, dtype=float)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(normal, axis=0)
        std = np.nanstd(normal, axis=0, ddof=ddof)
    return mean, floor_spread(std, mean, zero_spread)


def max_abs(scaled: np.ndarray) -> np.ndarray:
    """Column-wise max |value| of ``scaled`` (shape ``(n, k)``) ignoring NaN; NaN where a column has no finite value."""
    a = np.abs(np.asarray(scaled, dtype=float))
    a[~np.isfinite(a)] = np.nan
    out = np.full(a.shape[1], np.nan)
    ok = ~np.isnan(a).all(axis=0)
    out[ok] = np.nanmax(a[:, ok], axis=0)
    return out


def abs_corr(x: np.ndarray, y: np.ndarray) -> float:
    """|Pearson r| of two equally long 1-D series over their jointly finite points.

    0.0 when fewer than 3 such points remain, when either series is constant
    there, or when the result is not finite.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        return 0.0
    a, b = x[ok], y[ok]
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    r = float(np.corrcoef(a, b)[0, 1])
    return abs(r) if np.isfinite(r) else 0.0


def abs_corr_columns(values: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Pearson r| of every column of ``values`` (shape ``(n, k)``, finite) with ``y`` (shape ``(n,)``).

    Vectorised; 0.0 for a constant column (or a constant ``y``).  Returns shape ``(k,)``.
    """
    values = np.asarray(values, dtype=float)
    y = np.asarray(y, dtype=float)
    xc = values - values.mean(axis=0)
    yc = y - y.mean()
    den = np.sqrt((xc * xc).sum(axis=0) * float(yc @ yc))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (xc.T @ yc) / np.where(den > 0, den, 1.0), 0.0)
    return np.abs(r)


def rcaeval_varies(window: np.ndarray) -> np.ndarray:
    """Columns of ``window`` (shape ``(n, k)``) RCAEval 1.8.1's ``drop_constant`` keeps (shape ``(k,)``, bool): any
    value differs from the window's first one, NaN counting as different; an empty window keeps nothing."""
    w = np.asarray(window, dtype=float)
    if w.shape[0] == 0:
        return np.zeros(w.shape[1], dtype=bool)
    first = w[0]
    return ((w != first) | np.isnan(w) | np.isnan(first)).any(axis=0)


def rcaeval_kept(normal: np.ndarray, anomal: np.ndarray) -> np.ndarray:
    """Columns RCAEval 1.8.1 keeps (shape ``(k,)``, bool): not constant in the normal window *and* not constant
    in the anomalous window, each judged on its own.

    RCAEval's ``nsigma`` / ``robust_scaler`` (BARO) run ``preprocess`` — ``drop_constant``
    (:func:`rcaeval_varies`) — on each window separately and keep the columns both windows still have.  A series
    flat before the fault (an error count that was 0) is therefore never scored, however much it moves.
    """
    return rcaeval_varies(normal) & rcaeval_varies(anomal)


def rcaeval_max(scaled: np.ndarray) -> np.ndarray:
    """Column-wise score as RCAEval 1.8.1 takes it: Python's ``max`` over the scaled anomalous window (shape
    ``(n, k)``) — the *signed* maximum (a fall scores low), NaN when the window's first value is NaN (nothing
    compares greater than NaN), later NaN values skipped.  Returns shape ``(k,)``."""
    a = np.asarray(scaled, dtype=float)
    out = np.full(a.shape[1], np.nan)
    if a.shape[0] == 0:
        return out
    ok = np.isfinite(a[0])
    if ok.any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[ok] = np.nanmax(np.where(np.isfinite(a[:, ok]), a[:, ok], np.nan), axis=0)
    return out


def rcaeval_scores(normal: np.ndarray, anomal: np.ndarray, *, robust: bool, per_window: bool = True) -> np.ndarray:
    """RCAEval 1.8.1's N-Sigma (``robust=False``: ``StandardScaler``) or BARO (``robust=True``: ``RobustScaler``,
    quantile range 25–75) score per column (shape ``(k,)``): columns :func:`rcaeval_kept` drops get NaN
    (``per_window=False``: only columns constant over both windows together, as ``mmbaro`` treats log counts);
    a zero spread is 1 (scikit-learn); the score is :func:`rcaeval_max` of the scaled anomalous window.
    (RCAEval, ``RCAEval/e2e/__init__.py``: ``nsigma``, ``robust_scaler``; ``RCAEval/io/time_series.py``.)"""
    normal = np.asarray(normal, dtype=float)
    anomal = np.asarray(anomal, dtype=float)
    if robust:
        centre, spread = robust_centre_scale(normal, zero_spread="unit")
    else:
        centre, spread = standard_centre_scale(normal, zero_spread="unit")
    with np.errstate(all="ignore"):
        out = rcaeval_max((anomal - centre) / spread)
    kept = rcaeval_kept(normal, anomal) if per_window else rcaeval_varies(np.concatenate([normal, anomal]))
    out[~kept] = np.nan
    return out
