"""Actuators: how a remediation is carried out, one implementation per backend, behind one interface.

The heal loop (``llmrca heal`` on the simulator) and the live loop
(``llmrca watch`` on a real Prometheus) decide *what* to do — ``restart`` a
replica, ``drain`` it (take it out of routing), ``reset-power-limit`` of its
accelerator — and hand it to an :class:`Actuator`, which knows *how* on one
backend (the simulator, the local testbed's supervisor / router / accelerator,
Kubernetes' API).  Every actuator is wrapped in a :class:`GuardedActuator`
that enforces the safety rails the loop promises an operator:

* **dry run by default** — nothing is done unless ``execute=True``;
* **allow-list** — only the named components may be acted on;
* **rate limit** — at most one action per component per ``min_interval_s``
  and at most ``max_actions`` in any ``window_s``;

and every call (done, refused or dry) returns an :class:`ActionResult` that
the loop writes to its audit log, with the signal values before and after.

The contract itself (:class:`Actuator`, :data:`ACTIONS`, :class:`ActuatorError`) lives in
:mod:`llmrca.testbed.actuator`, so backends implement it without importing the loops.
Implementations are found by backend name in :data:`ACTUATORS`
(``"module:Class"``, imported when used), as backends and methods are.
"""

from __future__ import annotations

import importlib
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from llmrca.testbed.actuator import ACTIONS, Actuator, ActuatorError

#: Backend name -> "module:Class" of its actuator.
ACTUATORS: dict[str, str] = {
    "sim": "llmrca.heal.sim_actuator:SimActuator",
    "local": "llmrca.testbed.local.actuator:LocalActuator",
    "k8s": "llmrca.testbed.k8s.actuator:K8sActuator",
}


@dataclass
class ActionResult:
    """What happened to one requested action.

    ``status``: ``done`` (carried out), ``dry-run`` (not executed by choice),
    ``refused`` (a safety rail said no: ``reason`` says which), ``failed``
    (the backend could not do it: ``reason`` has its error).  ``before`` /
    ``after``: signal values the caller measured around the action (name ->
    value, units of the signal).  ``time``: epoch seconds of the decision.
    """

    action: str
    target: str
    status: str
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    before: dict[str, float | None] = field(default_factory=dict)
    after: dict[str, float | None] = field(default_factory=dict)
    time: float = 0.0
    backend: str = ""

    @property
    def executed(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Rails:
    """Safety rails of automated actions.

    ``allow``: components that may be acted on (None: any component the caller
    knows to be a model replica; an empty set: none).  ``min_interval_s``: per
    component, the least time between two actions.  ``max_actions`` per
    ``window_s``: across components.
    """

    allow: frozenset[str] | None = None
    min_interval_s: float = 300.0
    max_actions: int = 3
    window_s: float = 3600.0


class GuardedActuator:
    """An :class:`Actuator` behind dry-run, allow-list and rate-limit rails.

    ``clock`` returns epoch seconds (injectable for tests and the simulator's
    simulated time).
    """

    def __init__(self, actuator: Actuator, *, execute: bool = False, rails: Rails | None = None, clock: Callable[[], float] = time.time) -> None:
        self.actuator = actuator
        self.execute = execute
        self.rails = rails or Rails()
        self.clock = clock
        self._last: dict[str, float] = {}
        self._recent: deque[float] = deque()

    def _refusal(self, action: str, target: str, now: float) -> str | None:
        r = self.rails
        if action not in ACTIONS:
            return f"unknown action {action!r}"
        if r.allow is not None and target not in r.allow:
            return f"{target} is not on the allow-list ({', '.join(sorted(r.allow)) or 'empty'})"
        last = self._last.get(target)
        if last is not None and now - last < r.min_interval_s:
            return f"{target} was acted on {now - last:.0f} s ago (rate limit: one action per {r.min_interval_s:.0f} s per component)"
        while self._recent and now - self._recent[0] > r.window_s:
            self._recent.popleft()
        if len(self._recent) >= r.max_actions:
            return f"{len(self._recent)} actions in the last {r.window_s:.0f} s (rate limit: {r.max_actions})"
        return None

    def request(self, action: str, target: str, *, before: Mapping[str, float | None] | None = None) -> ActionResult:
        """Ask for ``action`` on ``target``; returns what happened (never raises for a backend failure)."""
        now = float(self.clock())
        res = ActionResult(action, target, "dry-run", time=now, before=dict(before or {}), backend=self.actuator.backend)
        why = self._refusal(action, target, now)
        if why is not None:
            res.status, res.reason = "refused", why
            return res
        if not self.execute:
            res.reason = "dry run (pass --execute to act)"
            return res
        self._last[target] = now
        self._recent.append(now)
        try:
            res.detail = self.actuator.act(action, target)
            res.status = "done"
        except ActuatorError as e:
            res.status, res.reason = "failed", str(e)
        return res


def actuator_class(backend: str) -> type[Actuator]:
    """The actuator class of ``backend`` (imported now).  Raises KeyError naming the known backends."""
    if backend not in ACTUATORS:
        raise KeyError(f"no actuator for backend {backend!r}; backends with one: {', '.join(ACTUATORS)}")
    module, _, cls = ACTUATORS[backend].partition(":")
    return getattr(importlib.import_module(module), cls)


def guarded(backend: str, *, execute: bool = False, allow: Iterable[str] | None = None, rails: Rails | None = None, **options: Any) -> GuardedActuator:
    """``GuardedActuator(actuator_class(backend)(**options), ...)``; ``allow`` overrides ``rails.allow``."""
    r = rails or Rails()
    if allow is not None:
        r = Rails(frozenset(allow), r.min_interval_s, r.max_actions, r.window_s)
    return GuardedActuator(actuator_class(backend)(**options), execute=execute, rails=r)


__all__ = ["ACTIONS", "ACTUATORS", "ActionResult", "Actuator", "ActuatorError", "GuardedActuator", "Rails", "actuator_class", "guarded"]
