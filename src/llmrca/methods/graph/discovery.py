"""Causal-graph discovery over metric columns, returning a networkx DiGraph.

Every discoverer takes a samples × columns matrix and the column names and
returns a :class:`networkx.DiGraph` whose edges point from cause to effect.
The graph carries ``graph["kind"]`` (``"cpdag"``, ``"pag"``, ``"granger"``,
``"lingam"``, ``"pcmci"``) and ``graph["raw"]``, the library's own matrix, so a
head can reproduce a reference implementation's reading of it.

Edge rule for CPDAGs (PC) and PAGs (FCI).  causal-learn stores, for a pair
``(i, j)``, the endpoint mark at ``i`` in ``G[i, j]`` (−1 tail, 1 arrow,
2 circle).  We point the edge at an arrowhead and away from a tail:
``i -> j`` for tail/arrow and circle/arrow (``i o-> j``), ``j -> i`` for the
mirror images and for circle/tail (``j --o i`` reads as ``j`` being the
possible cause).  Marks that leave the direction open (tail/tail, arrow/arrow,
circle/circle) give edges in both directions.  A graph head that walks
towards causes therefore never loses an edge.

Cost bounds: PC and FCI take a depth limit (``depth``; −1 = none) and a
:class:`Budget` checked before every conditional-independence test; Granger
and PCMCI check the budget per target column; DirectLiNGAM per causal-order
step.  Running out raises :class:`DiscoveryTimeout` naming the stage.

Call-graph prior: ``allowed`` is a boolean columns × columns mask (see
:func:`topology_mask`); Granger and PCMCI skip pairs outside it and the
others drop such edges after discovery (causal-learn's background-knowledge
rules are checked linearly per pair, too slow for hundreds of columns).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Sequence

import networkx as nx
import numpy as np
from scipy import stats

from llmrca.errors import LlmrcaError
from llmrca.model import Topology, split_column


class DiscoveryTimeout(LlmrcaError, TimeoutError):
    """Graph discovery exceeded its time budget."""


class Budget:
    """A wall-clock budget; :meth:`check` raises :class:`DiscoveryTimeout` once spent."""

    def __init__(self, seconds: float | None, what: str = "graph discovery") -> None:
        self.seconds = seconds
        self.what = what
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def check(self, stage: str = "") -> None:
        if self.seconds is not None and self.seconds > 0 and self.elapsed > self.seconds:
            where = f" during {stage}" if stage else ""
            raise DiscoveryTimeout(
                f"{self.what} exceeded its time budget of {self.seconds:g} s{where}; "
                "lower max_columns or depth/max_lag, or raise time_budget_s"
            )


# -- call-graph prior ---------------------------------------------------------


def topology_mask(columns: Sequence[str], topology: Topology | None) -> np.ndarray | None:
    """Allowed edges between columns: same component, or components adjacent in the call graph.

    Adjacency ignores the call direction (a fault propagates both ways along
    a call).  Components the call graph does not know are unconstrained.
    ``None`` when there is no topology.
    """
    if topology is None or not topology.nodes:
        return None
    comps = [split_column(c)[0] for c in columns]
    known = set(topology.nodes)
    adj = {(a, b) for a, b in topology.edges} | {(b, a) for a, b in topology.edges}
    n = len(columns)
    mask = np.zeros((n, n), dtype=bool)
    for i in range(n):
        for j in range(n):
            a, b = comps[i], comps[j]
            mask[i, j] = a == b or (a, b) in adj or a not in known or b not in known
    np.fill_diagonal(mask, False)
    return mask


def restrict(g: nx.DiGraph, names: Sequence[str], allowed: np.ndarray | None) -> nx.DiGraph:
    """Drop edges the mask forbids (in place; returns ``g``)."""
    if allowed is None:
        return g
    idx = {n: i for i, n in enumerate(names)}
    bad = [(u, v) for u, v in g.edges if not allowed[idx[u], idx[v]]]
    g.remove_edges_from(bad)
    g.graph["dropped_by_topology"] = len(bad)
    return g


def _empty(names: Sequence[str], kind: str, raw: np.ndarray) -> nx.DiGraph:
    g = nx.DiGraph(kind=kind)
    g.graph["raw"] = raw
    g.add_nodes_from(names)
    return g


# -- constraint-based: PC and FCI (causal-learn) -------------------------------

_CIT_NAME = "llmrca_fisherz_budgeted"


def _register_budgeted_fisherz() -> None:
    """Register Fisher-z with a budget check, so causal-learn's loops can be stopped."""
    from causallearn.utils import cit

    if _CIT_NAME in cit._custom_ci_tests:
        return

    class BudgetedFisherZ(cit.FisherZ):
        def __init__(self, data: np.ndarray, budget: Budget | None = None, **kwargs: object) -> None:
            super().__init__(data, **kwargs)
            self._budget = budget

        def __call__(self, X, Y, condition_set=None):  # type: ignore[no-untyped-def]
            if self._budget is not None:
                self._budget.check("conditional-independence tests")
            return super().__call__(X, Y, condition_set)

    cit.register_ci_test(_CIT_NAME, BudgetedFisherZ)


