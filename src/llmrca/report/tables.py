"""Table 1 as Markdown, CSV and LaTeX: rendered by :mod:`llmrca.evaluate.render` (re-exported here)."""

from llmrca.evaluate.render import (
    FAULT_LABELS,
    PAPER_NAMES,
    display_name,
    table1_csv,
    table1_latex,
    table1_markdown,
    write_table1,
)

__all__ = ["FAULT_LABELS", "PAPER_NAMES", "display_name", "table1_csv", "table1_latex", "table1_markdown", "write_table1"]
