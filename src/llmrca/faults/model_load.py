"""Slow model (re)load: a restarted replica that takes minutes to become ready (issue 16).

* :class:`SimSlowModelLoad` (simulator): at the fault's start the target replica is
  restarted gracefully (its pod rescheduled — a node drained for an upgrade, a spot node
  reclaimed): the router stops sending it requests, its in-flight requests finish (up to
  Ray Serve's ``graceful_shutdown_timeout_s``, 20 s), the actor exits, and the new replica
  loads the model from cold storage at ``storage_mb_s`` MB/s instead of the node's cache:
  ``weights / rate`` seconds (minutes for a 14 GB model at 60 MB/s) against the normal
  ``SimConfig.load_time_s``.  Meanwhile the replica is unready, its capacity lost; the other
  replicas take its load; its pod receives the weights (network in) and keeps a core busy.
  The Serve controller warns every 30 s that the replica is slow to initialize.

Source: Ray Serve docs, "Configure Ray Serve deployments" (``graceful_shutdown_timeout_s``,
health checks) and the controller's warning "Deployment … has 1 replicas that have taken more
than 30s to initialize. This may be caused by a slow __init__ or reconfigure method."; vLLM's
"Loading weights took … seconds" startup line; the vLLM docs on model loading from remote
storage (``--load-format``, Run:ai Model Streamer) for cold loads.

A restarted vLLM replica is unready until its weights are loaded and its
engine is built; when the weights come over a slow or contended store (a
network file system, a cold object-store cache, a model download) this
takes minutes.  vLLM logs it as "Loading safetensors checkpoint shards" and
"Model loading took X GiB and Y seconds"; the Ray Serve docs
(Serve "Production guide: Fault tolerance") describe the replica's health
check failing and traffic routed to the other replicas meanwhile.  Cold
starts of minutes are the motivation of vLLM's ``--load-format
runai_streamer`` and tensorizer loaders (vLLM docs, "Loading models with Run:ai
Model Streamer").

* :class:`LocalSlowModelLoad` (local testbed): ``model_load.json`` in the pod
  directory, then the supervisor's restart endpoint kills the engine; the
  supervisor (Ray's role) starts it again and the new engine "loads" for
  ``load_s`` seconds before it listens: the sidecar answers 503, the router
  health-checks the replica out, the other replicas take its share.  Undoing
  the fault ends a load still in progress (the file goes; the replica
  becomes ready), so the replica is unready for ``min(load_s, duration)``.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import numpy as np

from llmrca.faults.local import LocalInjector, control_in_force, control_owner, engine_metrics
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun

GRACEFUL_SHUTDOWN_S = 20.0  # Ray Serve's default graceful_shutdown_timeout_s


class SimSlowModelLoad(SimFault):
    """The target replica restarts and loads its weights from cold storage at ``storage_mb_s`` MB/s."""

    type = "model-load"
    defaults: ClassVar[dict[str, Any]] = {"storage_mb_s": 60.0}
    roles = ("head", "worker")

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``storage_mb_s`` > 0."""
        return ["storage_mb_s must be > 0 (MB/s the weights are read at)"] if p["storage_mb_s"] <= 0 else []

    def bind(self, run: SimRun) -> None:
        """Not restarted yet; the cold load time from the model's weight bytes."""
        super().bind(run)
        self.weight_bytes = run.sim.gpus[self.tgt].model.weight_bytes
        self.load_s = self.weight_bytes / (float(self.params["storage_mb_s"]) * 1e6)
        self.drain_at: float | None = None
        self.stop_at: float | None = None
        self.healthy_at: float | None = None
        self.unready_s = 0.0
        self.rx_bytes = 0.0
        self.next_warn = np.inf

    def on_tick(self, run: SimRun, t: float, on: bool) -> None:
        """Drain at the start, stop the actor once idle (or after the grace period), stream the weights while loading."""
        tgt = self.tgt
        if on and self.drain_at is None:
            self.drain_at = t
            run.routable[tgt] = False
            run.cands = [i for i in range(run.R) if run.routable[i]]
            run.events.append((t, self.target, "replica-draining"))
            run.fault_logs.append((t, "ray-head", f"INFO controller -- Stopping 1 replica of deployment 'LLMServer' in application 'llm' on {self.target}: node is draining (pod rescheduled)."))
        if self.drain_at is not None and self.stop_at is None and (run.ongoing[tgt] == 0 or t >= self.drain_at + GRACEFUL_SHUTDOWN_S):
            self.stop_at = t
            run.load_time[tgt] = self.load_s
            run.kill_actor(tgt, t, 503, detect_s=None)
            self.next_warn = t + run.cfg.restart_delay_s + 30.0
            run.fault_logs.append((t + run.cfg.restart_delay_s, self.target, f"INFO {_ts(t + run.cfg.restart_delay_s)} [model_runner.py:1041] Starting to load model (weights not in the local cache; downloading)..."))
        if self.stop_at is None or self.healthy_at is not None:
            return
        if run.alive[tgt]:
            self.healthy_at = t
            run.fault_logs.append((t, self.target, f"INFO {_ts(t)} [default_loader.py:262] Loading weights took {self.load_s:.2f} seconds"))
            return
        self.unready_s += run.dt
        if np.isfinite(run.healthy_at[tgt]):
            b = self.weight_bytes / self.load_s * run.dt
            run.rx[tgt] += b
            self.rx_bytes += b
        if t >= self.next_warn:
            self.next_warn = t + 30.0
            run.fault_logs.append((t, "ray-head", "WARNING controller -- Deployment 'LLMServer' in application 'llm' has 1 replicas that have taken "
                                                  "more than 30s to initialize. This may be caused by a slow __init__ or reconfigure method."))

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """Cold load time (s), seconds the replica was unready within the run, bytes of weights received, when it was healthy again."""
        return {
            "load_s": round(self.load_s, 1),
            "normal_load_s": run.cfg.load_time_s,
            "drained_after_s": None if self.drain_at is None else round(self.drain_at - self.start, 2),
            "unready_s": round(self.unready_s, 1),
            "weights_received_bytes": int(self.rx_bytes),
            "healthy_after_s": None if self.healthy_at is None else round(self.healthy_at - self.start, 1),
        }


