"""The paper's Fig. 8 on real processes: faults injected into the local testbed, ``watch --execute`` recovering.

Used by ``benchmarks/watch_local.py`` (all four faults, a 10-minute healthy
run) and ``tests/test_watch_local.py`` (two faults, a short healthy run, a
Prometheus killed mid-run).  The caller brings the testbed up and runs the
load (``llmrca.load.LoadRunner`` on the gateway, loopback only); this module
runs :class:`~llmrca.heal.watch.Watcher` in a thread with the
:class:`~llmrca.testbed.local.actuator.LocalActuator`, injects each fault
with :func:`llmrca.testbed.injection.inject` in the calling thread, and
measures per fault: injection -> alert -> decision -> action -> recovered.

A fault stays on until its incident ends (recovered or unresolved) or
``fault_s`` passes; then it is removed, a drained replica is put back into
routing (so the next fault meets the full stack), and the next fault waits
until the loop's cool-down is over and every rule is back in its band.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llmrca.heal.actuators import GuardedActuator, Rails
from llmrca.heal.watch import Incident, WatchConfig, Watcher, WatchReport, figure, local_defaults
from llmrca.model import FaultSpec
from llmrca.telemetry import HEAD


@dataclass
class FaultOutcome:
    """One injected fault and what the loop did about it (times in s after the injection)."""

    fault: str
    target: str
    injected: float
    removed: float = 0.0
    alert_s: float | None = None
    onset_s: float | None = None
    decision_s: float | None = None
    action_s: float | None = None
    recovered_s: float | None = None
    culprit: str | None = None
    fault_type: str | None = None
    action: str | None = None
    action_status: str | None = None
    correct_culprit: bool = False
    correct_type: bool = False
    achieved: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        def f(x: float | None) -> str:
            return "-" if x is None else f"{x:.0f}"

        return (f"{self.fault:8s} {self.target:13s} alert +{f(self.alert_s)} s, decision +{f(self.decision_s)} s, "
                f"action +{f(self.action_s)} s ({self.action} {self.action_status}), recovered +{f(self.recovered_s)} s; "
                f"blamed {self.culprit} ({self.fault_type}) {'correct' if self.correct_culprit and self.correct_type else 'WRONG'}")


def start_watcher(
    run_dir: str | Path,
    out: str | Path,
    config: WatchConfig,
    *,
    allow: list[str] | None = None,
    min_action_interval_s: float = 60.0,
    say: Callable[[str], None] | None = None,
) -> tuple[Watcher, threading.Thread]:
    """A :class:`Watcher` on the local testbed in ``run_dir`` running in a thread (stop with ``watcher.stop.set()``)."""
    from llmrca.testbed.local.actuator import LocalActuator

    d = local_defaults(run_dir)
    cfg = config.replace(scrape_interval_s=d["scrape_interval_s"])
    guard = GuardedActuator(LocalActuator(run_dir), execute=cfg.execute, rails=Rails(frozenset(allow) if allow else None, min_action_interval_s, 10, 3600.0))
    w = Watcher(d["prometheus"], d["components"], cfg, guard, out=out, log_files=d["log_files"], topology=d["topology"], say=say)
    th = threading.Thread(target=w.run, name="llmrca-watch", daemon=True)
    th.start()
    return w, th


def _incident_after(rep: WatchReport, t: float) -> Incident | None:
    return next((i for i in rep.incidents if i.alert >= t), None)


def _quiet(w: Watcher) -> bool:
    """No incident in progress, past its cool-down, every rule armed and inside its band."""
    rep = w.report
    if rep.incidents:
        last = rep.incidents[-1]
        if not (last.recovered or last.unresolved):
            return False
        end = last.ended or last.alert
        if time.time() < end + w.cfg.cooldown_s + w.cfg.clear_s:
            return False
    rules = list(w.rules.values())
    return bool(rules) and all(r.band() is not None and r.pending_since is None for r in rules)


def wait_quiet(w: Watcher, timeout_s: float, say: Callable[[str], None]) -> bool:
    """Wait until :func:`_quiet` (or ``timeout_s``); returns whether it got quiet."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if _quiet(w):
            return True
        time.sleep(1.0)
    say(f"the loop did not get quiet within {timeout_s:.0f} s")
    return False


