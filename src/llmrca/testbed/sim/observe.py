"""Observation: what a Prometheus scraping the simulated stack would store.

Counters become ``rate()`` over ``SimConfig.rate_window_s`` (with counter
resets handled as Prometheus does), histograms become
``histogram_quantile()`` over the same window using the real bucket
boundaries (so a quantile is interpolated inside a bucket and cannot see a
shift that stays inside one bucket), gauges are read at the scrape instant.
Measurement noise is added where real exporters have it; scrapes of a pod's
own endpoints that were lost (network fault) or endpoints that did not exist
(dead replica) are gaps (NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.telemetry import BASIC, EXTENDED, GATEWAY, HEAD, OPERATOR, PROMETHEUS_EXTRA, is_serving
from llmrca.testbed.sim.engine import DONE, FAILED, SimResult

# Bucket boundaries (upper bounds, +Inf implied) of the real exporters.
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
VLLM_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
VLLM_REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
ISTIO_MS_BUCKETS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000)
NGINX_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Metrics read from the pod's own endpoints (lost when traffic into the pod is disturbed).
POD_LOCAL_PREFIXES = ("vllm:", "ray_serve_", "latency-")


def counter_rate(x: np.ndarray, m: int, span_s: float) -> np.ndarray:
    """``rate(x[m*span])`` at every scrape (first row: the next row's value); resets handled."""
    inc = np.diff(x, axis=0)
    reset = inc < 0
    if reset.any():
        inc = np.where(reset, x[1:], inc)
    c = np.concatenate([np.zeros((1, *x.shape[1:])), np.cumsum(inc, axis=0)])
    s = np.arange(x.shape[0])
    lo = np.maximum(s - m, 0)
    n = np.maximum(s - lo, 1)
    out = (c[s] - c[lo]) / (n * span_s).reshape(-1, *([1] * (x.ndim - 1)))
    if out.shape[0] > 1:
        out[0] = out[1]
    return out


def window_mean(obs_t: np.ndarray, obs_v: np.ndarray, scrape_t: np.ndarray, m: int, span_s: float) -> np.ndarray:
    """``rate(h_sum[w]) / rate(h_count[w])`` at every scrape: the mean of the observations ``obs_v`` made at
    ``obs_t`` over the last ``m`` scrape spans (a histogram's ``_sum`` / ``_count``); NaN where the window is empty.
    Exact, unlike a quantile interpolated inside the buckets."""
    S = scrape_t.size
    ti = np.searchsorted(scrape_t, obs_t, side="left")
    ok = ti < S
    ssum = counter_rate(np.cumsum(np.bincount(ti[ok], weights=obs_v[ok], minlength=S)), m, span_s)
    scnt = counter_rate(np.cumsum(np.bincount(ti[ok], minlength=S).astype(float)), m, span_s)
    return np.where(scnt > 0, ssum / np.where(scnt > 0, scnt, 1.0), np.nan)


def window_quantiles(
    obs_t: np.ndarray, obs_v: np.ndarray, obs_w: np.ndarray | None, scrape_t: np.ndarray, buckets: tuple[float, ...], window_s: float, qs: tuple[float, ...]
) -> np.ndarray:
    """``histogram_quantile(q, rate(h_bucket[window]))`` at every scrape; NaN where the window is empty."""
    S = scrape_t.size
    B = len(buckets) + 1
    le = np.asarray(buckets, dtype=float)
    bi = np.searchsorted(le, obs_v, side="left")  # first bucket with le >= v
    ti = np.searchsorted(scrape_t, obs_t, side="left")  # counted at the first scrape at or after it
    keep = ti < S
    w = np.ones(obs_v.size) if obs_w is None else obs_w
    flat = np.bincount(ti[keep] * B + bi[keep], weights=w[keep], minlength=S * B).reshape(S, B)
    cum_t = np.cumsum(flat, axis=0)
    dt = scrape_t[1] - scrape_t[0] if S > 1 else window_s
    m = max(1, round(window_s / dt))
    prev = np.zeros_like(cum_t)
    prev[m:] = cum_t[:-m]
    win = np.cumsum(cum_t - prev, axis=1)  # cumulative over buckets: the _bucket{le} series
    total = win[:, -1]
    out = np.full((S, len(qs)), np.nan)
    lower = np.concatenate([[0.0], le])
    for j, q in enumerate(qs):
        rank = q * total
        idx = np.argmax(win >= rank[:, None] - 1e-12, axis=1)
        inf = idx >= len(le)
        idx_c = np.minimum(idx, len(le) - 1)
        below = np.where(idx_c > 0, win[np.arange(S), np.maximum(idx_c - 1, 0)], 0.0)
        inb = win[np.arange(S), idx_c] - below
        frac = np.where(inb > 0, (rank - below) / np.where(inb > 0, inb, 1.0), 0.0)
        val = lower[idx_c] + (le[idx_c] - lower[idx_c]) * frac
        val = np.where(inf, le[-1], val)
        out[:, j] = np.where(total > 0, val, np.nan)
    return out


class _Noise:
    def __init__(self, rng: np.random.Generator, rel: float) -> None:
        self.rng, self.rel = rng, rel

    def mul(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return x * (1.0 + self.rel * scale * self.rng.standard_normal(x.shape))

    def add(self, x: np.ndarray, sd: float) -> np.ndarray:
        return x + sd * self.rng.standard_normal(x.shape)


class _Obs:
    """What every exporter's observation of one run shares: the scrape grid, the rate window, the noise."""

    def __init__(self, res: SimResult, rng: np.random.Generator) -> None:
        self.res, self.rng, self.cfg = res, rng, res.cfg
        self.R = res.n_replicas
        self.comps = res.components
        self.st = res.scrape_t
        self.span = self.cfg.scrape_interval_s
        self.m = max(1, round(self.cfg.rate_window_s / self.span))
        self.win = self.cfg.rate_window_s
        self.nz = _Noise(rng, self.cfg.noise)
        self.rq = res.requests
        self.S = self.st.size
        self.cols: dict[str, dict[str, np.ndarray]] = {c: {} for c in self.comps}
        self.ttft_ok = np.isfinite(self.rq["t_first"])
        self.sched_ok = np.isfinite(self.rq["t_sched"])
        self.done = self.rq["status"] == DONE
        # request ids per replica, ascending (what a mask ``replica == r`` selects, without a pass per replica)
        rrep = self.rq["replica"]
        order = np.argsort(rrep, kind="stable")
        bounds = np.searchsorted(rrep[order], np.arange(self.R + 1))
        self.by_replica = [order[bounds[r] : bounds[r + 1]] for r in range(self.R)]


def build_frames(res: SimResult, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    """The ``basic`` and ``extended`` metric frames of a run (rows: scrapes; columns: ``time`` + ``<pod>_<metric>``).

    ``rng`` draws the measurement noise (the same generator state gives the
    same frames).  Raises KeyError when the metric catalogue names a series
    the simulator does not produce.
    """
    o = _Obs(res, rng)
    _cadvisor(o)
    _dcgm(o)
    _mesh_latency(o)
    for r in range(o.R):
        _vllm(o, r)
    _gateway(o)
    basic = artifact_basic(o) if o.cfg.basic_queries == "artifact" else {}
    _extra(o)
    _gaps(o)
    _gpu_gaps(o)
    return _frames(o, basic)


def res_extra(o: _Obs, key: str) -> np.ndarray:
    """``res.extra[key]`` (zeros of the requests' shape when the run did not record it)."""
    v = o.res.extra.get(key)
    return np.zeros(o.rq["arrival"].shape) if v is None else v


def _extra(o: _Obs) -> None:
    """Series beyond the paper's: GPU temperature, thermal violation, last Xid (DCGM); CPU pressure (cAdvisor PSI);
    node CPU (node-exporter); TCP retransmits of the pod's node (node-exporter netstat).

    Drawn after every other series, so the paper's columns keep their noise draws.
    """
    ex, nz, m, span, cols, comps = o.res.extra, o.nz, o.m, o.span, o.cols, o.comps
    if not ex:
        return
    for r in range(o.R):
        c = comps[r]
        cols[c]["DCGM_FI_DEV_GPU_TEMP"] = np.rint(nz.add(ex["gpu_temp_c"][:, r], 0.4))
        cols[c]["DCGM_FI_DEV_THERMAL_VIOLATION:rate"] = counter_rate(ex["thermal_violation_us"][:, r], m, span)
        cols[c]["DCGM_FI_DEV_XID_ERRORS"] = ex["xid"][:, r]
    # backgrounds every real node has: threads that wait for a CPU now and then (~1 % of a second),
    # a few retransmitted segments per minute (timers, probes)
    shape = ex["cpu_pressure_s"].shape
    psi_bg = np.cumsum(o.rng.gamma(2.0, 0.005 * span, shape), axis=0)
    retr_bg = np.cumsum(o.rng.poisson(0.1 * span, shape), axis=0)
    psi = np.maximum(counter_rate(ex["cpu_pressure_s"] + psi_bg, m, span), 0.0)
    node = np.maximum(nz.mul(counter_rate(ex["node_cpu_s"], m, span)), 0.0)
    retr = np.maximum(counter_rate(ex["tcp_retrans"] + retr_bg, m, span), 0.0)
    for p, c in enumerate(comps):
        cols[c]["container_pressure_cpu_waiting_seconds_total:rate"] = psi[:, p]
        cols[c]["node_cpu_seconds_total:rate"] = node[:, p]
        cols[c]["node_netstat_Tcp_RetransSegs:rate"] = retr[:, p]


def _gpu_gaps(o: _Obs) -> None:
    """A GPU that fell off the bus cannot be read: its DCGM series (utilisation included) are gaps, except the last Xid."""
    lost = o.res.extra.get("gpu_lost")
    if lost is None or not lost.any():
        return
    for r in range(o.R):
        hit = lost[:, r].astype(bool)
        if not hit.any():
            continue
        x = o.cols[o.comps[r]]
        for name in list(x):
            if (name.startswith("DCGM_") and name != "DCGM_FI_DEV_XID_ERRORS") or name == "gpu":
                arr = np.array(x[name], dtype=float)
                arr[hit] = np.nan
                x[name] = arr


def _cadvisor(o: _Obs) -> None:
    """cAdvisor (all pods): CPU, memory, network, throttling."""
    res, cfg, nz, m, span, S, cols = o.res, o.cfg, o.nz, o.m, o.span, o.S, o.cols
    cpu = nz.mul(counter_rate(res.pod["cpu_s"], m, span))
    rx = nz.mul(counter_rate(res.pod["rx_bytes"], m, span))
    tx = nz.mul(counter_rate(res.pod["tx_bytes"], m, span))
    mem = nz.mul(res.pod["mem_ws"], 0.1)
    thr = counter_rate(res.pod["cfs_throttled_s"], m, span)
    failc = counter_rate(res.pod["mem_failcnt"], m, span)
    for p, c in enumerate(o.comps):
        cols[c]["cpu"] = np.maximum(cpu[:, p], 0.0)
        cols[c]["mem"] = mem[:, p]
        cols[c]["net-rx"] = np.maximum(rx[:, p], 0.0)
        cols[c]["net-tx"] = np.maximum(tx[:, p], 0.0)
        cols[c]["container_cpu_cfs_throttled_seconds_total:rate"] = thr[:, p]
        cols[c]["container_memory_failcnt:rate"] = failc[:, p]
        cols[c]["container_spec_memory_limit_bytes"] = np.full(S, cfg.pod_memory_gib * 2**30)


def _dcgm(o: _Obs) -> None:
    """DCGM (serving pods): utilisation, power, clocks, framebuffer, throttle reasons."""
    res, cfg, nz, span, S, cols, comps = o.res, o.cfg, o.nz, o.span, o.S, o.cols, o.comps
    busy = np.diff(np.concatenate([res.rep["gpu_busy_s"][:1] * 0, res.rep["gpu_busy_s"]]), axis=0) / span
    busy[0] = busy[1] if S > 1 else busy[0]
    membusy = np.diff(np.concatenate([res.rep["gpu_mem_busy_s"][:1] * 0, res.rep["gpu_mem_busy_s"]]), axis=0) / span
    membusy[0] = membusy[1] if S > 1 else membusy[0]
    tens = np.diff(np.concatenate([res.rep["gpu_tensor_s"][:1] * 0, res.rep["gpu_tensor_s"]]), axis=0) / span
    tens[0] = tens[1] if S > 1 else tens[0]
    # DCGM samples utilisation over ~1 s: the value read at a scrape is one short, bursty sample
    util = np.clip(np.rint(nz.add(100 * busy, cfg.util_noise_pct)), 0, 100)
    for r in range(o.R):
        c = comps[r]
        cols[c]["gpu"] = util[:, r]
        cols[c]["DCGM_FI_DEV_POWER_USAGE"] = nz.add(res.rep["power_w"][:, r], 2.0)
        cols[c]["DCGM_FI_DEV_POWER_MGMT_LIMIT"] = res.rep["power_limit_w"][:, r]
        cols[c]["DCGM_FI_DEV_SM_CLOCK"] = np.rint(nz.add(res.rep["sm_clock_mhz"][:, r], 5.0))
        cols[c]["DCGM_FI_DEV_MEM_COPY_UTIL"] = np.clip(np.rint(nz.add(100 * membusy[:, r], 1.5)), 0, 100)
        cols[c]["DCGM_FI_DEV_FB_USED"] = np.rint(res.rep["fb_used_mib"][:, r])
        cols[c]["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"] = np.clip(nz.add(0.45 * tens[:, r], 0.01), 0, 1)
        cols[c]["DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"] = res.rep["throttle"][:, r]


def _mesh_latency(o: _Obs) -> None:
    """Mesh latency quantiles of the requests into each component (and the operator's steady API traffic)."""
    cfg, rq, st, win, comps, span, R = o.cfg, o.rq, o.st, o.win, o.comps, o.span, o.R
    fin = (rq["status"] == DONE) | (rq["status"] == FAILED)
    t_end = rq["t_done"][fin]
    arrival = rq["arrival"][fin]
    hop = cfg.hop_latency_s
    repl = rq["replica"][fin]
    ready = rq["t_ready"][fin]
    dly = rq["delay"][fin]
    # waits on the path before the head's mesh proxy sees the request (a gateway fault)
    pre_head = res_extra(o, "pre_head")[fin]
    qs = (0.5, 0.9)
    gw_dur = t_end + hop - arrival
    head_dur = t_end - arrival - hop - pre_head
    lat = {
        GATEWAY: window_quantiles(t_end, gw_dur * 1e3, None, st, ISTIO_MS_BUCKETS, win, qs) / 1e3,
        HEAD: window_quantiles(t_end, head_dur * 1e3, None, st, ISTIO_MS_BUCKETS, win, qs) / 1e3,
    }
    mean = {GATEWAY: window_mean(t_end, gw_dur, st, o.m, span), HEAD: window_mean(t_end, head_dur, st, o.m, span)}
    if cfg.ingress == "every-pod":
        # each serving pod's mesh latency: the requests that entered through its Serve proxy (wherever they were
        # served; Ray's actor calls bypass the mesh, paper §5.5), from the moment its node saw them
        ing = rq["ingress"][fin]
        for r in range(R):
            sel = ing == r
            lat[comps[r]] = window_quantiles(t_end[sel], head_dur[sel] * 1e3, None, st, ISTIO_MS_BUCKETS, win, qs) / 1e3
            mean[comps[r]] = window_mean(t_end[sel], head_dur[sel], st, o.m, span)
    for r in range(1, R if cfg.ingress == "head" else 1):
        sel = repl == r
        # the node-level mesh proxy sees the request before netem delays it into the pod
        d = t_end[sel] - (ready[sel] - dly[sel])  # waits on the path before the pod are behind it (in ``ready``)
        lat[comps[r]] = window_quantiles(t_end[sel], d * 1e3, None, st, ISTIO_MS_BUCKETS, win, qs) / 1e3
        mean[comps[r]] = window_mean(t_end[sel], d, st, o.m, span)
    # the operator answers Kubernetes API watches and probes: small, steady
    op_t, op_v = _operator_calls(o)
    lat[OPERATOR] = window_quantiles(op_t, op_v, None, st, ISTIO_MS_BUCKETS, win, qs) / 1e3
    mean[OPERATOR] = window_mean(op_t, op_v / 1e3, st, o.m, span)
    for c, v in lat.items():
        o.cols[c]["latency-50"] = v[:, 0]
        o.cols[c]["latency-90"] = v[:, 1]
    for c, v in mean.items():
        o.cols[c]["latency"] = v  # istio_request_duration_milliseconds _sum / _count, in seconds


def _operator_calls(o: _Obs) -> tuple[np.ndarray, np.ndarray]:
    """The operator's small, steady mesh calls (API watches, probes, the head dashboard's Serve status):
    three per scrape span at uniform instants, lognormal around 4 ms.  Returns (epoch s, milliseconds)."""
    st, n = o.st, int(3 * o.S)
    t = st[0] - o.span + (st[-1] - st[0] + o.span) * np.sort(o.rng.random(n))
    return t, o.rng.lognormal(np.log(4.0), 0.4, n)


def _prom_samples(phase: int, S: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Prometheus' own samples of a target scraped every ``k`` query steps from step ``phase``: the steps
    ``taken`` and, per query step (shape ``(S,)``), the index into ``taken`` of the last sample (-1: none yet)."""
    taken = np.arange(phase, S, k)
    return taken, np.searchsorted(taken, np.arange(S), side="right") - 1


def _vllm(o: _Obs, r: int) -> None:
    """vLLM and Ray Serve series of replica ``r``."""
    res, rq, st, win, m, span, S = o.res, o.rq, o.st, o.win, o.m, o.span, o.S
    qs = (0.5, 0.9)
    mine = o.by_replica[r]
    x = o.cols[o.comps[r]]
    x["vllm:num_requests_running"] = res.rep["running"][:, r]
    x["vllm:num_requests_waiting"] = res.rep["waiting"][:, r]
    x["vllm:kv_cache_usage_perc"] = res.rep["kv_usage"][:, r]
    for key, name in (("prompt_tokens", "prompt_tokens_total"), ("gen_tokens", "generation_tokens_total"), ("preemptions", "num_preemptions_total"), ("success", "request_success_total")):
        x[f"vllm:{name}:rate"] = counter_rate(res.rep[key][:, r], m, span)
    sel = mine[o.ttft_ok[mine]]
    v = window_quantiles(rq["t_first"][sel], rq["t_first"][sel] - rq["t_ready"][sel], None, st, VLLM_TTFT_BUCKETS, win, qs)
    x["vllm:time_to_first_token_seconds:p50"], x["vllm:time_to_first_token_seconds:p90"] = v[:, 0], v[:, 1]
    it_t = np.concatenate([res.tick_t, res.tick_t])
    it_v = np.concatenate([res.itl_step_s[:, r], res.stall_s[:, r]])
    it_w = np.concatenate([res.itl_tokens[:, r], res.stall_tokens[:, r]])
    v = window_quantiles(it_t, it_v, it_w, st, VLLM_ITL_BUCKETS, win, qs)
    x["vllm:inter_token_latency_seconds:p50"], x["vllm:inter_token_latency_seconds:p90"] = v[:, 0], v[:, 1]
    ti = np.searchsorted(st, it_t, side="left")
    ok = ti < S
    ssum = np.bincount(ti[ok], weights=(it_v * it_w)[ok], minlength=S)
    scnt = np.bincount(ti[ok], weights=it_w[ok], minlength=S)
    wsum = counter_rate(np.cumsum(ssum), m, span)
    wcnt = counter_rate(np.cumsum(scnt), m, span)
    x["vllm:inter_token_latency_seconds:mean"] = np.where(wcnt > 0, wsum / np.where(wcnt > 0, wcnt, 1.0), np.nan)
    sel = mine[o.done[mine]]
    v = window_quantiles(rq["t_done"][sel], rq["t_done"][sel] - rq["t_ready"][sel], None, st, VLLM_REQUEST_BUCKETS, win, (0.9,))
    x["vllm:e2e_request_latency_seconds:p90"] = v[:, 0]
    x["vllm:e2e_request_latency_seconds:mean"] = window_mean(rq["t_done"][sel], rq["t_done"][sel] - rq["t_ready"][sel], st, m, span)
    sel = mine[o.sched_ok[mine]]
    v = window_quantiles(rq["t_sched"][sel], rq["t_sched"][sel] - rq["t_ready"][sel], None, st, VLLM_REQUEST_BUCKETS, win, (0.9,))
    x["vllm:request_queue_time_seconds:p90"] = v[:, 0]
    x["ray_serve_deployment_replica_starts_total:rate"] = counter_rate(res.rep["replica_starts"][:, r], m, span)
    x["ray_serve_deployment_replica_healthy"] = res.rep["healthy"][:, r]
    x["ray_serve_deployment_error_counter_total:rate"] = counter_rate(res.rep["errors"][:, r], m, span)


def _gateway(o: _Obs) -> None:
    """The Serve router (on the head) and the ingress-nginx gateway."""
    res, m, span, cols = o.res, o.m, o.span, o.cols
    cols[HEAD]["ray_serve_num_router_requests_total:rate"] = counter_rate(res.router_requests, m, span)
    cols[HEAD]["ray_serve_deployment_queued_queries"] = res.router_queued
    fin = (o.rq["status"] == DONE) | (o.rq["status"] == FAILED)
    t_end = o.rq["t_done"][fin]
    gw_dur = t_end + o.cfg.hop_latency_s - o.rq["arrival"][fin]
    v = window_quantiles(t_end, gw_dur, None, o.st, NGINX_BUCKETS, o.win, (0.5, 0.9))
    g = cols[GATEWAY]
    g["nginx_ingress_controller_request_duration_seconds:p50"] = v[:, 0]
    g["nginx_ingress_controller_request_duration_seconds:p90"] = v[:, 1]
    g["nginx_ingress_controller_requests:rate"] = counter_rate(res.gateway_requests, m, span)
    g["nginx_ingress_controller_requests_5xx:rate"] = counter_rate(res.gateway_5xx, m, span)


def held_high_water(ws: np.ndarray, real_drop: float) -> np.ndarray:
    """Resident memory as the allocator holds it: a running maximum of ``ws`` (shape ``(S, P)``, bytes) per pod.

    Freed request buffers stay in the processes' heaps (CPython's pymalloc
    arenas, glibc's malloc trim threshold, nginx's pools): the resident set
    does not shrink when requests finish.  It does when a process exits or
    frees a large block (an actor killed, a stressor's memory released): a
    drop of more than ``real_drop`` bytes below the held level is taken as
    it is.
    """
    out = np.empty_like(ws)
    level = ws[0].copy()
    for s in range(ws.shape[0]):
        x = ws[s]
        level = np.where(x < level - real_drop, x, np.maximum(level, x))
        out[s] = level
    return out


def log_page_cache(o: _Obs) -> np.ndarray:
    """Active page cache of each pod's log files at every scrape (shape ``(S, P)``, bytes).

    The Ray pods and the gateway write their logs to ``emptyDir`` volumes that
    Fluent Bit sidecars tail (paper §4.2): the page cache of those files is
    charged to the pod's memory cgroup, and cAdvisor's working set (usage −
    inactive file) counts it while it is active.  Each finished request adds
    a log line (``log_bytes_per_request``) on the gateway, the pod whose
    Serve proxy accepted it and the replica's pod, and the replica logs the whole request when it receives
    it (``replica_request_log_bytes`` + ``replica_log_bytes_per_prompt_token`` x its prompt tokens: the
    artifact's ``logger.info(f"Request: {request}")``, in the replica's log file and its worker's stderr
    file); Ray's agents log ``agent_log_bytes_s``
    (bursty: lognormal, CV 1; twice on the head), the operator's Go heap grows
    alike.  The kernel ages the active list to the inactive one at Poisson
    instants (``ws_trim_rate_hz``), each keeping a uniform 0–50 % of it: the
    working set creeps up and now and then falls.
    """
    cfg, rq, st, S, rng = o.cfg, o.rq, o.st, o.S, o.rng
    P = len(o.comps)
    gw = P - 2
    lines = np.zeros((S, P))
    fin = ((rq["status"] == DONE) | (rq["status"] == FAILED)) & np.isfinite(rq["t_done"])
    ti = np.searchsorted(st, rq["t_done"][fin], side="left")
    ok = ti < S
    ti, rep, ing = ti[ok], rq["replica"][fin][ok], rq["ingress"][fin][ok]
    np.add.at(lines[:, gw], ti, cfg.log_bytes_per_request)
    ing = np.where(ing >= 0, ing, 0)  # a request that never reached a proxy: logged by the head's, as before
    np.add.at(lines, (ti, ing), cfg.log_bytes_per_request)  # the Serve proxy that accepted it
    good = rep >= 0
    np.add.at(lines, (ti[good], rep[good]), cfg.log_bytes_per_request)
    if cfg.replica_request_log_bytes > 0:  # the replica logs the whole request when it receives it
        got = (rq["replica"] >= 0) & np.isfinite(rq["t_ready"])
        tr = np.searchsorted(st, rq["t_ready"][got], side="left")
        inw = tr < S
        nbytes = cfg.replica_request_log_bytes + cfg.replica_log_bytes_per_prompt_token * rq["prompt"][got][inw]
        np.add.at(lines, (tr[inw], rq["replica"][got][inw]), nbytes)
    sig = np.sqrt(np.log(2.0))
    agent = cfg.agent_log_bytes_s * o.span * rng.lognormal(-sig * sig / 2, sig, (S, P))
    agent[:, 0] *= 2.0
    agent[:, gw] = 0.0  # nginx writes its access lines only
    lines += agent
    trims = rng.random((S, P)) < 1.0 - np.exp(-cfg.ws_trim_rate_hz * o.span)
    keep = rng.uniform(0.0, 0.5, (S, P))
    cache = np.empty((S, P))
    level = np.zeros(P)
    for s in range(S):
        level = np.where(trims[s], level * keep[s], level) + lines[s]
        cache[s] = level
    return cache


def _two_sample_rate(x: np.ndarray, taken: np.ndarray, last: np.ndarray, dt: float) -> np.ndarray:
    """``rate(x[1m])`` from the last two of Prometheus' samples ``taken`` (a decrease reads as a counter reset), per query step."""
    xs = x[taken]
    inc = np.diff(xs)
    inc = np.where(inc < 0, xs[1:], inc)
    r = np.concatenate([[np.nan], inc / dt])
    out = np.where(last >= 0, r[np.maximum(last, 0)], np.nan)
    fin = np.flatnonzero(np.isfinite(out))
    if fin.size:
        out[: fin[0]] = out[fin[0]]  # the query range starts inside a series that already exists
    return out


def artifact_basic(o: _Obs) -> dict[str, dict[str, np.ndarray]]:
    """``cpu`` and ``mem`` of the basic set as the paper's exporter queried Prometheus (rca-llm ``export_rca_data.py``).

    Prometheus scrapes cAdvisor every ``prom_scrape_s`` (each target at its
    own phase); the exporter evaluates at a 5-s step:

    * ``cpu`` = ``rate(container_cpu_usage_seconds_total[1m])`` — with 30-s
      scrapes the last two samples: a staircase that moves once per scrape;
    * ``net-tx`` = ``(rate(container_network_transmit_packets_total[1m]) / 1000)²`` — the exporter's one
      network column (``ctn_network``): packets, not bytes, squared (``net-rx`` stays the direct byte rate);
    * ``mem`` = ``rate(container_memory_working_set_bytes[1m]) / 1000`` —
      rate() of a *gauge*: a growing working set gives its growth in kB/s,
      any decrease reads as a counter reset and adds the whole working set.
      The working set is the processes' memory as the allocator holds it
      (:func:`held_high_water`) plus the log files' active page cache
      (:func:`log_page_cache`), read exactly (cAdvisor reads the cgroup's
      ``memory.stat``; no measurement noise), plus what moves it between
      scrapes whatever the workload does: ``ws_jitter_bytes`` (memcg's
      per-CPU charge batches; nginx, the operator) and, on the Ray pods,
      ``ray_heap_jitter_bytes`` and ``ray_heap_growth_bytes_s`` (the heaps of a
      Ray node's dozen processes; ``benchmarks/ray_working_set.py``).

    Returns ``{component: {"cpu": (S,), "mem": (S,)}}``.
    """
    cfg, res, S, span = o.cfg, o.res, o.S, o.span
    k = max(1, round(cfg.prom_scrape_s / span))
    dt = k * span
    phases = o.rng.integers(0, k, len(o.comps))
    ws = held_high_water(res.pod["mem_ws"], 256 * 2**20) + log_page_cache(o)
    ray = np.arange(len(o.comps)) < o.R  # the head and the workers run Ray; the gateway and the operator do not
    jitter = np.hypot(cfg.ws_jitter_bytes, np.where(ray, cfg.ray_heap_jitter_bytes, 0.0))
    if (jitter > 0).any():  # whole pages, independent from scrape to scrape (memcg batches; a Ray node's heaps)
        ws = ws + 4096.0 * np.round(o.rng.normal(0.0, 1.0, ws.shape) * (jitter / 4096.0))
    if cfg.ray_heap_growth_bytes_s > 0:  # a Ray node's processes' heaps creep up
        ws[:, ray] += cfg.ray_heap_growth_bytes_s * (o.st - o.st[0])[:, None]
    out: dict[str, dict[str, np.ndarray]] = {}
    for p, c in enumerate(o.comps):
        taken, last = _prom_samples(int(phases[p]), S, k)
        cpu = _two_sample_rate(res.pod["cpu_s"][:, p], taken, last, dt)
        noise = o.nz.mul(np.ones(taken.size + 1))
        cpu = cpu * noise[np.maximum(last, 0)]
        out[c] = {"cpu": np.maximum(cpu, 0.0), "mem": _two_sample_rate(ws[:, p], taken, last, dt) / 1000.0}
        # ctn_network: (rate(container_network_transmit_packets_total[1m]) / 1000)², transmitted packets squared
        pk = _two_sample_rate(res.pod["tx_packets"][:, p], taken, last, dt) * noise[np.maximum(last, 0)]
        out[c]["net-tx"] = np.square(np.maximum(pk, 0.0) / 1000.0)
    if cfg.artifact_latency:
        for c, lat in artifact_latency(o, k).items():
            out[c].update(lat)
    return out


def artifact_latency(o: _Obs, k: int) -> dict[str, dict[str, np.ndarray]]:
    """``latency-50`` / ``latency-90`` of the basic set as the paper's exporter built them (rca-llm ``export_rca_data.py``).

    The exporter asks for ``histogram_quantile(q, sum(irate(istio_request_duration_milliseconds_bucket
    {reporter="waypoint"}[1m])) by (source, destination, le))``: one quantile per *edge* of the mesh over the
    last two of Prometheus' samples of the waypoint (``prom_scrape_s`` apart; NaN when no request finished,
    the query's ``> 0`` drops it), queried twice (as source and as destination) and added; then every
    component's latency is the **sum of the quantiles of every edge it is on** (``aggregate_latency``).  The
    mesh carries the gateway's calls into each pod's Serve proxy (the serve service) and the operator's calls
    to the head's dashboard; Ray's actor calls bypass it (paper §5.5).  So the gateway's latency is the sum of
    the latencies into every serving pod: every pod's symptom surfaces there.  Seconds, shape ``(S,)`` each.
    """
    cfg, rq, st, S, R, span = o.cfg, o.rq, o.st, o.S, o.R, o.span
    fin = ((rq["status"] == DONE) | (rq["status"] == FAILED)) & np.isfinite(rq["t_done"])
    t_end = rq["t_done"][fin]
    dur = t_end - rq["arrival"][fin] - cfg.hop_latency_s - res_extra(o, "pre_head")[fin]
    ing = rq["ingress"][fin]
    win = k * span
    taken, last = _prom_samples(int(o.rng.integers(0, k)), S, k)
    at = np.where(last >= 0, taken[np.maximum(last, 0)], 0)

    def edge(t: np.ndarray, v_s: np.ndarray) -> np.ndarray:
        q = window_quantiles(t, v_s * 1e3, None, st, ISTIO_MS_BUCKETS, win, (0.5, 0.9)) / 1e3
        q = q[at]
        q[last < 0] = np.nan
        return 2.0 * q  # source + destination: the same query twice, added

    edges = {o.comps[r]: edge(t_end[ing == r], dur[ing == r]) for r in range(R)}
    op_t, op_ms = _operator_calls(o)  # the operator's calls to the head's dashboard (GET /api/serve/applications)
    op = edge(op_t, op_ms / 1e3)
    total = np.nansum(np.stack(list(edges.values())), axis=0)
    comps = {GATEWAY: total, HEAD: np.nansum(np.stack([edges[HEAD], op]), axis=0), OPERATOR: np.nan_to_num(op)}
    for r in range(1, R):
        # a pod no request entered is on no mesh edge (Ray's actor calls bypass the mesh): no latency series
        comps[o.comps[r]] = np.nan_to_num(edges[o.comps[r]]) if (ing == r).any() else np.full((S, 2), np.nan)
    return {c: {"latency-50": v[:, 0], "latency-90": v[:, 1]} for c, v in comps.items()}


def _gaps(o: _Obs) -> None:
    """Scrapes lost (delayed pod) and dead actors leave gaps (NaN) in the pod-local and vLLM series."""
    res, R, S, cols = o.res, o.R, o.S, o.cols
    up = res.rep["up"].astype(bool)
    for p, c in enumerate(o.comps):
        lost = res.scrape_lost[:, p]
        dead = ~up[:, p] if p < R else np.zeros(S, dtype=bool)
        for name in list(cols[c]):
            hit = np.zeros(S, dtype=bool)
            if name.startswith(POD_LOCAL_PREFIXES):
                hit |= lost
            if name.startswith("vllm:"):
                hit |= dead
            if hit.any():
                arr = np.array(cols[c][name], dtype=float)  # never write into the run's own arrays
                arr[hit] = np.nan
                cols[c][name] = arr


#: Basic-set columns the paper's methods never saw (``basic_queries="artifact"`` leaves them out): rca-llm's
#: exporter has one network column per container (``ctn_network``, our ``net-tx``) and no received-bytes rate;
#: its preparation (``prepare_llm_ref_stack_dataset``) merges only ``latency_aggregated_90`` into ``data.csv``,
#: and its harness (``rca-benchmark/main.py``) drops any ``_latency-50`` column besides.  The extended set keeps both.
ARTIFACT_LEFT_OUT: tuple[str, ...] = ("net-rx", "latency-50")


def _frames(o: _Obs, basic: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, pd.DataFrame]:
    """The catalogue's columns in order (series with no sample at all are left out, as in Prometheus).

    ``basic`` (``{component: {metric: series}}``) replaces series of the basic set only (the exporter's queries);
    with ``basic_queries="artifact"`` the basic set also leaves out :data:`ARTIFACT_LEFT_OUT`.
    """
    comps, R, st, cols = o.comps, o.R, o.st, o.cols
    basic = basic or {}
    order = [GATEWAY, HEAD, *[c for c in comps[1:R]], OPERATOR]
    out = {}
    # the extended set holds what llmrca's collector reads from a real Prometheus: the catalogue's series and
    # the histogram means (PROMETHEUS_EXTRA, from _sum / _count)
    for set_name, defs in (("basic", BASIC), ("extended", BASIC + EXTENDED + PROMETHEUS_EXTRA)):
        data: dict[str, np.ndarray] = {"time": np.round(st, 3)}
        left_out = ARTIFACT_LEFT_OUT if set_name == "basic" and o.cfg.basic_queries == "artifact" else ()
        for c in order:
            for md in defs:
                if not _applies(md.where, c) or md.name in left_out:
                    continue
                v = basic.get(c, {}).get(md.name) if set_name == "basic" else None
                v = cols[c].get(md.name) if v is None else v
                if v is None:
                    raise KeyError(f"simulator has no series for {c}_{md.name}; add it to observe.build_frames")
                v = np.asarray(v, dtype=float)
                if np.isnan(v).all():
                    continue  # no sample in the whole case: Prometheus has no such series
                data[f"{c}_{md.name}"] = v
        out[set_name] = pd.DataFrame(data)
    return out


def _applies(where: str, comp: str) -> bool:
    if where == "all":
        return True
    if where == "serving":
        return is_serving(comp)
    if where == "gateway":
        return comp == GATEWAY
    if where == "head":
        return comp == HEAD
    return False
