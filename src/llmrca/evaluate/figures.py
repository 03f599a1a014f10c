"""Figures: misattribution counts per method (the paper's Fig. 5)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llmrca.evaluate.render import display_name


def _count(v: float) -> str:
    """A count as a whole number, or as the fraction ties made it (1.5, 87.25; at most two decimals)."""
    return f"{v:.0f}" if abs(v - round(v)) < 0.005 else f"{v:.2f}".rstrip("0")


def misattribution_figure(
    mis: pd.DataFrame, path: Path, *, methods: list[str] | None = None, title: str | None = None, totals: dict[str, int] | None = None
) -> Path:
    """Per method, stacked counts of the component wrongly blamed at rank 1 (``totals``: scored runs per method).

    A tie for rank 1 shares the blame (:func:`llmrca.evaluate.metrics.blame_rows`), so counts may be fractions of a run.

    Methods are labelled with the paper's names (:func:`llmrca.report.tables.display_name`).
    """
    from llmrca.errors import require

    matplotlib = require("matplotlib", "report", "the misattribution figure")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = mis.groupby(["method", "blamed"])["count"].sum().unstack(fill_value=0) if not mis.empty else pd.DataFrame()
    order = [m for m in (methods or list(counts.index)) if m in counts.index or methods is not None]
    counts = counts.reindex(order).fillna(0) if len(order) else counts
    fig_h = max(2.5, 0.45 * max(len(order), 1) + 1.5)
    fig, ax = plt.subplots(figsize=(8, fig_h), dpi=120)
    if counts.empty or counts.to_numpy().sum() == 0:
        ax.text(0.5, 0.5, "no misattributions: every scored run ranked a true root cause first", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        blamed = list(counts.sum().sort_values(ascending=False).index)
        cmap = plt.get_cmap("tab10" if len(blamed) <= 10 else "tab20")
        left = pd.Series(0.0, index=counts.index)
        for i, comp in enumerate(blamed):
            vals = counts[comp]
            ax.barh(counts.index, vals, left=left, color=cmap(i % cmap.N), label=comp, edgecolor="white", linewidth=0.5)
            for y, (v, lft) in enumerate(zip(vals, left, strict=True)):
                if v >= max(1, 0.06 * counts.sum(axis=1).max()):
                    ax.text(lft + v / 2, y, _count(v), ha="center", va="center", fontsize=8, color="white")
            left = left + vals
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if totals:
            ax.set_yticks(
                range(len(counts.index)),
                [f"{display_name(m)}\n({_count(counts.loc[m].sum())} of {totals.get(m, 0)} wrong)" for m in counts.index],
                fontsize=8,
            )
        else:
            ax.set_yticks(range(len(counts.index)), [display_name(m) for m in counts.index], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("wrong rank-1 answers (count; a tie for rank 1 shares one answer)")
        ax.legend(title="blamed component", bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8, title_fontsize=8, frameon=False)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    ax.set_title(title or "Misattribution: component blamed at rank 1 when wrong", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
