"""An alert rule over one service-level signal, as a Prometheus alert with ``for:``.

The rule learns the signal's healthy level from a normal window (median and
MAD, robust to the odd spike) and fires when the signal stays above
``median + k · 1.4826·MAD`` *and* ``(1 + rel) · median`` for ``for_samples``
consecutive scrapes.  The onset it reports is the first sample of that run,
which the localizer then uses as the start of the anomalous window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ThresholdAlert:
    k: float = 4.0
    rel: float = 0.03
    for_samples: int = 3
    median: float = field(default=float("nan"), init=False)
    threshold: float = field(default=float("nan"), init=False)
    _run: list[float] = field(default_factory=list, init=False)

    def fit(self, values: np.ndarray) -> ThresholdAlert:
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size < 5:
            raise ValueError(f"the alert rule needs at least 5 finite samples of the normal window, got {v.size}")
        self.median = float(np.median(v))
        mad = float(np.median(np.abs(v - self.median))) * 1.4826
        self.threshold = max(self.median + self.k * mad, self.median * (1.0 + self.rel))
        self._run = []
        return self

    def update(self, t: float, value: float) -> float | None:
        """Feed one sample; returns the onset time when the alert fires, else None."""
        if not np.isfinite(self.threshold):
            raise RuntimeError("call fit() on a normal window before update()")
        if np.isfinite(value) and value > self.threshold:
            self._run.append(t)
            if len(self._run) >= self.for_samples:
                return self._run[0]
        elif np.isfinite(value):
            self._run = []
        return None
