"""The topology methods as the paper ran them (``reference_mode="rcaeval"``).

The paper's MicroRCA, Microscope and MonitorRank rows come from the three
"extra methods" its artifact adds to RCAEval (exalsius/rca-llm,
``rca-benchmark/RCAEval/e2e/extra_methods``).  They read the mesh's per-edge
p90 latency (``latency_merged_90.csv``: one series per ``source_destination``
edge, the source's and the destination's quantile added, gaps forward-filled
then zero), the call graph the mesh recorded (``mpg.csv``) and the prepared
``data.csv``, over the whole collection (normal and fault together), and
differ from the published algorithms (the modules beside this one) in ways
that move the results:

* **anomalous edges** — each edge's latency is smoothed (rolling mean of 10
  points), scaled to unit L2 norm over the whole window, and clustered by
  BIRCH (threshold 0.045, branching factor 50); an edge is anomalous when
  BIRCH finds more than one cluster.  Its callee is an anomalous node.
* **Microscope** — a walk from the entry that only enters anomalous callees;
  a node with no callee, or with no anomalous unvisited callee, is a
  candidate.  Candidates are scored by the Pearson correlation of their
  latency with the latency of the *last node the walk visited* (not the
  entry), and only candidates are returned: every other component is
  unranked (a miss at every k).
* **MonitorRank** — the anomalous nodes with their call edges (both
  directions: forward weight the callee's similarity, backward ``rho = 0.5``
  times the caller's), similarity ``|corr|`` with the entry's latency
  rounded to 3 digits, a self-loop of ``max(0, S_i - max S_child)``, the
  similarities as personalisation with the entry's set to 0, PageRank
  (damping 0.85) on the reversed graph.  Only nodes of that subgraph are
  returned.
* **MicroRCA** — the anomalous nodes with their call edges, weighted 0.55
  when anomalous and otherwise by the *signed* correlation of the edge's
  latency with the anomalous node's edge latency; a node's personalisation
  is the mean weight of its edges times its largest ``|corr|`` with its
  container's CPU, network, memory and GPU series (at least 0.01), divided
  by its degree; PageRank on the reversed graph.  Negative weights can stop
  PageRank from converging: the run then fails, as the reference's did.

llmrca's cases give the same inputs: an edge ``a -> b`` reads the case's
per-edge column ``<a>_latency-to-<b>`` when it has one, otherwise the
callee's latency column (in a simulated Figure-4 case each pod is on one
mesh edge, so that column *is* the edge's merged latency); a node's latency
is its own latency column (the artifact's ``latency_aggregated_90``, which
its prepared ``data.csv`` carries) or, without one, the sum of its edges'.
Left out, because the cases carry no node metrics: the artifact's
service-to-host edges (``mpg.csv``'s ``:10250`` rows) and MicroRCA's host
weights.  Where the reference depends on Python's set order (Microscope's
walk pops an arbitrary element of a set of names, which varies between
processes), this walk is depth-first in call-graph order, so results repeat.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd

from llmrca.errors import MethodUnavailable
from llmrca.methods.common.edges import edge_column, latency_column
from llmrca.model import Case, Ranking, split_column

#: rca-llm extra_methods/interface.py: smoothing window, BIRCH threshold, MonitorRank's rho; microrca.py: alpha
SMOOTHING_WINDOW = 10
BIRCH_THRESHOLD = 0.045
RHO = 0.5
ALPHA = 0.55
#: the container columns MicroRCA correlates with (artifact ctn_cpu, ctn_network, ctn_memory, ctn_gpu)
CONTAINER_METRICS = ("cpu", "net-tx", "mem", "gpu")


def _filled(s: pd.Series) -> pd.Series:
    """The artifact's preparation of every series: forward fill, then 0; infinities count as gaps."""
    return s.replace([np.inf, -np.inf], np.nan).ffill().fillna(0.0)


def edge_latencies(case: Case) -> dict[tuple[str, str], pd.Series]:
    """``{(caller, callee): latency series}`` for every call edge with a latency (prepared as the artifact's).

    Raises MethodUnavailable when no edge has one.
    """
    assert case.topology is not None
    m = case.metrics
    out = {}
    for a, b in case.topology.edges:
        col = edge_column(m, a, b)
        if col is not None:
            out[(a, b)] = _filled(m[col].astype(float)).reset_index(drop=True)
    if not out:
        raise MethodUnavailable(
            "the reference topology methods need call latencies and no callee of a call edge has a latency column"
        )
    return out