def _ts(t: float) -> str:
    return time.strftime("%m-%d %H:%M:%S", time.gmtime(t))


class HealthProbe:
    """GETs ``url`` every ``period_s`` in a thread; records (epoch s, ok) per probe."""

    def __init__(self, url: str, period_s: float = 0.5) -> None:
        self.url, self.period_s = url, period_s
        self.samples: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thr = threading.Thread(target=self._run, daemon=True)
        self._thr.start()

    def _run(self) -> None:
        with httpx.Client(timeout=2.0) as c:
            while not self._stop.wait(self.period_s):
                try:
                    ok = c.get(self.url).status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.samples.append((time.time(), ok))

    def stop(self) -> None:
        """Stop probing (idempotent)."""
        self._stop.set()
        self._thr.join(timeout=5)

    def unready_s(self) -> float:
        """Seconds from the first failed probe to the first good one after it (or to the last probe)."""
        first_bad = next((t for t, ok in self.samples if not ok), None)
        if first_bad is None:
            return 0.0
        back = next((t for t, ok in self.samples if ok and t > first_bad), None)
        return (back if back is not None else self.samples[-1][0]) - first_bad

    @property
    def failed(self) -> int:
        """Probes that failed."""
        return sum(1 for _, ok in self.samples if not ok)


def replica_starts(tb: Any, pod: str) -> float:
    """``ray_serve_deployment_replica_starts_total`` of ``pod``'s supervisor (0 when it does not answer)."""
    return engine_metrics(f"http://127.0.0.1:{tb.state.pods[pod]['ports']['sup']}").get("ray_serve_deployment_replica_starts_total", 0.0)


def sidecar_codes(tb: Any, pod: str) -> dict[str, float]:
    """``istio_requests_total`` of ``pod``'s sidecar by response code (the pod's inbound API requests; survives engine restarts)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(f"http://127.0.0.1:{tb.state.pods[pod]['ports']['stats']}/stats/prometheus", timeout=5.0).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "istio_requests_total":
                code = s.labels.get("response_code", "")
                out[code] = out.get(code, 0.0) + float(s.value)
    return out


def finished_requests(tb: Any, pods: list[str]) -> dict[str, float]:
    """``vllm:request_success_total`` of each pod's engine (None-free: a pod that does not answer is left out)."""
    out = {}
    for p in pods:
        m = engine_metrics(str(tb.state.pods[p]["admin"]))
        if m:
            out[p] = m.get("vllm:request_success_total", 0.0)
    return out


