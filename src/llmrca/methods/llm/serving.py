"""Evidence for the LLM-serving fault types beyond the paper's four, and how they refine its answer.

The paper's four hypotheses (cpu, memory, network, gpu) localise a culprit from resource,
latency and power signals; six serving faults look like one of them at first sight and are
told apart by one physical signal each (read by its kind, :mod:`llmrca.telemetry.vocabulary`,
so any exporter's naming works):

* **kv-cache** — the replica's KV cache runs near full (``kv_cache`` >= 0.8 in far more
  samples than normal) and it preempts requests (``preemptions``); vLLM warns it lacks KV
  cache space.  A slow engine alone never fills a normally sized cache.
* **gpu-thermal** — the SM clock falls with clock-event reasons other than the power cap
  (HW slowdown 0x8, SW/HW thermal 0x20/0x40, power brake 0x80), the temperature rises or
  the thermal-violation counter runs, and no power-cap cue (limit lowered, draw at the
  limit, bit 0x4) is present.
* **gpu-error** — the GPU reports an Xid (``xid_errors`` rises from 0) or the driver / vLLM
  print one (``NVRM: Xid``, ``EngineDeadError``); the replica's death and restart follow
  from it, so it takes precedence over an OOM reading of the same outage.
* **model-load** — the replica goes unready for most of the window with no memory rise,
  no Xid and no OOM line; it receives bytes while unready (the weights) or the controller
  warns it is slow to initialize.
* **packet-loss** — the component's node retransmits TCP segments (``tcp_retransmits``); a
  delay alone retransmits nothing.
* **noisy-neighbour** — the component's CPU pressure (PSI) and its node's CPU rise while
  its own CPU use does not (contention from outside the pod; a hog inside it raises both).

Sources: vLLM "Optimization and Tuning — Preemption"; NVML ``nvmlClocksEventReasons``;
NVIDIA "Xid Errors"; Ray Serve controller warnings; Linux ``psi.rst``; node-exporter netstat.
"""

from __future__ import annotations

import numpy as np

from llmrca.methods.llm import signals as S
from llmrca.methods.llm.evidence import FLAG, ComponentEvidence, Evidence, Signal, _share

#: Fault types this module names, beyond the paper's four (the order breaks ties).
SERVING_TYPES: tuple[str, ...] = ("kv-cache", "gpu-thermal", "gpu-error", "model-load", "packet-loss", "noisy-neighbour")

#: Serving signal groups -> the fault types they reveal; without a group its types cannot be named
#: (the type falls back to the paper's four or ``unknown``).  The explanation's ``lacking`` lists
#: the absent ones.
SERVING_GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "node CPU / CPU pressure (PSI)": ((S.NODE_CPU, S.CPU_PRESSURE), ("noisy-neighbour",)),
    "TCP retransmits": ((S.TCP_RETRANS,), ("packet-loss",)),
    "KV cache": ((S.KV_CACHE, S.PREEMPT), ("kv-cache",)),
    "GPU temperature / thermal violation": ((S.GPU_TEMP, S.THERMAL_VIOLATION), ("gpu-thermal",)),
    "Xid errors": ((S.XID,), ("gpu-error",)),
    "replica health": ((S.REPLICA_HEALTHY,), ("model-load",)),
}


def lacking_serving(have: set[str] | frozenset[str], logs: bool) -> list[str]:
    """The serving signal groups absent from ``have`` (signal names), each with the types it reveals.

    When every group is absent a last entry says the type can only be one of the paper's four
    (``logs``: the window has log lines, which can still show KV-cache preemption warnings and Xid
    reports).
    """
    out = [f"{group} (needed to name {', '.join(types)})" for group, (sigs, types) in SERVING_GROUPS.items() if not any(s in have for s in sigs)]
    if len(out) == len(SERVING_GROUPS):
        out.append("no serving metric: the fault type can only be one of the paper's four (cpu, memory, network, gpu) or unknown"
                   + (", or kv-cache / gpu-error when the logs show their lines" if logs else ""))
    return out


#: KV-cache usage (fraction) from which a cache counts as near full.
KV_NEAR_FULL = 0.8


def _nz_max(x: float) -> float:
    return float(x) if np.isfinite(x) else 0.0


def _cue(ce: ComponentEvidence, name: str, value: float) -> None:
    ce.cues[name] = max(ce.cues.get(name, 0.0), float(value))


