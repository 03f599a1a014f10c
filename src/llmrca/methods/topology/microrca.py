"""MicroRCA: personalized PageRank over the anomalous subgraph of the call graph.

Li Wu, Johan Tordsson, Erik Elmroth, Odej Kao.  "MicroRCA: Root Cause
Localization of Performance Issues in Microservices."  NOMS 2020.

Steps, as in the paper:

1. **Anomalous edges**: BIRCH clustering of each call edge's response time
   (:mod:`llmrca.methods.common.edges`; the callee's latency when the case
   has no per-edge series).
2. **Anomalous subgraph**: the anomalous nodes (callees of anomalous
   edges) with all their incoming and outgoing call edges.
3. **Weights**: an anomalous edge weighs ``alpha``; a normal edge weighs the
   |correlation| between its response time and the anomalous node's
   response time (the latency of its anomalous incoming edge).  (The
   paper's service–host edges need host metrics, which our cases do not
   carry: they are left out.)
4. **Node anomaly score** (personalization, anomalous nodes only): the mean
   weight of the node's edges times the largest |correlation| between the
   node's response time and its own resource metrics (cpu, memory,
   network, gpu).
5. **Personalized PageRank** (networkx) on the subgraph with edges reversed
   (anomalies propagate from callee to caller, so the walk goes back
   towards callees), damping ``damping``; rank by PageRank score.

Correlations are taken over the whole window (normal and anomalous), where
the fault's level shift is.  Components outside the subgraph follow, in
case order, with score -inf.  When the detector flags no edge at all, the
edge with the largest latency shift is taken as the anomalous one and the
explanation says so (``forced_edge``): the evaluator only calls a method on
a case that is known to be anomalous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import networkx as nx
import numpy as np

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.edges import detect_anomalous_edges
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.topology._signals import abs_corr, max_corr, resource_columns
from llmrca.model import Case, Ranking


@dataclass
class MicroRCAConfig(Config):
    #: the paper's α is a weight of anomalous edges, not a significance level
    option_bounds: ClassVar[dict[str, str]] = {"alpha": "[0, 1]", "threshold": "(0, inf)"}

    detector: str = "birch"  # anomalous-edge detector: "birch" (paper) or "sigma"
    threshold: float = 2.0  # detector threshold, in robust normal sigmas
    alpha: float = 0.55  # weight of anomalous edges (paper's α)
    damping: float = 0.85  # PageRank damping factor
    reverse_graph: bool = True  # walk callee -> caller edges reversed, as the paper's code does
    #: None: the published algorithm (above); "rcaeval": the MicroRCA the paper ran, from its artifact's RCAEval
    #: (:mod:`llmrca.methods.topology.reference`; this config's other options do not apply there)
    reference_mode: str | None = None


class MicroRCA(Method):
    """MicroRCA (Wu et al., NOMS 2020); see the module doc."""

    name = "microrca"
    config_cls = MicroRCAConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            from llmrca.methods.topology import reference

            return reference.microrca(case)
        topo = case.topology
        assert topo is not None  # check() guarantees it
        m = case.metrics
        edges = detect_anomalous_edges(case, detector=cfg.detector, threshold=cfg.threshold)
        anomalous = [e for e in edges if e.anomalous]
        forced = None
        if not anomalous:
            scored = [e for e in edges if e.column is not None]
            if not scored:
                raise MethodUnavailable("microrca needs call latencies and no callee of a call edge has a latency column (any latency kind of the metric vocabulary: latency-90, lat_90, istio_request_duration_milliseconds:p90, ...)")
            top = max(scored, key=lambda e: e.score)
            anomalous = [top]
            forced = list(top.edge)
        anom_set = {e.edge for e in anomalous}
        series = {e.edge: m[e.column].to_numpy(dtype=float) for e in edges if e.column is not None}
        # anomalous nodes: callees of anomalous edges; their response time is that edge's latency
        anom_nodes = list(dict.fromkeys(b for a, b in sorted(anom_set, key=lambda e: list(topo.edges).index(e))))
        node_rt = {v: series[next(e for e in anom_set if e[1] == v)] for v in anom_nodes}
        g_full = topo.to_networkx()
        sub = nx.DiGraph()
        for v in anom_nodes:
            rt_v = node_rt[v]
            for a, b in list(g_full.in_edges(v)) + list(g_full.out_edges(v)):
                if (a, b) in anom_set:
                    w = cfg.alpha
                else:
                    rt = series.get((a, b))
                    w = abs_corr(rt_v, rt) if rt is not None else 0.0
                sub.add_edge(a, b, weight=float(w))

        personal: dict[str, float] = {}
        why: dict[str, dict[str, object]] = {}
        for v in sub.nodes:
            if v not in node_rt:
                personal[v] = 0.0
                continue
            ws = [d["weight"] for _, _, d in sub.in_edges(v, data=True)] + [d["weight"] for _, _, d in sub.out_edges(v, data=True)]
            avg_w = float(np.mean(ws)) if ws else 0.0
            r, col = max_corr(node_rt[v], m, resource_columns(m, v))
            personal[v] = avg_w * r
            why[v] = {"mean_edge_weight": avg_w, "resource_corr": r, "resource_metric": col}
        walk = sub.reverse(copy=True) if cfg.reverse_graph else sub
        total = sum(personal.values())
        pers = {v: s / total for v, s in personal.items()} if total > 0 else None
        if walk.number_of_edges() == 0 or all(d.get("weight", 0) == 0 for _, _, d in walk.edges(data=True)):
            pr = pers or {v: 1.0 / len(walk) for v in walk.nodes}
        else:
            pr = nx.pagerank(walk, alpha=cfg.damping, personalization=pers, weight="weight", max_iter=1000, tol=1e-10)
        scores = {v: float(pr.get(v, 0.0)) for v in sorted(sub.nodes, key=list(topo.nodes).index)}
        for c in case.components:
            scores.setdefault(c, float("-inf"))
        expl = {
            "anomalous_edges": [list(e) for e in sorted(anom_set)],
            "forced_edge": forced,
            "edges": [e.to_dict() for e in edges],
            "subgraph_nodes": sorted(sub.nodes),
            "anomaly_score": personal,
            "node_detail": why,
        }
        return Ranking.from_component_scores(scores, explanation=expl)
