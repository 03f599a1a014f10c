"""The paper's three findings computed from scored runs (report.findings)."""

from __future__ import annotations

import pandas as pd
import pytest

from llmrca.report.findings import findings, findings_lines


def _row(method: str, fault: str, top1: str, target: str = "ray-worker-1") -> dict:
    hit = top1 == target
    return {"method": method, "fault": fault, "top1": top1, "hit1": hit, "ac@1": float(hit)}


def test_findings_count_blame_gpu_and_trace_methods() -> None:
    rows = [
        # BARO: wrong twice on the gateway, once on the head, right once
        _row("baro", "cpu", "nginx-gateway"), _row("baro", "cpu", "nginx-gateway"), _row("baro", "memory", "ray-head"),
        _row("baro", "gpu", "ray-worker-1"),
        # PDiagnose: wrong on the head twice, on another worker once
        _row("pdiagnose", "cpu", "ray-head"), _row("pdiagnose", "gpu", "ray-head"), _row("pdiagnose", "gpu", "ray-worker-2"),
        # TraceRCA: always the gateway
        _row("tracerca", "cpu", "nginx-gateway"), _row("tracerca", "gpu", "nginx-gateway"),
        # ours is not a baseline: its misses are not counted
        _row("llm-rca", "gpu", "kuberay-operator"),
    ]  # fmt: skip
    f = findings(pd.DataFrame(rows), {"baro": "basic", "pdiagnose": "basic", "tracerca": "basic", "llm-rca": "extended"})
    # 8 wrong baseline answers: gateway 4, head 3, other worker 1
    assert f.blame_share == {"gateway": 0.5, "head": 0.375, "other worker": 0.125}
    assert f.top_blamed == {"baro": "gateway", "pdiagnose": "head", "tracerca": "gateway"}
    assert f.upstream_majority is True
    assert f.gpu_ac1 == {"baro": 1.0, "pdiagnose": 0.0, "tracerca": 0.0}
    assert f.max_gpu == ("baro", 1.0)
    assert f.trace_ac1 == {"tracerca": 0.0}
    text = "\n".join(findings_lines(f))
    assert "gateway 50%" in text and "best baseline GPU AC@1 is 1.00 (BARO" in text and "does not hold" in text
    assert "TraceRCA 0.00" in text


def test_no_runs_no_findings() -> None:
    f = findings(pd.DataFrame(columns=["method", "fault", "top1", "hit1", "ac@1"]))
    assert findings_lines(f) == [] and f.upstream_majority is None


def test_the_data_blind_random_ranking_is_no_baseline_and_missing_trace_methods_are_said() -> None:
    rows = [
        _row("random", "gpu", "ray-worker-1"), _row("random", "gpu", "kuberay-operator"),
        _row("nsigma", "gpu", "nginx-gateway"), _row("nsigma", "cpu", "ray-worker-1"),
    ]  # fmt: skip
    f = findings(pd.DataFrame(rows))
    assert f.gpu_ac1 == {"nsigma": 0.0}  # Random's lucky GPU hit decides nothing
    assert f.blame_share == {"gateway": 1.0}  # nor do its misses count as blame
    text = "\n".join(findings_lines(f))
    assert "Trace methods fail** (not measured)" in text
    # no GPU case of a baseline: said, not left out
    cpu_only = findings(pd.DataFrame([_row("nsigma", "cpu", "nginx-gateway")]))
    assert "GPU throttling is invisible in the basic metrics** (not measured): no baseline produced a ranking" in "\n".join(findings_lines(cpu_only))


def test_runs_that_timed_out_are_said_so_and_measure_no_finding() -> None:
    """Every run timed out: the misses are 'timed out', not 'failed', and a GPU AC@1 of 0.00 from no ranking at all
    is 'not measured', not 'holds'; Random, not evaluated, is not said to be left out."""
    rows = [{**_row(m, f, None), "status": "timeout", "scored_ranking": False, "top1": None, "hit1": False}
            for m in ("nsigma", "baro") for f in ("cpu", "gpu")]
    text = "\n".join(findings_lines(findings(pd.DataFrame(rows))))
    assert "every miss of the baselines was 4 run(s) that timed out" in text and "(failed)" not in text, text
    assert "GPU throttling is invisible in the basic metrics** (not measured)" in text and "(holds" not in text
    wrong = [_row("nsigma", "cpu", "nginx-gateway"), _row("baro", "cpu", "ray-head")]
    assert "Random left out" not in "\n".join(findings_lines(findings(pd.DataFrame(wrong))))