def wait_ready(tb: Any, w: Watcher, timeout_s: float, say: Callable[[str], None]) -> None:
    """Before an injection: every pod healthy (a chat completion through the gateway, every scrape target up),
    then the loop quiet (:func:`wait_quiet`); both within ``timeout_s`` in all.

    A fault injected into a replica that is still restarting after the previous action (its engine
    refusing connections) is no test of the loop.  Raises the testbed's error when a pod stays down.
    """
    t0 = time.monotonic()
    if hasattr(tb, "wait_healthy"):
        tb.wait_healthy(timeout_s, say=say)
    wait_quiet(w, max(10.0, timeout_s - (time.monotonic() - t0)), say)


def undrain_all(run_dir: str | Path) -> list[str]:
    """Put every drained replica back into routing (the router's ``/admin/undrain``); returns their names."""
    from llmrca.testbed.local.stack import State

    st = State.load(run_dir)
    if st is None or HEAD not in st.pods:
        return []
    base = f"http://127.0.0.1:{st.pods[HEAD]['ports']['router']}/admin"
    view = httpx.get(base + "/replicas", timeout=5.0).json()
    back = [n for n, v in view.items() if v.get("drained")]
    for n in back:
        httpx.post(base + "/undrain", params={"replica": n}, timeout=5.0)
    return back


def run_faults(
    tb: Any,
    w: Watcher,
    faults: list[tuple[str, str, Mapping[str, Any]]],
    *,
    fault_s: float = 300.0,
    quiet_timeout_s: float = 300.0,
    say: Callable[[str], None] | None = None,
) -> list[FaultOutcome]:
    """Inject each ``(type, target, params)`` in turn while ``w`` watches; returns what happened to each."""
    from llmrca.testbed.injection import inject

    say = say or (lambda m: None)
    outcomes: list[FaultOutcome] = []
    for ftype, target, params in faults:
        wait_ready(tb, w, quiet_timeout_s, say)
        spec = FaultSpec(type=ftype, target=target, params=dict(params), duration_s=fault_s)
        t_inj = time.time()
        oc = FaultOutcome(ftype, target, t_inj)
        say(f"injecting {ftype} on {target}")
        with inject(spec, backend="local", testbed=tb) as active:
            deadline = t_inj + fault_s
            while time.time() < deadline and not w.stop.is_set():
                inc = _incident_after(w.report, t_inj)
                if inc is not None and (inc.recovered or inc.unresolved):
                    break
                time.sleep(1.0)
        oc.removed = time.time()
        with contextlib.suppress(Exception):
            oc.achieved = dict(active.record.achieved)
        inc = _incident_after(w.report, t_inj)
        if inc is not None:
            oc.alert_s = inc.alert - t_inj
            oc.onset_s = inc.onset - t_inj
            oc.decision_s = inc.decided - t_inj if inc.decided else None
            oc.action_s = inc.acted - t_inj if inc.acted else None
            oc.recovered_s = inc.recovered - t_inj if inc.recovered else None
            oc.culprit, oc.fault_type, oc.action, oc.action_status = inc.culprit, inc.fault_type, inc.action, inc.action_status
            oc.correct_culprit = inc.culprit == target
            oc.correct_type = inc.fault_type == ftype
        drained = undrain_all(tb.state.run_dir)
        if drained:
            say(f"put {', '.join(drained)} back into routing")
        say(oc.line())
        outcomes.append(oc)
    return outcomes


def kill_prometheus(tb: Any, down_s: float, say: Callable[[str], None] | None = None) -> float:
    """SIGKILL the testbed's Prometheus (its process group), keep it down ``down_s``, start it again; returns the seconds it was down.

    The same command line, data directory and port: a Prometheus that crashed and was restarted by
    its supervisor.  Only the testbed's own process group is signalled.
    """
    import os
    import signal

    say = say or (lambda m: None)
    pg = tb.state.groups["node/prometheus"]
    cmd = [x for x in Path(f"/proc/{pg}/cmdline").read_bytes().decode().split("\0") if x]
    t0 = time.time()
    os.killpg(pg, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pg, 0)
    say(f"killed Prometheus (process group {pg}); restarting it in {down_s:.0f} s")
    time.sleep(down_s)
    tb._spawn("node/prometheus", cmd, None, Path(tb.state.run_dir) / "node" / "prometheus.out")
    return time.time() - t0


def fault_figure(w: Watcher, outcomes: list[FaultOutcome], path: Path) -> None:
    """``watch.png`` with the injections marked."""
    marks = [(f"inject {o.fault}", o.injected) for o in outcomes] + [(f"remove {o.fault}", o.removed) for o in outcomes]
    figure(w.report, path, marks=marks)
