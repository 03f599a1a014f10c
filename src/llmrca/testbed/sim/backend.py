"""The simulator as a campaign backend: one FaultSpec + seed + protocol -> Case."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmrca.campaign import Backend, Protocol
from llmrca.model import Case, FaultRecord, FaultSpec, Topology
from llmrca.synthetic import paper_topology
from llmrca.telemetry import worker_name
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import ACTIVE, DONE, FAILED, PENDING, SimResult, Simulation
from llmrca.testbed.sim.faults import REMEDIES, FaultPlan
from llmrca.testbed.sim.observe import build_frames
from llmrca.testbed.sim.textlogs import build_logs
from llmrca.testbed.sim.traces import build_traces
from llmrca.testbed.sim.workload import make_workload


class SimBackend(Backend):
    """The embedded default backend: a seeded model of the serving stack."""

    name = "sim"

    def __init__(self, cfg: SimConfig | None = None) -> None:
        self.cfg = (cfg or SimConfig()).validate()

    def topology(self) -> Topology:
        return paper_topology(self.cfg.n_workers)

    def workers(self) -> list[str]:
        return [worker_name(i) for i in range(1, self.cfg.n_workers + 1)]

    def describe(self) -> dict[str, Any]:
        return {"sim": self.cfg.to_dict()}

    def check_fault(self, spec: FaultSpec) -> None:
        from llmrca.config import ConfigError
        from llmrca.testbed.gpu import GpuModel

        plan = FaultPlan.from_spec(spec, 0.0)  # raises ConfigError on bad parameters
        serving = self.topology().nodes[1:-1]
        if plan.target not in serving:
            raise ConfigError(f"fault target {plan.target!r} is not a serving pod of this stack ({', '.join(serving)})")
        if plan.type == "gpu":
            g = GpuModel().gpu
            w = plan.params["power_limit_w"]
            if not g.min_power_limit_w <= w <= g.max_power_limit_w:
                raise ConfigError(f"fault.gpu.power_limit_w={w:g} is outside the {g.name}'s range {g.min_power_limit_w:g}..{g.max_power_limit_w:g} W")

    def simulate(
        self, fault: FaultSpec | None, *, seed: int, protocol: Protocol, start_time: float, remedy: tuple[str, float] | tuple[str, float, str] | None = None
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
        t_end = inject + (fault.duration_s if fault is not None else protocol.fault_s) + protocol.tail_s
        plan = FaultPlan.from_spec(fault, inject) if fault is not None else None
        if remedy is not None:
            if plan is None:
                raise ValueError("a remediation needs a fault to act on")
            if remedy[0] not in REMEDIES:
                raise ValueError(f"unknown remediation {remedy[0]!r}; the simulator supports {', '.join(REMEDIES)}")
            plan.remedy, plan.remedy_at = remedy[0], float(remedy[1])
            plan.remedy_target = remedy[2] if len(remedy) > 2 else None
        if plan is not None and plan.target not in self.topology().nodes[1:-1]:
            raise ValueError(f"fault target {plan.target!r} is not a serving pod of this stack ({', '.join(self.topology().nodes[1:-1])})")
        wl = make_workload(self.cfg, t0, t_end, wl_rng)
        return Simulation(self.cfg, eng_rng).run(wl, t0, start_time, t_end, plan)

    def run_case(
        self, fault: FaultSpec, *, seed: int, protocol: Protocol, start_time: float, remedy: tuple[str, float] | tuple[str, float, str] | None = None
    ) -> Case:
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
        return Case(
            metrics=frames["basic"],
            metric_sets=frames,
            inject_time=float(inject),
            name=f"{fault.target}_{fault.type}",
            logs=build_logs(res, log_rng),
            traces=build_traces(res, tr_rng),
            fault=FaultRecord(
                type=fault.type,
                target=fault.target,
                requested=dict(FaultPlan.from_spec(fault, inject).params),
                achieved=res.achieved,
                start=float(inject),
                end=float(inject + fault.duration_s),
            ),
            root_causes=frozenset({fault.target}),
            topology=self.topology(),
            meta={"backend": self.name, "seed": int(seed), "protocol": protocol.to_dict(), "requests": summary},
        )
