"""TraceRCA: anomalous invocations, then suspicious microservice-set mining over traces.

Zeyan Li, Junjie Chen, Rui Jiao, Nengwen Zhao, Zhijun Wang, Shuwei Zhang,
Yanjun Wu, Long Jiang, Leiqin Yan, Zikai Wang, Zhekang Chen, Wenchi Zhang,
Xiaohui Nie, Kaixin Sui, Dan Pei.  "Practical Root Cause Localization for
Microservice Systems via Trace Analysis."  IWQoS 2021.

1. **Invocation anomaly detection.**  An invocation is a span with its
   caller (the parent span's service).  Its normal latency profile is the
   mean and standard deviation of the spans of the same (caller, operation)
   before the injection; a window invocation is anomalous when it is slower
   than mean + ``k`` std or carries an error status.  A trace is anomalous
   when one of its invocations is.
2. **Suspicious microservice-set mining.**  The items of an anomalous trace
   are the services with an anomalous invocation in it.  For every service
   set ``S`` of up to ``max_set_size`` services: support = share of
   anomalous traces whose items contain ``S``; confidence = share of the
   window traces that involve all of ``S`` and are anomalous.  Sets below
   ``min_support`` are discarded (the paper's frequent-pattern filter);
   the rest are scored by the harmonic mean of support and confidence (JI).
3. **Ranking.**  A service's score is the best JI of a kept set containing
   it; ties go to the service with the larger share of anomalous
   invocations among its own window invocations.

Services that no kept set contains were filtered out by the method: they
follow the ranked ones with score -inf and the explanation lists them under
``not_found`` — the paper's "Not Found" situations.  The paper found
TraceRCA blames the gateway on LLM serving (every anomalous trace passes
through it); we reproduce the algorithm, not a fix.

``reference_mode="rcaeval"`` follows RCAEval 1.8.1's port instead: anomalies
per span (duration ≥ its operation's mean + 3 std), support and confidence
per operation over anomalous spans, JI, no support filter.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.errors import MethodUnavailable
from llmrca.methods.base import Method
from llmrca.methods.common.traces import map_services, operation_slo, prepare_spans, split_at, split_traces_at
from llmrca.model import Case, Ranking


@dataclass
class TraceRCAConfig(Config):
    k: float = 3.0  # invocation anomaly: slower than mean + k * std of its (caller, operation)
    min_support: float = 0.1  # discard service sets in fewer than this share of anomalous traces
    max_set_size: int = 2  # largest service set mined
    reference_mode: str | None = None  # None: the paper's algorithm; "rcaeval": the reference port


def _ji(support: float, confidence: float) -> float:
    return 0.0 if support + confidence == 0 else 2.0 * support * confidence / (support + confidence)


class TraceRCA(Method):
    """TraceRCA (Li et al., IWQoS 2021); see the module doc."""

    name = "tracerca"
    config_cls = TraceRCAConfig

    def _spans(self, case: Case) -> tuple[pd.DataFrame, pd.DataFrame]:
        assert case.traces is not None
        spans = prepare_spans(case.traces)
        comp = map_services(spans, case.components)
        spans = spans[comp.notna()].copy()
        spans["component"] = comp[comp.notna()]
        # the paper keeps traces whole; RCAEval's port splits spans at the injection
        split = split_traces_at if self.config.reference_mode is None else split_at
        before, window = split(spans, case.inject_time)
        if before.empty or window.empty:
            raise MethodUnavailable(f"tracerca needs spans before and after the injection (has {len(before)} and {len(window)})")
        return before, window

    def _rank(self, case: Case) -> Ranking:
        mode = self.config.reference_mode
        if mode is None:
            return self._rank_paper(case)
        if mode == "rcaeval":
            return self._rank_rcaeval(case)
        raise ValueError(f"tracerca: reference_mode must be null (the paper) or 'rcaeval', got {mode!r}")

    def _rank_paper(self, case: Case) -> Ranking:
        cfg = self.config
        before, window = self._spans(case)

        def invocation_key(df: pd.DataFrame) -> pd.Series:
            key = df["traceID"] + "\x00" + df["spanID"]
            svc = pd.Series(df["component"].to_numpy(), index=key.to_numpy())
            svc = svc[~svc.index.duplicated()]
            caller = (df["traceID"] + "\x00" + df["parentSpanID"]).map(svc).fillna("<client>")
            return caller + "->" + df["operation"]

        b_key = invocation_key(before)
        w_key = invocation_key(window)
        prof = before.assign(inv=b_key.to_numpy()).groupby("inv")["duration"].agg(["mean", "std"]).fillna(0.0)
        mean = w_key.map(prof["mean"])
        std = w_key.map(prof["std"])
        slow = (window["duration"] > mean + cfg.k * std).fillna(False).to_numpy()
        anomalous_inv = slow | window["error"].to_numpy(dtype=bool)
        w = window.assign(anom=anomalous_inv)
        anom_traces = set(w.loc[w["anom"], "traceID"])
        if not anom_traces:
            raise ValueError("tracerca: no anomalous invocation in the anomalous window; nothing to localise")
        items = w[w["anom"]].groupby("traceID")["component"].agg(lambda s: frozenset(s))
        involved = w.groupby("traceID")["component"].agg(lambda s: frozenset(s))
        n_a = len(anom_traces)
        support_count: Counter[frozenset[str]] = Counter()
        for it in items:
            for size in range(1, min(cfg.max_set_size, len(it)) + 1):
                for combo in combinations(sorted(it), size):
                    support_count[frozenset(combo)] += 1
        sets = []
        for s_, cnt in support_count.items():
            support = cnt / n_a
            contains = [t for t, inv in involved.items() if s_ <= inv]
            confidence = sum(t in anom_traces for t in contains) / len(contains) if contains else 0.0
            sets.append((s_, support, confidence, _ji(support, confidence)))
        kept = [x for x in sets if x[1] >= cfg.min_support]
        own_ratio = w.groupby("component")["anom"].mean()
        best: dict[str, float] = {}
        for s_, _sup, _conf, ji in kept:
            for c in s_:
                best[c] = max(best.get(c, 0.0), ji)
        # JI first, own anomalous-invocation share breaks ties (scaled far below JI steps)
        scores = {c: best[c] + 1e-6 * float(own_ratio.get(c, 0.0)) for c in best}
        ranked = sorted(scores, key=lambda c: -scores[c])
        not_found = [c for c in case.components if c not in scores]
        for c in not_found:
            scores[c] = float("-inf")
        kept_sorted = sorted(kept, key=lambda x: -x[3])
        expl = {
            "mode": "paper",
            "anomalous_traces": n_a,
            "window_traces": int(w["traceID"].nunique()),
            "suspicious_sets": [{"services": sorted(s_), "support": sup, "confidence": conf, "ji": ji} for s_, sup, conf, ji in kept_sorted[:20]],
            "ranked": ranked,
            "not_found": not_found,
            "note": "services in not_found were filtered out by the support filter or had no anomalous invocation; they are appended at the end",
        }
        return Ranking.from_component_scores({c: scores[c] for c in [*ranked, *not_found]}, explanation=expl)

    def _rank_rcaeval(self, case: Case) -> Ranking:
        before, window = self._spans(case)
        slo = operation_slo(before)
        mean = window["operation"].map(slo["mean"])
        std = window["operation"].map(slo["std"])
        abnormal = (window["duration"] >= mean + 3.0 * std).fillna(False)
        total_abn = float(abnormal.sum())
        g = pd.DataFrame({"op": window["operation"], "abn": abnormal.astype(float)}).groupby("op")["abn"]
        support = g.sum() / total_abn if total_abn else g.sum() * np.nan
        confidence = g.mean()
        ji = 2 * support * confidence / (support + confidence)
        scores = {f"{op}": float(v) for op, v in ji.items() if np.isfinite(v)}
        not_found = [c for c in case.components if not any(k.partition("_")[0] == c for k in scores)]
        expl = {"mode": "rcaeval", "abnormal_spans": int(total_abn), "ji": scores, "not_found": not_found}
        return Ranking.from_metric_scores(scores, candidates=case.components, explanation=expl)
