"""Human sentences for the evidence: what moved on the culprit, and why upstream is not blamed."""

from __future__ import annotations

import numpy as np

from llmrca.methods.llm import signals as S
from llmrca.methods.llm.evidence import ComponentEvidence, Signal
from llmrca.methods.llm.propagation import LatencyResidual

_LABELS = {
    S.CPU: "CPU",
    S.MEM: "memory",
    S.CFS_THROTTLED: "CFS throttled time",
    S.MEM_FAILCNT: "memory-limit hits",
    S.SM_CLOCK: "SM clock",
    S.TTFT90: "TTFT p90",
    S.ITL90: "inter-token latency p90",
    S.E2E90: "engine e2e latency p90",
    S.QUEUE90: "engine queue time p90",
    S.WAITING: "waiting requests",
    S.REPLICA_ERRORS: "replica errors",
    S.LAT50: "request latency p50",
    S.LAT90: "request latency p90",
    S.GPU_UTIL: "GPU utilisation",
    S.NET_SHARE: "network share of request latency p90 (s)",
    S.KV_CACHE: "KV-cache usage",
    S.PREEMPT: "preemptions/s",
    S.GPU_TEMP: "GPU temperature",
    S.THERMAL_VIOLATION: "time throttled by temperature (%)",
    S.CPU_PRESSURE: "CPU pressure (PSI)",
    S.NODE_CPU: "node CPU",
    S.TCP_RETRANS: "TCP retransmissions",
    S.LAT_MEAN: "request latency mean",
    S.NET_SHARE_MEAN: "network share of mean request latency (s)",
}

#: Fault types whose story includes the replica's outage (its health signals belong in the sentence).
_OUTAGE_TYPES = ("memory", "gpu-error", "model-load")


def phrase(sig: Signal) -> str:
    n, w = sig.normal, sig.window
    if sig.signal == S.POWER_LIMIT and n is not None and w is not None:
        return f"GPU power limit lowered from {n:.0f} W to {w:.0f} W"
    if sig.signal == S.POWER and sig.note.startswith("power draw fell"):
        return "GPU " + sig.note
    if sig.signal == S.POWER:
        return f"GPU power at its limit ({sig.note})"
    if sig.signal in (S.THROTTLE, S.XID) or (sig.signal == S.KV_CACHE and sig.hypothesis == "kv-cache") or sig.hypothesis == "model-load":
        return sig.note
    if sig.signal == S.REPLICA_STARTS:
        return "replica restarted"
    if sig.signal == S.REPLICA_HEALTHY:
        return "replica reported unhealthy"
    if sig.signal.startswith("log:") and w is not None:  # matching line counts (method.py)
        return f"{sig.note}: {w:.0f} line{'' if w == 1 else 's'}" + (f", about {n:.2g} expected" if n else ", none before")
    if sig.signal.startswith("log:") or sig.signal == "scrape gaps":
        return sig.note
    if sig.signal == S.THERMAL_VIOLATION and n is not None and w is not None:  # percent of time (serving.gpu_thermal)
        if w >= 99.5:
            return f"always throttled by temperature (was {n:.0f} % of the time)"
        return f"throttled by temperature {n:.0f} % → {w:.0f} % of the time"
    label = _LABELS.get(sig.signal, sig.signal)
    if sig.signal in (S.NET_SHARE, S.NET_SHARE_MEAN) and n is not None and w is not None:
        return f"{label} {n:+.2f} → {w:+.2f}"
    if n is not None and w is not None and abs(n) < 1e-9:
        return f"{label} {n:g} → {w:.3g}"
    if n is not None and w is not None and n != 0:
        return f"{label} {100.0 * (w - n) / abs(n):+.0f} %"
    return f"{label} changed"


def latency_phrase(res: LatencyResidual, engine: bool) -> str:
    rises = [v for v in res.delta_s.values() if np.isfinite(v)]
    where = "its engine latency or its callees" if engine else "its callees"
    if not rises:  # the latency rose in threshold terms but its size in seconds is not known (gaps)
        return f"request latency rose, not explained by {where}"
    return f"request latency +{max(rises):.2f} s not explained by {where}"


def sentence(
    culprit: str,
    ev: ComponentEvidence,
    fault: str,
    residual: LatencyResidual | None,
    engine_available: bool,
    upstream: dict[str, str],
) -> str:
    # Only signals beyond their threshold make the sentence (the structured list keeps the rest).
    # The named fault's own evidence first (for memory, the outage it caused too).
    own = {fault, "health"} if fault in _OUTAGE_TYPES else {fault}
    strong = [s for s in sorted(ev.signals, key=lambda s: (s.hypothesis not in own, -s.strength)) if s.strength >= 1.0]
    parts = [phrase(s) for s in strong[:4]]
    if residual is not None and residual.residual >= 1.0 and fault in ("network", "gpu", "unknown"):
        parts.insert(0, latency_phrase(residual, engine_available))
    # Keep each phrase once, in order.
    seen: list[str] = []
    for p in parts:
        if p not in seen:
            seen.append(p)
    text = f"{culprit} ({fault}): " + (", ".join(seen[:4]) if seen else "no single signal stands out")
    if upstream:
        by: dict[str, list[str]] = {}
        for comp, cause in upstream.items():
            by.setdefault(cause, []).append(comp)
        text += "; " + "; ".join(f"{' and '.join(sorted(cs))} latency explained by {cause}" for cause, cs in by.items())
    return text