def test_ties_between_kinds_are_said_as_ties_whatever_the_order_of_the_runs() -> None:
    """Two readers that list the same runs in another order state the same finding; a tie between the kinds a
    baseline blames is said as one (it was broken by name, which always favoured the gateway)."""
    import pandas as pd

    from llmrca.report.findings import findings, findings_lines

    rows = [
        {"method": "baro", "case": "a", "fault": "cpu", "target": "ray-worker-1", "top1": "ray-head", "hit1": False, "ac@1": 0.0},
        {"method": "baro", "case": "b", "fault": "cpu", "target": "ray-worker-1", "top1": "ray-worker-2", "hit1": False, "ac@1": 0.0},
    ]
    one, other = findings(pd.DataFrame(rows)), findings(pd.DataFrame(rows[::-1]))
    assert one.top_blamed == other.top_blamed == {"baro": "head = other worker"}
    assert list(one.blame_share) == list(other.blame_share) == ["head", "other worker"]
    assert findings_lines(one) == findings_lines(other)
    assert "the head and another worker alike for 1" in "\n".join(findings_lines(one))
    assert one.upstream_majority is False  # a tie with another worker is not upstream


def test_a_tie_for_rank_1_shares_the_blame_as_ac1_shares_the_hit() -> None:
    """TraceRCA ties the gateway and the head first in every case: each is blamed half a run, not the gateway a
    whole one; a tie that holds the culprit blames the others by their share (AC@1 = 1/3: 1/3 each to two others)."""

    from llmrca.evaluate.metrics import misattribution
    from llmrca.evaluate.results import scored_frame
    from llmrca.report.findings import findings

    comps = ["nginx-gateway", "ray-head", "ray-worker-1", "ray-worker-2", "ray-worker-3", "kuberay-operator"]
    recs = []
    for i, w in enumerate(("ray-worker-1", "ray-worker-2", "ray-worker-3")):
        base = {"case": f"{w}_cpu/{i}", "status": "ok", "fault": "cpu", "root_causes": [w], "components": comps}
        recs.append({**base, "method": "tracerca", "ranking": comps, "scores": [0.06, 0.06, 0.01, 0.01, 0.01, 0.0]})
        order = ["nginx-gateway", "ray-head", w] + [c for c in comps if c not in ("nginx-gateway", "ray-head", w)]
        recs.append({**base, "method": "pdiagnose", "ranking": order, "scores": [1.0, 1.0, 1.0, 0.5, 0.2, 0.1]})
    scored = scored_frame(recs)
    assert scored.loc[scored["method"] == "pdiagnose", "ac@1"].tolist() == pytest.approx([1 / 3] * 3)
    mis = misattribution(scored).set_index(["method", "blamed"])["count"].groupby(level=[0, 1]).sum()
    assert mis[("tracerca", "nginx-gateway")] == pytest.approx(1.5) and mis[("tracerca", "ray-head")] == pytest.approx(1.5)
    assert mis[("pdiagnose", "nginx-gateway")] == pytest.approx(1.0) and mis[("pdiagnose", "ray-head")] == pytest.approx(1.0)
    tgt = {r["case"]: r["root_causes"][0] for r in recs}
    f = findings(scored.assign(target=scored["case"].map(tgt)))
    assert f.top_blamed == {"tracerca": "gateway = head", "pdiagnose": "gateway = head"}
    assert f.blame_share == {"gateway": 0.5, "head": 0.5}