def _check_matrix(x: np.ndarray, names: Sequence[str]) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise ValueError(f"data has shape {x.shape} but {len(names)} column names were given")
    if not np.isfinite(x).all():
        raise ValueError("data contains NaN or infinite values; fill or drop them before graph discovery")
    return x


def marks_to_digraph(raw: np.ndarray, names: Sequence[str], kind: str) -> nx.DiGraph:
    """Convert a causal-learn endpoint matrix (CPDAG or PAG) by the rule in the module docstring."""
    g = _empty(names, kind, raw)
    n = len(names)
    tail, arrow, circle = -1, 1, 2
    for i in range(n):
        for j in range(i + 1, n):
            mi, mj = raw[i, j], raw[j, i]
            if mi == 0 and mj == 0:
                continue
            if (mi, mj) in ((tail, arrow), (circle, arrow), (tail, circle)):
                g.add_edge(names[i], names[j])
            elif (mj, mi) in ((tail, arrow), (circle, arrow), (tail, circle)):
                g.add_edge(names[j], names[i])
            elif mi == mj and mi in (tail, arrow, circle):
                g.add_edge(names[i], names[j])
                g.add_edge(names[j], names[i])
            else:
                raise ValueError(f"unexpected endpoint marks {mi}/{mj} between {names[i]} and {names[j]}")
    return g


def pc_graph(
    x: np.ndarray,
    names: Sequence[str],
    *,
    alpha: float = 0.05,
    depth: int = -1,
    stable: bool = True,
    budget: Budget | None = None,
) -> nx.DiGraph:
    """PC (Spirtes & Glymour 1991) with Fisher-z tests, via causal-learn; a CPDAG as DiGraph."""
    from causallearn.search.ConstraintBased.PC import pc

    x = _check_matrix(x, names)
    _register_budgeted_fisherz()
    with contextlib.redirect_stdout(io.StringIO()):
        cg = pc(
            x,
            alpha=alpha,
            indep_test=_CIT_NAME,
            stable=stable,
            uc_rule=0,
            uc_priority=2,
            show_progress=False,
            node_names=list(names),
            max_k=None if depth is None or depth < 0 else int(depth),
            budget=budget,
        )
    return marks_to_digraph(np.asarray(cg.G.graph), names, "cpdag")


def fci_graph(
    x: np.ndarray,
    names: Sequence[str],
    *,
    alpha: float = 0.05,
    depth: int = -1,
    max_path_length: int = -1,
    budget: Budget | None = None,
) -> nx.DiGraph:
    """FCI (Spirtes, Meek & Richardson 1995) with Fisher-z tests, via causal-learn; a PAG as DiGraph."""
    from causallearn.search.ConstraintBased.FCI import fci

    x = _check_matrix(x, names)
    _register_budgeted_fisherz()
    with contextlib.redirect_stdout(io.StringIO()):
        g, _edges = fci(
            x,
            independence_test_method=_CIT_NAME,
            alpha=alpha,
            depth=-1 if depth is None else int(depth),
            max_path_length=max_path_length,
            verbose=False,
            show_progress=False,
            node_names=list(names),
            budget=budget,
        )
    return marks_to_digraph(np.asarray(g.graph), names, "pag")


