"""The replica supervisor of a serving pod: what Ray does for a Serve replica actor.

It starts the engine process, health-checks it, and when the engine dies
(kernel OOM kill, a crash, or this supervisor's memory monitor) it logs why,
waits ``restart_delay_s`` and starts it again, counting starts in
``ray_serve_deployment_replica_starts_total``.  Its memory monitor works like
Ray's: every 250 ms it reads the pod's memory use and, above
``memory_threshold`` (Ray's default 0.95) of the pod limit, kills the engine
(the process holding the most memory that the supervisor owns).
``POST /admin/restart`` on its (loopback) metrics port kills the engine on
request, for the ``restart`` remediation (:mod:`llmrca.testbed.local.actuator`).  The engine
gets ``oom_score_adj`` 1000 so that, if the kernel's OOM killer acts first,
it also picks the engine, as it picks the big vLLM worker in a real pod.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from llmrca.testbed.local.cgroups import PodCgroup
from llmrca.testbed.local.common import PodLog, metrics_app, serve


class Supervisor:
    """The pod's Ray worker: keeps the engine alive, kills it at the memory threshold as Ray's memory monitor does, exports Serve metrics."""
    def __init__(self, a: argparse.Namespace, engine_args: list[str]) -> None:
        self.a = a
        self.pod = a.pod
        self.dir = Path(a.dir)
        self.engine_args = engine_args
        self.log = PodLog(self.dir / f"{self.pod}.log", "raylet")
        self.cg = PodCgroup(a.cgroup, a.cgroup_version) if a.cgroup else None
        r = self.reg = CollectorRegistry()
        lab = ["deployment", "replica", "application"]
        self.lv = ("LLMServer", self.pod, "llm")
        self.starts = Counter("ray_serve_deployment_replica_starts", "Replica (actor) starts", lab, registry=r)
        self.healthy = Gauge("ray_serve_deployment_replica_healthy", "1 when the replica passes its health check", lab, registry=r)
        self.actors = Gauge("ray_actors", "Actors by state", ["State", "Name"], registry=r)
        self.mem_kills = Counter("ray_memory_manager_worker_eviction", "Workers killed by the memory monitor", ["Type", "Name"], registry=r)
        self.errors = Counter("ray_serve_deployment_error_counter", "Replica failures (actor deaths)", lab, registry=r)
        self.errors.labels(*self.lv)
        self.healthy.labels(*self.lv).set(0)
        self.proc: asyncio.subprocess.Process | None = None
        self.killed_by_monitor = False

    def _state(self, st: str) -> None:
        for s in ("ALIVE", "RESTARTING", "DEAD"):
            self.actors.labels(s, "ServeReplica:llm:LLMServer").set(1 if s == st else 0)

    async def _start_engine(self) -> None:
        cmd = [sys.executable, "-m", "llmrca.testbed.local.engine", "--pod", self.pod, "--dir", str(self.dir), *self.engine_args]
        self.proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.DEVNULL, stderr=open(self.dir / "engine.stderr", "ab"))
        try:
            Path(f"/proc/{self.proc.pid}/oom_score_adj").write_text("1000")
        except OSError as e:
            self.log(f"cannot set oom_score_adj of engine {self.proc.pid}: {e}", "WARNING")
        self.starts.labels(*self.lv).inc()
        self._state("ALIVE")
        self.log(f"Starting replica ServeReplica:llm:LLMServer ({self.pod}) as pid {self.proc.pid}")

    async def keep_alive(self) -> None:
        """Start the engine and restart it after the restart delay whenever it dies."""
        while True:
            await self._start_engine()
            assert self.proc is not None
            oom_before = self.cg.oom_kills() if self.cg else 0
            rc = await self.proc.wait()
            self.healthy.labels(*self.lv).set(0)
            self.errors.labels(*self.lv).inc()
            self._state("RESTARTING")
            oom_after = self.cg.oom_kills() if self.cg else 0
            if self.killed_by_monitor:
                why = "killed by the memory monitor (node running low on memory)"
            elif oom_after > oom_before:
                why = f"killed by the kernel OOM killer (pod memory limit reached, {oom_after - oom_before} OOM kill(s))"
            else:
                why = f"exited with code {rc}"
            self.killed_by_monitor = False
            self.log(
                f"The actor died unexpectedly before finishing this task: replica {self.pod} pid {self.proc.pid} {why}; "
                f"restarting in {self.a.restart_delay_s:g} s",
                "ERROR",
            )
            await asyncio.sleep(self.a.restart_delay_s)

    async def memory_monitor(self) -> None:
        """Kill the engine when the pod's memory passes the threshold (a share of its limit)."""
        if self.cg is None:
            return
        limit = self.cg.memory_limit_bytes()
        while True:
            await asyncio.sleep(0.25)
            try:
                used = self.cg.memory_usage_bytes()
            except OSError:
                continue
            if used >= self.a.memory_threshold * limit and self.proc is not None and self.proc.returncode is None:
                self.killed_by_monitor = True
                self.mem_kills.labels("MemoryManager.TaskEviction.Total", "LLMServer").inc()
                self.log(
                    f"Memory on the node was {used / 2**20:.0f}MiB / {limit / 2**20:.0f}MiB ({used / limit:.3f}), which exceeds the memory "
                    f"usage threshold of {self.a.memory_threshold}. Ray killed this worker (pid {self.proc.pid}) because it was the "
                    "process using the most memory.",
                    "ERROR",
                )
                try:
                    self.proc.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
                await asyncio.sleep(1.0)

    async def health(self) -> None:
        """Poll the engine's health and export the replica's health gauge."""
        url = f"http://127.0.0.1:{self.a.engine_port}/health"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1.0)) as s:
            while True:
                ok = 0
                try:
                    async with s.get(url) as r:
                        ok = 1 if r.status == 200 else 0
                except (TimeoutError, aiohttp.ClientError, OSError):
                    ok = 0
                self.healthy.labels(*self.lv).set(ok)
                await asyncio.sleep(1.0)

    async def run(self) -> None:
        """Serve the metrics and run the loops until cancelled."""
        app = metrics_app(self.reg)
        app.router.add_post("/admin/restart", self.restart)
        _runner = await serve(app, self.a.port)
        self.log(f"raylet supervisor for {self.pod} up (metrics port {self.a.port}), memory monitor threshold {self.a.memory_threshold}")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop)
        await asyncio.gather(self.keep_alive(), self.memory_monitor(), self.health())

    async def restart(self, request: web.Request) -> web.Response:
        """``POST /admin/restart`` (loopback only, the remediation's control endpoint): kill the engine now.

        :meth:`keep_alive` sees it die and starts it again after the restart
        delay, as Ray restarts a replica actor.  Answers the pid killed.
        """
        if self.proc is None or self.proc.returncode is not None:
            return web.json_response({"killed": None, "reason": "the engine is not running (already restarting)"})
        pid = self.proc.pid
        self.log(f"restart requested through the control endpoint: killing replica {self.pod} pid {pid}", "WARNING")
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        return web.json_response({"killed": pid, "restart_delay_s": self.a.restart_delay_s})

    def _stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
        os._exit(0)


def main() -> None:
    """Command line: supervisor options, ``--``, then the engine's options."""
    argv = sys.argv[1:]
    engine_args: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, engine_args = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser()
    ap.add_argument("--pod", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--engine-port", type=int, required=True)
    ap.add_argument("--cgroup", default="")
    ap.add_argument("--cgroup-version", type=int, default=1)
    ap.add_argument("--restart-delay-s", type=float, default=2.0)
    ap.add_argument("--memory-threshold", type=float, default=0.95)
    a = ap.parse_args(argv)
    asyncio.run(Supervisor(a, ["--port", str(a.engine_port), *engine_args]).run())


if __name__ == "__main__":
    main()
