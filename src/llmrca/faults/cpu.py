"""The CPU hog (Chaos Mesh StressChaos ``cpu``; paper §4.3): stressors in the target pod's cgroup.

One fault type, every backend side by side:

* :class:`SimCpuHog` (simulator): ``workers`` stress threads at ``load`` % join
  the pod's cgroup; under the CFS quota every runnable thread gets
  ``quota / threads`` of a core, so the engine's CPU work stretches, steps get
  longer, and the pod is throttled.
* :class:`LocalCpuHog` (local testbed): stress-ng CPU workers started inside
  the pod's cgroup.
* :class:`K8sCpuHog` (Kubernetes): a Chaos Mesh ``StressChaos`` with
  ``stressors.cpu.workers`` / ``load`` on the target pod, its achieved CPU read
  from cAdvisor through Prometheus.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.faults.kubernetes import ChaosInjector
from llmrca.faults.local import CLK_TCK, STRESS_NG, LocalInjector
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault, pod_base_cpu, proxy_wait_s

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun


class SimCpuHog(SimFault):
    """Stress threads competing with the engine in the target pod's CPU quota."""

    type = "cpu"
    # StressChaos cpu: 16 stressors at 100 % load in the target container's cgroup
    defaults: ClassVar[dict[str, Any]] = {"workers": 16, "load": 100}
    ends_on = ("restart",)  # the stressor dies with the container
    roles = ("gateway", "head", "worker", "operator")  # a StressChaos fits in any pod

    @classmethod
    def placed_on(cls, role: str, target: str = "") -> type[SimFault]:
        """A worker: this class; the gateway, the head (its Serve proxy) or the operator: :class:`SimProxyCpuHog`."""
        super().placed_on(role, target)
        return cls if role == "worker" or cls is not SimCpuHog else SimProxyCpuHog

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``workers`` >= 1 and ``load`` in 1..100 (per cent)."""
        bad = []
        if p["workers"] < 1:
            bad.append("workers must be >= 1")
        if not 0 < p["load"] <= 100:
            bad.append("load must be in 1..100 (per cent)")
        return bad

    def bind(self, run: SimRun) -> None:
        """Reset the hog's CPU seconds."""
        super().bind(run)
        self.threads = float(self.params.get("workers", 0))
        self.load = float(self.params.get("load", 100)) / 100.0
        self.hog_cpu_s = 0.0

    def cpu_share(self, run: SimRun, share: np.ndarray, on: bool) -> np.ndarray:
        """CFS: the engine's threads get ``quota / (hog threads x load + engine threads)`` of their demand (<= 1)."""
        if not on:
            return share
        share = share.copy()
        share[self.tgt] = min(1.0, run.quota / (self.threads * self.load + run.cfg.engine_threads))
        return share

    def on_cpu(self, run: SimRun, cpu_work: np.ndarray, share: np.ndarray, on: bool) -> None:
        """The pod's CPU counter: the engine's throttled share plus the hog's use (cores x tick), throttled seconds."""
        if not on:
            return
        tgt, dt = self.tgt, run.dt
        want = self.threads * self.load
        # CFS gives the engine thread only its share of a core while the stressors run
        run.cpu_s[tgt] -= cpu_work[tgt] * (1.0 - share[tgt])
        eng = run.base_cpu[tgt] + cpu_work[tgt] * share[tgt] / dt
        used = max(0.0, min(want, run.quota - eng))
        run.cpu_s[tgt] += used * dt
        self.hog_cpu_s += used * dt
        run.thr_s[tgt] += max(eng + want - run.quota, 0.0) * dt

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """``hog_cpu_seconds`` (CPU s the stressors got) and ``hog_cores_mean`` (over the fault's duration)."""
        dur = self.end - self.start
        return {"hog_cpu_seconds": round(float(self.hog_cpu_s), 3), "hog_cores_mean": round(float(self.hog_cpu_s) / dur, 3)}


def _group_cpu_s(pgid: int, pids: list[int]) -> float:
    """utime+stime of the processes of group ``pgid`` among ``pids`` (from /proc)."""
    total = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(f[2]) == pgid:  # field 5 (pgrp) is index 2 after the comm
            total += int(f[11]) + int(f[12])
    return total / CLK_TCK