def test_runs_scored_on_the_random_fallback_blame_no_one() -> None:
    """--as-paper scores a failed run on the seeded random ranking: that ranking counts in AC@k (the paper's rule)
    but is not the method's answer, so it is no blame; the finding says how many runs it left out."""
    rows = [
        {**_row("baro", "cpu", "nginx-gateway"), "fallback": False},
        {**_row("pc-pagerank", "cpu", "ray-head"), "fallback": True},
        {**_row("pc-pagerank", "memory", "kuberay-operator"), "fallback": True},
    ]
    f = findings(pd.DataFrame(rows))
    assert f.blame_share == {"gateway": 1.0} and f.top_blamed == {"baro": "gateway"} and f.fallback_runs == 2
    assert "(2 failed run(s) scored on the random ranking are not counted" in "\n".join(findings_lines(f))
    only = findings(pd.DataFrame(rows[1:]))
    assert only.blame_share == {} and only.upstream_majority is None
    assert "every baseline run failed and was scored on the random ranking" in "\n".join(findings_lines(only))


def test_figure5_methods_are_compared_with_what_the_paper_says_each_blames() -> None:
    """Fig. 5's six methods get their own line: what each blames most, beside the paper's answer (§5.3)."""
    rows = [
        _row("baro", "cpu", "nginx-gateway"), _row("baro", "memory", "nginx-gateway"), _row("baro", "gpu", "ray-head"),
        _row("pdiagnose", "cpu", "ray-head"),  # the paper's PDiagnose blames the head too
        _row("nsigma", "cpu", "ray-worker-2"), _row("nsigma", "gpu", "ray-worker-3"),  # another worker, not the gateway
        _row("circa", "cpu", "ray-worker-2"),  # not a Fig. 5 method: not on that line
    ]  # fmt: skip
    f = findings(pd.DataFrame(rows))
    assert f.figure5 == {"baro": "gateway", "nsigma": "other worker", "pdiagnose": "head"}
    assert f.figure5_agree == 2
    assert f.to_dict()["figure5_agree"] == 2
    line = next(x for x in findings_lines(f) if "Fig. 5" in x)
    assert "(2 of 3 blame what they blame in the paper)" in line
    assert "NSigma another worker (paper: the gateway)" in line and "BARO the gateway (as in the paper)," in line
    assert "CIRCA" not in line
    # without any of the six, no such line
    assert not any("Fig. 5" in x for x in findings_lines(findings(pd.DataFrame(rows[-1:]))))


def test_a_gpu_tie_is_said_as_a_tie_and_random_is_said_to_be_left_out() -> None:
    rows = [_row(m, "gpu", "nginx-gateway") for m in ("baro", "nsigma", "circa")] + [_row("random", "gpu", "ray-worker-1")]
    text = "\n".join(findings_lines(findings(pd.DataFrame(rows))))
    assert "the best baseline GPU AC@1 is 0.00 (every one of the 3 baselines;" in text
    assert "of 3 baselines (Random left out: its answers are data-blind)" in text
    two = [_row("baro", "gpu", "ray-worker-1"), _row("nsigma", "gpu", "ray-worker-1"), _row("circa", "gpu", "ray-head")]
    assert "is 1.00 (2 baselines tie, e.g. BARO;" in "\n".join(findings_lines(findings(pd.DataFrame(two))))


def test_a_dataset_that_is_not_the_paper_s_stack_gets_no_upstream_verdict() -> None:
    """Online Boutique services blamed when wrong were reported as 'another worker' (paper: the gateway): there
    are no workers, and no gateway by that name.  The finding is n/a, and the blamed services are named."""
    rows = [{**_row("baro", "cpu", top, "checkoutservice"), "target": "checkoutservice"}
            for top in ("frontend", "frontend", "cartservice", "checkoutservice")]
    rows += [{**_row("tracerca", "cpu", "frontend", "checkoutservice"), "target": "checkoutservice"}]
    f = findings(pd.DataFrame(rows))
    assert f.blame_share == {} and f.top_blamed == {} and f.upstream_majority is None
    assert f.foreign_blame == {"frontend": 0.75, "cartservice": 0.25}
    text = "\n".join(findings_lines(f))
    assert "(n/a): the dataset's components are not the paper's stack" in text and "frontend 75%, cartservice 25%" in text
    assert "for another worker" not in text and "answers name frontend" in text
