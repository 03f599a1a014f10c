"""NSigma: rank metrics by how many normal-window standard deviations they move.

The N-sigma baseline as used in RCAEval: L. Pham, H. Ha, H. Zhang, "Root Cause
Analysis for Microservices based on Causal Inference: How Far Are We?", ASE 2024
(and RCAEval, WWW 2025 companion).  Every metric is z-scored against the mean
and standard deviation of the normal window (before the injection time); a
metric's score is the largest |z| in the anomalous window; a component ranks
by its best metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrca.config import Config
from llmrca.methods.base import Method, abstain_below, max_finite
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.common.scaling import max_abs, rcaeval_scores, standard_centre_scale
from llmrca.methods.common.windows import clip_mask, metric_matrix, split_at
from llmrca.model import Case, Ranking


@dataclass
class NSigmaConfig(Config):
    #: Use at most this many seconds of data before the injection (None = all).
    normal_window_s: float | None = None
    #: Use at most this many seconds from the injection on (None = all).
    anomalous_window_s: float | None = None
    #: Abstain ("no root cause") when the largest score (a robust / standard z) is below this; None (default): always rank.
    abstain_below: float | None = None
    #: None: the paper's rule (max |z|); "rcaeval": RCAEval 1.8.1's ``nsigma`` as the paper ran it — columns
    #: constant in the normal or in the anomalous window dropped, scikit-learn's zero spread (1), the *signed*
    #: maximum (rises only) (:func:`llmrca.methods.common.scaling.rcaeval_scores`)
    reference_mode: str | None = None


class NSigma(Method):
    """N-sigma rule (Pham et al., ASE 2024): score = max |z| of the anomalous window."""

    name = "nsigma"
    config_cls = NSigmaConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        time, x, cols = metric_matrix(case)
        keep = clip_mask(time, case.inject_time, cfg.normal_window_s, cfg.anomalous_window_s)
        normal, anomal = split_at(time[keep], x[keep], case.inject_time)
        expl: dict[str, object] = {}
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            scores = rcaeval_scores(normal, anomal, robust=False)
            expl["reference_mode"] = cfg.reference_mode
        else:
            mean, std = standard_centre_scale(normal)
            with np.errstate(all="ignore"):
                scores = max_abs((anomal - mean) / std)
        ranking = Ranking.from_metric_scores(dict(zip(cols, scores, strict=True)), candidates=case.components, explanation=expl or None)
        return abstain_below(ranking, max_finite(scores), cfg.abstain_below)
