"""Remediations in the simulated world, behind the same :class:`~llmrca.heal.actuators.Actuator` interface.

The simulator is deterministic given its seed, so "carrying an action out"
means replaying the same world with the remedy applied at the time of the
action (:meth:`SimBackend.run_case <llmrca.testbed.sim.backend.SimBackend.run_case>`
with ``remedy=(action, at, target)``): everything before the action is
identical, so the replay shows exactly what the action changed.  What each
action does there is :data:`llmrca.testbed.sim.faults.REMEDIES` (docs/heal.md).

``clock`` gives the simulated time of the decision (epoch s); the action
lands ``action_latency_s`` later.  The replayed world is kept in
:attr:`SimActuator.healed` for the caller to judge the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from llmrca.heal.actuators import Actuator, ActuatorError

if TYPE_CHECKING:
    from llmrca.model import Case, FaultSpec
    from llmrca.testbed.base import Timeline
    from llmrca.testbed.sim.backend import SimBackend


class SimActuator(Actuator):
    """Replays ``backend``'s world of (``spec``, ``seed``, ``protocol``, ``start_time``) with the action applied."""

    backend = "sim"
    supported = frozenset({"restart", "drain", "reset-power-limit"})

    def __init__(
        self,
        sim: SimBackend,
        spec: FaultSpec,
        *,
        seed: int,
        protocol: Timeline,
        start_time: float,
        clock: Callable[[], float],
        action_latency_s: float = 10.0,
    ) -> None:
        self.sim = sim
        self.spec = spec
        self.seed = seed
        self.protocol = protocol
        self.start_time = start_time
        self.clock = clock
        self.action_latency_s = action_latency_s
        #: The world replayed with the last action (None until one is carried out).
        self.healed: Case | None = None

    def _do(self, action: str, target: str) -> Mapping[str, Any]:
        at = float(self.clock()) + self.action_latency_s
        try:
            self.healed = self.sim.run_case(
                self.spec, seed=self.seed, protocol=self.protocol, start_time=self.start_time, remedy=(action, at, target)
            )
        except ValueError as e:
            raise ActuatorError(f"the simulator cannot {action} {target}: {e}") from None
        return {"at": at, "replayed": True, "action_latency_s": self.action_latency_s}
