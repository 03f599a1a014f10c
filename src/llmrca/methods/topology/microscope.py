"""Microscope: DFS over the call graph for anomalous services with no anomalous callee.

JinJin Lin, Pengfei Chen, Zibin Zheng.  "Microscope: Pinpoint Performance
Issues with Causal Graphs in Micro-service Environments."  ICSOC 2018
(LNCS 11236).

Microscope builds a service causality graph from the network connections
between services (a call ``a -> b`` makes ``b`` a cause of ``a``), detects
anomalous services by SLO violation of their response time, and walks the
graph depth-first from the front end: an anomalous service none of whose
causes (callees) is anomalous is a root-cause candidate.  Candidates are
ranked by the Pearson correlation between their metrics and the front end's
response time.  Here:

* the causality graph is the case's call graph (``case.topology``; it is
  what the paper derives from network connections), entry = the gateway;
  every node unreachable from the entry is also visited, so the operator is
  judged too;
* a service is anomalous when at least ``min_violations`` of its
  anomalous-window latency points exceed the normal mean + ``k`` standard
  deviations (the paper's 3-sigma SLO rule);
* candidates come first, ranked by the largest |correlation| between the
  candidate's metrics (``rank_on="latency"``: its latency only; ``"all"``:
  all its columns) and the entry's latency over the whole window; the
  other anomalous services follow, then the rest, each group by the same
  correlation.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.edges import latency_column
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.common.windows import split_frame
from llmrca.methods.topology._signals import component_columns, latency_series, max_corr
from llmrca.model import Case, Ranking


@dataclass
class MicroscopeConfig(Config):
    k: float = 3.0  # SLO rule: mean + k * std of the normal window
    min_violations: int = 2  # anomalous-window points beyond the SLO to call a service anomalous
    rank_on: str = "all"  # "latency" (response time only) or "all" (every metric of the candidate)
    #: None: the published algorithm (above); "rcaeval": the Microscope the paper ran, from its artifact's RCAEval
    #: (:mod:`llmrca.methods.topology.reference`; this config's other options do not apply there)
    reference_mode: str | None = None


class Microscope(Method):
    """Microscope (Lin et al., ICSOC 2018); see the module doc."""

    name = "microscope"
    config_cls = MicroscopeConfig

    def _violations(self, case: Case, comp: str) -> int:
        col = latency_column(case.metrics, comp)
        if col is None:
            return 0
        before, after = split_frame(case.metrics, case.inject_time)
        normal = before[col].to_numpy(dtype=float)
        anomal = after[col].to_numpy(dtype=float)
        mu, sd = np.nanmean(normal), np.nanstd(normal, ddof=1)
        if not np.isfinite(sd):
            return 0
        return int(np.sum(anomal > mu + self.config.k * sd))

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            from llmrca.methods.topology import reference

            return reference.microscope(case)
        if cfg.rank_on not in {"latency", "all"}:
            raise ValueError(f"microscope: rank_on must be 'latency' or 'all', got {cfg.rank_on!r}")
        topo = case.topology
        assert topo is not None
        g = topo.to_networkx()
        m = case.metrics
        if not any(latency_column(m, c) is not None for c in topo.nodes):
            raise MethodUnavailable("microscope needs response times and no component has a latency column (any latency kind of the metric vocabulary, see `llmrca dataset describe`)")
        viol = {c: self._violations(case, c) for c in topo.nodes}
        anomalous = {c for c, v in viol.items() if v >= cfg.min_violations}
        # DFS from the entry, then from every node not reached yet (in case order)
        order: list[str] = []
        seen: set[str] = set()
        starts = ([topo.entry] if topo.entry in g else []) + list(topo.nodes)
        for s in starts:
            if s in seen:
                continue
            for v in nx.dfs_preorder_nodes(g, s):
                if v not in seen:
                    seen.add(v)
                    order.append(v)
        candidates = [v for v in order if v in anomalous and not any(w in anomalous for w in g.successors(v))]
        entry = topo.entry or order[0]
        target = latency_series(m, entry)
        corr: dict[str, float] = {}
        for v in topo.nodes:
            cols = [latency_column(m, v)] if cfg.rank_on == "latency" else component_columns(m, v)
            cols = [c for c in cols if c is not None]
            corr[v] = max_corr(target, m, cols)[0] if target is not None else 0.0
        # groups: candidates (+2), other anomalous (+1), the rest (+0); correlation in [0, 1] inside
        scores = {v: corr[v] + (2.0 if v in candidates else 1.0 if v in anomalous else 0.0) for v in order}
        expl = {
            "entry": entry,
            "anomalous": sorted(anomalous),
            "candidates": candidates,
            "slo_violations": viol,
            "correlation_with_entry_latency": corr,
            "dfs_order": order,
        }
        return Ranking.from_component_scores(scores, explanation=expl)
