"""The time-stepped model of the serving stack.

One tick (``SimConfig.tick_s``, default 200 ms) advances every replica at
once with numpy over all in-flight requests (a fluid model of continuous
batching): each replica first prefills the requests it admits this tick
(compute bound, on the GPU, plus tokenisation on the CPU), then spends the
rest of the tick in decode steps whose length comes from the shared GPU
performance model (:mod:`llmrca.testbed.gpu`) plus the CPU-side work per step
and per token divided by the CPU share the engine gets in its pod's cgroup.
Every running request gains ``time / step`` tokens.  Discrete events
(arrivals and routing, completions, time-outs, OOM kills, restarts) are
handled at tick granularity, with completion and first-token instants
interpolated inside the tick.

Faults act on the mechanisms, never on the telemetry, and only through the
hooks of :class:`~llmrca.testbed.sim.faults.SimFault` (the fault types are
the ``Sim...`` classes of :mod:`llmrca.faults`):

* CPU hog: stress threads join the pod's cgroup; under the CFS quota every
  runnable thread gets ``quota / threads`` of a core, so the engine's CPU
  work stretches and steps get longer.
* memory leak: the stressor's bytes count against the pod's limit; at the
  limit the kernel kills the process with the highest ``oom_score_adj`` —
  the Ray worker running the replica (Ray sets 1000 for its workers) — whose
  requests fail; the Serve controller restarts it after a delay.
* network delay: every request into the target pod (and every scrape of it)
  waits ``latency ± jitter`` (netem's correlated jitter).
* GPU power cap: :meth:`GpuModel.set_power_limit`; the SM clock falls, so
  prefill and the SM-bound part of decode slow down.

The engine records counters and gauges at every scrape instant and the
per-request / per-tick raw observations; :mod:`.observe` turns them into
metric frames as Prometheus would.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, worker_name
from llmrca.testbed.base import component_role
from llmrca.testbed.gpu import GpuModel
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.faults import SimFault
from llmrca.testbed.sim.workload import Workload

GIB = float(2**30)

# request status
PENDING, ACTIVE, DONE, FAILED = 0, 1, 2, 3

#: Per-pod snapshot series (shape: scrapes × pods).
POD_SERIES = ("cpu_s", "cfs_throttled_s", "mem_ws", "rx_bytes", "tx_bytes", "mem_failcnt", "tx_packets")
#: TCP's initial congestion window (segments, RFC 6928; Linux's default) and one segment's payload (bytes)
INIT_CWND, MSS_BYTES = 10.0, 1448.0
#: Per-replica snapshot series (shape: scrapes × replicas).
REPLICA_SERIES = (
    "gpu_busy_s",
    "gpu_mem_busy_s",
    "gpu_tensor_s",
    "power_w",
    "sm_clock_mhz",
    "throttle",
    "fb_used_mib",
    "power_limit_w",
    "running",
    "waiting",
    "kv_usage",
    "prompt_tokens",
    "gen_tokens",
    "preemptions",
    "success",
    "replica_starts",
    "healthy",
    "errors",
    "up",
)
#: Per-replica series beyond the paper's (shape: scrapes × replicas), kept apart so the paper's raw output is unchanged.
EXTRA_REPLICA_SERIES = ("gpu_temp_c", "thermal_violation_us", "xid", "gpu_lost")
#: Per-pod series beyond the paper's (shape: scrapes × pods).
EXTRA_POD_SERIES = ("cpu_pressure_s", "node_cpu_s", "tcp_retrans")


@dataclass
class GpuCoefficients:
    """The GPU model's step-time equations as vector coefficients (probed, not copied)."""

    weights_s: float  # decode step time of the weights read (memory bound)
    per_ctx_token_s: float  # extra decode time per KV-cache token read
    per_seq_compute_s: float  # compute time per sequence in a decode step
    prefill_per_token_s: float
    sm_share: float

    @classmethod
    def probe(cls, gm: GpuModel) -> GpuCoefficients:
        """Read the coefficients off ``gm``'s step-time functions at nominal clocks."""
        big = 1_000_000
        a = gm.decode_step_s(1, 0, load=0.0)
        b = (gm.decode_step_s(1, big, load=0.0) - a) / big
        c = gm.decode_step_s(big, 0, load=0.0) / big
        return cls(a, b, c, gm.prefill_s(1, load=0.0), gm.model.decode_sm_share)

    def decode_s(self, batch: np.ndarray, ctx: np.ndarray, slow: np.ndarray) -> np.ndarray:
        """Decode step time (s) per replica for ``batch`` sequences and ``ctx`` KV tokens, the SM part stretched by ``slow`` (all shape ``(R,)``)."""
        base = np.maximum(self.weights_s + self.per_ctx_token_s * ctx, self.per_seq_compute_s * batch)
        return base * ((1.0 - self.sm_share) + self.sm_share * slow)


@dataclass
class SimResult:
    """A run's raw observations: per-scrape counters/gauges, per-request arrays, per-tick token gaps, events, the achieved fault."""
    cfg: SimConfig
    components: list[str]  # pods: replicas' pods (head first), gateway, operator
    n_replicas: int
    record_start: float
    t_end: float
    scrape_t: np.ndarray
    pod: dict[str, np.ndarray]
    rep: dict[str, np.ndarray]
    router_requests: np.ndarray  # cumulative at scrapes
    router_queued: np.ndarray
    gateway_requests: np.ndarray
    gateway_5xx: np.ndarray
    scrape_lost: np.ndarray  # (scrapes, pods) bool: pod-local endpoints not scraped
    requests: dict[str, np.ndarray]
    tick_t: np.ndarray
    itl_tokens: np.ndarray  # (ticks, replicas) decode tokens in the tick
    itl_step_s: np.ndarray  # (ticks, replicas) step time in the tick
    stall_tokens: np.ndarray  # (ticks, replicas) tokens whose gap includes a prefill
    stall_s: np.ndarray  # (ticks, replicas) that gap
    events: list[tuple[float, str, str]] = field(default_factory=list)
    achieved: dict[str, Any] = field(default_factory=dict)
    totals: dict[str, np.ndarray] = field(default_factory=dict)
    #: :data:`EXTRA_REPLICA_SERIES` and :data:`EXTRA_POD_SERIES` at the scrapes
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    #: log lines a fault wrote: (epoch s, container, message)
    fault_logs: list[tuple[float, str, str]] = field(default_factory=list)


