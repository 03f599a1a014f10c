"""CausalAI's RootCauseDetector: metrics whose mechanism changed at the anomaly.

Arpit, D., Fernandez, M., Liu, C., Yao, W., Yang, W., Josel, P., Heinecke,
S., Hu, E., Wang, H., Hoi, S. C. H., Xiong, C., Zhang, K., Niebles, J. C.
"Salesforce CausalAI Library: A Fast and Scalable Framework for Causal
Analysis of Time Series and Tabular Data." arXiv:2301.10859, 2023
(``causalai.application.RootCauseDetector``; the package is not on PyPI, so
the algorithm is implemented here).

The anomaly is treated as an intervention on an indicator variable ``I``
(0 in the normal window, 1 in the anomalous one) that has no parents:

1. a causal graph over the metrics and ``I`` is learned with PC
   (causal-learn, Fisher-z, conditioning sets up to ``max_condition_set_size``),
   with the background knowledge that nothing causes ``I``;
2. for every metric ``X`` the conditional-independence test
   ``X ⊥ I | Pa(X)`` (partial correlation, Fisher z) asks whether ``X``'s
   mechanism given its parents changed between the windows;
3. root causes are the metrics adjacent to ``I`` whose test rejects at
   ``pvalue_thres``; they are ranked first, then every other metric, each
   group by the test's |z| (strongest change first).

Reference mode (``reference_mode="rcaeval"``) runs CausalAI the way the
paper's artifact ran it (exalsius/rca-llm ``rca-benchmark/RCAEval/e2e/causalai.py``
around Salesforce CausalAI's ``RootCauseDetector``; step by step with sources in
:mod:`llmrca.methods.causal.causalai_reference`): the time metric is the case's
real ``time`` column (a linear trend, not a 0/1 indicator), the graph is
causalai's own PC (greedy per-variable search, partial-correlation t-test,
``pvalue_thres`` 0.001, condition sets up to 4), and the result is the *set* of
metrics linked to ``time``.  Only those are ranked, in a seeded random order
(``seed``) standing in for the reference's arbitrary set order; an empty set is
an empty ranking.  A metric that drifts over the whole case is linked to
``time`` as surely as one that changed at the injection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from llmrca.config import Config, ConfigError
from llmrca.methods.base import Method
from llmrca.methods.causal._data import windows
from llmrca.methods.common.options import check_reference_mode
from llmrca.model import Case, Ranking

_INDICATOR = "anomaly-indicator_I"


@dataclass
class CausalAiConfig(Config):
    #: the RootCauseDetector's defaults as RCAEval calls it
    pvalue_thres: float = 0.001
    max_condition_set_size: int = 4
    #: PC significance level for the graph
    alpha: float = 0.05
    #: stop PC (DiscoveryTimeout, a TimeoutError) after this many seconds
    time_budget_s: float = 120.0
    #: run CausalAI as the paper's artifact did (see the module docstring); uses pvalue_thres,
    #: max_condition_set_size, time_budget_s and seed, ignores alpha
    reference_mode: str | None = None  # None: the published algorithm; "rcaeval": the artifact's run
    #: reference mode only: seeds the order of the detected root causes (the reference's set order is arbitrary)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reference_mode and self.alpha != 0.05:
            raise ConfigError(
                f"CausalAiConfig: reference_mode={self.reference_mode!r} runs causalai's own PC, which has no separate graph "
                f"significance level, and ignores alpha={self.alpha!r}; drop it (pvalue_thres sets the reference's test), "
                "or leave reference_mode unset"
            )


class CausalAi(Method):
    """CausalAI RootCauseDetector (Arpit et al., 2023): CI tests against an anomaly indicator given parents."""

    name = "causalai"
    config_cls = CausalAiConfig

    def _rank(self, case: Case) -> Ranking:
        cfg: CausalAiConfig = self.config  # type: ignore[assignment]
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            return self._rank_reference(case)
        w = windows(case, min_normal=3, what="causalai", drop_steps=True)
        if not w.columns:  # only step columns change: they changed exactly at the injection
            scores_only = [(c, float(len(w.steps) - k)) for k, c in enumerate(w.steps)]
            return Ranking.from_metric_scores(scores_only, candidates=case.components, explanation={"steps": list(w.steps), "dropped": w.dropped})
        cols = w.columns
        x = w.frame.to_numpy()
        x = (x - x.mean(axis=0)) / x.std(axis=0)
        ind = np.r_[np.zeros(w.n_normal), np.ones(len(x) - w.n_normal)]
        data = np.column_stack([x, ind])
        names = [*cols, _INDICATOR]
        parents, adjacent = _pc_with_exogenous_indicator(data, names, cfg.alpha, cfg.max_condition_set_size, cfg.time_budget_s)
        zs: dict[str, float] = {}
        ps: dict[str, float] = {}
        for i, c in enumerate(cols):
            pa = [j for j in parents[i] if j != len(cols)]
            zs[c], ps[c] = _partial_corr_test(data[:, i], ind, data[:, pa])
        roots = [c for i, c in enumerate(cols) if i in adjacent and ps[c] < cfg.pvalue_thres]
        # step columns changed exactly at the injection (a direct effect of the intervention): first
        order = [*w.steps, *sorted(cols, key=lambda c: (c not in roots, -zs[c]))]
        n = len(order)
        scores = [(c, float(n - k)) for k, c in enumerate(order)]
        expl = {"root_causes": [*w.steps, *roots], "z": {c: round(zs[c], 4) for c in order[:10] if c in zs}, "dropped": w.dropped}
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)

    def _rank_reference(self, case: Case) -> Ranking:
        """The artifact's run (:mod:`llmrca.methods.causal.causalai_reference`): only the detected root causes."""
        from llmrca.methods.causal import causalai_reference as ref

        cfg: CausalAiConfig = self.config  # type: ignore[assignment]
        inp = ref.reference_input(case)
        res = ref.root_cause_detector(
            inp, pvalue_thres=cfg.pvalue_thres, max_condition_set_size=cfg.max_condition_set_size, budget_s=cfg.time_budget_s
        )
        found = sorted(res.root_causes)
        order = [found[i] for i in np.random.default_rng(cfg.seed).permutation(len(found))]
        expl: dict = {
            "reference_mode": "rcaeval",
            "root_causes": order,
            "time_link_p": {c: res.time_edge_p.get(c) for c in order},
            "skeleton_edges": res.skeleton_edges,
            "order": f"seeded random order (seed={cfg.seed}) standing in for the reference's set order, which varies between processes",
            "rows": {"normal": inp.n_normal, "anomalous": inp.n_anomalous},
            "dropped": inp.dropped,
            "reference_settings": {"pvalue_thres": cfg.pvalue_thres, "max_condition_set_size": cfg.max_condition_set_size},
        }
        if not order:
            rows = inp.n_normal + inp.n_anomalous
            few = f"; with {rows} rows the test has at most {rows - 2} degrees of freedom" if rows < 12 else ""
            expl["named_nothing_because"] = (
                f"no metric stayed linked to the time variable in causalai's PC skeleton (p <= {cfg.pvalue_thres} "
                f"under every condition set up to size {cfg.max_condition_set_size}{few}), so the reference ranks no component"
            )
        scores = [(c, float(len(order) - k)) for k, c in enumerate(order)]
        return Ranking.from_metric_scores(scores, candidates=None, explanation=expl)


