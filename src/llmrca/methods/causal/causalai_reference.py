"""CausalAI's RootCauseDetector as the paper's artifact ran it (``reference_mode="rcaeval"``).

The paper's CausalAI row comes from the artifact's RCAEval wrapper
(exalsius/rca-llm, ``rca-benchmark/RCAEval/e2e/causalai.py``) around
Salesforce CausalAI's ``RootCauseDetector``, called from the harness
``rca-benchmark/main.py`` (``process``).  Step by step, with the source each
step reproduces:

1. **Harness** (``main.py``, ``process``): ``_latency-50`` columns dropped,
   infinities read as gaps, gaps forward-filled then set to 0; the last
   ``length*60//2 = 600`` rows before ``inject_time`` and the first 600 from
   it (``--length`` 20 min) are kept, *with* the ``time`` column (unix s).
2. **Wrapper** (``e2e/causalai.py``): columns with one distinct value
   (``nunique() == 1``) dropped, rows split at ``inject_time``; the
   ``time`` column, the real timestamps, is the "time metric" — a linear
   trend over the case, not a 0/1 regime indicator.
3. **Preprocessing** (``causalai/application/common/preprocess.py``,
   ``rca_preprocess``; ``causalai/data/transforms/tabular.py``,
   ``StandardizeTransform``): normal rows then anomalous rows, ``time``
   appended as the last variable, every column standardised as
   ``(x - mean) / sqrt(var + 1e-7)`` with ``var`` the second moment minus
   the squared mean (reproduced as written: a column with a huge mean and a
   tiny spread can cancel to a negative variance; the reference then fails
   and so does this mode, with a message).
4. **Prior knowledge** (``causalai/application/root_cause_detection.py``):
   every link into ``time`` is forbidden, so ``time``'s own search has no
   candidate parent (``causalai/models/common/prior_knowledge.py``,
   ``isValid``).
5. **PC skeleton** (``causalai/models/tabular/pc.py``, ``PCSingle.run_greedy``
   for every variable, combined by ``PC.run``): for a target ``X`` the
   candidates are all other variables; for condition-set sizes
   ``0..min(4, |pool|-1)`` (stopping once the pool is too small) every
   remaining candidate ``Y`` is tested against the condition sets of that
   size drawn from the pool without ``Y`` (``itertools.combinations``
   order), stopping at the first p-value above ``pvalue_thres = 0.001``;
   the candidates separated at a size leave the candidates *and* the pool
   together after the size is done.  A p-value that is NaN on the first
   condition set keeps the link for that size (the reference's running
   maximum starts at NaN and never compares greater).  ``X``'s
   ``undirected_edges`` are the surviving candidates.
6. **CI test** (``causalai/models/common/CI_tests/partial_correlation.py``,
   ``PartialCorrelation``): residuals of ``x`` and ``y`` after least squares
   on ``Z`` (no intercept; the data are centred), ``r`` = Pearson's
   correlation of the residuals, p-value two-sided Student-t with
   ``n - 2 - |Z|`` degrees of freedom (NaN below 1; 0 when ``|r| = 1``).
   ``r`` is computed from the inverse of the data's Gram submatrix (the same
   number in exact arithmetic, far fewer operations); a submatrix whose
   smallest eigenvalue is below ``1e-8`` of its largest is computed the
   reference's way instead (``numpy.linalg.lstsq`` and ``scipy.stats.pearsonr``).
7. **Orientation** (``causalai/models/common/orient_edges.py``): the skeleton
   is made symmetric (an edge when either end lists the other).  The
   collider step's "fix" re-adds both directions of *every* edge that is
   not undirected, so every edge ends undirected and Meek's rules orient
   nothing: the graph stays the symmetric skeleton.
8. **Post-processing** (``prior_knowledge.py``, ``post_process_tabular``): a
   forbidden ``X -> time`` is reversed to ``time -> X``; so ``time`` is a
   parent of ``X`` exactly when ``X``–``time`` is a skeleton edge.
9. **Root causes** (``root_cause_detection.py``; ``invert_graph.py``): the
   *set* of variables with ``time`` among their parents, returned by the
   wrapper as ``list(set)`` — an order that changes with Python's string
   hash randomisation.  Here the order is a seeded random permutation
   (``seed``) of the sorted set, a stand-in for that arbitrary order.  The
   harness ranks only these (components by the text before the first
   ``_``); an empty set is an empty ranking.
"""

from __future__ import annotations

import itertools
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from llmrca.methods.graph.discovery import Budget
from llmrca.model import Case

#: rca-benchmark/main.py: ``--length`` defaults to 20 (minutes); ``length * 60 // 2`` rows on each side
HARNESS_ROWS = 20 * 60 // 2
#: the reference's name of the time metric
TIME = "time"
#: condition sets evaluated per batch (the greedy search stops at the first separating one)
_CHUNK = 2048
#: a Gram submatrix this ill-conditioned is tested the reference's way (lstsq + pearsonr)
_ILL_CONDITIONED = 1e-8


