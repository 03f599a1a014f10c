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

Another workload on the same node (a batch job, a tokenizer-heavy sidecar of
another pod, a co-located training job) competes for the cores the serving
pod runs on.  The pod's own CPU usage does not rise — it falls, since it gets
less of the core — while its run-queue wait (the kernel's CPU pressure,
PSI ``cpu.pressure`` / ``/proc/<pid>/schedstat``), step times and latency
rise and the node's CPU fills.  Kubernetes' static CPU manager policy
(Kubernetes docs, "Control CPU Management Policies on the Node") exists
because CPU-sensitive workloads suffer from sharing cores with other pods;
without it, a pod's CFS quota bounds what it may use but guarantees nothing
when the cores are busy.

* :class:`LocalNoisyNeighbour` (local testbed): the target pod's processes
  are moved into a cpuset (cgroup v1 ``cpuset``) holding ``cpus``, and
  ``workers`` stress-ng CPU workers run in a SIBLING cgroup
  ``llmrca/<run>/noisy-<pod>`` (its own cpu/cpuacct/memory cgroup, not the
  pod's, with ``weight`` times a pod's CPU shares) pinned to the same CPUs.
  The neighbour's CPU is not charged to the pod.  The neighbour is
  ``sh -c 'stress-ng ... --timeout T; <unpin the pod>'``, so a vanished
  injector's pinning ends with the neighbour; ``llmrca testbed down``
  removes the cgroups.  cgroup v2 is not supported (FaultError).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.faults.local import CLK_TCK, STRESS_NG, LocalInjector, engine_metrics
from llmrca.testbed.injection import FaultError
from llmrca.testbed.local import cgroups as cgr
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


CPUSET_FS = cgr.CGROUP_FS / "cpuset"


def parse_cpus(text: str) -> list[int]:
    """CPU ids from ``"1"``, ``"0,1"`` or ``"0-1"``; raises ValueError on anything else."""
    out: set[int] = set()
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out.update(range(int(a), int(b) + 1))
        else:
            out.add(int(part))
    return sorted(out)


