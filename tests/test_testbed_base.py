"""The testbed contract: backends and fault implementations found by name; faults act only through hooks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmrca.campaign import make_backend, run_campaign
from llmrca.config import ConfigError
from llmrca.faults import injector_class
from llmrca.model import FAULT_TYPES, Case, FaultSpec, Topology
from llmrca.synthetic import make_case
from llmrca.testbed.base import BACKENDS, Backend, Timeline, fault_class, register_backend
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import Simulation
from llmrca.testbed.sim.faults import SimFault
from llmrca.testbed.sim.workload import make_workload
from llmrca.testbed.topology import paper_topology

START = 1_767_225_600.0


class FixedBackend(Backend):
    """A backend that returns synthetic cases: enough to drive a campaign by name."""

    name = "fixed"

    @classmethod
    def from_options(cls, *, workers, qps, scrape_interval_s, params=None) -> FixedBackend:
        return cls(workers or 2)

    def __init__(self, n: int) -> None:
        self.n = n

    def topology(self) -> Topology:
        return paper_topology(self.n)

    def workers(self) -> list[str]:
        return [f"ray-worker-{i}" for i in range(1, self.n + 1)]

    def run_case(self, fault: FaultSpec, *, seed: int, protocol: Timeline, start_time: float) -> Case:
        return make_case(root=fault.target, fault=fault.type, n_workers=self.n, seed=seed % 1000, with_traces=False)


def test_a_registered_backend_runs_a_campaign_by_name(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, "fixed", "")  # restored after the test
    register_backend("fixed", f"{__name__}:FixedBackend")
    out = run_campaign("fixed", "quick", seed=1, out=tmp_path / "ds", workers=2, progress=False, protocol=Timeline(normal_s=10, fault_s=5, tail_s=1))
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["backend"] == "fixed" and manifest["n_cases"] == 4 * 2
    assert {c["fault"] for c in manifest["cases"]} == set(FAULT_TYPES)
    assert (out / "ray-worker-2_memory" / "1" / "data.csv").exists()


def test_unknown_backend_names_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'nomad'; available: sim, local, k8s"):
        make_backend("nomad", workers=None, qps=None, scrape_interval_s=None)
    be = make_backend("sim", workers=5, qps=7.0, scrape_interval_s=10.0, sim_params={"tick_s": 0.1})
    assert (be.cfg.n_workers, be.cfg.qps, be.cfg.scrape_interval_s, be.cfg.tick_s, be.cfg.rate_window_s) == (5, 7.0, 10.0, 0.1, 30.0)


@pytest.mark.parametrize("ftype", FAULT_TYPES)
def test_every_fault_type_has_both_implementations_in_one_module(ftype: str) -> None:
    sim, local = fault_class("sim", ftype), injector_class("local", ftype)
    assert issubclass(sim, SimFault) and sim.type == ftype and local.fault_type == ftype
    assert sim.__module__ == local.__module__ == f"llmrca.faults.{ftype}"
    with pytest.raises(ConfigError, match="no 'disk' fault for backend 'sim'"):
        fault_class("sim", "disk")


def _run(fault: SimFault | None, seed: int = 3):
    cfg = SimConfig()
    tl = Timeline(normal_s=40.0, fault_s=20.0, tail_s=5.0, warmup_s=5.0)
    wl_rng, eng_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    t0, t_end = START - tl.warmup_s, START + tl.normal_s + tl.fault_s + tl.tail_s
    return Simulation(cfg, eng_rng).run(make_workload(cfg, t0, t_end, wl_rng), t0, START, t_end, fault)


def test_a_fault_with_no_hooks_changes_nothing() -> None:
    """The engine has no fault-type switches: a SimFault that overrides no hook leaves the run as without a fault."""
    base = _run(None)
    noop = _run(SimFault("ray-worker-2", {}, START + 40.0, START + 60.0))
    for k in base.pod:
        np.testing.assert_array_equal(noop.pod[k], base.pod[k])
    for k in base.rep:
        np.testing.assert_array_equal(noop.rep[k], base.rep[k])
    np.testing.assert_array_equal(noop.requests["t_done"], base.requests["t_done"])
    assert noop.events == base.events and noop.achieved == {}
    # and a real one does act: the CPU hog throttles the target pod
    hog = _run(fault_class("sim", "cpu").from_spec(FaultSpec("cpu", "ray-worker-2", duration_s=20.0), START + 40.0))
    assert hog.pod["cfs_throttled_s"][-1, 2] > 0 == base.pod["cfs_throttled_s"][-1, 2]
    assert hog.achieved["hog_cpu_seconds"] > 0


def test_the_local_testbeds_profiles_run_its_short_protocol() -> None:
    """local-extended is a local-testbed campaign: 60 s / 20 s / 10 s as local is, not the paper's 285 s / 60 s."""
    from llmrca.campaign import Timeline, profile_protocol
    from llmrca.testbed.local.backend import LOCAL_PROTOCOL

    assert profile_protocol("local") == profile_protocol("local-extended") == LOCAL_PROTOCOL
    assert LOCAL_PROTOCOL.normal_s == 60 and LOCAL_PROTOCOL.fault_s == 20 and LOCAL_PROTOCOL.tail_s == 10
    for p in ("quick", "paper", "extended"):
        assert profile_protocol(p) == Timeline() and Timeline().normal_s == 285 and Timeline().fault_s == 60
