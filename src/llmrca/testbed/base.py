"""The testbed contract: a backend, the case timeline, and the registries.

A campaign (:mod:`llmrca.campaign`) asks a :class:`Backend` to run one case
at a time on a :class:`Timeline`.  Backends and fault implementations are
found by name in registries of ``"module:Class"`` strings, imported only when
used (as the methods' registry does), so the orchestrator imports no backend
and no backend imports a fault type's module: the layers are
``campaign -> faults -> testbed`` (``tests/test_layers.py`` checks them).

Adding a backend (e.g. Kubernetes): subclass :class:`Backend` in
``llmrca/testbed/<name>/backend.py``, implement :meth:`Backend.from_options`,
add it to :data:`BACKENDS`, and give each fault type of :mod:`llmrca.faults`
its implementation for the backend, listed in :data:`FAULT_IMPLEMENTATIONS`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from llmrca.config import ConfigError
from llmrca.model import Case, FaultSpec, Topology, normalize_fault_type
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR

#: Roles a component plays in the serving stack; a fault class lists the roles it can be placed on.
ROLES: tuple[str, ...] = ("gateway", "head", "worker", "operator")


def component_role(name: str) -> str | None:
    """The role of a component of the paper's stack (``nginx-gateway`` -> ``gateway``, ``ray-worker-2`` -> ``worker``), or None."""
    if name == GATEWAY:
        return "gateway"
    if name == HEAD:
        return "head"
    if name == OPERATOR:
        return "operator"
    if name.startswith("ray-worker-"):
        return "worker"
    return None


@dataclass(frozen=True)
class Timeline:
    """Timings of one case, in seconds (paper §4.3, PROTOCOL.md §1).

    The load starts ``warmup_s`` before the recorded window; the window is
    ``normal_s`` of normal operation, the fault (``fault_s``) and a ``tail_s``;
    a real testbed then waits ``cooldown_s`` before the next case.
    """

    normal_s: float = 285.0
    fault_s: float = 60.0
    tail_s: float = 15.0
    cooldown_s: float = 60.0
    warmup_s: float = 30.0  # load runs before the recorded window starts

    def to_dict(self) -> dict[str, float]:
        """The five durations by field name (seconds)."""
        return asdict(self)

    @property
    def case_s(self) -> float:
        """Wall-clock seconds one case occupies, cooldown included."""
        return self.warmup_s + self.normal_s + self.fault_s + self.tail_s + self.cooldown_s


class Backend(ABC):
    """What a testbed must provide to run the protocol.

    ``run_case`` serves the load from ``start_time - timeline.warmup_s``,
    injects ``fault`` at ``start_time + timeline.normal_s`` for
    ``fault.duration_s``, keeps serving for ``timeline.tail_s``, removes the
    fault, and returns the labelled Case with the achieved fault parameters.
    A real backend also waits out ``timeline.cooldown_s`` (the simulator
    starts each case from a fresh state instead) and may ignore
    ``start_time`` (the simulated clock the campaign proposes) in favour of
    the wall clock; the Case's own times are what count.
    """

    name: str = "backend"

    @classmethod
    def from_options(
        cls, *, workers: int | None, qps: float | None, scrape_interval_s: float | None, params: Mapping[str, Any] | None = None
    ) -> Backend:
        """Build the backend from the campaign's options (``None``: the backend's default).

        ``workers``: Ray worker pods; ``qps``: offered load (requests/s);
        ``scrape_interval_s``: seconds between scrapes; ``params``: the
        backend's own options (``--set sim.<option>=V``).  Raises
        :class:`~llmrca.config.ConfigError` on a bad option.
        """
        raise ConfigError(f"backend {cls.name!r} cannot be built from campaign options; pass it as backend_obj")

    @abstractmethod
    def topology(self) -> Topology:
        """The call graph of the stack this backend serves."""

    @abstractmethod
    def workers(self) -> list[str]:
        """Components faults may be injected into (the paper: the Ray workers)."""

    @abstractmethod
    def run_case(self, fault: FaultSpec, *, seed: int, protocol: Timeline, start_time: float) -> Case:
        """Run one case (see the class docstring); ``start_time`` is epoch seconds of the recorded window's start."""

    def describe(self) -> dict[str, Any]:
        """Backend parameters recorded in the dataset manifest."""
        return {}

    def placements(self) -> dict[str, str]:
        """Every component a fault may be placed on, with its role (:data:`ROLES`); default: the workers."""
        return dict.fromkeys(self.workers(), "worker")

    def check_fault(self, spec: FaultSpec) -> None:  # noqa: B027 - optional hook
        """Raise ConfigError if ``spec`` cannot be injected (checked before the first case runs)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (processes, clusters)."""


