"""Log lines the stack writes: gateway access log, Serve request lines, vLLM's
periodic throughput line, and the OOM / actor death / restart story."""

from __future__ import annotations

import time as _time

import numpy as np
import pandas as pd

from llmrca.telemetry import GATEWAY, HEAD, OPERATOR
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import DONE, FAILED, SimResult

_EVENT_LINES = {
    "oom-kill": [
        "Memory cgroup out of memory: Killed process {pid} (ray::ServeReplica:llm:LLMServer) total-vm:48213404kB, anon-rss:{rss}kB, oom_score_adj:1000",
        "(raylet) A worker died or was killed while executing a task by an unexpected system error. Worker exit type: SYSTEM_ERROR "
        "Worker exit detail: Worker unexpectedly exits with a connection error code 2. The process was killed by the OOM killer.",
    ],
    "oom-kill-stressor": ["Memory cgroup out of memory: Killed process {pid} (memStress) oom_score_adj:-997"],
    "replica-removed": ["ERROR controller -- Replica {rid} of deployment 'LLMServer' in application 'llm' died unexpectedly: ActorDiedError"],
    "replica-starting": ["INFO controller -- Adding 1 replica to deployment 'LLMServer' in application 'llm' (restarting {rid})."],
    "replica-healthy": ["INFO controller -- Replica {rid} of deployment 'LLMServer' in application 'llm' is healthy and ready to serve."],
    "gpu-power-limit": [],
}


def _ts(t: np.ndarray | float) -> str:
    return _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(float(t)))


def _nginx_ts(t: float, cache: dict[int, str]) -> str:
    """nginx's ``$time_local`` (UTC) of epoch second ``t`` (>= 0); ``cache`` holds the seconds already formatted."""
    sec = int(t)  # gmtime floors a positive time to its second
    out = cache.get(sec)
    if out is None:
        out = cache[sec] = _time.strftime("%d/%b/%Y:%H:%M:%S", _time.gmtime(sec))
    return out


def operator_reconciles(cfg: SimConfig, t0: float, t_end: float, rng: np.random.Generator) -> np.ndarray:
    """Instants (epoch s, increasing, in ``[t0, t_end)``) of the KubeRay operator's RayService reconciles.

    The RayService controller requeues itself ``cfg.operator_requeue_s`` after
    each reconcile ends (KubeRay ``ServiceDefaultRequeueDuration``, 2 s), so
    the period drifts by the reconcile's own duration (lognormal around
    ``cfg.operator_reconcile_s``, CV 1: API-server round trips).  One log line
    per reconcile: the operator's log count per 5-s step varies (2 or 3
    lines), it is never a constant series.
    """
    n = int((t_end - t0) / cfg.operator_requeue_s) + 2
    sig = np.sqrt(np.log(2.0))
    work = cfg.operator_reconcile_s * rng.lognormal(-sig * sig / 2, sig, n) if cfg.operator_reconcile_s > 0 else np.zeros(n)
    t = t0 + cfg.operator_requeue_s * rng.random() + np.cumsum(cfg.operator_requeue_s + work)
    return t[t < t_end]


