"""PDiagnose: per-source anomaly counts from metrics, logs and traces, combined by vote.

Chuanjia Hou, Tong Jia, Yifan Wu, Ying Li, Jing Han.  "Diagnosing
Performance Issues in Microservices with Heterogeneous Data Source."
ISPA/BDCloud/SocialCom/SustainCom 2021 (called PDiagnose; the brief's title
"PDiagnose: Diagnosing Intermittent Performance Problems via Log, Metric and
Trace").

Each source is analysed on its own, then the sources vote:

* **metrics** — per component, the number of anomalous-window points of its
  metrics beyond the normal mean ± ``k`` standard deviations;
* **logs** — per component, the error lines (error / fail / exception ...)
  in the anomalous window beyond what the normal window's error rate
  predicts for a window of that length;
* **traces** — per component, the window spans slower than their
  operation's normal mean + ``k`` std, plus spans with an error status.

Each source's counts are normalised by that source's largest count, so a
source gives each component a vote in [0, 1]; the votes are summed with
``weights`` (metrics, logs, traces).  Missing sources are listed in the
explanation and simply do not vote.  The paper's per-source detectors
(KDE for metrics, log templates) are replaced by these k-sigma and keyword
rules, as in RCAEval's port.

``reference_mode="rcaeval"`` follows RCAEval 1.8.1's port: upward
exceedances only, error lines counted over the *whole* log (before and
after the injection), span exceedances without error statuses, raw counts
times 5 summed without normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.methods.base import Method, none_usable
from llmrca.methods.common.anomaly import sigma_exceedances
from llmrca.methods.common.logs import error_line_counts
from llmrca.methods.common.timeutil import to_epoch_seconds
from llmrca.methods.common.traces import map_services, operation_slo, prepare_spans, split_at
from llmrca.methods.common.windows import split_frame
from llmrca.model import Case, Ranking, split_column


@dataclass
class PDiagnoseConfig(Config):
    k: float = 3.0  # k-sigma rule for metric points and span durations
    weight_metrics: float = 1.0
    weight_logs: float = 1.0
    weight_traces: float = 1.0
    use_logs: bool = True
    use_traces: bool = True
    reference_mode: str | None = None  # None: the paper's algorithm; "rcaeval": the reference port


class PDiagnose(Method):
    """PDiagnose (Hou et al., 2021); see the module doc."""

    name = "pdiagnose"
    config_cls = PDiagnoseConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        if cfg.reference_mode not in {None, "rcaeval"}:
            raise ValueError(f"pdiagnose: reference_mode must be null (the paper) or 'rcaeval', got {cfg.reference_mode!r}")
        ref = cfg.reference_mode == "rcaeval"
        comps = case.components
        counts: dict[str, dict[str, float]] = {}
        missing: dict[str, str] = {}

        # metrics
        m = case.metrics
        exc = sigma_exceedances(*split_frame(m, case.inject_time), k=cfg.k, upper_only=ref)
        mc = dict.fromkeys(comps, 0.0)
        for col, v in exc.items():
            c = split_column(col)[0]
            if c in mc:
                mc[c] += float(v)
        counts["metrics"] = mc

        # logs
        if not cfg.use_logs:
            missing["logs"] = "disabled by configuration"
        elif case.logs is None or case.logs.empty:
            missing["logs"] = "the case has no logs" + none_usable(case, "logs.csv")
        else:
            if ref:
                counts["logs"] = {c: float(v) for c, v in error_line_counts(case.logs, comps).items()}
            else:
                t = to_epoch_seconds(case.logs["time"].to_numpy())
                t0 = float(min(np.nanmin(t), m["time"].iloc[0]))
                t1 = float(max(np.nanmax(t), m["time"].iloc[-1]))
                before = error_line_counts(case.logs, comps, end_s=case.inject_time)
                after = error_line_counts(case.logs, comps, start_s=case.inject_time)
                span_before = max(case.inject_time - t0, 1e-9)
                span_after = max(t1 - case.inject_time, 1e-9)
                counts["logs"] = {c: max(0.0, after[c] - before[c] * span_after / span_before) for c in comps}

        # traces
        if not cfg.use_traces:
            missing["traces"] = "disabled by configuration"
        elif case.traces is None or case.traces.empty:
            missing["traces"] = "the case has no traces" + none_usable(case, "traces.csv")
        else:
            spans = prepare_spans(case.traces)
            spans["component"] = map_services(spans, comps)
            spans = spans[spans["component"].notna()]
            normal, window = split_at(spans, case.inject_time)
            slo = operation_slo(normal)
            mean = window["operation"].map(slo["mean"])
            std = window["operation"].map(slo["std"])
            k = 3.0 if ref else cfg.k
            hit = (window["duration"] >= mean + k * std).fillna(False)
            if not ref:
                hit = hit | window["error"].astype(bool)
            tc = pd.Series(hit.to_numpy(dtype=float), index=window["component"].to_numpy()).groupby(level=0).sum()
            counts["traces"] = {c: float(tc.get(c, 0.0)) for c in comps}

        weights = {"metrics": cfg.weight_metrics, "logs": cfg.weight_logs, "traces": cfg.weight_traces}
        total = dict.fromkeys(comps, 0.0)
        votes: dict[str, dict[str, float]] = {}
        for src, cnt in counts.items():
            if ref:
                vote = {c: 5.0 * v for c, v in cnt.items()}
            else:
                top = max(cnt.values(), default=0.0)
                vote = {c: (v / top if top > 0 else 0.0) * weights[src] for c, v in cnt.items()}
            votes[src] = vote
            for c, v in vote.items():
                total[c] += v
        expl = {
            "mode": cfg.reference_mode,
            "sources_used": list(counts),
            "sources_missing": missing,
            "counts": counts,
            "votes": votes,
        }
        return Ranking.from_component_scores(total, explanation=expl)
