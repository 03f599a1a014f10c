"""CIRCA: regression-based hypothesis testing on a structural graph, with descendant adjustment.

Li, M., Li, Z., Yin, K., Nie, X., Zhang, W., Sui, K., Pei, D. "Causal
Inference-Based Root Cause Analysis for Online Service Systems with
Intervention Recognition." KDD 2022.

The paper's algorithm (``reference_mode=None``, the default):

1. **Structural graph** (Sec. 4.1): from the call graph when the case has one
   (resource metrics -> latency inside a component; callee latency -> caller
   latency along each call), otherwise a PC graph (causal-learn, Fisher-z).
2. **Regression-based hypothesis testing** (Sec. 4.2, intervention
   recognition): each metric is regressed on its parents (optionally with
   ``tau_max`` lags) over the normal window; the anomaly score is the largest
   absolute z-score of the regression residual over the anomalous window. A
   metric whose mechanism was intervened on violates its regression; one that
   only follows its parents does not.
3. **Descendant adjustment** (Sec. 4.3): a metric whose score passes
   ``da_threshold`` gets the largest score among its descendants (through
   non-anomalous intermediates) added, so that among anomalous metrics the
   one that explains downstream anomalies wins.

Reference mode (``reference_mode="rcaeval"``) reproduces RCAEval 1.8.1's ``circa`` for
the differential check: PC graph always (causal-learn defaults), its edges
*reversed* before regression (parents are the PC graph's children), metrics
without an edge left out of the ranking (they are appended last here), no
descendant adjustment, and its windows: every series resampled to 1 s by
time interpolation, trained on ``[inject-120 s, inject-10 s]`` and tested on
the last 10 s of ``[inject-120 s, inject+300 s]`` (for a shorter fault window
that is the last sample, extrapolated). The artifact's metric-name split on
every ``_`` (which left ``ctn_*`` series without data) is *not* reproduced:
columns are split by the component prefix rule in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import networkx as nx
import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from llmrca.config import Config
from llmrca.methods.base import Method
from llmrca.methods.causal._data import Windows, call_graph_metric_edges, pc_edges, windows
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.graph.preprocess import sli_column
from llmrca.model import Case, Ranking


@dataclass
class CircaConfig(Config):
    option_choices: ClassVar[dict[str, tuple[str, ...]]] = {"graph": ("auto", "call", "pc")}
    #: "auto": the call graph when the case has one, else PC; "call": the call graph (error without one); "pc": PC.
    graph: str = "auto"
    #: PC significance level and depth limit (max conditioning-set size; -1 = unlimited).
    alpha: float = 0.05
    pc_depth: int = 3
    #: lags of the parents in the regression (the paper's tau_max).
    tau_max: int = 0
    #: descendant adjustment (paper Sec. 4.3) and its anomaly threshold on the z-score.
    descendant_adjustment: bool = True
    da_threshold: float = 3.0
    #: stop PC (DiscoveryTimeout, a TimeoutError) after this many seconds.
    time_budget_s: float = 120.0
    #: reproduce RCAEval 1.8.1's circa (see the module docstring); overrides the options above.
    reference_mode: str | None = None  # None: the paper's algorithm; "rcaeval": RCAEval 1.8.1


class Circa(Method):
    """CIRCA (Li et al., KDD 2022): regression-based hypothesis testing + descendant adjustment."""

    name = "circa"
    config_cls = CircaConfig

    def _rank(self, case: Case) -> Ranking:
        cfg: CircaConfig = self.config  # type: ignore[assignment]
        if cfg.graph not in {"auto", "call", "pc"}:
            raise ValueError(f"circa: graph must be 'auto', 'call' or 'pc', got {cfg.graph!r}")
        w = windows(case, min_normal=3, what="circa")
        cols = w.columns
        if check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",)):
            return self._rank_reference(case, w)
        edges = call_graph_metric_edges(case, cols) if cfg.graph in {"auto", "call"} else None
        if edges is None and cfg.graph == "call":
            raise ValueError("circa: graph='call' but the case has no call graph; use graph='auto' or 'pc'")
        source = "call graph"
        if edges is None:
            edges = pc_edges(_standardise(w).to_numpy(), cols, alpha=cfg.alpha, depth=cfg.pc_depth, budget_s=cfg.time_budget_s, what="circa (PC)")
            source = "pc"
        g = nx.DiGraph()
        g.add_nodes_from(cols)
        g.add_edges_from(edges)
        z = {c: _rht_score(w, c, list(g.predecessors(c)), cfg.tau_max) for c in cols}
        final = _descendant_adjust(g, z, cfg.da_threshold) if cfg.descendant_adjustment else dict(z)
        expl = {"graph": source, "edges": len(edges), "sli": sli_column(case, cols), "reference": False}
        order = sorted(cols, key=lambda c: (-final[c], -z[c]))
        return Ranking.from_metric_scores([(c, final[c]) for c in order], candidates=case.components, explanation=expl)

    def _rank_reference(self, case: Case, w: Windows) -> Ranking:
        cols = w.columns
        cfg: CircaConfig = self.config  # type: ignore[assignment]
        edges = pc_edges(w.frame.to_numpy(), cols, alpha=0.05, depth=-1, budget_s=cfg.time_budget_s, what="circa reference (PC)")
        g = nx.DiGraph()
        # RCAEval builds the graph from edges only (isolated metrics are not scored) and reverses it
        for a, b in edges:
            g.add_edge(b, a)
        series = _reference_series(w, case.inject_time)
        nodes = [n for n in g.nodes if n in series]
        scores: list[tuple[str, float]] = []
        for n in nodes:
            parents = [p for p in g.predecessors(n) if p in series]
            y = series[n]
            x = np.column_stack([series[p] for p in parents]) if parents else np.zeros((len(y), 0))
            train, test = slice(0, _REF_TRAIN), slice(len(y) - _REF_TEST, len(y))
            scores.append((n, _residual_z(x[train], y[train], x[test], y[test])))
        scores.sort(key=lambda t: -t[1])  # stable: ties keep graph order, as the reference does
        expl = {"graph": "pc", "edges": len(edges), "reference": True, "unscored": [c for c in cols if c not in g]}
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)


# RCAEval's CIRCA windows: 1 s resolution, 120 s look-up, 10 s detection window, 300 s after the detection time
_REF_LOOKUP_S, _REF_DETECT, _REF_AFTER_S = 120, 10, 300
_REF_TRAIN = _REF_LOOKUP_S - _REF_DETECT + 1
_REF_TEST = _REF_DETECT


def _reference_series(w: Windows, inject: float) -> dict[str, np.ndarray]:
    """Series on RCAEval's 1 s grid over [inject-120, inject+300], constant ones dropped."""
    start, end = inject - _REF_LOOKUP_S, inject + _REF_AFTER_S
    keep = (w.time >= start) & (w.time <= end)
    idx = pd.to_datetime(np.concatenate([w.time[keep], [start, end]]), unit="s", utc=True)
    length = int(end - start) + 1
    out: dict[str, np.ndarray] = {}
    for c in w.columns:
        vals = np.concatenate([w.frame[c].to_numpy()[keep], [np.nan, np.nan]])
        s = pd.Series(vals, index=idx).sort_index(kind="stable").resample("1s", origin="start").mean()
        s = s.interpolate(method="time", limit_direction="both").bfill()
        v = s.to_numpy()[:length]
        if len(np.unique(v)) > 1:
            out[c] = v
    return out


