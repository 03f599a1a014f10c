"""Bayesian online change-point detection (Adams & MacKay, 2007) for multivariate series.

R. P. Adams, D. J. C. MacKay, "Bayesian Online Changepoint Detection",
arXiv:0710.3742, 2007 — the detector BARO (Pham et al., FSE 2024) runs on
multivariate metrics to find when an anomaly starts.  Two conjugate models:

* ``"diagonal"``: independent Normal-Inverse-Gamma per dimension; the
  predictive is a product of univariate Student-t densities.
* ``"full"``: Normal-Inverse-Wishart over the whole vector; the predictive
  is a multivariate Student-t (captures correlated shifts).

Run lengths are tracked for every time step (O(T² · D) for the diagonal
model, O(T² · D³) for the full one; T is a few hundred here).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln, logsumexp


@dataclass(frozen=True)
class BocpdResult:
    run_length_map: np.ndarray  # MAP run length after each observation
    log_r: np.ndarray | None  # full run-length log posterior [T+1, T+1] (when kept)
    change_points: list[int]  # segment starts of the MAP segmentation (indices, > 0)


def _student_t_logpdf(x: np.ndarray, df: np.ndarray, loc: np.ndarray, scale2: np.ndarray) -> np.ndarray:
    z2 = (x - loc) ** 2 / scale2
    return gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * np.log(np.pi * df * scale2) - (df + 1) / 2 * np.log1p(z2 / df)


def _diagonal_predictive(x: np.ndarray, mu: np.ndarray, kappa: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    # mu, beta: [R, D]; kappa, alpha: [R]
    df = (2 * alpha)[:, None]
    scale2 = beta * ((kappa + 1) / (alpha * kappa))[:, None]
    return _student_t_logpdf(x[None, :], df, mu, scale2).sum(axis=1)


def _mvt_logpdf(x: np.ndarray, mu: np.ndarray, kappa: np.ndarray, nu: np.ndarray, psi: np.ndarray) -> np.ndarray:
    d = x.shape[0]
    df = nu - d + 1
    shape = psi * ((kappa + 1) / (kappa * df))[:, None, None]
    diff = x[None, :] - mu
    chol = np.linalg.cholesky(shape)
    sol = np.linalg.solve(chol, diff[:, :, None])[:, :, 0]
    maha = (sol**2).sum(axis=1)
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    return gammaln((df + d) / 2) - gammaln(df / 2) - d / 2 * np.log(df * np.pi) - 0.5 * logdet - (df + d) / 2 * np.log1p(maha / df)


def bocpd(data: np.ndarray, *, model: str = "diagonal", hazard_lambda: float = 100.0, keep_posterior: bool = False) -> BocpdResult:
    """Run BOCPD over ``data`` [T, D] (standardise it first; priors assume unit scale)."""
    x = np.asarray(data, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    t_len, d = x.shape
    if model not in {"diagonal", "full"}:
        raise ValueError(f"unknown BOCPD model {model!r}; use 'diagonal' or 'full'")
    log_h = -np.log(hazard_lambda)
    log_1mh = np.log1p(-1.0 / hazard_lambda)
    log_r = np.array([0.0])  # log P(r_0 = 0) = 1
    # prior hyper-parameters (weakly informative, data standardised to unit scale)
    mu0 = np.zeros(d)
    kappa0, alpha0, beta0 = 1.0, 1.0, 1.0
    nu0 = d + 2.0
    mu = mu0[None, :].copy()
    kappa = np.array([kappa0])
    alpha = np.array([alpha0])
    beta = np.full((1, d), beta0)
    nu = np.array([nu0])
    psi = np.eye(d)[None, :, :].copy()
    rl_map = np.zeros(t_len, dtype=int)
    full = np.full((t_len + 1, t_len + 1), -np.inf) if keep_posterior else None
    if full is not None:
        full[0, 0] = 0.0
    for t in range(t_len):
        xt = x[t]
        ok = np.isfinite(xt)
        xt = np.where(ok, xt, 0.0)  # missing values: neutral (zero after standardising)
        if model == "diagonal":
            log_pred = _diagonal_predictive(xt, mu, kappa, alpha, beta)
        else:
            log_pred = _mvt_logpdf(xt, mu, kappa, nu, psi)
        growth = log_r + log_pred + log_1mh
        cp = logsumexp(log_r + log_pred + log_h)
        log_r = np.concatenate([[cp], growth])
        log_r -= logsumexp(log_r)
        rl_map[t] = int(np.argmax(log_r))
        if full is not None:
            full[t + 1, : len(log_r)] = log_r
        # update sufficient statistics: new run (prior) + every grown run
        diff = xt[None, :] - mu
        new_mu = (kappa[:, None] * mu + xt[None, :]) / (kappa + 1)[:, None]
        if model == "diagonal":
            beta = np.vstack([np.full((1, d), beta0), beta + (kappa / (kappa + 1))[:, None] * diff**2 / 2])
            alpha = np.concatenate([[alpha0], alpha + 0.5])
        else:
            outer = diff[:, :, None] * diff[:, None, :]
            psi = np.concatenate([np.eye(d)[None], psi + (kappa / (kappa + 1))[:, None, None] * outer])
            nu = np.concatenate([[nu0], nu + 1])
        mu = np.vstack([mu0[None, :], new_mu])
        kappa = np.concatenate([[kappa0], kappa + 1])
    return BocpdResult(run_length_map=rl_map, log_r=full, change_points=_segment_starts(rl_map))


def _segment_starts(rl_map: np.ndarray) -> list[int]:
    """Backtrack the MAP run lengths into segment starts (change points), ascending."""
    starts: list[int] = []
    t = len(rl_map) - 1
    while t >= 0:
        start = t - int(rl_map[t]) + 1
        start = min(max(start, 0), t)
        if start > 0:
            starts.append(start)
        t = start - 1
    return sorted(set(starts))


def standardise(x: np.ndarray) -> np.ndarray:
    """Robust per-column standardisation over the whole series (median / IQR, clipped)."""
    with np.errstate(all="ignore"):
        med = np.nanmedian(x, axis=0)
        iqr = np.nanpercentile(x, 75, axis=0) - np.nanpercentile(x, 25, axis=0)
        std = np.nanstd(x, axis=0)
    scale = np.where(iqr > 1e-12, iqr / 1.349, np.where(std > 1e-12, std, 1.0))
    z = (x - med) / scale
    return np.clip(np.nan_to_num(z, nan=0.0, posinf=50.0, neginf=-50.0), -50.0, 50.0)


def select_dims(z: np.ndarray, max_dims: int) -> np.ndarray:
    """Keep the ``max_dims`` columns that stray furthest from their robust centre.

    With many quiet dimensions the new-run prior pays a price in every one of
    them and a change in one metric is drowned out; keeping the most deviant
    metrics keeps the detector sensitive (and the full model well conditioned).
    """
    if z.shape[1] <= max_dims:
        return z
    reach = np.abs(z).max(axis=0)
    keep = np.argsort(-reach, kind="stable")[:max_dims]
    return z[:, np.sort(keep)]


def most_significant_change(z: np.ndarray, starts: list[int], *, min_segment: int = 3) -> int | None:
    """Among segment starts, the one with the largest mean shift between its neighbouring segments."""
    bounds = [0, *[s for s in starts if min_segment <= s <= len(z) - 1], len(z)]
    best, best_gap = None, -1.0
    for i in range(1, len(bounds) - 1):
        left, right = z[bounds[i - 1] : bounds[i]], z[bounds[i] : bounds[i + 1]]
        if len(left) == 0 or len(right) == 0:
            continue
        gap = float(np.linalg.norm(right.mean(axis=0) - left.mean(axis=0)))
        if gap > best_gap:
            best, best_gap = bounds[i], gap
    return best
