from __future__ import annotations

import pandas as pd

from llmrca.methods.registry import REGISTRY
from llmrca.report.tables import PAPER_NAMES, table1_csv, table1_latex, table1_markdown


def _table() -> pd.DataFrame:
    cols = pd.MultiIndex.from_product([["cpu"], ["AC@1"]])
    idx = pd.MultiIndex.from_tuples([("Metric", "nsigma"), ("Metric", "e-diagnosis")], names=["source", "method"])
    return pd.DataFrame([[1.0], [0.5]], index=idx, columns=cols)


def test_human_tables_use_the_papers_names_and_csv_the_registry_names() -> None:
    t = _table()
    md = table1_markdown(t)
    assert "| Metric | NSigma | 1.00 |" in md and "ε-Diagnosis" in md
    assert r"$\epsilon$-Diagnosis" in table1_latex(t)
    assert "Metric,nsigma,1.0" in table1_csv(t)


def test_every_registered_method_has_a_display_name() -> None:
    assert set(REGISTRY) <= set(PAPER_NAMES)
