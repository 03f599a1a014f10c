"""The heal / watch action per decided fault type, and the heal verdict (docs/heal.md)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.heal.loop import DEFAULT_REMEDY, POLICY, HealConfig, choose_action, heal_sim, remedy_for
from llmrca.model import ALL_FAULT_TYPES
from llmrca.testbed.actuator import ACTIONS
from llmrca.testbed.sim.faults import REMEDIES


def test_every_fault_type_has_its_own_remedy() -> None:
    for ft in ALL_FAULT_TYPES:
        assert ft in POLICY, ft
        r = remedy_for(ft)
        assert r.why
        assert r.action is None or (r.action in ACTIONS and r.action in REMEDIES)
    assert remedy_for(None) is DEFAULT_REMEDY


@pytest.mark.parametrize(
    ("ftype", "action"),
    [("kv-cache", "restart"), ("packet-loss", "drain"), ("noisy-neighbour", "drain"), ("gpu-thermal", "drain"), ("gpu", "reset-power-limit")],
)
def test_new_types_get_an_action_that_fixes_them(ftype: str, action: str) -> None:
    assert choose_action("ray-worker-2", ftype) == (action, "ray-worker-2")


def test_gpu_thermal_also_needs_a_human() -> None:
    assert "cooling" in remedy_for("gpu-thermal").human


@pytest.mark.parametrize("ftype", ["model-load", "gpu-error"])
def test_self_restarting_faults_get_no_automated_action(ftype: str) -> None:
    action, target = choose_action("ray-worker-2", ftype)
    assert target is None
    assert action.startswith("no automated action")
    assert remedy_for(ftype).human


def test_heal_help_names_every_fault_type() -> None:
    res = CliRunner().invoke(app, ["heal", "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0
    for ft in ALL_FAULT_TYPES:
        assert ft in res.output, ft


def test_default_signals_alert_on_kv_cache() -> None:
    assert "max:ttft_p90" in HealConfig().signals.split(",")


def test_heal_kv_cache_alerts_and_restart_recovers() -> None:
    rep = heal_sim("kv-cache", "ray-worker-2", seed=3, config=HealConfig(execute=True))
    assert rep.detected and rep.signal == "max:ttft_p90"
    assert rep.fault_type == "kv-cache" and rep.action == "restart" and rep.executed
    assert rep.levels["no_action"] > rep.levels["threshold"] >= rep.levels["healed"]
    assert rep.verdict == "recovered" and rep.recovered is True


def test_heal_gpu_error_claims_no_recovery_it_did_not_make() -> None:
    rep = heal_sim("gpu-error", "ray-worker-2", seed=3, config=HealConfig(execute=True))
    assert rep.fault_type == "gpu-error" and rep.action_target is None and not rep.executed
    assert rep.levels["no_action"] <= rep.levels["threshold"]
    assert rep.recovered is None and rep.verdict.startswith("no SLO breach to recover from")
    assert "recovered" not in rep.summary().replace("to recover from", "")


def test_heal_gpu_thermal_drains_and_says_what_the_drain_did() -> None:
    rep = heal_sim("gpu-thermal", "ray-worker-2", seed=3, config=HealConfig(execute=True))
    assert rep.fault_type == "gpu-thermal" and rep.action == "drain" and rep.executed
    assert "cooling" in rep.human and "cooling" in rep.summary()
    lv = rep.levels
    assert lv["healthy"] < lv["healed"] < lv["no_action"]  # better, but the others now carry its load
    assert rep.verdict.startswith("NOT recovered (the action removed") and "drained replica's load" in rep.verdict


def test_heal_refuses_parameters_of_another_fault_type(tmp_path) -> None:
    res = CliRunner().invoke(app, ["heal", "--fault", "gpu", "--set", "fault.kv-cache.gpu_memory_utilization=0.5", "--out", str(tmp_path / "h")])
    assert res.exit_code == 2
    assert "fault.kv-cache.* given but heal injects gpu" in res.output
