"""Agreement with the paper's Table 1 (Spearman's ρ per fault and overall, bootstrap over cases)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.report.fidelity import FAULTS, fidelity_from_scored, fidelity_from_summary, paper_frame, paper_table


def test_the_paper_table_is_complete() -> None:
    t = paper_table()
    assert len(t["table"]) == 24
    assert t["table"]["nsigma"]["cpu"] == {"ac@1": 1.0, "ac@3": 1.0, "avg@5": 1.0}
    assert t["table"]["tracerca"]["memory"]["avg@5"] == 0.01
    assert t["table"]["granger-randomwalk"]["gpu"]["ac@1"] == 0.37
    assert len(paper_frame()) == 24 * 4


def _summary_from_paper(transform=lambda x: x) -> pd.DataFrame:
    p = paper_frame()
    out = p.copy()
    for m in ("ac@1", "ac@3", "avg@5"):
        out[m] = transform(p[m].to_numpy())
    out.insert(2, "n", 30)
    return out


def test_the_papers_own_table_agrees_perfectly_and_its_reverse_not_at_all() -> None:
    same = fidelity_from_summary(_summary_from_paper())
    assert len(same.methods) == 20  # random-walk rows left out
    for scope in (*FAULTS, "all"):
        assert same.rho(scope, "ac@1") == pytest.approx(1.0)
        assert same.rho(scope, "avg@5") == pytest.approx(1.0)
    reverse = fidelity_from_summary(_summary_from_paper(lambda x: 1.0 - x))
    assert reverse.rho("all", "ac@1") == pytest.approx(-1.0)
    assert "pc-randomwalk" in same.left_out["data_blind"]


def test_bootstrap_interval_over_cases() -> None:
    """Cases scored exactly as the paper (10 per fault) plus noise: ρ high, its interval around it and narrower with less noise."""
    p = paper_frame()
    rng = np.random.default_rng(1)
    rows = []
    for noise in (0.0,):
        for r in p.itertuples():
            for c in range(10):
                rows.append({"method": r.method, "case": f"{r.fault}/{c}", "fault": r.fault, "ac@1": float(np.clip(r._3 + noise * rng.standard_normal(), 0, 1)), "avg@5": r._5})
    exact = fidelity_from_scored(pd.DataFrame(rows), n_boot=200, seed=0)
    assert exact.rho("all", "ac@1") == pytest.approx(1.0)
    row = exact.table[(exact.table["scope"] == "all") & (exact.table["metric"] == "ac@1")].iloc[0]
    assert row["lo"] == pytest.approx(1.0) and row["hi"] == pytest.approx(1.0)
    # hits are 0/1 per case: sample each case's AC@1 as a Bernoulli of the paper's value
    rows = [
        {"method": r.method, "case": f"{r.fault}/{c}", "fault": r.fault, "ac@1": float(rng.random() < r._3), "avg@5": r._5}
        for r in p.itertuples()
        for c in range(30)
    ]
    noisy = fidelity_from_scored(pd.DataFrame(rows), n_boot=300, seed=0)
    row = noisy.table[(noisy.table["scope"] == "all") & (noisy.table["metric"] == "ac@1")].iloc[0]
    assert 0.6 < row["rho"] < 1.0
    # percentile interval: resampled cases add noise, so it sits a little below the point estimate
    assert row["lo"] < row["hi"] and row["hi"] - row["lo"] < 0.4
    assert abs(row["rho"] - (row["lo"] + row["hi"]) / 2) < 0.1
    again = fidelity_from_scored(pd.DataFrame(rows), n_boot=300, seed=0)
    assert again.table.equals(noisy.table)  # seeded
    assert not any("case(s) per fault type" in w for w in noisy.warnings())  # 30 per fault: no caveat
    few = fidelity_from_scored(pd.DataFrame([r for r in rows if int(r["case"].split("/")[1]) < 3]), n_boot=100, seed=0)
    assert any(w.startswith("warning: 3 case(s) per fault type: the intervals resample these few cases") for w in few.warnings())


def test_cells_that_tie_rank_as_ties_from_runs_and_from_the_summary() -> None:
    """Means of per-case scores differ in the last bits (0.2 vs 0.20000000000000004); they must still tie,
    so ρ from the runs equals ρ from summary.csv (rounded to 4 places)."""
    p = paper_frame()
    rows = []
    for r in p.itertuples():
        # three cases whose mean is 0.2 in exact arithmetic, summed in different orders per method
        vals = [0.1, 0.2, 0.3] if sum(map(ord, r.method)) % 2 else [0.3, 0.2, 0.1]
        for c, v in enumerate(vals):
            rows.append({"method": r.method, "case": f"{r.fault}/{c}", "fault": r.fault, "ac@1": v, "avg@5": r._5})
    scored = pd.DataFrame(rows)
    a = fidelity_from_scored(scored, n_boot=0)
    summ = scored.groupby(["method", "fault"], as_index=False).agg(n=("case", "size"), **{"ac@1": ("ac@1", "mean")}, **{"avg@5": ("avg@5", "mean")})
    summ.insert(4, "ac@3", 0.0)
    summ["ac@1"] = summ["ac@1"].round(4)
    b = fidelity_from_summary(summ[["method", "fault", "n", "ac@1", "ac@3", "avg@5"]])
    for scope in (*FAULTS, "all"):
        ra, rb = a.rho(scope, "ac@1"), b.rho(scope, "ac@1")
        assert (np.isnan(ra) and np.isnan(rb)) or ra == pytest.approx(rb), scope
    assert np.isnan(a.rho("cpu", "ac@1"))  # every method's cell ties: no rank order to correlate


def test_cli_on_a_summary_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "summary.csv"
    _summary_from_paper().to_csv(f, index=False)
    r = CliRunner().invoke(app, ["fidelity", str(f)])
    assert r.exit_code == 0, r.output
    assert "all      AC@1 ρ = 1.00" in r.output
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rho"][0]["rho"] == pytest.approx(1.0)
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "empty-folder").mkdir()
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "empty-folder")])
    assert r.exit_code == 2 and "no summary.csv or results.jsonl" in r.output
    for where in (f, tmp_path):  # a bare summary.csv, or a folder holding only one, does not say how its runs were made
        r = CliRunner().invoke(app, ["fidelity", str(where)])
        assert "mode: not recorded" in r.output, r.output
        d = json.loads(CliRunner().invoke(app, ["fidelity", str(where), "--json"]).output)
        assert d["reference_modes"] is None and d["random_on_failure"] is None
    (tmp_path / "lone.jsonl").write_text("{}\n")
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "lone.jsonl")])
    assert r.exit_code == 2 and "read with its folder" in r.output


def test_summary_columns_are_read_by_name_and_bad_tables_are_refused(tmp_path: Path) -> None:
    """Reordered or extra columns give the same ρ; a missing column or an empty file is a clear error."""
    s = _summary_from_paper(lambda x: np.sqrt(x))  # monotone: ρ 1.00 everywhere
    ref = fidelity_from_summary(s)
    shuffled = s[["avg@5", "n", "fault", "ac@3", "ac@1", "method"]].assign(extra="x")
    assert fidelity_from_summary(shuffled).table.equals(ref.table)
    rev = s.assign(**{"avg@5": -s["avg@5"]})  # only Avg@5 reversed: AC@1 must stay 1.00 whatever the order
    rev = fidelity_from_summary(rev[["method", "fault", "avg@5", "n", "ac@1"]])
    assert rev.rho("all", "ac@1") == pytest.approx(1.0) and rev.rho("all", "avg@5") < 0
    with pytest.raises(ValueError, match=r"avg@5 missing"):
        fidelity_from_summary(s.drop(columns=["avg@5"]))
    for name, text in (("empty.csv", ""), ("other.csv", "a,b\n1,2\n")):
        (tmp_path / name).write_text(text)
        r = CliRunner().invoke(app, ["fidelity", str(tmp_path / name)])
        assert r.exit_code == 2 and "Traceback" not in r.output, r.output
        assert (name in r.output) if not text else ("column(s) method, fault, ac@1, avg@5 missing" in r.output)


def test_a_cell_without_a_number_is_left_out_and_named(tmp_path: Path) -> None:
    s = _summary_from_paper()
    s.loc[(s["method"] == "baro") & (s["fault"] == "cpu"), "ac@1"] = np.nan
    fid = fidelity_from_summary(s)
    assert fid.rho("all", "ac@1") == pytest.approx(1.0)  # the other 79 cells still agree perfectly
    n = fid.table.set_index(["scope", "metric"])["n"]
    assert (n[("cpu", "ac@1")], n[("cpu", "avg@5")], n[("all", "ac@1")]) == (19, 20, 79)
    assert fid.warnings() == ["warning: 1 cell(s) without a number, left out of ρ: baro cpu ac@1"]
    s.to_csv(tmp_path / "summary.csv", index=False)
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "summary.csv")])
    assert r.exit_code == 0 and "baro cpu ac@1" in r.output and "(19 cells for AC@1, 20 cells for Avg@5)" in r.output, r.output


def test_the_reference_modes_a_run_used_are_reported() -> None:
    from llmrca.report.fidelity import _reference_modes

    recs = [
        {"method": "nsigma", "config": {"reference_mode": "rcaeval"}},
        {"method": "baro", "config": {"reference_mode": None}},
        {"method": "circa", "config": {"reference_mode": "rcaeval"}},
        {"method": "tracerca", "config": "not a dict"},
    ]
    assert _reference_modes(recs, ["nsigma", "baro", "tracerca"]) == {"nsigma": "rcaeval"}


def test_a_fault_type_without_cases_is_said_not_computed_and_warns_nothing() -> None:
    """Only CPU and memory cases: the network and GPU lines say there is nothing to compare (no NaN ρ, no
    'Mean of empty slice' warning from the bootstrap)."""
    import warnings

    p = paper_frame()
    rows = [{"method": r.method, "case": f"{r.fault}/{c}", "fault": r.fault, "ac@1": r._3, "avg@5": r._5}
            for r in p.itertuples() if r.fault in ("cpu", "memory") for c in range(3)
            if not (r.method == "nsigma" and r.fault == "cpu")]  # a method with no scored CPU run: an all-NaN column
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fid = fidelity_from_scored(pd.DataFrame(rows), n_boot=50, seed=0)
    lines = fid.lines()
    assert "network  not computed: no scored case of this fault type" in lines
    assert "gpu      not computed: no scored case of this fault type" in lines
    assert next(x for x in lines if x.startswith("cpu")).startswith("cpu      AC@1 ρ = 1.00")


def test_fault_types_the_paper_lacks_are_named_and_column_case_is_free(tmp_path: Path) -> None:
    """RCAEval RE3's f1-f3 alone: fidelity said 'only 0 of the paper's methods were evaluated (none)' though
    three were; beside the paper's types they are named as not compared; --json says why ρ is missing (it exited
    0 with every ρ null); a spreadsheet's AC@1 / Avg@5 headers are read."""
    s = _summary_from_paper()
    other = s[s["fault"] == "cpu"].assign(fault="f1")
    other.to_csv(tmp_path / "summary.csv", index=False)
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "summary.csv")])
    assert r.exit_code == 2 and "no scored case of the paper's fault types (cpu, memory, network, gpu); this evaluation has f1" in r.output, r.output
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "summary.csv"), "--json"])
    d = json.loads(r.stdout)
    assert r.exit_code == 2 and d["status"] == "failed" and "f1" in d["error"] and d["other_fault_types"] == ["f1"]
    assert "baro" not in d["left_out"]["not_run"]  # it was run (on f1 only)
    pd.concat([s, other]).rename(columns={"ac@1": "AC@1", "avg@5": "Avg@5"}).to_csv(tmp_path / "summary.csv", index=False)
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "summary.csv")])
    assert r.exit_code == 0 and "all      AC@1 ρ = 1.00" in r.output, r.output
    assert "fault types not compared (the paper's Table 1 has no column for them): f1" in r.output
    assert "nan:" not in r.output  # the legend only when a ρ is nan
    s[s["method"].isin(["baro", "nsigma"])].to_csv(tmp_path / "summary.csv", index=False)
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "summary.csv"), "--json"])
    assert r.exit_code == 2 and "only 2 of the paper's methods were evaluated" in json.loads(r.stdout)["error"]
