"""A template RCA method: copy this file to add a method (docs/add-a-method.md shows it).

MedianShift scores every metric by how far its median moves at the injection,
in units of the normal window's inter-quartile range, and ranks components by
their best metric.  It uses the shared window split and scaler
(:mod:`llmrca.methods.common.windows`, :mod:`llmrca.methods.common.scaling`),
so it follows the house conventions for windows and zero spreads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from llmrca.config import Config
from llmrca.methods.base import Method
from llmrca.methods.common.scaling import robust_centre_scale
from llmrca.methods.common.windows import clip_mask, metric_matrix, split_at
from llmrca.methods.registry import Entry
from llmrca.model import Case, Ranking


@dataclass
class MedianShiftConfig(Config):
    #: Seconds of data before the injection to use (None = all).
    normal_window_s: float | None = None
    #: Seconds of data from the injection on to use (None = all).
    anomalous_window_s: float | None = None
    #: Score |shift| (True) or upward shifts only (False).
    absolute: bool = True


class MedianShift(Method):
    """Median shift of each metric at the injection, in normal-window IQRs."""

    name = "median-shift"
    config_cls = MedianShiftConfig

    @classmethod
    def test_configs(cls) -> list[dict[str, Any]]:
        return [{}, {"normal_window_s": 120.0, "absolute": False}]

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        time, x, cols = metric_matrix(case)
        keep = clip_mask(time, case.inject_time, cfg.normal_window_s, cfg.anomalous_window_s)
        normal, anomal = split_at(time[keep], x[keep], case.inject_time)
        centre, spread = robust_centre_scale(normal)
        with np.errstate(all="ignore"):
            shift = (np.nanmedian(anomal, axis=0) - centre) / spread
        scores = np.abs(shift) if cfg.absolute else shift
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        return Ranking.from_metric_scores(dict(zip(cols, scores.tolist(), strict=True)), candidates=case.components)


#: The method's registry row: all its metadata in one place.
ENTRY = Entry(
    "median-shift",
    f"{__name__}:MedianShift",
    "statistical",
    display="MedianShift",
    citation="template method of docs/add-a-method.md (median shift in IQR units, after BARO, Pham et al., FSE 2024)",
    needs=("metrics",),
)