@dataclass
class ReferenceInput:
    """The matrix the reference's PC runs on: metric columns, then ``time``; standardised."""

    data: np.ndarray  # (rows, variables), standardised
    names: list[str]  # metric columns, then "time"
    n_normal: int
    n_anomalous: int
    dropped: list[str] = field(default_factory=list)  # constant columns the wrapper drops


@dataclass
class ReferenceResult:
    root_causes: set[str]
    skeleton_edges: int
    time_edge_p: dict[str, float]  # root cause -> the largest p-value of its time link over the sizes tested


def harness_frame(case: Case) -> pd.DataFrame:
    """Steps 1-2 of the module doc: the frame the wrapper hands to ``rca_preprocess`` (with ``time``)."""
    df = case.metrics
    df = df.loc[:, ~df.columns.astype(str).str.endswith("_latency-50")]
    df = df.apply(pd.to_numeric, errors="coerce").astype(float)
    df = df.replace([np.inf, -np.inf], np.nan).ffill().fillna(0.0)
    normal = df[df[TIME] < case.inject_time].tail(HARNESS_ROWS)
    anomalous = df[df[TIME] >= case.inject_time].head(HARNESS_ROWS)
    df = pd.concat([normal, anomalous], ignore_index=True)
    return df.loc[:, df.nunique() != 1]


def standardise(x: np.ndarray) -> np.ndarray:
    """causalai's tabular ``StandardizeTransform`` fitted on one array: ``(x - mean) / sqrt(var + 1e-7)``.

    ``var`` is computed as the reference does (second moment, weighted by the row count, minus the squared
    mean), so its cancellation for a large mean with a tiny spread is reproduced.
    """
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = x.var(axis=0)
    g_mean = (mean * n) / n
    g_var = ((var + mean**2) * n) / n - g_mean**2
    with np.errstate(invalid="ignore"):
        return (x - g_mean) / np.sqrt(g_var + 1e-7)


def reference_input(case: Case) -> ReferenceInput:
    """Steps 1-3: harness, wrapper and ``rca_preprocess``; raises ValueError where the reference fails."""
    frame = harness_frame(case)
    if TIME not in frame.columns:
        raise ValueError("causalai reference: the case has fewer than two rows (its time column is constant)")
    dropped = [str(c) for c in case.metrics.columns if c != TIME and c not in frame.columns]
    is_normal = frame[TIME].to_numpy() < case.inject_time
    ordered = pd.concat([frame[is_normal], frame[~is_normal]], ignore_index=True)
    metrics = [str(c) for c in ordered.columns if c != TIME]
    names = [*metrics, TIME]
    if len(ordered) < 3:
        raise ValueError(f"causalai reference: the case has {len(ordered)} rows; the partial-correlation test needs 3")
    data = standardise(ordered[names].to_numpy(dtype=float))
    bad = [names[j] for j in range(len(names)) if not np.isfinite(data[:, j]).all()]
    if bad:
        raise ValueError(
            f"causalai reference: standardising column(s) {bad} gives NaN (the reference's "
            "variance formula cancels to a negative number for a large mean with a tiny spread); the reference's "
            "least squares fails on such a case, and so does this mode"
        )
    return ReferenceInput(data=data, names=names, n_normal=int(is_normal.sum()), n_anomalous=int((~is_normal).sum()), dropped=dropped)


