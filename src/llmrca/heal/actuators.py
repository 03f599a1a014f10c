"""The actuator interface and its safety rails: defined in :mod:`llmrca.testbed.actuators`
(backends implement it, and the testbed never imports the heal loop), re-exported here."""

from llmrca.testbed.actuators import (
    ACTIONS,
    ACTUATORS,
    ActionResult,
    Actuator,
    ActuatorError,
    GuardedActuator,
    Rails,
    actuator_class,
    guarded,
)

__all__ = ["ACTIONS", "ACTUATORS", "ActionResult", "Actuator", "ActuatorError", "GuardedActuator", "Rails", "actuator_class", "guarded"]