#: Backend name -> "module:Class" (a :class:`Backend` subclass), imported when used.
BACKENDS: dict[str, str] = {
    "sim": "llmrca.testbed.sim.backend:SimBackend",
    "local": "llmrca.testbed.local.backend:LocalBackend",
    "k8s": "llmrca.testbed.k8s.backend:K8sBackend",
}

#: (backend, fault type) -> "module:Class" of the fault's implementation on that backend.
#: One module per fault type in :mod:`llmrca.faults` holds every backend's class side by side.
FAULT_IMPLEMENTATIONS: dict[tuple[str, str], str] = {
    ("sim", "cpu"): "llmrca.faults.cpu:SimCpuHog",
    ("sim", "memory"): "llmrca.faults.memory:SimMemoryLeak",
    ("sim", "network"): "llmrca.faults.network:SimNetworkDelay",
    ("sim", "gpu"): "llmrca.faults.gpu:SimGpuPowerCap",
    ("sim", "kv-cache"): "llmrca.faults.kvcache:SimKvCachePressure",
    ("sim", "gpu-thermal"): "llmrca.faults.gpu_thermal:SimGpuThermal",
    ("sim", "gpu-error"): "llmrca.faults.gpu_error:SimGpuXidError",
    ("sim", "model-load"): "llmrca.faults.model_load:SimSlowModelLoad",
    ("sim", "packet-loss"): "llmrca.faults.packet_loss:SimPacketLoss",
    ("sim", "noisy-neighbour"): "llmrca.faults.noisy_neighbour:SimNoisyNeighbour",
    ("local", "cpu"): "llmrca.faults.cpu:LocalCpuHog",
    ("local", "memory"): "llmrca.faults.memory:LocalMemoryLeak",
    ("local", "network"): "llmrca.faults.network:LocalNetworkDelay",
    ("local", "gpu"): "llmrca.faults.gpu:LocalGpuPowerCap",
    ("local", "kv-cache"): "llmrca.faults.kvcache:LocalKvCachePressure",
    ("local", "gpu-thermal"): "llmrca.faults.gpu_thermal:LocalGpuThermal",
    ("local", "gpu-error"): "llmrca.faults.gpu_error:LocalGpuXidError",
    ("local", "model-load"): "llmrca.faults.model_load:LocalSlowModelLoad",
    ("local", "packet-loss"): "llmrca.faults.packet_loss:LocalPacketLoss",
    ("local", "noisy-neighbour"): "llmrca.faults.noisy_neighbour:LocalNoisyNeighbour",
    ("k8s", "cpu"): "llmrca.faults.cpu:K8sCpuHog",
    ("k8s", "memory"): "llmrca.faults.memory:K8sMemoryLeak",
    ("k8s", "network"): "llmrca.faults.network:K8sNetworkDelay",
    ("k8s", "gpu"): "llmrca.faults.gpu:K8sGpuPowerCap",
}


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def register_backend(name: str, target: str) -> None:
    """Add (or replace) backend ``name`` -> ``"module:Class"``; nothing is imported yet."""
    BACKENDS[name] = target


def backend_class(name: str) -> type[Backend]:
    """The :class:`Backend` subclass registered as ``name``; raises ConfigError for an unknown name."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; available: {', '.join(BACKENDS)} (a new backend registers in llmrca.testbed.base.BACKENDS)")
    return _load(BACKENDS[name])


def register_fault(backend: str, fault_type: str, target: str) -> None:
    """Add (or replace) the implementation ``"module:Class"`` of ``fault_type`` on ``backend``."""
    FAULT_IMPLEMENTATIONS[(backend, normalize_fault_type(fault_type))] = target


def fault_roles(backend: str, fault_type: str) -> tuple[str, ...]:
    """The component roles ``fault_type`` can be placed on with ``backend`` (its class's ``roles``;
    a class that does not say is taken to act on serving pods: ``("head", "worker")``).
    Raises ConfigError as :func:`fault_class`."""
    return tuple(getattr(fault_class(backend, fault_type), "roles", ("head", "worker")))


def fault_class(backend: str, fault_type: str) -> type:
    """The class implementing ``fault_type`` (any spelling, e.g. ``mem``) on ``backend``.

    Raises :class:`~llmrca.config.ConfigError` (a ``ValueError``) naming the
    fault types the backend has when there is none.
    """
    ft = normalize_fault_type(fault_type)
    target = FAULT_IMPLEMENTATIONS.get((backend, ft))
    if target is None:
        have = sorted(t for b, t in FAULT_IMPLEMENTATIONS if b == backend)
        raise ConfigError(f"no {ft!r} fault for backend {backend!r}; available: {have or 'none'}")
    return _load(target)