def node_latency(case: Case, node: str, edges: dict[tuple[str, str], pd.Series]) -> pd.Series:
    """The node's latency: its own latency column, else the sum of the latencies of the edges it is on."""
    col = latency_column(case.metrics, node)
    if col is not None:
        return _filled(case.metrics[col].astype(float)).reset_index(drop=True)
    on = [s for e, s in edges.items() if node in e]
    n = len(case.metrics)
    return sum(on, pd.Series(np.zeros(n))) if on else pd.Series(np.zeros(n))


def birch_anomalous(series: pd.Series) -> bool:
    """rca-llm ``birch_ad_with_smoothing`` for one series: more than one BIRCH cluster after smoothing and L2 scaling."""
    from sklearn.cluster import Birch

    x = series.rolling(window=SMOOTHING_WINDOW, min_periods=1).mean().to_numpy(dtype=float)
    x = np.nan_to_num(x, nan=0.0)
    norm = float(np.linalg.norm(x))
    x = x / norm if norm > 0 else x  # sklearn.preprocessing.normalize leaves a zero vector as it is
    labels = Birch(branching_factor=50, n_clusters=None, threshold=BIRCH_THRESHOLD).fit_predict(x.reshape(-1, 1))
    return len(np.unique(labels)) > 1


def _corr(a: pd.Series, b: pd.Series) -> float:
    """Pearson correlation as pandas gives it (NaN when either side is constant)."""
    return float(a.corr(b))


def _explained(case: Case, anomalous: list[tuple[str, str]], extra: dict) -> dict:
    return {"reference_mode": "rcaeval", "anomalous_edges": [list(e) for e in anomalous], **extra}


#: Why an empty reference ranking names nothing (``llmrca rank`` shows it with the abstention).
NAMED_NOTHING = "no call edge's latency was anomalous (one BIRCH cluster on every edge), so the reference ranks no service"


def _ranking(ranked: list[str], expl: dict) -> Ranking:
    """Best first; scores are the ranks reversed; an empty ranking says why it names nothing."""
    if not ranked:
        expl["named_nothing_because"] = NAMED_NOTHING
    return Ranking(components=ranked, scores=[float(len(ranked) - i) for i in range(len(ranked))], explanation=expl)


def _detect(case: Case) -> tuple[nx.DiGraph, str, dict[tuple[str, str], pd.Series], list[tuple[str, str]], list[str]]:
    """The call graph, its entry, every edge's latency, the anomalous edges and their callees (in edge order)."""
    topo = case.topology
    assert topo is not None  # Method.check() guarantees a call graph
    g = nx.DiGraph()
    g.add_edges_from(topo.edges)
    entry = topo.entry if topo.entry in g else topo.edges[0][0]
    edges = edge_latencies(case)
    anomalous = [e for e, s in edges.items() if birch_anomalous(s)]
    nodes = list(dict.fromkeys(b for _, b in anomalous))
    return g, entry, edges, anomalous, nodes


def microscope(case: Case) -> Ranking:
    """Microscope as rca-llm's ``MicroScope._cause_inference`` (see the module doc)."""
    g, entry, edges, anomalous, anomaly_nodes = _detect(case)
    stack, visited, candidates = [entry], set(), []
    node = entry
    while stack:
        node = stack.pop()
        if node in visited:
            continue
        visited.add(node)
        callees = list(g.successors(node))
        if not callees:
            candidates.append(node)
            continue
        children = [c for c in callees if c in anomaly_nodes and c not in visited]
        stack.extend(reversed(children))
        if not children:
            candidates.append(node)
    last = node_latency(case, node, edges)
    score = {c: _corr(last, node_latency(case, c, edges)) for c in dict.fromkeys(candidates)}
    order = sorted(score, key=lambda c: -score[c] if math.isfinite(score[c]) else math.inf)
    expl = _explained(
        case,
        anomalous,
        {
            "entry": entry,
            "candidates": list(score),
            "correlated_with": node,
            "correlation": {c: (v if math.isfinite(v) else None) for c, v in score.items()},
        },
    )
    return _ranking(order, expl)


