"""``reproduce --as-paper``: reference modes where a method has one, failed runs scored as random."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrca.evaluate.results import read_results
from llmrca.reproduce import reference_modes


def test_reference_modes_names_the_methods_that_have_one() -> None:
    modes = reference_modes(["nsigma", "circa", "e-diagnosis", "pc-pagerank", "microcause", "tracerca", "random", "no-such-method"])
    # CIRCA / N-Sigma / the graph methods / the trace port: RCAEval; ε-Diagnosis: sfr-pyrca; MicroCause
    # answers that it has none; Random has no reference_mode option; unknown names are left out
    assert modes == {"nsigma": "rcaeval", "circa": "rcaeval", "e-diagnosis": "pyrca", "pc-pagerank": "rcaeval", "tracerca": "rcaeval"}


@pytest.mark.slow
def test_reproduce_as_paper_runs_reference_modes_and_scores_failures_as_random(tmp_path: Path) -> None:
    from llmrca.reproduce import reproduce

    out = tmp_path / "rep"
    reproduce(profile="quick", out=out, methods=["random", "e-diagnosis", "microcause"], jobs=2, progress=False, as_paper=True)
    meta = json.loads((out / "reproduce.json").read_text())
    assert meta["as_paper"] is True
    assert meta["reference_modes"] == {"e-diagnosis": "pyrca"}
    assert meta["no_reference_mode"] == ["microcause", "random"]
    run = json.loads((out / "eval" / "run.json").read_text())
    assert run["random_on_failure"] is True
    recs = read_results(out / "eval" / "results.jsonl")
    ediag = [r for r in recs if r["method"] == "e-diagnosis"]
    assert len(ediag) == 12 and all(r["config"]["reference_mode"] == "pyrca" for r in ediag)
    assert all(r["config"]["reference_mode"] is None for r in recs if r["method"] == "microcause")
    # the report's first paragraph says so (the agreement section names the methods)
    head = (out / "REPORT.md").read_text().split("\n\n")[:4]
    assert any("Mode: a reference implementation for 1 of the 3 methods, the others as published; a failed run scores as random" in h
               for h in head), head
