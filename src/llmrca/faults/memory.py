"""The memory leak (Chaos Mesh StressChaos ``memory``; paper §4.3): bytes held in the target pod's cgroup.

One fault type, every backend side by side:

* :class:`SimMemoryLeak` (simulator): the stressor's bytes grow linearly to
  ``size_gb`` over the fault and count against the pod's limit; near the
  limit CPU work stalls in direct reclaim; at the limit the kernel kills the
  process with the highest ``oom_score_adj`` (the Ray worker running the
  replica, 1000), whose requests fail with 502, and the Serve controller
  restarts it; if the pod is still over its limit, the stressor goes next.
* :class:`LocalMemoryLeak` (local testbed): :mod:`llmrca.faults.leak` started
  inside the pod's cgroup.
* :class:`K8sMemoryLeak` (Kubernetes): a Chaos Mesh ``StressChaos`` with
  ``stressors.memory.workers`` / ``size`` on the target pod.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.faults.kubernetes import ChaosInjector
from llmrca.faults.local import LocalInjector
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun


class SimMemoryLeak(SimFault):
    """A stressor allocating ``size_gb`` GB (10^9 bytes) over the fault in the target pod."""

    type = "memory"
    # StressChaos memory: 1 stressor allocating 8 GB over the fault
    defaults: ClassVar[dict[str, Any]] = {"workers": 1, "size_gb": 8.0}
    ends_on = ("restart",)  # the stressor dies with the container
    roles = ("gateway", "head", "worker", "operator")  # a StressChaos fits in any pod

    @classmethod
    def placed_on(cls, role: str, target: str = "") -> type[SimFault]:
        """A serving pod: this class; the gateway or the operator: :class:`SimPodMemoryLeak`."""
        super().placed_on(role, target)
        return SimPodMemoryLeak if role in ("gateway", "operator") and cls is SimMemoryLeak else cls

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``size_gb`` > 0."""
        return ["size_gb must be > 0"] if p["size_gb"] <= 0 else []

    def bind(self, run: SimRun) -> None:
        """Reset the bytes held, the peak and the OOM-kill time."""
        super().bind(run)
        self.leak_bytes = float(self.params.get("size_gb", 0.0)) * 1e9
        self.alive = True  # the stressor process
        self.held = 0.0
        self.peak = 0.0
        self.oom_kill_s: float | None = None

    def held_bytes(self) -> float:
        """Bytes the stressor holds in this tick (0 once the fault is over or the stressor was killed)."""
        return self.held

    def on_memory(self, run: SimRun, t1: float, on: bool) -> None:
        """Working sets with the leak at ``t1`` (``run.mem_prev`` drives reclaim stalls); the OOM killer at the limit."""
        self.held = 0.0
        run.mem_prev = run.zeros_r  # no pressure unless the leak holds memory (below)
        if not (on and self.alive):
            return
        tgt, limit = self.tgt, run.mem_limit
        mem = run.base_mem[: run.R] + run.actor_mem * run.actor_frac + run.cfg.request_memory_bytes * run.inflight()
        run.mem_prev = mem
        held = self.held = self.leak_bytes * min(1.0, (t1 - self.start) / (self.end - self.start))
        mem[tgt] += held
        self.peak = max(self.peak, held)
        if mem[tgt] <= limit:
            return
        run.failcnt[tgt] += 1
        if run.alive[tgt] or np.isfinite(run.healthy_at[tgt]):
            # the Ray worker (oom_score_adj 1000) goes first
            if self.oom_kill_s is None:
                self.oom_kill_s = t1 - self.start
            run.events.append((t1, self.target, "oom-kill"))
            run.kill_actor(tgt, t1, 502, detect_s=run.cfg.death_detect_s)
            mem[tgt] -= run.actor_mem
        if mem[tgt] > limit:
            self.alive = False  # then the stressor itself
            mem[tgt] -= held
            run.events.append((t1, self.target, "oom-kill-stressor"))

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """``peak_bytes_held``, ``oom_killed`` and ``oom_kill_after_s`` (seconds after the fault's start)."""
        return {
            "peak_bytes_held": int(self.peak),
            "oom_killed": self.oom_kill_s is not None,
            "oom_kill_after_s": None if self.oom_kill_s is None else round(self.oom_kill_s, 2),
        }


def _count_lines(path: Path, needle: str) -> int:
    try:
        with open(path, errors="replace") as fh:
            return sum(1 for ln in fh if needle in ln)
    except FileNotFoundError:
        return 0


