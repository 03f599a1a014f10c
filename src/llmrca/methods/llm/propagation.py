"""Upstream propagation of latency along the call graph.

A caller's request latency contains the latency of the callee that served
the request, and a quantile of a mixture of request streams cannot rise by
more than the largest rise among its parts.  So the part of a caller's
latency rise that its slowest callee (or its own engine) explains is no
evidence against the caller; only the residual is.  This is what keeps the
gateway and the Ray head from being blamed for a slow worker — the paper's
main misattribution pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrca.methods.llm import signals as S
from llmrca.methods.llm.evidence import Evidence


@dataclass
class LatencyResidual:
    component: str
    delta_s: dict[str, float]  # raw rise of each mesh latency quantile (s)
    explained_s: dict[str, float]  # part explained by callees / own engine (s)
    residual: float  # strength (threshold multiples) of the unexplained rise
    explained_by: str | None  # the callee that explains most of the rise
    engine_explained: bool  # the component's own engine latency explains it


def residuals(ev: Evidence, components: list[str], callees: dict[str, list[str]]) -> dict[str, LatencyResidual]:
    """Unexplained mesh-latency rise per component."""
    raw: dict[str, dict[str, float]] = {}
    for c in components:
        raw[c] = {sig: ev.delta(c, sig, "q75") for sig in (S.LAT50, S.LAT90)}
    out: dict[str, LatencyResidual] = {}
    pre: dict[str, dict[str, float]] = {}
    for c in components:
        eng = ev.delta(c, S.E2E90, "q75")
        eng = max(eng, 0.0) if np.isfinite(eng) else 0.0
        explained: dict[str, float] = {}
        best_callee, best_val = None, 0.0
        for sig in (S.LAT50, S.LAT90):
            m = eng
            for d in callees.get(c, []):
                v = raw.get(d, {}).get(sig, float("nan"))
                if np.isfinite(v) and v > m:
                    m = v
                if np.isfinite(v) and v > best_val:
                    best_callee, best_val = d, v
            explained[sig] = m
        pre[c] = {sig: raw[c][sig] - explained[sig] for sig in (S.LAT50, S.LAT90)}
        out[c] = LatencyResidual(c, raw[c], explained, 0.0, best_callee, eng > 0)
    # Load redistribution raises every replica's residual alike: remove the replicas' common mode.
    common = {}
    for sig in (S.LAT50, S.LAT90):
        vals = [pre[r][sig] / ev.level(i) for r in ev.replicas if (i := ev.col(r, sig)) is not None and np.isfinite(pre[r][sig])]
        common[sig] = float(np.median(vals)) if len(vals) >= 2 else 0.0
    for c in components:
        best = 0.0
        for sig in (S.LAT50, S.LAT90):
            i = ev.col(c, sig)
            if i is None or not np.isfinite(pre[c][sig]):
                continue
            adj = pre[c][sig] - (max(common[sig], 0.0) * ev.level(i) if c in ev.replicas and not callees.get(c) else 0.0)
            best = max(best, adj / ev.nm.scale[i] / ev.z)
        out[c].residual = float(np.clip(best, 0.0, ev.cap))
    return out