# -- Granger causality (vectorised F-tests) -------------------------------------

GRANGER_TESTS = ("ssr_ftest", "ssr_chi2test", "lrtest", "params_ftest", "mean")


def granger_pvalues(x: np.ndarray, max_lag: int, *, test: str = "ssr_ftest", allowed: np.ndarray | None = None,
                    budget: Budget | None = None) -> np.ndarray:
    """p-values ``P[lag-1, i, j]`` of "column j Granger-causes column i" for lags 1..max_lag.

    Computes the same regressions as statsmodels' ``grangercausalitytests``
    (restricted: constant + own lags; unrestricted: + lags of the cause; the
    first ``lag`` rows trimmed) for all causes of one target at once, using
    the Frisch–Waugh projection.  ``test`` picks the statistic as statsmodels
    names it; ``"mean"`` averages the four p-values (the reference's rule).
    ``params_ftest`` equals ``ssr_ftest`` for OLS.  Pairs outside ``allowed``
    get p = 1 without being tested.
    """
    if test not in GRANGER_TESTS:
        raise ValueError(f"granger test must be one of {GRANGER_TESTS}, got {test!r}")
    x = np.asarray(x, dtype=float)
    n, k = x.shape
    if n <= 3 * max_lag + 2:
        raise ValueError(
            f"{n} samples are too few for Granger tests with max_lag={max_lag}; need more than {3 * max_lag + 2}"
            + (f"; give max_lag at most {(n - 3) // 3}" if n >= 6 else "")
        )
    out = np.ones((max_lag, k, k))
    for lag in range(1, max_lag + 1):
        nobs = n - lag
        # lagged copies: lagged[:, s-1, c] = x[t - s, c] for t = lag..n-1
        lagged = np.stack([x[lag - s : n - s] for s in range(1, lag + 1)], axis=1)  # (nobs, lag, k)
        df_u = nobs - 2 * lag - 1
        if df_u <= 0:
            raise ValueError(f"too few samples ({n}) for lag {lag}")
        for i in range(k):
            if budget is not None:
                budget.check("Granger tests")
            causes = np.arange(k) if allowed is None else np.flatnonzero(allowed[:, i])
            causes = causes[causes != i]
            if causes.size == 0:
                continue
            y = x[lag:, i]
            design_r = np.column_stack([lagged[:, :, i], np.ones(nobs)])
            q, _ = np.linalg.qr(design_r)
            y_r = y - q @ (q.T @ y)
            rss_r = float(y_r @ y_r)
            flat = lagged[:, :, causes].reshape(nobs, -1)  # (nobs, lag * m)
            flat = flat - q @ (q.T @ flat)  # residualise on the restricted design
            xc = np.moveaxis(flat.reshape(nobs, lag, causes.size), 2, 0)  # (m, nobs, lag)
            gram = np.einsum("mtl,mtk->mlk", xc, xc)
            b = np.einsum("mtl,t->ml", xc, y_r)
            try:
                coef = np.linalg.solve(gram, b[..., None])[..., 0]
            except np.linalg.LinAlgError:
                coef = np.einsum("mlk,mk->ml", np.linalg.pinv(gram), b)
            explained = np.einsum("ml,ml->m", coef, b)
            rss_u = np.maximum(rss_r - explained, 1e-300)
            rss_r_ = max(rss_r, 1e-300)
            f = (rss_r_ - rss_u) / rss_u * df_u / lag
            p_f = stats.f.sf(f, lag, df_u)
            if test in ("ssr_ftest", "params_ftest"):
                p = p_f
            else:
                p_chi = stats.chi2.sf(nobs * (rss_r_ - rss_u) / rss_u, lag)
                p_lr = stats.chi2.sf(nobs * np.log(rss_r_ / rss_u), lag)
                p = p_chi if test == "ssr_chi2test" else p_lr if test == "lrtest" else (2 * p_f + p_chi + p_lr) / 4
            out[lag - 1, i, causes] = p
    return out


