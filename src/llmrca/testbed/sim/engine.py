"""The time-stepped model of the serving stack.

One tick (``SimConfig.tick_s``, default 100 ms) advances every replica at
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

Faults act on the mechanisms, never on the telemetry:

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

from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, worker_name
from llmrca.testbed.gpu import GpuModel
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.faults import FaultPlan
from llmrca.testbed.sim.workload import Workload

GIB = float(2**30)

# request status
PENDING, ACTIVE, DONE, FAILED = 0, 1, 2, 3

#: Per-pod snapshot series (shape: scrapes × pods).
POD_SERIES = ("cpu_s", "cfs_throttled_s", "mem_ws", "rx_bytes", "tx_bytes", "mem_failcnt")
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
        big = 1_000_000
        a = gm.decode_step_s(1, 0, load=0.0)
        b = (gm.decode_step_s(1, big, load=0.0) - a) / big
        c = gm.decode_step_s(big, 0, load=0.0) / big
        return cls(a, b, c, gm.prefill_s(1, load=0.0), gm.model.decode_sm_share)

    def decode_s(self, batch: np.ndarray, ctx: np.ndarray, slow: np.ndarray) -> np.ndarray:
        base = np.maximum(self.weights_s + self.per_ctx_token_s * ctx, self.per_seq_compute_s * batch)
        return base * ((1.0 - self.sm_share) + self.sm_share * slow)


@dataclass
class SimResult:
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


class Simulation:
    """One run of the stack over ``[t0, t_end)``; construct, then :meth:`run`."""

    def __init__(self, cfg: SimConfig, rng: np.random.Generator, gpu_factory: Any = GpuModel) -> None:
        self.cfg = cfg.validate()
        self.rng = rng
        self.R = cfg.n_workers + 1
        self.components = [HEAD] + [worker_name(i) for i in range(1, cfg.n_workers + 1)] + [GATEWAY, OPERATOR]
        self.gpus = [gpu_factory() for _ in range(self.R)]
        self.coef = GpuCoefficients.probe(self.gpus[0])
        self.kv_cap = float(self.gpus[0].kv_capacity_tokens())
        self.fb_mib = self.gpus[0].framebuffer_used_mib()

    # ------------------------------------------------------------------------------
    def run(self, wl: Workload, t0: float, record_start: float, t_end: float, fault: FaultPlan | None) -> SimResult:
        cfg, R, rng = self.cfg, self.R, self.rng
        dt = cfg.tick_s
        n_ticks = round((t_end - t0) / dt)
        per_scrape = max(1, round(cfg.scrape_interval_s / dt))
        k_rec = round((record_start - t0) / dt)
        P = R + 2
        GW, OP = R, R + 1
        N = len(wl)
        arr, prompt, out = wl.arrival, wl.prompt, wl.output

        # -- per-request state -------------------------------------------------------
        rep = np.full(N, -1, dtype=np.int64)
        status = np.zeros(N, dtype=np.int8)
        running = np.zeros(N, dtype=bool)
        gen = np.zeros(N)
        t_ready = np.full(N, np.nan)
        t_sched = np.full(N, np.nan)
        t_first = np.full(N, np.nan)
        t_done = np.full(N, np.nan)
        code = np.zeros(N, dtype=np.int16)
        delay = np.zeros(N)
        n_pre = np.zeros(N, dtype=np.int16)
        u = rng.random((N, 2))

        # -- per-replica / per-pod state ---------------------------------------------------
        ongoing = np.zeros(R, dtype=np.int64)
        alive = np.ones(R, dtype=bool)  # actor process exists and serves
        routable = np.ones(R, dtype=bool)  # router believes it is alive
        actor_frac = np.ones(R)  # share of the actor's memory / framebuffer in place
        debt = np.zeros(R)  # prefill time spilling into the next tick
        util_prev = np.full(R, 0.5)
        tot = {k: np.zeros(R) for k in ("prompt", "gen", "pre", "succ", "err", "starts", "gpu_busy", "gpu_mem", "gpu_tensor")}
        reset_at = {k: np.zeros(R) for k in ("prompt", "gen", "pre", "succ")}  # counter values at the last restart
        cpu_s = np.zeros(P)
        thr_s = np.zeros(P)
        rx = np.zeros(P)
        tx = np.zeros(P)
        failcnt = np.zeros(P)
        restart_at = np.full(R, np.inf)
        healthy_at = np.full(R, np.inf)
        detect_at = np.full(R, np.inf)
        router_total = 0.0
        gw_total = 0.0
        gw_5xx = 0.0
        router_queue: deque[int] = deque()

        # -- recording -------------------------------------------------------------------
        n_rec_ticks = n_ticks - k_rec
        S = n_rec_ticks // per_scrape
        pod_s = {k: np.zeros((S, P)) for k in POD_SERIES}
        rep_s = {k: np.zeros((S, R)) for k in REPLICA_SERIES}
        router_s = np.zeros(S)
        rqueue_s = np.zeros(S)
        gw_s = np.zeros(S)
        gw5_s = np.zeros(S)
        lost = np.zeros((S, P), dtype=bool)
        scrape_t = np.zeros(S)
        itl_tok = np.zeros((n_rec_ticks, R))
        itl_step = np.zeros((n_rec_ticks, R))
        stall_tok = np.zeros((n_rec_ticks, R))
        stall_s = np.zeros((n_rec_ticks, R))
        tick_t = record_start + dt * np.arange(n_rec_ticks) + dt
        events: list[tuple[float, str, str]] = []

        # -- fault state -------------------------------------------------------------------
        if fault is not None and fault.remedy is not None:
            fault = replace(fault)  # a remediation may end the fault early: work on a copy
        remedy_due = fault is not None and fault.remedy is not None and fault.remedy_at is not None
        ft = fault.type if fault else None
        tgt = self.components.index(fault.target) if fault else -1
        if fault is not None and not (0 <= tgt < R):
            raise ValueError(f"fault target {fault.target!r} is not a serving pod ({', '.join(self.components[:R])})")
        rt = tgt
        if remedy_due and fault.remedy_target is not None:
            if fault.remedy_target not in self.components[:R]:
                raise ValueError(f"remediation target {fault.remedy_target!r} is not a serving pod ({', '.join(self.components[:R])})")
            rt = self.components.index(fault.remedy_target)
        fp = fault.params if fault else {}
        hog_threads = float(fp.get("workers", 0)) if ft == "cpu" else 0.0
        hog_load = float(fp.get("load", 100)) / 100.0 if ft == "cpu" else 0.0
        leak_bytes = float(fp.get("size_gb", 0.0)) * 1e9 if ft == "memory" else 0.0
        leak_alive = True
        net_prev = 0.0
        ach: dict[str, Any] = {"hog_cpu_s": 0.0, "leak_peak_bytes": 0.0, "oom_kill_s": None, "delays_s": [], "power_w": [], "sm_clock_mhz": []}
        ach_lim: float | None = None
        gpu_applied = False
        quota = cfg.pod_cpus
        mem_limit = cfg.pod_memory_gib * GIB
        base_mem = np.full(P, cfg.pod_base_memory_gib * GIB)
        base_mem[0] += cfg.head_extra_memory_gib * GIB
        base_mem[GW] = 0.18 * GIB
        base_mem[OP] = 0.09 * GIB
        actor_mem = cfg.actor_memory_gib * GIB
        base_cpu = np.full(R, cfg.base_cpu_cores)
        base_cpu[0] += cfg.head_extra_cpu_cores
        c = self.coef
        req_bytes = cfg.request_overhead_bytes + cfg.bytes_per_prompt_token * prompt
        hop = cfg.hop_latency_s
        lat, jit, corr = float(fp.get("latency_ms", 0)) / 1e3, float(fp.get("jitter_ms", 0)) / 1e3, float(fp.get("correlation", 0))

        act = np.zeros(0, dtype=np.int64)
        na = 0
        ones = np.ones(R)
        idle_cpu = np.concatenate([base_cpu, [0.02, 0.01]])
        mem_prev = np.zeros(R)
        zeros_r = np.zeros(R)
        no_loading = np.zeros(R, dtype=bool)
        next_evt = np.inf
        newflag = np.zeros(N, dtype=bool)
        cands = list(range(R))

        def fail(ids: np.ndarray, t: float, why: int) -> None:
            nonlocal gw_5xx
            status[ids] = FAILED
            running[ids] = False
            code[ids] = why
            t_done[ids] = t
            np.subtract.at(ongoing, rep[ids][rep[ids] >= 0], 1)
            r_ok = rep[ids][rep[ids] >= 0]
            tot["err"] += np.bincount(r_ok, minlength=R)
            gw_5xx += ids.size

        for k in range(n_ticks):
            t = t0 + k * dt
            t1 = t + dt
            if remedy_due and t >= fault.remedy_at:
                remedy_due = False
                events.append((t, self.components[rt], f"remediation-{fault.remedy}"))
                if fault.remedy == "restart" or fault.remedy == "drain":
                    routable[rt] = False
                    cands = [i for i in range(R) if routable[i]]
                if fault.remedy == "restart":
                    if rt == tgt and ft in ("cpu", "memory"):
                        fault.end = min(fault.end, t)  # the stressor dies with the container
                    alive[rt] = False
                    actor_frac[rt] = 0.0
                    healthy_at[rt] = np.inf
                    restart_at[rt] = t + cfg.restart_delay_s
                    next_evt = min(next_evt, restart_at[rt])
                    victims = act[rep[act] == rt]
                    if victims.size:
                        fail(victims, t, 503)
                        act = act[status[act] == ACTIVE]
                elif fault.remedy == "reset-power-limit" and rt == tgt and ft == "gpu":
                    fault.end = min(fault.end, t)
            fon = fault is not None and fault.start <= t < fault.end

            # ---- fault switches --------------------------------------------------------------
            if ft == "gpu":
                if fon and not gpu_applied:
                    ach_lim = self.gpus[tgt].set_power_limit(float(fp["power_limit_w"]))
                    gpu_applied = True
                    events.append((t, self.components[tgt], "gpu-power-limit"))
                elif not fon and gpu_applied:
                    self.gpus[tgt].set_power_limit(self.gpus[tgt].gpu.default_power_limit_w)
                    gpu_applied = False

            # ---- restarts (scalar check first: most ticks have no event) -----------------------
            if t >= next_evt:
                next_evt, cands = self._events(t, cfg, restart_at, healthy_at, detect_at, alive, routable, actor_frac, tot, reset_at, events)
            loading = np.isfinite(healthy_at) if next_evt < np.inf else no_loading
            # ---- arrivals and routing (power of two choices on ongoing requests) ---------------
            new_ids = []
            pend = list(router_queue) if router_queue else []
            router_queue.clear()
            j = na
            while j < N and arr[j] < t1:
                j += 1
            todo = pend + list(range(na, j))
            gw_total += j - na
            na = j
            delayed = fon and ft == "network"
            for i in todo:
                ta = max(arr[i], t)
                m = len(cands)
                if m == 0:
                    router_queue.append(i)
                    continue
                a = cands[int(u[i, 0] * m)]
                if m > 1:
                    b = cands[int(u[i, 1] * (m - 1))]
                    if b == a:
                        b = cands[m - 1]
                    if ongoing[b] < ongoing[a]:
                        a = b
                if ongoing[a] >= cfg.max_ongoing_requests:
                    router_queue.append(i)
                    continue
                retry = 0.0
                if not alive[a]:
                    # the router's call to a dead actor fails; it backs off and picks a live replica
                    alt = [x for x in cands if alive[x]]
                    if not alt:
                        router_queue.append(i)
                        continue
                    tot["err"][a] += 1
                    a = min(alt, key=lambda x: ongoing[x])
                    retry = cfg.dead_replica_retry_s
                rep[i] = a
                ongoing[a] += 1
                status[i] = ACTIVE
                router_total += 1
                d = 0.0
                if delayed and a == tgt:
                    net_prev = corr * net_prev + (1.0 - corr) * rng.standard_normal()
                    d = max(0.0, lat + jit * net_prev)
                    delay[i] = d
                t_ready[i] = ta + (2 * hop if a else hop) + d + retry
                rx[GW] += req_bytes[i]
                tx[GW] += req_bytes[i]
                rx[0] += req_bytes[i]
                if a:
                    tx[0] += req_bytes[i]
                    rx[a] += req_bytes[i]
                new_ids.append(i)
            if new_ids:
                act = np.concatenate([act, np.asarray(new_ids, dtype=np.int64)])
            if router_queue:
                old = [i for i in router_queue if t - arr[i] > cfg.request_timeout_s]
                if old:
                    for i in old:
                        router_queue.remove(i)
                    o = np.asarray(old)
                    status[o] = FAILED
                    code[o] = 504
                    t_done[o] = t
                    gw_5xx += len(old)

            # ---- CPU share in each pod's cgroup ------------------------------------------------
            hog_on = ft == "cpu" and fon
            share = ones
            if hog_on:
                share = ones.copy()
                share[tgt] = min(1.0, quota / (hog_threads * hog_load + cfg.engine_threads))
            if mem_prev.max() > 0.85 * mem_limit:
                # near the cgroup limit every allocation enters direct reclaim: CPU work stalls
                pressure = np.clip((mem_prev / mem_limit - 0.85) / 0.15, 0.0, 1.0)
                share = share / (1.0 + cfg.reclaim_stall * pressure)
            slow = ones
            if gpu_applied:
                slow = ones.copy()
                slow[tgt] = self.gpus[tgt].slowdown(util_prev[tgt])

            # ---- engine step (fluid continuous batching) -------------------------------------
            # read-only zeros: every name below is rebound, never written in place
            pf_tok = n_new = dec_tok = step = gpu_busy = mem_busy = cpu_work = nrun = n_old = zeros_r
            P_r = debt
            if act.size:
                rA = rep[act]
                runA = running[act]
                rr = rA[runA]
                nrun = np.bincount(rr, minlength=R).astype(float)
                n_old = nrun
                kv_used = np.bincount(rr, weights=(prompt[act] + gen[act])[runA], minlength=R)
                wmask = ~runA & (t_ready[act] < t1)
                new = np.zeros(0, dtype=np.int64)
                if wmask.any():
                    W = act[wmask]
                    rW = rA[wmask]
                    o = np.argsort(rW, kind="stable")
                    W, rW = W[o], rW[o]
                    need = prompt[W] + gen[W]
                    cs = np.cumsum(need)
                    starts = np.searchsorted(rW, np.arange(R))
                    before = np.concatenate([[0.0], cs])[starts]
                    cs_g = cs - before[rW]
                    rank = np.arange(W.size) - starts[rW]
                    ok = (cs_g <= self.kv_cap - kv_used[rW]) & (rank < cfg.max_num_seqs - nrun[rW])
                    new = W[ok]
                    if new.size:
                        rn = rW[ok]
                        running[new] = True
                        pf_tok = np.bincount(rn, weights=need[ok], minlength=R)
                        n_new = np.bincount(rn, minlength=R).astype(float)
                        first_time = np.isnan(t_sched[new])
                        tot["prompt"] += np.bincount(rn[first_time], weights=prompt[new][first_time], minlength=R)
                        t_sched[new] = np.where(first_time, np.maximum(t_ready[new], t), t_sched[new])
                        nrun = nrun + n_new
                        kv_used = kv_used + pf_tok
                gpu_pf = pf_tok * c.prefill_per_token_s * slow
                P_r = P_r + gpu_pf + pf_tok * cfg.prompt_token_cpu_s / share
                gpu_dec = c.decode_s(nrun, kv_used, slow)
                cpu_dec = (cfg.step_cpu_s + cfg.token_cpu_s * nrun) / share
                step = np.where(nrun > 0, gpu_dec + cpu_dec, 0.0)
                avail = dt - P_r
                debt = np.maximum(-avail, 0.0)
                avail = np.maximum(avail, 0.0)
                # tokens per running request
                runA = running[act]
                ids = act[runA]
                if ids.size:
                    rI = rep[ids]
                    if new.size:
                        newflag[new] = True
                        isnew = newflag[ids]
                        newflag[new] = False
                        t_first[new] = np.maximum(t_ready[new], t) + P_r[rep[new]]
                    else:
                        isnew = np.zeros(ids.size, dtype=bool)
                    st = step[rI]
                    dstart = np.where(isnew, t_first[ids], t + P_r[rI])
                    n = np.maximum(t1 - dstart, 0.0) / st + isnew
                    remaining = out[ids] - gen[ids]
                    inc = np.minimum(n, remaining)
                    gen[ids] += inc
                    tokr = np.bincount(rI, weights=inc, minlength=R)
                    tot["gen"] += tokr
                    dec_tok = tokr - n_new
                    done = n >= remaining
                    if done.any():
                        dn = ids[done]
                        t_done[dn] = dstart[done] + (remaining[done] - isnew[done]) * st[done]
                        status[dn] = DONE
                        running[dn] = False
                        rd = rI[done]
                        np.subtract.at(ongoing, rd, 1)
                        tot["succ"] += np.bincount(rd, minlength=R)
                    steps = np.where(step > 0, avail / np.where(step > 0, step, 1.0), 0.0)
                    busy_steps = np.minimum(steps, np.where(nrun > 0, np.inf, 0.0))
                    gpu_busy = gpu_pf + busy_steps * gpu_dec
                    mem_busy = busy_steps * gpu_dec * (1.0 - c.sm_share)
                    # the engine thread never sleeps while it has a batch: it does its CPU work and
                    # spin-waits on the GPU (CUDA's default sync), so it burns the whole busy time
                    cpu_work = np.minimum(P_r + busy_steps * step, dt)
                    # streamed bytes: replica pod -> (head proxy) -> gateway -> client
                    tok_all = float(tokr.sum())
                    tok_w = (tok_all - tokr[0]) * cfg.bytes_per_output_token
                    tx[:R] += tokr * cfg.bytes_per_output_token
                    rx[0] += tok_w
                    tx[0] += tok_w
                    rx[GW] += tok_all * cfg.bytes_per_output_token
                    tx[GW] += tok_all * cfg.bytes_per_output_token
                    cpu_s[0] += tok_all * cfg.proxy_cpu_per_token_s
                    cpu_s[GW] += tok_all * cfg.gateway_cpu_per_token_s
                    # KV-cache overflow: preempt the youngest running requests (recompute)
                    kv_now = kv_used + tokr
                    over = np.flatnonzero(kv_now > self.kv_cap) if kv_now.max() > self.kv_cap else ()
                    for r in over:
                        mine = ids[(rI == r) & running[ids]][::-1]
                        excess = float((prompt[mine] + gen[mine]).sum()) - self.kv_cap
                        for i in mine:
                            if excess <= 0:
                                break
                            running[i] = False
                            n_pre[i] += 1
                            tot["pre"][r] += 1
                            excess -= prompt[i] + gen[i]
                # time-outs at the gateway (the client's connection is closed, the engine aborts)
                if act.size and t1 - arr[act].min() > cfg.request_timeout_s:
                    too_old = act[(status[act] == ACTIVE) & (t1 - arr[act] > cfg.request_timeout_s)]
                    if too_old.size:
                        fail(too_old, t1, 504)
                keep = status[act] == ACTIVE
                if not keep.all():
                    act = act[keep]

            if ft == "gpu":
                util_prev = np.where(alive, np.minimum(gpu_busy / dt, 1.0), 0.0)
            tot["gpu_busy"] += gpu_busy
            tot["gpu_mem"] += mem_busy
            tot["gpu_tensor"] += gpu_busy - mem_busy
            # ---- CPU accounting (cAdvisor's usage counter) -----------------------------------------
            # (constant parts — idle CPU, background bytes — are added at the scrape)
            cpu_s[:R] += cpu_work
            if next_evt < np.inf and loading.any():
                cpu_s[:R] += np.where(loading, dt, 0.0)  # model loading keeps a core busy
            if hog_on:
                hog_want = hog_threads * hog_load
                # CFS gives the engine thread only its share of a core while the stressors run
                cpu_s[tgt] -= cpu_work[tgt] * (1.0 - share[tgt])
                eng = base_cpu[tgt] + cpu_work[tgt] * share[tgt] / dt
                used_hog = max(0.0, min(hog_want, quota - eng))
                cpu_s[tgt] += used_hog * dt
                ach["hog_cpu_s"] += used_hog * dt
                thr_s[tgt] += max(eng + hog_want - quota, 0.0) * dt

            # ---- memory: working set, the leak, the OOM killer ----------------------------------
            held = 0.0
            if ft == "memory":
                mem_prev = zeros_r  # no pressure unless the leak holds memory (below)
            if ft == "memory" and fon and leak_alive:
                inflight = np.bincount(rep[act], minlength=R) if act.size else np.zeros(R)
                mem = base_mem[:R] + actor_mem * actor_frac + cfg.request_memory_bytes * inflight
                mem_prev = mem
                held = leak_bytes * min(1.0, (t1 - fault.start) / (fault.end - fault.start))
                mem[tgt] += held
                ach["leak_peak_bytes"] = max(ach["leak_peak_bytes"], held)
                if mem[tgt] > mem_limit:
                    failcnt[tgt] += 1
                    if alive[tgt] or np.isfinite(healthy_at[tgt]):
                        # the Ray worker (oom_score_adj 1000) goes first
                        alive[tgt] = False
                        actor_frac[tgt] = 0.0
                        healthy_at[tgt] = np.inf
                        restart_at[tgt] = t1 + cfg.restart_delay_s
                        detect_at[tgt] = t1 + cfg.death_detect_s
                        next_evt = min(next_evt, detect_at[tgt])
                        if ach["oom_kill_s"] is None:
                            ach["oom_kill_s"] = t1 - fault.start
                        events.append((t1, self.components[tgt], "oom-kill"))
                        victims = act[rep[act] == tgt]
                        if victims.size:
                            fail(victims, t1, 502)
                            act = act[status[act] == ACTIVE]
                        mem[tgt] -= actor_mem
                    if mem[tgt] > mem_limit:
                        leak_alive = False  # then the stressor itself
                        mem[tgt] -= held
                        events.append((t1, self.components[tgt], "oom-kill-stressor"))
            if fon and ft == "gpu":
                ach["power_w"].append(self.gpus[tgt].power_w(util_prev[tgt]))
                ach["sm_clock_mhz"].append(self.gpus[tgt].sm_clock_mhz(util_prev[tgt]))

            # ---- recording ------------------------------------------------------------------------
            kr = k - k_rec
            if kr < 0:
                continue
            if kr == 0:
                busy_rec0 = tot["gpu_busy"] - gpu_busy
            # a prefill in the tick stalls every running request once (its token gap includes it)
            stalled = np.where(P_r > 0, np.minimum(n_old, dec_tok), 0.0)
            itl_tok[kr] = dec_tok - stalled
            itl_step[kr] = step
            stall_tok[kr] = stalled
            stall_s[kr] = step + P_r
            if (kr + 1) % per_scrape:
                continue
            s = (kr + 1) // per_scrape - 1
            if s >= S:
                continue
            scrape_t[s] = t1
            el = t1 - t0
            pod_s["cpu_s"][s] = cpu_s + idle_cpu * el
            pod_s["cfs_throttled_s"][s] = thr_s
            inflight = np.bincount(rep[act], minlength=R) if act.size else np.zeros(R)
            mem = base_mem[:R] + actor_mem * actor_frac + cfg.request_memory_bytes * inflight + (held if ft == "memory" else 0.0) * (np.arange(R) == tgt)
            pod_s["mem_ws"][s, :R] = mem
            pod_s["mem_ws"][s, R:] = base_mem[R:]
            pod_s["rx_bytes"][s] = rx + cfg.background_bytes_s * el
            pod_s["tx_bytes"][s] = tx + cfg.background_bytes_s * el
            pod_s["mem_failcnt"][s] = failcnt
            rs = rep_s
            rs["gpu_busy_s"][s] = tot["gpu_busy"]
            rs["gpu_mem_busy_s"][s] = tot["gpu_mem"]
            rs["gpu_tensor_s"][s] = tot["gpu_tensor"]
            prev = s - 1
            span = cfg.scrape_interval_s
            ubar = (tot["gpu_busy"] - (rs["gpu_busy_s"][prev] if prev >= 0 else busy_rec0)) / span
            for r in range(R):
                g = self.gpus[r]
                lo = float(np.clip(ubar[r], 0.0, 1.0))
                rs["power_w"][s, r] = g.power_w(lo)
                rs["sm_clock_mhz"][s, r] = g.sm_clock_mhz(lo)
                rs["throttle"][s, r] = g.throttle_reasons(lo)
                rs["power_limit_w"][s, r] = g.power_limit_w
            rs["fb_used_mib"][s] = self.fb_mib * actor_frac + 420.0
            if act.size:
                ra = rep[act]
                rs["running"][s] = np.bincount(ra[running[act]], minlength=R)
                rs["waiting"][s] = np.bincount(ra[~running[act] & (t_ready[act] <= t1)], minlength=R)
                rs["kv_usage"][s] = np.bincount(ra[running[act]], weights=(prompt[act] + gen[act])[running[act]], minlength=R) / self.kv_cap
            for key, name in (("prompt", "prompt_tokens"), ("gen", "gen_tokens"), ("pre", "preemptions"), ("succ", "success")):
                rs[name][s] = tot[key] - reset_at[key]
            rs["replica_starts"][s] = tot["starts"]
            rs["healthy"][s] = alive
            rs["errors"][s] = tot["err"]
            rs["up"][s] = alive
            router_s[s] = router_total
            rqueue_s[s] = len(router_queue)
            gw_s[s] = gw_total
            gw5_s[s] = gw_5xx
            if delayed:
                lost[s, tgt] = rng.random() < cfg.scrape_loss_under_delay

        # requests still pending at the router count as in flight
        reqs = {
            "arrival": arr,
            "prompt": prompt,
            "output": out,
            "replica": rep,
            "status": status,
            "gen": gen,
            "t_ready": t_ready,
            "t_sched": t_sched,
            "t_first": t_first,
            "t_done": t_done,
            "code": code,
            "delay": delay,
            "preemptions": n_pre,
        }
        achieved = self._achieved(fault, ach, ach_lim, rep_s, scrape_t, tgt, delay, rep, arr, lost)
        totals = {"gen_tokens": tot["gen"].copy(), "prompt_tokens": tot["prompt"].copy(), "success": tot["succ"].copy(), "errors": tot["err"].copy()}
        return SimResult(
            cfg=cfg,
            components=self.components,
            n_replicas=R,
            record_start=record_start,
            t_end=t_end,
            scrape_t=scrape_t,
            pod=pod_s,
            rep=rep_s,
            router_requests=router_s,
            router_queued=rqueue_s,
            gateway_requests=gw_s,
            gateway_5xx=gw5_s,
            scrape_lost=lost,
            requests=reqs,
            tick_t=tick_t,
            itl_tokens=itl_tok,
            itl_step_s=itl_step,
            stall_tokens=stall_tok,
            stall_s=stall_s,
            events=events,
            achieved=achieved,
            totals=totals,
        )

    def _events(self, t, cfg, restart_at, healthy_at, detect_at, alive, routable, actor_frac, tot, reset_at, events):
        """Restarts, health and router updates due at ``t``; returns the next event time and routable replicas."""
        R = self.R
        for r in np.flatnonzero(restart_at <= t):
            restart_at[r] = np.inf
            healthy_at[r] = t + cfg.load_time_s
            events.append((t, self.components[r], "replica-starting"))
        for r in np.flatnonzero(np.isfinite(healthy_at)):
            actor_frac[r] = min(1.0, 1.0 - (healthy_at[r] - t) / cfg.load_time_s)
            if t >= healthy_at[r]:
                healthy_at[r] = np.inf
                alive[r] = routable[r] = True
                actor_frac[r] = 1.0
                tot["starts"][r] += 1
                for key in reset_at:
                    reset_at[key][r] = tot[key][r]
                events.append((t, self.components[r], "replica-healthy"))
        for r in np.flatnonzero(detect_at <= t):
            detect_at[r] = np.inf
            routable[r] = False
            events.append((t, self.components[r], "replica-removed"))
        pending = np.concatenate([restart_at, detect_at, np.where(np.isfinite(healthy_at), t + cfg.tick_s, np.inf)])
        return float(pending.min()), [i for i in range(R) if routable[i]]

    def _achieved(self, fault, ach, ach_lim, rep_s, scrape_t, tgt, delay, rep, arr, lost) -> dict[str, Any]:
        if fault is None:
            return {}
        ft = fault.type
        if ft == "cpu":
            dur = fault.end - fault.start
            return {"hog_cpu_seconds": round(float(ach["hog_cpu_s"]), 3), "hog_cores_mean": round(float(ach["hog_cpu_s"]) / dur, 3)}
        if ft == "memory":
            return {
                "peak_bytes_held": int(ach["leak_peak_bytes"]),
                "oom_killed": ach["oom_kill_s"] is not None,
                "oom_kill_after_s": None if ach["oom_kill_s"] is None else round(ach["oom_kill_s"], 2),
            }
        if ft == "network":
            m = (rep == tgt) & (arr >= fault.start) & (arr < fault.end)
            d = delay[m]
            win = (scrape_t > fault.start) & (scrape_t <= fault.end)
            return {
                "requests_delayed": int(m.sum()),
                "mean_added_latency_ms": round(float(d.mean()) * 1e3, 1) if d.size else None,
                "std_added_latency_ms": round(float(d.std()) * 1e3, 1) if d.size else None,
                "scrapes_lost": int(lost[win, tgt].sum()),
            }
        if ft == "gpu":
            return {
                "power_limit_w_read_back": ach_lim,
                "mean_power_w": round(float(np.mean(ach["power_w"])), 1) if ach["power_w"] else None,
                "mean_sm_clock_mhz": round(float(np.mean(ach["sm_clock_mhz"])), 1) if ach["sm_clock_mhz"] else None,
            }
        return {}
