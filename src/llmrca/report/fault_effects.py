"""The fault-effect figure (paper Fig. 6, extended) as a faults x signals grid.

One row per fault type present (one case of each, placed on a worker when
the dataset has one), two columns:

* left, *on the target*: the resource the fault takes (cpu -> CPU cores;
  memory -> working set; network -> bytes sent/received; gpu -> GPU
  utilisation, which is what the basic metric set sees; kv-cache -> KV-cache
  usage; gpu-thermal -> SM clock and GPU temperature; gpu-error -> replica
  healthy and the last Xid; model-load -> replica healthy and (re)starts;
  packet-loss -> TCP retransmits; noisy-neighbour -> CPU pressure and the
  node's CPU);
* right, *what it does to serving*: the target's request latency p90 (cpu,
  memory, network, model-load, packet-loss, noisy-neighbour); for gpu and
  gpu-thermal the power draw against its limit (gpu: next to the
  inter-token latency, to show what utilisation hides); for kv-cache the
  time to first token; for gpu-error the replica's errors.

The fault window is shaded.  The figure is about 4:3 (10 x 7.6 in for four
faults) so it reads inline in a report.  Reads the dataset from disk with
:func:`llmrca.dataset.io.read_case` (any layout: llmrca's, RCAEval RE1/RE2,
RCD's normal/anomalous, the paper artifact's), so it works for any backend.
Signals are chosen by *kind* through the metric vocabulary
(:mod:`llmrca.telemetry.vocabulary`), never by a spelling, so cAdvisor,
Istio, vLLM v0/v1 and DCGM names are drawn as well as ours, in canonical
units; a kind a dataset lacks is left out of its panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from llmrca.dataset.io import Dataset
from llmrca.model import ALL_FAULT_TYPES, Case
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR
from llmrca.telemetry.vocabulary import KINDS, LATENCY_KINDS, canonical_frame


@dataclass(frozen=True)
class Signal:
    """One line of a panel: the target's column of the first of ``kinds`` it has, in the kind's canonical unit times ``scale``.

    ``kinds`` are names of :data:`llmrca.telemetry.vocabulary.KINDS` in order
    of preference, so the signal is found under any exporter's name (RCAEval
    ``cpu``, cAdvisor ``container_cpu_usage_seconds_total:rate``, Istio
    ``istio_request_duration_milliseconds:p90``, vLLM v0/v1, old/new DCGM
    fields ...).  ``panel``: 0 left (the resource), 1 right (serving).
    ``fallback``: drawn only when no other signal of its panel was found.
    """

    kinds: tuple[str, ...]
    label: str
    scale: float = 1.0
    right_axis: bool = False
    panel: int = 0
    fallback: bool = False


def _s(kinds: str | tuple[str, ...], label: str, scale: float = 1.0, *, panel: int = 0, right_axis: bool = False, fallback: bool = False) -> Signal:
    return Signal((kinds,) if isinstance(kinds, str) else tuple(kinds), label, scale, right_axis, panel, fallback)


_LATENCY = _s(LATENCY_KINDS, "request latency p90 (s)", panel=1)
_NET = (
    _s("net_tx", "net tx (KB/s)", 1e-3),
    _s("net_rx", "net rx (KB/s)", 1e-3),
    _s("net", "net rx+tx (KB/s)", 1e-3, fallback=True),
)
#: drawn when a panel has none of its own signals (the basic metric set has no engine/accelerator series)
_LATENCY_FALLBACK = _s(LATENCY_KINDS, "request latency p90 (s)", panel=1, fallback=True)
#: Signals of a fault type without its own entry: the target's CPU and memory, and its latency.
DEFAULT_SIGNALS: tuple[Signal, ...] = (_s("cpu", "CPU (cores)"), _s("memory", "working set (GiB)", 1 / 2**30), _LATENCY)

#: fault type -> the signals of its two panels (left: on the target; right: what serving feels).
KEY_SIGNALS: dict[str, tuple[Signal, ...]] = {
    "cpu": (_s("cpu", "CPU (cores)"), _LATENCY),
    "memory": (_s("memory", "working set (GiB)", 1 / 2**30), _LATENCY),
    "network": (*_NET, _LATENCY),
    "disk": (_s("disk_io", "disk I/O (KB/s)", 1e-3), _LATENCY),
    "socket": (_s("sockets", "open sockets"), _LATENCY),
    "gpu": (
        _s("gpu_util", "GPU util (%)"),
        _s("power", "power (W)", panel=1),
        _s("power_limit", "power limit (W)", panel=1),
        _s(("itl_mean", "itl_p50", "itl_p90"), "inter-token latency (ms)", 1e3, panel=1, right_axis=True),
        _s(LATENCY_KINDS, "request latency p90 (s)", panel=1, fallback=True),  # the basic set has no engine/accelerator series
    ),
    "kv-cache": (
        _s("kv_cache", "KV-cache usage (%)", 100.0),
        _s(("ttft_p90", "ttft_mean", "ttft_p50"), "time to first token (s)", panel=1),
        _LATENCY_FALLBACK,
    ),
    "gpu-thermal": (
        _s("sm_clock", "SM clock (MHz)"),
        _s("gpu_temperature", "GPU temperature (C)", right_axis=True),
        _s("gpu_util", "GPU util (%)", fallback=True),
        _s("power", "power (W)", panel=1),
        _s("power_limit", "power limit (W)", panel=1),
        _LATENCY_FALLBACK,
    ),
    "gpu-error": (
        _s("replica_healthy", "replica healthy (0/1)"),
        _s("xid_errors", "Xid (last error code)", right_axis=True),
        _s(("replica_errors", "error_rate", "gateway_5xx_rate"), "errors (1/s)", panel=1),
        _LATENCY_FALLBACK,
    ),
    "model-load": (
        _s("replica_healthy", "replica healthy (0/1)"),
        _s("replica_starts", "replica starts (1/s)", right_axis=True),
        _LATENCY,
    ),
    "packet-loss": (_s("tcp_retransmits", "TCP retransmits (1/s)"), _s(("net_tx", "net"), "net tx (KB/s)", 1e-3, fallback=True), _LATENCY),
    "noisy-neighbour": (
        _s("cpu_pressure", "CPU pressure (s/s)"),
        _s("node_cpu", "node CPU (cores)", right_axis=True),
        _s("cpu", "CPU (cores)", fallback=True),
        _LATENCY,
    ),
}
_COLUMN_TITLES = ("on the target", "what it does to serving")


@dataclass(frozen=True)
class Series:
    """One drawn line: its signal, the column it was read from (the dataset's own name), minutes from injection, scaled values."""

    signal: Signal
    column: str
    t: np.ndarray
    v: np.ndarray

    def __iter__(self):  # ``sig, t, v = series`` (the shape the HTML drill-down draws)
        return iter((self.signal, self.t, self.v))


def _placement_rank(target: str) -> int:
    """0 a worker (any component that is not the gateway, the head or the operator), 1 the head, 2 the others."""
    if target == HEAD:
        return 1
    if target in (GATEWAY, OPERATOR):
        return 2
    return 0


def _one_case_per_fault(ds: Dataset) -> dict[str, Case]:
    """One injected case per fault type present: a case placed on a worker when there is one, else on the head, else any.

    Among cases of equal placement the first (in the dataset's order) is kept.
    """
    picked: dict[str, Case] = {}
    for _, case in ds.iter_cases():
        if isinstance(case, Exception) or case.fault is None or not case.fault.injected:  # a healthy case has no fault to show
            continue
        ft = case.fault.type
        if ft not in picked or _placement_rank(case.fault.target) < _placement_rank(picked[ft].fault.target):
            picked[ft] = case
    return picked


def signals_for(fault_type: str) -> tuple[Signal, ...]:
    """The key signals of a fault type (:data:`KEY_SIGNALS`, else :data:`DEFAULT_SIGNALS`)."""
    return KEY_SIGNALS.get(fault_type, DEFAULT_SIGNALS)


def _frames(case: Case) -> list[tuple[pd.DataFrame, dict[str, str]]]:
    """The case's metric frames, richest first, each in canonical names and units with the map back to the original names."""
    frames = [case.metric_sets[n] for n in ("extended", "basic") if n in case.metric_sets] or [case.metrics]
    out = []
    for df in frames:
        canon, renamed = canonical_frame(df)
        out.append((canon, renamed))
    return out


def key_series(case: Case) -> list[Series]:
    """The case's key signals on its fault's target, one :class:`Series` per signal found.

    Each signal's column is chosen through the metric vocabulary
    (:func:`llmrca.telemetry.vocabulary.canonical_frame`): the first of its
    kinds the target has, in the richest metric set that has it (extended,
    then basic), converted to the kind's canonical unit (cores, bytes, B/s,
    s, W, %) and then by the signal's ``scale``.  Times are minutes from the
    injection.  A case without a fault record gives ``[]``; a signal whose
    kinds the target lacks is left out.
    """
    if case.fault is None or not case.fault.injected:  # no fault (or a healthy case: nothing injected)
        return []
    return component_series(case, case.fault.target, signals_for(case.fault.type))


def component_series(case: Case, component: str, signals: tuple[Signal, ...] = DEFAULT_SIGNALS) -> list[Series]:
    """``signals`` of any ``component`` of ``case`` (default :data:`DEFAULT_SIGNALS`: CPU, working set, request
    latency), found and scaled as in :func:`key_series`; e.g. for a healthy case, the component methods blamed."""
    target = component
    frames = _frames(case)
    out: list[Series] = []
    for sig in signals:
        if sig.fallback and any(s.signal.panel == sig.panel for s in out):
            continue
        found = _find(frames, target, sig.kinds)
        if found is None:
            continue
        df, col, original = found
        t = (pd.to_numeric(df["time"], errors="coerce").to_numpy(dtype=float) - case.inject_time) / 60.0
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float) * sig.scale
        out.append(Series(sig, original, t, v))
    return out


