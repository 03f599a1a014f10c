"""Data preparation shared by the causal methods: numeric matrix, windows, graphs.

Every method here works on the case's metric columns (``<component>_<metric>``)
and splits them at the injection time into a normal and an anomalous window.
Component names are taken by the component-prefix rule of the data contract
(:func:`llmrca.model.split_column`: everything before the *first* ``_``), so
metric names that themselves contain ``_`` (``ray_serve_...``, ``ctn_cpu``)
keep their data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from llmrca.errors import MethodUnavailable
from llmrca.methods.common.windows import Windows
from llmrca.methods.graph.preprocess import duplicate_columns
from llmrca.model import Case, split_column

#: Metric names treated as latencies when a structural graph is built from the call graph.
LATENCY_HINTS = ("latency", "duration", "time_to_first_token", "inter_token", "e2e_request", "queue_time")


class NotEnoughData(MethodUnavailable, ValueError):
    """The case has too little usable data for the method (says what and how much).

    A :class:`~llmrca.errors.MethodUnavailable`: the evaluator records the run as ``unavailable`` (the case lacks
    what the method reads), as for a case without traces, not as a failed run; still a ValueError for callers."""


def windows(case: Case, *, min_normal: int = 3, min_anomalous: int = 1, what: str = "method", drop_steps: bool = False) -> Windows:
    """Numeric metric columns (gaps filled along time, constant columns dropped), split at injection.

    Dropped columns and the reason are in ``Windows.dropped``: non-numeric or
    all-missing, constant (a constant column has no variance, which makes a
    correlation matrix singular), an exact affine copy of another column.
    With ``drop_steps`` a column that is constant in the normal window and
    constant (at another value) in the anomalous one is dropped too and listed
    in ``Windows.steps``: it is an exact affine copy of the normal/anomalous
    indicator, which methods that add that indicator as a variable
    (CausalAI's exogenous node) cannot test (singular correlation matrix).

    Raises :class:`NotEnoughData` when a window is too short or no column varies.
    """
    df = case.metrics.sort_values("time", kind="stable").reset_index(drop=True)
    time = df["time"].to_numpy(dtype=float)
    data = df.drop(columns=["time"]).apply(pd.to_numeric, errors="coerce")
    # a scrape gap (or a +-Inf, read as missing) is a missing sample, not a zero: carry the neighbours over it
    data = data.replace([np.inf, -np.inf], np.nan).ffill().bfill()
    dropped: dict[str, str] = {}
    for c in data.columns[~data.notna().all()]:
        dropped[str(c)] = "no numeric values"
    data = data.loc[:, data.notna().all()]
    for c in data.columns[data.nunique(dropna=True) <= 1]:
        dropped[str(c)] = "constant (no variance)"
    data = data.loc[:, data.nunique(dropna=True) > 1]
    # an exact affine copy of another column (e.g. a pod's rx and tx bytes) makes Fisher-z singular
    dup = duplicate_columns(data, ())
    dropped.update(dup)
    data = data.drop(columns=list(dup))
    n_normal = int((time < case.inject_time).sum())
    n_anom = len(time) - n_normal
    steps: list[str] = []
    if drop_steps and n_normal and n_anom:
        before, after = data.iloc[:n_normal], data.iloc[n_normal:]
        steps = [str(c) for c in data.columns[(before.nunique() == 1).to_numpy() & (after.nunique() == 1).to_numpy()]]
        for c in steps:
            dropped[c] = "a step at the injection (constant in each window): a copy of the normal/anomalous indicator"
        data = data.drop(columns=steps)
    if n_normal < min_normal or n_anom < min_anomalous:
        raise NotEnoughData(
            f"{what}: {case.label} has {n_normal} normal and {n_anom} anomalous samples around the "
            f"injection time {case.inject_time}; need at least {min_normal} and {min_anomalous}"
        )
    if data.shape[1] == 0 and not steps:
        raise NotEnoughData(f"{what}: {case.label} has no metric column that varies; nothing to rank")
    return Windows(data=data.astype(float), times=time, n_normal=n_normal, dropped=dropped, steps=tuple(steps))


def component(column: str) -> str:
    return split_column(column)[0]


def is_latency(column: str) -> bool:
    metric = split_column(column)[1].lower()
    return any(h in metric for h in LATENCY_HINTS)


def call_graph_metric_edges(case: Case, columns: list[str]) -> list[tuple[str, str]] | None:
    """Metric-level structural graph (cause -> effect) from the case's call graph.

    CIRCA's structural-graph construction (Li et al., KDD 2022, Sec. 4.1) in
    its simplest meta-graph: inside a component every resource metric causes
    every latency metric; along a call ``a -> b`` (a calls b) the callee's
    latencies cause the caller's latencies.  ``None`` when the case has no
    call graph.
    """
    topo = case.topology
    if topo is None or not topo.edges:
        return None
    by_comp: dict[str, list[str]] = {}
    for c in columns:
        by_comp.setdefault(component(c), []).append(c)
    edges: list[tuple[str, str]] = []
    for cols in by_comp.values():
        lats = [c for c in cols if is_latency(c)]
        res = [c for c in cols if not is_latency(c)]
        edges += [(r, lat) for r in res for lat in lats]
    for caller, callee in topo.edges:
        for cl in (c for c in by_comp.get(callee, []) if is_latency(c)):
            edges += [(cl, ca) for ca in by_comp.get(caller, []) if is_latency(ca)]
    return edges


def pc_edges(data: np.ndarray, columns: list[str], *, alpha: float, depth: int, budget_s: float | None = None, what: str = "PC") -> list[tuple[str, str]]:
    """Cause -> effect edges of a PC graph (the shared :func:`~llmrca.methods.graph.discovery.pc_graph`).

    Undirected CPDAG edges appear in both directions. Past ``budget_s`` seconds PC stops with
    :class:`~llmrca.methods.graph.discovery.DiscoveryTimeout`.
    """
    from llmrca.methods.graph.discovery import Budget, pc_graph

    return list(pc_graph(data, columns, alpha=alpha, depth=depth, budget=Budget(budget_s, what)).edges)