def granger_graph(
    x: np.ndarray,
    names: Sequence[str],
    *,
    max_lag: int = 3,
    alpha: float = 0.05,
    test: str = "ssr_ftest",
    allowed: np.ndarray | None = None,
    budget: Budget | None = None,
) -> nx.DiGraph:
    """Pairwise Granger causality (Granger 1969): edge j -> i if some lag ≤ max_lag has p < alpha."""
    x = _check_matrix(x, names)
    p = granger_pvalues(x, max_lag, test=test, allowed=allowed, budget=budget)
    adj = (p < alpha).any(axis=0).astype(int)  # adj[i, j] = 1: j -> i (statsmodels' orientation)
    np.fill_diagonal(adj, 0)
    g = _empty(names, "granger", adj)
    for i, j in zip(*np.nonzero(adj), strict=True):
        g.add_edge(names[j], names[i], p=float(p[:, i, j].min()))
    return g


# -- LiNGAM ---------------------------------------------------------------------


def lingam_graph(
    x: np.ndarray,
    names: Sequence[str],
    *,
    variant: str = "direct",
    seed: int = 0,
    threshold: float = 0.0,
    budget: Budget | None = None,
) -> nx.DiGraph:
    """LiNGAM: DirectLiNGAM (Shimizu et al. 2011) or ICA-LiNGAM (Shimizu et al. 2006), via ``lingam``.

    ``adjacency_matrix_[i, j] != 0`` means j -> i; edges with |b| ≤
    ``threshold`` are dropped.
    """
    import lingam

    x = _check_matrix(x, names)
    if variant == "direct":

        class _Budgeted(lingam.DirectLiNGAM):
            def _search_causal_order(self, X, U):  # type: ignore[no-untyped-def]
                if budget is not None:
                    budget.check("DirectLiNGAM causal-order search")
                return super()._search_causal_order(X, U)

        model = _Budgeted(random_state=seed)
    elif variant == "ica":
        model = lingam.ICALiNGAM(random_state=seed)
    else:
        raise ValueError(f"lingam variant must be 'direct' or 'ica', got {variant!r}")
    model.fit(x)
    b = np.asarray(model.adjacency_matrix_, dtype=float)
    adj = (np.abs(b) > threshold).astype(int)
    np.fill_diagonal(adj, 0)
    g = _empty(names, "lingam", adj)
    for i, j in zip(*np.nonzero(adj), strict=True):
        g.add_edge(names[j], names[i], weight=float(b[i, j]))
    return g


# -- PCMCI (Runge et al. 2019) with partial-correlation tests ------------------------


