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
from llmrca.methods.base import Method, Tags
from llmrca.methods.statistical._windows import floor_scale, max_abs, metric_matrix, split_at
from llmrca.model import Case, Ranking


@dataclass
class NSigmaConfig(Config):
    #: Use at most this many seconds of data before the injection (0 = all).
    normal_window_s: float = 0.0
    #: Use at most this many seconds from the injection on (0 = all).
    anomal_window_s: float = 0.0


class NSigma(Method):
    """N-sigma rule (Pham et al., ASE 2024): score = max |z| of the anomalous window."""

    name = "nsigma"
    config_cls = NSigmaConfig
    tags = Tags(family="statistical")
    paper = "Pham, Ha, Zhang. Root Cause Analysis for Microservices based on Causal Inference: How Far Are We? ASE 2024"

    def _rank(self, case: Case) -> Ranking:
        time, x, cols = metric_matrix(case)
        time, x = clip_windows(time, x, case.inject_time, self.config.normal_window_s, self.config.anomal_window_s)
        normal, anomal = split_at(time, x, case.inject_time)
        with np.errstate(all="ignore"):
            mean = np.nanmean(normal, axis=0)
            std = floor_scale(np.nanstd(normal, axis=0), mean)
        scores = max_abs((anomal - mean) / std)
        return Ranking.from_metric_scores(dict(zip(cols, scores, strict=True)), candidates=case.components)


def clip_windows(time: np.ndarray, x: np.ndarray, at: float, before_s: float, after_s: float) -> tuple[np.ndarray, np.ndarray]:
    keep = np.ones(len(time), dtype=bool)
    if before_s > 0:
        keep &= time >= at - before_s
    if after_s > 0:
        keep &= time < at + after_s
    return time[keep], x[keep]
