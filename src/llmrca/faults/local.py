"""Real faults on the local testbed (:mod:`llmrca.testbed.local`).

* ``cpu``: stress-ng CPU workers started inside the target pod's cgroup, so
  they compete with the engine under the pod's quota (Chaos Mesh
  StressChaos attaches its stressors to the container's cgroup the same way).
* ``memory``: an allocator process inside the pod's cgroup grows to a share
  of the pod's limit and holds it; the engine (the pod's biggest process,
  ``oom_score_adj`` 1000) is then killed by the supervisor's Ray-like memory
  monitor or the kernel OOM killer, and restarted by the supervisor.
* ``network``: the pod's sidecar delays every inbound request by
  ``latency ± jitter`` with netem-style correlation (no netem in this kernel).
* ``gpu``: the emulated accelerator's power limit is set (``nvidia-smi -pl``)
  and read back from the engine.

Each records what it achieved.  Processes started by a fault are recorded in
the testbed's state file (so ``llmrca testbed down`` kills them) and expire
on their own after the fault's duration plus a margin.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx

from llmrca.faults.base import FaultError, Injector, register
from llmrca.testbed.local.stack import DEFAULT_RUN_DIR, LocalTestbed, State, proc_start_ticks

STRESS_NG = "/usr/bin/stress-ng"
EXPIRY_MARGIN_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LocalInjector(Injector):
    def __init__(self, spec, **context: Any) -> None:  # type: ignore[no-untyped-def]
        super().__init__(spec, **context)
        tb = context.get("testbed")
        if tb is None:
            tb = LocalTestbed.attach(context.get("run_dir") or DEFAULT_RUN_DIR)
        self.tb: LocalTestbed = tb
        if spec.target not in self.tb.state.pods:
            raise FaultError(f"target {spec.target!r} is not a pod of the testbed; pods: {', '.join(self.tb.state.pods)}")
        self.cg = self.tb.state.cgroup(spec.target)
        self.pod_dir = self.tb.state.pod_dir(spec.target)
        self.t0 = 0.0
        self.pgid: int | None = None

    @property
    def group_name(self) -> str:
        return f"fault/{self.fault_type}/{self.spec.target}"

    def _spawn_in_pod(self, cmd: list[str], oom_score_adj: int | None = None) -> int:
        cg = self.cg

        def pre() -> None:
            cg.add(os.getpid())
            if oom_score_adj is not None:
                # lowering needs CAP_SYS_RESOURCE, which a sandbox may withhold; the engine's +1000 decides anyway
                with contextlib.suppress(OSError):
                    Path("/proc/self/oom_score_adj").write_text(str(oom_score_adj))

        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        err = open(self.pod_dir / f"fault-{self.fault_type}.err", "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True, preexec_fn=pre, env=env)
        err.close()
        self.pgid = p.pid
        self._proc = p
        st = self.tb.state
        st.groups[self.group_name] = p.pid
        st.starts[self.group_name] = proc_start_ticks(p.pid) or 0
        st.save()
        return p.pid

    def _kill_group(self) -> None:
        if self.pgid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self._proc.wait(timeout=5)
        st = State.load(self.tb.state.run_dir)
        if st is not None and st.groups.pop(self.group_name, None) is not None:
            st.starts.pop(self.group_name, None)
            st.save()
            self.tb.state.groups.pop(self.group_name, None)
        self.pgid = None

    def _expiry(self) -> float:
        return float(self.spec.duration_s) + EXPIRY_MARGIN_S


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


class CpuHog(LocalInjector):
    fault_type = "cpu"
    # the paper: 16 stressors at 100 % in an 8-CPU pod (2 per CPU of quota); here 4 on a 0.4-CPU pod, enough to
    # fill the quota even when the node is oversubscribed (a stressor gets only its fair share of a busy node)
    defaults: ClassVar[dict[str, Any]] = {"workers": 4, "load": 100}

    def start(self) -> None:
        if not Path(STRESS_NG).exists():
            raise FaultError(f"{STRESS_NG} is missing; install the Debian package stress-ng")
        self.cpu0 = self.cg.cpu_usage_s()
        self.thr0 = self.cg.cpu_throttled_s()
        self.t0 = time.time()
        self.hog_cpu_s = 0.0
        self._spawn_in_pod([STRESS_NG, "--cpu", str(int(self.params["workers"])), "--cpu-load", str(int(self.params["load"])),
                            "--timeout", f"{int(self._expiry())}s", "--quiet"])

    def measure(self) -> dict[str, Any]:
        dt = max(time.time() - self.t0, 1e-6)
        cpu = self.cg.cpu_usage_s() - self.cpu0
        if self.pgid is not None:
            self.hog_cpu_s = _group_cpu_s(self.pgid, self.cg.pids())
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
        self._kill_group()


def _count_lines(path: Path, needle: str) -> int:
    try:
        with open(path, errors="replace") as fh:
            return sum(1 for ln in fh if needle in ln)
    except FileNotFoundError:
        return 0


class MemoryLeak(LocalInjector):
    fault_type = "memory"
    # the paper: 8 GB in a 16 GiB pod (half the limit), growing quickly
    defaults: ClassVar[dict[str, Any]] = {"fraction": 0.5, "bytes": 0, "rate_mib_s": 64.0}

    def start(self) -> None:
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
        if hasattr(self, "_stop"):
            self._stop.set()
        self._kill_group()
        with contextlib.suppress(FileNotFoundError):
            self.status.unlink()


def _probe_s(url: str, n: int, timeout: float) -> list[float]:
    out = []
    with httpx.Client(timeout=timeout) as c:
        for _ in range(n):
            t = time.perf_counter()
            try:
                c.get(url)
            except httpx.HTTPError:
                continue
            out.append(time.perf_counter() - t)
    return out


class NetworkDelay(LocalInjector):
    fault_type = "network"
    # the paper's NetworkChaos: latency 1000 ms, jitter 100 ms, correlation 0.25, direction "to"
    defaults: ClassVar[dict[str, Any]] = {"latency_ms": 1000.0, "jitter_ms": 100.0, "correlation": 0.25, "probes": 3}

    def _net(self) -> dict[str, float]:
        try:
            return json.loads((self.pod_dir / "net.json").read_text())
        except (OSError, ValueError):
            return {"delay_applied_ms_sum": 0.0, "delay_applied_n": 0}

    def start(self) -> None:
        self.url = self.tb.state.pods[self.spec.target]["health"]
        n = int(self.params["probes"])
        self.before = _probe_s(self.url, n, 5.0)
        self.net0 = self._net()
        self.ctl = self.pod_dir / "netem.json"
        tmp = self.ctl.with_suffix(".tmp")
        tmp.write_text(json.dumps({k: float(self.params[k]) for k in ("latency_ms", "jitter_ms", "correlation")} | {"expires_at": time.time() + self._expiry()}))
        os.replace(tmp, self.ctl)
        self.t0 = time.time()
        self.during: list[float] = []
        timeout = (float(self.params["latency_ms"]) + 3 * float(self.params["jitter_ms"])) / 1000 + 5

        def probe() -> None:
            time.sleep(0.6)  # the sidecar polls its control file every 0.25 s
            self.during = _probe_s(self.url, n, timeout)

        self._thr = threading.Thread(target=probe, daemon=True)
        self._thr.start()

    def measure(self) -> dict[str, Any]:
        self._thr.join(timeout=30)
        net = self._net()
        n = net.get("delay_applied_n", 0) - self.net0.get("delay_applied_n", 0)
        s = net.get("delay_applied_ms_sum", 0.0) - self.net0.get("delay_applied_ms_sum", 0.0)
        med_b = statistics.median(self.before) if self.before else None
        med_d = statistics.median(self.during) if self.during else None
        return {
            "sidecar_delayed_requests": int(n),
            "sidecar_mean_delay_ms": round(s / n, 1) if n else None,
            "probe_before_ms": round(med_b * 1000, 1) if med_b is not None else None,
            "probe_during_ms": round(med_d * 1000, 1) if med_d is not None else None,
            "added_latency_ms": round((med_d - med_b) * 1000, 1) if med_b is not None and med_d is not None else None,
        }

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ctl.unlink()


class GpuThrottle(LocalInjector):
    fault_type = "gpu"
    # the paper: nvidia-smi -pl 150 on a 300 W A100 (its minimum limit)
    defaults: ClassVar[dict[str, Any]] = {"power_limit_w": 150.0}

    def _admin(self) -> str:
        info = self.tb.state.pods[self.spec.target]
        if "admin" not in info:
            raise FaultError(f"{self.spec.target} has no GPU (only the serving pods do): choose ray-head or a ray-worker")
        return info["admin"] + "/admin/gpu"

    def _read(self) -> dict[str, Any]:
        return httpx.get(self._admin(), timeout=5.0).json()

    def _wait_limit(self, watts: float, timeout_s: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        r: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = self._read()
                if abs(float(r["power_limit_w"]) - watts) < 1e-6:
                    return r
            time.sleep(0.2)
        raise FaultError(f"power limit of {self.spec.target} reads {r.get('power_limit_w')} W, not {watts} W, after {timeout_s:g} s")

    def start(self) -> None:
        self._admin()
        self.before = self._read()
        self.ctl = self.pod_dir / "gpu.json"
        w = float(self.params["power_limit_w"])
        tmp = self.ctl.with_suffix(".tmp")
        tmp.write_text(json.dumps({"power_limit_w": w, "expires_at": time.time() + self._expiry()}))
        os.replace(tmp, self.ctl)
        self.readback = self._wait_limit(w)
        self.t0 = time.time()
        # one reading is a coin toss on a lightly loaded replica (idle GPU draws idle power): sample the whole window
        self.samples: list[dict[str, Any]] = []
        self._stop_sampling = threading.Event()

        def sample() -> None:
            while not self._stop_sampling.wait(0.5):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    self.samples.append(self._read())

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def measure(self) -> dict[str, Any]:
        self._stop_sampling.set()
        self._sampler.join(timeout=5)
        sm = self.samples or [{}]

        def col(k: str) -> list[float]:
            return [float(x[k]) for x in sm if k in x]

        power, clock, util = col("power_w"), col("sm_clock_mhz"), col("util")
        return {
            "power_limit_w_read_back": self.readback.get("power_limit_w"),
            "power_w_max": round(max(power), 1) if power else None,
            "power_w_mean": round(statistics.fmean(power), 1) if power else None,
            "sm_clock_mhz_min": round(min(clock), 1) if clock else None,
            "sm_clock_mhz_before": round(float(self.before.get("sm_clock_mhz", float("nan"))), 1),
            "gpu_util_mean": round(statistics.fmean(util), 3) if util else None,
            "gpu_util_before": round(float(self.before.get("util", float("nan"))), 3),
            "sw_power_cap_seen": any(int(x.get("throttle_reasons") or 0) & 0x4 for x in sm),
            "samples": len(self.samples),
        }

    def stop(self) -> None:
        if getattr(self, "_stop_sampling", None) is not None:
            self._stop_sampling.set()
        if getattr(self, "ctl", None) is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.ctl.unlink()
        with contextlib.suppress(FaultError, httpx.HTTPError):
            self._wait_limit(float(self.before.get("power_limit_w", 300.0)), 3.0)
        self.ctl = None


for _cls in (CpuHog, MemoryLeak, NetworkDelay, GpuThrottle):
    register("local", _cls)
