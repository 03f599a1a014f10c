"""Noisy neighbour: CPU contention from outside the pod, on its node (issue 16).

* :class:`SimNoisyNeighbour` (simulator): other tenants on the target's node (a batch job,
  another team's pods, ``workers`` busy threads at ``load`` %) saturate its ``node_cpus``
  cores.  The pod's own quota is not the limit — its threads are runnable but wait for a
  core: CFS shares the node between all runnable threads (the neighbours' Burstable pods
  weigh as much as ours), so the engine gets ``node_cpus / (neighbour threads + engine
  threads + system)`` of its demand and its steps stretch (TTFT and inter-token latency
  up).  The pod's CPU usage does *not* rise (it gets less done per second); its CPU
  pressure (PSI "some": time runnable threads waited) does, and so does the node's CPU.
  The pod is not over its quota, so CFS throttling stays where it was.  On the gateway or
  the head the proxy's threads wait for a core on every request.

Source: Linux ``Documentation/accounting/psi.rst`` (CPU pressure: "some" = time at least
one task was runnable but not running) and ``Documentation/scheduler/sched-bwc.rst`` (CFS
throttling only at the quota); cAdvisor's ``container_pressure_cpu_waiting_seconds_total``
(PSI per container, cAdvisor >= 0.49 / Kubernetes KEP-4205); node-exporter's
``node_cpu_seconds_total``; the Kubernetes docs on CPU requests as CFS weights.

The local-testbed implementation lives next to it (``LocalNoisyNeighbour``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.testbed.sim.faults import SimFault, pod_base_cpu, proxy_wait_s

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun


class SimNoisyNeighbour(SimFault):
    """``workers`` busy threads of other tenants on the target's ``node_cpus``-core node."""

    type = "noisy-neighbour"
    defaults: ClassVar[dict[str, Any]] = {"workers": 32, "load": 100, "node_cpus": 16}
    roles = ("gateway", "head", "worker")

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``workers`` >= 1, ``load`` in 1..100 per cent, ``node_cpus`` >= 1."""
        bad = []
        if p["workers"] < 1:
            bad.append("workers must be >= 1")
        if not 0 < p["load"] <= 100:
            bad.append("load must be in 1..100 (per cent)")
        if p["node_cpus"] < 1:
            bad.append("node_cpus must be >= 1")
        return bad

    def bind(self, run: SimRun) -> None:
        """The share of its demand the target's threads get on the saturated node."""
        super().bind(run)
        p = self.params
        self.want = float(p["workers"]) * float(p["load"]) / 100.0
        self.node = float(p["node_cpus"])
        self.replica = self.tgt < run.R
        runnable = self.want + (run.cfg.engine_threads if self.replica else 1.0) + run.cfg.node_system_cores
        self.share = min(1.0, self.node / runnable)
        self.delays_path = self.target in (run.sim.components[0], run.sim.components[run.GW])
        self.path_before_head = self.tgt == run.GW
        self.waited_s = 0.0
        self.neighbour_s = 0.0
        self.waits: list[float] = []

    def cpu_share(self, run: SimRun, share: np.ndarray, on: bool) -> np.ndarray:
        """The replica's engine gets :attr:`share` of its CPU demand while the neighbours run."""
        if not (on and self.replica):
            return share
        share = share.copy()
        share[self.tgt] = min(share[self.tgt], self.share)
        return share

    def path_delay(self, run: SimRun) -> float:
        """A proxy's wait for a core on one request (draws from the engine's generator)."""
        w = proxy_wait_s(run.rng, self.share)
        self.waits.append(w)
        return w

    def on_cpu(self, run: SimRun, cpu_work: np.ndarray, share: np.ndarray, on: bool) -> None:
        """The pod's CPU: only what its threads got; the rest of their demand is CPU pressure; the neighbours fill the node."""
        if not on:
            return
        tgt, dt = self.tgt, run.dt
        if self.replica:
            waited = cpu_work[tgt] * (1.0 - share[tgt])
            run.cpu_s[tgt] -= waited
            pod_cores = pod_base_cpu(run, tgt) + cpu_work[tgt] * share[tgt] / dt
        else:
            waited = dt * (1.0 - self.share) * min(1.0, pod_base_cpu(run, tgt) + 0.05)
            pod_cores = pod_base_cpu(run, tgt)
        run.psi_s[tgt] += waited
        self.waited_s += waited
        other = max(0.0, min(self.want, self.node - run.cfg.node_system_cores - pod_cores)) * dt
        run.node_other_s[tgt] += other
        self.neighbour_s += other

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """The target's CPU share, seconds its threads waited (PSI), the neighbours' mean cores, proxy waits (ms)."""
        dur = self.end - self.start
        out: dict[str, Any] = {
            "cpu_share": round(self.share, 3),
            "pressure_waited_s": round(float(self.waited_s), 3),
            "neighbour_cores_mean": round(float(self.neighbour_s) / dur, 3),
        }
        if self.delays_path:
            out["requests_delayed"] = len(self.waits)
            out["mean_proxy_wait_ms"] = round(1e3 * float(np.mean(self.waits)), 2) if self.waits else None
        return out
