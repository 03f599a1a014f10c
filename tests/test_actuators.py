"""The safety rails every actuator sits behind: dry run, allow-list, rate limits, failures reported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from llmrca.heal.actuators import ACTUATORS, GuardedActuator, Rails, actuator_class
from llmrca.testbed.actuator import Actuator, ActuatorError


class Recording(Actuator):
    """An actuator whose backend is a list: what it was asked to do, in order."""

    backend = "recording"
    supported = frozenset({"restart", "drain"})

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    def _do(self, action: str, target: str) -> Mapping[str, Any]:
        if target == "broken":
            raise OSError("supervisor socket gone")
        self.done.append((action, target))
        return {"n": len(self.done)}


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


def test_dry_run_by_default_does_nothing() -> None:
    act = Recording()
    r = GuardedActuator(act).request("restart", "w1", before={"itl": 0.05})
    assert (r.status, r.executed, act.done) == ("dry-run", False, [])
    assert r.before == {"itl": 0.05} and "--execute" in r.reason


def test_allow_list_and_rate_limits() -> None:
    act, clock = Recording(), Clock()
    g = GuardedActuator(act, execute=True, rails=Rails(allow=frozenset({"w1", "w2", "w3"}), min_interval_s=60, max_actions=2, window_s=600), clock=clock)
    assert g.request("restart", "gateway").status == "refused"
    assert g.request("restart", "w1").status == "done"
    clock.t += 30
    r = g.request("drain", "w1")
    assert r.status == "refused" and "rate limit" in r.reason  # the same component too soon
    assert g.request("restart", "w2").status == "done"
    clock.t += 100
    r = g.request("restart", "w3")
    assert r.status == "refused" and "2 actions in the last 600 s" in r.reason
    clock.t += 600
    assert g.request("restart", "w3").status == "done"
    assert act.done == [("restart", "w1"), ("restart", "w2"), ("restart", "w3")]


def test_backend_failures_and_unsupported_actions_are_results_not_crashes() -> None:
    g = GuardedActuator(Recording(), execute=True, rails=Rails(min_interval_s=0))
    r = g.request("restart", "broken")
    assert r.status == "failed" and "supervisor socket gone" in r.reason
    r = g.request("reset-power-limit", "w1")
    assert r.status == "failed" and "cannot 'reset-power-limit'" in r.reason
    assert g.request("reboot-the-world", "w1").status == "refused"
    with pytest.raises(ActuatorError):
        Recording().act("reboot-the-world", "w1")


def test_registry_names_the_known_backends() -> None:
    assert set(ACTUATORS) >= {"sim", "local", "k8s"}
    with pytest.raises(KeyError, match="backends with one"):
        actuator_class("nomad")
