"""The graph-based RCA methods: one causal-discovery algorithm × one graph head.

:class:`GraphMethod` does the work once for every pair — preprocess the case
(:mod:`.preprocess`), discover a graph (:mod:`.discovery`), rank its nodes
(:mod:`.heads`), and turn metric scores into a component ranking (a
component ranks as its best metric, RCAEval's rule).  The eight registered
methods are presets: a ``discovery`` and a ``head`` name plus a config
dataclass assembled from option groups.

Documented top-k on the synthetic structural systems of the tests
(``tests/test_graph_methods.py``): the injected root cause is in the top 2,
the top 3 for ``lingam-pagerank``.

Reference mode (``reference_mode: rcaeval``) reproduces RCAEval 1.8.1's
``pc_pagerank`` … ``granger_randomwalk`` for the differential check: its
preprocessing (whole frame, memory in MB, no normalisation), the library
defaults (α = 0.05, no depth limit, ICA-LiNGAM for ``lingam-*``, the mean of
statsmodels' four Granger p-values), its PageRank input and 10-step power
iteration, and its data-independent random walk.  Where the reference
silently returns the column order (empty Granger/LiNGAM graph, FCI graph in
the random walk), reference mode raises instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import networkx as nx
import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.common.scaling import abs_corr_columns
from llmrca.methods.graph import discovery as disc
from llmrca.methods.graph import heads
from llmrca.methods.graph.preprocess import Prepared, anomaly_scores, prepare, prepare_reference, sli_column
from llmrca.model import Case, Ranking


class EmptyGraphError(ValueError):
    """Discovery found no edge where the method (in reference mode) needs one."""


# -- option groups (flat fields so configs round-trip through dict/YAML) ----------------------


@dataclass
class CommonOptions(Config):
    """Options every graph method shares.

    ``normal_window_s`` / ``anomalous_window_s``: analysis window around the
    injection (``None`` = all rows).  ``max_columns``: cap on metric columns
    (most anomalous per component first; the SLI always stays).
    ``use_topology``: restrict edges to metrics of the same or adjacent
    components of the case's call graph (ignored when the case has none).
    ``time_budget_s``: discovery and walk stop with ``DiscoveryTimeout``
    after this long (0 = no limit).
    """

    seed: int = 0
    reference_mode: str | None = None  # None: the paper's algorithm; "rcaeval": RCAEval 1.8.1
    use_topology: bool = True
    normal_window_s: float | None = 600.0
    anomalous_window_s: float | None = 300.0
    max_columns: int = 64
    normalize: bool = True
    anomaly_stat: str = "mean"
    time_budget_s: float = 120.0


@dataclass
class PcOptions(Config):
    """PC: Fisher-z significance level, depth limit (max conditioning-set size; −1 = none)."""

    alpha: float = 0.05
    depth: int = 3
    stable: bool = True


@dataclass
class FciOptions(Config):
    """FCI: Fisher-z significance level, depth limit, max discriminating-path length (−1 = none)."""

    alpha: float = 0.05
    depth: int = 3
    max_path_length: int = -1


@dataclass
class GrangerOptions(Config):
    """Granger: max lag, significance level, statsmodels test name (or ``mean`` of the four).

    ``alpha`` defaults to 0.01 (the reference uses 0.05): an edge is kept when
    *any* of ``max_lag`` lags is significant, so 0.05 lets ~14 % of unrelated
    pairs through on 72 samples.
    """

    alpha: float = 0.01
    max_lag: int = 3
    granger_test: str = "ssr_ftest"


@dataclass
class LingamOptions(Config):
    """LiNGAM: ``direct`` (DirectLiNGAM) or ``ica`` (ICA-LiNGAM); |b| threshold for an edge.

    ``max_columns`` defaults to 24 here: DirectLiNGAM's causal-order search
    costs O(p³) pairwise regressions in Python (≈ 20 s for 48 columns).
    """

    max_columns: int = 24
    lingam_variant: str = "direct"
    lingam_threshold: float = 0.0


@dataclass
class PageRankOptions(Config):
    """PageRank head: damping; ``personalize`` restarts by anomaly score (else uniform)."""

    damping: float = 0.85
    personalize: bool = True


@dataclass
class WalkOptions(Config):
    """Random-walk head: steps, backward weight ρ, restart probability, node weight (``corr`` or ``corr_anomaly``)."""

    walk_steps: int = 10_000
    rho: float = 0.5
    restart: float = 0.15
    walk_weight: str = "corr_anomaly"


# -- the generic method ---------------------------------------------------------------------


def _abs_corr_with(values: np.ndarray, columns: list[str], target: str) -> dict[str, float]:
    """|Pearson correlation| of every column with ``target`` (0 for a constant column)."""
    r = abs_corr_columns(values, values[:, columns.index(target)])
    return dict(zip(columns, r.tolist(), strict=True))


class GraphMethod(Method):
    """Causal-graph discovery followed by a graph head (base of the eight presets)."""

    discovery: ClassVar[str] = ""
    head: ClassVar[str] = ""

    @classmethod
    def test_configs(cls) -> list[dict[str, Any]]:
        """At most 12 columns: discovery cost grows fast with columns; the checks test the interface."""
        return [{"max_columns": 12}]

    # -- pipeline ------------------------------------------------------------------------
    def _prepare(self, case: Case) -> Prepared:
        c = self.config
        if check_reference_mode(self.name, c.reference_mode, ("rcaeval",)):
            prep = prepare_reference(case)
            if self.discovery == "fci":  # the reference forward-fills before FCI only
                prep.data = prep.data.ffill()
            return prep
        sli = sli_column(case)
        return prepare(
            case,
            normal_window_s=c.normal_window_s,
            anomalous_window_s=c.anomalous_window_s,
            max_columns=c.max_columns,
            normalize=c.normalize,
            keep=[sli] if sli else [],
        )

    def _discover(self, prep: Prepared, allowed: np.ndarray | None, budget: disc.Budget) -> nx.DiGraph:
        c = self.config
        x, names = prep.values, prep.columns
        ref = c.reference_mode
        if self.discovery == "pc":
            return disc.pc_graph(x, names, alpha=0.05 if ref else c.alpha, depth=-1 if ref else c.depth,
                                 stable=True if ref else c.stable, budget=budget)
        if self.discovery == "fci":
            return disc.fci_graph(x, names, alpha=0.05 if ref else c.alpha, depth=-1 if ref else c.depth,
                                  max_path_length=-1 if ref else c.max_path_length, budget=budget)
        if self.discovery == "granger":
            return disc.granger_graph(x, names, max_lag=3 if ref else c.max_lag, alpha=0.05 if ref else c.alpha,
                                      test="mean" if ref else c.granger_test, allowed=allowed, budget=budget)
        if self.discovery == "lingam":
            return disc.lingam_graph(x, names, variant="ica" if ref else c.lingam_variant, seed=c.seed,
                                     threshold=0.0 if ref else c.lingam_threshold, budget=budget)
        raise ValueError(f"{self.name}: unknown discovery {self.discovery!r}")

    def _head_scores(self, g: nx.DiGraph, prep: Prepared, budget: disc.Budget, case: Case) -> tuple[dict[str, float], dict[str, Any]]:
        c = self.config
        names = prep.columns
        info: dict[str, Any] = {}
        if c.reference_mode:
            # the reference's *-pagerank (not its random walk) answers the column order for an empty graph
            empty = g.graph["kind"] in ("granger", "lingam") and not np.asarray(g.graph["raw"]).any()
            if self.head == "pagerank" and empty:
                raise EmptyGraphError(
                    f"{self.name} (reference mode): {g.graph['kind']} found no edge; "
                    "the reference returns the column order here, which is not a ranking"
                )
            if self.head == "pagerank":
                scores = heads.power_iteration_pagerank(heads.reference_pagerank_input(g.graph["raw"]))
                return dict(zip(names, scores.tolist(), strict=True)), info
            raw = np.asarray(g.graph["raw"])
            if (raw == 2).any():
                raise ValueError(
                    f"{self.name} (reference mode): the reference random walk cannot read FCI's circle marks "
                    "and crashes (RCAEval then returns the column order)"
                )
            return dict(heads.reference_random_walk(names)), info
        anomaly = anomaly_scores(prep, stat=c.anomaly_stat)
        info["anomaly_scores"] = {k: round(float(v), 4) for k, v in anomaly.sort_values(ascending=False).head(10).items()}
        if self.head == "pagerank":
            pers = anomaly.to_dict() if c.personalize else None
            return heads.personalized_pagerank(g, pers, alpha=c.damping), info
        if prep.sli is None:
            raise no_sli(self.name, prep, case)
        weights = _walk_weights(prep, anomaly, c.walk_weight)
        info["sli"] = prep.sli
        return heads.random_walk(g, weights, start=prep.sli, steps=c.walk_steps, rho=c.rho, restart=c.restart, seed=c.seed, budget=budget), info

    def _rank(self, case: Case) -> Ranking:
        c = self.config
        budget = disc.Budget(c.time_budget_s or None, self.name)
        prep = self._prepare(case)
        allowed = None
        if c.use_topology and not c.reference_mode:
            allowed = disc.topology_mask(prep.columns, case.topology)
        g = self._discover(prep, allowed, budget)
        disc.restrict(g, prep.columns, allowed)
        scores, info = self._head_scores(g, prep, budget, case)
        explanation = {
            "graph": {"kind": g.graph["kind"], "nodes": g.number_of_nodes(), "edges": g.number_of_edges()},
            "columns_dropped": len(prep.dropped),
            "topology_used": allowed is not None,
            "reference_mode": c.reference_mode,
            "seconds": round(budget.elapsed, 3),
            **info,
        }
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=explanation)


def no_sli(method: str, prep: Prepared, case: Case) -> MethodUnavailable:
    """The error of a walk method without an SLI: the one given with ``--sli`` was dropped, or there is none."""
    given = case.meta.get("sli") if isinstance(case.meta, dict) else None
    if given:
        why = prep.dropped.get(given, "dropped by the preprocessing")
        return MethodUnavailable(f"{method} walks from the SLI and the one given with --sli ({given!r}) was left out: {why}; "
                                 "name another latency column")
    from llmrca.telemetry.vocabulary import meaning

    other = [k for k, df in (case.metric_sets or {}).items() if df is not case.metrics and any(
        (m := meaning(str(c).partition("_")[2])) is not None and "latency" in m.kind for c in df.columns)]
    return MethodUnavailable(
        f"{method} walks from the service-level indicator (the entry point's latency) "
        "and no component of this case has a usable latency column (pass one with --sli COLUMN"
        + (f", or rank the {other[0]} metric set, which has latency columns: --metric-set {other[0]}" if other else "") + ")"
    )


def _walk_weights(prep: Prepared, anomaly: pd.Series, how: str) -> dict[str, float]:
    """Node weights of the walk: |corr with the SLI| (CloudRanger), optionally × relative anomaly score."""
    if how not in ("corr", "corr_anomaly"):
        raise ValueError(f"walk_weight must be 'corr' or 'corr_anomaly', got {how!r}")
    assert prep.sli is not None
    corr = _abs_corr_with(prep.values, prep.columns, prep.sli)
    if how == "corr":
        return corr
    top = float(anomaly.max())
    rel = (anomaly / top) if top > 0 else anomaly * 0.0
    return {k: corr[k] * float(rel[k]) for k in corr}


# -- presets ----------------------------------------------------------------------------------


@dataclass
class PcPageRankConfig(PageRankOptions, PcOptions, CommonOptions):
    pass


@dataclass
class PcRandomWalkConfig(WalkOptions, PcOptions, CommonOptions):
    pass


@dataclass
class FciPageRankConfig(PageRankOptions, FciOptions, CommonOptions):
    pass


@dataclass
class FciRandomWalkConfig(WalkOptions, FciOptions, CommonOptions):
    pass


@dataclass
class GrangerPageRankConfig(PageRankOptions, GrangerOptions, CommonOptions):
    pass


@dataclass
class GrangerRandomWalkConfig(WalkOptions, GrangerOptions, CommonOptions):
    pass


@dataclass
class LingamPageRankConfig(PageRankOptions, LingamOptions, CommonOptions):
    pass


@dataclass
class LingamRandomWalkConfig(WalkOptions, LingamOptions, CommonOptions):
    pass


# The citations of these methods are their rows in llmrca.methods.registry.


class PcPageRank(GraphMethod):
    """PC causal graph + personalised PageRank.

    PC: Spirtes & Glymour (1991); PageRank-based RCA as in MicroRCA (Wu et
    al., NOMS 2020) and RCAEval.  Ranks the synthetic root cause in its top 2.
    """

    name = "pc-pagerank"
    discovery, head = "pc", "pagerank"
    config_cls = PcPageRankConfig


class PcRandomWalk(GraphMethod):
    """PC causal graph + CloudRanger/MicroCause random walk from the SLI.

    PC: Spirtes & Glymour (1991); walk: CloudRanger (Wang et al., CCGRID
    2018).  Ranks the synthetic root cause in its top 2.
    """

    name = "pc-randomwalk"
    discovery, head = "pc", "randomwalk"
    config_cls = PcRandomWalkConfig


class FciPageRank(GraphMethod):
    """FCI partial ancestral graph + personalised PageRank.

    FCI: Spirtes, Meek & Richardson (1995); PageRank as in MicroRCA/RCAEval.
    Ranks the synthetic root cause in its top 2.
    """

    name = "fci-pagerank"
    discovery, head = "fci", "pagerank"
    config_cls = FciPageRankConfig


class FciRandomWalk(GraphMethod):
    """FCI partial ancestral graph + CloudRanger/MicroCause random walk.

    FCI: Spirtes, Meek & Richardson (1995); walk: CloudRanger (Wang et al.,
    CCGRID 2018).  Ranks the synthetic root cause in its top 2.
    """

    name = "fci-randomwalk"
    discovery, head = "fci", "randomwalk"
    config_cls = FciRandomWalkConfig


class GrangerPageRank(GraphMethod):
    """Pairwise Granger-causality graph + personalised PageRank.

    Granger (1969); PageRank as in MicroRCA/RCAEval.  Ranks the synthetic
    root cause in its top 2.
    """

    name = "granger-pagerank"
    discovery, head = "granger", "pagerank"
    config_cls = GrangerPageRankConfig


class GrangerRandomWalk(GraphMethod):
    """Pairwise Granger-causality graph + CloudRanger/MicroCause random walk.

    Granger (1969); walk: CloudRanger (Wang et al., CCGRID 2018).  Ranks the
    synthetic root cause in its top 2.
    """

    name = "granger-randomwalk"
    discovery, head = "granger", "randomwalk"
    config_cls = GrangerRandomWalkConfig


class LingamPageRank(GraphMethod):
    """LiNGAM graph + personalised PageRank.

    LiNGAM: Shimizu et al. (2006, 2011); PageRank as in MicroRCA/RCAEval.
    Ranks the synthetic root cause in its top 3.
    """

    name = "lingam-pagerank"
    discovery, head = "lingam", "pagerank"
    config_cls = LingamPageRankConfig


class LingamRandomWalk(GraphMethod):
    """LiNGAM graph + CloudRanger/MicroCause random walk.

    LiNGAM: Shimizu et al. (2006, 2011); walk: CloudRanger (Wang et al.,
    CCGRID 2018).  Ranks the synthetic root cause in its top 2.
    """

    name = "lingam-randomwalk"
    discovery, head = "lingam", "randomwalk"
    config_cls = LingamRandomWalkConfig
