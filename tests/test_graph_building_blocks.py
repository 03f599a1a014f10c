"""Preprocessing, discovery and heads of the graph methods, each against a known answer."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from llmrca.methods.graph import discovery as disc
from llmrca.methods.graph import heads
from llmrca.methods.graph.preprocess import PreprocessError, anomaly_scores, cap_columns, prepare, sli_column
from llmrca.methods.graph.sem import sem_case
from llmrca.model import Case, Topology
from llmrca.synthetic import make_case

# -- preprocess ---------------------------------------------------------------------------------


def test_prepare_window_drops_and_fills() -> None:
    case = make_case(seed=1)
    df = case.metrics.copy()
    df["ray-head_gpu"] = 3.0  # constant
    df["ray-head_net-err"] = np.nan  # all NaN
    df.loc[5:7, "ray-head_cpu"] = np.nan  # a gap
    df["ray-head_net-copy"] = 2 * df["ray-head_net-rx"] + 1  # an exact copy
    case.metrics = df
    p = prepare(case, normal_window_s=100.0, anomalous_window_s=None, normalize=True)
    assert p.dropped["ray-head_gpu"].startswith("constant")
    assert p.dropped["ray-head_net-err"].startswith("all NaN")
    assert p.dropped["ray-head_net-copy"] == "duplicate of ray-head_net-rx"
    assert not p.data.isna().any().any()
    # 100 s of normal data at 5 s resolution = 20 rows, plus all 12 anomalous rows
    assert p.n_normal == 20 and len(p.data) == 32
    assert np.allclose(p.data.mean(), 0.0) and np.allclose(p.data.std(ddof=0), 1.0)
    assert p.sli == "nginx-gateway_latency-90"


def test_cap_keeps_sli_and_every_component_most_anomalous_first() -> None:
    case = make_case(root="ray-worker-3", seed=2)
    sli = sli_column(case)
    p = prepare(case, max_columns=8, keep=[sli])
    assert len(p.columns) == 8 and sli in p.columns
    assert set(p.column_components) == set(case.components)  # 6 components, 8 slots: nobody vanishes
    full = prepare(case)
    best = anomaly_scores(full).idxmax()
    assert best == "ray-worker-3_cpu" and best in cap_columns(full, 8)


def test_sli_falls_back_to_first_component_latency_and_never_uses_truth() -> None:
    case = make_case(root="ray-worker-1")
    # the entry's p90 gone: any other latency kind of the entry comes next
    no_p90 = Case(metrics=case.metrics.drop(columns=["nginx-gateway_latency-90"]), inject_time=case.inject_time,
                  topology=case.topology, root_causes=case.root_causes)
    assert sli_column(no_p90) == "nginx-gateway_latency-50"
    # no latency at the entry at all: the first component that has one
    entry_cols = [c for c in case.metrics.columns if c.startswith("nginx-gateway_latency")]
    no_entry = Case(metrics=case.metrics.drop(columns=entry_cols), inject_time=case.inject_time,
                    topology=case.topology, root_causes=case.root_causes)
    assert sli_column(no_entry) == "ray-head_latency-90"
    assert sli_column(case.without_truth()) == sli_column(case)


def test_prepare_rejects_a_case_without_usable_columns() -> None:
    case = make_case()
    flat = case.metrics[["time", "ray-head_cpu"]].copy()
    flat["ray-head_cpu"] = 1.0
    with pytest.raises(PreprocessError, match="usable metric column"):
        prepare(Case(metrics=flat, inject_time=case.inject_time))


# -- discovery ----------------------------------------------------------------------------------


def test_endpoint_marks_rule() -> None:
    names = ["a", "b", "c", "d", "e"]
    raw = np.zeros((5, 5), dtype=int)
    raw[0, 1], raw[1, 0] = -1, 1  # a -> b
    raw[2, 1], raw[1, 2] = 2, 1  # c o-> b
    raw[3, 4], raw[4, 3] = -1, -1  # d --- e
    raw[0, 3], raw[3, 0] = 2, 2  # a o-o d
    g = disc.marks_to_digraph(raw, names, "pag")
    assert set(g.edges) == {("a", "b"), ("c", "b"), ("d", "e"), ("e", "d"), ("a", "d"), ("d", "a")}


def test_granger_pvalues_equal_statsmodels() -> None:
    from statsmodels.tsa.stattools import grangercausalitytests

    rng = np.random.default_rng(3)
    x = rng.normal(size=(72, 3))
    x[1:, 1] += 0.4 * x[:-1, 0]
    ours = disc.granger_pvalues(x, 3, test="mean")
    for i, j in [(1, 0), (0, 2)]:
        res = grangercausalitytests(pd.DataFrame(x[:, [i, j]]), 3)
        ref = [np.mean([v[1] for v in res[lag][0].values()]) for lag in (1, 2, 3)]
        assert np.allclose(ours[:, i, j], ref, rtol=1e-8, atol=1e-12)
    g = disc.granger_graph(x, ["x0", "x1", "x2"], max_lag=2, alpha=0.01)
    assert ("x0", "x1") in g.edges


def test_pc_orients_a_collider_and_lingam_finds_the_direction() -> None:
    rng = np.random.default_rng(0)
    n = 500
    a, b = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    c = a + b + 0.3 * rng.uniform(-1, 1, n)
    x = np.column_stack([a, b, c])
    g = disc.pc_graph(x, ["a", "b", "c"], depth=2)
    assert set(g.edges) == {("a", "c"), ("b", "c")}
    g = disc.lingam_graph(x, ["a", "b", "c"], seed=0)
    assert set(g.edges) == {("a", "c"), ("b", "c")}
    g = disc.fci_graph(x, ["a", "b", "c"])
    assert {("a", "c"), ("b", "c")} <= set(g.edges) and ("c", "a") not in g.edges


def test_pcmci_finds_a_lagged_link_in_one_direction() -> None:
    rng = np.random.default_rng(1)
    n = 150
    x = np.zeros((n, 3))
    for t in range(1, n):
        x[t, 0] = 0.5 * x[t - 1, 0] + rng.normal()
        x[t, 1] = 0.8 * x[t - 1, 0] + rng.normal()
        x[t, 2] = rng.normal()
    g = disc.pcmci_graph(x, ["u", "v", "w"], tau_max=2, alpha_mci=0.01)
    assert set(g.edges) == {("u", "v")} and g["u"]["v"]["lag"] == 1


def test_topology_mask_and_budget() -> None:
    topo = Topology(nodes=("gw", "head", "w1", "op"), edges=(("gw", "head"), ("head", "w1")), entry="gw")
    cols = ["gw_cpu", "head_cpu", "w1_cpu", "op_cpu", "w1_mem"]
    m = disc.topology_mask(cols, topo)
    assert m[0, 1] and m[1, 0] and m[1, 2] and m[2, 4]
    assert not m[0, 2] and not m[3, 0] and not m[0, 0]
    x = np.random.default_rng(0).normal(size=(72, 6))
    with pytest.raises(disc.DiscoveryTimeout, match="time budget"):
        disc.pc_graph(x, list("abcdef"), budget=disc.Budget(1e-9))
    with pytest.raises(disc.DiscoveryTimeout, match="Granger"):
        disc.granger_graph(x, list("abcdef"), budget=disc.Budget(1e-9))


# -- heads ----------------------------------------------------------------------------------------


def test_pagerank_flows_to_causes() -> None:
    g = nx.DiGraph([("root", "mid"), ("mid", "sli")])
    uniform = heads.personalized_pagerank(g)
    assert max(uniform, key=uniform.get) == "root"
    only_sli = heads.personalized_pagerank(g, {"sli": 1.0})
    assert only_sli["root"] > 0 and only_sli["mid"] > 0


def test_power_iteration_matches_the_published_example() -> None:
    # scikit-network's documented example: the "house" graph, restart at node 0
    edges = [(0, 1), (0, 4), (1, 2), (1, 4), (2, 3), (3, 4)]
    adj = np.zeros((5, 5))
    for a, b in edges:
        adj[a, b] = adj[b, a] = 1
    scores = heads.power_iteration_pagerank(adj, np.array([1.0, 0, 0, 0, 0]))
    assert np.allclose(np.round(scores, 2), [0.29, 0.24, 0.12, 0.12, 0.24])


def test_random_walk_uses_the_weights_and_is_seeded() -> None:
    g = nx.DiGraph([("root", "mid"), ("mid", "sli"), ("noise", "sli")])
    w = {"root": 0.9, "mid": 0.5, "sli": 0.4, "noise": 0.1}
    v1 = heads.random_walk(g, w, start="sli", steps=5000, seed=3)
    assert max(v1, key=v1.get) == "root"
    assert heads.random_walk(g, w, start="sli", steps=5000, seed=3) == v1
    swapped = {"root": 0.1, "mid": 0.5, "sli": 0.4, "noise": 0.9}
    v2 = heads.random_walk(g, swapped, start="sli", steps=5000, seed=3)
    assert max(v2, key=v2.get) == "noise"


def test_reference_walk_ignores_everything_but_the_column_count() -> None:
    a = heads.reference_random_walk([f"c{i}_m" for i in range(9)])
    b = heads.reference_random_walk([f"z{i}_q" for i in range(9)])
    assert [n.split("_")[0][1:] for n, _ in a] == [n.split("_")[0][1:] for n, _ in b]
    freqs = [f for _, f in a]
    assert freqs == sorted(freqs, reverse=True)


def test_sem_case_is_valid_and_propagates_to_the_sli() -> None:
    case = sem_case(root="ray-worker-2", fault="cpu", seed=0)
    case.validate()
    assert case.metrics.shape == (72, 1 + 6 * 8)
    p = prepare(case)
    z = anomaly_scores(p)
    assert z.idxmax() == "ray-worker-2_cpu"
    assert z["ray-head_latency-50"] > z["kuberay-operator_latency-50"]
    z = anomaly_scores(prepare(sem_case(root="ray-head", fault="network", seed=0)))
    assert z["nginx-gateway_latency-90"] > 1.5 * z["kuberay-operator_latency-90"]
