"""CIRCA, RCD, CausalAI and CausalRCA on synthetic structural systems with a known root cause."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from llmrca.errors import MissingDependency
from llmrca.methods import registry
from llmrca.methods.causal._data import NotEnoughData, call_graph_metric_edges
from llmrca.methods.graph.preprocess import sli_column
from llmrca.model import Case, Topology
from llmrca.synthetic import make_case

HAS_TORCH = importlib.util.find_spec("torch") is not None
TORCH_HINT = 'pip install "llmrca[torch]"'

# documented top-k on the synthetic system (docs/methods-causal.md)
TOP_K = {"circa": 1, "rcd": 1, "causalai": 1, "causalrca": 3}
SCENARIOS = [("ray-worker-1", "cpu", 11), ("ray-worker-3", "memory", 12), ("ray-head", "network", 13)]


def _case(root: str, fault: str, seed: int) -> Case:
    return make_case(root=root, fault=fault, seed=seed, with_logs=False, with_traces=False).without_truth()


@pytest.mark.parametrize("name", ["circa", "rcd", "causalai"])
@pytest.mark.parametrize(("root", "fault", "seed"), SCENARIOS)
def test_finds_injected_root_cause(name: str, root: str, fault: str, seed: int) -> None:
    ranking = registry.get_method(name).rank(_case(root, fault, seed))
    assert root in ranking.top(TOP_K[name]), f"{name}: {root} not in top-{TOP_K[name]} of {ranking.components}"
    assert ranking.metrics is not None and ranking.metrics[0][0].startswith(ranking.components[0] + "_")


@pytest.mark.skipif(not HAS_TORCH, reason=f"causalrca needs torch: {TORCH_HINT}")
def test_causalrca_finds_root_cause_and_is_seeded() -> None:
    case = _case("ray-worker-1", "cpu", 3)
    r1 = registry.get_method("causalrca").rank(case)
    assert "ray-worker-1" in r1.top(TOP_K["causalrca"]), r1.components
    r2 = registry.get_method("causalrca").rank(case)
    assert r1.components == r2.components and r1.metrics == r2.metrics


def test_causalrca_unavailable_without_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    ok, why = registry.available("causalrca")
    assert not ok and TORCH_HINT in why
    with pytest.raises(MissingDependency, match=r"llmrca\[torch\]"):
        registry.method_class("causalrca")


def test_causalrca_raises_missing_dependency_at_rank_time(monkeypatch: pytest.MonkeyPatch) -> None:
    if not HAS_TORCH:
        pytest.skip(f"causalrca needs torch: {TORCH_HINT}")
    from llmrca.methods.causal.causalrca import CausalRca

    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # import torch -> ImportError
    with pytest.raises(MissingDependency, match=r"llmrca\[torch\]"):
        CausalRca().rank(_case("ray-worker-1", "cpu", 3))


@pytest.mark.parametrize("name", ["circa", "rcd", "causalai"])
def test_deterministic(name: str) -> None:
    case = _case("ray-worker-2", "cpu", 21)
    a = registry.get_method(name).rank(case)
    b = registry.get_method(name).rank(case)
    assert a.components == b.components and a.metrics == b.metrics


@pytest.mark.parametrize(
    ("name", "changes"),
    [
        ("circa", {"graph": "pc", "tau_max": 1, "descendant_adjustment": False, "reference_mode": "rcaeval"}),
        ("rcd", {"bins": 4, "gamma": 3, "seed": 5, "ci_test": "gsq"}),
        ("causalai", {"pvalue_thres": 0.01, "max_condition_set_size": 2}),
        ("causalrca", {"epochs": 5, "paper_budget": True, "normalize": "max"}),
    ],
)
def test_config_round_trip_non_default(name: str, changes: dict) -> None:
    if not registry.available(name)[0]:
        pytest.skip(registry.available(name)[1])
    cls = registry.method_class(name)
    cfg = cls.config_cls().replace(**changes)
    assert cls.config_cls.from_yaml(cfg.to_yaml()) == cfg
    assert cls(cfg.to_dict()).describe()["config"] == cfg.to_dict()


def test_methods_work_without_call_graph() -> None:
    case = _case("ray-worker-2", "memory", 5)
    bare = Case(metrics=case.metrics, inject_time=case.inject_time)
    for name in ("circa", "rcd", "causalai"):
        r = registry.get_method(name).rank(bare)
        assert r.top(1) == ["ray-worker-2"], (name, r.components)
    assert registry.get_method("circa").rank(bare).explanation["graph"] == "pc"
    with pytest.raises(ValueError, match="no call graph"):
        registry.get_method("circa", graph="call").rank(bare)


def test_circa_keeps_metric_names_with_underscores() -> None:
    """The component prefix rule: ``<component>_ctn_cpu`` is component + metric ``ctn_cpu``, with data."""
    case = _case("ray-worker-3", "cpu", 8)
    renamed = case.metrics.rename(columns=lambda c: c if c == "time" else c.replace("_", "_ctn_", 1))
    c2 = Case(metrics=renamed, inject_time=case.inject_time, topology=case.topology)
    for ref in (None, "rcaeval"):
        r = registry.get_method("circa", reference_mode=ref).rank(c2)
        assert r.metrics[0][0] == "ray-worker-3_ctn_cpu", r.metrics[:3]
        assert np.isfinite(r.metrics[0][1])


def test_circa_descendant_adjustment_prefers_the_cause_over_its_effect() -> None:
    """Chain a -> b (b's latency follows a's): with the shift injected in a, a ranks above b."""
    rng = np.random.default_rng(0)
    n, k = 80, 60
    a_cpu = rng.normal(0, 1, n)
    a_cpu[k:] += 8
    b_lat = 0.9 * a_cpu + rng.normal(0, 0.3, n)
    c_cpu = rng.normal(0, 1, n)
    df = pd.DataFrame({"time": np.arange(n) * 5.0, "aa_cpu": a_cpu, "bb_latency-90": b_lat, "cc_cpu": c_cpu})
    topo = Topology(nodes=("bb", "aa", "cc"), edges=(("bb", "aa"),), entry="bb")
    case = Case(metrics=df, inject_time=float(k * 5), topology=topo)
    assert sli_column(case, list(df.columns[1:])) == "bb_latency-90"
    edges = call_graph_metric_edges(case, list(df.columns[1:]))
    assert ("aa_cpu", "bb_latency-90") not in edges  # resource -> latency only within a component
    r = registry.get_method("circa").rank(case)
    assert r.components[0] == "aa", r.metrics


def test_too_short_windows_raise_with_reason() -> None:
    metrics = _case("ray-worker-1", "cpu", 1).metrics.iloc[:61]  # normal window only: nothing after injection
    late = float(metrics["time"].iloc[-1]) + 5.0
    for name in ("circa", "rcd", "causalai"):
        with pytest.raises(NotEnoughData, match="0 anomalous samples"):
            registry.get_method(name).rank(Case(metrics=metrics, inject_time=late))


def test_a_lag_or_bin_count_beyond_the_case_is_refused_naming_the_limit() -> None:
    """circa tau_max and rcd bins larger than the window used to fail inside numpy / scikit-learn ("negative
    dimensions are not allowed", "n_samples=72 should be >= n_clusters"); MicroCause named only tau_max when
    max_conds made the series too short."""
    case = _case("ray-worker-1", "cpu", 11)
    n = len(case.metrics)
    with pytest.raises(ValueError, match=r"circa: tau_max=100000 leaves fewer than 2 of the \d+ normal samples; give tau_max at most \d+"):
        registry.get_method("circa", {"tau_max": 100000}).rank(case)
    with pytest.raises(ValueError, match=r"rcd: bins=100000 is more than the \d+ samples .*give at most \d+"):
        registry.get_method("rcd", {"bins": 100000}).rank(case)
    with pytest.raises(ValueError, match=r"with tau_max=2 and max_conds=100000; need more than 100009"):
        registry.get_method("microcause", {"max_conds": 100000}).rank(case)
    assert n > 10  # the case itself is long enough for the defaults
    assert registry.get_method("circa", {"tau_max": 2}).rank(case).components
