"""The campaign protocol over the simulator, and its command line."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmrca.campaign import PROFILES, Backend, case_seeds, pick_targets, plan_cases, run_campaign, split_overrides
from llmrca.cli import app
from llmrca.config import ConfigError
from llmrca.dataset.io import Dataset
from llmrca.model import FAULT_TYPES
from llmrca.report.fault_effects import fault_effects_figure
from llmrca.testbed.base import Timeline


def test_plan_and_seeds():
    specs = plan_cases(PROFILES["paper"], [f"ray-worker-{i}" for i in range(1, 4)], {"cpu": {"workers": 8}}, Timeline())
    assert len(specs) == 120
    assert {s.type for s in specs} == set(FAULT_TYPES)
    assert all(s.params == {"workers": 8} for s in specs if s.type == "cpu")
    seeds = case_seeds(1, 120)
    assert len(set(seeds)) == 120 and seeds == case_seeds(1, 120) and seeds != case_seeds(2, 120)
    assert pick_targets([f"w{i}" for i in range(1, 65)], 3) == ["w1", "w33", "w64"]
    assert split_overrides({"fault.cpu.workers": 8, "sim.tick_s": 0.1}) == ({"cpu": {"workers": 8}}, {"tick_s": 0.1})
    with pytest.raises(ConfigError):
        split_overrides({"cpu.workers": 8})


@pytest.mark.slow
def test_quick_campaign_writes_a_dataset(tmp_path):
    out = run_campaign("sim", "quick", seed=3, out=tmp_path / "ds", progress=False, workers=2, qps=3.0, protocol=Timeline(normal_s=60, fault_s=30, tail_s=10, warmup_s=10))
    ds = Dataset(out)
    assert len(ds) == 4 * 2
    man = json.loads((out / "dataset.json").read_text())
    assert man["backend"] == "sim" and man["profile"] == "quick" and man["seed"] == 3
    assert man["protocol"]["fault_s"] == 30 and man["parameters"]["sim"]["n_workers"] == 2
    assert len({c["seed"] for c in man["cases"]}) == 8
    for _, case in ds.iter_cases():
        assert not isinstance(case, Exception), case
        assert set(case.metric_sets) == {"basic", "extended"}
        assert case.root_causes == {case.fault.target}
        assert case.fault.achieved
    with pytest.raises(FileExistsError):
        run_campaign("sim", "quick", out=out, progress=False)
    png = fault_effects_figure(out, tmp_path / "fig6.png")
    assert png.stat().st_size > 20_000
    with pytest.raises(ValueError, match="no readable case"):
        (tmp_path / "empty").mkdir()
        fault_effects_figure(tmp_path / "empty", tmp_path / "x.png")


def test_cases_per_fault_spreads_over_the_targets(tmp_path):
    import dataclasses

    workers = [f"ray-worker-{i}" for i in range(1, 4)]
    specs = plan_cases(dataclasses.replace(PROFILES["local"], cases_per_fault=8), workers, None, Timeline())
    assert len(specs) == 32
    for ft in FAULT_TYPES:
        targets = [s.target for s in specs if s.type == ft]
        assert targets == ["ray-worker-1"] * 3 + ["ray-worker-2"] * 3 + ["ray-worker-3"] * 2
    out = run_campaign("sim", "quick", seed=4, out=tmp_path / "ds", progress=False, workers=2, cases_per_fault=1,
                       protocol=Timeline(normal_s=40, fault_s=20, tail_s=5, warmup_s=5))
    man = json.loads((out / "dataset.json").read_text())
    assert man["cases_per_fault"] == 1 and sorted(c["fault"] for c in man["cases"]) == sorted(FAULT_TYPES)
    assert [c["path"].split("/")[0] for c in man["cases"]] == [f"ray-worker-1_{ft}" for ft in FAULT_TYPES]
    with pytest.raises(ConfigError, match="cases-per-fault"):  # another N is refused
        run_campaign("sim", "quick", seed=4, out=out, progress=False, workers=2, resume=True, cases_per_fault=2)
    # without N a resume takes the campaign's own (nothing left to run: the same four cases)
    again = run_campaign("sim", "quick", seed=4, out=out, progress=False, workers=2, resume=True, protocol=Timeline(normal_s=40, fault_s=20, tail_s=5, warmup_s=5))
    assert [c["path"] for c in json.loads((again / "dataset.json").read_text())["cases"]] == [c["path"] for c in man["cases"]]
    with pytest.raises(ConfigError, match="at least 1"):
        run_campaign("sim", "quick", seed=4, out=tmp_path / "x", progress=False, cases_per_fault=0)
    res = CliRunner().invoke(app, ["campaign", "--profile", "quick", "--cases-per-fault", "1", "--workers", "1", "--out", str(tmp_path / "cli"), "-q",
                                   "--set", "sim.tick_s=0.5"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cli" / "dataset.json").read_text())["cases_per_fault"] == 1


def test_backend_is_abstract():
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]


def test_cli_rejects_bad_input(tmp_path):
    r = CliRunner().invoke(app, ["campaign", "--out", str(tmp_path / "x"), "--set", "fault.cpu.threads=3"])
    assert r.exit_code == 2 and "threads" in r.output
    r = CliRunner().invoke(app, ["campaign", "--out", str(tmp_path / "x"), "--profile", "huge"])
    assert r.exit_code == 2 and "profile" in r.output
    r = CliRunner().invoke(app, ["campaign", "--out", str(tmp_path / "x"), "--set", "fault.gpu.power_limit_w=100"])
    assert r.exit_code == 2 and "range" in r.output
    r = CliRunner().invoke(app, ["campaign", "--out", str(tmp_path / "x"), "--backend", "k8s"])
    assert r.exit_code == 2 and "backend" in r.output
