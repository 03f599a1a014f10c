"""Rough edges of the CLI: what -q prints, how --sli problems are worded, validate agreeing with rank/evaluate,
fidelity's refusal, and resuming a reproduce folder that was copied elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import llmrca.campaign as campaign
from llmrca.campaign import Profile
from llmrca.cli import app


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """A one-case campaign profile (a CPU fault on one worker)."""
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case"))


def test_reproduce_quiet_prints_only_where_the_report_is(tmp_path: Path, tiny: None) -> None:
    out = tmp_path / "r"
    args = ["reproduce", "--profile", "tiny", "--methods", "nsigma", "--out", str(out)]
    r = CliRunner().invoke(app, [*args, "-q"])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [f"report: {out / 'REPORT.md'} and {out / 'REPORT.html'}"]
    assert (out / "REPORT.md").is_file() and (out / "REPORT.html").is_file()
    r = CliRunner().invoke(app, args)  # without -q (a resumed run): the whole report
    assert r.exit_code == 0, r.output
    assert "## Table 1" in r.stdout and r.stdout.startswith("# llmrca reproduce")
