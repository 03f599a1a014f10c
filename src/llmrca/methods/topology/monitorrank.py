"""MonitorRank: a random walk on the call graph weighted by similarity to the front end.

Myunghwan Kim, Roshan Sumbaly, Sam Shah.  "Root Cause Detection in a
Service-Oriented Architecture."  SIGMETRICS 2013.

Each service ``i`` gets a similarity ``S_i``: the largest |Pearson
correlation| between its metrics and the front end's anomalous metric (the
entry's latency), over the whole window.  The walker moves on the call
graph:

* forward, from a caller to a callee ``j``, with weight ``S_j``;
* backward, from a callee to a caller ``i``, with weight ``rho * S_i``
  (``rho`` < 1: walking back up is less likely);
* to itself with weight ``max(0, S_i - max_j S_j)`` over its callees (a
  service more similar than all its callees is a place to stay),

and with probability ``1 - damping`` restarts: at a service drawn in
proportion to its similarity (personalized PageRank with the similarities as
preference vector, ``restart="similarity"``, the paper's choice) or at the
front end (``restart="entry"``, a walk with restart from the front-end node
as PyRCA's random walk starts).  The front end's own
similarity is 1 and its self-weight 0, as in the paper's construction.
Services are ranked by the walk's stationary probability, computed exactly
(power iteration) rather than by sampling, so the result is deterministic.
The paper's pseudo-anomaly clustering (learning from past alarms) needs a
history of labelled incidents that a single case does not have; it is not
implemented.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.edges import latency_column
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.topology._signals import component_columns, latency_series, max_corr
from llmrca.model import Case, Ranking


@dataclass
class MonitorRankConfig(Config):
    option_choices: ClassVar[dict[str, tuple[str, ...]]] = {"metric": ("latency", "all"), "restart": ("similarity", "entry")}
    rho: float = 0.5  # weight of backward (callee -> caller) moves, relative to forward ones
    damping: float = 0.85  # probability of continuing the walk (1 - restart at the front end)
    metric: str = "all"  # "latency": similarity from each service's latency; "all": best of its metrics
    restart: str = "similarity"  # restart distribution: "similarity" (personalized PageRank on S) or "entry"
    max_iter: int = 1000
    tol: float = 1e-12
    #: None: the published algorithm (above); "rcaeval": the MonitorRank the paper ran, from its artifact's RCAEval
    #: (:mod:`llmrca.methods.topology.reference`; this config's other options do not apply there)
    reference_mode: str | None = None


class MonitorRank(Method):
    """MonitorRank (Kim et al., SIGMETRICS 2013); see the module doc."""

    name = "monitorrank"
    config_cls = MonitorRankConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            from llmrca.methods.topology import reference

            return reference.monitorrank(case)
        if cfg.metric not in {"latency", "all"}:
            raise ValueError(f"monitorrank: metric must be 'latency' or 'all', got {cfg.metric!r}")
        topo = case.topology
        assert topo is not None
        m = case.metrics
        nodes = list(topo.nodes)
        idx = {v: i for i, v in enumerate(nodes)}
        entry = topo.entry if topo.entry in idx else nodes[0]
        target = latency_series(m, entry)
        if target is None:
            raise MethodUnavailable(f"monitorrank needs the entry's latency and {entry!r} has no latency column (any latency kind of the metric vocabulary, see `llmrca dataset describe`)")
        sim = np.zeros(len(nodes))
        for v in nodes:
            cols = [latency_column(m, v)] if cfg.metric == "latency" else component_columns(m, v)
            sim[idx[v]] = max_corr(target, m, [c for c in cols if c is not None])[0]
        sim[idx[entry]] = 1.0
        n = len(nodes)
        w = np.zeros((n, n))
        for a, b in topo.edges:
            i, j = idx[a], idx[b]
            w[i, j] += sim[j]  # forward: caller -> callee
            w[j, i] += cfg.rho * sim[i]  # backward: callee -> caller
        for v in nodes:
            i = idx[v]
            if v == entry:
                continue
            child = [sim[idx[c]] for c in topo.callees(v)]
            w[i, i] += max(0.0, sim[i] - (max(child) if child else 0.0))
        rows = w.sum(axis=1)
        if cfg.restart == "entry":
            restart = np.zeros(n)
            restart[idx[entry]] = 1.0
        elif cfg.restart == "similarity":
            restart = sim / sim.sum()
        else:
            raise ValueError(f"monitorrank: restart must be 'similarity' or 'entry', got {cfg.restart!r}")
        # rows with no way out restart
        p = np.where(rows[:, None] > 0, w / np.where(rows > 0, rows, 1.0)[:, None], restart[None, :])
        x = restart.copy()
        for _ in range(cfg.max_iter):
            nx_ = cfg.damping * (x @ p) + (1 - cfg.damping) * restart
            if np.abs(nx_ - x).sum() < cfg.tol:
                x = nx_
                break
            x = nx_
        scores = {v: float(x[idx[v]]) for v in nodes}
        expl = {"entry": entry, "similarity": {v: float(sim[idx[v]]) for v in nodes}, "stationary": scores}
        return Ranking.from_component_scores(scores, explanation=expl)
