"""BARO: robust scaling of the anomalous window against the normal window.

L. Pham, H. Ha, H. Zhang, "BARO: Robust Root Cause Analysis for Microservices
via Multivariate Bayesian Online Change Point Detection", FSE 2024.

Each metric is scaled with the median and inter-quartile range of the normal
window (robust to outliers, unlike NSigma's mean / std); its score is the
largest |scaled value| in the anomalous window.  When the injection time is
not known (``detect_change_point=True``), BARO's multivariate Bayesian online
change-point detection (:mod:`llmrca.methods.statistical.bocpd`) finds the
start of the anomaly first and that time splits the windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method, abstain_below, max_finite
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.common.scaling import ZERO_SPREAD_CHOICES, max_abs, rcaeval_scores, robust_centre_scale
from llmrca.methods.common.windows import metric_matrix, split_at
from llmrca.methods.statistical.bocpd import bocpd, most_significant_change, select_dims, standardise
from llmrca.model import Case, Ranking


@dataclass
class BaroConfig(Config):
    #: Find the anomaly start with BOCPD instead of using the case's injection time.
    detect_change_point: bool = False
    #: BOCPD observation model: "diagonal" (independent Student-t) or "full" (multivariate t).
    cpd_model: str = "diagonal"
    #: Expected run length between change points (samples), the hazard is 1 / lambda.
    hazard_lambda: float = 100.0
    #: Metrics kept for change-point detection (the most deviant ones).
    cpd_max_dims: int = 8
    #: Lower / upper quantile of the robust spread (0.25 / 0.75 = IQR, as in BARO).
    q_low: float = 0.25
    q_high: float = 0.75
    #: A zero spread: "relative" (house convention, see llmrca.methods.common.scaling) or
    #: "unit" (scikit-learn's RobustScaler, as RCAEval 1.8.1's BARO).
    zero_spread: str = "relative"
    #: Abstain ("no root cause") when the largest score (a robust / standard z) is below this; None (default): always rank.
    abstain_below: float | None = None
    #: None: the paper's algorithm (above); "rcaeval": RCAEval 1.8.1's ``robust_scaler`` as the paper ran it —
    #: columns constant in the normal or in the anomalous window dropped, scikit-learn's zero spread (1), the
    #: *signed* maximum (rises only) (:func:`llmrca.methods.common.scaling.rcaeval_scores`)
    reference_mode: str | None = None


class Baro(Method):
    """BARO (Pham et al., FSE 2024): median / IQR scaling; optional multivariate BOCPD."""

    name = "baro"
    config_cls = BaroConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if not 0.0 <= cfg.q_low < cfg.q_high <= 1.0:
            raise ValueError(f"baro: need 0 <= q_low < q_high <= 1, got {cfg.q_low}, {cfg.q_high}")
        time, x, cols = metric_matrix(case)
        split = case.inject_time
        explanation: dict[str, object] = {"inject_time_used": split}
        if cfg.detect_change_point:
            split = detect_change_time(time, x, model=cfg.cpd_model, hazard_lambda=cfg.hazard_lambda, max_dims=cfg.cpd_max_dims)
            explanation = {"inject_time_used": split, "detected_change_point": True}
        if cfg.zero_spread not in ZERO_SPREAD_CHOICES:
            raise ValueError(f"baro: zero_spread must be one of {', '.join(ZERO_SPREAD_CHOICES)}, got {cfg.zero_spread!r}")
        normal, anomal = split_at(time, x, split)
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            scores = rcaeval_scores(normal, anomal, robust=True)
            explanation["reference_mode"] = cfg.reference_mode
        else:
            med, spread = robust_centre_scale(normal, q_low=cfg.q_low, q_high=cfg.q_high, zero_spread=cfg.zero_spread)
            with np.errstate(all="ignore"):
                scores = max_abs((anomal - med) / spread)
        ranking = Ranking.from_metric_scores(dict(zip(cols, scores, strict=True)), candidates=case.components, explanation=explanation)
        return abstain_below(ranking, max_finite(scores), cfg.abstain_below)


class ChangePointNotFound(RuntimeError):
    """BOCPD found no change point in the series."""


def detect_change_time(time: np.ndarray, x: np.ndarray, *, model: str = "diagonal", hazard_lambda: float = 100.0, max_dims: int = 8) -> float:
    """The time at which the most significant change of the multivariate series starts."""
    z = standardise(x)
    keep = z.std(axis=0) > 1e-9
    if not keep.any():
        raise MethodUnavailable("change-point detection: every metric is constant")
    z = z[:, keep]
    z = select_dims(z, max_dims)
    res = bocpd(z, model=model, hazard_lambda=hazard_lambda)
    start = most_significant_change(z, res.change_points)
    if start is None:
        raise ChangePointNotFound("change-point detection found no change in the metrics; set detect_change_point=false to use the injection time")
    return float(time[start])
