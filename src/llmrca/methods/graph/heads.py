"""Graph heads: rank the nodes of a causal graph (cause -> effect edges).

* :func:`personalized_pagerank` — PageRank (Page et al. 1999) on the
  *reversed* causal graph, so that score flows from effects to their causes,
  personalised by anomaly scores as in MicroRCA (Wu et al., NOMS 2020) and the
  PageRank baselines of RCAEval.
* :func:`random_walk` — the random walk of CloudRanger (Wang et al., CCGRID
  2018) and MicroCause (Meng et al., IWQoS 2020): from node ``i`` the walker
  moves to a cause ``j`` with weight ``w_j``, to an effect ``k`` with weight
  ``rho * w_k`` and stays with weight ``max(0, w_i - max_j w_j)``, where
  ``w`` is the node's relevance to the anomaly (|correlation| with the SLI,
  optionally times its anomaly score).  The walk starts at the SLI and the
  visit frequencies are the scores; an optional restart (jump to a node in
  proportion to its weight) keeps it from being trapped in one component.

Reference behaviour (RCAEval 1.8.1), for the differential check:

* :func:`reference_pagerank_input` + :func:`power_iteration_pagerank` —
  RCAEval turns the library matrix into a PageRank input with its own table
  (which, for FCI's ``o->`` marks, points the edge cause -> effect while every
  other mark points effect -> cause) and runs scikit-network's PageRank
  (power iteration, 10 iterations, uniform restart).
* :func:`reference_random_walk` — RCAEval's ``*-randomwalk`` gives every node
  a zero score, so every transition row is uniform and the visit counts
  (``n`` steps for ``n`` columns, ``default_rng(0)``) depend only on the
  number of columns: the ranking is the column order permuted by a fixed
  draw, independent of the data and of the graph.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import numpy as np

from llmrca.methods.graph.discovery import Budget


def _normalized(weights: Mapping[str, float], nodes: Sequence[str]) -> dict[str, float] | None:
    w = np.array([max(float(weights.get(n, 0.0)), 0.0) for n in nodes])
    w = np.where(np.isfinite(w), w, 0.0)
    if w.sum() <= 0:
        return None
    return dict(zip(nodes, (w / w.sum()).tolist(), strict=True))


def personalized_pagerank(
    g: nx.DiGraph,
    personalization: Mapping[str, float] | None = None,
    *,
    alpha: float = 0.85,
    max_iter: int = 500,
    tol: float = 1e-10,
) -> dict[str, float]:
    """PageRank of every node on the reversed graph, restarting in proportion to ``personalization``.

    Dangling nodes (no cause) return their mass by the same restart vector.
    Without personalization (or when it is all zero) the restart is uniform.
    """
    nodes = list(g.nodes)
    if not nodes:
        raise ValueError("cannot rank an empty graph")
    pers = _normalized(personalization or {}, nodes)
    rev = g.reverse(copy=True)
    return nx.pagerank(rev, alpha=alpha, personalization=pers, dangling=pers, max_iter=max_iter, tol=tol, weight=None)


#: RCAEval's reading of endpoint pairs (mark at a, mark at b) -> (pr[a, b], pr[b, a]).
_REFERENCE_TABLE: dict[tuple[int, int], tuple[int, int]] = {
    (0, 0): (0, 0),
    (-1, -1): (1, 1),
    (1, -1): (1, 0),
    (-1, 1): (0, 1),
    (0, 1): (0, 1),
    (1, 0): (1, 0),
    (1, 1): (1, 1),
    (2, 1): (1, 0),
    (1, 2): (0, 1),
    (2, 2): (1, 1),
}


def reference_pagerank_input(raw: np.ndarray) -> np.ndarray:
    """The PageRank input matrix RCAEval builds from a library adjacency matrix.

    Works for causal-learn endpoint matrices and for 0/1 matrices with
    ``raw[i, j] = 1`` meaning ``j -> i`` (Granger, LiNGAM).  Raises
    ``ValueError`` on mark pairs the reference does not handle (it crashes
    there too).
    """
    raw = np.asarray(raw)
    n = raw.shape[0]
    pr = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            key = (int(raw[a, b]), int(raw[b, a]))
            if key not in _REFERENCE_TABLE:
                raise ValueError(f"unexpected adjacency values {key} at ({a}, {b}); the reference fails on this graph too")
            ab, ba = _REFERENCE_TABLE[key]
            if ab:
                pr[a, b] = 1
            if ba:
                pr[b, a] = 1
    return pr


def power_iteration_pagerank(
    adj: np.ndarray,
    seeds: np.ndarray | None = None,
    *,
    damping: float = 0.85,
    n_iter: int = 10,
    tol: float = 1e-6,
) -> np.ndarray:
    """PageRank by truncated power iteration, edges ``adj[i, j]``: i -> j (scikit-network's ``piteration``).

    Rows are normalised to transition probabilities; a dangling node keeps
    its full restart weight, so mass is renormalised after every step.  At
    most ``n_iter`` steps, stopping early when the L1 change is below ``tol``.
    """
    from scipy import sparse

    # sparse CSR products in the same order as scikit-network, so that scores
    # tied up to rounding come out in the same order as the reference's
    csr = sparse.csr_matrix(np.asarray(adj, dtype=float))
    n = csr.shape[0]
    seeds = np.full(n, 1.0 / n) if seeds is None else np.asarray(seeds, dtype=float) / np.sum(seeds)
    out_deg = csr.dot(np.ones(n))
    inv = np.where(out_deg > 0, 1.0 / np.where(out_deg > 0, out_deg, 1.0), 0.0)
    a = (damping * sparse.diags(inv, format="csr").dot(csr)).T.tocsr()
    b = (np.ones(n) - damping * out_deg.astype(bool)) * seeds
    scores = b
    for _ in range(n_iter):
        new = a.dot(scores) + b * scores.sum()
        new /= new.sum()
        if np.linalg.norm(scores - new, ord=1) < tol:
            break
        scores = new
    return scores / scores.sum()


def transition_matrix(g: nx.DiGraph, weights: Mapping[str, float], *, rho: float = 0.5) -> tuple[list[str], np.ndarray]:
    """CloudRanger/MicroCause transition probabilities ``P[i, j]`` over ``g``'s nodes.

    From node ``i``: to each cause ``j`` (edge j -> i) with ``w_j``, to each
    effect ``k`` (edge i -> k) with ``rho * w_k``, to itself with
    ``max(0, w_i - max over causes w_j)``; rows normalised.  A row with no
    weight at all restarts in proportion to ``w`` over all nodes (uniform if
    every weight is zero).
    """
    nodes = list(g.nodes)
    idx = {n: i for i, n in enumerate(nodes)}
    w = np.array([abs(float(weights.get(n, 0.0))) for n in nodes])
    w = np.where(np.isfinite(w), w, 0.0)
    n = len(nodes)
    p = np.zeros((n, n))
    for node in nodes:
        i = idx[node]
        causes = [idx[c] for c in g.predecessors(node) if c != node]
        effects = [idx[e] for e in g.successors(node) if e != node]
        for k in effects:
            p[i, k] = rho * w[k]
        for j in causes:
            p[i, j] = w[j]  # a node both cause and effect (two-way edge) gets the forward weight
        p[i, i] = max(w[i] - (w[causes].max() if causes else 0.0), 0.0)
    restart = w / w.sum() if w.sum() > 0 else np.full(n, 1.0 / n)
    tot = p.sum(axis=1)
    p = np.where(tot[:, None] > 0, p / np.where(tot > 0, tot, 1.0)[:, None], restart[None, :])
    return nodes, p


def random_walk(
    g: nx.DiGraph,
    weights: Mapping[str, float],
    *,
    start: str,
    steps: int = 10_000,
    rho: float = 0.5,
    restart: float = 0.0,
    seed: int = 0,
    budget: Budget | None = None,
) -> dict[str, float]:
    """Visit frequencies of a seeded walk of ``steps`` steps from ``start`` (see :func:`transition_matrix`).

    With ``restart > 0`` each step first jumps, with that probability, to a
    node drawn in proportion to the weights (a walk with restart): the graphs
    found on 72 samples are sparse and often disconnected, and without it the
    walk never leaves the SLI's connected part of the graph.
    """
    if not 0.0 <= restart < 1.0:
        raise ValueError(f"restart must be in [0, 1), got {restart}")
    if start not in g:
        raise ValueError(f"random walk start {start!r} is not a node of the graph")
    if steps < 1:
        raise ValueError(f"random walk needs at least one step, got steps={steps}")
    nodes, p = transition_matrix(g, weights, rho=rho)
    if restart > 0:
        w = np.array([abs(float(weights.get(n, 0.0))) for n in nodes])
        w = np.where(np.isfinite(w), w, 0.0)
        w = w / w.sum() if w.sum() > 0 else np.full(len(nodes), 1.0 / len(nodes))
        p = (1.0 - restart) * p + restart * w[None, :]
    cdf = np.cumsum(p, axis=1)
    cdf /= cdf[:, -1:]
    rng = np.random.default_rng(seed)
    u = rng.random(steps)
    counts = np.zeros(len(nodes))
    cur = nodes.index(start)
    chunk = 50_000
    for s in range(steps):
        if budget is not None and s % chunk == 0:
            budget.check("random walk")
        cur = min(int(np.searchsorted(cdf[cur], u[s], side="right")), len(nodes) - 1)
        counts[cur] += 1
    return dict(zip(nodes, (counts / steps).tolist(), strict=True))


def reference_random_walk(names: Sequence[str], *, steps: int | None = None, seed: int = 0) -> list[tuple[str, float]]:
    """RCAEval's ``random_walk`` with all-zero node scores: uniform steps, ranked by visits.

    Returns ``(name, frequency)`` sorted by frequency, ties in column order —
    the data and the graph play no part (that is the reference's defect).
    """
    n = len(names)
    steps = n if steps is None else steps
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    counts = np.zeros(n)
    for _ in range(steps):
        counts[rng.choice(n, p=p)] += 1
    freq = counts / steps
    order = sorted(range(n), key=lambda i: -freq[i])
    return [(names[i], float(freq[i])) for i in order]
