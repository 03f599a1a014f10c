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

The local-testbed implementation lives next to it (``LocalSlowModelLoad``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

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
