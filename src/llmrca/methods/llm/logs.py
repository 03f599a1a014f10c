"""Log lines that reveal a replica's health: OOM kills, restarts, timeouts, power caps.

Patterns are the phrases the real components print (Ray's OOM killer and
actor supervision, the Linux OOM killer, vLLM engine errors, NVIDIA driver
notices); a category is anomalous in a window when its count exceeds what
the normal-window rate predicts by a Poisson margin.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pandas as pd

#: Category -> regular expression (case-insensitive).
PATTERNS: dict[str, str] = {
    "oom": r"out of memory|outofmemory|\boom\b|oom[-_ ]?kill|memoryerror|low on memory|memory limit|exit code 137",
    "restart": r"restart|actor (?:has )?died|actor is dead|worker (?:process )?(?:has )?died|crash|replica .*(?:start|recover)|sigkill",
    "timeout": r"timed? ?out|deadline exceeded|connection (?:reset|refused|closed)|unreachable|broken pipe",
    "gpu": r"power (?:cap|limit|brake)|throttl|clocks? event|xid",
    "error": r"\berror\b|exception|traceback|failed",
}

_COMPILED = {k: re.compile(v, re.IGNORECASE) for k, v in PATTERNS.items()}


def _counts(logs: pd.DataFrame) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    if logs is None or logs.empty:
        return out
    comps = logs["container_name"].astype(str).to_numpy()
    msgs = logs["message"].astype(str).to_numpy()
    for comp, msg in zip(comps, msgs, strict=True):
        for cat, rx in _COMPILED.items():
            if rx.search(msg):
                d = out.setdefault(comp, {})
                d[cat] = d.get(cat, 0) + 1
    return out


@dataclass
class LogBaseline:
    """Normal-window rate of each category per component (lines per second)."""

    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    present: bool = False

    @classmethod
    def fit(cls, logs: pd.DataFrame | None, duration_s: float) -> LogBaseline:
        if logs is None or logs.empty:
            return cls(present=False)
        counts = _counts(logs)
        dur = max(duration_s, 1.0)
        return cls(rates={c: {k: n / dur for k, n in d.items()} for c, d in counts.items()}, present=True)

    def excess(self, logs: pd.DataFrame | None, duration_s: float) -> dict[str, dict[str, float]]:
        """Per component and category: how far the window's count exceeds the normal rate.

        The value is ``(count - expected) / (3·sqrt(expected) + 1)``; 1 means
        a count clearly beyond Poisson noise around the normal rate.
        """
        out: dict[str, dict[str, float]] = {}
        if logs is None or logs.empty:
            return out
        for comp, d in _counts(logs).items():
            for cat, n in d.items():
                exp = self.rates.get(comp, {}).get(cat, 0.0) * max(duration_s, 1.0)
                e = (n - exp) / (3.0 * math.sqrt(exp) + 1.0)
                if e > 0:
                    out.setdefault(comp, {})[cat] = e
        return out
