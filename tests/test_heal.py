"""The heal loop on the simulator: alert -> localize -> remediate, and what each action does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llmrca.heal import HealConfig, ThresholdAlert, heal_sim
from llmrca.heal.loop import choose_action
from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend

START = 1_767_225_600.0
SHORT = {"normal_s": 200.0, "fault_s": 180.0, "tail_s": 10.0, "learn_s": 160.0, "lookback_s": 180.0}


def test_alert_rule_fires_after_a_sustained_rise_only() -> None:
    rule = ThresholdAlert(k=4, rel=0.03, for_samples=3).fit(np.full(50, 1.0) + np.linspace(0, 0.01, 50))
    assert rule.update(0, 5.0) is None and rule.update(1, 1.0) is None  # one spike: no alert
    assert rule.update(2, 5.0) is None and rule.update(3, 5.0) is None
    assert rule.update(4, 5.0) == 2  # third sample in a row: fires, onset = first of the run
    with pytest.raises(ValueError, match="at least 5"):
        ThresholdAlert().fit(np.array([1.0, np.nan]))


def test_policy_acts_only_on_replicas() -> None:
    assert choose_action("ray-worker-2", "gpu") == ("reset-power-limit", "ray-worker-2")
    assert choose_action("ray-worker-2", None) == ("restart", "ray-worker-2")
    action, target = choose_action("nginx-gateway", "cpu")
    assert target is None and "human" in action


def _itl(case, target: str) -> np.ndarray:
    f = case.metric_sets["extended"]
    late = f["time"] > case.inject_time + 120
    return f.loc[late, f"{target}_vllm:inter_token_latency_seconds:mean"].to_numpy()


def test_remedies_change_the_world_only_after_they_apply() -> None:
    be = SimBackend()
    pr = Timeline(normal_s=120, fault_s=180, tail_s=10)
    spec = FaultSpec(type="cpu", target="ray-worker-1", duration_s=180)
    inject = START + 120
    plain = be.run_case(spec, seed=4, protocol=pr, start_time=START)
    fixed = be.run_case(spec, seed=4, protocol=pr, start_time=START, remedy=("restart", inject + 40))
    wrong = be.run_case(spec, seed=4, protocol=pr, start_time=START, remedy=("restart", inject + 40, "ray-worker-2"))
    before = plain.metrics["time"] < inject + 40 - 5
    assert plain.metrics[before].equals(fixed.metrics[before])  # identical until the action
    base = np.nanmedian(plain.metric_sets["extended"].loc[plain.metrics["time"] < inject, "ray-worker-1_vllm:inter_token_latency_seconds:mean"])
    assert np.nanmedian(_itl(plain, "ray-worker-1")) > 1.2 * base  # the hog slows the engine
    assert np.nanmedian(_itl(fixed, "ray-worker-1")) < 1.05 * base  # a restart ends the container's stressor
    assert np.nanmedian(_itl(wrong, "ray-worker-1")) > 1.2 * base  # restarting the wrong pod does not
    gpu = FaultSpec(type="gpu", target="ray-worker-1", duration_s=180)
    capped = be.run_case(gpu, seed=4, protocol=pr, start_time=START, remedy=("restart", inject + 40))
    reset = be.run_case(gpu, seed=4, protocol=pr, start_time=START, remedy=("reset-power-limit", inject + 40))
    late = (capped.metrics["time"] > inject + 120) & (capped.metrics["time"] < inject + 180)
    power = "ray-worker-1_DCGM_FI_DEV_POWER_USAGE"
    assert capped.metric_sets["extended"].loc[late, power].max() < 160  # the cap survives a pod restart
    assert reset.metric_sets["extended"].loc[late, power].median() > 180
    with pytest.raises(ValueError, match="unknown remediation"):
        be.run_case(spec, seed=4, protocol=pr, start_time=START, remedy=("reboot", inject))


@pytest.mark.parametrize("fault", ["cpu", "gpu"])
def test_heal_loop_localizes_and_recovers(fault: str, tmp_path: Path) -> None:
    cfg = HealConfig(method="llm-rca", execute=True, **SHORT)
    rep = heal_sim(fault, "ray-worker-2", seed=3, config=cfg, out=tmp_path)
    assert rep.detected and rep.culprit == "ray-worker-2" and rep.correct_culprit
    assert rep.fault_type == fault
    assert rep.executed and rep.recovered
    assert rep.levels["healed"] < rep.levels["no_action"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert steps[0] == "start" and steps[-2:] == ["decide", "act"] and "localize" in steps
    assert (tmp_path / "heal.png").stat().st_size > 10_000


def test_dry_run_decides_but_does_nothing(tmp_path: Path) -> None:
    rep = heal_sim("cpu", "ray-worker-1", seed=3, config=HealConfig(method="nsigma", **SHORT), out=tmp_path)
    assert rep.detected and not rep.executed and rep.recovered is None
    steps = [json.loads(line)["step"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert steps[-1] == "decide" and "act" not in steps


def test_cli_heal_rejects_bad_input(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"), "PATH": "/usr/bin:/bin"}
    r = subprocess.run(
        [sys.executable, "-m", "llmrca", "heal", "--fault", "disk", "--out", str(tmp_path)], capture_output=True, text=True, env=env
    )
    assert r.returncode == 2 and "disk" in r.stderr and "Traceback" not in r.stderr


def test_heal_cli_refuses_a_negative_seed_and_a_file_as_out_and_reads_the_fault_type_in_any_case(tmp_path) -> None:
    import json as _json

    from typer.testing import CliRunner

    from llmrca.cli import app

    r = CliRunner().invoke(app, ["heal", "--fault", "cpu", "--seed", "-1", "--out", str(tmp_path / "h")])
    assert r.exit_code == 2 and "--seed -1" in r.output, r.output
    (tmp_path / "afile").write_text("x")
    r = CliRunner().invoke(app, ["heal", "--fault", "cpu", "--out", str(tmp_path / "afile")])
    assert r.exit_code == 2 and "is a file" in r.output, r.output
    r = CliRunner().invoke(app, ["heal", "--fault", "CPU", "--out", str(tmp_path / "h")])
    assert r.exit_code == 0, r.output
    rep = _json.loads((tmp_path / "h" / "heal.json").read_text())
    assert "CPU" not in _json.dumps(rep.get("fault", rep))
