"""CausalAI's reference mode (``reference_mode="rcaeval"``): RootCauseDetector as the paper's artifact ran it.

The expected numbers of the partial-correlation and PCSingle examples are computed here from the
formulas of Salesforce CausalAI's source (``partial_correlation.py``, ``pc.py``), not by the code under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from llmrca.methods import registry
from llmrca.methods.causal import causalai_reference as ref
from llmrca.model import Case
from llmrca.reproduce import reference_modes
from llmrca.synthetic import make_case

T0, STEP, N, K = 1.7e9, 5.0, 120, 80  # unix seconds, sampling step, rows, injection row


def _case(seed: int, *, shifted: tuple[str, ...] = ("aa_cpu",), drift: bool = False) -> Case:
    """Four components of noise; ``shifted`` metrics step up by 6 sd at the injection; ``drift`` adds a linear drift."""
    rng = np.random.default_rng(seed)
    d: dict[str, np.ndarray] = {"time": T0 + np.arange(N) * STEP}
    for col, (mu, sd) in {"aa_cpu": (10, 1), "bb_cpu": (5, 1), "cc_mem": (100, 3), "dd_latency-90": (1, 0.1)}.items():
        x = rng.normal(mu, sd, N)
        if col in shifted:
            x[K:] += 6 * sd
        d[col] = x
    if drift:
        d["ee_mem"] = 50 + 0.2 * np.arange(N) + rng.normal(0, 1, N)  # no change at the injection
    return Case(metrics=pd.DataFrame(d), inject_time=T0 + K * STEP)


def _reference(**kw: object):
    return registry.get_method("causalai", reference_mode="rcaeval", **kw)


def test_reference_mode_is_what_reproduce_as_paper_sets() -> None:
    assert reference_modes(["causalai"]) == {"causalai": "rcaeval"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_shifted_metric_is_the_only_root_cause(seed: int) -> None:
    r = _reference().rank(_case(seed))
    assert r.components == ["aa"], r.explanation
    assert r.metrics is not None and [m for m, _ in r.metrics] == ["aa_cpu"]
    ex = r.explanation
    assert ex["reference_mode"] == "rcaeval" and ex["root_causes"] == ["aa_cpu"]
    assert ex["time_link_p"]["aa_cpu"] < 1e-10
    assert ex["skeleton_edges"] >= 1 and "seed=0" in ex["order"]
    assert ex["rows"] == {"normal": K, "anomalous": N - K}
    assert "named_nothing_because" not in ex


def test_order_of_several_root_causes_is_seeded() -> None:
    """Three metrics that move with time in different shapes (a shared step would separate them)."""
    case = _case(4)
    m = case.metrics.copy()
    m.loc[K:, "bb_cpu"] += np.linspace(0, 12, N - K)  # a ramp from the injection
    m.loc[: 39, "cc_mem"] -= 18  # a step a third of the way in
    case = Case(metrics=m, inject_time=case.inject_time)
    first = _reference(seed=0).rank(case)
    assert sorted(first.components) == ["aa", "bb", "cc"], first.explanation  # dd (noise) is not ranked
    assert _reference(seed=0).rank(case).components == first.components
    orders = {tuple(_reference(seed=s).rank(case).components) for s in range(8)}
    assert len(orders) > 1  # the seed, not the column order, decides the order
    assert all(sorted(o) == ["aa", "bb", "cc"] for o in orders)


def test_linear_drift_is_a_root_cause_under_the_time_trend() -> None:
    """The artifact's time metric is the timestamp: a metric drifting over the whole case is linked to it."""
    case = _case(0, drift=True)
    r = _reference().rank(case)
    assert "ee" in r.components, r.explanation
    assert r.explanation["time_link_p"]["ee_mem"] < 1e-10
    default = registry.get_method("causalai").rank(case)
    assert default.components[0] == "aa" and default.components[0] != "ee", default.components


def test_no_root_cause_is_an_empty_ranking_with_the_reason() -> None:
    r = _reference().rank(_case(0, shifted=()))
    assert r.components == [] and r.scores == []
    ex = r.explanation
    assert ex["root_causes"] == [] and ex["time_link_p"] == {}
    assert "no metric stayed linked to the time variable" in ex["named_nothing_because"]
    assert "p <= 0.001" in ex["named_nothing_because"]