class Simulation:
    """One stack model; :meth:`run` simulates ``[t0, t_end)`` once (construct one per run: the GPUs keep state)."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator, gpu_factory: Any = GpuModel) -> None:
        self.cfg = cfg.validate()
        self.rng = rng
        self.R = cfg.n_workers + 1
        self.components = [HEAD] + [worker_name(i) for i in range(1, cfg.n_workers + 1)] + [GATEWAY, OPERATOR]
        self.gpus = [gpu_factory() for _ in range(self.R)]
        self.coef = GpuCoefficients.probe(self.gpus[0])
        self.kv_cap = float(self.gpus[0].kv_capacity_tokens())
        self.fb_mib = self.gpus[0].framebuffer_used_mib()

    def run(self, wl: Workload, t0: float, record_start: float, t_end: float, fault: SimFault | None) -> SimResult:
        """Simulate the workload ``wl`` from ``t0`` to ``t_end`` (epoch s), recording from ``record_start``.

        ``fault`` (optional, with its remediation) acts through its hooks.
        Raises ValueError when the fault's or the remediation's target is not
        a serving pod.
        """
        state = SimRun(self, wl, t0, record_start, t_end, fault)
        for k in range(state.n_ticks):
            state.tick(k)
        return state.result()


class _Step:
    """What one engine step produced per replica (arrays of shape ``(R,)``; seconds or tokens)."""

    __slots__ = ("P_r", "cpu_work", "dec_tok", "gpu_busy", "mem_busy", "n_old", "step")

    def __init__(self, zeros: np.ndarray, debt: np.ndarray) -> None:
        # read-only zeros: every field is rebound, never written in place
        self.dec_tok = self.step = self.gpu_busy = self.mem_busy = self.cpu_work = self.n_old = zeros
        self.P_r = debt  # prefill (and CPU) time of the tick


class SimRun:
    """The state of one run and its steps: a tick is remediation, fault switches, restarts,
    arrivals and routing, CPU share, the engine step (admission, decode), time-outs, CPU and
    memory accounting, and the recording at scrapes.  Faults act only through their hooks.
    """

    def __init__(self, sim: Simulation, wl: Workload, t0: float, record_start: float, t_end: float, fault: SimFault | None) -> None:
        cfg, R = sim.cfg, sim.R
        self.sim, self.cfg, self.R, self.rng = sim, cfg, R, sim.rng
        self.dt = cfg.tick_s
        self.t0, self.record_start, self.t_end = t0, record_start, t_end
        self.n_ticks = round((t_end - t0) / self.dt)
        self.per_scrape = max(1, round(cfg.scrape_interval_s / self.dt))
        self.k_rec = round((record_start - t0) / self.dt)
        self.P = R + 2
        self.GW, self.OP = R, R + 1
        self.N = N = len(wl)
        self.arr, self.prompt, self.out = wl.arrival, wl.prompt, wl.output
        self.arr_list = wl.arrival.tolist()
        self._init_requests(N)
        self._init_replicas()
        self._init_recording()
        self._init_fault(fault)

    def _init_requests(self, N: int) -> None:
        self.rep = np.full(N, -1, dtype=np.int64)
        self.status = np.zeros(N, dtype=np.int8)
        self.running = np.zeros(N, dtype=bool)
        self.gen = np.zeros(N)
        self.t_ready = np.full(N, np.nan)
        self.t_sched = np.full(N, np.nan)
        self.t_first = np.full(N, np.nan)
        self.t_done = np.full(N, np.nan)
        self.code = np.zeros(N, dtype=np.int16)
        self.delay = np.zeros(N)
        self.pre_head = np.zeros(N)  # seconds waited before the head's mesh proxy (a gateway fault)
        self.pre_replica = np.zeros(N)  # seconds waited on the path before the replica's pod (gateway or head fault)
        self.n_pre = np.zeros(N, dtype=np.int16)
        # routing draws (two replica choices and, when every pod's proxy takes requests, the ingress pod)
        self.u = self.rng.random((N, 3 if self.cfg.ingress == "every-pod" else 2)).tolist()
        self.ingress = np.full(N, -1, dtype=np.int64)  # the pod whose Serve proxy accepted the request
        self.newflag = np.zeros(N, dtype=bool)
        self.seg_sent = np.zeros(N)  # segments of the request's response stream its proxy has sent to the gateway
        self.act = np.zeros(0, dtype=np.int64)  # in-flight request ids (routed, not finished)
        self.na = 0  # arrivals handled so far
        cfg = self.cfg
        self.req_bytes = (cfg.request_overhead_bytes + cfg.bytes_per_prompt_token * self.prompt).tolist()

    def _init_replicas(self) -> None:
        cfg, R, P = self.cfg, self.R, self.P
        self.ongoing = np.zeros(R, dtype=np.int64)
        self.alive = np.ones(R, dtype=bool)  # actor process exists and serves
        self.routable = np.ones(R, dtype=bool)  # router believes it is alive
        self.actor_frac = np.ones(R)  # share of the actor's memory / framebuffer in place
        self.debt = np.zeros(R)  # prefill time spilling into the next tick
        self.tot = {k: np.zeros(R) for k in ("prompt", "gen", "pre", "succ", "err", "starts", "gpu_busy", "gpu_mem", "gpu_tensor")}
        self.reset_at = {k: np.zeros(R) for k in ("prompt", "gen", "pre", "succ")}  # counter values at the last restart
        self.cpu_s, self.thr_s, self.rx, self.tx, self.failcnt = (np.zeros(P) for _ in range(5))
        self.restart_at = np.full(R, np.inf)
        self.healthy_at = np.full(R, np.inf)
        self.detect_at = np.full(R, np.inf)
        self.router_total = self.gw_total = self.gw_5xx = 0.0
        self.router_queue: deque[int] = deque()
        self.quota = cfg.pod_cpus
        self.mem_limit = cfg.pod_memory_gib * GIB
        self.base_mem = np.full(P, cfg.pod_base_memory_gib * GIB)
        self.base_mem[0] += cfg.head_extra_memory_gib * GIB
        self.base_mem[self.GW] = 0.18 * GIB
        self.base_mem[self.OP] = 0.09 * GIB
        self.actor_mem = cfg.actor_memory_gib * GIB
        base_cpu = np.full(R, cfg.base_cpu_cores)
        base_cpu[0] += cfg.head_extra_cpu_cores
        self.base_cpu = base_cpu
        self.ones = np.ones(R)
        self.idle_cpu = np.concatenate([base_cpu, [0.02, 0.01]])
        self.mem_prev = np.zeros(R)  # pod working sets of the last tick, when a fault models memory pressure
        self.zeros_r = np.zeros(R)
        self.no_loading = np.zeros(R, dtype=bool)
        self.next_evt = np.inf
        self.cands = list(range(R))
        self.events: list[tuple[float, str, str]] = []
        # state faults beyond the paper's act on (see EXTRA_*_SERIES); zero without such a fault
        self.kv_cap = np.full(R, self.sim.kv_cap)  # KV-cache capacity per replica (tokens)
        self.load_time = np.full(R, cfg.load_time_s)  # model load time of a (re)starting replica (s)
        self.psi_s = np.zeros(P)  # CPU pressure: seconds runnable threads waited for a CPU (PSI "some")
        self.node_other_s = np.zeros(P)  # CPU seconds of other tenants on the pod's node
        self.retrans = np.zeros(P)  # TCP segments retransmitted by the pod's node
        self.tx_pk = np.zeros(P)  # segments the pod transmitted (cAdvisor's container_network_transmit_packets_total)
        self.gpu_lost = np.zeros(R, dtype=bool)  # the GPU fell off the bus (DCGM cannot read it)
        self.xid = np.zeros(R)  # last Xid error of the GPU (DCGM_FI_DEV_XID_ERRORS)
        self.gpu_temp = np.full(R, np.nan)  # GPU temperature set by a fault (C); NaN: from the power draw
        self.thermal_us = np.zeros(R)  # cumulative µs of thermal clock slowdown
        self.fault_logs: list[tuple[float, str, str]] = []
        self.path_on = False
        self.routing_i = -1  # index of the request being routed, while a fault's delay hook runs

    def _init_recording(self) -> None:
        R, P = self.R, self.P
        n = self.n_rec_ticks = self.n_ticks - self.k_rec
        S = self.S = n // self.per_scrape
        self.pod_s = {k: np.zeros((S, P)) for k in POD_SERIES}
        self.rep_s = {k: np.zeros((S, R)) for k in REPLICA_SERIES}
        self.router_s, self.rqueue_s, self.gw_s, self.gw5_s, self.scrape_t = (np.zeros(S) for _ in range(5))
        self.lost = np.zeros((S, P), dtype=bool)
        self.itl_tok, self.itl_step, self.stall_tok, self.stall_s = (np.zeros((n, R)) for _ in range(4))
        self.tick_t = self.record_start + self.dt * np.arange(n) + self.dt
        self.busy_rec0 = self.zeros_r
        self.ext_rep_s = {k: np.zeros((S, R)) for k in EXTRA_REPLICA_SERIES}
        self.ext_pod_s = {k: np.zeros((S, P)) for k in EXTRA_POD_SERIES}

    def _init_fault(self, fault: SimFault | None) -> None:
        names = self.sim.components[: self.R]
        placeable = self.sim.components
        self.fault = None if fault is None else copy.copy(fault)  # a remediation may end the fault early: work on a copy
        self.tgt = self.rt = -1
        self.path_all = True
        self.cwnd_rtt = self.cwnd_rtt_on = 0.0
        self.probe_ok_t = -np.inf if fault is None else float(fault.start)  # the router's cached answer of the target
        self.remedy_due = False
        self.h_tick = self.h_slow = self.h_step = self.h_memory = self.h_kv = None  # the fault's hooks that do something
        if self.fault is None:
            return
        f = self.fault
        self.h_tick, self.h_slow, self.h_step, self.h_memory = (
            getattr(f, name) if getattr(type(f), name) is not getattr(SimFault, name) else None
            for name in ("on_tick", "gpu_slowdown", "after_step", "on_memory")
        )
        self.h_kv = f.kv_capacity if type(f).kv_capacity is not SimFault.kv_capacity else None
        if f.target not in names and (f.target not in placeable or component_role(f.target) not in f.roles):
            where = [c for c in placeable if component_role(c) in f.roles]
            raise ValueError(f"fault target {f.target!r} is not a serving pod ({', '.join(names)}) nor another component a {f.type!r} fault applies to ({', '.join(where)})")
        f.bind(self)
        self.tgt = self.rt = f.tgt
        # a proxy target slows every request (the gateway; the head when it relays them all) or only those
        # that entered through its own Serve proxy
        self.path_all = self.relays_every_request(f.tgt)
        # the round trip of a stream out of a delayed pod (the fault's delay), while the fault is on
        self.cwnd_rtt_on = float(getattr(f, "lat", 0.0)) if f.delay_per_crossing and f.delays_requests else 0.0
        self.remedy_due = f.remedy is not None and f.remedy_at is not None
        if self.remedy_due and f.remedy_target is not None:
            if f.remedy_target not in names:
                raise ValueError(f"remediation target {f.remedy_target!r} is not a serving pod ({', '.join(names)})")
            self.rt = names.index(f.remedy_target)

    # ------------------------------------------------------------------------------------
    def tick(self, k: int) -> None:
        """Advance the model by one tick (the ``k``-th, starting at ``t0 + k * tick_s``)."""
        t = self.t0 + k * self.dt
        t1 = t + self.dt
        if self.remedy_due and t >= self.fault.remedy_at:
            self._remediate(t)
        f = self.fault
        on = f is not None and f.start <= t < f.end
        if self.h_tick is not None:
            self.h_tick(self, t, on)
        if t >= self.next_evt:  # restarts (scalar check first: most ticks have no event)
            self.next_evt, self.cands = self._events(t)
        loading = np.isfinite(self.healthy_at) if self.next_evt < np.inf else self.no_loading
        delayed = on and f.delays_requests
        self.cwnd_rtt = self.cwnd_rtt_on if delayed else 0.0
        self.path_on = on and f.delays_path
        if self.h_kv is not None:
            self.kv_cap = self.h_kv(self, np.full(self.R, self.sim.kv_cap), on)
        self._arrivals(t, t1, delayed)
        self._expire_router_queue(t)
        share = self._cpu_share(on)
        slow = self.ones if self.h_slow is None else self.h_slow(self, self.ones)
        st = self._engine_step(t, t1, share, slow)
        if self.h_step is not None:
            self.h_step(self, st.gpu_busy, on)
        self._gpu_accounting(st)
        self._cpu_accounting(st, loading, share, on)
        if self.h_memory is not None:
            self.h_memory(self, t1, on)
        kr = k - self.k_rec
        if kr >= 0:
            self._record(kr, t1, st, delayed)

    def _remediate(self, t: float) -> None:
        """The heal loop's action at ``t`` on the remediation target (see :data:`~.faults.REMEDIES`)."""
        f, rt = self.fault, self.rt
        self.remedy_due = False
        self.events.append((t, self.sim.components[rt], f"remediation-{f.remedy}"))
        if f.remedy in ("restart", "drain"):
            self.routable[rt] = False
            self.cands = [i for i in range(self.R) if self.routable[i]]
        if rt == self.tgt and f.remedy in f.ends_on:
            f.end = min(f.end, t)  # e.g. the stressor dies with the container
        if f.remedy == "restart":
            self.kill_actor(rt, t, 503, detect_s=None)

    def kill_actor(self, r: int, t: float, why: int, detect_s: float | None) -> None:
        """Replica ``r``'s actor dies at ``t``: its requests fail with HTTP ``why``; it restarts after the delay.

        ``detect_s``: seconds until the router notices (None: it was taken out of routing already).
        """
        cfg = self.cfg
        self.alive[r] = False
        self.actor_frac[r] = 0.0
        self.healthy_at[r] = np.inf
        self.restart_at[r] = t + cfg.restart_delay_s
        if detect_s is None:
            self.next_evt = min(self.next_evt, self.restart_at[r])
        else:
            self.detect_at[r] = t + detect_s
            self.next_evt = min(self.next_evt, self.detect_at[r])
        self.fail_replica_requests(r, t, why)

    def fail_replica_requests(self, r: int, t: float, why: int) -> None:
        """Every in-flight request on replica ``r`` fails at ``t`` with HTTP status ``why``."""
        victims = self.act[self.rep[self.act] == r]
        if victims.size:
            self._fail(victims, t, why)
            self.act = self.act[self.status[self.act] == ACTIVE]

    def _fail(self, ids: np.ndarray, t: float, why: int) -> None:
        rep = self.rep
        self.status[ids] = FAILED
        self.running[ids] = False
        self.code[ids] = why
        self.t_done[ids] = t
        np.subtract.at(self.ongoing, rep[ids][rep[ids] >= 0], 1)
        r_ok = rep[ids][rep[ids] >= 0]
        self.tot["err"] += np.bincount(r_ok, minlength=self.R)
        self.gw_5xx += ids.size

    def _events(self, t: float) -> tuple[float, list[int]]:
        """Restarts, health and router updates due at ``t``; returns the next event time and routable replicas."""
        cfg, ev, names = self.cfg, self.events, self.sim.components
        restart_at, healthy_at, detect_at, tot = self.restart_at, self.healthy_at, self.detect_at, self.tot
        for r in np.flatnonzero(restart_at <= t):
            restart_at[r] = np.inf
            healthy_at[r] = t + self.load_time[r]
            ev.append((t, names[r], "replica-starting"))
        for r in np.flatnonzero(np.isfinite(healthy_at)):
            self.actor_frac[r] = min(1.0, 1.0 - (healthy_at[r] - t) / self.load_time[r])
            if t >= healthy_at[r]:
                healthy_at[r] = np.inf
                self.alive[r] = self.routable[r] = True
                self.actor_frac[r] = 1.0
                tot["starts"][r] += 1
                for key in self.reset_at:
                    self.reset_at[key][r] = tot[key][r]
                ev.append((t, names[r], "replica-healthy"))
        for r in np.flatnonzero(detect_at <= t):
            detect_at[r] = np.inf
            self.routable[r] = False
            ev.append((t, names[r], "replica-removed"))
        pending = np.concatenate([restart_at, detect_at, np.where(np.isfinite(healthy_at), t + cfg.tick_s, np.inf)])
        return float(pending.min()), [i for i in range(self.R) if self.routable[i]]

    # -- arrivals and routing (power of two choices on ongoing requests) -------------------
    def _arrivals(self, t: float, t1: float, delayed: bool) -> None:
        """Route the requests arriving in ``[t, t1)`` and those queued at the router.

        A Python loop over requests; with many of them, per-replica state is read and written
        through lists and put back into the arrays at the end (byte counters keep their order
        of additions, so the sums are the same to the bit).
        """
        arr, N, queue = self.arr_list, self.N, self.router_queue
        pend = list(queue) if queue else []
        queue.clear()
        j = self.na
        while j < N and arr[j] < t1:
            j += 1
        todo = pend + list(range(self.na, j))
        self.gw_total += j - self.na
        self.na = j
        if not todo:
            return
        cfg, u, cands, GW, tgt = self.cfg, self.u, self.cands, self.GW, self.tgt
        hop, cap, req_bytes = cfg.hop_latency_s, cfg.max_ongoing_requests, self.req_bytes
        many = len(todo) > 16  # Python lists index faster than arrays, but converting costs a few µs
        ongoing, alive = (self.ongoing.tolist(), self.alive.tolist()) if many else (self.ongoing, self.alive)
        rx, tx = (self.rx.tolist(), self.tx.tolist()) if many else (self.rx, self.tx)
        rep, status, t_ready, ingress, tx_pk = self.rep, self.status, self.t_ready, self.ingress, self.tx_pk
        every_pod = cfg.ingress == "every-pod"
        local = every_pod and cfg.proxy_local_routing
        R = self.R
        routed: list[int] = []
        for i in todo:
            ta = max(arr[i], t)
            u_i = u[i]
            u0, u1 = u_i[0], u_i[1]
            # the pod whose Serve proxy accepts the connection (kube-proxy: uniform over the serve service's pods)
            p = int(u_i[2] * R) if every_pod else 0
            ingress[i] = p
            m = len(cands)
            if m == 0:
                queue.append(i)
                continue
            if local and p in cands and ongoing[p] < cap:
                a = p  # the proxy prefers the replica on its own node
            else:
                a = cands[int(u0 * m)]
                if m > 1:
                    b = cands[int(u1 * (m - 1))]
                    if b == a:
                        b = cands[m - 1]
                    if delayed and tgt in (a, b) and not self._probe_in_time(ta):
                        a = b if a == tgt else a  # the target's answer missed the deadline: the other candidate
                    elif ongoing[b] < ongoing[a]:
                        a = b
            if ongoing[a] >= cap:
                queue.append(i)
                continue
            retry = 0.0
            if not alive[a]:
                # the router's call to a dead actor fails; it backs off and picks a live replica
                alt = [x for x in cands if alive[x]]
                if not alt:
                    queue.append(i)
                    continue
                self.tot["err"][a] += 1
                a = min(alt, key=lambda x: ongoing[x])
                retry = cfg.dead_replica_retry_s
            ongoing[a] += 1
            self.router_total += 1
            d = 0.0
            if delayed and (a == tgt or p == tgt):
                # netem delays what leaves the target: the replica's response stream (a == tgt); on the pod that
                # accepted the connection, the handshake's SYN-ACK (no upstream keepalive), the call it forwards to
                # another replica and the response it relays back to the gateway
                self.routing_i = i  # the request being routed (a fault's delay may depend on it)
                if p != tgt:
                    n_d = 1  # only the response stream of the target's replica
                else:  # the SYN-ACK, then the response (a == tgt) or the forwarded call and the relayed response
                    n_d = int(not cfg.upstream_keepalive) + (1 if a == tgt else 2)
                for _ in range(n_d if self.fault.delay_per_crossing else 1):
                    d += self.fault.request_delay(self)
                self.delay[i] = d
            if self.path_on and (self.path_all or p == tgt):
                self.routing_i = i
                pd = self.fault.path_delay(self)
                self.pre_replica[i] = pd
                if self.fault.path_before_head:
                    self.pre_head[i] = pd
                d += pd
            routed.append(i)
            rep[i] = a
            status[i] = ACTIVE
            t_ready[i] = ta + (2 * hop if a != p else hop) + d + retry
            b_i = req_bytes[i]
            rx[GW] += b_i
            tx[GW] += b_i
            rx[p] += b_i
            seg = 1.0 + b_i // MSS_BYTES
            tx_pk[GW] += seg
            if a != p:
                tx[p] += b_i
                rx[a] += b_i
                tx_pk[p] += seg
        if many:
            self.ongoing[:] = ongoing
            self.rx[:] = rx
            self.tx[:] = tx
        if routed:
            self.act = np.concatenate([self.act, np.asarray(routed, dtype=np.int64)])

    def _probe_in_time(self, t: float) -> bool:
        """Whether the router may use the delayed target's queue length at ``t``: a cached answer younger than
        ``router_queue_cache_s``, or a probe answered within the first deadline (which refreshes the cache)."""
        cfg = self.cfg
        if t - self.probe_ok_t < cfg.router_queue_cache_s:
            return True
        if self.fault.probe_answer_s(self) <= cfg.router_probe_deadline_s:
            self.probe_ok_t = t
            return True
        return False

    def _expire_router_queue(self, t: float) -> None:
        """Requests queued at the router longer than the gateway's time-out fail with 504."""
        queue = self.router_queue
        if not queue:
            return
        old = [i for i in queue if t - self.arr[i] > self.cfg.request_timeout_s]
        if old:
            for i in old:
                queue.remove(i)
            o = np.asarray(old)
            self.status[o] = FAILED
            self.code[o] = 504
            self.t_done[o] = t
            self.gw_5xx += len(old)

    def _cpu_share(self, on: bool) -> np.ndarray:
        """Share of its CPU work the engine gets done per second in each pod's cgroup (shape ``(R,)``)."""
        share = self.ones if self.fault is None else self.fault.cpu_share(self, self.ones, on)
        mem_prev, limit = self.mem_prev, self.mem_limit
        if mem_prev is not self.zeros_r and mem_prev.max() > 0.85 * limit:
            # near the cgroup limit every allocation enters direct reclaim: CPU work stalls
            pressure = np.clip((mem_prev / limit - 0.85) / 0.15, 0.0, 1.0)
            share = share / (1.0 + self.cfg.reclaim_stall * pressure)
        return share

    # -- the engine step (fluid continuous batching) -----------------------------------------
    def _engine_step(self, t: float, t1: float, share: np.ndarray, slow: np.ndarray) -> _Step:
        """Admit waiting requests (prefill), then decode for the rest of the tick on every replica."""
        st = _Step(self.zeros_r, self.debt)
        act = self.act
        if not act.size:
            return st
        cfg, c, R = self.cfg, self.sim.coef, self.R
        rA = self.rep[act]
        runA = self.running[act]
        rr = rA[runA]
        nrun = np.bincount(rr, minlength=R).astype(float)
        st.n_old = nrun
        kv_used = np.bincount(rr, weights=(self.prompt[act] + self.gen[act])[runA], minlength=R)
        pf_tok = n_new = self.zeros_r
        new = np.zeros(0, dtype=np.int64)
        wmask = ~runA & (self.t_ready[act] < t1)
        if wmask.any():
            new, pf_tok, n_new = self._admit(t, act[wmask], rA[wmask], kv_used, nrun)
            if new.size:
                nrun = nrun + n_new
                kv_used = kv_used + pf_tok
        gpu_pf = pf_tok * c.prefill_per_token_s * slow
        P_r = st.P_r = st.P_r + gpu_pf + pf_tok * cfg.prompt_token_cpu_s / share
        gpu_dec = c.decode_s(nrun, kv_used, slow)
        cpu_dec = (cfg.step_cpu_s + cfg.token_cpu_s * nrun) / share
        step = st.step = np.where(nrun > 0, gpu_dec + cpu_dec, 0.0)
        avail = self.dt - P_r
        self.debt = np.maximum(-avail, 0.0)
        avail = np.maximum(avail, 0.0)
        ids = act[self.running[act]]
        if ids.size:
            self._decode(st, t, t1, ids, new, n_new, kv_used)
            steps = np.where(step > 0, avail / np.where(step > 0, step, 1.0), 0.0)
            busy_steps = np.minimum(steps, np.where(nrun > 0, np.inf, 0.0))
            st.gpu_busy = gpu_pf + busy_steps * gpu_dec
            st.mem_busy = busy_steps * gpu_dec * (1.0 - c.sm_share)
            # the engine thread never sleeps while it has a batch: it does its CPU work and
            # spin-waits on the GPU (CUDA's default sync), so it burns the whole busy time
            st.cpu_work = np.minimum(P_r + busy_steps * step, self.dt)
        self._timeouts(t1)
        return st

    def _admit(self, t: float, W: np.ndarray, rW: np.ndarray, kv_used: np.ndarray, nrun: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Admit waiting requests ``W`` (on replicas ``rW``) in order while KV cache and batch slots last.

        Returns the admitted ids and, per replica, their prompt+generated tokens and count.
        """
        R, prompt, gen = self.R, self.prompt, self.gen
        o = np.argsort(rW, kind="stable")
        W, rW = W[o], rW[o]
        need = prompt[W] + gen[W]
        cs = np.cumsum(need)
        starts = np.searchsorted(rW, np.arange(R))
        before = np.concatenate([[0.0], cs])[starts]
        cs_g = cs - before[rW]
        rank = np.arange(W.size) - starts[rW]
        ok = (cs_g <= self.kv_cap[rW] - kv_used[rW]) & (rank < self.cfg.max_num_seqs - nrun[rW])
        new = W[ok]
        if not new.size:
            return new, self.zeros_r, self.zeros_r
        rn = rW[ok]
        self.running[new] = True
        pf_tok = np.bincount(rn, weights=need[ok], minlength=R)
        n_new = np.bincount(rn, minlength=R).astype(float)
        first_time = np.isnan(self.t_sched[new])
        self.tot["prompt"] += np.bincount(rn[first_time], weights=prompt[new][first_time], minlength=R)
        self.t_sched[new] = np.where(first_time, np.maximum(self.t_ready[new], t), self.t_sched[new])
        return new, pf_tok, n_new

    def _decode(self, st: _Step, t: float, t1: float, ids: np.ndarray, new: np.ndarray, n_new: np.ndarray, kv_used: np.ndarray) -> None:
        """Tokens for the running requests ``ids``: first tokens, completions, streamed bytes, KV overflow."""
        R, cfg, P_r, gen = self.R, self.cfg, st.P_r, self.gen
        rI = self.rep[ids]
        if new.size:
            self.newflag[new] = True
            isnew = self.newflag[ids]
            self.newflag[new] = False
            self.t_first[new] = np.maximum(self.t_ready[new], t) + P_r[self.rep[new]]
        else:
            isnew = np.zeros(ids.size, dtype=bool)
        s_i = st.step[rI]
        dstart = np.where(isnew, self.t_first[ids], t + P_r[rI])
        n = np.maximum(t1 - dstart, 0.0) / s_i + isnew
        remaining = self.out[ids] - gen[ids]
        inc = np.minimum(n, remaining)
        gen[ids] += inc
        tokr = np.bincount(rI, weights=inc, minlength=R)
        self.tot["gen"] += tokr
        st.dec_tok = tokr - n_new
        done = n >= remaining
        if done.any():
            dn = ids[done]
            self.t_done[dn] = dstart[done] + (remaining[done] - isnew[done]) * s_i[done]
            self.status[dn] = DONE
            self.running[dn] = False
            rd = rI[done]
            np.subtract.at(self.ongoing, rd, 1)
            self.tot["succ"] += np.bincount(rd, minlength=R)
        # streamed bytes: replica pod -> (the proxy of the pod that accepted the request) -> gateway -> client
        tok_all = float(tokr.sum())
        bpt = cfg.bytes_per_output_token
        rx, tx, GW = self.rx, self.tx, self.GW
        pI = self.ingress[ids]
        relayed = np.bincount(pI, weights=inc, minlength=R)  # tokens each pod's proxy relays to the gateway
        cross = pI != rI
        if cross.any():  # a replica on another pod streams to the proxy over the pod network
            tx[:R] += np.bincount(rI[cross], weights=inc[cross], minlength=R) * bpt
            rx[:R] += np.bincount(pI[cross], weights=inc[cross], minlength=R) * bpt
        tx[:R] += relayed * bpt
        rx[GW] += tok_all * bpt
        tx[GW] += tok_all * bpt
        # segments: one per streamed chunk (the servers set TCP_NODELAY) and a delayed ACK per two received;
        # a stream that leaves a delayed pod on the gateway's new connection is held by slow start (the
        # congestion window doubles once per round trip from INIT_CWND) and the chunks it cannot send yet are
        # coalesced into full segments: fewer packets, the same bytes
        seg = inc
        cw = self.cwnd_rtt
        if cw > 0:
            slow = (pI == self.tgt) & np.isfinite(self.t_ready[ids])
            if slow.any():
                age = np.maximum(t1 - self.t_ready[ids[slow]], 0.0)
                budget = INIT_CWND * (np.exp2(np.minimum(age / cw, 30.0)) - 1.0)
                sent = self.seg_sent[ids[slow]]
                seg = inc.copy()
                seg[slow] = np.clip(np.minimum(gen[ids[slow]], budget) - sent, 0.0, inc[slow])
        self.seg_sent[ids] += seg
        pk = self.tx_pk
        pk[:R] += np.bincount(pI, weights=seg, minlength=R)
        if cross.any():
            pk[:R] += np.bincount(rI[cross], weights=inc[cross], minlength=R)
            pk[:R] += 0.5 * np.bincount(pI[cross], weights=inc[cross], minlength=R)  # ACKs to the replica
        pk[GW] += tok_all + 0.5 * float(seg.sum())
        self.cpu_s[:R] += relayed * cfg.proxy_cpu_per_token_s
        self.cpu_s[GW] += tok_all * cfg.gateway_cpu_per_token_s
        kv_now = kv_used + tokr
        if (kv_now > self.kv_cap).any():
            self._preempt(ids, rI, np.flatnonzero(kv_now > self.kv_cap))

    def _preempt(self, ids: np.ndarray, rI: np.ndarray, over: np.ndarray) -> None:
        """KV-cache overflow on replicas ``over``: preempt their youngest running requests (recompute)."""
        prompt, gen, running = self.prompt, self.gen, self.running
        for r in over:
            cap = self.kv_cap[r]
            mine = ids[(rI == r) & running[ids]][::-1]
            excess = float((prompt[mine] + gen[mine]).sum()) - cap
            for i in mine:
                if excess <= 0:
                    break
                running[i] = False
                self.n_pre[i] += 1
                self.tot["pre"][r] += 1
                excess -= prompt[i] + gen[i]

    def _timeouts(self, t1: float) -> None:
        """Time-outs at the gateway (the client's connection is closed, the engine aborts); drop finished requests."""
        act, arr, limit = self.act, self.arr, self.cfg.request_timeout_s
        if act.size and t1 - arr[act].min() > limit:
            too_old = act[(self.status[act] == ACTIVE) & (t1 - arr[act] > limit)]
            if too_old.size:
                self._fail(too_old, t1, 504)
        keep = self.status[act] == ACTIVE
        if not keep.all():
            self.act = act[keep]

    # -- accounting -------------------------------------------------------------------------
    def _gpu_accounting(self, st: _Step) -> None:
        tot = self.tot
        tot["gpu_busy"] += st.gpu_busy
        tot["gpu_mem"] += st.mem_busy
        tot["gpu_tensor"] += st.gpu_busy - st.mem_busy

    def _cpu_accounting(self, st: _Step, loading: np.ndarray, share: np.ndarray, on: bool) -> None:
        """cAdvisor's CPU usage counter (constant parts, idle CPU and background bytes, are added at the scrape)."""
        R = self.R
        self.cpu_s[:R] += st.cpu_work
        if self.next_evt < np.inf and loading.any():
            self.cpu_s[:R] += np.where(loading, self.dt, 0.0)  # model loading keeps a core busy
        if self.fault is not None:
            self.fault.on_cpu(self, st.cpu_work, share, on)

    # -- recording ----------------------------------------------------------------------------
    def _record(self, kr: int, t1: float, st: _Step, delayed: bool) -> None:
        """Per-tick observations of recorded tick ``kr``, and a scrape when one is due."""
        if kr == 0:
            self.busy_rec0 = self.tot["gpu_busy"] - st.gpu_busy
        # a prefill in the tick stalls every running request once (its token gap includes it)
        stalled = np.where(st.P_r > 0, np.minimum(st.n_old, st.dec_tok), 0.0)
        self.itl_tok[kr] = st.dec_tok - stalled
        self.itl_step[kr] = st.step
        self.stall_tok[kr] = stalled
        self.stall_s[kr] = st.step + st.P_r
        if (kr + 1) % self.per_scrape:
            return
        s = (kr + 1) // self.per_scrape - 1
        if s >= self.S:
            return
        self._scrape_pods(s, t1)
        self._scrape_replicas(s, t1)
        self._scrape_extra(s, t1)
        self.router_s[s] = self.router_total
        self.rqueue_s[s] = len(self.router_queue)
        self.gw_s[s] = self.gw_total
        self.gw5_s[s] = self.gw_5xx
        if self.fault is not None:
            self.fault.on_scrape(self, s, delayed)

    def relays_every_request(self, pod: int) -> bool:
        """Whether every request passes through pod index ``pod``: the gateway, and the head when its Serve proxy
        accepts them all (``ingress = "head"``); with ``"every-pod"`` the head is a serving pod like a worker."""
        return pod == self.GW or (pod == 0 and self.cfg.ingress == "head")

    def inflight(self) -> np.ndarray:
        """In-flight requests per replica (shape ``(R,)``)."""
        act = self.act
        return np.bincount(self.rep[act], minlength=self.R) if act.size else np.zeros(self.R)

    def _scrape_pods(self, s: int, t1: float) -> None:
        R, cfg, ps = self.R, self.cfg, self.pod_s
        self.scrape_t[s] = t1
        el = t1 - self.t0
        ps["cpu_s"][s] = self.cpu_s + self.idle_cpu * el
        ps["cfs_throttled_s"][s] = self.thr_s
        held = self.fault.held_bytes() if self.fault is not None else 0.0
        mem = self.base_mem[:R] + self.actor_mem * self.actor_frac + cfg.request_memory_bytes * self.inflight() + held * (np.arange(R) == self.tgt)
        ps["mem_ws"][s, :R] = mem
        ps["mem_ws"][s, R:] = self.base_mem[R:]
        ps["rx_bytes"][s] = self.rx + cfg.background_bytes_s * el
        ps["tx_bytes"][s] = self.tx + cfg.background_bytes_s * el
        ps["tx_packets"][s] = self.tx_pk + cfg.background_bytes_s / 200.0 * el  # small control messages
        ps["mem_failcnt"][s] = self.failcnt

    def _scrape_replicas(self, s: int, t1: float) -> None:
        rs, tot, act, rep = self.rep_s, self.tot, self.act, self.rep
        rs["gpu_busy_s"][s] = tot["gpu_busy"]
        rs["gpu_mem_busy_s"][s] = tot["gpu_mem"]
        rs["gpu_tensor_s"][s] = tot["gpu_tensor"]
        prev = s - 1
        ubar = (tot["gpu_busy"] - (rs["gpu_busy_s"][prev] if prev >= 0 else self.busy_rec0)) / self.cfg.scrape_interval_s
        for r in range(self.R):
            g = self.sim.gpus[r]
            lo = float(np.clip(ubar[r], 0.0, 1.0))
            rs["power_w"][s, r] = g.power_w(lo)
            rs["sm_clock_mhz"][s, r] = g.sm_clock_mhz(lo)
            rs["throttle"][s, r] = g.throttle_reasons(lo)
            rs["power_limit_w"][s, r] = g.power_limit_w
        rs["fb_used_mib"][s] = self.sim.fb_mib * self.actor_frac + 420.0
        if act.size:
            ra = rep[act]
            run_a = self.running[act]
            rs["running"][s] = np.bincount(ra[run_a], minlength=self.R)
            rs["waiting"][s] = np.bincount(ra[~run_a & (self.t_ready[act] <= t1)], minlength=self.R)
            rs["kv_usage"][s] = np.bincount(ra[run_a], weights=(self.prompt[act] + self.gen[act])[run_a], minlength=self.R) / self.kv_cap
        for key, name in (("prompt", "prompt_tokens"), ("gen", "gen_tokens"), ("pre", "preemptions"), ("succ", "success")):
            rs[name][s] = tot[key] - self.reset_at[key]
        rs["replica_starts"][s] = tot["starts"]
        rs["healthy"][s] = self.alive
        rs["errors"][s] = tot["err"]
        rs["up"][s] = self.alive

    def _scrape_extra(self, s: int, t1: float) -> None:
        """The series beyond the paper's (:data:`EXTRA_REPLICA_SERIES`, :data:`EXTRA_POD_SERIES`) at scrape ``s``.

        GPU temperature follows the power draw (``gpu_ambient_c + gpu_c_per_w * W``, a heat sink at
        steady state) unless a fault set it; node CPU is the pod's own use plus other tenants'.
        """
        es, ep, cfg = self.ext_rep_s, self.ext_pod_s, self.cfg
        temp = cfg.gpu_ambient_c + cfg.gpu_c_per_w * self.rep_s["power_w"][s]
        es["gpu_temp_c"][s] = np.where(np.isfinite(self.gpu_temp), self.gpu_temp, temp)
        es["thermal_violation_us"][s] = self.thermal_us
        es["xid"][s] = self.xid
        es["gpu_lost"][s] = self.gpu_lost
        ep["cpu_pressure_s"][s] = self.psi_s + self.thr_s
        ep["node_cpu_s"][s] = self.pod_s["cpu_s"][s] + self.node_other_s + cfg.node_system_cores * (t1 - self.t0)
        ep["tcp_retrans"][s] = self.retrans

    def result(self) -> SimResult:
        """The run's recorded series, per-request arrays, events and the fault's achieved values."""
        reqs = {
            "arrival": self.arr, "prompt": self.prompt, "output": self.out, "replica": self.rep, "status": self.status,
            "gen": self.gen, "t_ready": self.t_ready, "t_sched": self.t_sched, "t_first": self.t_first, "t_done": self.t_done,
            "code": self.code, "delay": self.delay, "preemptions": self.n_pre, "ingress": self.ingress,
        }  # fmt: skip
        tot = self.tot
        totals = {"gen_tokens": tot["gen"].copy(), "prompt_tokens": tot["prompt"].copy(), "success": tot["succ"].copy(), "errors": tot["err"].copy()}
        return SimResult(
            cfg=self.cfg, components=self.sim.components, n_replicas=self.R, record_start=self.record_start, t_end=self.t_end,
            scrape_t=self.scrape_t, pod=self.pod_s, rep=self.rep_s, router_requests=self.router_s, router_queued=self.rqueue_s,
            gateway_requests=self.gw_s, gateway_5xx=self.gw5_s, scrape_lost=self.lost, requests=reqs, tick_t=self.tick_t,
            itl_tokens=self.itl_tok, itl_step_s=self.itl_step, stall_tokens=self.stall_tok, stall_s=self.stall_s,
            events=self.events, achieved=self.fault.achieved(self) if self.fault is not None else {}, totals=totals,
            extra={**self.ext_rep_s, **self.ext_pod_s, "pre_head": self.pre_head, "pre_replica": self.pre_replica}, fault_logs=list(self.fault_logs),
        )  # fmt: skip