def _standardise(w: Windows) -> pd.DataFrame:
    sd = w.frame.std(ddof=0).replace(0, 1.0)
    return (w.frame - w.frame.mean()) / sd


def _residual_z(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray) -> float:
    """Largest |z| of the test residuals under the training residuals' normal distribution."""
    if train_x.shape[1]:
        reg = LinearRegression().fit(train_x, train_y)
        train_y = train_y - reg.predict(train_x)
        test_y = test_y - reg.predict(test_x)
    mu, sd = float(np.mean(train_y)), float(np.std(train_y))
    sd = sd if sd > 0 else 1.0  # scikit-learn's StandardScaler convention for a constant training set
    return float(np.max(np.abs((test_y - mu) / sd)))


def _lagged(x: np.ndarray, tau: int) -> np.ndarray:
    """[x_t, x_{t-1}, ..., x_{t-tau}] per row, rows without full history dropped."""
    n = len(x)
    return np.hstack([x[tau - k : n - k] for k in range(tau + 1)]) if x.shape[1] else np.zeros((n - tau, 0))


def _rht_score(w: Windows, node: str, parents: list[str], tau: int) -> float:
    y = w.frame[node].to_numpy()
    split = w.n_normal - tau
    if split < 2:  # checked before the lags are built: a tau_max beyond the window has no rows at all
        raise ValueError(
            f"circa: tau_max={tau} leaves fewer than 2 of the {w.n_normal} normal samples; give tau_max at most {max(w.n_normal - 2, 0)}"
        )
    x = w.frame[parents].to_numpy() if parents else np.zeros((len(y), 0))
    xl, yl = _lagged(x, tau), y[tau:]
    return _residual_z(xl[:split], yl[:split], xl[split:], yl[split:])


def _descendant_adjust(g: nx.DiGraph, z: dict[str, float], threshold: float) -> dict[str, float]:
    """Add to each anomalous node the largest score among its children, looking through normal children."""
    child_scores: dict[str, dict[str, float]] = {}
    order = list(nx.topological_sort(g)) if nx.is_directed_acyclic_graph(g) else list(g.nodes)

    def gather(n: str, seen: set[str]) -> dict[str, float]:
        if n in child_scores:
            return child_scores[n]
        out: dict[str, float] = {}
        for ch in g.successors(n):
            if ch in seen:
                continue
            out[ch] = z[ch]
            if z[ch] < threshold:  # a normal child passes its own descendants' evidence up
                out.update(gather(ch, seen | {ch}))
        child_scores[n] = out
        return out

    final = dict(z)
    for n in reversed(order):
        if z[n] >= threshold:
            cs = gather(n, {n})
            if cs:
                final[n] = z[n] + max(cs.values())
    return final


__all__ = ["Circa", "CircaConfig"]
