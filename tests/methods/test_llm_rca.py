"""llm-rca: localizes and names each fault, discounts upstream symptoms, degrades to basic metrics."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from llm_cases import make_llm_case

from llmrca.methods.llm import LlmRca, LlmRcaConfig
from llmrca.methods.registry import entry, get_method
from llmrca.telemetry import GATEWAY, HEAD

FAULTS = ("cpu", "memory", "network", "gpu")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("root", ["ray-worker-1", "ray-worker-3"])
def test_localizes_and_names_each_fault_extended(fault: str, root: str) -> None:
    case = make_llm_case(fault, root, seed=5).with_metric_set("extended").without_truth()
    r = LlmRca().rank(case)
    assert r.components[0] == root, r.explanation["summary"]
    assert r.fault_type == fault, r.explanation["summary"]
    assert r.explanation["culprit"] == root
    assert root in r.explanation["summary"]
    # the synthetic case has the paper's groups only: what is lacking is the serving signals
    assert [g for g in r.explanation["lacking"] if "needed to name" not in g and not g.startswith("no serving signal")] == []


def test_gpu_explanation_names_power_cap_and_clears_upstream() -> None:
    case = make_llm_case("gpu", "ray-worker-2", seed=2).with_metric_set("extended").without_truth()
    r = LlmRca().rank(case)
    s = r.explanation["summary"]
    assert "power limit lowered from 300 W to 150 W" in s
    assert "SM clock -" in s
    assert any(sig["signal"] == "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS" for sig in r.explanation["signals"])
    assert r.explanation["upstream_explained"].get(GATEWAY) == "ray-worker-2"


@pytest.mark.parametrize("fault", FAULTS)
def test_does_not_blame_gateway_or_head(fault: str) -> None:
    for seed in range(3):
        case = make_llm_case(fault, "ray-worker-2", seed=seed).with_metric_set("extended").without_truth()
        r = LlmRca().rank(case)
        assert r.components[0] not in (GATEWAY, HEAD)
        assert r.components.index(GATEWAY) > r.components.index("ray-worker-2")


@pytest.mark.parametrize("fault", ["cpu", "memory", "network"])
def test_basic_only_still_localizes_and_says_what_it_lacked(fault: str) -> None:
    case = make_llm_case(fault, "ray-worker-2", seed=4).with_metric_set("basic").without_truth()
    r = LlmRca().rank(case)
    assert r.components[0] == "ray-worker-2"
    assert r.fault_type == fault
    lacking = r.explanation["lacking"]
    assert "accelerator power" in lacking and "engine latency decomposition" in lacking


def test_basic_only_gpu_localized_and_typed_by_busier_accelerator() -> None:
    case = make_llm_case("gpu", "ray-worker-2", seed=4).with_metric_set("basic").without_truth()
    r = LlmRca().rank(case)
    assert r.components[0] == "ray-worker-2"
    assert r.fault_type == "gpu"


def test_no_fault_is_unknown_and_weak() -> None:
    case = make_llm_case("cpu", "ray-worker-2", seed=1).with_metric_set("extended")
    # Judge a window from the normal period: nothing should cross a threshold.
    df = case.metrics
    normal = df[df["time"] < case.inject_time]
    m = LlmRca().fit_normal(normal.iloc[:40], topology=case.topology)
    r = m.decide(normal.iloc[40:])
    assert r.fault_type == "unknown"
    assert max(r.scores) < 2.0


def test_determinism_and_json() -> None:
    case = make_llm_case("network", seed=9).with_metric_set("extended").without_truth()
    a, b = LlmRca().rank(case), LlmRca().rank(case)
    assert a.components == b.components and a.scores == b.scores and a.explanation == b.explanation
    json.dumps(a.to_dict())


def test_online_api_matches_offline_rank() -> None:
    case = make_llm_case("gpu", "ray-worker-3", seed=3).with_metric_set("extended").without_truth()
    df = case.metrics
    m = LlmRca()
    with pytest.raises(RuntimeError, match="fit_normal"):
        m.decide(df)
    m.fit_normal(df[df["time"] < case.inject_time], topology=case.topology)
    r = m.decide(df[df["time"] >= case.inject_time])
    off = LlmRca().rank(case)
    assert r.components == off.components
    assert np.allclose(r.scores, off.scores)
    assert r.fault_type == "gpu"


def test_config_round_trip_and_registry() -> None:
    cfg = LlmRcaConfig(z_threshold=4.0, use_logs=False)
    assert LlmRcaConfig.from_dict(cfg.to_dict()) == cfg
    assert LlmRcaConfig.from_yaml(cfg.to_yaml()) == cfg
    e = entry("llm-rca")
    assert e.family == "llm"
    m = get_method("llm-rca", {"z_threshold": 4.0})
    assert isinstance(m, LlmRca) and m.config.z_threshold == 4.0
    assert m.tags.metric_set == "extended" and m.tags.uses_topology and m.tags.family == "llm"


def _basic_with(case, extra: dict):
    """``case``'s basic set plus the given extended columns (name -> values), as a case of that set only."""
    from llmrca.model import Case

    ext = case.metric_sets["extended"]
    basic = case.metric_sets["basic"].assign(**{c: (v if v is not None else ext[c]) for c, v in extra.items()})
    return Case(metrics=basic, metric_sets={"basic": basic}, inject_time=case.inject_time, name=case.name, logs=case.logs,
                topology=case.topology, meta=case.meta)


