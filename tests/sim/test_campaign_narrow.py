"""``campaign --faults / --targets`` narrow the plan; ``--set fault.<type>.*`` is checked for every type named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrca.campaign import PROFILES, plan_cases
from llmrca.cli import app
from llmrca.config import ConfigError
from llmrca.testbed.base import Timeline, fault_roles
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig


def _plan(profile: str, **kw):
    be = SimBackend(SimConfig())
    return plan_cases(PROFILES[profile], be.workers(), kw.pop("fault_params", None), Timeline(), placements=be.placements(),
                      roles_of=lambda ft: fault_roles("sim", ft), **kw)


def test_faults_and_targets_narrow_the_extended_plan() -> None:
    specs = _plan("extended", faults=["kv-cache"], targets=["ray-worker-1"])
    faulty = [s for s in specs if s.type != "none"]
    assert [(s.type, s.target) for s in faulty] == [("kv-cache", "ray-worker-1")] * 3
    gw = [s for s in _plan("extended", targets=["nginx-gateway"]) if s.type != "none"]
    assert {s.target for s in gw} == {"nginx-gateway"}
    assert {s.type for s in gw} == {"cpu", "memory", "network", "packet-loss", "noisy-neighbour"}


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"faults": ["kv-cachex"]}, "unknown fault type(s) kv-cachex; fault types: cpu"),
        ({"targets": ["ray-worker-9"]}, "unknown component(s) ray-worker-9"),
        ({"faults": ["gpu"], "targets": ["nginx-gateway"]}, "fault 'gpu' does not apply to nginx-gateway (gateway)"),
        # no named pair applies at all: refused, every reason given
        ({"faults": ["gpu", "kv-cache"], "targets": ["nginx-gateway", "kuberay-operator"]},
         "--faults/--targets: no named fault applies to a named target (fault 'gpu' does not apply to nginx-gateway (gateway), "
         "kuberay-operator (operator): it applies to head, worker; fault 'kv-cache' does not apply to nginx-gateway (gateway), "
         "kuberay-operator (operator): it applies to head, worker)"),
        ({"fault_params": {"kv-cache": {"gpu_memory_utilization": 0.5}}, "faults": ["cpu"]}, "fault.kv-cache.* given but the campaign has no kv-cache case"),
    ],
)
def test_bad_narrowing_is_refused(kw: dict, msg: str) -> None:
    with pytest.raises(ConfigError) as e:
        _plan("extended", **kw)
    assert msg in str(e.value)


def test_pairs_that_do_not_apply_are_skipped_with_one_note() -> None:
    notes: list[str] = []
    specs = _plan("extended", faults=["gpu", "cpu"], targets=["nginx-gateway", "ray-worker-1"], on_note=notes.append)
    assert [(s.type, s.target) for s in specs if s.type != "none"] == [("cpu", "nginx-gateway")] * 3 + [("cpu", "ray-worker-1")] * 3 + [("gpu", "ray-worker-1")] * 3
    assert notes == ["--faults/--targets: skipped 1 fault/target pair(s) that do not apply (fault 'gpu' does not apply to "
                     "nginx-gateway (gateway): it applies to head, worker); the campaign runs the 3 pair(s) that do"]
    notes.clear()  # every pair applies: nothing to say
    specs = _plan("extended", faults=["cpu"], targets=["nginx-gateway", "ray-worker-1"], on_note=notes.append)
    assert sum(s.type != "none" for s in specs) == 6 and notes == []


def test_cli_runs_the_applicable_pairs_and_notes_the_others(tmp_path: Path) -> None:
    out = tmp_path / "d"
    res = CliRunner().invoke(app, ["campaign", "--profile", "extended", "--faults", "gpu,cpu", "--targets", "nginx-gateway,ray-worker-1",
                                   "--cases-per-fault", "2", "--out", str(out), "-q"], terminal_width=400)
    assert res.exit_code == 0, res.output
    notes = [ln for ln in res.stderr.splitlines() if ln.startswith("note: ")]
    assert notes == ["note: --faults/--targets: skipped 1 fault/target pair(s) that do not apply (fault 'gpu' does not apply to "
                     "nginx-gateway (gateway): it applies to head, worker); the campaign runs the 3 pair(s) that do"], res.stderr
    d = json.loads((out / "dataset.json").read_text())
    assert [c["path"] for c in d["cases"]] == ["nginx-gateway_cpu/1", "ray-worker-1_cpu/1", "ray-worker-1_gpu/1", "ray-worker-1_gpu/2"]
    assert d["faults"] == ["gpu", "cpu"] and d["targets"] == ["nginx-gateway", "ray-worker-1"]
    res = CliRunner().invoke(app, ["campaign", "--profile", "extended", "--faults", "gpu", "--targets", "nginx-gateway",
                                   "--out", str(tmp_path / "none"), "-q"], terminal_width=400)
    assert res.exit_code == 2 and "no named fault applies to a named target" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "none").exists()


def test_quick_refuses_a_type_it_does_not_have() -> None:
    with pytest.raises(ConfigError, match="profile 'quick' has no kv-cache case"):
        _plan("quick", faults=["kv-cache"])


@pytest.mark.parametrize(
    ("sets", "msg"),
    [
        ("fault.kv-cache.bogus=1", "has no parameter 'bogus'"),
        ("fault.kv-cache.gpu_memory_utilization=7", "gpu_memory_utilization must be in"),
        ("fault.kv-cache.gpu_memory_utilization=0.5", "fault.kv-cache.* given but the campaign has no kv-cache case"),
    ],
)
def test_cli_checks_parameters_of_types_outside_the_profile(tmp_path: Path, sets: str, msg: str) -> None:
    res = CliRunner().invoke(app, ["campaign", "--profile", "quick", "--set", sets, "--out", str(tmp_path / "d"), "-q"])
    assert res.exit_code == 2, res.output
    assert msg in res.output
    assert not (tmp_path / "d").exists()


def test_cli_narrowed_campaign_is_recorded_and_checked_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "d"
    args = ["campaign", "--profile", "extended", "--seed", "5", "--faults", "kv-cache", "--targets", "ray-worker-1", "--out", str(out), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    d = json.loads((out / "dataset.json").read_text())
    assert d["faults"] == ["kv-cache"] and d["targets"] == ["ray-worker-1"] and d["healthy"] == 0
    assert [c["path"] for c in d["cases"]] == ["ray-worker-1_kv-cache/1", "ray-worker-1_kv-cache/2", "ray-worker-1_kv-cache/3"]
    res = CliRunner().invoke(app, [*args, "--resume"])  # the same plan: nothing left to do
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["campaign", "--profile", "extended", "--seed", "5", "--faults", "gpu", "--out", str(out), "-q", "--resume"])
    assert res.exit_code == 2
    assert "planned with --faults kv-cache, not gpu" in res.output
