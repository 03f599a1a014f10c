"""The fault-effect figure (paper Fig. 6, extended) as a faults x signals grid.

One row per fault type (one case of each), two columns:

* left, *on the target*: the resource the fault takes (cpu -> CPU cores;
  memory -> working set; network -> bytes sent/received; gpu -> GPU
  utilisation, which is what the basic metric set sees);
* right, *what it does to serving*: the target's request latency p90 (cpu,
  memory, network), and for gpu the power draw next to the inter-token
  latency, to show what utilisation hides.

The fault window is shaded.  The figure is about 4:3 (10 x 7.6 in for four
faults) so it reads inline in a report.  Reads the dataset from disk, so it
works for any backend; a column a dataset lacks is left out of its panel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from llmrca.dataset.io import Dataset
from llmrca.model import FAULT_TYPES, Case


@dataclass(frozen=True)
class Signal:
    """One line of a panel: the target's column ``<target>_<suffix>`` times ``scale``."""

    suffix: str
    label: str
    scale: float = 1.0
    right_axis: bool = False


#: fault type -> (left panel, right panel) signals.
KEY_SIGNALS: dict[str, tuple[list[Signal], list[Signal]]] = {
    "cpu": ([Signal("cpu", "CPU (cores)")], [Signal("latency-90", "request latency p90 (s)")]),
    "memory": ([Signal("mem", "working set (GiB)", 1 / 2**30)], [Signal("latency-90", "request latency p90 (s)")]),
    "network": (
        [Signal("net-tx", "net tx (KB/s)", 1e-3), Signal("net-rx", "net rx (KB/s)", 1e-3)],
        [Signal("latency-90", "request latency p90 (s)")],
    ),
    "gpu": (
        [Signal("gpu", "GPU util (%)")],
        [
            Signal("DCGM_FI_DEV_POWER_USAGE", "power (W)"),
            Signal("vllm:inter_token_latency_seconds:mean", "ITL mean (ms)", 1e3, right_axis=True),
        ],
    ),
}
_COLUMN_TITLES = ("on the target", "what it does to serving")


def _one_case_per_fault(ds: Dataset) -> dict[str, Case]:
    picked: dict[str, Case] = {}
    for _, case in ds.iter_cases():
        if isinstance(case, Exception) or case.fault is None:
            continue
        picked.setdefault(case.fault.type, case)
        if len(picked) == len(FAULT_TYPES):
            break
    return picked


def key_series(case: Case) -> list[tuple[Signal, np.ndarray, np.ndarray]]:
    """The case's key signals: ``(signal, minutes from injection, scaled values)`` per available column.

    Signals of the case's fault type (both panels); a case without a fault
    record, or of a type without key signals, gets the target's basic
    columns (cpu, mem, latency-90) when present.
    """
    df = case.metric_sets.get("extended", case.metrics)
    if case.fault is None:
        return []
    left, right = KEY_SIGNALS.get(case.fault.type, ([Signal("cpu", "CPU (cores)"), Signal("mem", "working set (GiB)", 1 / 2**30)], [Signal("latency-90", "request latency p90 (s)")]))
    t = (df["time"].to_numpy(dtype=float) - case.inject_time) / 60.0
    out = []
    for sig in [*left, *right]:
        col = f"{case.fault.target}_{sig.suffix}"
        if col in df:
            out.append((sig, t, df[col].to_numpy(dtype=float) * sig.scale))
    return out


def fault_window_min(case: Case) -> tuple[float, float]:
    """The fault window in minutes from injection (a missing end counts as 1 min)."""
    end = (case.fault.end if case.fault and case.fault.end else case.inject_time + 60) - case.inject_time
    return 0.0, end / 60.0


def fault_effects_figure(dataset_dir: str | Path, out_png: str | Path) -> Path:
    """Draw the grid for ``dataset_dir`` into ``out_png`` (PNG, 130 dpi); returns the PNG path.

    Raises ValueError when the dataset has no readable case with a fault record.
    """
    from llmrca.errors import require

    matplotlib = require("matplotlib", "report", "the fault-effect figure")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = Dataset(dataset_dir)
    cases = _one_case_per_fault(ds)
    if not cases:
        raise ValueError(f"dataset {dataset_dir} has no readable case with a fault record; run a campaign first")
    faults = [f for f in FAULT_TYPES if f in cases] + sorted(set(cases) - set(FAULT_TYPES))
    fig, axes = plt.subplots(len(faults), 2, figsize=(10, 1.72 * len(faults) + 0.7), squeeze=False, sharex="row")
    for row, ft in zip(axes, faults, strict=True):
        case = cases[ft]
        series = key_series(case)
        lo, hi = fault_window_min(case)
        specs = KEY_SIGNALS.get(ft, ([], []))
        for j, ax in enumerate(row):
            ax.axvspan(lo, hi, color="tab:red", alpha=0.12)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=8)
            wanted = {s.suffix for s in specs[j]} if specs[j] else ({"cpu", "mem"} if j == 0 else {"latency-90"})
            handles = []
            twin = None
            for k, (sig, t, v) in enumerate(s for s in series if s[0].suffix in wanted):
                target_ax = ax
                if sig.right_axis:
                    twin = twin or ax.twinx()
                    twin.tick_params(labelsize=8)
                    target_ax = twin
                handles += target_ax.plot(t, v, lw=1.3, color=f"C{k + 2 * j}", label=sig.label)
            if not handles:
                ax.text(0.5, 0.5, "no data in this dataset", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            else:
                ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left", framealpha=0.8)
            if ft == "gpu" and j == 0:
                ax.set_ylim(0, 105)
            if j == 0:
                ax.set_ylabel(f"{ft}\n{case.fault.target}", fontsize=9)
            if row is axes[0]:
                ax.set_title(_COLUMN_TITLES[j], fontsize=10)
            if row is axes[-1]:
                ax.set_xlabel("minutes from injection", fontsize=8)
    fig.suptitle("Effect of each fault on its target (shaded: fault window)", fontsize=11)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=130)
    plt.close(fig)
    return out_png


def target_series(case: Case, suffix: str) -> pd.Series:
    """The target's ``suffix`` column (for reports and tests)."""
    df = case.metric_sets.get("extended", case.metrics)
    return pd.Series(np.asarray(df[f"{case.fault.target}_{suffix}"], dtype=float), index=df["time"])
