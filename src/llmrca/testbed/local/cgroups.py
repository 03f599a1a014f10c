"""Per-pod cgroups: CPU quota and memory limit, v1 or v2, detected at run time.

A pod's cgroup is ``<root>/llmrca/<run_id>/<pod>`` in every controller
hierarchy we use.  On cgroup v1 that is ``cpu`` (quota, throttling),
``cpuacct`` (usage) and ``memory`` (limit, usage, failcnt, OOM kills); on
cgroup v2 one directory under the unified mount with ``cpu.max`` /
``memory.max``.  v2 is used only when its ``cgroup.controllers`` offers both
``cpu`` and ``memory`` (this machine's v2 mount has neither, PROTOCOL §5).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
PREFIX = "llmrca"
PERIOD_US = 100_000


class CgroupError(RuntimeError):
    """A cgroup could not be created, configured or removed."""


def detect_version(fs: Path = CGROUP_FS) -> int:
    """2 when a unified hierarchy with cpu+memory is mounted, 1 when v1 cpu/memory exist; else raise."""
    for cand in (fs, fs / "unified"):
        ctl = cand / "cgroup.controllers"
        if ctl.exists():
            have = set(ctl.read_text().split())
            if {"cpu", "memory"} <= have:
                return 2
    if (fs / "cpu" / "cpu.cfs_quota_us").exists() and (fs / "memory" / "memory.limit_in_bytes").exists():
        return 1
    raise CgroupError(
        f"no usable cgroup hierarchy under {fs}: need v1 cpu+memory controllers or a v2 mount offering cpu and memory; "
        "run as root on Linux with cgroups mounted"
    )


def _v2_root(fs: Path) -> Path:
    if (fs / "cgroup.controllers").exists() and {"cpu", "memory"} <= set((fs / "cgroup.controllers").read_text().split()):
        return fs
    return fs / "unified"


@dataclass(frozen=True)
class PodCgroup:
    """The cgroup(s) of one pod.  ``rel`` is ``llmrca/<run_id>/<pod>``."""

    rel: str
    version: int
    fs: Path = CGROUP_FS

    # -- paths -----------------------------------------------------------------
    @property
    def dirs(self) -> list[Path]:
        """The pod's cgroup folders (one on v2; cpu, cpuacct and memory on v1)."""
        if self.version == 2:
            return [_v2_root(self.fs) / self.rel]
        return [self.fs / c / self.rel for c in ("cpu", "cpuacct", "memory")]

    def _f(self, ctrl: str, name: str) -> Path:
        if self.version == 2:
            return _v2_root(self.fs) / self.rel / name
        return self.fs / ctrl / self.rel / name

    # -- lifecycle ---------------------------------------------------------------
    def create(self, cpu_cores: float, memory_bytes: int) -> None:
        """Create the cgroup with a CPU quota of ``cpu_cores`` cores and a memory limit of ``memory_bytes``; raises OSError without permission."""
        if self.version == 2:
            root = _v2_root(self.fs)
            # enable the controllers down the path so the leaf gets cpu.max/memory.max
            parts = Path(self.rel).parts
            cur = root
            for p in parts:
                try:
                    (cur / "cgroup.subtree_control").write_text("+cpu +memory")
                except OSError as e:
                    raise CgroupError(f"cannot enable cpu/memory controllers in {cur}: {e}") from e
                cur = cur / p
                cur.mkdir(exist_ok=True)
        else:
            for d in self.dirs:
                d.mkdir(parents=True, exist_ok=True)
        self.set_cpu(cpu_cores)
        self.set_memory(memory_bytes)

    def set_cpu(self, cores: float) -> None:
        """Set the CFS quota to ``cores`` cores (period ``PERIOD_US`` µs)."""
        quota = int(cores * PERIOD_US)
        if self.version == 2:
            self._f("cpu", "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            self._f("cpu", "cpu.cfs_period_us").write_text(str(PERIOD_US))
            self._f("cpu", "cpu.cfs_quota_us").write_text(str(quota))

    def set_memory(self, limit: int) -> None:
        """Set the memory limit to ``limit`` bytes (and no swap where the kernel allows)."""
        if self.version == 2:
            self._f("memory", "memory.max").write_text(str(int(limit)))
            try:
                self._f("memory", "memory.swap.max").write_text("0")
            except OSError:
                pass
        else:
            self._f("memory", "memory.limit_in_bytes").write_text(str(int(limit)))
            try:  # no swap escape: the pod dies at its limit, as a container does
                self._f("memory", "memory.swappiness").write_text("0")
            except OSError:
                pass

    def add(self, pid: int) -> None:
        """Move ``pid`` (and, on v1 via cgroup.procs, its whole thread group) into the pod."""
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def exists(self) -> bool:
        """Whether any of the pod's cgroup folders exists."""
        return any(d.exists() for d in self.dirs)

    def pids(self) -> list[int]:
        """Process ids in the cgroup (empty when it is gone)."""
        out: set[int] = set()
        for d in self.dirs:
            try:
                out.update(int(x) for x in (d / "cgroup.procs").read_text().split())
            except OSError:
                continue
        return sorted(out)

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL every process in the pod's cgroup until it is empty; return how many were signalled."""
        n = 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return n
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                    n += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        left = self.pids()
        if left:
            raise CgroupError(f"processes {left} in {self.rel} survived SIGKILL for {timeout_s} s")
        return n

    def remove(self) -> None:
        """Kill every process in the cgroup and remove its folders."""
        self.kill_all()
        for d in self.dirs:
            _rmdir_tree(d)

    # -- readings (what cAdvisor reports) --------------------------------------------
    def cpu_usage_s(self) -> float:
        """CPU seconds the cgroup used since it was created."""
        if self.version == 2:
            return _kv(self._f("cpu", "cpu.stat"))["usage_usec"] / 1e6
        return int(self._f("cpuacct", "cpuacct.usage").read_text()) / 1e9

    def cpu_throttled_s(self) -> float:
        """Seconds the cgroup was throttled by its CFS quota."""
        st = _kv(self._f("cpu", "cpu.stat"))
        if self.version == 2:
            return st.get("throttled_usec", 0) / 1e6
        return st.get("throttled_time", 0) / 1e9

    def cpu_quota_cores(self) -> float:
        """The CPU quota in cores (``inf`` without one)."""
        if self.version == 2:
            q, p = self._f("cpu", "cpu.max").read_text().split()
            return float("inf") if q == "max" else int(q) / int(p)
        q = int(self._f("cpu", "cpu.cfs_quota_us").read_text())
        p = int(self._f("cpu", "cpu.cfs_period_us").read_text())
        return float("inf") if q < 0 else q / p

    def memory_usage_bytes(self) -> int:
        """Memory charged to the cgroup now (bytes)."""
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        return int(self._f("memory", name).read_text())

    def memory_working_set_bytes(self) -> int:
        """usage minus inactive file pages, as cAdvisor computes it."""
        st = _kv(self._f("memory", "memory.stat"))
        inactive = st.get("inactive_file", st.get("total_inactive_file", 0))
        return max(self.memory_usage_bytes() - inactive, 0)

    def memory_limit_bytes(self) -> int:
        """The memory limit (bytes; 2**63 - 1 without one)."""
        name = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        raw = self._f("memory", name).read_text().strip()
        return 2**63 - 1 if raw == "max" else int(raw)

    def memory_failcnt(self) -> int:
        """Times the cgroup hit its memory limit (v2: ``memory.events`` max)."""
        if self.version == 2:
            return _kv(self._f("memory", "memory.events")).get("max", 0)
        return int(self._f("memory", "memory.failcnt").read_text())

    def oom_kills(self) -> int:
        """Processes the kernel OOM-killed in the cgroup."""
        if self.version == 2:
            return _kv(self._f("memory", "memory.events")).get("oom_kill", 0)
        return _kv(self._f("memory", "memory.oom_control")).get("oom_kill", 0)


def _kv(path: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _rmdir_tree(d: Path) -> None:
    if not d.exists():
        return
    for sub in sorted((p for p in d.iterdir() if p.is_dir()), reverse=True):
        _rmdir_tree(sub)
    for _ in range(50):
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)  # a killed process may still be leaving the group
    raise CgroupError(f"cannot remove cgroup {d}: still busy; check `cat {d}/cgroup.procs`")


def set_group_weight(run_id: str, n_pods: int, version: int | None = None, fs: Path = CGROUP_FS) -> int:
    """Give ``llmrca`` and ``llmrca/<run_id>`` the CPU weight of ``n_pods`` ordinary tasks; return the v1 shares set.

    Why: CFS schedules a cgroup as one entity against its siblings.  Left at
    the default weight, the whole testbed (dozens of processes) would compete
    as *one* task against every other process of the node and get a sliver of
    it, so a pod could never reach its quota.  One task's weight per pod is
    what Kubernetes does (``kubepods`` gets shares in proportion to the pods'
    CPU); the quotas still cap each pod.
    """
    version = version or detect_version(fs)
    shares = 1024 * max(n_pods, 1)
    for rel in (PREFIX, f"{PREFIX}/{run_id}"):
        if version == 2:
            (_v2_root(fs) / rel / "cpu.weight").write_text(str(min(100 * max(n_pods, 1), 10000)))
        else:
            (fs / "cpu" / rel / "cpu.shares").write_text(str(shares))
    return shares


def run_cgroups(run_id: str, version: int | None = None, fs: Path = CGROUP_FS) -> list[PodCgroup]:
    """Every pod cgroup of a run that exists on disk (found by scanning our prefix)."""
    version = version or detect_version(fs)
    roots = [_v2_root(fs)] if version == 2 else [fs / c for c in ("cpu", "cpuacct", "memory")]
    names: set[str] = set()
    for r in roots:
        base = r / PREFIX / run_id
        if base.is_dir():
            names.update(p.name for p in base.iterdir() if p.is_dir())
    return [PodCgroup(f"{PREFIX}/{run_id}/{n}", version, fs) for n in sorted(names)]


def remove_run_root(run_id: str, version: int | None = None, fs: Path = CGROUP_FS) -> None:
    """Remove the cgroups of run ``run_id`` (and the shared prefix when it is empty); missing folders are fine."""
    version = version or detect_version(fs)
    # cpuset: the noisy-neighbour fault pins a pod and its neighbour there (llmrca.faults.noisy_neighbour)
    roots = [_v2_root(fs)] if version == 2 else [fs / c for c in ("cpu", "cpuacct", "memory", "cpuset") if c != "cpuset" or (fs / c).is_dir()]
    for r in roots:
        _rmdir_tree(r / PREFIX / run_id)
        top = r / PREFIX
        if top.is_dir() and not any(p.is_dir() for p in top.iterdir()):
            try:
                top.rmdir()
            except OSError:
                pass


def list_runs(fs: Path = CGROUP_FS) -> list[str]:
    """Run ids that have cgroups under our prefix."""
    try:
        version = detect_version(fs)
    except CgroupError:
        return []
    roots = [_v2_root(fs)] if version == 2 else [fs / c for c in ("cpu", "cpuacct", "memory")]
    out: set[str] = set()
    for r in roots:
        base = r / PREFIX
        if base.is_dir():
            out.update(p.name for p in base.iterdir() if p.is_dir())
    return sorted(out)