def _partial_corr_p(y: np.ndarray, xs: np.ndarray, z: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Partial correlations of ``y`` with each column of ``xs`` given ``z``, and two-sided p-values."""
    n = y.shape[0]
    if z is not None and z.shape[1]:
        design = np.column_stack([z, np.ones(n)])
    else:
        design = np.ones((n, 1))
    q, _ = np.linalg.qr(design)
    ry = y - q @ (q.T @ y)
    rx = xs - q @ (q.T @ xs)
    num = rx.T @ ry
    den = np.sqrt((rx * rx).sum(axis=0) * float(ry @ ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    r = np.clip(r, -0.999999, 0.999999)
    dof = n - design.shape[1] - 1
    if dof <= 0:
        return r, np.ones_like(r)
    t = r * np.sqrt(dof / (1 - r * r))
    return r, 2 * stats.t.sf(np.abs(t), dof)


def pcmci_graph(
    x: np.ndarray,
    names: Sequence[str],
    *,
    tau_max: int = 2,
    alpha_pc: float = 0.2,
    alpha_mci: float = 0.05,
    max_conds: int = 3,
    max_parents_mci: int = 3,
    allowed: np.ndarray | None = None,
    budget: Budget | None = None,
) -> nx.DiGraph:
    """PCMCI (Runge et al., Science Advances 2019) with partial-correlation tests, in numpy.

    Stage 1 (PC1): for each target, lagged candidates (i, τ), τ = 1..tau_max,
    are removed when independent of the target given the ``p`` strongest
    remaining candidates, p = 0..max_conds.  Stage 2 (MCI): each surviving
    link is re-tested given the target's parents and the cause's own
    (lag-shifted) parents, at most ``max_parents_mci`` each.  Edges i -> j
    collapse the lags (attributes ``lag``, ``p``, ``r`` of the strongest).
    Self-links (autocorrelation) are tested but not returned as edges.
    """
    x = _check_matrix(x, names)
    n, k = x.shape
    if n <= 2 * tau_max + max_conds + 5:
        raise ValueError(
            f"{n} samples are too few for PCMCI with tau_max={tau_max} and max_conds={max_conds}; need more than "
            f"{2 * tau_max + max_conds + 5} (2 x tau_max + max_conds + 5)"
            + (f"; give tau_max at most {(n - max_conds - 6) // 2}" if (n - max_conds - 6) // 2 >= 1 else
               f"; give max_conds at most {n - 2 * tau_max - 6}" if n - 2 * tau_max - 6 >= 0 else "")
        )
    t0 = tau_max
    # lagged[:, tau-1, c] = x[t - tau, c]
    lagged = np.stack([x[t0 - tau : n - tau] for tau in range(1, tau_max + 1)], axis=1)  # (rows, tau, k)
    current = x[t0:]

    def lag_col(c: int, tau: int) -> np.ndarray:
        return lagged[:, tau - 1, c]

    parents: dict[int, list[tuple[int, int]]] = {}
    strength: dict[int, dict[tuple[int, int], float]] = {}
    for j in range(k):
        if budget is not None:
            budget.check("PCMCI condition selection")
        cands = [(i, tau) for i in range(k) for tau in range(1, tau_max + 1) if i == j or allowed is None or allowed[i, j]]
        stat = {c: np.inf for c in cands}
        y = current[:, j]
        for p in range(max_conds + 1):
            if len(cands) <= p:
                break
            kept: list[tuple[int, int]] = []
            if p == 0:
                xs = np.column_stack([lag_col(i, tau) for i, tau in cands])
                r, pv = _partial_corr_p(y, xs, None)
                for c, ri, pi in zip(cands, r, pv, strict=True):
                    stat[c] = min(stat[c], abs(ri))
                    if pi <= alpha_pc:
                        kept.append(c)
            else:
                order = sorted(cands, key=lambda c: -stat[c])
                for c in cands:
                    conds = [o for o in order if o != c][:p]
                    z = np.column_stack([lag_col(i, tau) for i, tau in conds])
                    r, pv = _partial_corr_p(y, lag_col(*c)[:, None], z)
                    stat[c] = min(stat[c], abs(float(r[0])))
                    if pv[0] <= alpha_pc:
                        kept.append(c)
            cands = sorted(kept, key=lambda c: -stat[c])
        parents[j] = cands
        strength[j] = {c: stat[c] for c in cands}

    g = _empty(names, "pcmci", np.zeros((k, k)))
    for j in range(k):
        if budget is not None:
            budget.check("PCMCI momentary conditional independence tests")
        y = current[:, j]
        pa_j = parents[j][:max_parents_mci]
        for i in range(k):
            if i == j or (allowed is not None and not allowed[i, j]):
                continue
            for tau in range(1, tau_max + 1):
                conds = [c for c in pa_j if c != (i, tau)]
                # the cause's parents, shifted by tau (only those still inside the lag window)
                conds += [(ci, ct + tau) for ci, ct in parents[i][:max_parents_mci] if ct + tau <= tau_max and (ci, ct + tau) != (i, tau)]
                conds = list(dict.fromkeys(conds))
                z = np.column_stack([lag_col(ci, ct) for ci, ct in conds]) if conds else None
                r, pv = _partial_corr_p(y, lag_col(i, tau)[:, None], z)
                if pv[0] <= alpha_mci:
                    u, v = names[i], names[j]
                    if not g.has_edge(u, v) or g[u][v]["p"] > pv[0]:
                        g.add_edge(u, v, lag=tau, p=float(pv[0]), r=float(r[0]))
                    g.graph["raw"][j, i] = 1
    return g