class LocalMemoryLeak(LocalInjector):
    """An allocator process in the target pod's cgroup; measures bytes held, the pod's peak, OOM kills and restarts."""

    fault_type = "memory"
    # the paper: 8 GB in a 16 GiB pod (half the limit), growing quickly
    defaults: ClassVar[dict[str, Any]] = {"fraction": 0.5, "bytes": 0, "rate_mib_s": 64.0}

    def start(self) -> None:
        """Start the allocator in the pod's cgroup (``bytes`` or ``fraction`` of the limit) and watch the pod's memory."""
        limit = self.cg.memory_limit_bytes()
        self.target_bytes = int(self.params["bytes"]) or int(float(self.params["fraction"]) * limit)
        log = self.pod_dir / f"{self.spec.target}.log"
        self.log = log
        self.oom0 = self.cg.oom_kills()
        self.fail0 = self.cg.memory_failcnt()
        self.starts0 = _count_lines(log, "Starting replica")
        self.monitor0 = _count_lines(log, "Ray killed this worker")
        self.status = self.pod_dir / "leak.json"
        self.peak = self.cg.memory_usage_bytes()
        self.held_max = 0
        self._stop = threading.Event()
        self._thr = threading.Thread(target=self._watch, daemon=True)
        self._thr.start()
        self._spawn_in_pod([sys.executable, "-m", "llmrca.faults.leak", "--bytes", str(self.target_bytes), "--rate-mib-s",
                            str(self.params["rate_mib_s"]), "--timeout", str(self._expiry()), "--status", str(self.status)], oom_score_adj=-500)
        self.t0 = time.time()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            with contextlib.suppress(OSError, ValueError):
                self.peak = max(self.peak, self.cg.memory_usage_bytes())
            with contextlib.suppress(OSError, ValueError, KeyError):
                self.held_max = max(self.held_max, int(json.loads(self.status.read_text())["held_bytes"]))

    def measure(self) -> dict[str, Any]:
        """Bytes requested and held, the pod's peak and limit (bytes), OOM and memory-monitor kills, restarts, failcnt."""
        self._stop.set()
        self._thr.join(timeout=2)
        return {
            "requested_bytes": self.target_bytes,
            "held_bytes": self.held_max,
            "pod_memory_peak_bytes": self.peak,
            "pod_memory_limit_bytes": self.cg.memory_limit_bytes(),
            "oom_kills": self.cg.oom_kills() - self.oom0,
            "memory_monitor_kills": _count_lines(self.log, "Ray killed this worker") - self.monitor0,
            "engine_restarts": _count_lines(self.log, "Starting replica") - self.starts0,
            "failcnt": self.cg.memory_failcnt() - self.fail0,
        }

    def stop(self) -> None:
        """Kill the allocator and remove its status file (idempotent)."""
        if hasattr(self, "_stop"):
            self._stop.set()
        self._kill_group()
        with contextlib.suppress(FileNotFoundError):
            self.status.unlink()




class K8sMemoryLeak(ChaosInjector):
    """Chaos Mesh ``StressChaos`` ``stressors.memory`` (``workers`` workers holding ``size_gb`` GB in all) in the target's serving container.

    Achieved: Chaos Mesh's conditions and records and, when a Prometheus is given, the pod's
    working set (cAdvisor ``container_memory_working_set_bytes``, bytes), its memory limit and the
    containers' restarts so far (kube-state-metrics), which show the OOM kill the paper describes.
    """

    fault_type = "memory"
    chaos_kind = "StressChaos"
    # the paper: 1 worker, 8 GB, in the 16 GiB pod
    defaults: ClassVar[dict[str, Any]] = {"workers": 1, "size_gb": 8.0}

    def chaos_spec(self) -> dict[str, Any]:
        """``stressors.memory`` with the workers and the size in MB (Chaos Mesh's ``size``: ``<n>MB``)."""
        mb = round(float(self.params["size_gb"]) * 1000)
        return {"stressors": {"memory": {"workers": int(self.params["workers"]), "size": f"{mb}MB"}}}

    def extra(self) -> dict[str, Any]:
        """``pod_memory_bytes``, ``pod_memory_limit_bytes``, ``restarts`` read through Prometheus (None without one)."""
        sel = f'namespace="{self.namespace}",pod="{self.pod_name}"'
        return {
            "pod_memory_bytes": self.prom_value(f'sum(container_memory_working_set_bytes{{{sel},container!=""}})'),
            "pod_memory_limit_bytes": self.prom_value(f'sum(kube_pod_container_resource_limits{{{sel},resource="memory"}})'),
            "restarts": self.prom_value(f"sum(kube_pod_container_status_restarts_total{{{sel}}})"),
        }


class SimPodMemoryLeak(SimMemoryLeak):
    """The memory leak in a pod without a replica (the NGINX gateway, the KubeRay operator).

    The stressor's bytes grow in the pod's working set as in a serving pod.  At the cgroup limit
    the kernel's OOM killer would take the stressor (NGINX's and the operator's processes keep
    their default ``oom_score_adj``, the stressor is the largest); the default 8 GB stays below
    the 16 GiB limit, so the pod's memory is the whole story: nothing in the request path slows.
    """

    def on_memory(self, run: SimRun, t1: float, on: bool) -> None:
        """The bytes held at ``t1``; at the limit the stressor is killed (no replica to take with it)."""
        self.held = 0.0
        if not (on and self.alive):
            return
        held = self.leak_bytes * min(1.0, (t1 - self.start) / (self.end - self.start))
        if run.base_mem[self.tgt] + held > run.mem_limit:
            run.failcnt[self.tgt] += 1
            self.alive = False
            run.events.append((t1, self.target, "oom-kill-stressor"))
            return
        self.held = held
        self.peak = max(self.peak, held)

    def on_scrape(self, run: SimRun, s: int, on: bool) -> None:
        """The pod's working set at scrape ``s`` holds the stressor's bytes."""
        if self.held:
            run.pod_s["mem_ws"][s, self.tgt] = run.base_mem[self.tgt] + self.held
