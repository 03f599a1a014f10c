"""Execution engines: persistent worker processes (default) or Ray tasks.

Both take a list of :class:`~llmrca.evaluate.task.Task` and call
``on_result(record)`` as each run finishes; both enforce the per-run
timeout by killing what runs the task (the worker process, or the Ray
worker via ``ray.cancel(force=True)``) and report ``timeout``.  An exception
raised by ``on_result`` (the results file cannot be written) ends the run:
the process engine kills its workers on the way out.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from llmrca.evaluate.task import Task, base_record, execute, random_fallback, truth_from_disk

OnResult = Callable[[dict[str, Any]], None]


def timeout_record(task: Task, timeout_s: float, engine: str) -> dict[str, Any]:
    rec = {**base_record(task), **truth_from_disk(task)}
    rec.update(status="timeout", error=f"no result within {timeout_s:g} s; the {engine} worker was killed", error_kind="timeout", duration_s=timeout_s)
    if rec["components"]:
        rec["fallback_ranking"] = random_fallback(rec["components"], task.method, task.case_id)
    return rec


def died_record(task: Task, exitcode: int | None) -> dict[str, Any]:
    rec = {**base_record(task), **truth_from_disk(task)}
    hint = " (SIGKILL: out of memory?)" if exitcode == -signal.SIGKILL else ""
    rec.update(status="failed", error=f"worker process died with exit code {exitcode}{hint}", error_kind="worker_died")
    if rec["components"]:
        rec["fallback_ranking"] = random_fallback(rec["components"], task.method, task.case_id)
    return rec


# -- process engine -------------------------------------------------------------


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the evaluator dies (no orphans after kill -9)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(conn: Connection) -> None:
    # own process group: a timeout kills the method's own children too
    os.setsid()
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from llmrca.evaluate import task as _task

    _task.IN_WORKER = True
    _one_openmp_thread()
    cache: dict[str, Any] = {}
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(execute(task, cache))


def _one_openmp_thread() -> None:
    """Run OpenMP code (scikit-learn's BIRCH / nearest-centre search, ...) on one thread in a forked worker.

    GNU OpenMP is not fork-safe: when the evaluator's process ran an OpenMP parallel region before forking
    (any scikit-learn clustering in the parent: a method ranked in-process, a probe), the child's next
    parallel region waits forever for the parent's thread team, which the child does not have.  With one
    thread the region runs without the team.  The workers are parallel already (one per job), so this
    also avoids oversubscribing the cores.  BLAS threads are left alone (their count can change results).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (a dependency) brings threadpoolctl
        return
    threadpool_limits(1, user_api="openmp")


@dataclass
class _Worker:
    proc: Any
    conn: Connection
    task: Task | None = None
    deadline: float = 0.0
    last_case: str | None = None


@dataclass
class ProcessEngine:
    jobs: int = 2
    timeout_s: float = 300.0
    _ctx: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # fork: workers inherit run-time registry entries and start fast
        method = "fork" if sys.platform.startswith("linux") else "spawn"
        self._ctx = mp.get_context(method)

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, args=(child,), daemon=True)
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def _kill(self, w: _Worker) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(w.proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            w.proc.kill()
        w.proc.join(5)
        w.conn.close()

    def run(self, tasks: list[Task], on_result: OnResult) -> None:
        # group by case so a worker reuses the case it has loaded
        pending: OrderedDict[str, deque[Task]] = OrderedDict()
        for t in tasks:
            pending.setdefault(t.case_dir, deque()).append(t)
        workers = [self._spawn() for _ in range(max(1, min(self.jobs, len(tasks))))] if tasks else []
        try:
            while pending or any(w.task for w in workers):
                for w in workers:
                    if w.task is None and pending:
                        key = w.last_case if w.last_case in pending else next(iter(pending))
                        q = pending[key]
                        w.task = q.popleft()
                        if not q:
                            del pending[key]
                        w.last_case = key
                        w.deadline = time.monotonic() + self.timeout_s
                        w.conn.send(w.task)
                busy = [w for w in workers if w.task is not None]
                if not busy:
                    continue
                wait_s = max(0.0, min(w.deadline for w in busy) - time.monotonic())
                ready = wait([w.conn for w in busy], timeout=wait_s)
                for i, w in enumerate(workers):
                    if w.task is None:
                        continue
                    if w.conn in ready:
                        try:
                            rec = w.conn.recv()
                        except (EOFError, OSError):
                            w.proc.join(5)
                            rec = died_record(w.task, w.proc.exitcode)
                            self._kill(w)
                            workers[i] = self._spawn()
                            on_result(rec)
                            continue
                        w.task = None
                        on_result(rec)
                    elif time.monotonic() >= w.deadline:
                        task = w.task
                        self._kill(w)
                        workers[i] = self._spawn()
                        on_result(timeout_record(task, self.timeout_s, "process"))
        finally:
            for w in workers:
                if w.task is None:
                    with contextlib.suppress(OSError, BrokenPipeError):
                        w.conn.send(None)
                    w.proc.join(2)
                self._kill(w)


# -- ray engine -------------------------------------------------------------------


def ray_runtime_env(extra_modules: list[str] | None = None) -> dict[str, Any]:
    """A runtime_env whose PYTHONPATH lets Ray workers import llmrca (and run-time methods)."""
    import importlib.util
    from pathlib import Path

    import llmrca

    paths = [str(Path(llmrca.__file__).resolve().parent.parent)]
    for mod in extra_modules or []:
        spec = importlib.util.find_spec(mod)
        if spec is not None and spec.origin:
            root = Path(spec.origin).resolve().parent
            for _ in range(mod.count(".")):
                root = root.parent
            paths.append(str(root))
    old = os.environ.get("PYTHONPATH")
    if old:
        paths.append(old)
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def _ray_execute(task: Task) -> dict[str, Any]:
    return execute(task)


def _ray_warm_up() -> int:
    import llmrca.evaluate.task  # noqa: F401 - import the heavy modules once per worker

    return os.getpid()


@dataclass
class RayEngine:
    jobs: int = 2
    timeout_s: float = 300.0

    def run(self, tasks: list[Task], on_result: OnResult) -> None:
        from llmrca.errors import require

        ray = require("ray", "ray", "the ray engine")
        if not ray.is_initialized():
            mods = sorted({t.split(":")[0] for task in tasks for _, t, _ in task.extra_entries})
            ray.init(num_cpus=max(1, self.jobs), include_dashboard=False, runtime_env=ray_runtime_env(mods), log_to_driver=False)
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_execute)
        # start the workers (and their imports) before any deadline runs
        warm = ray.remote(num_cpus=1, max_retries=0)(_ray_warm_up)
        if tasks:
            ray.get([warm.remote() for _ in range(max(1, self.jobs))], timeout=max(120.0, self.timeout_s))
        queue = deque(tasks)
        # ref -> (task, deadline); a None task is a warm-up that replaces a killed worker
        inflight: dict[Any, tuple[Task | None, float]] = {}
        try:
            while queue or any(t is not None for t, _ in inflight.values()):
                while queue and len(inflight) < max(1, self.jobs):
                    t = queue.popleft()
                    inflight[remote.remote(t)] = (t, time.monotonic() + self.timeout_s)
                # the deadline runs from submission; at most `jobs` tasks are in flight
                wait_s = max(0.0, min(d for _, d in inflight.values()) - time.monotonic())
                done, _ = ray.wait(list(inflight), num_returns=1, timeout=min(wait_s, 3600.0))
                for ref in done:
                    task, _ = inflight.pop(ref)
                    if task is None:
                        with contextlib.suppress(Exception):
                            ray.get(ref)
                        continue
                    try:
                        rec = ray.get(ref)
                    except Exception as e:  # the worker crashed: a failed run, not a ranking
                        rec = {**base_record(task), **truth_from_disk(task)}
                        rec.update(status="failed", error=f"ray task failed: {type(e).__name__}: {e}", error_kind="worker_died")
                        if rec["components"]:
                            rec["fallback_ranking"] = random_fallback(rec["components"], task.method, task.case_id)
                    on_result(rec)  # an error here (e.g. a full disk) ends the run
                now = time.monotonic()
                for ref, (task, deadline) in list(inflight.items()):
                    if task is not None and now >= deadline:
                        ray.cancel(ref, force=True)
                        inflight.pop(ref)
                        on_result(timeout_record(task, self.timeout_s, "ray"))
                        # start a replacement worker before the slot takes a task with a deadline
                        inflight[warm.remote()] = (None, float("inf"))
        except BaseException:  # an error in on_result leaves tasks in flight: stop them
            for ref, (task, _) in list(inflight.items()):
                if task is not None:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)
            raise