def task_wait_s(pids: list[int]) -> float:
    """Seconds the threads of ``pids`` spent runnable but waiting for a CPU (``/proc/<pid>/task/*/schedstat`` field 2)."""
    total = 0
    for pid in pids:
        for st in Path(f"/proc/{pid}/task").glob("*/schedstat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                total += int(st.read_text().split()[1])
    return total / 1e9


def node_busy_s() -> float:
    """CPU seconds the node spent busy (all CPUs, from /proc/stat: total minus idle and iowait)."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(f) - f[3] - f[4]) / CLK_TCK


def _cpuset_of(pid: int) -> str | None:
    """The cpuset cgroup path of ``pid`` (``/`` for the root), or None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if "cpuset" in ctrls.split(","):
                return path
    except (OSError, ValueError):
        return None
    return None


class LocalNoisyNeighbour(LocalInjector):
    """stress-ng in a sibling cgroup pinned with the target pod to the same CPUs; measures the pod's CPU, its wait, the node's CPU.

    Parameters: ``workers`` (stress-ng CPU workers, 1..64), ``cpus`` (the
    CPUs both are pinned to, e.g. ``"1"`` or ``"0-1"``; empty: the highest
    CPU this process may use), ``weight`` (the neighbour's CPU shares in
    pods, 0.1..64).  Achieved: the pod's CPU cores before (2 s) and during,
    its run-queue wait per second before and during, its throttled seconds,
    the neighbour's CPU seconds, node CPU busy (cores) before and during,
    the engine's mean end-to-end latency before (since start) and during.
    """

    fault_type = "noisy-neighbour"
    defaults: ClassVar[dict[str, Any]] = {"workers": 2, "cpus": "", "weight": 4.0}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``workers`` 1..64, ``weight`` 0.1..64, ``cpus`` CPUs this process may run on."""
        bad = []
        try:
            if not 1 <= int(p["workers"]) <= 64:
                bad.append("workers must be in 1..64")
            if not 0.1 <= float(p["weight"]) <= 64:
                bad.append("weight must be in 0.1..64 (the neighbour's CPU shares, in pods)")
        except (TypeError, ValueError) as e:
            bad.append(f"workers and weight must be numbers: {e}")
        try:
            cpus = parse_cpus(p["cpus"])
            allowed = os.sched_getaffinity(0)
            if any(c not in allowed for c in cpus):
                bad.append(f"cpus={p['cpus']!r} is not a subset of this node's CPUs {sorted(allowed)}")
        except ValueError:
            bad.append(f"cpus={p['cpus']!r} must be CPU ids like '1', '0,1' or '0-1' (empty: the last CPU)")
        return bad

    def __init__(self, spec: Any, **context: Any) -> None:
        super().__init__(spec, **context)
        self.cpus = parse_cpus(self.params["cpus"]) or [max(os.sched_getaffinity(0))]
        rid = self.tb.state.run_id
        self.rel_pod = f"{cgr.PREFIX}/{rid}/{spec.target}"
        self.rel_nb = f"{cgr.PREFIX}/{rid}/noisy-{spec.target}"

    # -- cpuset (cgroup v1) ------------------------------------------------------------
    def _mkcpuset(self, rel: str, cpus: str | None) -> Path:
        """Create ``rel`` and its parents in the cpuset hierarchy; parents get their parent's CPUs, the leaf ``cpus``."""
        cur = CPUSET_FS
        mems = (CPUSET_FS / "cpuset.mems").read_text().strip()
        parts = Path(rel).parts
        for i, part in enumerate(parts):
            parent_cpus = (cur / "cpuset.cpus").read_text().strip()
            cur = cur / part
            if not cur.is_dir():
                cur.mkdir()
                (cur / "cpuset.cpus").write_text(parent_cpus)
                (cur / "cpuset.mems").write_text(mems)
            if i == len(parts) - 1 and cpus is not None:
                (cur / "cpuset.cpus").write_text(cpus)
        return cur

    def _sample(self) -> dict[str, float]:
        pids = self.cg.pids()
        return {"t": time.monotonic(), "cpu": self.cg.cpu_usage_s(), "wait": task_wait_s(pids), "thr": self.cg.cpu_throttled_s(), "node": node_busy_s()}

    def start(self) -> None:
        """Measure 2 s, pin the pod, start the neighbour; raises FaultError (undoing what was done) when it cannot."""
        if self.tb.state.cgroup_version != 1 or not (CPUSET_FS / "cpuset.cpus").exists():
            raise FaultError("noisy-neighbour needs the cgroup v1 cpuset controller (/sys/fs/cgroup/cpuset); not available here")
        if not Path(STRESS_NG).exists():
            raise FaultError(f"{STRESS_NG} is missing; install the Debian package stress-ng")
        self.engine = self.tb.state.pods[self.spec.target].get("admin")
        self.m0 = engine_metrics(self.engine) if self.engine else {}
        s0 = self._sample()
        time.sleep(2.0)
        s1 = self._sample()
        dt = s1["t"] - s0["t"]
        self.base = {k: (s1[k] - s0[k]) / dt for k in ("cpu", "wait", "node")}
        cpus = ",".join(str(c) for c in self.cpus)
        try:
            self.cs_pod = self._mkcpuset(self.rel_pod, cpus)
            self.cs_nb = self._mkcpuset(self.rel_nb, cpus)
            self.origin: dict[int, str] = {}
            for pid in self.cg.pids():
                o = _cpuset_of(pid)
                if o is not None:
                    self.origin[pid] = o
                    with contextlib.suppress(OSError):
                        (self.cs_pod / "cgroup.procs").write_text(str(pid))
            self.home = max(set(self.origin.values()), key=list(self.origin.values()).count) if self.origin else "/"
            self.nb = cgr.PodCgroup(self.rel_nb, 1)
            self.nb.create(float(len(self.cpus)), 256 * 2**20)
            (cgr.CGROUP_FS / "cpu" / self.rel_nb / "cpu.shares").write_text(str(int(1024 * float(self.params["weight"]))))
            self.nb_cpu0 = self.nb.cpu_usage_s()
            home_procs = CPUSET_FS / self.home.lstrip("/") / "cgroup.procs"
            unpin = f"for p in $(cat {shlex.quote(str(self.cs_pod / 'cgroup.procs'))}); do echo $p > {shlex.quote(str(home_procs))}; done"
            cmd = f"{STRESS_NG} --cpu {int(self.params['workers'])} --cpu-load 100 --timeout {int(self._expiry())}s --quiet; {unpin}"
            self._spawn_in_pod(["/bin/sh", "-c", cmd], cgroup=self.nb, also_join=(self.cs_nb / "cgroup.procs",))
        except (OSError, cgr.CgroupError) as e:
            self.stop()
            raise FaultError(f"cannot set up the noisy neighbour of {self.spec.target}: {e}") from e
        self.s_start = self._sample()
        self.t0 = time.time()

    def measure(self) -> dict[str, Any]:
        """Pod CPU, wait and throttling, neighbour and node CPU, engine latency (see the class docstring)."""
        s = self._sample()
        dt = max(s["t"] - self.s_start["t"], 1e-6)
        m1 = engine_metrics(self.engine) if self.engine else {}
        e2e = "vllm:e2e_request_latency_seconds"
        n0, n1 = self.m0.get(e2e + "_count", 0.0), m1.get(e2e + "_count", 0.0)
        return {
            "cpus": self.cpus,
            "pod_cpu_cores_before": round(self.base["cpu"], 3),
            "pod_cpu_cores_during": round((s["cpu"] - self.s_start["cpu"]) / dt, 3),
            "pod_wait_per_s_before": round(self.base["wait"], 3),
            "pod_wait_per_s_during": round((s["wait"] - self.s_start["wait"]) / dt, 3),
            "pod_throttled_s": round(s["thr"] - self.s_start["thr"], 3),
            "neighbour_cpu_s": round(self.nb.cpu_usage_s() - self.nb_cpu0, 3) if self.nb.exists() else None,
            "node_busy_cores_before": round(self.base["node"], 3),
            "node_busy_cores_during": round((s["node"] - self.s_start["node"]) / dt, 3),
            "e2e_mean_s_before": round(self.m0.get(e2e + "_sum", 0.0) / n0, 3) if n0 else None,
            "e2e_mean_s_during": round((m1.get(e2e + "_sum", 0.0) - self.m0.get(e2e + "_sum", 0.0)) / (n1 - n0), 3) if n1 > n0 else None,
            "window_s": round(dt, 2),
        }

    def stop(self) -> None:
        """Kill the neighbour, move the pod's processes back, remove the cpusets and the neighbour's cgroup (idempotent)."""
        self._kill_group()
        cs_pod = getattr(self, "cs_pod", None)
        if cs_pod is not None and cs_pod.is_dir():
            home = CPUSET_FS / getattr(self, "home", "/").lstrip("/") / "cgroup.procs"
            for _ in range(3):  # a process forked meanwhile (an engine restart) joins the pinned set: sweep until empty
                pids = (cs_pod / "cgroup.procs").read_text().split()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        home.write_text(pid)
        if getattr(self, "nb", None) is not None:
            with contextlib.suppress(cgr.CgroupError, OSError):
                self.nb.remove()
        for d in (getattr(self, "cs_nb", None), cs_pod):
            if d is not None and d.is_dir():
                with contextlib.suppress(OSError):
                    d.rmdir()
        if cs_pod is not None:  # the run's and the prefix's cpusets, unless another pinning still uses them (EBUSY)
            for d in (cs_pod.parent, cs_pod.parent.parent):
                with contextlib.suppress(OSError):
                    d.rmdir()
