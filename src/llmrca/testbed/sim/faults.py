"""How a fault acts on the simulated stack: the hooks the engine calls (paper §4.3, PROTOCOL.md §1).

A simulated fault is a :class:`SimFault`: it validates its parameters
(:meth:`SimFault.from_spec`), is applied and undone on the engine's clock
(:meth:`SimFault.on_tick`, a remediation through :attr:`SimFault.ends_on`),
acts on the mechanisms through hooks that default to "no effect"
(:meth:`~SimFault.cpu_share`, :meth:`~SimFault.gpu_slowdown`,
:meth:`~SimFault.request_delay`, :meth:`~SimFault.on_cpu`,
:meth:`~SimFault.on_memory`, :meth:`~SimFault.on_scrape`), and measures what
it achieved (:meth:`~SimFault.achieved`).  The fault types themselves live in
:mod:`llmrca.faults` (``cpu``, ``memory``, ``network``, ``gpu``), each next to
its local-testbed implementation; the engine finds them by name through
:func:`llmrca.testbed.base.fault_class`, never by an ``if type == ...``.

Each fault type has default parameters as in the paper; a campaign may
override any of them (``--set fault.cpu.workers=8``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.config import ConfigError
from llmrca.model import ALL_FAULT_TYPES, FaultSpec, normalize_fault_type
from llmrca.testbed.base import ROLES, component_role, fault_class

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun

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


def sim_fault_class(ftype: str) -> type[SimFault]:
    """The simulator's class for fault type ``ftype`` (any spelling); raises ConfigError for an unknown type."""
    ft = normalize_fault_type(ftype)
    try:
        return fault_class("sim", ft)
    except ConfigError:
        raise ConfigError(f"unknown fault type {ft!r}; the simulator supports {', '.join(ALL_FAULT_TYPES)}") from None


