"""MicroCause: PCMCI causal graph + temporal cause oriented random walk (TCORW).

Meng, Zhang, Sun, Zhang, Pei, Sun et al., "Localizing Failure Root Causes in
a Microservice through Causality Inference", IEEE/ACM IWQoS 2020.

1. **Causal graph** — PCMCI (Runge et al., Science Advances 2019) over the
   metric columns with partial-correlation tests, which captures
   time-lagged causal links (:func:`~llmrca.methods.graph.discovery.pcmci_graph`,
   numpy; no ``tigramite`` needed).  With ``use_topology`` links between
   metrics of components that are not adjacent in the call graph are not
   tested.
2. **TCORW** — a random walk from the SLI (the entry point's latency, see methods.common.sli)
   with the CloudRanger transition rules (to causes with weight ``w``, to
   effects with ``rho * w``, self-loops for the residual) where a node's
   weight is its |partial correlation| with the SLI given its own parents in
   the graph (the paper's causal-relation factor), times its relative
   anomaly score (the paper's anomaly factor).
3. **Ranking** — the paper combines the walk's visit frequency with the
   anomaly information and the anomaly *time* (earlier anomalies are more
   likely causes).  Here a metric's score is
   ``gamma * visits / max(visits) + (1 - gamma) * prior`` with
   ``prior = (anomaly / max anomaly) * (0.5 + 0.5 * earliness)`` and
   ``earliness = 1 - onset / anomalous rows`` (onset: first anomalous row
   with |z| above ``onset_z``).  SPOT, which the paper uses to detect
   anomalies, is replaced by the |z| rule shared with the other graph
   methods.

Documented top-k on the synthetic structural systems of the tests: top 2.

Reference mode (``reference_mode="rcaeval"``) runs MicroCause as the paper's
artifact did (its RCAEval copy): tigramite's PCMCI with 10 lags, the
artifact's transition matrix, 1000 walks of 1000 steps from the harness's SLI
(the injected component's own latency) and no anomaly factor; see
:mod:`llmrca.methods.graph.microcause_reference`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from llmrca.config import ConfigError
from llmrca.errors import MethodUnavailable
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.graph import discovery as disc
from llmrca.methods.graph import heads
from llmrca.methods.graph.methods import CommonOptions, GraphMethod, WalkOptions, no_sli
from llmrca.methods.graph.preprocess import Prepared, anomaly_onsets, anomaly_scores, prepare_reference
from llmrca.model import Case, Ranking


@dataclass
class MicroCauseConfig(WalkOptions, CommonOptions):
    """MicroCause options (see the module docstring); PCMCI: ``tau_max``, ``alpha_pc``, ``alpha_mci``."""

    #: the reference mode walks from the SLI the artifact's harness chose: the injected component's latency
    #: (the evaluator passes it to a method in reference mode whose config says so; see evaluate.task.harness_sli)
    harness_sli: ClassVar[bool] = True
    #: γ weighs the walk's visits against the anomaly prior
    option_bounds: ClassVar[dict[str, str]] = {"gamma": "[0, 1]", "tau_max": "[1, inf)"}  # PCMCI needs a lag

    tau_max: int = 2
    alpha_pc: float = 0.2
    alpha_mci: float = 0.01
    max_conds: int = 3
    gamma: float = 0.5
    onset_z: float = 3.0

    #: the options the reference mode reads; it fixes the others to the artifact's values
    REFERENCE_READS: ClassVar[frozenset[str]] = frozenset({"reference_mode", "seed", "time_budget_s"})

    def __post_init__(self) -> None:
        if self.reference_mode:
            changed = sorted(f.name for f in dataclasses.fields(self)
                             if f.name not in self.REFERENCE_READS and getattr(self, f.name) != f.default)
            if changed:
                raise ConfigError(
                    f"MicroCauseConfig: reference_mode={self.reference_mode!r} runs the artifact's settings (10 lags, PC1 at 0.1, "
                    f"MCI at 0.05, 1000 walks of 1000 steps) and ignores {changed}; drop them, or leave reference_mode unset"
                )


def _partial_corr_with_sli(prep: Prepared, g, max_conds: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """|partial correlation| of each column with the SLI given its strongest graph parents."""
    x = prep.values
    cols = prep.columns
    idx = {c: i for i, c in enumerate(cols)}
    sli = prep.sli
    assert sli is not None
    y = x[:, idx[sli]]
    out: dict[str, float] = {}
    for c in cols:
        if c == sli:
            out[c] = 1.0
            continue
        pa = sorted(
            (p for p in g.predecessors(c) if p not in (c, sli)),
            key=lambda p: g[p][c].get("p", 1.0),
        )[:max_conds]
        z = x[:, [idx[p] for p in pa]] if pa else None
        r, _ = disc._partial_corr_p(y, x[:, [idx[c]]], z)
        out[c] = float(abs(r[0]))
    return out


class MicroCause(GraphMethod):
    """MicroCause (Meng et al., IWQoS 2020): PCMCI graph + temporal cause oriented random walk.

    Ranks the synthetic root cause in its top 2.  See the module docstring
    for the scoring rule and how it reads the paper.
    """

    name = "microcause"
    discovery, head = "pcmci", "tcorw"
    config_cls = MicroCauseConfig

    def _rank(self, case: Case) -> Ranking:
        c = self.config
        if check_reference_mode(self.name, c.reference_mode, ("rcaeval",)):
            return self._rank_reference(case)
        if not 0.0 <= c.gamma <= 1.0:
            raise ValueError(f"microcause: gamma must be in [0, 1], got {c.gamma}")
        budget = disc.Budget(c.time_budget_s or None, self.name)
        prep = self._prepare(case)
        if prep.sli is None:
            raise no_sli(self.name, prep, case)
        allowed = disc.topology_mask(prep.columns, case.topology) if c.use_topology else None
        g = disc.pcmci_graph(prep.values, prep.columns, tau_max=c.tau_max, alpha_pc=c.alpha_pc, alpha_mci=c.alpha_mci,
                             max_conds=c.max_conds, allowed=allowed, budget=budget)
        anomaly = anomaly_scores(prep, stat=c.anomaly_stat)
        top = float(anomaly.max())
        rel = anomaly / top if top > 0 else anomaly * 0.0
        pcorr = _partial_corr_with_sli(prep, g, c.max_conds)
        weights = {k: pcorr[k] * float(rel[k]) for k in prep.columns}
        visits = heads.random_walk(g, weights, start=prep.sli, steps=c.walk_steps, rho=c.rho, restart=c.restart,
                                   seed=c.seed, budget=budget)
        onsets = anomaly_onsets(prep, threshold=c.onset_z)
        n_anom = max(len(prep.anomalous), 1)
        earliness = (1.0 - onsets / n_anom).clip(0.0, 1.0)
        prior = rel * (0.5 + 0.5 * earliness)
        vmax = max(visits.values()) or 1.0
        scores = {k: c.gamma * visits[k] / vmax + (1.0 - c.gamma) * float(prior[k]) for k in prep.columns}
        explanation = {
            "graph": {"kind": "pcmci", "nodes": g.number_of_nodes(), "edges": g.number_of_edges()},
            "sli": prep.sli,
            "topology_used": allowed is not None,
            "columns_dropped": len(prep.dropped),
            "seconds": round(budget.elapsed, 3),
            "top_metrics": sorted(((k, round(v, 4)) for k, v in scores.items()), key=lambda kv: -kv[1])[:10],
        }
        ranking = Ranking.from_metric_scores(scores, candidates=case.components, explanation=explanation)
        if not np.isfinite(ranking.scores[0]):
            raise ValueError("microcause: no finite score (every metric column was dropped)")
        return ranking

    def _rank_reference(self, case: Case) -> Ranking:
        """The artifact's MicroCause (module :mod:`~llmrca.methods.graph.microcause_reference`)."""
        from llmrca.methods.graph import microcause_reference as ref

        c = self.config
        budget = disc.Budget(c.time_budget_s or None, self.name)
        prep = prepare_reference(case)
        data = prep.data.ffill().fillna(0.0)  # the harness fills gaps before calling the method
        meta = case.meta if isinstance(case.meta, dict) else {}
        start = meta.get("sli") or meta.get("harness_sli")
        if not start and meta.get("harness_sli_error"):  # the evaluator found no harness SLI where the reference fails too
            raise ValueError(f"microcause (reference mode): no SLI to walk from: {meta['harness_sli_error']} (the reference fails here too)")
        if not start:
            why = meta.get("harness_sli_unavailable")
            raise MethodUnavailable(
                f"microcause (reference mode): {why}" if why else
                "microcause (reference mode) walks from the injected component's own latency (the paper harness's SLI); "
                "name it with --sli COLUMN"
            )
        if start == "time":
            raise ValueError("microcause (reference mode): the SLI 'time' is the time index, not a metric; name a latency column")
        if start not in prep.columns:
            if start in case.metrics.columns:
                raise ValueError(f"microcause (reference mode): the SLI {start!r} is constant in this case, and the reference "
                                 "drops constant columns (it fails here too)")
            raise ValueError(f"microcause (reference mode): the SLI {start!r} is not a column of this case")
        scores, info = ref.rank_metrics(data.to_numpy(dtype=float), prep.columns, start, seed=c.seed, budget=budget)
        explanation = {**info, "reference_mode": c.reference_mode, "columns_dropped": len(prep.dropped), "seconds": round(budget.elapsed, 3),
                       "reference_settings": ref.SETTINGS}
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=explanation)