def test_a_power_draw_falling_at_the_same_work_is_a_gpu_cue_without_a_limit_series() -> None:
    """dcgm-exporter's default fields have POWER_USAGE but no power limit: a capped GPU's draw fell 40 % and llm-rca
    said 'network; GPU power signals absent'.  The draw falling while the replica's work does not is a GPU cue."""
    case = make_llm_case("gpu", "ray-worker-2", seed=4)
    r = LlmRca().rank(_basic_with(case, {f"{w}_DCGM_FI_DEV_POWER_USAGE": None for w in ("ray-worker-1", "ray-worker-2", "ray-worker-3")}))
    assert r.components[0] == "ray-worker-2" and r.fault_type == "gpu", r.explanation["summary"]
    assert "GPU power draw fell while the replica's work did not" in r.explanation["summary"]
    assert "power signals absent" not in json.dumps(r.explanation["signals"])


def test_a_power_draw_falling_with_the_work_is_no_gpu_cue() -> None:
    """A replica behind a network delay gets less work and draws less: that fall is not a cap."""
    case = make_llm_case("network", "ray-worker-2", seed=4)
    ext = case.metric_sets["extended"]
    after = (ext["time"] >= case.inject_time).to_numpy()
    extra = {f"{w}_DCGM_FI_DEV_POWER_USAGE": None for w in ("ray-worker-1", "ray-worker-3")}
    extra["ray-worker-2_DCGM_FI_DEV_POWER_USAGE"] = ext["ray-worker-2_DCGM_FI_DEV_POWER_USAGE"].to_numpy() * np.where(after, 0.7, 1.0)
    extra["ray-worker-2_vllm:num_requests_running"] = ext["ray-worker-2_vllm:num_requests_running"].to_numpy() * np.where(after, 0.5, 1.0)
    for w in ("ray-worker-1", "ray-worker-3"):
        extra[f"{w}_vllm:num_requests_running"] = None
    r = LlmRca().rank(_basic_with(case, extra))
    assert r.components[0] == "ray-worker-2" and r.fault_type == "network", r.explanation["summary"]
    assert not any(s["signal"] == "DCGM_FI_DEV_POWER_USAGE" and s["hypothesis"] == "gpu" for s in r.explanation["signals"])


def test_a_power_draw_falling_with_no_work_reported_is_no_gpu_cue() -> None:
    """Without running requests, utilisation or token rates the fall could be less work (a network delay in front of
    the replica): it was counted at half weight and a network case was typed gpu."""
    case = make_llm_case("network", "ray-worker-2", seed=4)
    ext = case.metric_sets["extended"]
    after = (ext["time"] >= case.inject_time).to_numpy()
    extra = {f"{w}_DCGM_FI_DEV_POWER_USAGE": None for w in ("ray-worker-1", "ray-worker-3")}
    extra["ray-worker-2_DCGM_FI_DEV_POWER_USAGE"] = ext["ray-worker-2_DCGM_FI_DEV_POWER_USAGE"].to_numpy() * np.where(after, 0.7, 1.0)
    basic = _basic_with(case, extra)
    basic = type(basic)(metrics=basic.metrics.drop(columns=[c for c in basic.metrics.columns if c.endswith("_gpu")]),
                        metric_sets={"basic": basic.metrics.drop(columns=[c for c in basic.metrics.columns if c.endswith("_gpu")])},
                        inject_time=basic.inject_time, name=basic.name, logs=basic.logs, topology=basic.topology, meta=basic.meta)
    r = LlmRca().rank(basic)
    assert not any(s["signal"] == "DCGM_FI_DEV_POWER_USAGE" and s["hypothesis"] == "gpu" for s in r.explanation["signals"]), r.explanation
    assert r.fault_type != "gpu", r.explanation["summary"]
