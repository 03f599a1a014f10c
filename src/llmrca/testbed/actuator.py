"""The actuator contract: how a remediation is carried out on one backend.

:class:`Actuator` is what every backend implements (``llmrca.testbed.local.actuator``,
``llmrca.testbed.k8s.actuator``, the simulator's ``llmrca.heal.sim_actuator``);
the loops that decide (``llmrca.heal``) wrap it in their safety rails
(:class:`llmrca.heal.actuators.GuardedActuator`, which re-exports these names).
It lives at the testbed layer so that backends implement it without
importing the loops that use them (``tests/test_layers.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

#: The remediations the loops know, with what each means.
ACTIONS: dict[str, str] = {
    "restart": "recreate the replica's pod / process (kills a stressor or a leak living in it)",
    "drain": "take the replica out of routing (the router / gateway stops sending it requests)",
    "reset-power-limit": "set the accelerator's power limit back to its default (nvidia-smi -pl <default>)",
}


class ActuatorError(RuntimeError):
    """The action could not be carried out (the message says what failed and where)."""


class Actuator(ABC):
    """Carries out remediations on one backend.  Subclasses implement :meth:`_do`."""

    #: Backend name (a key of :data:`ACTUATORS`).
    backend: str = ""
    #: Actions this backend can carry out (a subset of :data:`ACTIONS`).
    supported: frozenset[str] = frozenset(ACTIONS)

    def supports(self, action: str) -> bool:
        return action in self.supported

    def act(self, action: str, target: str) -> dict[str, Any]:
        """Carry ``action`` out on component ``target``; returns details for the audit log.

        Raises :class:`ActuatorError` (never anything else) when it cannot.
        """
        if action not in ACTIONS:
            raise ActuatorError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
        if not self.supports(action):
            raise ActuatorError(f"the {self.backend or type(self).__name__} actuator cannot {action!r} (it supports: {', '.join(sorted(self.supported))})")
        try:
            return dict(self._do(action, target) or {})
        except ActuatorError:
            raise
        except Exception as e:  # a backend error is a failed action, reported, never a crash of the loop
            raise ActuatorError(f"{action} on {target} failed: {type(e).__name__}: {e}") from e

    @abstractmethod
    def _do(self, action: str, target: str) -> Mapping[str, Any] | None:
        """Backend-specific work; may raise anything (wrapped by :meth:`act`)."""
