"""The simulator as a campaign backend: one FaultSpec + seed + protocol -> Case."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from llmrca.config import ConfigError
from llmrca.model import NO_FAULT, Case, FaultRecord, FaultSpec, Topology
from llmrca.telemetry import worker_name
from llmrca.testbed.base import Backend, Timeline, component_role
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import ACTIVE, DONE, FAILED, PENDING, SimResult, Simulation
from llmrca.testbed.sim.faults import REMEDIES, SimFault
from llmrca.testbed.sim.observe import build_frames
from llmrca.testbed.sim.textlogs import build_logs
from llmrca.testbed.sim.traces import build_traces
from llmrca.testbed.sim.workload import make_workload
from llmrca.testbed.topology import paper_topology


class SimBackend(Backend):
    """The embedded default backend: a seeded model of the serving stack."""

    name = "sim"

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = (cfg or SimConfig()).validate()

    @classmethod
    def from_options(
        cls, *, workers: int | None, qps: float | None, scrape_interval_s: float | None, params: Mapping[str, Any] | None = None
    ) -> SimBackend:
        """The simulator with :class:`SimConfig` ``params`` and the campaign's options on top; raises ConfigError."""
        d = dict(params or {})
        if workers is not None:
            d["n_workers"] = workers
        if qps is not None:
            d["qps"] = qps
        if scrape_interval_s is not None:
            d["scrape_interval_s"] = scrape_interval_s
            d.setdefault("rate_window_s", max(SimConfig.rate_window_s, scrape_interval_s))
        return cls(SimConfig.from_dict(d).validate())

    def topology(self) -> Topology:
        """The call graph of the configured layout (:func:`paper_topology` with ``SimConfig.ingress``)."""
        return paper_topology(self.cfg.n_workers, self.cfg.ingress)

    def workers(self) -> list[str]:
        """``ray-worker-1..n``."""
        return [worker_name(i) for i in range(1, self.cfg.n_workers + 1)]

    def describe(self) -> dict[str, Any]:
        """``{"sim": SimConfig as a dict}``."""
        return {"sim": self.cfg.to_dict()}

    def placements(self) -> dict[str, str]:
        """Every component of the stack with its role: the gateway, the head, the workers, the operator."""
        return {c: role for c in self.topology().nodes if (role := component_role(c)) is not None}

    def check_fault(self, spec: FaultSpec) -> None:
        """Raise ConfigError for an unknown fault type or parameter, a target that is not a serving pod, or a fault the stack cannot take."""
        if spec.type == NO_FAULT:  # a healthy case: nothing to inject
            return
        nodes = self.topology().nodes
        if spec.target not in nodes:
            raise ConfigError(f"fault target {spec.target!r} is not a serving pod of this stack ({', '.join(nodes[1:-1])}) nor another of its components ({nodes[0]}, {nodes[-1]})")
        plan = SimFault.from_spec(spec, 0.0)  # raises ConfigError on bad parameters or a role the fault does not apply to
        plan.check()

    def simulate(
        self, fault: FaultSpec | None, *, seed: int, protocol: Timeline, start_time: float, remedy: tuple[str, float] | tuple[str, float, str] | None = None
    ) -> SimResult:
        """Run the model only (no telemetry frames): for tests and benchmarks.

        ``remedy`` = (action, epoch time[, pod]) applies a remediation to ``pod``
        (default: the fault's target) during the run (see :data:`~llmrca.testbed.sim.faults.REMEDIES`).
        Everything before that time is identical to the run without it.
        """
        ss = np.random.SeedSequence(seed)
        wl_rng, eng_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        t0 = start_time - protocol.warmup_s
        inject = start_time + protocol.normal_s
        if fault is not None and fault.type == NO_FAULT:
            protocol = replace(protocol, fault_s=fault.duration_s)
            fault = None  # a healthy case: the same run with no fault object
        t_end = inject + (fault.duration_s if fault is not None else protocol.fault_s) + protocol.tail_s
        if fault is not None and fault.target not in self.topology().nodes:
            raise ValueError(f"fault target {fault.target!r} is not a serving pod of this stack ({', '.join(self.topology().nodes[1:-1])})")
        try:
            plan = SimFault.from_spec(fault, inject) if fault is not None else None
        except ConfigError as e:
            if "does not apply" in str(e):
                raise ValueError(f"fault target {fault.target!r} is not a serving pod of this stack ({', '.join(self.topology().nodes[1:-1])}); {e}") from e
            raise
        if remedy is not None:
            if plan is None:
                raise ValueError("a remediation needs a fault to act on")
            if remedy[0] not in REMEDIES:
                raise ValueError(f"unknown remediation {remedy[0]!r}; the simulator supports {', '.join(REMEDIES)}")
            plan.remedy, plan.remedy_at = remedy[0], float(remedy[1])
            plan.remedy_target = remedy[2] if len(remedy) > 2 else None
        wl = make_workload(self.cfg, t0, t_end, wl_rng)
        return Simulation(self.cfg, eng_rng).run(wl, t0, start_time, t_end, plan)

    def run_case(
        self, fault: FaultSpec, *, seed: int, protocol: Timeline, start_time: float, remedy: tuple[str, float] | tuple[str, float, str] | None = None
    ) -> Case:
        """One simulated case (see :meth:`Backend.run_case`) with metric sets, logs, traces and the achieved fault.

        ``remedy`` as in :meth:`simulate`.  Raises ConfigError on bad fault
        parameters and ValueError on a target that is not a serving pod.
        """
        res = self.simulate(fault, seed=seed, protocol=protocol, start_time=start_time, remedy=remedy)
        obs_rng, log_rng, tr_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(3))
        frames = build_frames(res, obs_rng)
        inject = start_time + protocol.normal_s
        st = res.requests["status"]
        summary = {
            "requests": int(st.size),
            "completed": int((st == DONE).sum()),
            "failed": int((st == FAILED).sum()),
            "in_flight_at_end": int(((st == ACTIVE) | (st == PENDING)).sum()),
            "generated_tokens": float(res.totals["gen_tokens"].sum()),
        }
        healthy = fault.type == NO_FAULT
        if healthy:  # nothing injected; the record keeps the protocol's fault window
            record = FaultRecord.healthy(float(inject), float(inject + fault.duration_s))
        else:
            record = FaultRecord(
                type=fault.type,
                target=fault.target,
                requested=dict(SimFault.from_spec(fault, inject).params),
                achieved=res.achieved,
                start=float(inject),
                end=float(inject + fault.duration_s),
            )
        return Case(
            metrics=frames["basic"],
            metric_sets=frames,
            inject_time=float(inject),
            name="healthy" if healthy else f"{fault.target}_{fault.type}",
            logs=build_logs(res, log_rng),
            traces=build_traces(res, tr_rng),
            fault=record,
            root_causes=frozenset() if healthy else frozenset({fault.target}),
            topology=self.topology(),
            meta={"backend": self.name, "seed": int(seed), "protocol": protocol.to_dict(), "requests": summary},
        )