def _pc_with_exogenous_indicator(
    data: np.ndarray, names: list[str], alpha: float, depth: int, budget_s: float
) -> tuple[list[list[int]], set[int]]:
    """PC graph; parents of each node (undirected neighbours count as parents) and the indicator's neighbours.

    Uses the shared budgeted Fisher-z test of :mod:`llmrca.methods.graph.discovery`, so a PC run
    that exceeds ``budget_s`` stops with ``DiscoveryTimeout``.
    """
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    k = len(names) - 1
    bk = BackgroundKnowledge()
    nodes = [GraphNode(f"X{i + 1}") for i in range(len(names))]
    for i in range(k):
        bk.add_forbidden_by_node(nodes[i], nodes[k])
    from llmrca.methods.graph import discovery

    discovery._register_budgeted_fisherz()
    cg = pc(
        data, alpha=alpha, indep_test=discovery._CIT_NAME, stable=True, max_k=depth, background_knowledge=bk,
        show_progress=False, budget=discovery.Budget(budget_s, "causalai (PC)"),
    )
    g = cg.G.graph
    parents: list[list[int]] = [[] for _ in names]
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j:
                continue
            # j -> i (g[i, j] == 1, g[j, i] == -1) or j -- i (both -1)
            if (g[i, j] == 1 and g[j, i] == -1) or (g[i, j] == -1 and g[j, i] == -1):
                parents[i].append(j)
    adjacent = {i for i in range(k) if g[i, k] != 0 or g[k, i] != 0}
    return parents, adjacent


def _partial_corr_test(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[float, float]:
    """Fisher-z test of x ⊥ y | z via regression residuals; returns (|z statistic|, p-value)."""
    n = len(x)
    if z.shape[1]:
        design = np.column_stack([np.ones(n), z])
        x = x - design @ np.linalg.lstsq(design, x, rcond=None)[0]
        y = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    sx, sy = np.std(x), np.std(y)
    if sx == 0 or sy == 0:
        return 0.0, 1.0
    r = float(np.clip(np.corrcoef(x, y)[0, 1], -0.999999, 0.999999))
    stat = abs(0.5 * np.log((1 + r) / (1 - r))) * np.sqrt(max(n - z.shape[1] - 3, 1))
    return float(stat), float(2 * stats.norm.sf(stat))
