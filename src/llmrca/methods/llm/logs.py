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

import numpy as np
import pandas as pd

#: Category -> regular expression (case-insensitive).
PATTERNS: dict[str, str] = {
    "oom": r"out of memory|outofmemory|\boom\b|oom[-_ ]?kill|memoryerror|low on memory|memory limit|exit code 137",
    "restart": r"restart|actor (?:has )?died|actor is dead|worker (?:process )?(?:has )?died|crash|replica .*(?:start|recover)|sigkill",
    "timeout": r"timed? ?out|deadline exceeded|connection (?:reset|refused|closed)|unreachable|broken pipe",
    "gpu": r"power (?:cap|limit|brake)|throttl|clocks? event|xid",
    "error": r"\berror\b|exception|traceback|failed",
    # serving faults beyond the paper's (NVIDIA driver Xid reports, vLLM's engine death and preemption warnings,
    # a model loaded from cold storage)
    "xid": r"\bxid\b|fallen off the bus|double bit error|enginedeaderror",
    "kv": r"not enough kv cache space|preemptionmode",
    "slow-load": r"taken more than \d+s to initiali[sz]e|weights not in the local cache",
}

_ANY = "|".join(f"(?:{rx})" for rx in PATTERNS.values())


def _counts(logs: pd.DataFrame, components: list[str] | None = None) -> dict[str, dict[str, int]]:
    """Count matching lines per (subject component, category).

    The subject is the component a line is *about*: a line that names another
    component (the Ray head's proxy reporting "replica on ray-worker-3 died")
    counts for the named one, not for the container that printed it.
    Matching runs vectorised (Arrow's RE2) so thousands of lines cost
    milliseconds.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, dict[str, int]] = {}
    if logs is None or logs.empty:
        return out
    col = logs["message"]
    try:
        msgs = pa.array(col, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        msgs = pa.array(col.astype(str).to_numpy(), type=pa.string())
    # One pass with every pattern, then each category only on the (few) lines that matched.
    pre = np.asarray(pc.match_substring_regex(msgs, _ANY, ignore_case=True).fill_null(False))
    if not pre.any():
        return out
    hit_idx = np.nonzero(pre)[0]
    cont = logs["container_name"].to_numpy()[hit_idx].astype(str)
    sub = msgs.take(pa.array(hit_idx))
    masks = {cat: np.asarray(pc.match_substring_regex(sub, rx, ignore_case=True).fill_null(False)) for cat, rx in PATTERNS.items()}
    subject = cont.astype(object)
    if components:
        # One pass: the first component name standing alone in the line (longest names first
        # in the alternation, so ray-worker-10 wins over ray-worker-1).
        names = "|".join(re.escape(n) for n in sorted(components, key=len, reverse=True))
        rx = r"(?:^|[^\w-])(?P<c>" + names + r")(?:$|[^\w-])"
        found = pc.extract_regex(sub, rx).field("c").to_numpy(zero_copy_only=False)
        named = np.array([isinstance(x, str) and x != "" for x in found], dtype=bool)
        subject[named] = found[named]
    for cat, m in masks.items():
        sel = m
        if not sel.any():
            continue
        comps, n = np.unique(subject[sel].astype(str), return_counts=True)
        for comp, k in zip(comps, n, strict=True):
            out.setdefault(str(comp), {})[cat] = int(k)
    return out


@dataclass
class LogBaseline:
    """Normal-window rate of each category per component (lines per second)."""

    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    present: bool = False
    components: list[str] = field(default_factory=list)

    @classmethod
    def fit(cls, logs: pd.DataFrame | None, duration_s: float, components: list[str] | None = None) -> LogBaseline:
        comps = list(components or [])
        if logs is None or logs.empty:
            return cls(present=False, components=comps)
        counts = _counts(logs, comps)
        dur = max(duration_s, 1.0)
        return cls(rates={c: {k: n / dur for k, n in d.items()} for c, d in counts.items()}, present=True, components=comps)

    def counts(self, logs: pd.DataFrame | None, duration_s: float) -> dict[str, dict[str, tuple[int, float]]]:
        """Per component and category: (matching lines in the window, lines expected at the normal rate)."""
        out: dict[str, dict[str, tuple[int, float]]] = {}
        window = _counts(logs, self.components) if logs is not None and not logs.empty else {}
        for comp in set(window) | set(self.rates):
            for cat in PATTERNS:
                n = window.get(comp, {}).get(cat, 0)
                exp = self.rates.get(comp, {}).get(cat, 0.0) * max(duration_s, 1.0)
                out.setdefault(comp, {})[cat] = (int(n), float(exp))
        return out

    def excess(self, logs: pd.DataFrame | None, duration_s: float) -> dict[str, dict[str, float]]:
        """Per component and category: how far the window's count exceeds the normal rate.

        The value is ``(count - expected) / (3·sqrt(expected) + 1)``; 1 means
        a count clearly beyond Poisson noise around the normal rate.
        """
        out: dict[str, dict[str, float]] = {}
        if logs is None or logs.empty:
            return out
        for comp, d in _counts(logs, self.components).items():
            for cat, n in d.items():
                exp = self.rates.get(comp, {}).get(cat, 0.0) * max(duration_s, 1.0)
                e = (n - exp) / (3.0 * math.sqrt(exp) + 1.0)
                if e > 0:
                    out.setdefault(comp, {})[cat] = e
        return out