def build_logs(res: SimResult, rng: np.random.Generator) -> pd.DataFrame:
    """The run's log lines in the recorded window, sorted by time: columns ``time`` (epoch s), ``container_name``, ``message``.

    ``rng`` draws the pids and replica ids of the fault story.
    """
    rq = res.requests
    comps = res.components
    R = res.n_replicas
    t0 = res.record_start
    fin = ((rq["status"] == DONE) | (rq["status"] == FAILED)) & (rq["t_done"] >= t0) & (rq["t_done"] < res.t_end)
    idx = np.flatnonzero(fin)
    t_end = rq["t_done"][idx]
    dur = t_end - rq["arrival"][idx]
    status = np.where(rq["status"][idx] == DONE, 200, rq["code"][idx])
    nbytes = (rq["gen"][idx] * res.cfg.bytes_per_output_token).astype(int)
    rows_t: list[float] = []
    rows_c: list[str] = []
    rows_m: list[str] = []
    # gateway access log (nginx, upstream response time)
    ts_cache: dict[int, str] = {}
    for i, te, d, s, b in zip(idx.tolist(), t_end.tolist(), dur.tolist(), status.tolist(), nbytes.tolist(), strict=True):
        rows_t.append(te)
        rows_c.append(GATEWAY)
        rows_m.append(
            f'10.42.0.{i % 250 + 2} - - [{_nginx_ts(te, ts_cache)} +0000] "POST /v1/chat/completions HTTP/1.1" {s} {b} "-" "locust/2.31" rt={d:.3f} urt={d:.3f}'
        )
    # Ray Serve: one line per request on the replica that served it; errors on the proxy that accepted it
    rep = rq["replica"][idx]
    ing = np.where(rq["ingress"][idx] >= 0, rq["ingress"][idx], 0)  # the proxy that accepted the request
    for te, d, s, r, g in zip(t_end.tolist(), dur.tolist(), status.tolist(), rep.tolist(), ing.tolist(), strict=True):
        if r < 0:
            continue
        if s == 200:
            rows_t.append(te)
            rows_c.append(comps[r])
            rows_m.append(f"INFO replica.py:376 -- POST /v1/chat/completions OK {d * 1e3:.1f}ms")
        else:
            rows_t.append(te)
            rows_c.append(comps[g])
            why = "ActorDiedError: the replica actor died unexpectedly" if s == 502 else "request timed out"
            rows_m.append(f"ERROR proxy.py:1011 -- POST /v1/chat/completions {s} {d * 1e3:.1f}ms: {why} (replica on {comps[r]})")
    # vLLM's periodic stats line
    st = res.scrape_t
    every = max(1, round(res.cfg.vllm_log_interval_s / res.cfg.scrape_interval_s))
    span = res.cfg.scrape_interval_s * every
    for s in range(every, st.size, every):
        for r in range(R):
            if not res.rep["up"][s, r]:
                continue
            pt = max(res.rep["prompt_tokens"][s, r] - res.rep["prompt_tokens"][s - every, r], 0.0) / span
            gt = max(res.rep["gen_tokens"][s, r] - res.rep["gen_tokens"][s - every, r], 0.0) / span
            rows_t.append(st[s])
            rows_c.append(comps[r])
            rows_m.append(
                f"INFO {_ts(st[s])} [loggers.py:123] Engine 000: Avg prompt throughput: {pt:.1f} tokens/s, "
                f"Avg generation throughput: {gt:.1f} tokens/s, Running: {int(res.rep['running'][s, r])} reqs, "
                f"Waiting: {int(res.rep['waiting'][s, r])} reqs, GPU KV cache usage: {100 * res.rep['kv_usage'][s, r]:.1f}%, "
                "Prefix cache hit rate: 0.0%"
            )
    # operator reconcile loop
    for tt in operator_reconciles(res.cfg, t0, res.t_end, rng).tolist():
        rows_t.append(tt)
        rows_c.append(OPERATOR)
        rows_m.append('INFO controllers.RayService reconciling RayService {"RayService": {"name":"llm","namespace":"llm"}}')
    # fault story
    for t, comp, kind in res.events:
        if not t0 <= t < res.t_end:
            continue
        rid = f"llm#LLMServer#{comp.split('-')[-1]}{int(rng.integers(1000, 9999))}"
        for line in _EVENT_LINES.get(kind, []):
            rows_t.append(t)
            rows_c.append(comp if kind in ("oom-kill", "oom-kill-stressor") else HEAD)
            rows_m.append(line.format(pid=int(rng.integers(200, 9000)), rss=int(res.cfg.actor_memory_gib * 2**20), rid=rid))
    # lines a fault wrote itself (driver Xid reports, vLLM preemption warnings, slow-start warnings)
    for t, comp, msg in getattr(res, "fault_logs", ()):
        if t0 <= t < res.t_end:
            rows_t.append(t)
            rows_c.append(comp)
            rows_m.append(msg)
    df = pd.DataFrame({"time": np.round(np.asarray(rows_t, dtype=float), 6), "container_name": rows_c, "message": rows_m})
    return df.sort_values("time", kind="stable").reset_index(drop=True)
