"""Bad user files and options of ``llmrca collect`` (and ``--set``/``--out`` of other commands):
one ``error:`` line naming the file or option, exit 2, never a traceback.

Every case here fails before any network traffic: the Prometheus URL is a
closed loopback port, so a check that let the input through would end in a
connection error (exit 1) and the test would fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.dataset.io import TRACE_COLUMNS

WINDOW = ["--start", "1750000000", "--end", "1750000240", "--inject", "1750000180"]
PROM = "http://127.0.0.1:9"


def _run(args: list[str]) -> tuple[int, str]:
    res = CliRunner().invoke(app, args, terminal_width=400)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    out = res.output
    assert "Traceback" not in out
    return res.exit_code, out


def _collect(tmp_path: Path, components: Path | str, *extra: str) -> tuple[int, str]:
    return _run(["collect", PROM, "--components", str(components), *WINDOW, "--out", str(tmp_path / "case"), *extra])


def _good(tmp_path: Path) -> Path:
    p = tmp_path / "ok.yaml"
    p.write_text("ray-worker-1: 'pod=\"ray-worker-1\"'\n")
    return p


def _one_error_line(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1, out
    assert lines[0].startswith("error: "), out
    return lines[0]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("a: [1,2\n", ["not valid YAML", "line 2", "quote each selector"]),
        ('ray-worker-1: {pod=~"ray-worker-1.*"}\n', ["'ray-worker-1'", "YAML mapping", "ray-worker-1: 'pod=~\"ray-worker-1.*\"'"]),
        ("ray_worker: 'pod=\"x\"'\n", ["'ray_worker'", "contains '_'"]),
        ("ray-worker-1: ''\n", ["'ray-worker-1'", "not a non-empty string"]),
        ("ray-worker-1: 5\n", ["is 5", "not a non-empty string"]),
        ("ray-worker-1:\n", ["is None", "not a non-empty string"]),
        ("ray-worker-1: ['pod=\"x\"']\n", ["not a non-empty string"]),
        ("- ray-worker-1\n", ["(it is a list)", "must map component names"]),
        ("", ["(it is empty)"]),
        ("1: 'pod=\"x\"'\n", ["is a int, not a string"]),
    ],
)
def test_collect_components_content(tmp_path: Path, text: str, needles: list[str]) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text)
    code, out = _collect(tmp_path, f)
    line = _one_error_line(out)
    assert code == 2
    assert "--components" in line and str(f) in line
    for n in needles:
        assert n in line, line
    assert not (tmp_path / "case").exists()


def test_collect_components_file_problems(tmp_path: Path) -> None:
    code, out = _collect(tmp_path, tmp_path / "nonexist.yaml")
    assert code == 2 and "does not exist" in _one_error_line(out) and "nonexist.yaml" in out
    code, out = _collect(tmp_path, tmp_path)
    assert code == 2 and "not a regular file" in _one_error_line(out)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x90garbage")
    code, out = _collect(tmp_path, binary)
    assert code == 2 and "UTF-8" in _one_error_line(out)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_collect_components_unreadable(tmp_path: Path) -> None:
    f = _good(tmp_path)
    f.chmod(0)
    code, out = _collect(tmp_path, f)
    assert code == 2 and "cannot read" in _one_error_line(out)


def _span_line(**over: object) -> str:
    obj: dict[str, object] = dict.fromkeys(TRACE_COLUMNS, "x")
    obj.update(parentSpanID="", duration=1000, statusCode=200, startTime=1750000100 * 10**6)
    obj.update(over)
    return json.dumps(obj) + "\n"


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--log", "nofile"], ["--log 'nofile'", "component=path"]),
        (["--log", "ray-worker-1=MISSING"], ["--log", "MISSING", "does not exist"]),
        (["--log", "ray-worker-1=DIR"], ["--log", "not a regular file"]),
        (["--log", "ray_worker=GOOD"], ["--log", "'ray_worker' contains '_'"]),
        (["--spans", "MISSING"], ["--spans", "MISSING", "does not exist"]),
        (["--spans", "NULLSPAN"], ["--spans", "null.jsonl:1", "a JSON null, not an object"]),
        (["--spans", "BADTIME"], ["--spans", "badtime.jsonl:2", "duration is 'soon'"]),
        (["--spans", "NOKEYS"], ["--spans", "nokeys.jsonl:1", "missing keys"]),
        (["--gpu", "ray-worker-1"], ["--gpu 'ray-worker-1'", "component=selector"]),
        (["--gpu", "ray-worker-1="], ["--gpu", "component=selector"]),
        (["--gpu", "ray_worker=UUID=\"GPU-1\""], ["--gpu", "'ray_worker' contains '_'"]),
        (["--gpu-join", "kube_pod_info"], ["--gpu-join", "SERIES:LABEL=DCGM_LABEL"]),
    ],
)
def test_collect_file_options(tmp_path: Path, extra: list[str], needles: list[str]) -> None:
    (tmp_path / "null.jsonl").write_text("null\n")
    (tmp_path / "badtime.jsonl").write_text(_span_line() + _span_line(duration="soon"))
    (tmp_path / "nokeys.jsonl").write_text('{"traceID": "a"}\n')
    subst = {
        "MISSING": str(tmp_path / "MISSING"),
        "DIR": str(tmp_path),
        "GOOD": str(_good(tmp_path)),
        "NULLSPAN": str(tmp_path / "null.jsonl"),
        "BADTIME": str(tmp_path / "badtime.jsonl"),
        "NOKEYS": str(tmp_path / "nokeys.jsonl"),
    }
    args = [next((a.replace(k, v) for k, v in subst.items() if k in a), a) for a in extra]
    code, out = _collect(tmp_path, _good(tmp_path), *args)
    line = _one_error_line(out)
    assert code == 2
    for n in needles:
        assert n in line, line


def test_collect_out_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("x")
    res = CliRunner().invoke(app, ["collect", PROM, "--components", str(_good(tmp_path)), *WINDOW, "--out", str(f)], terminal_width=400)
    assert res.exit_code == 2 and "is a file, not a folder" in _one_error_line(res.output)


def test_collect_valid_inputs_reach_prometheus(tmp_path: Path) -> None:
    """Good files pass every check: the run gets as far as the (closed) Prometheus port."""
    log = tmp_path / "w1.log"
    log.write_text("2025-06-15T15:08:30Z engine ready\n")
    spans = tmp_path / "s.jsonl"
    spans.write_text(_span_line())
    code, out = _collect(
        tmp_path, _good(tmp_path), "--log", f"ray-worker-1={log}", "--spans", str(spans),
        "--gpu", 'ray-worker-1=UUID="GPU-1"', "--gpu-join", "kube_pod_info:node=Hostname",
    )
    assert code == 1
    assert "cannot reach Prometheus at http://127.0.0.1:9" in out


@pytest.mark.parametrize(
    "args",
    [
        ["rank", "CASE", "-m", "random", "--set", "seed=[1,2"],
        ["campaign", "--out", "OUT", "--set", "fault.cpu.workers=[1"],
        ["heal", "--fault", "cpu", "--set", "sim.x={a", "--out", "OUT"],
        ["k8s", "render", "--out", "OUT", "--set", "model=[x"],
    ],
)
def test_set_value_not_yaml(tmp_path: Path, args: list[str]) -> None:
    args = [a.replace("CASE", str(tmp_path)).replace("OUT", str(tmp_path / "out")) for a in args]
    code, out = _run(args)
    line = _one_error_line(out)
    assert code == 2
    bad = args[args.index("--set") + 1]
    assert f"--set {bad!r}" in line and "not valid YAML" in line and "quote it" in line
    assert not (tmp_path / "out").exists()


def test_load_out_folder_missing(tmp_path: Path) -> None:
    """The output path is checked before any request is sent."""
    code, out = _run(["load", PROM, "--qps", "1", "--duration", "0.2", "--model", "m", "--out", str(tmp_path / "no" / "x.csv")])
    assert code == 2
    assert "--out" in _one_error_line(out) and "does not exist" in out
    code, out = _run(["load", PROM, "--qps", "1", "--duration", "0.2", "--model", "m", "--out", str(tmp_path)])
    assert code == 2 and "is a folder" in _one_error_line(out)


@pytest.mark.parametrize(
    ("window", "needle"),
    [
        (["--start", "1750000240", "--end", "1750000000", "--inject", "1750000100"], "--start 1750000240 must be before --end 1750000000"),
        (["--start", "1750000000", "--end", "1750000240", "--inject", "1750003840"], "--inject 1750003840 must lie inside the window"),
        (["--start", "1750000000", "--end", "1750000240", "--inject", "1750000000"], "--inject 1750000000 must lie inside the window"),
        ([*WINDOW, "--fault-end", "1750000100"], "--fault-end 1750000100 must be after --inject 1750000180"),
    ],
)
def test_collect_refuses_an_inconsistent_window_before_any_query(tmp_path: Path, window: list[str], needle: str) -> None:
    """An injection time outside --start..--end (or a window the wrong way round) is a usage error, said up front
    (exit 2), not a case written and then refused as a time-zone shift."""
    code, out = _run(["collect", PROM, "--components", str(_good(tmp_path)), *window, "--out", str(tmp_path / "case")])
    assert code == 2
    assert needle in _one_error_line(out)


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--methods", "nsigma,barro"], "unknown method(s) ['barro']"),
        (["--methods", "NSigma"], "unknown method(s) ['NSigma']"),
        (["--methods", ""], "no methods given"),
        (["--jobs", "0"], "--jobs must be >= 1, got 0"),
        (["--jobs", "-1"], "--jobs must be >= 1, got -1"),
        (["--timeout", "0"], "--timeout must be a finite number of seconds > 0"),
        (["--timeout", "inf"], "--timeout must be a finite number of seconds > 0, got inf"),
        (["--timeout", "nan"], "--timeout must be a finite number of seconds > 0, got nan"),
        (["--metric-set", "bogus"], "unknown metric set 'bogus' (--metric-set)"),
        (["--seed", "-5"], "--seed must be a whole number >= 0, got -5"),
    ],
)
def test_reproduce_refuses_bad_options_before_its_campaign(tmp_path: Path, extra: list[str], said: str) -> None:
    """Each was refused only after the whole campaign had run (or, for --seed, deep inside it, leaving a lock)."""
    out = tmp_path / "r"
    r = CliRunner().invoke(app, ["reproduce", "--out", str(out), "-q", *extra], terminal_width=400)
    assert r.exit_code == 2 and said in r.output and "Traceback" not in r.output, r.output
    assert not out.exists()  # nothing ran, nothing was left behind: the corrected command starts clean


def test_evaluate_refuses_a_timeout_that_is_not_finite(tmp_path: Path) -> None:
    for t in ("inf", "nan"):
        r = CliRunner().invoke(app, ["evaluate", str(tmp_path), "-m", "nsigma", "--timeout", t, "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and f"--timeout must be a finite number of seconds > 0, got {t}" in r.output, r.output


def test_reproduce_and_report_name_an_output_that_cannot_be_written(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["reproduce", "--out", "/proc/llmrca-nowhere", "-q", "--methods", "nsigma"], terminal_width=400)
    assert r.exit_code == 2 and "--out /proc/llmrca-nowhere: cannot write /proc/llmrca-nowhere" in r.output, r.output
    assert "Traceback" not in r.output
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.system(f"chattr +i {ro} 2>/dev/null") != 0:
        pytest.skip("chattr +i is not supported on this file system")
    try:
        r = CliRunner().invoke(app, ["reproduce", "--out", str(ro), "-q", "--methods", "nsigma"], terminal_width=400)
        assert r.exit_code == 2 and f"--out {ro}: cannot write {ro}/dataset (Operation not permitted)" in r.output, r.output
    finally:
        os.system(f"chattr -i {ro}")


@pytest.mark.parametrize(
    "args",
    [["reproduce", "--out", ""], ["evaluate", ".", "--out", ""], ["campaign", "--out", " "], ["k8s", "render", "--out", ""],
     ["heal", "--fault", "cpu", "--out", ""]],
)
def test_an_empty_output_folder_is_refused_not_read_as_the_current_one(tmp_path: Path, args: list[str]) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = CliRunner().invoke(app, args, terminal_width=400)
    finally:
        os.chdir(cwd)
    assert r.exit_code == 2 and "an empty path names no folder" in r.output, r.output
    assert list(tmp_path.iterdir()) == []  # nothing was written where the command ran