def _pagerank(graph: nx.DiGraph, personalization: dict[str, float] | None) -> list[str]:
    """networkx PageRank as rca-llm's ``RootCauseAnalysis.pagerank`` (damping 0.85, max_iter 10000), best first.

    Raises the reference's own errors: PowerIterationFailedConvergence, ZeroDivisionError (all-zero personalisation).
    """
    if graph.number_of_nodes() == 0:
        return []
    pr = nx.pagerank(graph, alpha=0.85, personalization=personalization, max_iter=10000)
    return [n for n, _ in sorted(pr.items(), key=lambda kv: kv[1], reverse=True)]


def monitorrank(case: Case) -> Ranking:
    """MonitorRank as rca-llm's ``MonitorRank._sub_graph`` (see the module doc)."""
    g, entry, edges, anomalous, anomaly_nodes = _detect(case)
    front = node_latency(case, entry, edges)

    def sim(n: str) -> float:
        r = abs(_corr(front, node_latency(case, n, edges)))
        return round(r, 3) if math.isfinite(r) else float("nan")

    sub = nx.DiGraph()
    for n in anomaly_nodes:
        for u, v in [*g.in_edges(n), *g.out_edges(n)]:
            if v != entry:
                sub.add_edge(u, v, weight=sim(v))
                sub.add_edge(v, u, weight=RHO * sim(u))
    personal: dict[str, float] = {}
    for n in list(sub.nodes):
        own = sim(n)
        self_w = 0.0
        if n != entry:
            child = max([0.0, *(s for c in g.successors(n) if math.isfinite(s := sim(c)))])
            self_w = max(0.0, own - child) if math.isfinite(own - child) else 0.0
        sub.add_edge(n, n, weight=self_w)
        personal[n] = own
    personal[entry] = 0.0
    if any(not math.isfinite(v) for v in personal.values()):
        raise FloatingPointError(
            "monitorrank (reference): a similarity is NaN (a constant latency series), as the reference's PageRank would fail"
        )
    ranked = _pagerank(sub.reverse(copy=True), personal)
    return _ranking(ranked, _explained(case, anomalous, {"entry": entry, "anomalous_nodes": anomaly_nodes, "similarity": personal}))


def _container_columns(case: Case, node: str) -> list[str | None]:
    have = {split_column(c): c for c in case.metrics.columns if c != "time"}
    return [have.get((node, k)) for k in CONTAINER_METRICS]


def microrca(case: Case) -> Ranking:
    """MicroRCA as rca-llm's ``MicroRCA._anomaly_subgraph`` (see the module doc)."""
    g, _, edges, anomalous, nodes = _detect(case)
    zero = pd.Series(np.zeros(len(case.metrics)))
    baseline = {b: edges[(a, b)] for a, b in anomalous}  # the callee's anomalous edge (the last one, as the reference)

    def w(x: float) -> float:
        return round(0.0 if not math.isfinite(x) else x, 3)

    sub = nx.DiGraph()
    for n in nodes:
        for u, v in g.in_edges(n):
            sub.add_edge(u, v, weight=ALPHA if (u, v) in anomalous else w(_corr(baseline[v], edges.get((u, v), zero))))
        for u, v in g.out_edges(n):
            sub.add_edge(u, v, weight=ALPHA if (u, v) in anomalous else w(_corr(baseline[u], edges.get((u, v), zero))))
    personal = {n: 0.0 for n in g.nodes if n in nodes}
    detail = {}
    for n in nodes:
        best, metric = 0.01, None
        for col in _container_columns(case, n):
            r = abs(_corr(baseline[n], _filled(case.metrics[col].astype(float)).reset_index(drop=True))) if col else float("nan")
            if r > best:
                best, metric = r, col
        ws = [d["weight"] for _, _, d in sub.in_edges(n, data=True)] + [d["weight"] for _, _, d in sub.out_edges(n, data=True)]
        p = (sum(ws) / len(ws)) * best / sub.degree(n) if ws else 0.0
        personal[n] = p if p > 0 else 0.0
        detail[n] = {"resource_corr": best, "resource_metric": metric}
    total = sum(personal.values())
    pers = personal if total > 0 else ({n: 1.0 / len(personal) for n in personal} if personal else None)
    ranked = _pagerank(sub.reverse(copy=True), pers)
    return _ranking(ranked, _explained(case, anomalous, {"anomalous_nodes": nodes, "personalization": personal, "node_detail": detail}))
