"""MicroCause as the paper's artifact ran it (``reference_mode="rcaeval"``).

The paper's MicroCause row comes from the RCAEval copy in its artifact
(exalsius/rca-llm, ``rca-benchmark/RCAEval/e2e/microcause.py``, called by
``rca-benchmark/main.py``).  That code differs from the published algorithm
(Meng et al., IWQoS 2020) and from the default mode of
:class:`~llmrca.methods.graph.microcause.MicroCause`:

1. **Graph** — PCMCI (Runge et al., Science Advances 2019) as tigramite runs
   it with ``run_pcmci(tau_max=10, pc_alpha=0.1)``: the PC1 stage over the
   lagged candidates (lags 1..10, one condition set per size — the strongest
   remaining parents — with no size limit), then the MCI test of every link at
   lags 0..10 given the target's parents and the cause's parents shifted by the
   lag, with partial-correlation t-tests (``ParCorr``, analytic) at α = 0.05
   and no FDR correction.  Every test uses the samples from ``t = 2 · tau_max``
   on (tigramite's default ``cut_off``).  A column ``c`` gets an edge ``c -> p`` for every
   ``p`` whose link into ``c`` is significant at some lag (self-links included).
2. **Transition matrix** — from the start node ``F``: along an edge ``a -> b``
   the walk may step from ``b`` to ``a`` with weight ``|pcorr(F, a)|``, and
   from ``a`` to ``b`` with ``0.2 · |pcorr(F, b)|`` when ``b -> a`` is not an
   edge; a self-loop keeps what ``|pcorr(F, i)|`` exceeds over the largest
   ``|pcorr(F, k)|`` of the nodes ``k`` with an edge into ``i``.  The partial
   correlation (pingouin's, from the pseudo-inverse of the covariance matrix)
   conditions on the graph predecessors of ``F`` and of the other node.  Rows
   are normalised; a row without weight ends a walk.
3. **Walk and score** — 1000 walks of at most 1000 steps from ``F``, each step
   counted at the node it reaches.  The anomaly factor is a constant (the
   artifact's SPOT detector is commented out), so the score is the visit
   count.  Ties keep the column order; when no walk leaves ``F`` every score
   is undefined and the reference answers the column order.
4. **The start node** — the artifact's harness passes ``sli`` = the injected
   component's own p90 latency column (``<target>_latency``); the evaluator
   hands that column name to this mode only (see
   :func:`llmrca.evaluate.task.harness_sli`).  Without it the reference cannot
   run (its ``nginx-proxy`` fallback is not a column), and neither can this mode.

Input: the reference preprocessing (:func:`~llmrca.methods.graph.preprocess.prepare_reference`)
with the harness's gap filling (forward fill, then 0).  The walk is seeded
(``seed``); the reference's is not.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from llmrca.methods.graph.discovery import Budget

#: the artifact's settings (microcause.py: run_pcmci(tau_max=10, pc_alpha=0.1); tigramite's alpha_level default)
TAU_MAX, PC_ALPHA, ALPHA_LEVEL = 10, 0.1, 0.05
#: backward weight of the transition matrix, walks and steps per walk (microcause.py)
RHO, WALKS, STEPS = 0.2, 1000, 1000
#: what the reference mode runs with, whatever the config's default-mode options say (recorded in the explanation)
SETTINGS = {"tau_max": TAU_MAX, "pc_alpha": PC_ALPHA, "alpha_level": ALPHA_LEVEL, "rho": RHO, "walks": WALKS, "steps": STEPS}


def _lagged(x: np.ndarray, var: int, lag: int, max_lag: int) -> np.ndarray:
    """``x[t - lag, var]`` for t = max_lag .. n-1."""
    n = x.shape[0]
    return x[max_lag - lag : n - lag, var]


def _standardize(a: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=0)
    sd = a.std(axis=0)
    return a / np.where(sd > 0, sd, 1.0)


def _parcorr(y: np.ndarray, xs: np.ndarray, z: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Partial correlation of ``y`` with each column of ``xs`` given ``z`` and its two-sided t-test p-value.

    tigramite's ``ParCorr`` (analytic significance): columns constant over the samples are left out of
    ``z`` (a constant ``x`` or ``y`` gives r = 0, p = 1); the standardised ``x`` and ``y`` are regressed on the
    standardised ``z`` by least squares (minimum norm where ``z`` is collinear); r is the Pearson correlation
    of the residuals and the t-test has ``T - 2 - dim(z)`` degrees of freedom (p = NaN, i.e. not
    significant, below one or for a constant residual).
    """
    t = y.shape[0]
    if z is not None and z.shape[1]:
        z = z[:, z.std(axis=0) != 0]
    dz = 0 if z is None else z.shape[1]
    xs = np.asarray(xs, dtype=float)
    r = np.zeros(xs.shape[1])
    p = np.ones(xs.shape[1])
    live = xs.std(axis=0) != 0
    if y.std() == 0 or not live.any():
        return r, p
    rhs = np.column_stack([_standardize(y[:, None]), _standardize(xs[:, live])])
    if dz:
        zs = _standardize(z)
        beta = np.linalg.lstsq(zs, rhs, rcond=None)[0]
        rhs = rhs - zs @ beta
    ry, rx = rhs[:, 0], rhs[:, 1:]
    ry = ry - ry.mean()
    rx = rx - rx.mean(axis=0)
    den = np.sqrt((rx * rx).sum(axis=0) * float(ry @ ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        rl = np.clip((rx.T @ ry) / den, -1.0, 1.0)  # NaN for a constant residual, as scipy's pearsonr
    dof = t - 2 - dz
    if dof < 1:
        pl = np.full_like(rl, np.nan)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = rl * np.sqrt(dof / (1.0 - rl * rl))
            pl = np.where(np.abs(np.abs(rl) - 1.0) <= 1e-300, 0.0, 2 * stats.t.sf(np.abs(stat), dof))
    r[live], p[live] = rl, pl
    return r, p


def _pc1(x: np.ndarray, j: int, tau_max: int, pc_alpha: float, budget: Budget | None) -> list[tuple[int, int]]:
    """tigramite's ``_run_pc_stable_single`` (max_combinations=1, no size limit): lagged parents of ``j``, strongest first.

    For condition-set size ``d`` each candidate is tested given the first ``d`` of the other candidates (in
    the order at the start of that size); the survivors are sorted by their smallest |partial correlation|.
    """
    k = x.shape[1]
    parents = [(i, lag) for i in range(k) for lag in range(1, tau_max + 1)]
    val_min: dict[tuple[int, int], float] = {}
    cut = 2 * tau_max  # tigramite's default cut_off: every test uses the samples t >= 2 * tau_max
    y = _lagged(x, j, 0, cut)

    def cols(ps: Sequence[tuple[int, int]]) -> np.ndarray:
        return np.column_stack([_lagged(x, i, lag, cut) for i, lag in ps])

    dim = 0
    while len(parents) - 1 >= dim:
        if budget is not None:
            budget.check("PCMCI condition selection (reference)")
        nonsig: list[tuple[int, int]] = []
        tested: list[tuple[list[tuple[int, int]], list[tuple[int, int]]]] = []
        if len(parents) > dim:  # every candidate after the first `dim` shares their condition set
            tested.append((parents[dim:], parents[:dim]))
        for p in parents[:dim]:
            tested.append(([p], [o for o in parents[: dim + 1] if o != p]))
        for xs, z in tested:
            r, pv = _parcorr(y, cols(xs), cols(z) if z else None)
            for p, ri, pi in zip(xs, r, pv, strict=True):
                val_min[p] = min(abs(float(ri)), val_min.get(p, np.inf))
                if not pi <= pc_alpha:  # NaN: not significant
                    nonsig.append(p)
        for p in nonsig:
            val_min.pop(p, None)
        parents = sorted(val_min, key=lambda p: -val_min[p])  # stable: ties keep the earlier order
        dim += 1
    return parents


def pcmci_significant(x: np.ndarray, *, tau_max: int = TAU_MAX, pc_alpha: float = PC_ALPHA, alpha_level: float = ALPHA_LEVEL,
                      budget: Budget | None = None) -> np.ndarray:
    """Significant links of tigramite's ``run_pcmci`` (ParCorr, analytic; ``fdr_method='none'``).

    ``x``: (samples, variables).  Returns a boolean array (variables, variables, tau_max + 1) whose
    ``[i, j, tau]`` says that ``x_i(t - tau) -> x_j(t)`` has an MCI p-value at most ``alpha_level``
    (lag 0 tested in both directions, self-links only at lags ≥ 1).  Raises ValueError when the series
    is too short for the lags.
    """
    n, k = x.shape
    if n <= 2 * tau_max + 3:
        raise ValueError(f"{n} samples are too few for PCMCI with tau_max={tau_max} (the reference needs more than {2 * tau_max + 3})")
    parents = {j: _pc1(x, j, tau_max, pc_alpha, budget) for j in range(k)}
    cut = 2 * tau_max  # tigramite's default cut_off; the cause's shifted parents lag at most 2 * tau_max
    pmat = np.ones((k, k, tau_max + 1))
    for j in range(k):
        if budget is not None:
            budget.check("PCMCI momentary conditional independence tests (reference)")
        conds_y = parents[j]
        for i in range(k):
            for tau in range(tau_max + 1):
                if i == j and tau == 0:
                    continue
                z = [c for c in conds_y if c != (i, tau)]
                z += [c for c in ((ci, ct + tau) for ci, ct in parents[i]) if c not in z]
                y = _lagged(x, j, 0, cut)
                xi = _lagged(x, i, tau, cut)[:, None]
                zz = np.column_stack([_lagged(x, ci, ct, cut) for ci, ct in z]) if z else None
                _, pv = _parcorr(y, xi, zz)
                pmat[i, j, tau] = pv[0]
    with np.errstate(invalid="ignore"):
        return pmat <= alpha_level  # NaN: not significant


def _pcorr_pinv(x: np.ndarray, a: int, b: int, covar: Sequence[int]) -> float:
    """|partial correlation| of columns ``a`` and ``b`` given ``covar`` from the pseudo-inverse of their covariance (pingouin)."""
    cols = [a, b, *covar]
    v = np.atleast_2d(np.cov(x[:, cols], rowvar=False))
    vi = np.linalg.pinv(v, hermitian=True)
    d = np.diag(vi)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = -vi[0, 1] / np.sqrt(d[0] * d[1])
    return abs(float(r))


def transition_matrix(x: np.ndarray, edges: set[tuple[int, int]], start: int, rho: float = RHO) -> np.ndarray:
    """The artifact's row-normalised transition matrix for a walk from ``start`` (see the module docstring).

    ``x``: (samples, nodes); ``edges``: (effect, cause) pairs of the PCMCI graph, self-links included.
    NaN partial correlations (a constant column) propagate as in the reference; such rows end a walk.
    """
    k = x.shape[1]
    f = start
    pa: dict[int, set[int]] = {n: set() for n in range(k)}
    for a, b in edges:
        if a != b:
            pa[b].add(a)
    cache: dict[int, float] = {}

    def pc(j: int) -> float:
        if j not in cache:
            cond = (pa[f] - {j}) | pa[j]
            cond -= {f, j}
            cache[j] = _pcorr_pinv(x, f, j, sorted(cond))
        return cache[j]

    q = np.zeros((k, k))
    for a, b in edges:
        if a == b:
            continue
        if a != f:
            q[b, a] = pc(a)
        if (b, a) not in edges and b != f:
            q[a, b] = rho * pc(b)
    into: dict[int, list[int]] = {n: [] for n in range(k)}
    for a, b in edges:
        into[b].append(a)
    for i in range(k):
        if i == f:
            continue
        best = max((pc(kk) for kk in into[i] if kk != f), default=0.0)
        qii = pc(i)
        q[i, i] = qii - best if qii > best else 0.0
    sums = q.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(sums > 0, 1.0 / np.where(sums > 0, sums, 1.0), 0.0)
    return q * scale[:, None]


def walk_visits(p: np.ndarray, start: int, *, walks: int = WALKS, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    """Visits per node of ``walks`` walks of at most ``steps`` steps from ``start`` on the row-stochastic ``p``.

    A walk ends at a node whose row has no weight.  Raises ValueError when a walk reaches a row with a
    NaN weight (a partial correlation of a constant column), where the reference's ``np.random.choice``
    fails.  Seeded.
    """
    rng = np.random.default_rng(seed)
    k = p.shape[0]
    finite = np.isfinite(p).all(axis=1)
    good = finite & (np.nan_to_num(p).sum(axis=1) > 0)
    cum = np.cumsum(np.nan_to_num(p), axis=1)
    cur = np.full(walks, start)
    alive = np.full(walks, bool(good[start] or not finite[start]))
    visits = np.zeros(k)
    for _ in range(steps):
        if not alive.any():
            break
        idx = np.flatnonzero(alive)
        if not finite[cur[idx]].all():
            raise ValueError("a walk reached a node whose transition weights are NaN (the reference fails there)")
        rows = cum[cur[idx]]
        u = rng.random(idx.size) * rows[:, -1]
        nxt = np.minimum((u[:, None] >= rows).sum(axis=1), k - 1)
        cur[idx] = nxt
        np.add.at(visits, nxt, 1.0)
        alive[idx] = good[nxt] | ~finite[nxt]
    return visits


def rank_metrics(data: np.ndarray, columns: list[str], start: str, *, seed: int = 0, budget: Budget | None = None) -> tuple[list[tuple[str, float]], dict[str, Any]]:
    """The reference's metric order with its scores, and what it found (graph size, walk outcome)."""
    f = columns.index(start)
    sig = pcmci_significant(data, budget=budget)
    k = len(columns)
    edges = {(c, p) for c in range(k) for p in range(k) if sig[p, c, :].any()}
    p = transition_matrix(data, edges, f)
    visits = walk_visits(p, f, seed=seed)
    info: dict[str, Any] = {"graph": {"kind": "pcmci (reference)", "nodes": k, "edges": len(edges)}, "sli": start}
    top = float(visits.max())
    if top <= 0:
        info["walk"] = "no walk left the start node: the reference answers the column order"
        return [(c, 0.0) for c in columns], info
    scores = 0.5 * visits / top + 0.5
    return list(zip(columns, scores.tolist(), strict=True)), info
