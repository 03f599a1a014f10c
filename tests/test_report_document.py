"""REPORT.md / REPORT.html, the one output layout, and the newcomer-facing CLI (issue 11, items 6 and 7)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrca.cli import app

SRC = str(Path(__file__).resolve().parents[1] / "src")
METHODS = "random,nsigma,llm-rca"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "llmrca", *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def repro(tmp_path_factory) -> Path:
    """A real ``llmrca reproduce`` (quick sim campaign, 12 cases) with three methods."""
    out = tmp_path_factory.mktemp("repro") / "results"
    r = _cli("reproduce", "--out", str(out), "--methods", METHODS, "--jobs", "2", "-q")
    assert r.returncode == 0, r.stderr
    return out


def test_reproduce_layout_and_report_md(repro: Path) -> None:
    assert (repro / "dataset" / "dataset.json").is_file()
    assert (repro / "eval" / "results.jsonl").is_file() and not (repro / "results.jsonl").exists()
    md = (repro / "REPORT.md").read_text()
    # the definitions box: eq. (1), Avg@5, the tie rule, n per cell (quick profile: 3 cases per fault)
    assert "AC@k = |{R[1], ..., R[k]} ∩ V| / min(k, |V|)" in md
    assert "Avg@5** = (AC@1 + AC@2 + ... + AC@5) / 5" in md
    assert "three components tied first with the culprit among them give AC@1 = 1/3" in md
    assert "each cell averages CPU n=3, MEMORY n=3, NETWORK n=3, GPU n=3 cases" in md
    # figures embedded, with paths relative to the report, and files that exist
    images = re.findall(r"!\[[^\]]+\]\(([^)]+)\)", md)
    assert images == ["eval/misattribution.png", "fault_effects.png"]
    for rel in images:
        assert _png_size(repro / rel)[0] > 500
    # one naming: the paper's names in the table, registry names in the footnote
    assert "| LLM-aware | LLM-RCA (ours) | 1.00 |" in md or "| LLM-aware | LLM-RCA (ours) |" in md
    assert "NSigma = `nsigma`" in md and "LLM-RCA (ours) = `llm-rca`" in md
    assert "| nsigma |" not in md


def test_fault_effect_figure_is_a_readable_grid(repro: Path) -> None:
    w, h = _png_size(repro / "fault_effects.png")
    assert 1.15 <= w / h <= 1.5, (w, h)  # near 4:3, not a 5.4:1 strip
    assert w >= 1000


def test_report_html_is_self_contained_with_sortable_table_and_cases(repro: Path) -> None:
    page = (repro / "REPORT.html").read_text()
    # no external resources: no src/href to another file or host, no stylesheet links
    assert not re.search(r'<(script|img|link)[^>]+(src|href)="(?!data:)', page)
    assert page.count('src="data:image/png;base64,') == 2
    assert '<table id="table1" class="sortable">' in page and "addEventListener('click'" in page
    assert '<td title="llm-rca">LLM-RCA (ours)</td>' in page
    # one lazily filled details element per case, each with rankings and the llm-rca explanation
    cases = re.findall(r'<details class="case"><summary><b>([^<]+)</b>', page)
    assert len(cases) == 12 and "ray-worker-1_cpu/1" in cases
    first = page[page.index('<details class="case">') : page.index("</details>")]
    assert "<template>" in first and "<svg" in first and "Top-5 per method" in first
    assert "LLM-RCA (ours): explanation" in first and "culprit ray-worker-1" in first


def test_report_accepts_reproduce_folder_and_its_eval_folder(repro: Path) -> None:
    (repro / "REPORT.md").unlink()
    for arg in (repro, repro / "eval"):
        r = CliRunner().invoke(app, ["report", str(arg)])
        assert r.exit_code == 0, r.output
        assert f"report: {repro / 'REPORT.md'} and {repro / 'REPORT.html'}" in r.stdout
        assert (repro / "REPORT.md").is_file()
    r = CliRunner().invoke(app, ["report", str(repro / "dataset")])
    assert r.exit_code == 2 and "no results.jsonl in" in r.stderr and "Traceback" not in r.output


def test_evaluate_default_out_is_the_eval_part_of_a_results_folder(repro: Path, tmp_path: Path) -> None:
    r = _cli("evaluate", str(repro / "dataset"), "--methods", "nsigma", "--jobs", "1", "-q", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "results" / "eval" / "results.jsonl").is_file()
    assert not (tmp_path / "results" / "results.jsonl").exists()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "results")])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "results" / "REPORT.md").read_text()
    assert "Backend `sim`, profile `quick`, seed 0. 12 cases (cpu 3, gpu 3, memory 3, network 3), 1 method." in md
    assert "![Fault effects" in md  # the dataset was found through eval/run.json
    # one of the paper's methods: the agreement section says why it is not computed
    assert "Not computed: 1 of the paper's methods ran (NSigma), and Spearman's ρ over their cells needs at least 3" in md


def test_rank_prints_a_readable_explanation_by_default(repro: Path) -> None:
    case = repro / "dataset" / "ray-worker-2_memory" / "1"
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "llm-rca"], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    out = r.stdout
    assert "true root cause ray-worker-2: ranked #1 of 6" in out
    assert "explanation:" in out and "culprit ray-worker-2, fault type memory" in out
    assert re.search(r"ray-worker-2 mem: [0-9.e+]+ -> [0-9.e+]+ \(\+\d+ %\)", out), out
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "random"])
    assert r.exit_code == 0 and "explanation: random gives none beyond the scores above" in r.stdout


def test_rank_names_a_copied_case_by_its_folder_and_report_q_says_one_line(repro: Path, tmp_path: Path) -> None:
    copy = tmp_path / "mine"
    shutil.copytree(repro / "dataset" / "ray-worker-2_memory" / "1", copy)
    r = CliRunner().invoke(app, ["rank", str(copy), "--method", "nsigma"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert f"nsigma on {tmp_path.name}/mine (case ray-worker-2_memory/1)" in " ".join(r.stdout.split())
    r = CliRunner().invoke(app, ["rank", str(repro / "dataset" / "ray-worker-2_memory" / "1"), "--method", "nsigma"], env={"COLUMNS": "250"})
    assert "nsigma on ray-worker-2_memory/1 (basic metrics" in r.stdout
    r = CliRunner().invoke(app, ["report", "-q", str(repro)])
    assert r.exit_code == 0 and r.stdout.strip().splitlines() == [f"report: {repro / 'REPORT.md'} and {repro / 'REPORT.html'}"]


def test_methods_prints_install_hints_literally_with_the_cpu_torch_build() -> None:
    from llmrca.methods.registry import Entry, register, unregister

    register(Entry("needs-torch-x", "llmrca.methods.statistical.nsigma:NSigma", "statistical", ("llmrca_no_such_module",), "torch"))
    try:
        r = CliRunner().invoke(app, ["methods"], env={"COLUMNS": "220"})
        assert r.exit_code == 0, r.output
        line = next(x for x in r.stdout.splitlines() if "needs-torch-x" in x)
        assert 'needs llmrca_no_such_module: pip install torch==2.13.0 && pip install "llmrca[torch]"' in line
        r = CliRunner().invoke(app, ["methods", "--json"])
        row = next(x for x in json.loads(r.stdout) if x["name"] == "needs-torch-x")
        assert row["reason"] == 'needs llmrca_no_such_module: pip install torch==2.13.0 && pip install "llmrca[torch]"'
    finally:
        unregister("needs-torch-x")


def test_errors_print_data_literally(tmp_path: Path) -> None:
    bad = tmp_path / "case[bold]x[/bold]"
    r = CliRunner().invoke(app, ["rank", str(bad), "--method", "nsigma"], env={"COLUMNS": "400"})
    assert r.exit_code == 2
    assert "case[bold]x[/bold]" in r.stderr.replace("\n", "") and "Traceback" not in r.output


def test_version() -> None:
    from llmrca import __version__

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"llmrca {__version__}"


def test_campaign_takes_short_quiet_flag(tmp_path: Path) -> None:
    r = _cli("campaign", "--profile", "quick", "--set", "sim.n_workers=1", "-q", "--out", str(tmp_path / "ds"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "ds") and r.stderr == ""
    assert (tmp_path / "ds" / "dataset.json").is_file()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.system
def test_report_html_in_headless_chromium(repro: Path, tmp_path: Path) -> None:
    """Open REPORT.html in a real Chromium: it renders (screenshot), has Table 1 in the DOM, logs no console error."""
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (bash scripts/setup.sh --test installs it)")
    url = (repro / "REPORT.html").resolve().as_uri()
    base = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    shot = tmp_path / "report.png"
    r = subprocess.run([*base, "--window-size=1280,1600", f"--screenshot={shot}", url], capture_output=True, text=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000, r.stderr[-2000:]
    assert _png_size(shot) == (1280, 1600)
    # --dump-dom prints the DOM after scripts ran; --enable-logging=stderr reports every console message as INFO:CONSOLE
    r = subprocess.run([*base, "--enable-logging=stderr", "--v=0", "--dump-dom", url], capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert '<table id="table1" class="sortable">' in dom and dom.count("<tr>") >= 4, dom[:500]
    console = [x for x in r.stderr.splitlines() if ":CONSOLE" in x]
    assert console == [], console
    # the check itself can fail: a page with a script error is caught
    broken = tmp_path / "broken.html"
    broken.write_text((repro / "REPORT.html").read_text().replace("<script>", "<script>undefinedFunction();", 1))
    r = subprocess.run([*base, "--enable-logging=stderr", "--v=0", "--dump-dom", broken.as_uri()], capture_output=True, text=True, timeout=120)
    assert any(":CONSOLE" in x and "undefinedFunction" in x for x in r.stderr.splitlines()), r.stderr[-2000:]


def test_report_names_a_case_that_could_not_be_read_as_unreadable(repro: Path, tmp_path: Path) -> None:
    """A case whose data cannot be read is counted in the report's setting as 'unreadable', not as fault 'None'."""
    ds = tmp_path / "dataset"
    shutil.copytree(repro / "dataset", ds)
    (ds / "ray-worker-1_cpu" / "1" / "data.csv").write_text("this is not a table\n\x00\x01\n")
    r = _cli("evaluate", str(ds), "--methods", "nsigma", "--jobs", "1", "-q", "--out", str(tmp_path / "res" / "eval"))
    assert r.returncode in (0, 1), r.stderr
    r = CliRunner().invoke(app, ["report", str(tmp_path / "res")])
    assert r.exit_code == 0, r.output
    md = (tmp_path / "res" / "REPORT.md").read_text()
    assert "12 cases (" in md and "unreadable 1" in md and "None 1" not in md, md[:2000]


def test_report_html_has_every_section_of_report_md(repro: Path) -> None:
    """README: REPORT.html is 'the same in one self-contained file' — every ## section of REPORT.md is an <h2> there."""
    md = (repro / "REPORT.md").read_text()
    page = (repro / "REPORT.html").read_text()
    md_sections = [h for h in re.findall(r"^## (.+)$", md, flags=re.M) if h not in ("Files",)]  # paths of files beside it
    html_sections = re.findall(r"<h2>([^<]+)</h2>", page)
    assert "Best overall" in md_sections
    assert [h for h in md_sections if h not in html_sections] == [], (md_sections, html_sections)
    assert "<h2>Best overall</h2><ol><li>" in page
    assert "`llmrca" not in page  # commands in the text are <code>, not raw backticks
