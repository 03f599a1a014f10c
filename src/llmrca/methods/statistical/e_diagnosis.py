"""ε-Diagnosis: a two-sample test of the normal against the anomalous window, per metric.

Shan, Chen, Liu, Zhang, Xiao, He, Li, Ding.  "ε-Diagnosis: Unsupervised and
Real-time Diagnosis of Small-window Long-tail Latency in Large-scale
Microservice Platforms."  WWW 2019.

The paper takes, for every metric, a sample from before the latency anomaly
and one from during it, and runs a two-sample null-hypothesis test with
ε-statistics (energy statistics, Székely & Rizzo): metrics whose two samples
do not come from the same distribution (p < α) are root-cause candidates,
ranked by how different they are.  We implement exactly that:

* each metric is standardised by the normal window (median and IQR-sigma,
  falling back to the pooled standard deviation when the normal window is
  flat) so statistics of metrics in different units can be ranked together;
* the statistic is the two-sample energy statistic
  ``E = nm/(n+m) · (2·E|X−Y| − E|X−X'| − E|Y−Y'|)``; its p-value comes
  from a seeded permutation test (``n_permutations`` relabellings);
* candidates (p < ``alpha``) come first, by statistic, then the remaining
  metrics by statistic (listed in the explanation as not significant).

``reference_mode="pyrca"`` reproduces sfr-pyrca 1.0.1's ``EpsilonDiagnosis``
as RCAEval 1.8.1 calls it: both windows cut to the same length (last rows of
the normal window, first rows of the anomalous one), constant columns
dropped, a bootstrap threshold per column from squared correlations between
*different* metrics of the normal window, and a metric selected when the
squared Pearson correlation between its normal and anomalous windows
*exceeds* that threshold, ranked by that correlation, highest first.  That
comparison is the one PyRCA PR #68 reports as reversed: a metric whose level
jumps while its noise stays independent has a near-zero correlation and is
not selected.  It is offered to reproduce the reference's numbers, not as a
recommendation; unselected metrics follow the selected ones (score -inf).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import ClassVar

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.windows import split_frame
from llmrca.model import Case, Ranking


@dataclass
class EDiagnosisConfig(Config):
    legacy_reference: ClassVar[str | None] = "pyrca"
    alpha: float = 0.05  # significance level of the two-sample test
    n_permutations: int = 199  # permutations for the p-value (paper mode)
    seed: int = 0
    reference_mode: str | None = None  # None: the paper's algorithm; "pyrca": the reference port
    bootstrap_time: int = 200  # pyrca mode only: bootstrap replicates for the threshold
    pyrca_alpha: float = 0.01  # pyrca mode only: RCAEval's default E_ALPHA


def _is_significant(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """Reject 'same distribution' when p < alpha (the candidates)."""
    return pvalues < alpha


def energy_statistic(pooled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Two-sample energy statistics for one pooled 1-D sample under many labellings.

    ``labels`` is (P, N) boolean, True for the first sample.  Returns (P,).
    In one dimension every pairwise sum follows from the sorted sample in
    O(P·N): with ``x`` the first sample's indicator, ``Σ_ij x_i x_j |z_i - z_j|``
    is twice ``Σ_j x_j (z_j · #{i<j: x_i} - Σ_{i<j} x_i z_i)``; the other sums
    follow from it, the row sums ``r = Σ_j |z_i - z_j|`` and the total.
    """
    order = np.argsort(pooled, kind="stable")
    z = pooled[order]
    x = labels[:, order].astype(float)
    n_all = z.size
    csum = np.cumsum(z)
    # r_i = Σ_j |z_i - z_j| for sorted z
    idx = np.arange(n_all)
    r = z * idx - (csum - z) + (csum[-1] - csum) - z * (n_all - 1 - idx)
    total = r.sum()
    before = np.cumsum(x, axis=1) - x
    zsum_before = np.cumsum(x * z, axis=1) - x * z
    sxx = 2.0 * np.sum(x * (z * before - zsum_before), axis=1)
    xr = x @ r
    sxy = xr - sxx
    syy = total - 2.0 * xr + sxx
    n = x.sum(axis=1)
    m = n_all - n
    e = 2.0 * sxy / (n * m) - sxx / (n * n) - syy / (m * m)
    return (n * m / (n + m)) * e


