"""What every real fault on the local testbed (:mod:`llmrca.testbed.local`) shares.

The fault types themselves are in :mod:`llmrca.faults.cpu`, ``memory``,
``network`` and ``gpu`` (each next to its simulator implementation):

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
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx

from llmrca.model import FaultSpec
from llmrca.testbed.injection import FaultError, Injector
from llmrca.testbed.local.stack import DEFAULT_RUN_DIR, LocalTestbed, State, proc_start_ticks

STRESS_NG = "/usr/bin/stress-ng"
EXPIRY_MARGIN_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LocalInjector(Injector):
    """A fault on the local testbed's pods: the pod's cgroup and folder, and processes started inside it.

    ``context``: ``testbed=`` a :class:`LocalTestbed`, or ``run_dir=`` of a
    running one.  Raises :class:`FaultError` when the target is not a pod, or (for a fault type with
    ``needs_engine``) a pod that runs no engine.
    """

    #: The fault acts on the target's engine (its control files, its admin API): only serving pods qualify.
    needs_engine: ClassVar[bool] = False

    def __init__(self, spec: FaultSpec, **context: Any) -> None:
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
        if self.needs_engine:
            self._engine_url()  # raises FaultError for a pod without an engine

    @property
    def group_name(self) -> str:
        """The process group's name in the testbed's state file (``fault/<type>/<pod>``)."""
        return f"fault/{self.fault_type}/{self.spec.target}"

    def _spawn_in_pod(self, cmd: list[str], oom_score_adj: int | None = None, cgroup: Any = None, also_join: tuple[Path, ...] = ()) -> int:
        """Start ``cmd`` in its own session inside the pod's cgroup (or ``cgroup``, and each ``cgroup.procs`` in ``also_join``); record its group."""
        cg = cgroup if cgroup is not None else self.cg

        def pre() -> None:
            cg.add(os.getpid())
            for procs in also_join:
                procs.write_text(str(os.getpid()))
            if oom_score_adj is not None:
                # lowering needs CAP_SYS_RESOURCE, which a sandbox may withhold; the engine's +1000 decides anyway
                with contextlib.suppress(OSError):
                    Path("/proc/self/oom_score_adj").write_text(str(oom_score_adj))

        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])  # .../src: the stressor runs "python -m llmrca.faults.leak"
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

    def _control_times(self) -> dict[str, Any]:
        """What every control file carries besides its settings: the fault that wrote it, its planned end
        (``ends_at``: now + the fault's duration, epoch s; what ``llmrca testbed status`` says) and its safety
        expiry (``expires_at``: EXPIRY_MARGIN_S later; the engine or sidecar drops the file then, should its
        injector be killed before it removes it)."""
        now = time.time()
        return {"fault": self.spec.type, "ends_at": now + float(self.spec.duration_s), "expires_at": now + self._expiry()}

    # -- the emulated engine's control files and admin API (the faults beyond the paper's four) --------
    def _write_control(self, name: str, data: dict[str, Any]) -> Path:
        """Write ``<pod dir>/<name>`` atomically with ``data`` plus ``expires_at`` (the engine drops an expired file); returns the path.

        Raises FaultError when the file holds another injection's fault that has not expired: overwriting it (and
        removing it when this one ends) would end that fault early while both report success."""
        from llmrca.testbed.injection import FaultError

        path = self.pod_dir / name
        with fault_lock(self.pod_dir):
            if control_in_force(path):
                raise FaultError(f"a {control_owner(path) or self.spec.type} fault on {self.spec.target} is already in place "
                                 f"({name}, another injection?): wait for it to end, or stop it (llmrca testbed down removes every fault)")
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({**data, **self._control_times()}))
            os.replace(tmp, path)
        return path

    def _engine_url(self) -> str:
        """The engine's own (in-pod) URL; raises FaultError for a pod without an engine."""
        from llmrca.testbed.injection import FaultError

        info = self.tb.state.pods[self.spec.target]
        if "admin" not in info:
            raise FaultError(f"{self.spec.target} runs no engine (only the serving pods do): choose ray-head or a ray-worker")
        return str(info["admin"])

    def _engine_state(self, wait_s: float = 0.0) -> dict[str, Any]:
        """The engine's ``/admin/gpu`` reading; retries up to ``wait_s`` while it (re)starts, then raises FaultError."""
        from llmrca.testbed.injection import FaultError

        deadline = time.monotonic() + wait_s
        while True:
            try:
                return httpx.get(self._engine_url() + "/admin/gpu", timeout=5.0).json()
            except (httpx.HTTPError, ValueError) as e:
                if time.monotonic() >= deadline:
                    raise FaultError(f"the engine of {self.spec.target} does not answer ({e}); is the pod up? (llmrca testbed status)") from e
                time.sleep(0.5)




@contextlib.contextmanager
def fault_lock(pod_dir: Path) -> Iterator[None]:
    """Held while an injection checks that no fault of its kind is on the pod and puts its own in place (one lock
    file per pod, ``flock``), so that two injections started at once cannot both pass the check."""
    import fcntl

    pod_dir.mkdir(parents=True, exist_ok=True)
    with open(pod_dir / ".faults.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def control_in_force(path: Path) -> bool:
    """Does the control file ``path`` hold a fault that has not expired (its ``expires_at``, epoch s)?"""
    try:
        return float(json.loads(path.read_text()).get("expires_at", 0)) > time.time()
    except (OSError, ValueError, AttributeError, TypeError):
        return False


def control_owner(path: Path) -> str | None:
    """The fault type that wrote the control file ``path`` (its ``fault``), or None."""
    try:
        owner = json.loads(path.read_text()).get("fault")
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return str(owner) if owner else None


class EngineSampler:
    """Reads the target engine's ``/admin/gpu`` every ``period_s`` in a thread (failed reads are counted, not kept)."""

    def __init__(self, inj: LocalInjector, period_s: float = 0.5) -> None:
        import threading

        self.inj = inj
        self.period_s = period_s
        self.samples: list[dict[str, Any]] = []
        self.failed = 0
        self._stop = threading.Event()
        self._thr = threading.Thread(target=self._run, daemon=True)
        self._thr.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.samples.append(self.inj._engine_state() | {"t": time.time()})
            except Exception:  # the engine restarting is part of some faults: count it
                self.failed += 1

    def stop(self) -> list[dict[str, Any]]:
        """Stop sampling (idempotent); returns the samples."""
        self._stop.set()
        self._thr.join(timeout=5)
        return self.samples

    def col(self, key: str) -> list[float]:
        """The numeric values of ``key`` over the samples."""
        return [float(s[key]) for s in self.samples if isinstance(s.get(key), int | float)]


def engine_metrics(url: str) -> dict[str, float]:
    """Samples of an engine's ``/metrics`` summed over their labels (name -> value); empty when it does not answer."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(url + "/metrics", timeout=5.0).text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if "le" in s.labels:
                continue
            out[s.name] = out.get(s.name, 0.0) + float(s.value)
    return out