def partial_correlation_pvalue(r: np.ndarray | float, n: int, size: int) -> np.ndarray:
    """``PartialCorrelation.get_pvalue``: two-sided Student-t p-value of ``r`` with ``n - 2 - size`` dof.

    NaN when the degrees of freedom are below 1; 0 where ``|r|`` is 1.
    """
    r = np.asarray(r, dtype=float)
    dof = n - 2 - size
    if dof < 1:
        return np.full(r.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(dof / (1.0 - r * r))
        p = stats.t.sf(np.abs(t), dof) * 2
    return np.where(np.abs(np.abs(r) - 1.0) <= sys.float_info.min, 0.0, p)


def reference_partial_correlation(data: np.ndarray, x: int, y: int, z: tuple[int, ...]) -> tuple[float, float]:
    """One ``PartialCorrelation.run_test`` as the reference computes it: (r, p-value).

    ``data``: (rows, variables); ``x``, ``y``: column indices; ``z``: condition-set column indices.
    """
    xv, yv = data[:, x], data[:, y]
    if z:
        zm = data[:, list(z)]
        xv = xv - zm @ np.linalg.lstsq(zm, xv, rcond=None)[0]
        yv = yv - zm @ np.linalg.lstsq(zm, yv, rcond=None)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = float(stats.pearsonr(xv, yv)[0])
    return r, float(partial_correlation_pvalue(r, data.shape[0], len(z)))


class _Tests:
    """Batched partial-correlation tests on one standardised matrix (step 6 of the module doc)."""

    def __init__(self, data: np.ndarray, budget: Budget) -> None:
        self.data = data
        self.n = data.shape[0]
        self.gram = data.T @ data
        self.budget = budget

    def run(self, x: int, y: int, zs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """r and p-values of ``x ⊥ y | Z`` for every row ``Z`` of ``zs`` (shape (K, size))."""
        self.budget.check("partial-correlation tests")
        k, size = zs.shape
        if size == 0:
            r, p = reference_partial_correlation(self.data, x, y, ())
            return np.array([r] * k), np.array([p] * k)
        idx = np.concatenate([np.broadcast_to([x, y], (k, 2)), zs], axis=1)
        sub = self.gram[idx[:, :, None], idx[:, None, :]]
        eig = np.linalg.eigvalsh(sub)
        ok = eig[:, 0] > _ILL_CONDITIONED * eig[:, -1]
        r = np.empty(k)
        if ok.any():
            prec = np.linalg.inv(sub[ok])
            r[ok] = np.clip(-prec[:, 0, 1] / np.sqrt(prec[:, 0, 0] * prec[:, 1, 1]), -1.0, 1.0)
        p = np.empty(k)
        p[ok] = partial_correlation_pvalue(r[ok], self.n, size)
        for i in np.nonzero(~ok)[0]:
            r[i], p[i] = reference_partial_correlation(self.data, x, y, tuple(int(v) for v in zs[i]))
        return r, p


def _greedy(tests: _Tests, x: int, y: int, pool: list[int], size: int, thres: float) -> float:
    """``_greedy_subroutine``: the p-value the reference reports for ``y`` at this size.

    Condition sets in ``itertools.combinations`` order; the first p-value above ``thres`` is returned at
    once; otherwise the running maximum (which stays NaN when the first p-value is NaN).
    """
    combos = itertools.combinations(pool, size)
    pmax: float | None = None
    while True:
        chunk = list(itertools.islice(combos, _CHUNK))
        if not chunk:
            return float("nan") if pmax is None else pmax
        _, p = tests.run(x, y, np.array(chunk, dtype=int).reshape(len(chunk), size))
        if pmax is None and np.isnan(p[0]):
            return float("nan")  # the reference's maximum starts at NaN and never compares greater
        above = np.nonzero(p > thres)[0]
        if above.size:
            return float(p[above[0]])
        finite = p[~np.isnan(p)]
        if finite.size and (pmax is None or pmax < float(finite.max())):
            pmax = float(finite.max())


def pc_single(tests: _Tests, target: int, candidates: list[int], others: list[int], thres: float, max_size: int) -> tuple[list[int], dict[int, float]]:
    """``PCSingle.run_greedy`` for one target: the surviving candidates and each one's largest p-value.

    ``candidates``: the parents prior knowledge allows; ``others``: every other variable (the pool of
    condition sets).  Removal is decided per size and applied after the size, to candidates and pool.
    """
    parents = list(candidates)
    pool = list(others)
    pmax: dict[int, float] = {}
    depth = min(max_size, len(pool) - 1)
    for size in range(depth + 1):
        if len(pool) - 1 < size:
            break
        ps = [_greedy(tests, target, y, [v for v in pool if v != y], size, thres) for y in parents]
        separated = [y for y, p in zip(parents, ps, strict=True) if p > thres]
        for y, p in zip(parents, ps, strict=True):
            if y not in pmax or pmax[y] < p:  # the reference's pvalue_dict update (a NaN is never replaced)
                pmax[y] = p
        for y in separated:
            parents.remove(y)
            pool.remove(y)
    return parents, {y: pmax[y] for y in parents if y in pmax}


def root_cause_detector(ref: ReferenceInput, *, pvalue_thres: float, max_condition_set_size: int, budget_s: float | None) -> ReferenceResult:
    """Steps 4-9 of the module doc on ``ref``; raises DiscoveryTimeout after ``budget_s`` seconds."""
    budget = Budget(budget_s, "causalai reference (PC)")
    tests = _Tests(ref.data, budget)
    t = ref.names.index(TIME)
    nvar = len(ref.names)
    undirected: dict[int, list[int]] = {}
    pvals: dict[int, dict[int, float]] = {}
    for target in range(nvar):
        others = [v for v in range(nvar) if v != target]
        candidates = [] if target == t else others  # every link into "time" is forbidden
        undirected[target], pvals[target] = pc_single(tests, target, candidates, others, pvalue_thres, max_condition_set_size)
    edges = {frozenset((a, b)) for a, nb in undirected.items() for b in nb}
    roots = {ref.names[v] for v in range(nvar) if v != t and frozenset((v, t)) in edges}
    time_p = {ref.names[v]: pvals[v][t] for v in range(nvar) if ref.names[v] in roots and t in pvals[v]}
    return ReferenceResult(root_causes=roots, skeleton_edges=len(edges), time_edge_p=time_p)


__all__ = [
    "HARNESS_ROWS",
    "ReferenceInput",
    "ReferenceResult",
    "harness_frame",
    "partial_correlation_pvalue",
    "pc_single",
    "reference_input",
    "reference_partial_correlation",
    "root_cause_detector",
    "standardise",
]