def _standardise(normal: np.ndarray, anomal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    center = np.median(normal)
    q1, q3 = np.percentile(normal, [25, 75])
    scale = (q3 - q1) / 1.349
    if not scale > 0:
        scale = float(np.std(np.concatenate([normal, anomal])))
    if not scale > 0:
        scale = 1.0
    return (normal - center) / scale, (anomal - center) / scale


class EDiagnosis(Method):
    """ε-Diagnosis (Shan et al., WWW 2019): energy two-sample test per metric; see the module doc."""

    name = "e-diagnosis"
    config_cls = EDiagnosisConfig

    def _windows(self, case: Case) -> tuple[pd.DataFrame, pd.DataFrame]:
        m = case.metrics
        cols = [c for c in m.columns if c != "time"]
        before, after = split_frame(m, case.inject_time)
        normal = before[cols].astype(float)
        anomal = after[cols].astype(float)
        if len(normal) < 2 or len(anomal) < 2:
            raise MethodUnavailable(
                f"e-diagnosis needs at least 2 rows before and after the injection time (has {len(normal)} and {len(anomal)})"
            )
        return normal, anomal

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if cfg.reference_mode is None:
            return self._rank_paper(case)
        if cfg.reference_mode == "pyrca":
            return self._rank_pyrca(case)
        raise ValueError(f"e-diagnosis: unknown reference_mode {cfg.reference_mode!r}; use null (the paper) or 'pyrca'")

    # -- the paper ---------------------------------------------------------------
    def _rank_paper(self, case: Case) -> Ranking:
        cfg = self.config
        normal, anomal = self._windows(case)
        rng = np.random.default_rng(cfg.seed)
        n, k = len(normal), len(anomal)
        base = np.zeros(n + k, dtype=bool)
        base[:n] = True
        perms = np.stack([rng.permutation(base) for _ in range(cfg.n_permutations)]) if cfg.n_permutations > 0 else np.empty((0, n + k), bool)
        labels = np.vstack([base[None, :], perms])
        stats: dict[str, float] = {}
        pvals: dict[str, float] = {}
        for col in normal.columns:
            a = normal[col].to_numpy()
            b = anomal[col].to_numpy()
            ok_a, ok_b = np.isfinite(a), np.isfinite(b)
            a, b = a[ok_a], b[ok_b]
            if len(a) < 2 or len(b) < 2:
                stats[col], pvals[col] = float("nan"), 1.0
                continue
            za, zb = _standardise(a, b)
            pooled = np.concatenate([za, zb])
            if ok_a.all() and ok_b.all():
                e = energy_statistic(pooled, labels)
            else:  # missing values: relabel this column's own pooled sample
                lb = np.zeros(len(pooled), dtype=bool)
                lb[: len(za)] = True
                sub = np.vstack([lb[None, :], np.stack([rng.permutation(lb) for _ in range(cfg.n_permutations)])]) if cfg.n_permutations else lb[None, :]
                e = energy_statistic(pooled, sub)
            stats[col] = float(e[0])
            pvals[col] = float((1 + np.sum(e[1:] >= e[0] - 1e-12)) / (1 + len(e) - 1))
        names = list(stats)
        p = np.array([pvals[c] for c in names])
        sig = _is_significant(p, cfg.alpha)
        # candidates first: shift their scores above every non-candidate's
        s = np.array([stats[c] if np.isfinite(stats[c]) else -np.inf for c in names])
        finite = s[np.isfinite(s)]
        offset = (finite.max() - finite.min() + 1.0) if finite.size else 0.0
        scores = {c: (s[i] + offset if sig[i] else s[i]) for i, c in enumerate(names)}
        expl = {
            "mode": "paper",
            "test": f"energy two-sample test, {cfg.n_permutations} permutations, alpha={cfg.alpha}",
            "candidates": [c for i, c in enumerate(names) if sig[i]],
            "statistic": {c: stats[c] for c in names},
            "p_value": {c: pvals[c] for c in names},
            "note": "candidate scores are statistic + offset so that every candidate ranks above every non-candidate",
        }
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)

    # -- the reference (sfr-pyrca 1.0.1 via RCAEval 1.8.1) -------------------------
    def _rank_pyrca(self, case: Case) -> Ranking:
        cfg = self.config
        normal, anomal = self._windows(case)
        keep = [c for c in normal.columns if normal[c].nunique() > 1 and anomal[c].nunique() > 1]
        normal, anomal = normal[keep], anomal[keep]
        length = min(len(normal), len(anomal))
        nv = normal.tail(length).to_numpy()
        av = anomal.head(length).to_numpy()
        d = nv.shape[1]
        if d < 2:
            raise ValueError("e-diagnosis (pyrca mode) needs at least two non-constant metrics for its bootstrap threshold")
        if d > cfg.bootstrap_time:
            raise ValueError(
                f"e-diagnosis (pyrca mode): {d} metrics but bootstrap_time={cfg.bootstrap_time}; "
                "PyRCA 1.0.1 assigns one bootstrap replicate per metric and fails here — raise bootstrap_time"
            )
        rng = np.random.default_rng(cfg.seed)
        pairs = list(combinations(range(d), 2))
        iu = np.array(pairs).T
        thresholds = np.empty(cfg.bootstrap_time)
        for b in range(cfg.bootstrap_time):
            sample = np.stack([rng.choice(nv[:, j], size=length) for j in range(d)], axis=1)
            cov = np.cov(sample.T)
            var = np.diag(cov)
            denom = var[iu[0]] * var[iu[1]]
            r2 = np.where(denom == 0, 0.0, np.square(cov[iu[0], iu[1]]) / np.where(denom == 0, 1.0, denom))
            thresholds[b] = np.quantile(r2, 1 - cfg.pyrca_alpha)
        scores: dict[str, float] = {}
        corr: dict[str, float] = {}
        for j, col in enumerate(keep):
            a, b_ = nv[:, j], av[:, j]
            va, vb = np.var(a), np.var(b_)
            r2 = 0.0 if va == 0 or vb == 0 else float(np.square(np.cov(a, b_)[0, 1]) / (va * vb))
            corr[col] = r2
            scores[col] = r2 if r2 > thresholds[j] else float("-inf")
        expl = {
            "mode": "pyrca",
            "selected": [c for c in keep if np.isfinite(scores[c])],
            "squared_correlation": corr,
            "threshold": {c: float(thresholds[j]) for j, c in enumerate(keep)},
            "dropped_constant": [c for c in case.metrics.columns if c != "time" and c not in keep],
        }
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)
