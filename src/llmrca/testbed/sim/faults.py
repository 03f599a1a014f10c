"""Fault parameters of the simulator (paper §4.3, PROTOCOL.md §1) and their checks.

Each fault type has default parameters as in the paper; a campaign may
override any of them (``--set fault.cpu.workers=8``).  The simulator turns a
:class:`~llmrca.model.FaultSpec` into a :class:`FaultPlan` whose fields the
engine reads every tick; what the model actually did is measured by the
engine and written to the FaultRecord's ``achieved``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmrca.config import ConfigError
from llmrca.model import FAULT_TYPES, FaultSpec, normalize_fault_type

#: Default parameters per fault type (Chaos Mesh spelling where there is one).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    # StressChaos cpu: 16 stressors at 100 % load in the target container's cgroup
    "cpu": {"workers": 16, "load": 100},
    # StressChaos memory: 1 stressor allocating 8 GB over the fault
    "memory": {"workers": 1, "size_gb": 8.0},
    # NetworkChaos delay, direction "to": traffic into the target pod
    "network": {"latency_ms": 1000.0, "jitter_ms": 100.0, "correlation": 0.25},
    # nvidia-smi -pl 150 on a 300 W A100
    "gpu": {"power_limit_w": 150.0},
}


#: Remediations the simulator can apply, and what each one does:
#: ``restart``  the pod is recreated: the actor dies (in-flight requests fail) and
#:              restarts after the restart delay; container-scoped chaos (a stress
#:              process: cpu hog, memory leak) dies with the container, while a
#:              power limit stays on the device and a NetworkChaos is re-applied
#:              by its controller to the new pod.
#: ``drain``    the replica is taken out of routing for the rest of the run.
#: ``reset-power-limit``  the device's power limit is set back to its default
#:              (``nvidia-smi -pl <default>``).
REMEDIES: tuple[str, ...] = ("restart", "drain", "reset-power-limit")


def fault_params(ftype: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``ftype`` updated with ``overrides``; unknown keys are an error."""
    ftype = normalize_fault_type(ftype)
    if ftype not in DEFAULT_PARAMS:
        raise ConfigError(f"unknown fault type {ftype!r}; the simulator supports {', '.join(FAULT_TYPES)}")
    out = dict(DEFAULT_PARAMS[ftype])
    for k, v in (overrides or {}).items():
        if k not in out:
            raise ConfigError(f"fault {ftype!r} has no parameter {k!r}; valid: {sorted(out)}")
        try:
            out[k] = type(out[k])(v)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"fault.{ftype}.{k}: expected a number, got {v!r}") from e
    _check(ftype, out)
    return out


def _check(ftype: str, p: dict[str, Any]) -> None:
    bad = []
    if ftype == "cpu":
        if p["workers"] < 1:
            bad.append("workers must be >= 1")
        if not 0 < p["load"] <= 100:
            bad.append("load must be in 1..100 (per cent)")
    elif ftype == "memory":
        if p["size_gb"] <= 0:
            bad.append("size_gb must be > 0")
    elif ftype == "network":
        if p["latency_ms"] < 0 or p["jitter_ms"] < 0:
            bad.append("latency_ms and jitter_ms must be >= 0")
        if not 0 <= p["correlation"] <= 1:
            bad.append("correlation must be in 0..1 (a fraction, 0.25 = 25 %)")
    elif ftype == "gpu" and p["power_limit_w"] <= 0:
        bad.append("power_limit_w must be > 0")
    if bad:
        raise ConfigError(f"fault {ftype!r}: " + "; ".join(bad))


@dataclass
class FaultPlan:
    """A fault placed on the simulated timeline (absolute epoch seconds)."""

    type: str
    target: str
    params: dict[str, Any]
    start: float
    end: float
    #: A remediation applied at ``remedy_at`` (the heal loop's action), one of REMEDIES.
    remedy: str | None = None
    remedy_at: float | None = None
    remedy_target: str | None = None  # default: the fault's target

    @classmethod
    def from_spec(cls, spec: FaultSpec, start: float) -> FaultPlan:
        ftype = normalize_fault_type(spec.type)
        return cls(type=ftype, target=spec.target, params=fault_params(ftype, spec.params), start=start, end=start + spec.duration_s)

    def active(self, t: float) -> bool:
        return self.start <= t < self.end
