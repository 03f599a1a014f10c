"""Per-component evidence for each fault hypothesis, in units of "threshold multiples".

A strength of 1 means a signal moved by the configured number of robust
standard deviations (``z_threshold``) beyond what load redistribution
explains; physical flags (power pinned at its limit, SW-power-cap throttle
bit set, a replica restart) count as a fixed strong evidence.  Three pieces
of LLM-serving knowledge shape the numbers:

* **Replicas are peers.**  When one replica degrades, the router moves load
  to the others, which then all move *together*.  Every replica signal is
  therefore compared with the median move of the replicas (the common mode),
  and only the difference is evidence against a replica.
* **Latency decomposes.**  The mesh latency of requests into a replica is the
  engine's own time (queueing, prefill / TTFT, decode / inter-token latency,
  end-to-end) plus the network.  Mesh latency that the engine latency does not
  explain is network evidence; engine latency that resources do not explain
  is a slow replica (GPU, CPU).
* **Symptoms propagate upstream.**  A caller's latency contains its callees'
  latency, so a caller's latency rise is only evidence against the caller for
  the part its slowest callee does not explain (see :mod:`.propagation`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from llmrca.methods.llm import signals as S
from llmrca.methods.llm.baseline import NormalModel, WindowStats

#: Fault hypotheses the method names (plus "health": a replica restart or
#: outage whose cause the signals do not reveal).
HYPOTHESES: tuple[str, ...] = (
    "cpu", "memory", "network", "gpu", "health",
    # LLM-serving faults beyond the paper's (weighed in :mod:`.serving`)
    "kv-cache", "gpu-thermal", "gpu-error", "model-load", "packet-loss", "noisy-neighbour",
)

#: GPU utilisation (%) under which a sample counts as idle (the clock may drop to its idle clock).
IDLE_UTIL_PCT = 5.0

#: Strength given to a definitive physical flag (a lowered power limit, the
#: throttle bit, a replica restart): well above any threshold.
FLAG = 5.0


@dataclass
class Signal:
    """One piece of evidence, for the explanation."""

    component: str
    signal: str
    hypothesis: str
    strength: float
    normal: float | None = None
    window: float | None = None
    note: str = ""
    weak: bool = False  # uncorroborated (half weight): not counted in the alarm level

    def to_dict(self) -> dict[str, object]:
        def f(x: float | None) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), 6)

        d: dict[str, object] = {
            "component": self.component,
            "signal": self.signal,
            "hypothesis": self.hypothesis,
            "strength": round(float(self.strength), 3),
            "normal": f(self.normal),
            "window": f(self.window),
        }
        if self.normal is not None and self.window is not None and np.isfinite(self.normal) and self.normal != 0 and np.isfinite(self.window):
            d["change_pct"] = round(100.0 * (self.window - self.normal) / abs(self.normal), 1)
        if self.note:
            d["note"] = self.note
        if self.weak:
            d["weak"] = True
        return d


@dataclass
class ComponentEvidence:
    component: str
    strengths: dict[str, float] = field(default_factory=lambda: dict.fromkeys(HYPOTHESES, 0.0))
    slow: float = 0.0  # engine slowness beyond the peers (a symptom, not a type)
    latency_residual: float = 0.0  # mesh latency not explained by engine or callees
    latency_delta_s: float = 0.0  # p90 mesh latency change (s), for propagation
    signals: list[Signal] = field(default_factory=list)
    memory_cue: bool = False
    memory_rise: bool = False  # memory rose, hit its limit or an OOM was logged (not only a drop)
    cues: dict[str, float] = field(default_factory=dict)  # serving-fault cues (see :mod:`.serving`)
    basic_latency_shape: float | None = None  # 1 = additive (network-like), 0 = multiplicative

    def add(self, sig: Signal) -> None:
        if sig.strength > 0:
            self.signals.append(sig)
            self.strengths[sig.hypothesis] = self.combined(sig.hypothesis)

    def combined(self, hypothesis: str, *, firm: bool = False) -> float:
        """Strongest signal plus every other independent signal beyond its threshold.

        Independent pieces of evidence add up (as log-likelihoods do); signals
        below threshold count only when they are the best there is, so the many
        small moves of a healthy, busier peer do not accumulate.  ``firm``:
        leave out weak (uncorroborated) signals.
        """
        best: dict[str, float] = {}
        for sg in self.signals:
            if sg.hypothesis == hypothesis and not (firm and sg.weak):
                best[sg.signal] = max(best.get(sg.signal, 0.0), sg.strength)
        vals = sorted(best.values(), reverse=True)
        if not vals:
            return 0.0
        return vals[0] + sum(v for v in vals[1:] if v >= 1.0)

    @property
    def score(self) -> float:
        return max(self.strengths.values()) + 0.25 * min(self.slow, 4.0)

    @property
    def firm(self) -> float:
        """The strongest hypothesis counting firm signals only (no weak ones, no slowness bonus), in threshold multiples."""
        return max((self.combined(h, firm=True) for h in HYPOTHESES), default=0.0)


class Evidence:
    """Compute :class:`ComponentEvidence` for every component of one window."""

    def __init__(
        self,
        normal: NormalModel,
        window: WindowStats,
        normal_values: np.ndarray,
        *,
        z_threshold: float,
        power_tolerance: float,
        cap: float,
        replicas: list[str],
    ) -> None:
        self.nm = normal
        self.ws = window
        self.nx = normal_values
        self.z = z_threshold
        self.tol = power_tolerance
        self.cap = cap
        self.idx = normal.index
        self.replicas = replicas
        self._common: dict[str, float] = {}
        self._level = np.fmax(np.abs(np.nan_to_num(normal.median, nan=0.0)), normal.scale)

    # -- primitive statistics ------------------------------------------------
    def col(self, comp: str, sig: str) -> int | None:
        return self.idx.get(comp, sig)

    def level(self, i: int) -> float:
        return float(self._level[i])

    def common(self, sig: str) -> float:
        """Median relative move of ``sig`` across replicas (load redistribution)."""
        if sig not in self._common:
            rel = []
            for r in self.replicas:
                i = self.col(r, sig)
                if i is None:
                    continue
                d = self.ws.q50[i] - self.nm.median[i]
                if np.isfinite(d):
                    rel.append(d / self.level(i))
            self._common[sig] = float(np.median(rel)) if len(rel) >= 2 else 0.0
        return self._common[sig]

    def expected(self, comp: str, sig: str, i: int) -> float:
        """The move load redistribution explains (only a rise explains a rise, a fall a fall)."""
        return self.common(sig) * self.level(i) if comp in self.replicas else 0.0

    def up(self, comp: str, sig: str) -> float:
        """Rise of the window's upper quartile beyond the common mode, in threshold multiples."""
        i = self.col(comp, sig)
        if i is None:
            return 0.0
        d = self.ws.q75[i] - self.nm.median[i] - max(self.expected(comp, sig, i), 0.0)
        if not np.isfinite(d):
            return 0.0
        return _clip(d / self.nm.scale[i] / self.z, self.cap)

    def outage_row(self, comp: str) -> int | None:
        """First window row where the replica is down (unhealthy or restarting), if any.

        A replica that is down misses its scrapes and fails its requests, so its
        missing samples and its mesh-vs-engine latency gap from then on are
        consequences of the outage, not evidence of a network fault.
        """
        rows = []
        i = self.col(comp, S.REPLICA_HEALTHY)
        if i is not None:
            v = self.ws.values[:, i]
            bad = np.nonzero(np.isfinite(v) & (v < 0.5))[0]
            if bad.size and self.nm.median[i] >= 0.5:
                rows.append(int(bad[0]))
        i = self.col(comp, S.REPLICA_STARTS)
        if i is not None:
            v = self.ws.values[:, i]
            bad = np.nonzero(np.isfinite(v) & (v > _nz(self.nm.max[i]) + S.FLOORS[S.REPLICA_STARTS]))[0]
            if bad.size:
                rows.append(int(bad[0]))
        return min(rows) if rows else None

    def up_before(self, comp: str, sig: str, k: int | None) -> float:
        """:meth:`up` computed on the window's first ``k`` rows only (all rows if ``k`` is None)."""
        if k is None:
            return self.up(comp, sig)
        i = self.col(comp, sig)
        if i is None or k < 2:
            return 0.0
        v = self.ws.values[:k, i]
        v = v[np.isfinite(v)]
        if v.size < 2:
            return 0.0
        d = float(np.quantile(v, 0.75)) - self.nm.median[i] - max(self.expected(comp, sig, i), 0.0)
        return _clip(d / self.nm.scale[i] / self.z, self.cap)

    def down(self, comp: str, sig: str) -> float:
        """Fall of the window's lower quartile beyond the common mode, in threshold multiples."""
        i = self.col(comp, sig)
        if i is None:
            return 0.0
        d = self.nm.median[i] + min(self.expected(comp, sig, i), 0.0) - self.ws.q25[i]
        if not np.isfinite(d):
            return 0.0
        return _clip(d / self.nm.scale[i] / self.z, self.cap)

    def busy_clock_drop(self, comp: str) -> float:
        """:meth:`down` of the SM clock over the window's samples where the GPU was busy.

        A GPU's clock falls to its idle clock when it has no work (NVIDIA power management);
        a replica that gets less work (a network delay in front of it, a drained replica) then
        shows a clock fall that is no slowdown.  Samples with utilisation under
        :data:`IDLE_UTIL_PCT` are left out (all samples when utilisation is not reported).
        """
        ic, iu = self.col(comp, S.SM_CLOCK), self.col(comp, S.GPU_UTIL)
        if ic is None:
            return 0.0
        if iu is None:
            return self.down(comp, S.SM_CLOCK)
        v, u = self.ws.values[:, ic], self.ws.values[:, iu]
        busy = v[np.isfinite(v) & ~(u < IDLE_UTIL_PCT)]
        if busy.size == 0:
            return 0.0
        d = self.nm.median[ic] + min(self.expected(comp, S.SM_CLOCK, ic), 0.0) - float(np.quantile(busy, 0.25))
        return _clip(d / self.nm.scale[ic] / self.z, self.cap) if np.isfinite(d) else 0.0

    def busier_per_work(self, comp: str) -> float:
        """:meth:`up` of GPU utilisation, counted only when the replica's own decode work (tokens/s) did not rise.

        A slower accelerator is busier *at the same work*; a replica the router sends more work
        (a peer taking over from a degraded replica, a replica idle after its restart getting its
        share back) is busier because it does more: its median decode rate rose by more than the
        smallest meaningful change (:data:`~llmrca.methods.llm.signals.FLOORS`).  Without a decode-rate
        series the rise counts as it is.
        """
        busy = self.up(comp, S.GPU_UTIL)
        if busy <= 0:
            return 0.0
        return 0.0 if self.more_work(comp) else busy

    def more_work(self, comp: str) -> bool:
        """Whether the replica decodes more tokens/s in the window than normally (median rise beyond the
        smallest meaningful change, :data:`~llmrca.methods.llm.signals.FLOORS`, or beyond a quarter of its own
        normal rate on a slow deployment whose whole rate is near that floor).  A busier, hotter GPU is then load."""
        i = self.col(comp, S.GEN_TPS)
        more = self.delta(comp, S.GEN_TPS, "q50")
        if i is None or not np.isfinite(more) or more <= 0:
            return False
        return bool(more > min(S.FLOORS[S.GEN_TPS], 0.25 * abs(float(self.nm.median[i]))))

    def normal_of(self, comp: str, sig: str) -> float | None:
        i = self.col(comp, sig)
        return None if i is None else float(self.nm.median[i])

    def window_of(self, comp: str, sig: str, stat: str = "q50") -> float | None:
        i = self.col(comp, sig)
        return None if i is None else float(getattr(self.ws, stat)[i])

    def delta(self, comp: str, sig: str, stat: str = "q75") -> float:
        i = self.col(comp, sig)
        if i is None:
            return float("nan")
        return float(getattr(self.ws, stat)[i] - self.nm.median[i])

    # -- hypotheses ----------------------------------------------------------
    def cpu(self, ev: ComponentEvidence) -> None:
        c = ev.component
        for sig in (S.CPU, S.CFS_THROTTLED):
            ev.add(Signal(c, sig, "cpu", self.up(c, sig), self.normal_of(c, sig), self.window_of(c, sig, "q75")))

    def memory(self, ev: ComponentEvidence, log_excess: dict[str, float]) -> None:
        c = ev.component
        up = self.up(c, S.MEM)
        ev.add(Signal(c, S.MEM, "memory", up, self.normal_of(c, S.MEM), self.window_of(c, S.MEM, "max"), "working set grows"))
        fail = self.up(c, S.MEM_FAILCNT)
        ev.add(Signal(c, S.MEM_FAILCNT, "memory", fail, self.normal_of(c, S.MEM_FAILCNT), self.window_of(c, S.MEM_FAILCNT, "max"), "memory limit hit"))
        oom = min(FLAG, FLAG * log_excess.get("oom", 0.0))
        ev.add(Signal(c, "log:oom", "memory", oom, note="out-of-memory log lines"))
        # Replica lifecycle: a restart or an unhealthy replica (Ray Serve).
        restart = 0.0
        i = self.col(c, S.REPLICA_STARTS)
        if i is not None and np.isfinite(self.ws.max[i]) and self.ws.max[i] > _nz(self.nm.max[i]) + S.FLOORS[S.REPLICA_STARTS]:
            restart = FLAG
        ev.add(Signal(c, S.REPLICA_STARTS, "health", restart, self.normal_of(c, S.REPLICA_STARTS), self.window_of(c, S.REPLICA_STARTS, "max"), "replica restarted"))
        i = self.col(c, S.RESTARTS)
        if i is not None and np.isfinite(self.ws.max[i]) and self.ws.max[i] > _nz(self.nm.max[i]) + S.FLOORS[S.RESTARTS]:
            restart = FLAG
            ev.add(Signal(c, S.RESTARTS, "health", FLAG, self.normal_of(c, S.RESTARTS), self.window_of(c, S.RESTARTS, "max"), "container restart count rose"))
        unhealthy = 0.0
        i = self.col(c, S.REPLICA_HEALTHY)
        if i is not None and np.isfinite(self.ws.min[i]) and self.nm.median[i] >= 0.5 and self.ws.min[i] < 0.5:
            unhealthy = FLAG
        ev.add(Signal(c, S.REPLICA_HEALTHY, "health", unhealthy, self.normal_of(c, S.REPLICA_HEALTHY), self.window_of(c, S.REPLICA_HEALTHY, "min"), "replica unhealthy"))
        restart_logs = min(FLAG, FLAG * log_excess.get("restart", 0.0))
        ev.add(Signal(c, "log:restart", "health", restart_logs, note="restart / actor death log lines"))
        errors = self.up(c, S.REPLICA_ERRORS)
        ev.add(Signal(c, S.REPLICA_ERRORS, "health", errors, self.normal_of(c, S.REPLICA_ERRORS), self.window_of(c, S.REPLICA_ERRORS, "max"), "replica errors"))
        # An OOM-killed process loses its working set: memory first falls.
        drop = self.down(c, S.MEM)
        lifecycle = max(restart, unhealthy, restart_logs) > 0
        ev.memory_cue = up >= 1.0 or fail >= 1.0 or oom >= 1.0 or (drop >= 1.0 and lifecycle)
        ev.memory_rise = up >= 1.0 or fail >= 1.0 or oom >= 1.0
        if drop > 0:
            # Without a lifecycle cue a fall of memory is weak evidence (half weight).
            # "killed" only with a kill cue (OOM log lines, memory-limit hits): a graceful stop (a drain,
            # a model reload) also drops the working set
            killed = oom > 0 or fail >= 1.0
            how = " (process killed)" if killed else " (process stopped or restarted)" if lifecycle else ""
            ev.add(Signal(c, S.MEM, "memory", drop if lifecycle else 0.5 * drop, self.normal_of(c, S.MEM), self.window_of(c, S.MEM, "min"), "working set dropped" + how,
                          weak=not lifecycle))

    def gpu(self, ev: ComponentEvidence, log_excess: dict[str, float]) -> None:
        c = ev.component
        ip, il, ic, it = (self.col(c, s) for s in (S.POWER, S.POWER_LIMIT, S.SM_CLOCK, S.THROTTLE))
        flag = 0.0
        notes = []
        if il is not None:
            lim_n = float(self.nm.median[il])
            lim_w = float(self.ws.min[il])
            if np.isfinite(lim_w) and np.isfinite(lim_n) and lim_n > 0 and lim_w < (1.0 - self.tol) * lim_n:
                flag = 1.0
                notes.append(f"power limit lowered {lim_n:.0f}→{lim_w:.0f} W")
                ev.add(Signal(c, S.POWER_LIMIT, "gpu", FLAG, lim_n, lim_w, "power limit lowered"))
        if ip is not None and il is not None:
            at_w = _share(self.ws.values[:, ip] >= (1.0 - self.tol) * self.ws.values[:, il], self.ws.values[:, ip])
            at_n = _share(self.nx[:, ip] >= (1.0 - self.tol) * self.nx[:, il], self.nx[:, ip])
            excess = max(0.0, at_w - at_n)
            if excess > 0:
                flag = max(flag, excess)
                ev.add(Signal(c, S.POWER, "gpu", FLAG * excess, self.normal_of(c, S.POWER), self.window_of(c, S.POWER), f"power within {self.tol:.0%} of its limit in {at_w:.0%} of samples"))
        if ip is not None and il is None:
            # No limit series (dcgm-exporter's default fields have POWER_USAGE but no POWER_MGMT_LIMIT): a cap still
            # shows as the draw falling while the replica's work does not (a replica given less work, e.g. behind a
            # network delay, draws less because it runs fewer requests and is idle more often).
            # the replica's work: requests in its batch and GPU busy time (a capped GPU runs as many requests, longer);
            # without them its decoded tokens/s and finished requests/s (which a cap may lower too, so second); without
            # any, a falling draw cannot be told from less work and is not counted
            work = [s for s in (S.RUNNING, S.GPU_UTIL) if self.col(c, s) is not None] or [
                s for s in (S.GEN_TPS, S.SUCCESS) if self.col(c, s) is not None]
            drop = self.down(c, S.POWER)
            less_work = any(self.down(c, s) >= 1.0 for s in work)
            if drop > 0 and work and not less_work:  # not a flag: the clock's fall is not confirmed by an inferred cap
                ev.add(Signal(c, S.POWER, "gpu", drop, self.normal_of(c, S.POWER), self.window_of(c, S.POWER, "q25"),
                              "power draw fell while the replica's work did not (no power-limit series to confirm a cap)"))
        if it is not None:
            w = self.ws.values[:, it]
            n = self.nx[:, it]
            bit_w = _share(np.nan_to_num(w).astype(np.int64) & S.SW_POWER_CAP_BIT > 0, w)
            bit_n = _share(np.nan_to_num(n).astype(np.int64) & S.SW_POWER_CAP_BIT > 0, n)
            excess = max(0.0, bit_w - bit_n)
            if excess > 0:
                flag = max(flag, excess)
                ev.add(Signal(c, S.THROTTLE, "gpu", FLAG * excess, None, None, f"SW power cap throttle bit set in {bit_w:.0%} of samples"))
        if ic is not None:
            drop = self.busy_clock_drop(c)
            # A clock drop with a power-cap flag confirms the cap bites; alone it is still a GPU slowdown.
            ev.add(Signal(c, S.SM_CLOCK, "gpu", drop + FLAG * flag if drop > 0 else 0.0, self.normal_of(c, S.SM_CLOCK), self.window_of(c, S.SM_CLOCK), "SM clock fell"))
        busy = self.busier_per_work(c)
        if busy > 0:
            # Busier than its peers at the same load: each step takes the accelerator longer.
            ev.add(Signal(c, S.GPU_UTIL, "gpu", busy, self.normal_of(c, S.GPU_UTIL), self.window_of(c, S.GPU_UTIL, "q75"), "GPU busier than its peers"))
        pv = self.up(c, S.POWER_VIOLATION)
        if pv > 0:
            # DCGM's power-violation counter: time the device spent held back by its power limit.
            ev.add(Signal(c, S.POWER_VIOLATION, "gpu", FLAG * min(1.0, pv), self.normal_of(c, S.POWER_VIOLATION), self.window_of(c, S.POWER_VIOLATION, "q75"), "time throttled by the power limit rose"))
        g = min(FLAG, FLAG * log_excess.get("gpu", 0.0))
        # the gpu category also matches Xid reports: name them for what they are when the window has some
        xid = log_excess.get("xid", 0.0) > 0
        ev.add(Signal(c, "log:gpu", "gpu", g, note="GPU Xid / driver log lines" if xid else "GPU power / throttle log lines"))

    def engine(self, ev: ComponentEvidence) -> None:
        c = ev.component
        best = 0.0
        for sig in (S.TTFT90, S.ITL90, S.E2E90, S.QUEUE90, S.WAITING):
            u = self.up(c, sig)
            if u > 0:
                ev.signals.append(Signal(c, sig, "symptom", u, self.normal_of(c, sig), self.window_of(c, sig, "q75"), "engine slower than its peers"))
            best = max(best, u)
        ev.slow = best

    def network_gaps(self, ev: ComponentEvidence, log_excess: dict[str, float]) -> None:
        """Missing scrapes of this component's own series (a delayed pod misses its scrapes).

        Only samples before a replica outage count (a dead replica misses scrapes too).
        """
        c = ev.component
        cols = list(self.idx.where.get(c, {}).values())
        k = self.outage_row(c)
        if cols and (k is None or k >= 2):
            win = self.ws.values[:k, cols] if k is not None else self.ws.values[:, cols]
            gap = float(np.mean(np.isnan(win).mean(axis=0) - self.nm.nan_frac[cols]))
            if gap > 0.05:
                ev.add(Signal(c, "scrape gaps", "network", min(FLAG, FLAG * gap / 0.25), note=f"{gap:.0%} more missing samples than normal"))
        t = min(FLAG, FLAG * log_excess.get("timeout", 0.0))
        ev.add(Signal(c, "log:timeout", "network", t, note="timeout / connection log lines"))