def fault_params(ftype: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Defaults of ``ftype`` updated with ``overrides``; unknown keys or bad values raise ConfigError."""
    return sim_fault_class(ftype).params_from(overrides)


class SimFault:
    """A fault placed on the simulated timeline (absolute epoch seconds); subclasses override the hooks they need.

    ``target`` is a serving pod's name; ``params`` the validated parameters;
    the fault is on for ``start <= t < end``.  A remediation (the heal loop's
    action) is one of :data:`REMEDIES` applied at ``remedy_at`` to
    ``remedy_target`` (default: the fault's target).
    """

    #: fault type (a name of :data:`llmrca.model.FAULT_TYPES`)
    type: ClassVar[str] = ""
    #: default parameters (Chaos Mesh spelling where there is one)
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: remediations of the target pod that end the fault for good
    ends_on: ClassVar[tuple[str, ...]] = ()
    #: whether requests routed to the target wait in :meth:`request_delay`
    delays_requests: ClassVar[bool] = False
    #: whether that wait recurs every time a request's traffic leaves the target (netem's delay: the handshake,
    #: a forwarded call, a relayed response) rather than once per request
    delay_per_crossing: ClassVar[bool] = False
    #: component roles (:data:`~llmrca.testbed.base.ROLES`) the fault can be placed on; the paper's
    #: faults act on a serving pod (the head hosts a replica too)
    roles: ClassVar[tuple[str, ...]] = ("head", "worker")
    #: whether every request passing through the target waits in :meth:`path_delay` (a proxy target)
    delays_path: bool = False
    #: whether that wait happens before the head's mesh proxy sees the request (a gateway target)
    path_before_head: bool = False

    def __init__(self, target: str, params: dict[str, Any], start: float, end: float) -> None:
        self.target = target
        self.params = params
        self.start = start
        self.end = end
        self.remedy: str | None = None
        self.remedy_at: float | None = None
        self.remedy_target: str | None = None
        self.tgt = -1  # the target's replica index, set by :meth:`bind`

    # -- validate ---------------------------------------------------------------------
    @classmethod
    def problems(cls, p: Mapping[str, Any]) -> list[str]:
        """What is wrong with the parameters ``p`` (empty when they are valid)."""
        return []

    @classmethod
    def params_from(cls, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """:attr:`defaults` updated with ``overrides`` (cast to the default's type); raises ConfigError."""
        out = dict(cls.defaults)
        for k, v in (overrides or {}).items():
            if k not in out:
                raise ConfigError(f"fault {cls.type!r} has no parameter {k!r}; valid: {sorted(out)}")
            try:
                out[k] = type(out[k])(v)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"fault.{cls.type}.{k}: expected a number, got {v!r}") from e
        bad = cls.problems(out)
        if bad:
            raise ConfigError(f"fault {cls.type!r}: " + "; ".join(bad))
        return out

    @classmethod
    def from_spec(cls, spec: FaultSpec, start: float) -> SimFault:
        """The fault of ``spec`` starting at ``start`` (epoch s) for ``spec.duration_s``; raises ConfigError.

        The class that acts is the one :meth:`placed_on` names for the target's role (a CPU hog on
        the gateway slows the proxy, not an engine); a role the fault does not apply to raises.
        """
        impl = sim_fault_class(spec.type) if cls is SimFault else cls
        role = component_role(spec.target)
        if role is not None:
            impl = impl.placed_on(role, spec.target)
        return impl(spec.target, impl.params_from(spec.params), start, start + spec.duration_s)

    @classmethod
    def applies_to(cls, role: str) -> bool:
        """Whether the fault can be placed on a component of ``role`` (one of :data:`~llmrca.testbed.base.ROLES`)."""
        return role in cls.roles

    @classmethod
    def placed_on(cls, role: str, target: str = "") -> type[SimFault]:
        """The class acting for a target of ``role``; raises ConfigError when the fault does not apply there.

        Subclasses return a specialised class for a role where the mechanism differs (a proxy).
        """
        if role not in ROLES:
            raise ConfigError(f"unknown component role {role!r}; roles: {', '.join(ROLES)}")
        if not cls.applies_to(role):
            where = f"{target} ({role})" if target else role
            raise ConfigError(f"fault {cls.type!r} does not apply to {where}: it applies to {', '.join(cls.roles)}")
        return cls

    def check(self) -> None:
        """Raise ConfigError when the fault cannot be applied to the simulated stack (checked before a campaign)."""

    def active(self, t: float) -> bool:
        """Whether the fault is on at epoch second ``t``."""
        return self.start <= t < self.end

    # -- apply / act / undo (called by the engine every tick) -----------------------------
    def bind(self, run: SimRun) -> None:
        """Start of a run: the target's index is known; reset what the fault measures."""
        self.tgt = run.sim.components.index(self.target)

    def on_tick(self, run: SimRun, t: float, on: bool) -> None:
        """Start of the tick at ``t``: apply or undo device settings (``on``: the fault is active)."""

    def cpu_share(self, run: SimRun, share: np.ndarray, on: bool) -> np.ndarray:
        """The engine's CPU share per replica (shape ``(R,)``, fraction of a core's worth of work); default unchanged."""
        return share

    def gpu_slowdown(self, run: SimRun, slow: np.ndarray) -> np.ndarray:
        """SM-bound slowdown factor per replica (shape ``(R,)``, 1 = nominal); default unchanged."""
        return slow

    def request_delay(self, run: SimRun) -> float:
        """Seconds a request routed to the target waits before it reaches the replica (only if :attr:`delays_requests`)."""
        return 0.0

    def probe_answer_s(self, run: SimRun) -> float:
        """Seconds until the target's answer to a router's queue-length probe arrives (only while the fault is on
        and :attr:`delays_requests`); 0 when the fault does not hold up the target's replies."""
        return 0.0

    def after_step(self, run: SimRun, gpu_busy: np.ndarray, on: bool) -> None:
        """After the engine step: ``gpu_busy`` is each replica's GPU-busy seconds in the tick (shape ``(R,)``)."""

    def on_cpu(self, run: SimRun, cpu_work: np.ndarray, share: np.ndarray, on: bool) -> None:
        """CPU accounting of the tick: ``cpu_work`` is each replica's engine CPU seconds (shape ``(R,)``)."""

    def on_memory(self, run: SimRun, t1: float, on: bool) -> None:
        """Memory at the end of the tick (``t1``): hold bytes, set ``run.mem_prev``, call the OOM killer."""

    def held_bytes(self) -> float:
        """Bytes the fault holds in the target pod right now (added to its working set)."""
        return 0.0

    def on_scrape(self, run: SimRun, s: int, on: bool) -> None:
        """At scrape ``s`` (an index into the recorded scrapes)."""

    def kv_capacity(self, run: SimRun, cap: np.ndarray, on: bool) -> np.ndarray:
        """KV-cache capacity per replica in tokens (shape ``(R,)``); default unchanged."""
        return cap

    def path_delay(self, run: SimRun) -> float:
        """Seconds one request waits passing through the target (only if :attr:`delays_path` and on)."""
        return 0.0

    def scrape_on(self, run: SimRun, s: int) -> bool:
        """Whether the fault is on at scrape ``s`` (its end instant)."""
        return self.active(float(run.scrape_t[s]) - 1e-9)

    # -- measure -----------------------------------------------------------------------
    def achieved(self, run: SimRun) -> dict[str, Any]:
        """What the fault did to the model, measured by the engine (the FaultRecord's ``achieved``)."""
        return {}


#: The old name of :class:`SimFault`.
FaultPlan = SimFault

#: CFS bandwidth period (s): a cgroup over its quota waits for the next period (kernel sched-bwc.rst).
CFS_PERIOD_S = 0.1


def proxy_wait_s(rng: np.random.Generator, share: float, passes: int = 2) -> float:
    """Seconds one request waits for CPU in a starved proxy (NGINX worker, Ray Serve proxy), >= 0.

    ``share`` is the fraction of its CPU demand the proxy gets (0 < share <= 1).  A proxy does
    little work per request (parsing, a relay of the streamed chunks, pipelined), but each of the
    ``passes`` where the request needs it (the request in, the last chunk out) finds it off-CPU
    with probability ``1 - share`` and then waits up to the rest of a CFS period
    (``U(0, (1 - share) * CFS_PERIOD_S)``); draws ``passes`` pairs of uniforms from ``rng``.
    """
    if share >= 1.0:
        return 0.0
    off = 1.0 - max(share, 0.0)
    u = rng.random((passes, 2))
    return float(np.sum(np.where(u[:, 0] < off, u[:, 1] * off * CFS_PERIOD_S, 0.0)))


def pod_base_cpu(run: SimRun, p: int) -> float:
    """Cores pod ``p`` uses at idle (its agents; the proxy's per-token work comes on top), from the run's constants."""
    return float(run.base_cpu[p]) if p < run.R else float(run.idle_cpu[p])
