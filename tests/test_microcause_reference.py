"""MicroCause's reference mode: the paper's artifact's PCMCI, transition matrix, walk and harness SLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrca.errors import MethodUnavailable
from llmrca.evaluate.task import harness_sli
from llmrca.methods.graph import microcause_reference as ref
from llmrca.methods.registry import get_method
from llmrca.model import Case


def _var(seed: int, n: int = 120, k: int = 6) -> np.ndarray:
    """x0(t-1) -> x1(t) -> x2(t+1) (lags 1); x3..x5 independent noise."""
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(n, k))
    x = e.copy()
    for t in range(1, n):
        x[t, 1] = 0.9 * x[t - 1, 0] + 0.5 * e[t, 1]
        x[t, 2] = 0.9 * x[t - 1, 1] + 0.5 * e[t, 2]
    return x


def _resid_corr(a: np.ndarray, b: np.ndarray, z: np.ndarray | None) -> float:
    """Partial correlation by the textbook route: correlation of OLS residuals (with an intercept)."""
    if z is None:
        return float(np.corrcoef(a, b)[0, 1])
    d = np.column_stack([np.ones(len(a)), z])
    ra = a - d @ np.linalg.lstsq(d, a, rcond=None)[0]
    rb = b - d @ np.linalg.lstsq(d, b, rcond=None)[0]
    return float(np.corrcoef(ra, rb)[0, 1])


def test_pcmci_finds_the_lagged_links_and_keeps_false_links_near_alpha() -> None:
    x = _var(1)
    sig = ref.pcmci_significant(x)
    assert sig.shape == (6, 6, ref.TAU_MAX + 1)
    assert sig[0, 1, 1] and sig[1, 2, 1]
    # the indirect x0(t-2) -> x2 is explained away by x1(t-1)
    assert not sig[0, 2, 2]
    # among the independent columns' cross links (no FDR correction), the share found stays near α = 0.05
    noise = [sig[i, j, tau] for i in (3, 4, 5) for j in (3, 4, 5) if i != j for tau in range(ref.TAU_MAX + 1)]
    assert 0.0 <= float(np.mean(noise)) <= 0.15
    # lag 0 of a variable with itself is never tested
    assert not sig[np.arange(6), np.arange(6), 0].any()


def test_pc1_drops_the_indirect_parent_given_the_strongest_one() -> None:
    x = _var(2)
    parents = ref._pc1(x, 2, ref.TAU_MAX, ref.PC_ALPHA, None)
    assert parents[0] == (1, 1)
    assert (0, 2) not in parents


def test_parcorr_matches_the_residual_correlation_and_ignores_constant_conditions() -> None:
    rng = np.random.default_rng(3)
    z = rng.normal(size=(80, 2))
    a = z @ [0.7, -0.4] + rng.normal(size=80)
    b = 0.5 * a + z @ [0.2, 0.9] + rng.normal(size=80)
    r, p = ref._parcorr(b, a[:, None], z)
    assert r[0] == pytest.approx(_resid_corr(a, b, z), abs=1e-10)
    assert 0.0 < p[0] < 1e-3
    # a constant condition is left out: same r and the same degrees of freedom (same p)
    r2, p2 = ref._parcorr(b, a[:, None], np.column_stack([z, np.full(80, 4.0)]))
    assert r2[0] == pytest.approx(r[0], abs=1e-10) and p2[0] == pytest.approx(p[0], rel=1e-9)
    # a constant x: r = 0 and p = 1 (tigramite's rule); too few samples for the conditions: p is NaN
    r3, p3 = ref._parcorr(b, np.full((80, 1), 2.0), z)
    assert (r3[0], p3[0]) == (0.0, 1.0)
    _, p4 = ref._parcorr(b[:4], a[:4, None], z[:4])
    assert np.isnan(p4[0])


def test_transition_matrix_follows_the_artifacts_rules() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(100, 3))
    x[:, 1] += 0.8 * x[:, 0]
    x[:, 2] += 0.6 * x[:, 1]
    # (effect, cause) pairs: 1 is an effect of 0, 2 an effect of 1; the walk starts at 0
    p = ref.transition_matrix(x, {(1, 0), (2, 1)}, start=0)
    pc1 = abs(_resid_corr(x[:, 0], x[:, 1], x[:, [2]]))  # conditions: parents of 0 ({1}) minus 1, and of 1 ({2})
    pc2 = abs(_resid_corr(x[:, 0], x[:, 2], x[:, [1]]))  # conditions: parents of 0 ({1}), of 2 (none)
    assert p[0] == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)  # from the start: only along 1 -> 0, towards the effect (a normalised row)
    # row 1: to 2 with |pcorr(0, 2)|, a self-loop with what |pcorr(0, 1)| exceeds over |pcorr(0, 2)|
    w1 = np.array([0.0, max(pc1 - pc2, 0.0), pc2])
    assert p[1] == pytest.approx(w1 / w1.sum())
    # row 2: back to 1 with 0.2 |pcorr(0, 1)| and a self-loop |pcorr(0, 2)| (no edge into 2)
    w2 = np.array([0.0, 0.2 * pc1, pc2])
    assert p[2] == pytest.approx(w2 / w2.sum())


def test_walk_counts_the_nodes_reached_and_stops_where_a_row_is_empty() -> None:
    chain = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    assert ref.walk_visits(chain, 0, walks=50, steps=10).tolist() == [0.0, 50.0, 50.0]
    fork = np.array([[0.0, 0.5, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    v = ref.walk_visits(fork, 0, walks=2000, steps=5, seed=1)
    assert v[0] == 0 and v[1] + v[2] == 2000 and 900 < v[1] < 1100
    assert np.array_equal(v, ref.walk_visits(fork, 0, walks=2000, steps=5, seed=1))
    with pytest.raises(ValueError, match="NaN"):
        ref.walk_visits(np.array([[0.0, 1.0], [np.nan, np.nan]]), 0, walks=3, steps=3)


def test_harness_sli_is_the_injected_components_latency() -> None:
    cols = ["time", "gw_cpu", "gw_latency-90", "w1_cpu", "w1_latency-90"]
    assert harness_sli(cols, "w1") == "w1_latency-90"
    assert harness_sli([*cols, "w1_lat_90"], "w1") == "w1_lat_90"  # the harness's later rule wins
    assert harness_sli(cols, "w2") is None and harness_sli(cols, None) is None


def _case(seed: int = 5) -> Case:
    x = _var(seed, n=90, k=4)
    x[60:, 3] += 3.0
    names = ["gw_latency-90", "w1_cpu", "w1_latency-90", "w2_cpu"]
    frame = pd.DataFrame(x, columns=names)
    frame.insert(0, "time", 1000.0 + 5.0 * np.arange(90))
    return Case(metrics=frame, inject_time=1300.0)


def test_reference_mode_walks_from_the_harness_sli_and_is_seeded() -> None:
    case = _case()
    case.meta["harness_sli"] = "w1_latency-90"
    m = get_method("microcause", {"reference_mode": "rcaeval"})
    r = m.rank(case)
    assert r.explanation["sli"] == "w1_latency-90" and r.explanation["graph"]["kind"] == "pcmci (reference)"
    assert sorted(r.components) == ["gw", "w1", "w2"]
    assert r.components == m.rank(case).components
    # an explicit SLI (llmrca rank --sli) takes its place
    case.meta["sli"] = "gw_latency-90"
    assert m.rank(case).explanation["sli"] == "gw_latency-90"


def test_reference_mode_without_an_sli_says_why() -> None:
    m = get_method("microcause", {"reference_mode": "rcaeval"})
    with pytest.raises(MethodUnavailable, match="--sli"):  # llmrca rank: nothing passed
        m.rank(_case())
    case = _case()
    case.meta["harness_sli_unavailable"] = "a healthy case has no injected component, hence no SLI from the paper's harness"
    with pytest.raises(MethodUnavailable, match="healthy case"):
        m.rank(case)
    # the injected component has no latency column: the artifact passed 'nginx-proxy' and the reference failed
    case.meta["harness_sli_error"] = "the injected component w2 has no latency column"
    with pytest.raises(ValueError, match="w2 has no latency column"):
        m.rank(case)
    case = _case()
    case.meta["harness_sli"] = "w9_latency-90"
    with pytest.raises(ValueError, match="not a column"):
        m.rank(case)
    case = _case()
    case.metrics["w1_latency-90"] = 0.25
    case.meta["harness_sli"] = "w1_latency-90"
    with pytest.raises(ValueError, match="constant"):
        m.rank(case)


def test_reference_mode_refuses_the_options_it_ignores() -> None:
    from llmrca.config import ConfigError

    with pytest.raises(ConfigError, match=r"ignores \['tau_max', 'walk_steps'\]"):
        get_method("microcause", {"reference_mode": "rcaeval", "tau_max": 5, "walk_steps": 10})
    # the ones it reads are fine, and the explanation records what it ran with
    case = _case()
    case.meta["harness_sli"] = "w1_latency-90"
    r = get_method("microcause", {"reference_mode": "rcaeval", "seed": 3, "time_budget_s": 60}).rank(case)
    assert r.explanation["reference_settings"] == {"tau_max": 10, "pc_alpha": 0.1, "alpha_level": 0.05, "rho": 0.2, "walks": 1000, "steps": 1000}


def test_the_walk_never_enters_its_start_node() -> None:
    """No transition leads into the start node, so its column scores lowest: with the harness's SLI, the injected
    component's own latency ranks last among the columns (why the reference scores 0.00, as the paper's Table 1)."""
    x = _var(7, n=90, k=5)
    cols = [f"c{i}_cpu" for i in range(5)]
    sig = ref.pcmci_significant(x)
    edges = {(c, p) for c in range(5) for p in range(5) if sig[p, c, :].any()}
    p = ref.transition_matrix(x, edges, start=2)
    assert np.all(p[:, 2] == 0)
    scores, _ = ref.rank_metrics(x, cols, "c2_cpu")
    assert dict(scores)["c2_cpu"] == min(s for _, s in scores)


def test_reports_say_which_sli_the_reference_walked_from() -> None:
    from llmrca.evaluate.outputs import harness_sli_sentence

    recs = [{"method": "microcause", "harness_sli": "w1_latency-90"}, {"method": "nsigma"}]
    assert harness_sli_sentence(recs).startswith("microcause (reference mode) walked from the SLI the paper's harness chose")
    assert harness_sli_sentence([{"method": "nsigma"}]) == ""
    # a user's --sli instead is a non-default option: said under Table 1 and warned about by fidelity
    from llmrca.evaluate.outputs import non_default_options, non_default_sentence

    recs = [{"method": "microcause", "config": {"reference_mode": "rcaeval"}, "sli_given": "gw_latency-90",
             "sli_default": "the paper harness's SLI, the injected component's latency"}]
    assert harness_sli_sentence(recs) == ""
    nd = non_default_options(recs, ignore=frozenset({"reference_mode"}))
    assert nd == {"microcause": {"sli": ("gw_latency-90", "the paper harness's SLI, the injected component's latency")}}
    assert "microcause sli='gw_latency-90' (default \"the paper harness's SLI" in non_default_sentence(nd)


def _task_for(case_dir, sli=None):  # type: ignore[no-untyped-def]
    from llmrca.evaluate.task import Task

    return Task(method="microcause", case_id=case_dir.parent.name + "/" + case_dir.name, case_dir=str(case_dir),
                config={"reference_mode": "rcaeval"}, config_hash="x", sli=sli)


@pytest.mark.slow
def test_the_evaluator_hands_the_harness_sli_to_the_reference_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On a real simulated case: the reference gets the target's latency; --sli replaces it (recorded); a target
    without a latency column fails as the reference does; a healthy case is unavailable."""
    import shutil

    from llmrca.campaign import run_campaign
    from llmrca.evaluate.task import execute

    run_campaign(profile="quick", seed=23, out=tmp_path / "ds", progress=False, faults=["cpu"], healthy=1)
    faulty = next(p.parent for p in sorted((tmp_path / "ds").glob("*_cpu/*/case.json")))
    rec = execute(_task_for(faulty))
    target = rec["target"]
    assert rec["status"] == "ok" and rec["harness_sli"] == f"{target}_latency-90" == rec["explanation"]["sli"]
    rec = execute(_task_for(faulty, sli="nginx-gateway_latency-90"))
    assert rec["status"] == "ok" and rec["sli_given"] == "nginx-gateway_latency-90" and "harness_sli" not in rec
    assert rec["sli_default"].startswith("the paper harness's SLI")
    # the default mode gets neither
    from llmrca.evaluate.task import Task

    plain = execute(Task(method="microcause", case_id="c", case_dir=str(faulty), config={}, config_hash="y"))
    assert "harness_sli" not in plain and "sli_given" not in plain
    # the injected component without a latency column: a failed run, as the reference
    cut = tmp_path / "cut" / faulty.parent.name / faulty.name
    shutil.copytree(faulty, cut)
    frame = pd.read_csv(cut / "data.csv")
    frame.drop(columns=[f"{target}_latency-90"]).to_csv(cut / "data.csv", index=False)
    rec = execute(_task_for(cut))
    assert rec["status"] == "failed" and f"{target} has no latency column" in rec["error"]
    healthy = next(p.parent for p in sorted((tmp_path / "ds").glob("healthy*/*/case.json")))
    rec = execute(_task_for(healthy))
    assert rec["status"] == "unavailable" and "healthy case" in rec["error"]


def test_evaluate_refuses_an_sli_the_methods_metric_set_lacks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`--sli` is checked against the set the SLI-reading methods read (basic here), not against any set of the case."""
    from llmrca.campaign import run_campaign
    from llmrca.evaluate.runner import EvaluationError, run_evaluation

    run_campaign(profile="quick", seed=29, out=tmp_path / "ds", progress=False, faults=["cpu"], cases_per_fault=1)
    only_extended = "ray-worker-1_latency-50"  # the basic set keeps the p90 latency only
    with pytest.raises(EvaluationError, match=r"not a column of the basic metric set .* which microcause read .*ray-worker-1_latency-90"):
        run_evaluation(tmp_path / "ds", ["microcause", "nsigma"], tmp_path / "ev", sli=only_extended, progress=False)
    # no method here reads the SLI from the basic set: any column of the case is accepted
    run_evaluation(tmp_path / "ds", ["nsigma"], tmp_path / "ev2", sli=only_extended, progress=False, jobs=1)
    from llmrca.evaluate.results import read_results

    assert [r["status"] for r in read_results(tmp_path / "ev2" / "results.jsonl")] == ["ok"]
