"""Upstream propagation of latency along the call graph.

A caller's request latency contains the latency of the callee that served
the request, and a quantile of a mixture of request streams cannot rise by
more than the largest rise among its parts (nor can a mean).  So the part of
a caller's latency rise that its slowest callee (or its own engine) explains
is no evidence against the caller; only the residual is.  This is what keeps
the gateway and the Ray head from being blamed for a slow worker — the
paper's main misattribution pattern.

Where a component has its mean mesh latency (histogram ``_sum`` / ``_count``)
the residual is read from the mean alone: the p50 / p90 of the same histogram
are interpolated inside a bucket (Prometheus ``histogram_quantile``), so with
wide buckets they can stay put under a rise the mean shows, or jump when a
request stream crosses a bucket bound, while the mean is exact
(:func:`latency_signals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmrca.methods.llm import signals as S
from llmrca.methods.llm.evidence import Evidence


@dataclass
class LatencyResidual:
    component: str
    delta_s: dict[str, float]  # raw rise of each mesh latency statistic read (s)
    explained_s: dict[str, float]  # part explained by callees / own engine (s)
    residual: float  # strength (threshold multiples) of the unexplained rise
    explained_by: str | None  # the callee that explains most of the rise
    engine_explained: bool  # the component's own engine latency explains it
    signal: str = S.LAT90  # the latency statistic that carries the residual


def latency_signals(ev: Evidence, component: str) -> tuple[str, ...]:
    """The mesh latency statistics read for ``component``: its mean when it has one, else p50 and p90."""
    if ev.col(component, S.LAT_MEAN) is not None:
        return (S.LAT_MEAN,)
    return (S.LAT50, S.LAT90)


#: A replica's mesh latency decomposes into its engine's latency plus the network when subtracting the engine's
#: latency removes at least half of the mesh latency's healthy spread (1.4826 MAD).  Simulated (seeds 1-5, profile
#: quick, 8 healthy cases each): 0.00 for every worker with one ingress proxy, 0.55-3.0 with a proxy on every pod.
DECOMPOSES_BELOW = 0.5


def carries_own_requests(ev: Evidence, component: str) -> bool:
    """Whether ``component``'s mesh latency is of the requests its own engine serves (True when it cannot be told).

    Behind one ingress proxy the mesh edge into a replica's pod carries exactly the requests that replica
    serves, so the mesh latency is the engine's plus the network's and their difference (the network share)
    barely moves in a healthy window.  With a Serve proxy on every pod (the paper's Fig. 4: the gateway
    picks any pod, whose proxy hands the request to any replica over Ray's actor calls, which bypass the
    mesh, §5.5) the edge into a pod carries the requests that *entered* there, wherever they were served:
    subtracting the pod's engine latency then removes little of the spread.  Decided on the healthy
    window from the mean share (``_sum`` / ``_count``), else the p90 share; True when the case has neither.
    """
    for share, mesh in ((S.NET_SHARE_MEAN, S.LAT_MEAN), (S.NET_SHARE, S.LAT90)):
        i, k = ev.col(component, share), ev.col(component, mesh)
        if i is not None and k is not None:
            return bool(ev.nm.spread[i] <= DECOMPOSES_BELOW * ev.nm.spread[k])
    return True


def engine_rise(ev: Evidence, component: str, mesh_signal: str) -> float:
    """Rise (s, >= 0) of the component's own engine latency, in the statistic matching ``mesh_signal``."""
    eng = ev.delta(component, S.E2E_MEAN, "q75") if mesh_signal == S.LAT_MEAN else float("nan")
    if not np.isfinite(eng):
        eng = ev.delta(component, S.E2E90, "q75")
    return max(eng, 0.0) if np.isfinite(eng) else 0.0


def residuals(ev: Evidence, components: list[str], callees: dict[str, list[str]]) -> dict[str, LatencyResidual]:
    """Unexplained mesh-latency rise per component."""
    sigs_of = {c: latency_signals(ev, c) for c in components}
    raw: dict[str, dict[str, float]] = {}
    for c in components:
        raw[c] = {sig: ev.delta(c, sig, "q75") for sig in S.MESH_LATENCY}
    out: dict[str, LatencyResidual] = {}
    pre: dict[str, dict[str, float]] = {}
    for c in components:
        explained: dict[str, float] = {}
        best_callee, best_val = None, 0.0
        eng_any = False
        # A replica whose mesh edge carries requests served elsewhere is not explained by its own engine;
        # its peers' common rise (below) is what the load explains.
        own = bool(callees.get(c)) or carries_own_requests(ev, c)
        for sig in sigs_of[c]:
            m = engine_rise(ev, c, sig) if own else 0.0
            eng_any |= m > 0
            for d in callees.get(c, []):
                v = raw.get(d, {}).get(sig, float("nan"))
                if np.isfinite(v) and v > m:
                    m = v
                if np.isfinite(v) and v > best_val:
                    best_callee, best_val = d, v
            explained[sig] = m
        pre[c] = {sig: raw[c][sig] - explained[sig] for sig in sigs_of[c]}
        out[c] = LatencyResidual(c, {s: raw[c][s] for s in sigs_of[c]}, explained, 0.0, best_callee, eng_any)
    # Load redistribution raises every replica's residual alike: remove the replicas' common mode.
    common = {}
    for sig in S.MESH_LATENCY:
        vals = [pre[r][sig] / ev.level(i) for r in ev.replicas if sig in pre.get(r, {}) and (i := ev.col(r, sig)) is not None and np.isfinite(pre[r][sig])]
        common[sig] = float(np.median(vals)) if len(vals) >= 2 else 0.0
    for c in components:
        best = 0.0
        for sig in sigs_of[c]:
            i = ev.col(c, sig)
            if i is None or not np.isfinite(pre[c][sig]):
                continue
            adj = pre[c][sig] - (max(common[sig], 0.0) * ev.level(i) if c in ev.replicas and not callees.get(c) else 0.0)
            strength = adj / ev.nm.scale[i] / ev.z
            if strength > best:
                best, out[c].signal = strength, sig
        out[c].residual = float(np.clip(best, 0.0, ev.cap))
    return out
