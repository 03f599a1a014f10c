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
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from llmrca.model import FaultSpec
from llmrca.testbed.injection import FaultError, Injector
from llmrca.testbed.local.stack import DEFAULT_RUN_DIR, LocalTestbed, State, proc_start_ticks

STRESS_NG = "/usr/bin/stress-ng"
EXPIRY_MARGIN_S = 30.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LocalInjector(Injector):
    """A fault on the local testbed's pods: the pod's cgroup and folder, and processes started inside it.

    ``context``: ``testbed=`` a :class:`LocalTestbed`, or ``run_dir=`` of a
    running one.  Raises :class:`FaultError` when the target is not a pod.
    """

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

    @property
    def group_name(self) -> str:
        """The process group's name in the testbed's state file (``fault/<type>/<pod>``)."""
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