def alarm_level(evidence: Mapping[str, ComponentEvidence]) -> float:
    """How far the most anomalous component is beyond its healthy-baseline band, in threshold multiples.

    ``evidence`` maps each component to its :class:`ComponentEvidence`; the
    level is the largest :attr:`ComponentEvidence.firm` strength: 0 when
    every signal of every component stays within ``z_threshold`` robust
    standard deviations of its normal-window median (beyond the replicas'
    common move).  Weak signals (uncorroborated, half weight: a mesh-vs-engine
    latency gap with no network-specific cue, a memory fall with no lifecycle
    cue) and the engine-slowness bonus do not count: a healthy replica shows
    them as queueing noise.  A physical flag (power pinned at its cap, a
    restart) is :data:`FLAG` = 5.
    """
    return max((ce.firm for ce in evidence.values()), default=0.0)


#: Signal groups (:data:`llmrca.methods.llm.signals.GROUPS`) without which llm-rca does not abstain: without the
#: engine's latency decomposition and the accelerator's power signals a network delay or a GPU power cap can stay
#: inside the healthy band of what remains (the paper's basic metric set), so "nothing is wrong" cannot be told
#: apart from "a fault these signals do not show".
ABSTAIN_NEEDS: tuple[str, ...] = ("engine latency decomposition", "accelerator power")