def test_harness_window_fill_and_constant_columns() -> None:
    """main.py: gaps forward-filled then 0, 600 rows per side; the wrapper drops constant columns, keeps time."""
    n = 1500
    t = T0 + np.arange(n) * 2.0
    inject = T0 + 900 * 2.0
    x = np.arange(n, dtype=float)
    x[[0, 1]] = np.nan  # a leading gap: nothing to carry forward -> 0
    x[10] = np.inf  # read as a gap: carries row 9 forward
    df = pd.DataFrame({"time": t, "aa_cpu": x, "aa_latency-50": x, "bb_mem": np.full(n, 3.0)})
    frame = ref.harness_frame(Case(metrics=df, inject_time=inject))
    assert list(frame.columns) == ["time", "aa_cpu"]  # latency-50 dropped by the harness, bb_mem constant
    assert len(frame) == 2 * ref.HARNESS_ROWS
    assert frame["time"].iloc[0] == T0 + 300 * 2.0 and frame["time"].iloc[-1] == T0 + 1499 * 2.0
    short = ref.harness_frame(Case(metrics=df.iloc[:20], inject_time=T0 + 15 * 2.0))
    assert short["aa_cpu"].tolist()[:3] == [0.0, 0.0, 2.0] and short["aa_cpu"].iloc[10] == 9.0
    inp = ref.reference_input(Case(metrics=df, inject_time=inject))
    assert inp.names == ["aa_cpu", "time"] and inp.dropped == ["aa_latency-50", "bb_mem"]
    assert (inp.n_normal, inp.n_anomalous) == (600, 600)


def test_standardise_is_causalai_standardize_transform() -> None:
    x = np.array([[1.0, 10.0], [2.0, 10.0], [4.0, 13.0]])
    # by hand: column 0 mean 7/3, population variance (1+4+16)/3 - (7/3)^2 = 14/9
    want0 = (x[:, 0] - 7 / 3) / math.sqrt(14 / 9 + 1e-7)
    assert np.allclose(ref.standardise(x)[:, 0], want0, rtol=0, atol=1e-12)
    # the second column: mean 11, variance 2
    assert np.allclose(ref.standardise(x)[:, 1], (x[:, 1] - 11) / math.sqrt(2 + 1e-7), rtol=0, atol=1e-12)


def test_partial_correlation_matches_hand_computation() -> None:
    """PartialCorrelation.run_test: OLS residuals on z *without intercept*, Pearson r, Student-t p-value."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 6.0, 5.0])
    y = np.array([2.0, 1.0, 4.0, 3.0, 5.0, 7.0])
    z = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 2.0])
    data = np.column_stack([x, y, z])
    # no intercept: beta = (z.x)/(z.z)
    zz = float(z @ z)
    rx = x - z * float(z @ x) / zz
    ry = y - z * float(z @ y) / zz
    rxc, ryc = rx - rx.mean(), ry - ry.mean()
    r = float(rxc @ ryc / math.sqrt(float(rxc @ rxc) * float(ryc @ ryc)))
    dof = 6 - 2 - 1
    p = 2 * stats.t.sf(abs(r) * math.sqrt(dof / (1 - r * r)), dof)
    got_r, got_p = ref.reference_partial_correlation(data, 0, 1, (2,))
    assert got_r == pytest.approx(r, abs=1e-12) and got_p == pytest.approx(p, rel=1e-9)
    # unconditional: Pearson r with n - 2 degrees of freedom
    xc, yc = x - x.mean(), y - y.mean()
    r0 = float(xc @ yc / math.sqrt(float(xc @ xc) * float(yc @ yc)))
    p0 = 2 * stats.t.sf(abs(r0) * math.sqrt(4 / (1 - r0 * r0)), 4)
    assert ref.reference_partial_correlation(data, 0, 1, ()) == pytest.approx((r0, p0), rel=1e-9)
    # fewer than one degree of freedom: NaN; |r| = 1: 0
    assert math.isnan(float(ref.partial_correlation_pvalue(0.3, 4, 2)))
    assert float(ref.partial_correlation_pvalue(-1.0, 50, 1)) == 0.0


def test_batched_tests_equal_the_reference_computation() -> None:
    """The Gram-matrix shortcut gives the reference's lstsq + pearsonr numbers on standardised data."""
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(90, 6))
    raw[:, 1] += 0.8 * raw[:, 0]
    raw[:, 5] = raw[:, 3] + raw[:, 4]  # an exact linear combination: the ill-conditioned fallback path
    data = ref.standardise(raw)
    from llmrca.methods.graph.discovery import Budget

    tests = ref._Tests(data, Budget(None))
    zs = np.array(list(itertools.combinations([2, 3, 4, 5], 2)))
    r, p = tests.run(0, 1, zs)
    for i, z in enumerate(zs):
        xv, yv, zm = data[:, 0], data[:, 1], data[:, list(z)]
        rx = xv - zm @ np.linalg.lstsq(zm, xv, rcond=None)[0]
        ry = yv - zm @ np.linalg.lstsq(zm, yv, rcond=None)[0]
        want = stats.pearsonr(rx, ry)[0]
        assert r[i] == pytest.approx(want, abs=1e-9)
        assert p[i] == pytest.approx(2 * stats.t.sf(abs(want) * math.sqrt(86 / (1 - want**2)), 86), rel=1e-6)


