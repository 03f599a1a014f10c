"""Remediations on the local testbed: restart a pod, drain a replica, reset its accelerator's power limit.

:class:`LocalActuator` carries out the actions of :data:`llmrca.heal.actuators.ACTIONS`
on a running local testbed (docs/local-testbed.md), through the control
endpoints the stack's processes offer on 127.0.0.1:

* ``restart`` — what recreating the pod does on Kubernetes: every process in
  the pod's cgroup that is not the pod's own infrastructure (its sidecar, the
  supervisor and its engine, the head's router; the groups ``<pod>/*`` of the
  state file) is killed, as everything a container ran dies with it (a
  stressor, a leak); then the supervisor's ``POST /admin/restart`` kills the
  engine, which the supervisor starts again after its restart delay (Ray
  restarting the replica actor).  Waits until the engine answers ``/health``.
  A power limit stays on the accelerator and a network delay in the sidecar
  stays (as a GPU's limit and a NetworkChaos outlive a pod restart).
* ``drain`` — the head's router ``POST /admin/drain?replica=<pod>``: no new
  request is routed to the replica (the router refuses to drain the last
  routable one).  ``undrain`` is left to the operator
  (``POST /admin/undrain?replica=<pod>`` on the router's port).
* ``reset-power-limit`` — ``nvidia-smi -pl <default>``: the run-time limit
  file ``pods/<pod>/gpu.json`` is removed, which makes the emulated
  accelerator go back to its default limit; waits until the engine's
  ``GET /admin/gpu`` reads the default back.

Every action returns what it did and read back (pids killed, the engine's pid
before and after, the limit before and after, the router's view), which the
loop writes to its audit log.  Raises :class:`~llmrca.testbed.actuator.ActuatorError`
with what failed and where.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from llmrca.telemetry import HEAD
from llmrca.testbed.actuator import Actuator, ActuatorError
from llmrca.testbed.local.stack import DEFAULT_RUN_DIR, LocalTestbed, TestbedError


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


class LocalActuator(Actuator):
    """Acts on the local testbed in ``run_dir`` (or the given ``testbed``).  ``timeout_s``: how long an action may take to show."""

    backend = "local"
    supported = frozenset({"restart", "drain", "reset-power-limit"})

    def __init__(self, run_dir: str | Path = DEFAULT_RUN_DIR, *, testbed: LocalTestbed | None = None, timeout_s: float = 30.0) -> None:
        self.run_dir = str(run_dir)
        self._tb = testbed
        self.timeout_s = timeout_s

    @property
    def testbed(self) -> LocalTestbed:
        """The running testbed (attached on first use); ActuatorError when there is none."""
        if self._tb is None:
            try:
                self._tb = LocalTestbed.attach(self.run_dir)
            except TestbedError as e:
                raise ActuatorError(str(e)) from None
        return self._tb

    def _replica(self, target: str) -> dict[str, Any]:
        pods = self.testbed.state.pods
        info = pods.get(target)
        if info is None:
            raise ActuatorError(f"{target!r} is not a pod of the local testbed in {self.run_dir}; pods: {', '.join(pods)}")
        if info.get("role") not in ("head", "worker"):
            raise ActuatorError(f"{target} is the {info.get('role')}, not a model replica; the local actuator acts on ray-head / ray-worker-* only")
        return info

    def _do(self, action: str, target: str) -> Mapping[str, Any]:
        info = self._replica(target)
        if action == "restart":
            return self._restart(target, info)
        if action == "drain":
            return self._drain(target)
        return self._reset_power_limit(target, info)

    # -- restart ------------------------------------------------------------------------
    @staticmethod
    def _engine_up(info: dict[str, Any]) -> bool:
        """Whether the replica's engine answers ``/health`` (False while it restarts)."""
        try:
            return httpx.get(info["admin"] + "/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _restart(self, target: str, info: dict[str, Any]) -> dict[str, Any]:
        st = self.testbed.state
        keep = {pg for name, pg in st.groups.items() if name.startswith(f"{target}/")}
        cg = st.cgroup(target)
        killed: list[dict[str, Any]] = []
        for pid in cg.pids():
            pg = _pgid(pid)
            if pg is None or pg in keep or pid == os.getpid():
                continue
            comm = _comm(pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append({"pid": pid, "comm": comm, "pgid": pg})
        sup = f"http://127.0.0.1:{info['ports']['sup']}/admin/restart"
        t0 = time.monotonic()
        try:
            r = httpx.post(sup, timeout=5.0)
            r.raise_for_status()
            answer = r.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ActuatorError(f"the supervisor of {target} did not take the restart at {sup}: {e!r}") from None
        # the engine is down now (killed) and comes back after the restart delay
        down_seen = False
        deadline = t0 + self.timeout_s
        while time.monotonic() < deadline:
            ok = self._engine_up(info)
            if not ok:
                down_seen = True
            elif down_seen or answer.get("killed") is None:
                break
            time.sleep(0.1)
        else:
            raise ActuatorError(f"the engine of {target} did not answer {info['admin']}/health within {self.timeout_s:g} s of the restart")
        left = [p for p in cg.pids() if (_pgid(p) or -1) not in keep]
        return {
            "engine_killed_pid": answer.get("killed"),
            "other_processes_killed": killed,
            "restart_s": round(time.monotonic() - t0, 2),
            "non_infrastructure_processes_left": len(left),
        }

    # -- drain ------------------------------------------------------------------------
    def _router(self) -> str:
        head = self.testbed.state.pods.get(HEAD)
        if head is None or "router" not in head.get("ports", {}):
            raise ActuatorError(f"the testbed in {self.run_dir} has no router on {HEAD}")
        return f"http://127.0.0.1:{head['ports']['router']}"

    def _drain(self, target: str) -> dict[str, Any]:
        url = self._router() + "/admin/drain"
        try:
            r = httpx.post(url, params={"replica": target}, timeout=5.0)
        except httpx.HTTPError as e:
            raise ActuatorError(f"the router did not answer {url}: {e!r}") from None
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 200:
            raise ActuatorError(f"the router refused to drain {target}: {body.get('error', r.text[:200])}")
        routable = sorted(n for n, v in body.items() if not v.get("drained"))
        if body.get(target, {}).get("drained") is not True:
            raise ActuatorError(f"the router does not show {target} as drained after the request: {body}")
        return {"routable_replicas": routable, "undo": f"POST {self._router()}/admin/undrain?replica={target}"}

    # -- power limit --------------------------------------------------------------------
    def _gpu(self, info: dict[str, Any]) -> dict[str, Any]:
        try:
            return dict(httpx.get(info["admin"] + "/admin/gpu", timeout=3.0).json())
        except (httpx.HTTPError, ValueError) as e:
            raise ActuatorError(f"cannot read the accelerator of the replica at {info['admin']}/admin/gpu: {e!r}") from None

    def _reset_power_limit(self, target: str, info: dict[str, Any]) -> dict[str, Any]:
        before = self._gpu(info)
        default = float(before.get("default_power_limit_w", 0.0)) or None
        if default is None:
            raise ActuatorError(f"the engine of {target} does not report its default power limit (GET {info['admin']}/admin/gpu)")
        if abs(float(before.get("power_limit_w", default)) - default) < 1e-6:
            raise ActuatorError(f"the power limit of {target} is already its default {default:g} W: nothing to reset (is the verdict right?)")
        ctl = self.testbed.state.pod_dir(target) / "gpu.json"
        ctl.unlink(missing_ok=True)
        deadline = time.monotonic() + self.timeout_s
        now = before
        while time.monotonic() < deadline:
            now = self._gpu(info)
            if abs(float(now["power_limit_w"]) - default) < 1e-6:
                return {"power_limit_w_before": before.get("power_limit_w"), "power_limit_w_after": now["power_limit_w"],
                        "default_power_limit_w": default, "sm_clock_mhz_before": before.get("sm_clock_mhz"),
                        "sm_clock_mhz_after": now.get("sm_clock_mhz")}
            time.sleep(0.2)
        raise ActuatorError(f"the power limit of {target} reads {now.get('power_limit_w')} W, not the default {default:g} W, {self.timeout_s:g} s after the reset")
