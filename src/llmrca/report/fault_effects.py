"""The fault-effect figure (paper Fig. 6, extended): for one case per fault
type, the target's key metrics over time with the fault window shaded.

cpu -> CPU cores; memory -> working set; network -> bytes sent/received;
gpu -> GPU utilisation next to power and inter-token latency, to show what
utilisation hides.  Reads the dataset from disk, so it works for any backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from llmrca.dataset.io import Dataset
from llmrca.model import FAULT_TYPES, Case

#: (column suffix, label, scale) per panel line; the gpu panel has a second axis.
_PANELS: dict[str, list[tuple[str, str, float]]] = {
    "cpu": [("cpu", "CPU (cores)", 1.0)],
    "memory": [("mem", "working set (GiB)", 1 / 2**30)],
    "network": [("net-tx", "net tx (KB/s)", 1e-3), ("net-rx", "net rx (KB/s)", 1e-3)],
    "gpu": [("gpu", "GPU util (%)", 1.0)],
}
_GPU_SECOND = [  # drawn in a second gpu panel
    ("DCGM_FI_DEV_POWER_USAGE", "power (W)", 1.0),
    ("vllm:inter_token_latency_seconds:mean", "ITL mean (ms)", 1e3),
]


def _one_case_per_fault(ds: Dataset) -> dict[str, Case]:
    picked: dict[str, Case] = {}
    for _, case in ds.iter_cases():
        if isinstance(case, Exception) or case.fault is None:
            continue
        picked.setdefault(case.fault.type, case)
        if len(picked) == len(FAULT_TYPES):
            break
    return picked


def fault_effects_figure(dataset_dir: str | Path, out_png: str | Path) -> Path:
    """Draw the figure for ``dataset_dir`` into ``out_png``; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = Dataset(dataset_dir)
    cases = _one_case_per_fault(ds)
    if not cases:
        raise ValueError(f"dataset {dataset_dir} has no readable case with a fault record; run a campaign first")
    faults = [f for f in FAULT_TYPES if f in cases]
    panels = [(ft, 0) for ft in faults] + ([("gpu", 1)] if "gpu" in cases else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(3.7 * len(panels), 3.4), squeeze=False)
    for ax, (ft, part) in zip(axes[0], panels, strict=True):
        case = cases[ft]
        df = case.metric_sets.get("extended", case.metrics)
        tgt = case.fault.target
        t = (df["time"].to_numpy() - case.inject_time) / 60.0
        end = ((case.fault.end or case.inject_time + 60) - case.inject_time) / 60.0
        ax.axvspan(0.0, end, color="tab:red", alpha=0.12, label="fault")
        ax.set_xlabel("minutes from injection")
        ax.grid(alpha=0.3)
        if part == 0:
            lines = _PANELS[ft]
            if ft == "gpu":
                lines = [*lines, ("DCGM_FI_DEV_FB_USED", "FB used (% of 80 GB)", 100 / 81920)]
            for suffix, label, scale in lines:
                col = f"{tgt}_{suffix}"
                if col in df:
                    ax.plot(t, df[col].to_numpy(dtype=float) * scale, lw=1.4, label=label)
            if ft == "gpu":
                ax.set_ylim(0, 105)
                ax.set_title(f"gpu: {tgt} (what the basic set sees)", fontsize=9)
            else:
                ax.set_title(f"{ft}: {tgt}", fontsize=10)
            ax.legend(fontsize=7, loc="lower left")
            continue
        # gpu, second panel: power (left axis) and inter-token latency (right axis)
        (s1, l1, k1), (s2, l2, k2) = _GPU_SECOND
        h1 = ax.plot(t, df[f"{tgt}_{s1}"].to_numpy(dtype=float) * k1, color="tab:green", lw=1.4, label=l1)
        ax.set_ylim(0, 320)
        ax.set_ylabel(l1, fontsize=8)
        ax2 = ax.twinx()
        h2 = ax2.plot(t, df[f"{tgt}_{s2}"].to_numpy(dtype=float) * k2, color="tab:purple", lw=1.4, label=l2)
        ax2.set_ylabel(l2, fontsize=8)
        ax.set_title(f"gpu: {tgt} (what it hides)", fontsize=9)
        ax.legend(h1 + h2, [l1, l2], fontsize=7, loc="lower left")
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
