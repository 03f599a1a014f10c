"""The live loop's parts that need no running stack: alert rules, signal parsing, signals read by meaning, the audit's verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from llmrca.heal.audit import FAULTS, GUIDELINES, AuditReport, render
from llmrca.heal.watch import ABS_FLOOR, SloRule, WatchConfig, parse_signals, signal_defs, signal_values


def _rule(**kw) -> SloRule:
    base = dict(name="each:latency_mean@w", kind="latency_mean", k=6.0, rel=0.10, floor=ABS_FLOOR["latency"], for_s=15.0,
                baseline_s=300.0, min_baseline=8)
    base.update(kw)
    return SloRule(**base)


def test_rule_band_is_median_plus_the_widest_of_mad_rel_and_floor() -> None:
    r = _rule()
    for i, v in enumerate([2.9, 2.91, 2.89, 2.9, 2.92, 2.88, 2.9, 2.9]):
        r.learn(float(i * 5), v)
    med, thr = r.band()
    assert med == pytest.approx(2.9)
    assert thr == pytest.approx(2.9 * 1.10)  # MAD term 6*1.4826*0.01 = 0.089 < 0.29 (rel) > 0.05 (floor)
    flat = _rule(kind="error_rate", floor=ABS_FLOOR["errors"])
    for i in range(8):
        flat.learn(float(i), 0.0)
    assert flat.band() == (0.0, 0.05)  # a flat zero baseline: only the floor keeps noise from paging


def test_rule_needs_a_baseline_then_fires_after_for_and_resets_on_missing_data() -> None:
    r = _rule()
    assert r.band() is None and r.evaluate(0.0, 100.0) == "inactive"  # not armed yet
    for i in range(8):
        r.learn(float(i * 5), 3.0)
    states = [r.evaluate(100.0 + 5 * i, 4.0) for i in range(4)]
    assert states == ["pending", "pending", "pending", "firing"]  # 15 s out of band, as Prometheus' for: 15s
    assert r.pending_since == 100.0
    assert r.evaluate(120.0, math.nan) == "inactive" and r.pending_since is None  # an empty evaluation resets it
    assert r.evaluate(125.0, 3.1) == "inactive"
    assert r.in_band(3.2) and not r.in_band(3.5) and r.in_band(math.nan)


def test_baseline_forgets_old_samples() -> None:
    r = _rule(baseline_s=60.0)
    for i in range(30):
        r.learn(float(i * 5), 10.0 if i < 15 else 3.0)
    assert r.band()[0] == 3.0 and len(r.samples) == 13


def test_signals_are_parsed_and_bad_ones_refused_with_the_kinds() -> None:
    assert parse_signals(WatchConfig().signals)[0] == ("each", "latency_mean")
    with pytest.raises(ValueError, match="latency_mean"):
        parse_signals("each:nope")
    with pytest.raises(ValueError, match="entry:<kind>"):
        parse_signals("median:latency_mean")
    with pytest.raises(ValueError, match="no alert signal"):
        parse_signals(" , ")
    defs = signal_defs({"latency_mean", "gateway_5xx_rate", "itl_mean", "replica_starts"})
    assert {"latency", "nginx_ingress_controller_requests_5xx:rate",
            "vllm:inter_token_latency_seconds:mean", "ray_serve_deployment_replica_starts_total:rate"} <= set(defs)


def test_signal_values_read_columns_by_meaning_in_canonical_units() -> None:
    frame = pd.DataFrame({
        "time": [0.0, 5.0, 10.0],
        "nginx-gateway_istio_request_duration_milliseconds:mean": [2900.0, 3000.0, np.nan],  # ms -> s
        "ray-worker-1_istio_request_duration_milliseconds:mean": [2800.0, 3900.0, 2700.0],
        "ray-worker-1_vllm:time_per_output_token_seconds:mean": [0.06, 0.07, 0.06],  # vLLM <= 0.10 name of the ITL
        "nginx-gateway_nginx_ingress_controller_requests_5xx:rate": [np.nan, 0.2, 0.0],
    })
    comps = ["nginx-gateway", "ray-worker-1"]
    v = signal_values(frame, parse_signals("each:latency_mean,each:itl_mean,entry:gateway_5xx_rate,max:latency_mean"), comps)
    np.testing.assert_allclose(v["each:latency_mean@nginx-gateway"], [2.9, 3.0, np.nan])
    np.testing.assert_allclose(v["each:latency_mean@ray-worker-1"], [2.8, 3.9, 2.7])
    np.testing.assert_allclose(v["max:latency_mean"], [2.9, 3.9, 2.7])
    np.testing.assert_allclose(v["each:itl_mean@ray-worker-1"], [0.06, 0.07, 0.06])
    np.testing.assert_allclose(v["entry:gateway_5xx_rate"], [0.0, 0.2, 0.0])  # a rate with no series reads 0
    assert "each:itl_mean@nginx-gateway" not in v  # only components that report the kind get a rule


def test_entry_and_max_rules_say_which_components_they_watch() -> None:
    """The 'no SLO signal of C' warning counted only each: rules; entry: and max: rules watch components too."""
    frame = pd.DataFrame({
        "time": [0.0, 5.0],
        "nginx-gateway_nginx_ingress_controller_requests_5xx:rate": [0.0, 0.1],
        "vllm-a_vllm:inter_token_latency_seconds:mean": [0.05, 0.06],
        "vllm-b_vllm:inter_token_latency_seconds:mean": [0.05, 0.05],
    })
    who: dict[str, set[str]] = {}
    signal_values(frame, parse_signals("entry:gateway_5xx_rate,max:itl_mean"), ["nginx-gateway", "vllm-a", "vllm-b"], who)
    assert who == {"entry:gateway_5xx_rate": {"nginx-gateway"}, "max:itl_mean": {"vllm-a", "vllm-b"}}


def _report(present: dict[str, set[str]]) -> AuditReport:
    from llmrca.heal import audit as a

    comps = {c: f'pod="{c}"' for c in present}
    replicas = [c for c in present if c.startswith("ray")]
    by = {c: {g: [f"{c}_x"] for g in gs} for c, gs in present.items()}
    faults = {}
    for ft, (req, _help) in FAULTS.items():
        gaps = [r for r in req if any(not any(x in by[c] for x in r.split("|")) for c in replicas)]
        faults[ft] = {"diagnosable": not gaps, "why": a.WHY[ft], "missing": [{"signal": g, "components": replicas, "fix": a._fix(g.split("|"))} for g in gaps],
                      "would_help": []}
    return AuditReport("http://x", (0.0, 600.0), comps, replicas, "nginx-gateway", by, faults, ["gateway latency"], {})


def test_audit_render_names_gaps_fixes_and_the_minimum_set() -> None:
    full = {g.name for g in GUIDELINES}
    rep = _report({"nginx-gateway": {"cpu", "gateway latency"}, "ray-worker-1": full - {"gpu power limit", "clock-event (throttle) reasons"}})
    text = render(rep)
    assert not rep.minimum_ok and "minimum set: NOT present (exit 1)" in text
    assert "gpu      CANNOT be diagnosed" in text and "DCGM_FI_DEV_POWER_MGMT_LIMIT" in text and "cpu      can be diagnosed" in text
    ok = _report({"nginx-gateway": {"cpu", "gateway latency"}, "ray-worker-1": full})
    assert ok.minimum_ok and "minimum set: present (exit 0)" in render(ok)


def test_the_figure_title_says_when_the_action_was_not_done(tmp_path) -> None:
    """watch.png's title said '-> restart' for a restart that failed (audit.jsonl had the result)."""
    from llmrca.heal.watch import Incident, WatchReport, figure

    rep = WatchReport(started=1000.0)
    rep.history = {"e2e_p90:latency@gateway": [[1000.0 + 5 * i, 1.0 + (i > 30)] for i in range(60)]}
    inc = Incident(onset=1150.0, alert=1160.0, signals=["e2e_p90:latency@gateway"], decided=1170.0, culprit="ray-worker-1",
                   fault_type="cpu", action="restart", action_status="failed", acted=1175.0)
    rep.incidents = [inc]
    assert figure(rep, tmp_path / "w.png") == "llmrca watch: ray-worker-1 (cpu) -> restart (failed)"
    assert (tmp_path / "w.png").stat().st_size > 0
    inc.action_status = "done"
    assert figure(rep, tmp_path / "w.png") == "llmrca watch: ray-worker-1 (cpu) -> restart"


