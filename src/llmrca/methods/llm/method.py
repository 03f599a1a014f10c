"""LLM-RCA: a serving-aware root-cause method that localizes the culprit replica and names the fault.

The method embeds what the paper (Beyond Microservices: RCA for LLM inference
deployments, §5.5–5.6) asks of an RCA for LLM serving: a definition of a
healthy replica (robust per-signal baselines learned from the normal
window), a latency decomposition (mesh latency = engine queueing + prefill /
TTFT + decode / inter-token latency + network), fault propagation along the
call graph (upstream symptoms explained by a downstream anomaly are
discounted), replica peers (load redistribution moves healthy replicas
together) and the accelerator signals that reveal a power cap (power pinned
at its limit, SM clock fall, DCGM clock-event bit 0x4).  Robust z-scores
follow the median/MAD practice of NSigma/BARO-style detectors (Pham et al.,
BARO, FSE 2024); the upstream discount follows the propagation reasoning of
graph-based RCA (MicroRCA, Wu et al., NOMS 2020) applied to latency
quantiles.

Offline, :meth:`LlmRca.rank` learns the baseline from the case's normal
window and judges the window after the injection time.  Online, a heal loop
calls :meth:`LlmRca.fit_normal` once on a healthy frame and
:meth:`LlmRca.decide` on each sliding window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.llm import serving
from llmrca.methods.llm import signals as S
from llmrca.methods.llm.baseline import NormalModel, WindowStats, with_derived
from llmrca.methods.llm.evidence import ABSTAIN_NEEDS, FLAG, ComponentEvidence, Evidence, Signal, nothing_wrong
from llmrca.methods.llm.explain import sentence
from llmrca.methods.llm.logs import LogBaseline
from llmrca.methods.llm.propagation import LatencyResidual, carries_own_requests, residuals
from llmrca.model import Case, Ranking, Topology, components_of
from llmrca.telemetry.vocabulary import canonical_frame

FAULT_NAMES = ("cpu", "memory", "network", "gpu", *serving.SERVING_TYPES)

#: Default abstention threshold, in threshold multiples of the strongest firm evidence: 1 = one signal leaves its
#: z_threshold band.  Checked on simulated campaigns with seeds 1-5 (profile quick + 8 healthy cases each,
#: benchmarks/llm_abstain.py): healthy windows reach at most 0.67, faults at least 5.12 (with the mesh means).
ABSTAIN_BELOW = 1.0

#: Most network evidence scrape gaps carry on a component whose own latency did not rise (threshold multiples).
GAPS_ALONE = 1.0


@dataclass
class LlmRcaConfig(Config):
    """Options of :class:`LlmRca`; every default has a physical or statistical meaning.

    ``z_threshold``: robust standard deviations that count as a clear change
    (3 σ, the usual control-chart limit).  ``rel_floor``: changes below this
    share of a signal's level are noise whatever its normal variance (2 %).
    ``power_tolerance``: power within this share of the limit is "at the cap"
    (3 %, the regulation band of NVIDIA's power management).  ``min_strength``:
    below this strength (threshold multiples) the fault type is ``unknown``.
    ``use_logs``: read log lines (OOM kills, restarts, timeouts).  ``cap``:
    largest strength one signal can carry.  ``abstain_below``: answer "no
    root cause" (an abstention; the ranking is kept for information) when no
    component's evidence reaches this many threshold multiples
    (:func:`~llmrca.methods.llm.evidence.nothing_wrong`); None: always name a
    culprit.  It never abstains on a window lacking the engine latency
    decomposition or the accelerator power signals (the paper's basic set),
    where a weak fault and noise look alike.
    """

    z_threshold: float = 3.0
    rel_floor: float = 0.02
    power_tolerance: float = 0.03
    min_strength: float = 1.0
    use_logs: bool = True
    cap: float = 100.0
    abstain_below: float | None = ABSTAIN_BELOW


class LlmRca(Method):
    """Serving-aware RCA: ranks components and names the fault type with its evidence."""

    name = "llm-rca"
    config_cls = LlmRcaConfig

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._normal: NormalModel | None = None
        self._normal_values: np.ndarray | None = None
        self._logs: LogBaseline = LogBaseline()
        self._topology: Topology | None = None
        self._renamed: dict[str, str] = {}

    # -- online API -------------------------------------------------------------
    def fit_normal(self, frame: pd.DataFrame, *, topology: Topology | None = None, logs: pd.DataFrame | None = None) -> LlmRca:
        """Learn what healthy looks like from a frame of ``time`` + ``<component>_<metric>`` columns.

        Column names may be any exporter's (see :mod:`llmrca.telemetry.vocabulary`); they are
        read by their meaning, and the answer names the original columns.
        """
        cfg = self.config
        frame, self._renamed = canonical_frame(frame)
        frame = with_derived(frame)
        self._normal = NormalModel.fit(frame, rel_floor=cfg.rel_floor)
        cols = self._normal.index.columns
        if list(frame.columns) == ["time", *cols]:
            self._normal_values = frame.to_numpy(dtype=float)[:, 1:]
        else:
            self._normal_values = frame.reindex(columns=cols).to_numpy(dtype=float)
        self._topology = topology
        comps = list(topology.nodes) if topology is not None else components_of(self._normal.index.columns)
        self._logs = LogBaseline.fit(logs, self._normal.duration_s, comps) if cfg.use_logs else LogBaseline()
        return self

    def decide(self, window: pd.DataFrame, *, logs: pd.DataFrame | None = None, candidates: list[str] | None = None) -> Ranking:
        """Rank components for one window (the rows since the injection / alert)."""
        if self._normal is None or self._normal_values is None:
            raise RuntimeError("llm-rca: call fit_normal(frame) on a healthy window before decide(window)")
        window, _ = canonical_frame(window)
        return self._decide(window, logs, candidates)

    # -- offline API ---------------------------------------------------------------
    def _rank(self, case: Case) -> Ranking:
        df, renamed = canonical_frame(case.metrics)
        # One conversion to a single float block: slicing a wide frame column by column is slow.
        cols = [c for c in df.columns if c != "time"]
        t = df["time"].to_numpy(dtype=float)
        x = np.column_stack([t, df[cols].to_numpy(dtype=float)])
        end = case.fault_end
        in_w = t >= case.inject_time
        if end is not None:
            in_w &= t <= end
        xn, xw = x[t < case.inject_time], x[in_w]
        # Missing data is evidence: a series absent before the injection and present after it
        # (an error counter that first appears, a restart count) started from nothing.
        with np.errstate(invalid="ignore"):
            appeared = np.isnan(xn).all(axis=0) & np.isfinite(xw).any(axis=0) if len(xn) else np.zeros(x.shape[1], bool)
        if appeared.any():
            xn = xn.copy()
            xn[:, appeared] = 0.0
        appeared_cols = [cols[j - 1] for j in np.flatnonzero(appeared) if j > 0]  # column 0 of x is time
        if len(xn) < 3:  # the case lacks what the method reads (evaluate: unavailable, not a failed run)
            raise MethodUnavailable(f"llm-rca needs at least 3 rows before the injection to learn a baseline; the case has {len(xn)}")
        normal = pd.DataFrame(xn, columns=["time", *cols])
        window = pd.DataFrame(xw, columns=["time", *cols])
        logs_n = logs_w = None
        if case.logs is not None and not case.logs.empty and "time" in case.logs.columns:
            lt = case.logs["time"].to_numpy(dtype=float)
            logs_n = case.logs[(lt >= float(normal["time"].min())) & (lt < case.inject_time)]
            logs_w = case.logs[lt >= case.inject_time]
        self.fit_normal(normal, topology=case.topology, logs=logs_n)
        self._renamed = renamed
        return self._decide(window, logs_w, list(case.components), appeared_cols)

    # -- the decision ------------------------------------------------------------------
    def _decide(self, window: pd.DataFrame, logs: pd.DataFrame | None, candidates: list[str] | None, appeared: list[str] | tuple[str, ...] = ()) -> Ranking:
        cfg = self.config
        nm = self._normal
        assert nm is not None and self._normal_values is not None
        ws = WindowStats.of(with_derived(window), nm.index)
        comps = list(candidates) if candidates else (list(self._topology.nodes) if self._topology else components_of(nm.index.columns))
        have = nm.index.signals()
        # Replicas: components that carry an accelerator or an engine (what the data shows, not their names).
        replicas = [c for c in comps if any(s in nm.index.where.get(c, {}) for s in (S.GPU_UTIL, S.E2E90, S.RUNNING))]
        ev = Evidence(nm, ws, self._normal_values, z_threshold=cfg.z_threshold, power_tolerance=cfg.power_tolerance, cap=cfg.cap, replicas=replicas)
        log_excess = self._logs.excess(logs, ws.duration_s) if cfg.use_logs and self._logs.present else {}
        callees = {c: [d for d in self._topology.callees(c) if d in comps] for c in comps} if self._topology else {}
        res = residuals(ev, comps, callees)

        evid: dict[str, ComponentEvidence] = {}
        for c in comps:
            ce = ComponentEvidence(c)
            le = log_excess.get(c, {})
            ev.cpu(ce)
            ev.memory(ce, le)
            ev.gpu(ce, le)
            ev.engine(ce)
            ev.network_gaps(ce, le)
            self._latency(ev, ce, res[c], callees.get(c, []))
            serving.add_evidence(ev, ce, le)
            evid[c] = ce

        if cfg.use_logs and self._logs.present:
            # log evidence shows its matching line counts: expected at the normal rate -> seen in the window
            counts = self._logs.counts(logs, ws.duration_s)
            for c, ce in evid.items():
                for sg in ce.signals:
                    if sg.signal.startswith("log:"):
                        n, exp = counts.get(c, {}).get(sg.signal[4:], (0, 0.0))
                        sg.normal, sg.window = round(exp, 1), float(n)
        for col in appeared:
            c, sig = col.partition("_")[0], col.partition("_")[2]
            if c in evid:
                # missing data is evidence: a series that only exists since the fault (errors, preemptions, restarts)
                evid[c].add(Signal(c, sig, "health", FLAG, 0.0, ev.window_of(c, sig, "max"), "series appeared with the fault (absent before)"))
        scores = {c: evid[c].score for c in comps}
        order = sorted(range(len(comps)), key=lambda k: (-scores[comps[k]], k))
        ranked = [comps[k] for k in order]
        top = ranked[0]
        fault = self._fault_type(evid[top])
        upstream = self._explained_upstream(ranked, res, evid)
        lacking = [g for g, sigs in S.GROUPS.items() if not any(s in have for s in sigs)]
        power = S.GROUPS["accelerator power"]
        if any(s in have for s in power):  # per replica: one whose GPU series are missing cannot be cleared of a GPU fault
            unseen = [c for c in replicas if not any(s in nm.index.where.get(c, {}) for s in power)]
            if unseen:
                lacking.append(f"accelerator power of {', '.join(unseen)}")
        if self._topology is None or not self._topology.edges:
            lacking.append("call graph (upstream symptoms not discounted)")
        if cfg.use_logs and not self._logs.present:
            lacking.append("logs")
        lacking += serving.lacking_serving(set(have), cfg.use_logs and self._logs.present)
        explanation = {
            "summary": sentence(top, evid[top], fault, res.get(top), S.E2E90 in have, upstream),
            "culprit": top,
            "fault_type": fault,
            "confidence": round(float(min(1.0, evid[top].score / (evid[top].score + (scores[ranked[1]] if len(ranked) > 1 else 0.0) + 1e-9))), 3),
            "hypotheses": {c: {h: round(v, 3) for h, v in evid[c].strengths.items() if v > 0} for c in ranked[:3]},
            "signals": [s.to_dict() for s in sorted(evid[top].signals, key=lambda s: -s.strength)[:8]],
            "upstream_explained": upstream,
            "lacking": lacking,
            "metric_columns": len(nm.index.columns),
            "columns_read_as": {new: old for new, old in self._renamed.items() if new in set(nm.index.columns)},
        }
        metrics = [(self._renamed.get(col, col), v) for col, v in self._metric_ranking(ranked, evid, have_cols=set(nm.index.columns))]
        quiet, level = nothing_wrong(evid, cfg.abstain_below, lacking)
        explanation["alarm_level"] = round(level, 3)
        if quiet:
            explanation["summary"] = (
                f"no root cause: no component's evidence leaves its healthy-baseline band (strongest: {top}, "
                f"{level:.2f} threshold multiples < {cfg.abstain_below:g})"
            )
            explanation["abstained"] = True
            # no culprit is presented: the strongest component is kept for information only
            explanation.pop("culprit", None)
            explanation.pop("fault_type", None)
            explanation["ranking_for_information"] = (
                f"strongest {top} ({fault}, share {explanation.pop('confidence')}); the answer is no root cause"
            )
        elif cfg.abstain_below is not None and level < cfg.abstain_below:
            explanation["not_abstained"] = (
                f"evidence below {cfg.abstain_below:g} but the window lacks {', '.join(g for g in lacking if g.split(' of ')[0] in ABSTAIN_NEEDS)}: "
                "a weak fault and noise look alike, so a culprit is still named"
            )
        ranking = Ranking(components=ranked, scores=[float(scores[c]) for c in ranked], metrics=metrics, explanation=explanation,
                          fault_type="unknown" if quiet else fault, abstained=quiet, confidence=level)
        return ranking

    def _latency(self, ev: Evidence, ce: ComponentEvidence, r: LatencyResidual, callees: list[str]) -> None:
        """Assign the unexplained mesh-latency rise to a hypothesis."""
        c = ce.component
        share_sig = self._share_signal(ev, c)
        if share_sig is not None and not callees:
            # A replica with its engine latency known: the network's share of each request,
            # sample by sample, says directly whether the network slowed it.
            # The gap between mesh and engine latency is the network *or* time queued in the
            # replica before its engine (a load symptom).  Only a network-specific cue (the pod's
            # own scrapes going missing, timeout log lines) makes it network evidence in full.
            share = ev.up_before(c, share_sig, ev.outage_row(c))
            corroborated = self._network_cue(ce) or self._not_queueing(ev, c, share_sig)
            ce.latency_residual = share
            note = "mesh latency beyond the engine's own" + ("" if corroborated else " (uncorroborated: may be replica queueing; half weight)")
            ce.add(Signal(c, share_sig, "network", share if corroborated else 0.5 * share, ev.normal_of(c, share_sig), ev.window_of(c, share_sig, "q75"), note,
                          weak=not corroborated))
            self._weigh_gaps(ce)
            return
        ce.latency_residual = r.residual
        if r.residual <= 0:
            self._weigh_gaps(ce)
            return
        d90 = r.delta_s.get(S.LAT90, float("nan"))
        d = Signal(c, r.signal, "network", r.residual, ev.normal_of(c, r.signal), ev.window_of(c, r.signal, "q75"), "mesh latency beyond engine and callees")
        if not callees and c in ev.replicas and not carries_own_requests(ev, c):
            # A pod whose mesh edge carries requests served by any replica (a proxy on every pod): its rise
            # beyond its peers' is a mean over a quarter of the traffic, noisy over a minute.  Network
            # evidence in full only with a network-specific cue or with the replica getting less work
            # (a delayed replica's queue-length replies come late, so the router passes it over).
            corroborated = self._network_cue(ce) or ev.down(c, S.RUNNING) >= 1.0
            if not corroborated:
                d.strength, d.weak = 0.5 * d.strength, True
                d.note += " (a mean over requests served by any replica, uncorroborated: half weight)"
            ce.add(d)
            self._weigh_gaps(ce)
            return
        if callees or c not in ev.replicas or ev.col(c, S.E2E90) is not None:
            # For a proxy (or with the engine's own latency known) the residual is the network's.
            ce.add(d)
            return
        # Basic metric set on a replica: latency rose and no engine decomposition says why.
        # Two physical tells remain.  A delay on the pod's incoming traffic also delays the
        # scrapes (missing samples); a power-capped GPU at the same load runs each step longer,
        # so its utilisation rises beyond its peers', while a delayed pod gets less work.
        gaps = ce.strengths.get("network", 0.0) if any(sg.signal == "scrape gaps" for sg in ce.signals) else 0.0
        busier = ev.up(c, S.GPU_UTIL)
        d50 = r.delta_s.get(S.LAT50, float("nan"))
        m50, m90 = ev.normal_of(c, S.LAT50), ev.normal_of(c, S.LAT90)
        if m50 and m90 and np.isfinite(d50) and np.isfinite(d90) and d90 > 0 and m90 > m50 > 0:
            ce.basic_latency_shape = float(d50 / d90)
        power_cue = any(sg.hypothesis == "gpu" and sg.strength >= 1.0 and sg.signal in (S.POWER, S.POWER_LIMIT, S.THROTTLE, S.POWER_VIOLATION)
                        for sg in ce.signals)  # gpu() ran first
        if gaps < 1.0 and power_cue:
            d.hypothesis = "gpu"
            d.note = "latency rose with the GPU's power cue (a capped accelerator runs each step longer)"
        elif gaps < 1.0 and busier * self.config.z_threshold >= 1.0:
            d.hypothesis = "gpu"
            # two independent tells agree: the latency rise and the busier accelerator
            d.strength = r.residual + busier
            d.note = "latency rose while the GPU is busier than its peers (slower accelerator" + (
                "; power signals absent)" if ev.col(c, S.POWER) is None else "; no power cue)")
        else:
            d.note = "latency rose with no resource change" + (" and scrapes went missing" if gaps >= 1.0 else "") + (
                " (network; GPU power signals absent)" if ev.col(c, S.POWER) is None else " (network; no GPU power cue)")
        ce.add(d)
        self._weigh_gaps(ce)

    @staticmethod
    def _network_cue(ce: ComponentEvidence) -> bool:
        """A network-specific signal of the component at a threshold or more (its scrapes going missing, timeout lines)."""
        return any(sg.hypothesis == "network" and sg.strength >= 1.0 for sg in ce.signals)

    @staticmethod
    def _not_queueing(ev: Evidence, component: str, share_sig: str) -> bool:
        """Whether the replica's load rules out queueing as the reason for the mean share's rise.

        Requests wait before the engine (the server's accept backlog, Ray Serve's handle) only when
        the replica is saturated, and then its engine load rises too.  A replica whose running and
        waiting requests did not rise beyond their band (a delayed pod gets *less* work from the
        router) cannot explain its mean share that way: the network does.  Only for the exact
        mean share (the p90 share moves with the buckets) and only when the engine load is exported.
        """
        if share_sig != S.NET_SHARE_MEAN or ev.col(component, S.RUNNING) is None:
            return False
        return max(ev.up(component, S.RUNNING), ev.up(component, S.WAITING)) < 1.0

    @staticmethod
    def _share_signal(ev: Evidence, component: str) -> str | None:
        """The network-share series of a replica: from the means when it has them, else from the p90s; or None.

        The mean share (mesh mean − engine mean, histogram ``_sum`` / ``_count``) is exact; the p90
        share is interpolated inside the histograms' buckets and can hide a delay the buckets are
        too wide to resolve (Istio's 2.5 s .. 5 s bucket for whole LLM requests).  A replica with
        the mesh mean but not the engine's gets None: its mean's residual (:mod:`.propagation`)
        is read instead of a p90 share that cannot move.

        The share is the network's only if the pod's mesh edge carries the requests its own engine
        serves.  With a Serve proxy on every pod (the paper's Fig. 4: the gateway picks any pod,
        whose proxy hands the request to any replica over Ray's actor calls, which bypass the mesh)
        the edge into a pod carries the requests that *entered* there, and the engine's latency is
        of other requests.  The healthy window tells the two apart: where the latency decomposes,
        subtracting the engine's latency removes most of the mesh latency's spread; where it does
        not, the difference moves as much as the mesh latency itself.  Such a replica gets None
        (its mesh latency is then read against its peers', :func:`.propagation.carries_own_requests`).
        """
        if not carries_own_requests(ev, component):
            return None
        if ev.col(component, S.NET_SHARE_MEAN) is not None:
            return S.NET_SHARE_MEAN
        if ev.col(component, S.LAT_MEAN) is not None:
            return None
        return S.NET_SHARE if ev.col(component, S.NET_SHARE) is not None else None

    @staticmethod
    def _weigh_gaps(ce: ComponentEvidence) -> None:
        """Scrape gaps without a latency rise on the same component are a weak network cue (at most one threshold).

        A delay in front of a pod slows its scrapes, but scrapes also go missing on a loaded
        machine; only with the component's own mesh latency up are they network evidence in full.
        So gaps on a healthy peer never outvote a clear latency rise on the delayed replica.
        """
        latency = {S.LAT50, S.LAT90, S.LAT_MEAN, S.NET_SHARE, S.NET_SHARE_MEAN}
        rose = max((sg.strength for sg in ce.signals if sg.hypothesis == "network" and sg.signal in latency), default=0.0)
        if rose >= 1.0:
            return
        for sg in ce.signals:
            if sg.signal == "scrape gaps" and sg.strength > GAPS_ALONE:
                sg.strength = GAPS_ALONE
                sg.note += "; no latency rise here: a weak cue"
        ce.strengths["network"] = ce.combined("network")

    def _fault_type(self, ce: ComponentEvidence) -> str:
        return serving.refine(ce, self._paper_fault_type(ce))

    def _paper_fault_type(self, ce: ComponentEvidence) -> str:
        s = {h: v for h, v in ce.strengths.items() if h not in serving.SERVING_TYPES}
        if s["health"] >= FLAG and ce.memory_cue:
            # An OOM-killed replica also fails its in-flight requests and misses scrapes: its
            # latency and gap symptoms follow from the kill, so memory takes precedence.
            return "memory"
        best = max(s, key=lambda h: (s[h], -list(s).index(h)))
        if s[best] < self.config.min_strength:
            return "unknown"
        if best == "health":
            return "memory" if ce.memory_cue else "unknown"
        return best

    def _explained_upstream(self, ranked: list[str], res: dict[str, LatencyResidual], evid: dict[str, ComponentEvidence]) -> dict[str, str]:
        """Callers whose latency rose but is explained downstream, mapped to the explaining culprit."""
        out: dict[str, str] = {}
        top = ranked[0]
        for c, r in res.items():
            if c == top or r.explained_by is None:
                continue
            rise = max((v for v in r.delta_s.values() if np.isfinite(v)), default=0.0)
            i = self._normal.index.get(c, r.signal) if self._normal else None
            if i is None or rise <= self.config.z_threshold * self._normal.scale[i]:
                continue
            if r.residual < 1.0:
                # Follow the explaining callee down to the component that holds the anomaly.
                cause = r.explained_by
                seen = {c}
                while cause in res and res[cause].explained_by and res[cause].residual < 1.0 and cause not in seen and evid[cause].score < FLAG:
                    seen.add(cause)
                    cause = res[cause].explained_by
                out[c] = cause
        return out

    @staticmethod
    def _metric_ranking(ranked: list[str], evid: dict[str, ComponentEvidence], have_cols: set[str]) -> list[tuple[str, float]]:
        out: list[str] = []
        for c in ranked:
            seen: set[str] = set()
            for s in sorted(evid[c].signals, key=lambda s: -s.strength):
                col = f"{c}_{s.signal}"
                if col in have_cols and col not in seen:
                    seen.add(col)
                    out.append(col)
        n = len(out)
        return [(col, float(n - k)) for k, col in enumerate(out)]
