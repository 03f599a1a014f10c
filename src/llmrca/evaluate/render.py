"""Render Table 1 as Markdown, CSV and LaTeX (part of an evaluation's outputs)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

FAULT_LABELS = {"cpu": "CPU", "memory": "MEMORY", "network": "NETWORK", "gpu": "GPU", "none": "HEALTHY"}

#: The paper's spelling of each registry name, for the human-readable tables
#: (Markdown, LaTeX); CSV files keep the registry names that ``--methods`` takes.
#: Read from the registry rows (one home per method's metadata).
def _paper_names() -> dict[str, str]:
    from llmrca.methods.registry import PAPER_NAMES as names

    return dict(names)


PAPER_NAMES: dict[str, str] = _paper_names()


#: display names an evaluation recorded (run.json) for methods not registered now (a plug-in not loaded when the
#: report is rebuilt): :func:`remember_display`
RECORDED_NAMES: dict[str, str] = {}


def remember_display(method: str, display: str) -> None:
    """Use ``display`` for ``method`` when the registry has no row for it (its plug-in is not loaded now)."""
    if display:
        RECORDED_NAMES[method] = str(display)


def display_name(method: str) -> str:
    """The row's ``display`` name, read from the registry when asked (so a plug-in registered after import
    counts), else the paper's spelling, else the name the evaluation recorded, else ``method`` itself."""
    from llmrca.methods.registry import REGISTRY

    row = REGISTRY.get(method)
    shown = getattr(row, "display", None) if row is not None else None
    return shown or PAPER_NAMES.get(method) or RECORDED_NAMES.get(method, method)


def _fmt(x: float, missing: str, metric: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    return f"{int(x)}" if metric == "n" else f"{x:.2f}"


def table1_markdown(table: pd.DataFrame, note: str = "") -> str:
    cols = list(table.columns)
    head = ["Data Source", "Method"] + [f"{FAULT_LABELS.get(f, f.upper())} {m}" for f, m in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    last_src = None
    for (src, method), row in table.iterrows():
        shown = src if src != last_src else ""
        last_src = src
        lines.append("| " + " | ".join([shown, display_name(method)] + [_fmt(v, "–", m) for (_, m), v in zip(cols, row.to_numpy(), strict=True)]) + " |")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def table1_csv(table: pd.DataFrame) -> str:
    flat = table.copy().round(4)
    for col in flat.columns:
        if col[1] == "n":  # counts are whole numbers: 4, not 4.0 (empty when unknown)
            flat[col] = flat[col].astype("Int64")
    flat.columns = [f"{f}_{m}".replace(" ", "_") for f, m in flat.columns]
    return flat.reset_index().to_csv(index=False)


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        s = s.replace(a, b)
    return s


def table1_latex(table: pd.DataFrame, caption: str = "RCA performance per fault type.") -> str:
    cols = list(table.columns)
    faults = list(dict.fromkeys(table.columns.get_level_values(0)))
    per_fault = {f: [m for g, m in cols if g == f] for f in faults}
    spec = "ll" + "|".join(["c" * len(per_fault[f]) for f in faults])
    out = [
        r"% needs \usepackage{booktabs}",
        r"\begin{table*}",
        r"\centering",
        rf"\caption{{{_tex_escape(caption)}}}",
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        "Data Source & Method & " + " & ".join(rf"\multicolumn{{{len(per_fault[f])}}}{{c}}{{{FAULT_LABELS.get(f, f.upper())}}}" for f in faults) + r" \\",
        " & & " + " & ".join(m for _, m in cols) + r" \\",
        r"\midrule",
    ]
    last_src = None
    for (src, method), row in table.iterrows():
        if last_src is not None and src != last_src:
            out.append(r"\midrule")
        shown = _tex_escape(src) if src != last_src else ""
        last_src = src
        name = _tex_escape(display_name(method)).replace("ε", r"$\epsilon$")
        out.append(f"{shown} & {name} & " + " & ".join(_fmt(v, "--", m) for (_, m), v in zip(cols, row.to_numpy(), strict=True)) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table*}"]
    return "\n".join(out) + "\n"


def write_table1(table: pd.DataFrame, out_dir: Path, note: str = "") -> list[Path]:
    paths = [out_dir / "table1.md", out_dir / "table1.csv", out_dir / "table1.tex"]
    paths[0].write_text(table1_markdown(table, note))
    paths[1].write_text(table1_csv(table))
    paths[2].write_text(table1_latex(table))
    return paths