def test_audit_tells_a_histogram_without_requests_from_a_missing_exporter() -> None:
    """40 s after the load started, audit said 'inject the Istio sidecar' for replicas whose sidecar histograms were
    there but had no request yet (collect_metrics: 'no finite value in the window')."""
    from llmrca.heal.audit import _exported_but_empty

    empty = {"ray-worker-1_istio_request_duration_milliseconds:p90": "no finite value in the window: histogram_quantile(...)"}
    absent = {"ray-worker-1_istio_request_duration_milliseconds:p90": "latency p90: no series for any of: ..."}
    assert _exported_but_empty(empty, "ray-worker-1", ["mesh latency"])
    assert not _exported_but_empty(empty, "ray-worker-2", ["mesh latency"])
    assert not _exported_but_empty(absent, "ray-worker-1", ["mesh latency"])
    assert not _exported_but_empty(empty, "ray-worker-1", ["gpu utilisation"])


def test_preflight_refuses_a_component_name_with_underscore_before_asking_prometheus() -> None:
    from llmrca.heal.watch import preflight

    said: list[str] = []
    with pytest.raises(ValueError, match=r"vllm_a.*contains '_'"):
        preflight("http://127.0.0.1:1", {"vllm_a": 'pod="x"'}, say=said.append)  # nothing listens there: not asked
    assert said == []
