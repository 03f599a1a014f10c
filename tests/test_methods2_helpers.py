"""Shared helpers of the statistical / topology / trace / multi-source methods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrca.methods.common.anomaly import robust_scores, sigma_exceedances, zscore_scores
from llmrca.methods.common.edges import detect_anomalous_edges
from llmrca.methods.common.logs import error_line_counts, log_count_series, map_container
from llmrca.methods.common.traces import prepare_spans, trace_series
from llmrca.synthetic import make_case


def test_robust_and_zscore_scores_exact() -> None:
    normal = pd.DataFrame({"a_x": [1.0, 2.0, 3.0, 4.0, 5.0], "b_y": [7.0] * 5})
    anomal = pd.DataFrame({"a_x": [3.0, 11.0], "b_y": [7.0, 9.0]})
    r = robust_scores(normal, anomal)
    # median 3, IQR 2 -> (11-3)/2 = 4; constant column: IQR 0 -> floored at 1e-6 * 7 -> (9-7) / 7e-6
    assert r["a_x"] == pytest.approx(4.0)
    assert r["b_y"] == pytest.approx(2.0 / 7e-6)
    assert robust_scores(normal, anomal, zero_spread="unit")["b_y"] == pytest.approx(2.0)  # scikit-learn convention
    z = zscore_scores(normal, anomal)
    assert z["a_x"] == pytest.approx((11 - 3) / np.std([1, 2, 3, 4, 5]))
    down = pd.DataFrame({"a_x": [-5.0], "b_y": [7.0]})
    assert robust_scores(normal, down)["a_x"] < 0
    assert robust_scores(normal, down, absolute=True)["a_x"] == pytest.approx(4.0)


def test_sigma_exceedances_counts_points() -> None:
    normal = pd.DataFrame({"a_x": [0.0, 1.0, 0.0, 1.0]})
    anomal = pd.DataFrame({"a_x": [10.0, 0.5, 12.0, -10.0]})
    assert sigma_exceedances(normal, anomal, k=3)["a_x"] == 2
    assert sigma_exceedances(normal, anomal, k=3, upper_only=False)["a_x"] == 3


def test_log_count_series_buckets_and_maps_pods() -> None:
    logs = pd.DataFrame(
        {
            "time": [10.0, 10.5, 11.2, 12.9, 13.0, 11.0],
            "container_name": ["ray-worker-1-abc", "ray-worker-1-abc", "ray-head", "ray-head", "ray-head", "sidecar"],
            "message": ["ok", "ERROR boom", "fine", "Failed to x", "late", "x"],
        }
    )
    frame, unmapped = log_count_series(logs, np.array([10.0, 11.0, 12.0]), ["ray-head", "ray-worker-1"])
    assert unmapped == ["sidecar"]
    assert frame["ray-worker-1_log-count"].tolist() == [2.0, 0.0, 0.0]
    assert frame["ray-worker-1_log-error-count"].tolist() == [1.0, 0.0, 0.0]
    # 13.0 is past the last bucket [12, 13)
    assert frame["ray-head_log-count"].tolist() == [0.0, 1.0, 1.0]
    assert frame["ray-head_log-error-count"].tolist() == [0.0, 0.0, 1.0]
    assert map_container("ray-worker-10-x", ["ray-worker-1", "ray-worker-10"]) == "ray-worker-10"
    assert error_line_counts(logs, ["ray-head", "ray-worker-1"], start_s=11.0) == {"ray-head": 1, "ray-worker-1": 0}


def test_prepare_spans_self_time_errors_and_series() -> None:
    tr = pd.DataFrame(
        {
            "traceID": ["t1", "t1", "t2", "t2"],
            "spanID": ["a", "b", "a", "b"],  # span ids repeat across traces
            "parentSpanID": ["", "a", "", "a"],
            "serviceName": ["gw", "wk", "gw", "wk"],
            "methodName": ["POST"] * 4,
            "operationName": ["/v1", "gen", "/v1", "gen"],
            "duration": [1_000_000, 900_000, 3_000_000, 2_500_000],
            "statusCode": [200, 200, 200, "STATUS_CODE_ERROR"],
            "startTime": [10_000_000, 10_000_100, 11_000_000, 11_000_100],
        }
    )
    s = prepare_spans(tr)
    assert s["self_us"].tolist() == [100_000, 900_000, 500_000, 2_500_000]
    assert s["error"].tolist() == [False, False, False, True]
    assert s["operation"].tolist() == ["gw_/v1", "wk_gen", "gw_/v1", "wk_gen"]
    ts = trace_series(s, np.array([10.0, 11.0]), ["gw", "wk"])
    assert ts["gw_trace-latency-p50"].tolist() == [1.0, 3.0]
    assert ts["wk_trace-error-count"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="traces lack"):
        prepare_spans(tr.drop(columns=["duration"]))


@pytest.mark.parametrize("detector", ["birch", "sigma"])
def test_anomalous_edge_detector_flags_the_slow_callee(detector: str) -> None:
    case = make_case(root="ray-worker-3", fault="network", seed=3)
    edges = {e.edge: e for e in detect_anomalous_edges(case, detector=detector, threshold=2.0 if detector == "birch" else 4.0)}
    assert edges[("ray-head", "ray-worker-3")].anomalous
    assert not edges[("ray-head", "ray-worker-1")].anomalous
    assert not edges[("ray-head", "ray-worker-2")].anomalous
    assert edges[("ray-head", "ray-worker-3")].score > edges[("ray-head", "ray-worker-1")].score


def test_split_traces_keeps_straddling_trace_whole() -> None:
    from llmrca.methods.common.traces import split_at, split_traces_at

    tr = pd.DataFrame(
        {
            "traceID": ["t1", "t1", "t2"],
            "spanID": ["a", "b", "a"],
            "parentSpanID": ["", "a", ""],
            "serviceName": ["gw", "wk", "gw"],
            "operationName": ["/v1", "gen", "/v1"],
            "duration": [3_000_000, 1_000_000, 1_000_000],
            "statusCode": [200, 200, 200],
            "startTime": [9_000_000, 9_100_000, 1_000_000],
        }
    )
    s = prepare_spans(tr)
    normal, window = split_traces_at(s, inject_time=11.0)
    assert normal["traceID"].tolist() == ["t2"]
    assert window["spanID"].tolist() == ["a", "b"]  # t1's worker span ended at 10.1 s but stays with its trace
    _n2, w2 = split_at(s, inject_time=11.0)
    assert len(w2) == 1  # the span-level split cuts t1 apart


def test_baro_and_mm_baro_score_a_flat_then_moving_metric_alike() -> None:
    """One zero-spread convention: the spread of a flat normal window is floored at 1e-6 x its level."""
    from llmrca.methods.registry import get_method
    from llmrca.model import Case

    t = np.arange(40, dtype=float)
    rng = np.random.default_rng(0)
    metrics = pd.DataFrame({
        "time": t,
        "a_errors": np.r_[np.full(30, 4.0), np.full(10, 6.0)],  # flat, then +2
        "b_cpu": np.r_[rng.normal(1.0, 0.1, 30), rng.normal(1.3, 0.1, 10)],
    })
    case = Case(metrics=metrics, inject_time=30.0)
    baro = dict(get_method("baro").rank(case).metrics)
    mm = dict(get_method("mm-baro", use_logs=False, use_traces=False, absolute=True).rank(case).explanation["top_series"])
    assert baro["a_errors"] == pytest.approx(2.0 / 4e-6)
    assert mm["a_errors"] == pytest.approx(baro["a_errors"])
    assert mm["b_cpu"] == pytest.approx(baro["b_cpu"])
    unit = dict(get_method("baro", zero_spread="unit").rank(case).metrics)
    assert unit["a_errors"] == pytest.approx(2.0)  # scikit-learn / RCAEval: a zero IQR becomes 1
