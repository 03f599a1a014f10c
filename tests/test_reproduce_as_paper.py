"""``reproduce --as-paper``: reference modes where a method has one, failed runs scored as random."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmrca.evaluate.results import read_results
from llmrca.reproduce import reference_modes


def test_reference_modes_names_the_methods_that_have_one() -> None:
    modes = reference_modes(["nsigma", "circa", "e-diagnosis", "pc-pagerank", "microcause", "tracerca", "random", "no-such-method"])
    # CIRCA / N-Sigma / the graph methods / MicroCause / the trace port: the artifact's RCAEval; ε-Diagnosis:
    # sfr-pyrca; Random has no reference_mode option; unknown names are left out
    assert modes == {"nsigma": "rcaeval", "circa": "rcaeval", "e-diagnosis": "pyrca", "pc-pagerank": "rcaeval", "microcause": "rcaeval",
                     "tracerca": "rcaeval"}


@pytest.mark.slow
def test_reproduce_as_paper_runs_reference_modes_and_scores_failures_as_random(tmp_path: Path) -> None:
    from llmrca.reproduce import reproduce

    out = tmp_path / "rep"
    reproduce(profile="quick", out=out, methods=["random", "e-diagnosis", "microcause"], jobs=2, progress=False, as_paper=True)
    meta = json.loads((out / "reproduce.json").read_text())
    assert meta["as_paper"] is True
    assert meta["reference_modes"] == {"e-diagnosis": "pyrca", "microcause": "rcaeval"}
    assert meta["no_reference_mode"] == ["random"]
    run = json.loads((out / "eval" / "run.json").read_text())
    assert run["random_on_failure"] is True
    recs = read_results(out / "eval" / "results.jsonl")
    ediag = [r for r in recs if r["method"] == "e-diagnosis"]
    assert len(ediag) == 12 and all(r["config"]["reference_mode"] == "pyrca" for r in ediag)
    micro = [r for r in recs if r["method"] == "microcause"]
    assert len(micro) == 12 and all(r["config"]["reference_mode"] == "rcaeval" for r in micro)
    # the harness's SLI, the injected component's own latency, reached MicroCause's reference walk
    assert all(r["status"] == "ok" and r["harness_sli"] == f"{r['target']}_latency-90" == r["explanation"]["sli"] for r in micro)
    # and no other method
    assert not any("harness_sli" in r for r in recs if r["method"] != "microcause")
    # the report's first paragraph says so (the agreement section names the methods)
    head = (out / "REPORT.md").read_text().split("\n\n")[:4]
    assert any("Mode: reference implementations for 2 of the 3 methods, the other as published; a failed run scores as random" in h
               for h in head), head
    # and that MicroCause was handed the harness's SLI, read from the label
    assert "MicroCause (reference mode) walked from the SLI the paper's harness chose, the injected component's own latency" in (out / "REPORT.md").read_text()


@pytest.mark.slow
def test_reproduce_json_records_the_modes_that_ran(tmp_path: Path) -> None:
    """A --set METHOD.reference_mode=null under --as-paper runs that method as published, and reproduce.json says so."""
    from llmrca.reproduce import reproduce

    out = tmp_path / "rep"
    reproduce(profile="quick", out=out, methods=["random", "nsigma", "baro"], jobs=2, progress=False, as_paper=True,
              method_configs={"nsigma": {"reference_mode": None}})
    meta = json.loads((out / "reproduce.json").read_text())
    assert meta["reference_modes"] == {"baro": "rcaeval"}
    assert meta["no_reference_mode"] == ["random"] and meta["reference_mode_off"] == ["nsigma"]
    recs = read_results(out / "eval" / "results.jsonl")
    assert {r["config"]["reference_mode"] for r in recs if r["method"] == "nsigma"} == {None}


def test_as_paper_refuses_options_a_reference_mode_ignores_before_the_campaign(tmp_path: Path) -> None:
    from llmrca.evaluate.runner import EvaluationError
    from llmrca.reproduce import reproduce

    out = tmp_path / "rep"
    with pytest.raises(EvaluationError, match=r"ignores \['tau_max'\].*--as-paper runs microcause in its reference mode.*reference_mode=null"):
        reproduce(profile="quick", out=out, methods=["microcause", "nsigma"], progress=False, as_paper=True,
                  method_configs={"microcause": {"tau_max": 5}})
    assert not (out / "dataset").exists()