def test_pc_single_removes_after_each_size_from_candidates_and_pool() -> None:
    """Target T with two near-copies A, B of its cause: at size 1 each is separated by the other.

    pc.py tests every candidate of a size against the same pool and removes the separated ones after
    the size, so *both* go (a sequential removal would keep B: its pool would be empty at size 1).
    """
    rng = np.random.default_rng(0)
    s = rng.normal(size=200)
    t = s + rng.normal(size=200)
    a = s + 0.01 * rng.normal(size=200)
    b = s + 0.01 * rng.normal(size=200)
    data = ref.standardise(np.column_stack([t, a, b]))

    def by_hand(x: int, y: int, z: int | None) -> float:
        xv, yv = data[:, x], data[:, y]
        if z is not None:
            zv = data[:, z]
            xv = xv - zv * (zv @ xv) / (zv @ zv)
            yv = yv - zv * (zv @ yv) / (zv @ zv)
        xv, yv = xv - xv.mean(), yv - yv.mean()
        r = float(xv @ yv / math.sqrt((xv @ xv) * (yv @ yv)))
        dof = 200 - 2 - (z is not None)
        return float(2 * stats.t.sf(abs(r) * math.sqrt(dof / (1 - r * r)), dof))

    assert by_hand(0, 1, None) < 1e-3 and by_hand(0, 2, None) < 1e-3  # size 0: both dependent, both kept
    assert by_hand(0, 1, 2) > 1e-3 and by_hand(0, 2, 1) > 1e-3  # size 1: each separated by the other
    from llmrca.methods.graph.discovery import Budget

    tests = ref._Tests(data, Budget(None))
    survivors, _ = ref.pc_single(tests, 0, [1, 2], [1, 2], 1e-3, 4)
    assert survivors == []
    # with B separated at size 0 already (threshold above its p-value), A is tested at size 1 with an
    # empty pool (min(4, |pool| - 1) = 0 sizes after the removal): it survives
    assert ref.pc_single(tests, 0, [1, 2], [1, 2], 1e-3, 0)[0] == [1, 2]


def test_pc_single_equals_a_literal_port_of_run_greedy() -> None:
    """On a small random system the batched search keeps the candidates pc.py's loop keeps."""
    rng = np.random.default_rng(7)
    n = 60
    x0 = rng.normal(size=n)
    x1 = x0 + rng.normal(size=n)
    x2 = x1 + rng.normal(size=n)
    x3 = rng.normal(size=n)
    x4 = x2 - x3 + rng.normal(size=n)
    x5 = np.linspace(0, 1, n)
    data = ref.standardise(np.column_stack([x0, x1, x2, x3, x4, x5]))
    from llmrca.methods.graph.discovery import Budget

    tests = ref._Tests(data, Budget(None))
    for thres in (0.05, 1e-3):
        for target in range(6):
            others = [v for v in range(6) if v != target]
            parents, pool = list(others), list(others)
            for size in range(min(4, len(pool) - 1) + 1):
                if len(pool) - 1 < size:
                    break
                gone = []
                for y in parents:
                    pmax = None
                    for z in itertools.combinations([v for v in pool if v != y], size):
                        p = ref.reference_partial_correlation(data, target, y, z)[1]
                        if pmax is None or pmax < p:
                            pmax = p
                        if pmax > thres:
                            break
                    if pmax > thres:
                        gone.append(y)
                for y in gone:
                    parents.remove(y)
                    pool.remove(y)
            assert ref.pc_single(tests, target, others, others, thres, 4)[0] == parents, (thres, target)


def test_on_the_simulated_case_the_injected_component_is_found() -> None:
    case = make_case(root="ray-worker-3", fault="memory", seed=12, with_logs=False, with_traces=False).without_truth()
    r = _reference().rank(case)
    assert r.components == ["ray-worker-3"], r.explanation
    assert r.explanation["root_causes"] == ["ray-worker-3_mem"]


def test_unknown_reference_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="reference_mode"):
        registry.get_method("causalai", reference_mode="pyrca")


def test_reference_options_round_trip() -> None:
    cls = registry.method_class("causalai")
    cfg = cls.config_cls().replace(reference_mode="rcaeval", seed=3)
    assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg
    assert cls.config_cls().reference_mode is None and cls.config_cls().seed == 0


def test_reference_mode_refuses_alpha_which_it_ignores() -> None:
    from llmrca.config import ConfigError
    from llmrca.methods.registry import get_method

    with pytest.raises(ConfigError, match=r"ignores alpha=0\.2"):
        get_method("causalai", {"reference_mode": "rcaeval", "alpha": 0.2})
    get_method("causalai", {"alpha": 0.2})  # the default mode reads it
    get_method("causalai", {"reference_mode": "rcaeval", "pvalue_thres": 0.01, "max_condition_set_size": 2})