def _find(frames: list[tuple[pd.DataFrame, dict[str, str]]], target: str, kinds: tuple[str, ...]) -> tuple[pd.DataFrame, str, str] | None:
    for kind in kinds:  # preference order first, then the metric sets
        for df, renamed in frames:
            col = f"{target}_{KINDS[kind].canonical}"
            if col in df.columns and "time" in df.columns:
                return df, col, renamed.get(col, col)
    return None


def fault_window_min(case: Case) -> tuple[float, float]:
    """The fault window in minutes from injection (a missing end counts as 1 min)."""
    end = (case.fault.end if case.fault and case.fault.end else case.inject_time + 60) - case.inject_time
    return 0.0, end / 60.0


@dataclass(frozen=True)
class Panel:
    """One panel of the grid: its fault type, case, column (0 left, 1 right) and the series drawn in it."""

    fault: str
    case: Case
    column: int
    series: tuple[Series, ...]


def fault_effect_panels(dataset_dir: str | Path) -> list[Panel]:
    """The panels of the fault-effect grid for ``dataset_dir``, row by row (fault types in :data:`llmrca.model.ALL_FAULT_TYPES` order, then others).

    One case per fault type present (a readable one with a fault record,
    placed on a worker when the dataset has one, else on the head, else the first),
    read with :func:`llmrca.dataset.io.read_case` through :class:`Dataset`
    (any layout).  Raises ValueError when the dataset has no readable case
    with a fault record.
    """
    ds = Dataset(dataset_dir)
    cases = _one_case_per_fault(ds)
    if not cases:
        raise ValueError(f"dataset {dataset_dir} has no readable case with a fault record; run a campaign first")
    faults = [f for f in ALL_FAULT_TYPES if f in cases] + sorted(set(cases) - set(ALL_FAULT_TYPES))
    panels = []
    for ft in faults:
        series = key_series(cases[ft])
        for j in (0, 1):
            panels.append(Panel(ft, cases[ft], j, tuple(s for s in series if s.signal.panel == j)))
    return panels


