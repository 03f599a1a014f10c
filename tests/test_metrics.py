"""AC@k / Avg@k (paper eq. (1)) on hand-computed examples."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from llmrca.evaluate.metrics import ac_at_k, avg_at_k, case_scores, misattribution, summarize

R = ["a", "b", "c", "d", "e", "f"]


def test_single_root_cause() -> None:
    assert ac_at_k(R, {"a"}, 1) == 1.0
    assert ac_at_k(R, {"c"}, 1) == 0.0
    assert ac_at_k(R, {"c"}, 2) == 0.0
    assert ac_at_k(R, {"c"}, 3) == 1.0
    # AC@1..5 for a root at rank 3: 0,0,1,1,1 -> Avg@5 = 3/5
    assert avg_at_k(R, {"c"}, 5) == pytest.approx(0.6)
    assert case_scores(R, {"z"})["avg@5"] == 0.0  # not ranked at all


def test_several_root_causes_divide_by_min_k_and_truth_size() -> None:
    roots = {"b", "d"}
    assert ac_at_k(R, roots, 1) == 0.0  # a is wrong: 0 / min(1, 2)
    assert ac_at_k(R, roots, 2) == 0.5  # b hit: 1 / min(2, 2)
    assert ac_at_k(R, roots, 3) == 0.5  # 1 / 2
    assert ac_at_k(R, roots, 4) == 1.0  # 2 / 2
    assert avg_at_k(R, roots, 5) == pytest.approx((0 + 0.5 + 0.5 + 1 + 1) / 5)
    assert ac_at_k(["b", "d", "a"], roots, 1) == 1.0  # 1 / min(1, 2)


def test_ties_count_expected_hits_and_order_mode_is_literal() -> None:
    comps = ["a", "b", "c", "d"]
    scores = [3.0, 3.0, 1.0, 0.0]  # a and b tied at the top
    assert ac_at_k(comps, {"b"}, 1, scores) == 0.5
    assert ac_at_k(comps, {"b"}, 1, scores, ties="order") == 0.0
    assert ac_at_k(comps, {"b"}, 2, scores) == 1.0
    # three-way tie over ranks 2-4 with one root: AC@2 = 1/3, AC@3 = 2/3, AC@4 = 1
    comps2, s2 = ["x", "a", "b", "c"], [9.0, 1.0, 1.0, 1.0]
    assert [ac_at_k(comps2, {"c"}, k, s2) for k in (1, 2, 3, 4)] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    # two roots both inside a tie of three at the top: AC@1 = 2/3, AC@2 = (2 * 2/3) / 2
    comps3, s3 = ["a", "b", "c", "d"], [5.0, 5.0, 5.0, 1.0]
    assert ac_at_k(comps3, {"a", "c"}, 1, s3) == pytest.approx(2 / 3)
    assert ac_at_k(comps3, {"a", "c"}, 2, s3) == pytest.approx(2 / 3)
    assert ac_at_k(comps3, {"a", "c"}, 3, s3) == pytest.approx(1.0)
    # -inf tail (unranked candidates) ties among itself
    assert ac_at_k(["a", "b", "c"], {"c"}, 2, [1.0, -math.inf, -math.inf]) == 0.5


def test_summary_per_fault_and_overall_and_misattribution() -> None:
    rows = []
    for method, fault, comps, roots in [
        ("m", "cpu", ["a", "b"], {"a"}),
        ("m", "cpu", ["b", "a"], {"a"}),
        ("m", "gpu", ["c", "a"], {"a"}),
    ]:
        s = case_scores(comps, roots)
        rows.append({"method": method, "fault": fault, "top1": comps[0], "hit1": comps[0] in roots, **s})
    df = pd.DataFrame(rows)
    summ = summarize(df)
    assert list(summ.columns) == ["method", "fault", "n", "ac@1", "ac@3", "avg@5"]
    cpu = summ[summ.fault == "cpu"].iloc[0]
    assert (cpu["n"], cpu["ac@1"], cpu["ac@3"]) == (2, 0.5, 1.0)
    assert cpu["avg@5"] == pytest.approx((1.0 + 0.8) / 2)
    allrow = summ[summ.fault == "all"].iloc[0]
    assert allrow["n"] == 3 and allrow["ac@1"] == pytest.approx(1 / 3)
    mis = misattribution(df)
    assert sorted(zip(mis.blamed, mis["count"], strict=True)) == [("b", 1), ("c", 1)]
