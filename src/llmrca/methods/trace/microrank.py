"""MicroRank: trace–operation PageRank plus spectrum analysis over anomalous and normal traces.

Guangba Yu, Pengfei Chen, Hongyang Chen, Zijie Guan, Zicheng Huang, Linxiao
Jing, Tianjun Weng, Xinmeng Sun, Xiaoyun Li.  "MicroRank: End-to-End Latency
Issue Localization with Extended Spectrum Analysis in Microservice
Environments."  WWW 2021.

1. **Anomalous traces.**  Each operation's normal mean and standard
   deviation come from the spans that ended before the injection.  A trace
   of the anomalous window is anomalous when its latency (the sum of its
   span durations) exceeds its expected latency, the sum over its spans of
   ``mean + k * std`` of their operations; the other traces of the window
   are the normal set.  Operations never seen before the injection add
   their own duration to the expectation (they cannot be judged).
2. **PageRank** on the operation–trace graph, once for the anomalous and
   once for the normal traces: operations call operations, traces cover
   operations; the preference vector favours rare trace types (the normal
   set: ∝ 1 / traces of the same type) and, for the anomalous set, also
   traces with few operations (the mean of both normalised preferences).
   Iteration as in the paper: ``s = d (P_sr r + a P_ss s)``,
   ``r = d P_rs s + (1 - d) v``, normalised by the maximum, ``iterations``
   rounds.
3. **Extended spectrum**: ``ef = w_a(o) n_ef``, ``nf = w_a(o) (|A| - n_ef)``,
   ``ep = w_n(o) n_ep``, ``np = w_n(o) (|N| - n_ep)`` with ``w`` the
   PageRank weights and ``n`` the trace counts; operations are ranked by a
   spectrum formula (``dstar2`` by default; ``ochiai``, ``jaccard``,
   ``tarantula``, ...), services by their best operation.

The paper found MicroRank blames the gateway on LLM serving: every trace
passes through it.  We reproduce the algorithm, not a fix.  Components
without spans follow with score -inf.

``reference_mode="rcaeval"`` follows RCAEval 1.8.1's port: a trace is
anomalous when any of its window spans is slower than its operation's mean
+ 3 std, the normal PageRank graph is built from the spans before the
injection and the anomalous one from all spans of the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.traces import map_services, operation_slo, prepare_spans, split_at, split_traces_at
from llmrca.methods.trace._spectrum import FORMULAS, suspiciousness
from llmrca.model import Case, Ranking


@dataclass
class MicroRankConfig(Config):
    k: float = 3.0  # expected latency: mean + k * std per operation
    spectrum: str = "dstar2"  # spectrum formula
    damping: float = 0.85  # PageRank damping d
    call_weight: float = 0.01  # weight a of the operation-call matrix in the update
    iterations: int = 25  # PageRank rounds (the paper's fixed count)
    reference_mode: str | None = None  # None: the paper's algorithm; "rcaeval": the reference port


def trace_pagerank(spans: pd.DataFrame, anomalous: bool, d: float, a: float, iterations: int) -> tuple[dict[str, float], dict[str, int]]:
    """PageRank weight of each operation over the traces in ``spans``, and how many traces cover it."""
    ops = sorted(spans["operation"].unique())
    traces = list(dict.fromkeys(spans["traceID"]))
    oi = {o: i for i, o in enumerate(ops)}
    ti = {t: i for i, t in enumerate(traces)}
    n_o, n_t = len(ops), len(traces)
    o_idx = spans["operation"].map(oi).to_numpy()
    t_idx = spans["traceID"].map(ti).to_numpy()
    cover = np.zeros((n_o, n_t))
    cover[o_idx, t_idx] = 1.0
    # operation call graph: parent operation -> child operation
    key = spans["traceID"] + "\x00" + spans["spanID"]
    op_of = pd.Series(spans["operation"].to_numpy(), index=key.to_numpy())
    op_of = op_of[~op_of.index.duplicated()]
    parent_key = spans["traceID"] + "\x00" + spans["parentSpanID"]
    parent_op = parent_key.map(op_of)
    calls = np.zeros((n_o, n_o))
    has_parent = parent_op.notna().to_numpy()
    child_idx = np.array([oi[o] for o in spans["operation"].to_numpy()[has_parent]], dtype=int)
    par_idx = np.array([oi[o] for o in parent_op[has_parent]], dtype=int)
    calls[child_idx, par_idx] = 1.0  # calls[child, parent]
    n_children = calls.sum(axis=0)
    p_ss = np.divide(calls, n_children[None, :], out=np.zeros_like(calls), where=n_children[None, :] > 0)
    ops_per_trace = cover.sum(axis=0)
    p_sr = cover / np.where(ops_per_trace > 0, ops_per_trace, 1.0)[None, :]
    traces_per_op = cover.sum(axis=1)
    p_rs = (cover / np.where(traces_per_op > 0, traces_per_op, 1.0)[:, None]).T
    # trace types: traces covering the same set of operations
    _, type_id, type_count = np.unique(cover.T, axis=0, return_inverse=True, return_counts=True)
    kind = type_count[np.ravel(type_id)].astype(float)
    v_type = (1.0 / kind) / np.sum(1.0 / kind)
    if anomalous:
        span_count = np.bincount(t_idx, minlength=n_t).astype(float)
        v_len = (1.0 / span_count) / np.sum(1.0 / span_count)
        v = 0.5 * v_type + 0.5 * v_len
    else:
        v = v_type
    s = np.full(n_o, 1.0 / (n_o + n_t))
    r = np.full(n_t, 1.0 / (n_o + n_t))
    for _ in range(iterations):
        s_new = d * (p_sr @ r + a * (p_ss @ s))
        r_new = d * (p_rs @ s) + (1.0 - d) * v
        s = s_new / max(float(np.max(s_new)), 1e-300)
        r = r_new / max(float(np.max(r_new)), 1e-300)
    s = s / max(float(np.max(s)), 1e-300)
    weight = s * s.sum() / n_o
    return {o: float(weight[oi[o]]) for o in ops}, {o: int(traces_per_op[oi[o]]) for o in ops}


class MicroRank(Method):
    """MicroRank (Yu et al., WWW 2021); see the module doc."""

    name = "microrank"
    config_cls = MicroRankConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if cfg.spectrum not in FORMULAS:
            raise ValueError(f"microrank: unknown spectrum {cfg.spectrum!r}; use one of {FORMULAS}")
        if cfg.reference_mode not in {None, "rcaeval"}:
            raise ValueError(f"microrank: reference_mode must be null (the paper) or 'rcaeval', got {cfg.reference_mode!r}")
        assert case.traces is not None
        spans = prepare_spans(case.traces)
        comp = map_services(spans, case.components)
        spans = spans[comp.notna()].copy()
        spans["operation"] = comp[comp.notna()] + "_" + spans["operation"].str.partition("_")[2]
        # the paper keeps traces whole; RCAEval's port splits spans at the injection
        split = split_traces_at if cfg.reference_mode is None else split_at
        before, window = split(spans, case.inject_time)
        if before.empty or window.empty:
            raise MethodUnavailable(f"microrank needs spans before and after the injection (has {len(before)} and {len(window)})")
        slo = operation_slo(before)
        mean = window["operation"].map(slo["mean"])
        std = window["operation"].map(slo["std"])
        if cfg.reference_mode is None:
            expected = (mean + cfg.k * std).fillna(window["duration"])
            per_trace = pd.DataFrame({"t": window["traceID"], "real": window["duration"], "exp": expected}).groupby("t", sort=False).sum()
            anom_ids = set(per_trace.index[per_trace["real"] > per_trace["exp"]])
            a_spans = window[window["traceID"].isin(anom_ids)]
            n_spans = window[~window["traceID"].isin(anom_ids)]
            n_anom, n_norm = len(anom_ids), window["traceID"].nunique() - len(anom_ids)
        else:
            slow = (window["duration"] >= mean + 3.0 * std).fillna(False)
            anom_ids = set(window.loc[slow, "traceID"])
            a_spans, n_spans = window, before
            n_anom = len(anom_ids)
            n_norm = window.loc[~slow, "traceID"].nunique()
        if n_anom == 0:
            raise ValueError("microrank: no anomalous trace in the anomalous window (no trace slower than expected); nothing to localise")
        w_a, c_a = trace_pagerank(a_spans, True, cfg.damping, cfg.call_weight, cfg.iterations)
        if n_spans.empty:
            w_n, c_n = {}, {}
        else:
            w_n, c_n = trace_pagerank(n_spans, False, cfg.damping, cfg.call_weight, cfg.iterations)
        ops = list(dict.fromkeys([*w_a, *w_n]))
        # RCAEval's port puts 1e-7 where an operation is missing from one graph; the paper's
        # counts are simply zero there (our formulas treat 0/0 as 0)
        eps = 1e-7 if cfg.reference_mode == "rcaeval" else 0.0
        ef = np.array([w_a[o] * c_a[o] if o in w_a else eps for o in ops])
        nf = np.array([w_a[o] * (n_anom - c_a[o]) if o in w_a else eps for o in ops])
        ep = np.array([w_n[o] * c_n[o] if o in w_n else eps for o in ops])
        np_ = np.array([w_n[o] * (n_norm - c_n[o]) if o in w_n else eps for o in ops])
        sus = suspiciousness(ef, ep, nf, np_, cfg.spectrum)
        # a zero denominator gives +inf; keep the order finite (Ranking treats inf as missing)
        sus = np.where(np.isposinf(sus), 1e12 * (1.0 + ef), sus)
        scores = {o: float(s) for o, s in zip(ops, sus, strict=True)}
        expl = {
            "mode": cfg.reference_mode,
            "anomalous_traces": n_anom,
            "normal_traces": n_norm,
            "spectrum": cfg.spectrum,
            "operations": {o: {"ef": float(ef[i]), "ep": float(ep[i]), "nf": float(nf[i]), "np": float(np_[i]), "score": scores[o]} for i, o in enumerate(ops)},
        }
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)