def fault_effects_figure(dataset_dir: str | Path, out_png: str | Path) -> Path:
    """Draw the grid for ``dataset_dir`` into ``out_png`` (PNG, 130 dpi); returns the PNG path.

    The panels are those of :func:`fault_effect_panels`; a panel whose
    signals the dataset lacks says so.  Raises ValueError when the dataset has
    no readable case with a fault record.
    """
    from llmrca.errors import require

    matplotlib = require("matplotlib", "report", "the fault-effect figure")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = fault_effect_panels(dataset_dir)
    n_rows = len(panels) // 2
    fig, axes = plt.subplots(n_rows, 2, figsize=(10, 1.72 * n_rows + 0.7), squeeze=False, sharex="row")
    for i, panel in enumerate(panels):
        row = axes[i // 2]
        ax = row[panel.column]
        j = panel.column
        lo, hi = fault_window_min(panel.case)
        ax.axvspan(lo, hi, color="tab:red", alpha=0.12)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        handles = []
        twin = None
        for k, s in enumerate(panel.series):
            target_ax = ax
            if s.signal.right_axis:
                twin = twin or ax.twinx()
                twin.tick_params(labelsize=8)
                target_ax = twin
            handles += target_ax.plot(s.t, s.v, lw=1.3, color=f"C{k + 2 * j}", label=s.signal.label)
        if not handles:
            ax.text(0.5, 0.5, "no data in this dataset", ha="center", va="center", transform=ax.transAxes, fontsize=8)
        else:
            ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left", framealpha=0.8)
        if panel.fault == "gpu" and j == 0:
            ax.set_ylim(0, 105)
        if j == 0:
            ax.set_ylabel(f"{panel.fault}\n{panel.case.fault.target}", fontsize=9)
        if i < 2:
            ax.set_title(_COLUMN_TITLES[j], fontsize=10)
        ax.set_xlabel("minutes from injection", fontsize=7, labelpad=1)
    fig.suptitle("Effect of each fault on its target (shaded: fault window)", fontsize=11)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)
    return out_png


def target_series(case: Case, kinds: str | tuple[str, ...]) -> pd.Series | None:
    """The fault target's series of the first of ``kinds`` it has, in the kind's canonical unit, indexed by time; None when absent."""
    if case.fault is None or not case.fault.injected:
        return None
    found = _find(_frames(case), case.fault.target, (kinds,) if isinstance(kinds, str) else tuple(kinds))
    if found is None:
        return None
    df, col, _ = found
    return pd.Series(pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float), index=df["time"])