def nothing_wrong(evidence: Mapping[str, ComponentEvidence], threshold: float | None, lacking: Sequence[str] = ()) -> tuple[bool, float]:
    """``(abstain, level)``: abstain ("no root cause") when no component's evidence reaches ``threshold``.

    ``level`` is :func:`alarm_level`; ``threshold`` None never abstains, nor
    does a window ``lacking`` a signal group of :data:`ABSTAIN_NEEDS` (for every replica, or ``"<group> of <replicas>"``
    for some: a replica whose GPU is unmapped cannot be cleared of a GPU fault).  With
    ``threshold`` 1 (llm-rca's default) the rule reads: abstain when no firm
    signal of any component leaves its band of ``z_threshold`` robust
    standard deviations.  A healthy window shows small moves (at most 0.67 on
    simulated seeds 1-5), a fault one component well beyond its band (at
    least 5.12 there, with the mesh means): ``benchmarks/llm_abstain.py``, docs/method-llm.md.
    """
    level = alarm_level(evidence)
    blind = any(g in ABSTAIN_NEEDS or g.startswith(tuple(n + " of " for n in ABSTAIN_NEEDS)) for g in lacking)
    return (threshold is not None and not blind and level < threshold), level


def _nz(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else 0.0


def _clip(x: float, cap: float) -> float:
    # scalar clip without numpy's per-call overhead (this runs per component and signal)
    x = float(x)
    return 0.0 if not x > 0.0 else (cap if x > cap else x)


def _share(mask: np.ndarray, values: np.ndarray) -> float:
    ok = np.isfinite(values)
    if not ok.any():
        return 0.0
    return float(np.mean(mask[ok]))