def kv_cache(ev: Evidence, ce: ComponentEvidence, log_excess: dict[str, float]) -> None:
    """Near-full KV cache and preemptions on a replica (hypothesis ``kv-cache``)."""
    c = ce.component
    i = ev.col(c, S.KV_CACHE)
    full = 0.0
    if i is not None:
        w, n = ev.ws.values[:, i], ev.nx[:, i]
        excess = max(0.0, _share(np.nan_to_num(w) >= KV_NEAR_FULL, w) - _share(np.nan_to_num(n) >= KV_NEAR_FULL, n))
        if excess > 0:
            full = FLAG * min(1.0, excess / 0.2)
            ce.add(Signal(c, S.KV_CACHE, "kv-cache", full, ev.normal_of(c, S.KV_CACHE), ev.window_of(c, S.KV_CACHE, "max"), f"KV cache >= {KV_NEAR_FULL:.0%} full in {excess:.0%} more samples than normal"))
    pre = ev.up(c, S.PREEMPT)
    ce.add(Signal(c, S.PREEMPT, "kv-cache", min(pre, 2 * FLAG), ev.normal_of(c, S.PREEMPT), ev.window_of(c, S.PREEMPT, "q75"), "requests preempted"))
    logs = min(FLAG, FLAG * log_excess.get("kv", 0.0))
    ce.add(Signal(c, "log:kv", "kv-cache", logs, note="vLLM: not enough KV cache space (preemption warnings)"))
    _cue(ce, "kv", max(full, min(pre, FLAG) if full > 0 else 0.0, logs))


def gpu_thermal(ev: Evidence, ce: ComponentEvidence) -> None:
    """Clock-event reasons other than the power cap, temperature, thermal violation (hypothesis ``gpu-thermal``)."""
    c = ce.component
    bits = 0.0
    it = ev.col(c, S.THROTTLE)
    if it is not None:
        w, n = ev.ws.values[:, it], ev.nx[:, it]
        excess = max(0.0, _share(np.nan_to_num(w).astype(np.int64) & S.THERMAL_BITS > 0, w) - _share(np.nan_to_num(n).astype(np.int64) & S.THERMAL_BITS > 0, n))
        if excess > 0:
            bits = FLAG * min(1.0, 2 * excess)
            ce.add(Signal(c, S.THROTTLE, "gpu-thermal", bits, None, None, f"thermal / HW-slowdown clock-event reasons set in {excess:.0%} more samples"))
    # a GPU that does more work (its replica decodes more tokens/s) runs hotter: that rise is load, not a fault
    temp = 0.0 if ev.more_work(c) else min(FLAG, ev.up(c, S.GPU_TEMP))
    ce.add(Signal(c, S.GPU_TEMP, "gpu-thermal", temp, ev.normal_of(c, S.GPU_TEMP), ev.window_of(c, S.GPU_TEMP, "max"), "GPU temperature rose"))
    viol = FLAG * min(1.0, ev.up(c, S.THERMAL_VIOLATION))
    # DCGM's counter is µs throttled per s: reported as the percentage of time held back
    n_pct, w_pct = (None if v is None or not np.isfinite(v) else v / 1e4 for v in (ev.normal_of(c, S.THERMAL_VIOLATION), ev.window_of(c, S.THERMAL_VIOLATION, "q75")))
    ce.add(Signal(c, S.THERMAL_VIOLATION, "gpu-thermal", viol, n_pct, w_pct, "% of time held back by temperature rose"))
    _cue(ce, "thermal", max(bits, viol, temp if bits > 0 or viol > 0 else 0.0))
    # a power cap's own cues (lowered limit, draw at the limit, SW-power-cap bit): thermal is then not the reading
    cap_signals = (S.POWER_LIMIT, S.POWER, S.POWER_VIOLATION, S.THROTTLE)
    _cue(ce, "power_cap", max((sg.strength for sg in ce.signals if sg.hypothesis == "gpu" and sg.signal in cap_signals), default=0.0))


def gpu_error(ev: Evidence, ce: ComponentEvidence, log_excess: dict[str, float]) -> None:
    """An Xid reported by DCGM or printed by the driver / vLLM (hypothesis ``gpu-error``)."""
    c = ce.component
    flag = 0.0
    i = ev.col(c, S.XID)
    if i is not None and np.isfinite(ev.ws.max[i]) and ev.ws.max[i] > _nz_max(ev.nm.max[i]) + S.FLOORS[S.XID]:
        flag = 2 * FLAG
        ce.add(Signal(c, S.XID, "gpu-error", flag, ev.normal_of(c, S.XID), ev.window_of(c, S.XID, "max"), f"GPU reported Xid {ev.ws.max[i]:.0f}"))
    logs = min(2 * FLAG, 2 * FLAG * log_excess.get("xid", 0.0))
    ce.add(Signal(c, "log:xid", "gpu-error", logs, note="Xid / driver / engine-dead log lines"))
    _cue(ce, "xid", max(flag, logs))


