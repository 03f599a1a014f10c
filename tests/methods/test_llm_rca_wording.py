"""llm-rca's explanation wording on simulated serving faults: units, log counts, labels, abstention, lacking groups."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from llmrca.campaign import run_campaign
from llmrca.evaluate.single import rank_case
from llmrca.report.explain import explanation_lines


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wording") / "d"
    return run_campaign(profile="extended", seed=5, out=out, progress=False, faults=["gpu-thermal", "kv-cache", "gpu-error", "model-load", "noisy-neighbour"],
                        targets=["ray-worker-2"], cases_per_fault=1, healthy=1)


def _rank(path: Path, metric_set: str | None = None):
    return rank_case(path, "llm-rca", {}, metric_set=metric_set).ranking


def test_thermal_violation_is_a_share_of_time(cases: Path) -> None:
    r = _rank(cases / "ray-worker-2_gpu-thermal" / "1")
    assert r.fault_type == "gpu-thermal"
    assert "always throttled by temperature" in r.explanation["summary"]
    sig = next(s for s in r.explanation["signals"] if "THERMAL_VIOLATION" in s["signal"])
    assert 0.0 <= sig["normal"] <= 1.0 and 99.0 <= sig["window"] <= 100.0  # percent, not µs/s
    assert "1e+06" not in "\n".join(explanation_lines(r.explanation))


def test_log_evidence_prints_matching_line_counts(cases: Path) -> None:
    r = _rank(cases / "ray-worker-2_kv-cache" / "1")
    sig = next(s for s in r.explanation["signals"] if s["signal"] == "log:kv")
    assert sig["normal"] == 0.0 and sig["window"] >= 1
    text = "\n".join(explanation_lines(r.explanation))
    assert "None -> None" not in text
    assert re.search(r"preemption warnings\): \d+ lines?, none before", r.explanation["summary"]), r.explanation["summary"]


def test_xid_lines_are_labelled_as_such(cases: Path) -> None:
    r = _rank(cases / "ray-worker-2_gpu-error" / "1")
    assert r.fault_type == "gpu-error"
    text = "\n".join(explanation_lines(r.explanation))
    assert "GPU power / throttle log lines" not in text
    assert "Xid / driver" in text


def test_a_graceful_drain_is_not_called_a_kill(cases: Path) -> None:
    for metric_set in (None, "basic"):
        r = _rank(cases / "ray-worker-2_model-load" / "1", metric_set)
        text = "\n".join(explanation_lines(r.explanation))
        assert "process killed" not in text, metric_set


def test_abstention_presents_no_culprit(cases: Path) -> None:
    r = _rank(cases / "healthy" / "1")
    assert r.abstained
    assert "culprit" not in r.explanation and "confidence" not in r.explanation
    assert "for information" in "\n".join(explanation_lines(r.explanation)).replace("_", " ")
    assert not any(line.startswith("culprit ") for line in explanation_lines(r.explanation))


def test_basic_set_lists_the_absent_serving_groups(cases: Path) -> None:
    r = _rank(cases / "ray-worker-2_noisy-neighbour" / "1", "basic")
    lacking = r.explanation["lacking"]
    for group in ("node CPU / CPU pressure (PSI)", "TCP retransmits", "KV cache", "GPU temperature", "Xid errors"):
        assert any(g.startswith(group) for g in lacking), group
    assert any("can only be one of the paper's four" in g for g in lacking)
    full = _rank(cases / "ray-worker-2_noisy-neighbour" / "1").explanation["lacking"]
    assert not any("needed to name" in g for g in full)


def test_explanation_lines_show_short_nested_fields_and_count_long_ones() -> None:
    lines = explanation_lines({
        "graph": {"kind": "pcmci (reference)", "nodes": 28, "edges": 607},
        "root_causes": ["a_cpu", "b_mem"],
        "dropped": [],
        "top_metrics": [["a_cpu", 1.0]] * 3,
        "scores": {f"c{i}": i for i in range(20)},
    })
    assert "graph: kind=pcmci (reference), nodes=28, edges=607" in lines
    assert "root_causes: a_cpu, b_mem" in lines and "dropped: none" in lines
    # (column, score) pairs are listed as text (they were counted, or printed as Python tuples)
    assert "top_metrics: a_cpu 1, a_cpu 1, a_cpu 1" in lines and "scores: 20 item(s) (see --json)" in lines


def test_an_evidence_flag_without_levels_prints_no_none_arrow() -> None:
    from llmrca.report.explain import signal_line

    flag = {"component": "ray-worker-1", "signal": "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "normal": None, "window": None,
            "hypothesis": "gpu", "strength": 3.75, "note": "SW power cap throttle bit set in 75% of samples"}
    line = signal_line(flag)
    assert "None" not in line and line.startswith("ray-worker-1 DCGM_FI_DEV_CLOCK_THROTTLE_REASONS  [gpu, strength 3.75]")
    level = {**flag, "signal": "DCGM_FI_DEV_SM_CLOCK", "normal": 1409.0, "window": 1148.0, "change_pct": -18.52}
    assert "DCGM_FI_DEV_SM_CLOCK: 1409 -> 1148 (-19 %)" in signal_line(level)
