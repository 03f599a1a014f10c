"""MM-BARO: BARO's robust scoring over metrics, log counts and trace series together.

Luan Pham, Huong Ha, Hongyu Zhang.  "BARO: Robust Root Cause Analysis for
Microservices via Multivariate Bayesian Online Change Point Detection."
FSE 2024 — multi-source variant as evaluated in RCAEval (Pham et al.,
"RCAEval: A Benchmark for Root Cause Analysis of Microservice Systems with
Telemetry Data", WWW 2025 companion).

Every source becomes time series on the metrics' grid: the metrics
themselves, log counts per component (``<c>_log-count``,
``<c>_log-error-count``; :mod:`llmrca.methods.common.logs`) and trace series
per component (span latency p50 / p90 and error counts;
:mod:`llmrca.methods.common.traces`).  Series constant over the whole window
are dropped.  Each series is scored by BARO's robust scorer
(:func:`llmrca.methods.common.anomaly.robust_scores`: the maximum of
``(x - median) / IQR`` over the anomalous window, median and IQR from the
normal window) and metrics are ranked by score; a component ranks where its
best series does.  The injection time is given (as in the paper's protocol),
so BARO's Bayesian online change-point detection, which estimates it, is
not needed.

The method uses the sources the case has and lists the missing ones in its
explanation; with metrics only it is BARO.  ``absolute`` scores downward
deviations too (the reference ranks upward ones only).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from llmrca.config import Config
from llmrca.methods.base import Method
from llmrca.methods.common.anomaly import finite, robust_scores
from llmrca.methods.common.options import check_reference_mode
from llmrca.methods.common.scaling import rcaeval_scores, rcaeval_varies
from llmrca.methods.common.windows import split_frame
from llmrca.methods.multisource._sources import collect_sources
from llmrca.model import Case, Ranking


@dataclass
class MMBaroConfig(Config):
    use_logs: bool = True
    use_traces: bool = True
    absolute: bool = False  # score |deviation| instead of upward deviation
    #: A zero spread: "relative" (house convention, as BARO) or "unit" (scikit-learn, as RCAEval).
    zero_spread: str = "relative"
    #: None: as above; "rcaeval": RCAEval 1.8.1's ``mmbaro`` (``RCAEval/e2e/baro.py``) as the paper ran it:
    #: metric series constant in the normal or the anomalous window dropped (RCAEval also keeps only every
    #: 15th metric row, meant for its 1-s data; on 5-s data with a 1-min fault that leaves one anomalous row,
    #: which drop_constant removes, so the paper, whose MM-BARO equals BARO on three faults, cannot have
    #: kept it); log counts per component (no error counts) dropped only when constant over the whole case;
    #: no trace series (RCAEval uses them for its own two multi-source datasets only); scikit-learn's
    #: RobustScaler (zero spread 1) and the signed maximum (:func:`llmrca.methods.common.scaling.rcaeval_scores`)
    reference_mode: str | None = None


class MMBaro(Method):
    """MM-BARO (Pham et al., FSE 2024, multi-source as in RCAEval); see the module doc."""

    name = "mm-baro"
    config_cls = MMBaroConfig

    def _rank(self, case: Case) -> Ranking:
        cfg = self.config
        ref = check_reference_mode(self.name, cfg.reference_mode, ("rcaeval",))
        if ref:
            return self._rank_rcaeval(case)
        src = collect_sources(case, use_logs=cfg.use_logs, use_traces=cfg.use_traces)
        scores: list[pd.Series] = []
        per_source: dict[str, int] = {}
        for name, frame in src.frames.items():
            data = frame.drop(columns=["time"])
            data = data.loc[:, data.nunique(dropna=True) > 1]
            per_source[name] = data.shape[1]
            if data.empty:
                continue
            data = data.assign(time=frame["time"])
            normal, anomal = split_frame(data, case.inject_time)
            s = robust_scores(normal, anomal, absolute=cfg.absolute, zero_spread=cfg.zero_spread)
            scores.append(finite(s))
        if not scores:
            raise ValueError("mm-baro: every series is constant; nothing to score")
        allscores = pd.concat(scores)
        expl = {
            "sources_used": src.used(),
            "sources_missing": src.missing,
            "series_per_source": per_source,
            "notes": src.notes,
            "top_series": [[k, float(v)] for k, v in allscores.sort_values(ascending=False, kind="stable").head(10).items()],
        }
        return Ranking.from_metric_scores(list(allscores.items()), candidates=case.components, explanation=expl)

    def _rank_rcaeval(self, case: Case) -> Ranking:
        """RCAEval 1.8.1's ``mmbaro`` on this case (see :attr:`MMBaroConfig.reference_mode`)."""
        cfg = self.config
        metrics = case.metrics
        cols = [c for c in metrics.columns if c != "time"]
        normal, anomal = split_frame(metrics, case.inject_time)
        parts = [pd.Series(rcaeval_scores(normal[cols].to_numpy(dtype=float), anomal[cols].to_numpy(dtype=float), robust=True), index=cols)]
        src = collect_sources(case, use_logs=cfg.use_logs, use_traces=False)
        logs = src.frames.get("logs")
        n_logs = 0
        if logs is not None:
            lcols = [c for c in logs.columns if c.endswith("_log-count")]
            # RCAEval drops constant log series over the whole case only, not per window
            keep = rcaeval_varies(logs[lcols].to_numpy(dtype=float))
            n_logs = int(keep.sum())
            if n_logs:
                ln, la = split_frame(logs, case.inject_time)
                raw = rcaeval_scores(ln[lcols].to_numpy(dtype=float), la[lcols].to_numpy(dtype=float), robust=True, per_window=False)
                parts.append(pd.Series(raw, index=lcols)[keep])
        allscores = finite(pd.concat(parts))
        expl = {
            "reference_mode": cfg.reference_mode,
            "sources_used": ["metrics", *(["logs"] if n_logs else [])],
            "series_per_source": {"metrics": len(cols), "logs": n_logs},
            "top_series": [[k, float(v)] for k, v in allscores.sort_values(ascending=False, kind="stable").head(10).items()],
        }
        return Ranking.from_metric_scores(list(allscores.items()), candidates=case.components, explanation=expl)