def model_load(ev: Evidence, ce: ComponentEvidence, log_excess: dict[str, float]) -> None:
    """A replica unready for most of the window, receiving its weights (hypothesis ``model-load``)."""
    c = ce.component
    i = ev.col(c, S.REPLICA_HEALTHY)
    if i is None or not ev.nm.median[i] >= 0.5:
        return
    w = ev.ws.values[:, i]
    unready = _share(np.nan_to_num(w, nan=0.0) < 0.5, np.zeros_like(w))
    if unready < 0.5:
        return
    rx = ev.up(c, S.NET_RX)
    logs = min(FLAG, FLAG * log_excess.get("slow-load", 0.0))
    strength = FLAG * min(1.0, unready) + min(rx, FLAG) + logs
    ce.add(Signal(c, S.REPLICA_HEALTHY, "model-load", strength, ev.normal_of(c, S.REPLICA_HEALTHY), ev.window_of(c, S.REPLICA_HEALTHY, "min"), f"replica unready in {unready:.0%} of the window" + (", receiving data meanwhile" if rx >= 1 else "")))
    _cue(ce, "slow_load", strength)


def packet_loss(ev: Evidence, ce: ComponentEvidence) -> None:
    """TCP retransmissions on the component's node (hypothesis ``packet-loss``)."""
    c = ce.component
    up = ev.up(c, S.TCP_RETRANS)
    ce.add(Signal(c, S.TCP_RETRANS, "packet-loss", up, ev.normal_of(c, S.TCP_RETRANS), ev.window_of(c, S.TCP_RETRANS, "q75"), "TCP retransmissions rose"))
    _cue(ce, "retrans", up)


def noisy_neighbour(ev: Evidence, ce: ComponentEvidence) -> None:
    """CPU pressure and node CPU up while the pod's own CPU is not (hypothesis ``noisy-neighbour``)."""
    c = ce.component
    if ev.up(c, S.CPU) >= 1.0:
        return  # the pod itself uses more: contention from inside (the cpu hypothesis)
    psi = ev.up(c, S.CPU_PRESSURE)
    node = ev.up(c, S.NODE_CPU)
    if psi <= 0:
        return
    ce.add(Signal(c, S.CPU_PRESSURE, "noisy-neighbour", psi, ev.normal_of(c, S.CPU_PRESSURE), ev.window_of(c, S.CPU_PRESSURE, "q75"), "threads waited for a CPU while the pod's own CPU did not rise"))
    if node > 0:
        ce.add(Signal(c, S.NODE_CPU, "noisy-neighbour", node, ev.normal_of(c, S.NODE_CPU), ev.window_of(c, S.NODE_CPU, "q75"), "the node's CPU rose (other tenants)"))
    _cue(ce, "neighbour", psi)


def add_evidence(ev: Evidence, ce: ComponentEvidence, log_excess: dict[str, float]) -> None:
    """Every serving-fault hypothesis for one component (after the paper's four have been weighed)."""
    kv_cache(ev, ce, log_excess)
    gpu_thermal(ev, ce)
    gpu_error(ev, ce, log_excess)
    model_load(ev, ce, log_excess)
    packet_loss(ev, ce)
    noisy_neighbour(ev, ce)


def refine(ce: ComponentEvidence, fault: str) -> str:
    """The fault type once the serving cues are read: a paper type (or ``unknown``) becomes the specific one it stands for.

    Precedence follows causality: an Xid explains the outage an OOM reading would blame; a
    thermal slowdown is a GPU slowdown without a power cap; retransmissions make a network
    symptom packet loss; CPU pressure without the pod's own CPU rise is a neighbour; a full KV
    cache explains the queueing; a long unready replica without memory or Xid cues is a slow load.
    """
    cue = ce.cues.get
    if cue("xid", 0.0) >= 1.0:
        return "gpu-error"
    if fault in ("gpu", "unknown") and cue("thermal", 0.0) >= 1.0 and cue("power_cap", 0.0) < 1.0:
        return "gpu-thermal"
    if fault in ("network", "unknown") and cue("retrans", 0.0) >= 1.0:
        return "packet-loss"
    if fault in ("cpu", "network", "unknown") and cue("neighbour", 0.0) >= 1.0 and ce.strengths.get("cpu", 0.0) < cue("neighbour", 0.0):
        return "noisy-neighbour"
    if fault in ("network", "unknown", "gpu", "cpu") and cue("kv", 0.0) >= 1.0:
        return "kv-cache"
    if fault in ("memory", "unknown") and cue("slow_load", 0.0) >= 1.0 and not ce.memory_rise:
        return "model-load"
    return fault
