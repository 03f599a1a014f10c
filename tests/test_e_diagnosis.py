"""ε-Diagnosis: known root cause, the reversed-comparison guard, determinism, reference mode."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import llmrca.methods.statistical.e_diagnosis as ed
from llmrca.methods.registry import get_method
from llmrca.model import Case
from llmrca.synthetic import make_case


@pytest.mark.parametrize("fault", ["cpu", "memory", "network"])
def test_root_cause_ranked_first(fault: str) -> None:
    case = make_case(root="ray-worker-3", fault=fault, seed=11).without_truth()
    r = get_method("e-diagnosis").rank(case)
    assert r.top(1) == ["ray-worker-3"]


def _two_metric_case(seed: int = 2) -> Case:
    """'changed' shifts by 5 sigma at injection, 'steady' does not."""
    rng = np.random.default_rng(seed)
    n_norm, n_anom = 60, 12
    t = 1000.0 + 5.0 * np.arange(n_norm + n_anom)
    changed = rng.normal(0, 1, t.size)
    changed[n_norm:] += 5.0
    steady = rng.normal(0, 1, t.size)
    df = pd.DataFrame({"time": t, "steady_cpu": steady, "changed_cpu": changed})
    return Case(metrics=df, inject_time=float(t[n_norm]))


def assert_changed_ranks_first(method, case: Case) -> None:
    """The guard: a metric that clearly changes is a candidate and outranks one that does not."""
    r = method.rank(case)
    assert r.metrics is not None
    names = [m for m, _ in r.metrics]
    assert names.index("changed_cpu") < names.index("steady_cpu"), names
    assert r.top(1) == ["changed"]
    assert "changed_cpu" in r.explanation["candidates"]
    assert "steady_cpu" not in r.explanation["candidates"]


def test_changed_metric_outranks_steady_one() -> None:
    case = _two_metric_case()
    m = get_method("e-diagnosis")
    assert_changed_ranks_first(m, case)
    r = m.rank(case)
    assert r.explanation["p_value"]["changed_cpu"] < 0.01
    assert r.explanation["statistic"]["changed_cpu"] > 10 * r.explanation["statistic"]["steady_cpu"]


def test_guard_catches_a_reversed_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyRCA shipped a reversed comparison for years (PR #68): the guard must fail on one."""
    monkeypatch.setattr(ed, "_is_significant", lambda p, alpha: p >= alpha)
    with pytest.raises(AssertionError):
        assert_changed_ranks_first(get_method("e-diagnosis"), _two_metric_case())


def test_energy_statistic_matches_definition() -> None:
    x = np.array([0.0, 1.0, 3.0])
    y = np.array([2.0, 7.0])
    pooled = np.concatenate([x, y])
    lab = np.array([[True, True, True, False, False]])
    exy = np.mean(np.abs(x[:, None] - y[None, :]))
    exx = np.mean(np.abs(x[:, None] - x[None, :]))
    eyy = np.mean(np.abs(y[:, None] - y[None, :]))
    want = (3 * 2 / 5) * (2 * exy - exx - eyy)
    assert ed.energy_statistic(pooled, lab)[0] == pytest.approx(want)


def test_deterministic_and_seed_matters_only_for_p_values() -> None:
    case = make_case(seed=4).without_truth()
    a = get_method("e-diagnosis").rank(case)
    b = get_method("e-diagnosis").rank(case)
    assert a.to_dict() == b.to_dict()
    c = get_method("e-diagnosis", seed=1).rank(case)
    assert c.explanation["statistic"] == a.explanation["statistic"]


def test_pyrca_reference_mode_runs_and_reports_its_selection() -> None:
    case = make_case(seed=2).without_truth()
    r = get_method("e-diagnosis", reference_mode="pyrca").rank(case)
    assert sorted(r.components) == sorted(case.components)
    assert r.explanation["mode"] == "pyrca"
    sel = set(r.explanation["selected"])
    thr = r.explanation["threshold"]
    assert sel == {c for c, v in r.explanation["squared_correlation"].items() if v > thr[c]}
    with pytest.raises(ValueError, match="reference_mode"):
        get_method("e-diagnosis", reference_mode="nope").rank(case)
