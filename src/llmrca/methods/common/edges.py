"""Anomalous-edge detection on the call graph (shared by the topology methods).

An edge ``a -> b`` (a calls b) is judged by the latency of the calls it
carries.  Cases rarely have per-edge latency, so by default an edge's latency
is the callee's latency column (p90 preferred, then p95, p99, mean, p50; any
exporter's name, read through :mod:`llmrca.telemetry.vocabulary`): the callee's response time is what
the caller waits for.  A case that does carry per-edge series may name them
``<a>_latency-to-<b>`` and they are used instead.

Two detectors:

* ``birch`` — MicroRCA's detector (Wu et al., NOMS 2020): BIRCH clustering
  (scikit-learn) of the edge's latency over the whole window, standardised by
  the normal window; an edge is anomalous when BIRCH finds more than one
  cluster *and* the anomalous window's points sit mostly outside the cluster
  holding most normal points (so one noisy spike in the normal window does not
  flag the edge);
* ``sigma`` — a robust threshold: the anomalous window's median deviates from
  the normal median by more than ``k`` normal IQR-sigmas.

Both return an :class:`EdgeAnomaly` per edge with a score (the anomalous
window's median shift in normal sigmas) so methods can also rank edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from llmrca.model import Case


@dataclass(frozen=True)
class EdgeAnomaly:
    caller: str
    callee: str
    column: str | None
    score: float
    anomalous: bool

    @property
    def edge(self) -> tuple[str, str]:
        return (self.caller, self.callee)

    def to_dict(self) -> dict[str, object]:
        return {"edge": [self.caller, self.callee], "column": self.column, "score": self.score, "anomalous": self.anomalous}


def latency_column(metrics: pd.DataFrame, component: str) -> str | None:
    """The component's latency column (p90 preferred, any exporter's name: see the metric vocabulary), or None."""
    from llmrca.methods.common.sli import latency_columns

    own = latency_columns([str(c) for c in metrics.columns], component)
    return own[0] if own else None


def edge_column(metrics: pd.DataFrame, caller: str, callee: str) -> str | None:
    """Per-edge latency column if present, else the callee's latency column."""
    own = f"{caller}_latency-to-{callee}"
    if own in metrics.columns:
        return own
    return latency_column(metrics, callee)


def _robust_sigma(x: np.ndarray) -> float:
    """IQR-based sigma (IQR / 1.349); falls back to std, then 1."""
    q1, q3 = np.nanpercentile(x, [25, 75])
    s = (q3 - q1) / 1.349
    if not np.isfinite(s) or s <= 0:
        s = float(np.nanstd(x))
    return s if np.isfinite(s) and s > 0 else 1.0


def shift_score(normal: np.ndarray, anomal: np.ndarray) -> float:
    """Median shift of the anomalous window in robust normal sigmas (absolute)."""
    if normal.size == 0 or anomal.size == 0:
        return 0.0
    return float(abs(np.nanmedian(anomal) - np.nanmedian(normal)) / _robust_sigma(normal))


def _birch_anomalous(normal: np.ndarray, anomal: np.ndarray, threshold: float) -> bool:
    from sklearn.cluster import Birch

    center = np.nanmedian(normal)
    scale = _robust_sigma(normal)
    x = (np.concatenate([normal, anomal]) - center) / scale
    x = np.nan_to_num(x, nan=0.0).reshape(-1, 1)
    labels = Birch(n_clusters=None, threshold=threshold).fit_predict(x)
    if len(np.unique(labels)) < 2:
        return False
    n_lab = labels[: normal.size]
    a_lab = labels[normal.size :]
    main = np.bincount(n_lab).argmax()
    return bool(np.mean(a_lab != main) >= 0.5)


def detect_anomalous_edges(
    case: Case,
    *,
    detector: str = "birch",
    threshold: float = 3.0,
) -> list[EdgeAnomaly]:
    """Judge every call-graph edge of ``case``; ``threshold`` is in normal sigmas.

    For ``birch`` it is the BIRCH subcluster radius on standardised latency,
    for ``sigma`` the minimum median shift.  Edges whose callee has no latency
    column are reported with ``column=None`` and never anomalous.
    """
    if detector not in {"birch", "sigma"}:
        raise ValueError(f"unknown edge detector {detector!r}; use 'birch' or 'sigma'")
    if case.topology is None:
        raise ValueError("detect_anomalous_edges needs a case with a topology")
    m = case.metrics
    before = (m["time"] < case.inject_time).to_numpy()
    out: list[EdgeAnomaly] = []
    for a, b in case.topology.edges:
        col = edge_column(m, a, b)
        if col is None:
            out.append(EdgeAnomaly(a, b, None, 0.0, False))
            continue
        v = m[col].to_numpy(dtype=float)
        normal, anomal = v[before], v[~before]
        score = shift_score(normal, anomal)
        if detector == "sigma":
            flag = score >= threshold
        else:
            flag = _birch_anomalous(normal, anomal, threshold)
        out.append(EdgeAnomaly(a, b, col, score, bool(flag)))
    return out