class LocalCpuHog(LocalInjector):
    """stress-ng CPU workers in the target pod's cgroup; measures the pod's and the hog's CPU seconds and throttling."""

    fault_type = "cpu"
    # the paper: 16 stressors at 100 % in an 8-CPU pod (2 per CPU of quota); here 4 on a 0.4-CPU pod, enough to
    # fill the quota even when the node is oversubscribed (a stressor gets only its fair share of a busy node)
    defaults: ClassVar[dict[str, Any]] = {"workers": 4, "load": 100}

    def start(self) -> None:
        """Start the stressors in the pod's cgroup; raises FaultError when stress-ng is missing."""
        if not Path(STRESS_NG).exists():
            raise FaultError(f"{STRESS_NG} is missing; install the Debian package stress-ng")
        self.cpu0 = self.cg.cpu_usage_s()
        self.thr0 = self.cg.cpu_throttled_s()
        self.t0 = time.time()
        self.hog_cpu_s = 0.0
        self._spawn_in_pod([STRESS_NG, "--cpu", str(int(self.params["workers"])), "--cpu-load", str(int(self.params["load"])),
                            "--timeout", f"{int(self._expiry())}s", "--quiet"])

    def measure(self) -> dict[str, Any]:
        """Pod CPU seconds and cores, quota, the hog's own CPU seconds, throttled seconds, the window (s)."""
        dt = max(time.time() - self.t0, 1e-6)
        cpu = self.cg.cpu_usage_s() - self.cpu0
        if self.pgid is not None:  # the stressors' own count, or what stop() read before it killed them (an interrupt)
            self.hog_cpu_s = max(self.hog_cpu_s, _group_cpu_s(self.pgid, self.cg.pids()))
        quota = self.cg.cpu_quota_cores()
        return {
            "pod_cpu_s": round(cpu, 3),
            "pod_cpu_cores": round(cpu / dt, 3),
            "pod_cpu_quota_cores": quota,
            "pod_cpu_share_of_quota": round(cpu / dt / quota, 3) if quota != float("inf") else None,
            "hog_cpu_s": round(self.hog_cpu_s, 3),
            "throttled_s": round(self.cg.cpu_throttled_s() - self.thr0, 3),
            "window_s": round(dt, 2),
        }

    def stop(self) -> None:
        """Kill the stressors' process group (idempotent), reading their CPU seconds first: an interrupt stops the
        fault before it is measured, and a killed process's seconds are gone from /proc."""
        if self.pgid is not None:
            with contextlib.suppress(OSError):
                self.hog_cpu_s = max(self.hog_cpu_s, _group_cpu_s(self.pgid, self.cg.pids()))
        self._kill_group()


class K8sCpuHog(ChaosInjector):
    """Chaos Mesh ``StressChaos`` ``stressors.cpu`` (``workers`` at ``load`` %) in the target pod's serving container.

    Achieved: Chaos Mesh's conditions and records (:func:`~llmrca.faults.kubernetes.chaos_status`) and,
    when a Prometheus is given, the pod's CPU cores (cAdvisor ``container_cpu_usage_seconds_total``,
    1-minute rate) and its CPU limit (kube-state-metrics).
    """

    fault_type = "cpu"
    chaos_kind = "StressChaos"
    # the paper: 16 stressors at 100 % in the 8-CPU pod
    defaults: ClassVar[dict[str, Any]] = {"workers": 16, "load": 100}

    def chaos_spec(self) -> dict[str, Any]:
        """``stressors.cpu`` with the requested workers and load."""
        return {"stressors": {"cpu": {"workers": int(self.params["workers"]), "load": int(self.params["load"])}}}

    def extra(self) -> dict[str, Any]:
        """``pod_cpu_cores`` (1-min rate) and ``pod_cpu_limit_cores`` read through Prometheus (None without one)."""
        sel = f'namespace="{self.namespace}",pod="{self.pod_name}"'
        return {
            "pod_cpu_cores": self.prom_value(f'sum(rate(container_cpu_usage_seconds_total{{{sel},container!=""}}[1m]))'),
            "pod_cpu_limit_cores": self.prom_value(f'sum(kube_pod_container_resource_limits{{{sel},resource="cpu"}})'),
        }


class SimProxyCpuHog(SimCpuHog):
    """The CPU hog in a pod that proxies every request (the NGINX gateway, the head's Ray Serve proxy) or in the operator.

    The stressors fill the pod's CFS quota as in a worker; the proxy's threads then get
    ``quota / (stress threads x load + 1)`` of their demand and every request waits for them
    (:func:`~llmrca.testbed.sim.faults.proxy_wait_s`: the request in and the last streamed chunk
    out, each up to the rest of a CFS period).  On the head the replica's engine is starved as
    on a worker too.  The operator proxies nothing: only its CPU and throttling show the hog.
    """

    def bind(self, run: SimRun) -> None:
        """As :class:`SimCpuHog`; the proxy's CPU share and whether requests pass through the target."""
        super().bind(run)
        self.replica = self.tgt < run.R
        self.delays_path = self.target in (run.sim.components[0], run.sim.components[run.GW])
        self.path_before_head = self.tgt == run.GW
        self.proxy_share = min(1.0, run.quota / (self.threads * self.load + 1.0))
        self.waits: list[float] = []

    def cpu_share(self, run: SimRun, share: np.ndarray, on: bool) -> np.ndarray:
        """The head's engine is starved as on a worker; a pod without a replica leaves the engines alone."""
        return super().cpu_share(run, share, on) if self.replica else share

    def path_delay(self, run: SimRun) -> float:
        """Seconds a request waits for the starved proxy (draws from the engine's generator)."""
        w = proxy_wait_s(run.rng, self.proxy_share)
        self.waits.append(w)
        return w

    def on_cpu(self, run: SimRun, cpu_work: np.ndarray, share: np.ndarray, on: bool) -> None:
        """A replica pod: as :class:`SimCpuHog`; another pod: the stressors use the quota left by its idle work."""
        if self.replica:
            super().on_cpu(run, cpu_work, share, on)
            return
        if not on:
            return
        tgt, dt = self.tgt, run.dt
        want = self.threads * self.load
        base = pod_base_cpu(run, tgt)
        used = max(0.0, min(want, run.quota - base))
        run.cpu_s[tgt] += used * dt
        self.hog_cpu_s += used * dt
        run.thr_s[tgt] += max(base + want - run.quota, 0.0) * dt

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """As :class:`SimCpuHog`, plus the requests delayed by the proxy and their mean wait (ms)."""
        out = super().achieved(run)
        if self.delays_path:
            out["requests_delayed"] = len(self.waits)
            out["mean_proxy_wait_ms"] = round(1e3 * float(np.mean(self.waits)), 2) if self.waits else None
        return out