class LocalSlowModelLoad(LocalInjector):
    """Restart the target's engine with a ``load_s``-second model load; measures unready time, restarts and who served meanwhile.

    Parameters: ``load_s`` (seconds the load takes, > 0; default 90, the
    local scale of "minutes"), ``source`` (a label written in the load log
    line).  Achieved: replica starts (from Ray's counter), seconds the pod's
    API was unready, failed health probes, the target's inbound requests by
    response code (its sidecar's ``istio_requests_total``) and the requests
    the other serving replicas finished during the fault.
    """

    needs_engine = True

    fault_type = "model-load"
    defaults: ClassVar[dict[str, Any]] = {"load_s": 90.0, "source": "s3://models/emulated-7b (cold cache)"}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``load_s`` in (0, 3600]."""
        try:
            return [] if 0 < float(p["load_s"]) <= 3600 else [f"load_s={p['load_s']} must be in (0, 3600] seconds"]
        except (TypeError, ValueError):
            return [f"load_s={p['load_s']!r} must be a number of seconds"]

    def _others(self) -> list[str]:
        return [p for p, i in self.tb.state.pods.items() if "admin" in i and p != self.spec.target]

    def _begin(self, load_s: float) -> None:
        """Shared by this fault and the Xid fault: snapshot, write the load file, start the probe."""
        ctl = self.pod_dir / "model_load.json"
        if control_in_force(ctl):  # said at once, not after waiting for the engine the other fault keeps loading
            raise FaultError(f"a {control_owner(ctl) or 'model-load'} fault on {self.spec.target} is already in place "
                             "(model_load.json, another injection?): wait for it to end, or stop it (llmrca testbed down "
                             "removes every fault)")
        self._engine_state(wait_s=60.0)
        self.starts0 = replica_starts(self.tb, self.spec.target)
        self.done0 = finished_requests(self.tb, self._others())
        self.codes0 = sidecar_codes(self.tb, self.spec.target)
        self.load_ctl = self._write_control("model_load.json", {"load_s": load_s, "source": str(self.params.get("source", ""))})
        self.t0 = time.time()
        self.probe = HealthProbe(self.tb.state.pods[self.spec.target]["health"])

    def start(self) -> None:
        """Write ``model_load.json`` and have the supervisor restart the engine; raises FaultError when it cannot."""
        self._begin(float(self.params["load_s"]))
        sup = f"http://127.0.0.1:{self.tb.state.pods[self.spec.target]['ports']['sup']}/admin/restart"
        try:
            r = httpx.post(sup, timeout=5.0).json()
        except (httpx.HTTPError, ValueError) as e:
            raise FaultError(f"the supervisor of {self.spec.target} did not restart its engine: {e}") from e
        self.killed_pid = r.get("killed")

    def _common(self) -> dict[str, Any]:
        self.probe.stop()
        done1 = finished_requests(self.tb, self._others())
        others = [p for p in self._others() if p in done1 and p in self.done0]
        codes1 = sidecar_codes(self.tb, self.spec.target)
        codes = {c: int(codes1.get(c, 0) - self.codes0.get(c, 0)) for c in codes1 if codes1.get(c, 0) > self.codes0.get(c, 0)}
        return {
            "replica_starts": int(replica_starts(self.tb, self.spec.target) - self.starts0),
            "unready_s": round(self.probe.unready_s(), 1),
            "failed_probes": self.probe.failed,
            "probes": len(self.probe.samples),
            "target_requests_by_code": codes,
            "target_requests_failed": sum(n for c, n in codes.items() if not c.startswith("2")),
            "others_requests_finished": int(sum(done1[p] - self.done0[p] for p in others)) if others else None,
        }

    def measure(self) -> dict[str, Any]:
        """Restarts, unready seconds, failed probes, the target's requests by code, requests the others finished; the engine killed."""
        return {**self._common(), "load_s_requested": float(self.params["load_s"]), "killed_pid": getattr(self, "killed_pid", None)}

    def stop(self) -> None:
        """Remove ``model_load.json`` (a load in progress ends; idempotent)."""
        if getattr(self, "probe", None) is not None:
            self.probe.stop()
        if getattr(self, "load_ctl", None) is not None:
            self.load_ctl.unlink(missing_ok=True)
            self.load_ctl = None
