"""Every malformed case folder gives a clear, actionable error; imports and `dataset` commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmrca.dataset.io import Dataset, read_case, write_case
from llmrca.dataset.validate import import_tree, validate_dataset
from llmrca.model import CaseValidationError
from llmrca.synthetic import make_case

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _good(tmp_path: Path, name: str = "ray-worker-1_cpu/1") -> Path:
    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    return write_case(case, tmp_path / name)


def _edit_data(folder: Path, fn) -> None:
    df = pd.read_csv(folder / "data.csv")
    df = fn(df)
    df.to_csv(folder / "data.csv", index=False)


def _problems(folder: Path) -> str:
    with pytest.raises(CaseValidationError) as ei:
        read_case(folder)
    return str(ei.value)


def test_good_case_reads(tmp_path: Path) -> None:
    c = read_case(_good(tmp_path))
    assert c.root_causes == {"ray-worker-1"} and c.fault_type == "cpu"


def test_missing_time(tmp_path: Path) -> None:
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.drop(columns=["time"]))
    assert "no 'time' column" in _problems(f)


def test_non_numeric_time(tmp_path: Path) -> None:
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.assign(time=d["time"].astype(str).where(d.index != 3, "yesterday")))
    msg = _problems(f)
    assert "'time' is not numeric" in msg and "row 3" in msg and "epoch seconds" in msg


def test_non_monotonic_time(tmp_path: Path) -> None:
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.iloc[[0, 2, 1, *range(3, len(d))]])
    msg = _problems(f)
    assert "not increasing" in msg and "sort rows by time" in msg


def test_duplicated_timestamps(tmp_path: Path) -> None:
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.assign(time=d["time"].where(d.index != 5, d["time"].iloc[4])))
    assert "duplicated timestamps (first at row 5" in _problems(f)


def test_component_with_underscore_in_topology(tmp_path: Path) -> None:
    f = _good(tmp_path)
    spec = json.loads((f / "case.json").read_text())
    spec["topology"]["nodes"][0] = "nginx_gateway"
    (f / "case.json").write_text(json.dumps(spec))
    msg = _problems(f)
    assert "case.json: field topology.nodes[0] is a string 'nginx_gateway'" in msg and "must not contain '_'" in msg


def test_root_cause_with_underscore(tmp_path: Path) -> None:
    f = _good(tmp_path)
    spec = json.loads((f / "case.json").read_text())
    spec["root_causes"] = ["ray_worker_1"]
    (f / "case.json").write_text(json.dumps(spec))
    assert "case.json: field root_causes[0] is a string 'ray_worker_1'" in _problems(f) and "must not contain '_'" in _problems(f)


def test_column_not_component_metric(tmp_path: Path) -> None:
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.assign(cpuload=1.0))
    msg = _problems(f)
    assert "['cpuload'] are not '<component>_<metric>'" in msg


def test_injection_time_outside_data(tmp_path: Path) -> None:
    f = _good(tmp_path)
    spec = json.loads((f / "case.json").read_text())
    spec["inject_time"] = 5.0  # seconds instead of epoch seconds
    (f / "case.json").write_text(json.dumps(spec))
    msg = _problems(f)
    assert "injection time 5.0 is outside the data" in msg and "epoch seconds" in msg


def test_all_nan_column(tmp_path: Path) -> None:
    # read cases are normalised: the all-NaN column is dropped with a note (it used to be an error)
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.assign(**{"ray-head_gpu": np.nan}))
    c = read_case(f)
    assert "ray-head_gpu" not in c.metrics.columns
    assert any("dropped 1 all-NaN column(s) ['ray-head_gpu']" in n for n in c.meta["normalised"])
    # an in-memory case handed to validate() still reports it
    bad = c.with_metric_set("basic")
    bad.metrics = bad.metric_sets["basic"] = bad.metrics.assign(**{"ray-head_gpu": np.nan})
    with pytest.raises(CaseValidationError, match="column 'ray-head_gpu' is all NaN; drop it"):
        bad.validate()


def test_infinite_values(tmp_path: Path) -> None:
    # read cases are normalised: +-Inf becomes missing with a note (it used to be an error)
    f = _good(tmp_path)
    _edit_data(f, lambda d: d.assign(**{"ray-head_cpu": d["ray-head_cpu"].where(d.index != 7, np.inf)}))
    c = read_case(f)
    assert np.isnan(c.metrics["ray-head_cpu"].iloc[7]) and c.metrics["ray-head_cpu"].notna().sum() == len(c.metrics) - 1
    assert any("1 infinite value(s) in ['ray-head_cpu'] treated as missing" in n for n in c.meta["normalised"])
    bad = c.with_metric_set("basic")
    bad.metrics = bad.metric_sets["basic"] = bad.metrics.assign(**{"ray-head_cpu": c.metrics["ray-head_cpu"].fillna(np.inf)})
    with pytest.raises(CaseValidationError, match=r"column 'ray-head_cpu' has infinite values \(first at row 7\)"):
        bad.validate()


def test_empty_frame(tmp_path: Path) -> None:
    f = _good(tmp_path)
    (f / "data.csv").write_text("")
    assert "data.csv is empty (no header row)" in _problems(f)
    (f / "data.csv").write_text("time,ray-head_cpu\n")
    assert "data.csv has a header but no rows" in _problems(f)


def test_root_cause_not_a_component(tmp_path: Path) -> None:
    f = _good(tmp_path)
    spec = json.loads((f / "case.json").read_text())
    spec["root_causes"] = ["ray-worker-9"]
    (f / "case.json").write_text(json.dumps(spec))
    msg = _problems(f)
    assert "root_causes[0] is 'ray-worker-9', not a node of topology.nodes" in msg
    assert "fault.target is 'ray-worker-1', which is not in root_causes" in msg
    spec["topology"] = None
    spec["fault"]["target"] = "ray-worker-9"
    (f / "case.json").write_text(json.dumps(spec))
    assert "root cause 'ray-worker-9' is not a component of data.csv" in _problems(f)


def test_unreadable_files(tmp_path: Path) -> None:
    f = _good(tmp_path)
    (f / "data.csv").write_bytes(b"\xff\xfe\x00\x81garbage\x00\n\x92\x93")
    msg = _problems(f)
    assert "data.csv is not UTF-8 text" in msg and "save it as UTF-8" in msg
    g = _good(tmp_path, "ray-worker-2_cpu/1")
    (g / "case.json").write_text("{not json")
    assert "case.json: not valid JSON" in _problems(g) and "line 1 column 2" in _problems(g)
    h = _good(tmp_path, "ray-worker-3_cpu/1")
    (h / "case.json").write_text(json.dumps({"fault": {"target": "x"}}))  # no fault type
    assert "case.json: field fault.type is missing" in _problems(h)
    k = _good(tmp_path, "ray-head_cpu/1")
    (k / "case.json").unlink()
    (k / "inject_time.txt").write_text("soon")
    assert "holds 'soon', not a number of epoch seconds" in _problems(k)


def _plain_tree(root: Path) -> None:
    """An RCAEval / rca-llm tree: data.csv + inject_time.txt, truth only in folder names."""
    for i, (comp, fault) in enumerate([("ray-worker-1", "cpu"), ("ray-worker-2", "mem"), ("ray-worker-3", "delay")]):
        c = make_case(root=comp, fault={"mem": "memory", "delay": "network"}.get(fault, fault), seed=i, with_logs=False, with_traces=False)
        d = root / f"{comp}_{fault}" / "1"
        d.mkdir(parents=True)
        c.metrics.to_csv(d / "data.csv", index=False)
        (d / "inject_time.txt").write_text(f"{int(c.inject_time)}\n")


def test_import_plain_tree_takes_truth_from_folder_names(tmp_path: Path) -> None:
    _plain_tree(tmp_path / "plain")
    c = read_case(tmp_path / "plain" / "ray-worker-2_mem" / "1")
    assert c.root_causes == {"ray-worker-2"} and c.fault_type == "memory"
    rep = import_tree(tmp_path / "plain", tmp_path / "ours")
    assert sorted(rep.imported) == ["ray-worker-1_cpu/1", "ray-worker-2_mem/1", "ray-worker-3_delay/1"] and not rep.problems
    spec = json.loads((tmp_path / "ours" / "ray-worker-3_delay" / "1" / "case.json").read_text())
    assert spec["fault"]["type"] == "network" and spec["root_causes"] == ["ray-worker-3"]
    manifest = json.loads((tmp_path / "ours" / "dataset.json").read_text())
    assert manifest["n_cases"] == 3
    assert validate_dataset(tmp_path / "ours").ok


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "llmrca", *args], capture_output=True, text=True, env=env, timeout=120)


def test_dataset_validate_and_import_commands(tmp_path: Path) -> None:
    _plain_tree(tmp_path / "plain")
    r = _cli("dataset", "import", str(tmp_path / "plain"), str(tmp_path / "ours"))
    assert r.returncode == 0, r.stderr
    assert "imported 3 case(s)" in r.stdout
    from typer.testing import CliRunner

    from llmrca.cli import app

    assert CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ours")]).exit_code == 0
    _edit_data(tmp_path / "ours" / "ray-worker-1_cpu" / "1", lambda d: d.drop(columns=["time"]))
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ours")])
    assert r.exit_code == 1
    assert "ray-worker-1_cpu/1:" in r.stdout and "no 'time' column" in r.stdout and "2 valid case(s), 1 with problems" in r.stdout
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "missing")])
    assert r.exit_code == 2 and "does not exist" in r.stderr and "Traceback" not in r.output


_BASIC_GONE = ("case.json: field metric_sets.basic names 'missing.csv', which does not exist in the case folder; "
               "add the file or correct the name (a case needs its basic metrics)")


@pytest.mark.parametrize(
    ("metric_sets", "expected"),
    [
        ({"basic": 5}, ["case.json: field metric_sets.basic is an integer 5; expected a file name string such as 'data.csv'"]),
        ({"basic": None}, ["case.json: field metric_sets.basic is null; expected a file name string such as 'data.csv'"]),
        ({"basic": "missing.csv"}, [_BASIC_GONE]),
        ({"basic": "missing.csv", "extended": "data_extended.csv"}, [_BASIC_GONE]),
        ({"basic": "data.csv", "extended": "nope.csv"},
         ["case.json: field metric_sets.extended names 'nope.csv', which does not exist in the case folder; add the file or remove the entry"]),
    ],
)
def test_an_invalid_metric_sets_is_one_message_in_validate_and_rank(tmp_path: Path, metric_sets: dict, expected: list[str]) -> None:
    """A bad case.json ``metric_sets`` (wrong type, a file not in the folder) is said once, in one wording,
    by ``dataset validate`` and by ``rank`` (the layout check, the reader and the data checks all meet a missing file)."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    folder = _good(tmp_path / "ds")
    (folder / "data_extended.csv").write_bytes((folder / "data.csv").read_bytes())
    d = json.loads((folder / "case.json").read_text())
    d["metric_sets"] = metric_sets
    (folder / "case.json").write_text(json.dumps(d))
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=400)
    assert r.exit_code == 1, r.output
    assert [ln[4:] for ln in r.stdout.splitlines() if ln.startswith("  - ")] == expected, r.stdout
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma", "--quiet"], terminal_width=400)
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert " ".join(r.stderr.split()) == f"error: invalid case {folder}: " + "; ".join(expected)


def _inject_at(folder: Path, at: float) -> None:
    d = json.loads((folder / "case.json").read_text())
    d["inject_time"] = at
    (folder / "case.json").write_text(json.dumps(d))
    (folder / "inject_time.txt").write_text(f"{at:.0f}\n")


@pytest.mark.parametrize("side", ["last", "third"])
def test_an_injection_time_near_an_end_of_the_data_is_a_warning(tmp_path: Path, side: str) -> None:
    """An injection time on the last row (one sample from it on) or the third (two before it) leaves few
    samples on one side: the case is read (it is valid) and ranked, but rank and dataset validate warn,
    naming the side, every time it is read; an import does not record the warning in case.json."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    folder = _good(tmp_path / "ds")
    t = pd.read_csv(folder / "data.csv")["time"]
    at = float(t.iloc[-1] if side == "last" else t.iloc[2])
    _inject_at(folder, at)
    want = (f"data.csv has only 1 of its {len(t)} rows at or after the injection time ({at:.0f}); methods score the fault on 1 sample(s)"
            if side == "last" else f"data.csv has only 2 of its {len(t)} rows before the injection time ({at:.0f}); methods take the normal behaviour from 2 samples")
    notes = read_case(folder).meta["normalised"]
    assert sum(want in n for n in notes) == 1, notes
    assert "check case.json's inject_time" in " ".join(notes)  # where this case's injection time comes from
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=400)
    assert r.exit_code == 0 and f"ray-worker-1_cpu/1: warning: short window: {want}" in r.stdout, r.stdout
    assert "repaired" not in r.stdout  # a warning about the case, not a repair of what was read
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma", "--quiet"], terminal_width=400)
    assert r.exit_code == 0 and want in " ".join(r.output.split()) and "repair(s)" not in r.output, r.output
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma", "--json"], terminal_width=400)
    got = json.loads(r.stdout[r.stdout.index("{"):])
    assert any(want in w for w in got["case_warnings"]) and got["case_repairs"] == [], r.stdout
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "ds"), str(tmp_path / "again")], terminal_width=400)
    assert r.exit_code == 0 and want in " ".join(r.output.split()), r.output
    recorded = json.loads((tmp_path / "again" / "ray-worker-1_cpu" / "1" / "case.json").read_text())["normalised"]
    assert not any("short window" in n for n in recorded)  # re-derived on every read, never piled up
    assert sum(want in n for n in read_case(tmp_path / "again" / "ray-worker-1_cpu" / "1").meta["normalised"]) == 1


@pytest.mark.parametrize("row", [0, 1])
def test_an_injection_time_on_the_first_or_second_row_is_a_problem(tmp_path: Path, row: int) -> None:
    """Fewer than two rows before the injection leave the methods no normal window: a problem said by
    validate and rank alike (not 'outside the data' when it is the first row's time)."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    folder = _good(tmp_path / "ds")
    t = pd.read_csv(folder / "data.csv")["time"]
    at = float(t.iloc[row])
    _inject_at(folder, at)
    want = f"injection time {at} leaves {row} row(s) before it (the data starts at {float(t.iloc[0])})"
    with pytest.raises(CaseValidationError) as e:
        read_case(folder)
    assert any(want in p for p in e.value.problems) and not any("outside the data" in p for p in e.value.problems), e.value.problems
    assert any("check case.json's inject_time, or export data from before the fault" in p for p in e.value.problems)  # its source
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")], terminal_width=400)
    assert r.exit_code == 1 and want in r.stdout, r.stdout
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma"], terminal_width=400)
    assert r.exit_code == 2 and want in " ".join(r.output.split()), r.output
    # --json answers on stdout too: a script gets the case's problems one by one, not only an error line on stderr
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma", "--json", "-q"], terminal_width=400)
    got = json.loads(r.stdout)
    assert r.exit_code == 2 and want in " ".join(r.stderr.split()), r.stderr
    assert (got["status"], got["error_kind"], got["method"]) == ("failed", "invalid_case", "nsigma")
    assert any(want in p for p in got["problems"]) and want in got["error"], got
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma", "--set", "baro.x=1", "--json", "-q"])
    assert r.exit_code == 2 and json.loads(r.stdout)["error_kind"] == "usage" and json.loads(r.stdout)["problems"] == [], r.stdout


def test_a_short_window_in_the_extended_set_alone_is_warned_about(tmp_path: Path) -> None:
    """A set that holds fewer rows than the basic one (cut at the start) is warned about on its own:
    `rank --metric-set extended` scores on its rows."""
    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    ext = case.metrics.assign(**{"ray-worker-1_kv-cache": np.linspace(0.1, 0.9, len(case.metrics))})
    k = int((ext["time"] < case.inject_time).sum())
    case.metric_sets = {"basic": case.metrics, "extended": ext.iloc[k - 2:].reset_index(drop=True)}
    folder = write_case(case, tmp_path / "ray-worker-1_cpu" / "1")
    notes = read_case(folder).meta["normalised"]
    assert any(n.startswith("warning: short window: data_extended.csv has only 2 of its") for n in notes), notes
    assert not any("short window: data.csv" in n for n in notes)


def test_an_injection_time_with_room_on_both_sides_gives_no_window_warning(tmp_path: Path) -> None:
    folder = _good(tmp_path)
    t = pd.read_csv(folder / "data.csv")["time"]
    d = json.loads((folder / "case.json").read_text())
    d["inject_time"] = float(t.iloc[-3])  # three rows from it on: enough
    (folder / "case.json").write_text(json.dumps(d))
    (folder / "inject_time.txt").unlink(missing_ok=True)
    assert not any("short window" in n for n in read_case(folder).meta.get("normalised", []))


def test_dataset_skips_a_bad_case_without_stopping(tmp_path: Path) -> None:
    cases = [make_case(root=r, fault="cpu", seed=1, with_logs=False, with_traces=False) for r in ("ray-worker-1", "ray-worker-2")]
    ds = Dataset.write(cases, tmp_path / "ds")
    (tmp_path / "ds" / "ray-worker-1_cpu" / "1" / "data.csv").write_text("")
    got = [(d.parent.name, isinstance(c, CaseValidationError)) for d, c in ds.iter_cases()]
    assert got == [("ray-worker-1_cpu", True), ("ray-worker-2_cpu", False)]


def test_import_of_a_tree_with_no_readable_case_leaves_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "plain" / "ray-worker-1_cpu" / "1"
    bad.mkdir(parents=True)
    (bad / "data.csv").write_text("time,ray-worker-1_cpu\n")  # a header, no rows
    r = _cli("dataset", "import", str(tmp_path / "plain"), str(tmp_path / "ours"))
    assert r.returncode == 1 and "imported 0 case(s)" in r.stdout and "skipped ray-worker-1_cpu/1" in r.stdout
    assert not (tmp_path / "ours").exists()
    (tmp_path / "given").mkdir()  # a folder the user made stays, empty
    assert import_tree(tmp_path / "plain", tmp_path / "given").imported == []
    assert (tmp_path / "given").is_dir() and not any((tmp_path / "given").iterdir())


def test_validate_after_import_tells_repairs_made_now_from_those_recorded_at_import(tmp_path: Path) -> None:
    src = tmp_path / "plain" / "ray-worker-1_cpu" / "1"
    src.mkdir(parents=True)
    t = 1_767_225_600 + 5 * np.arange(120)
    pd.DataFrame({"time": t * 1000, "ray-worker-1_cpu": np.r_[np.ones(60), 5 * np.ones(60)], "nginx-gateway_latency-90": np.ones(120)}).to_csv(src / "data.csv", index=False)
    (src / "inject_time.txt").write_text(str(t[60]))
    r = _cli("dataset", "import", str(tmp_path / "plain"), str(tmp_path / "ours"))
    assert r.returncode == 0 and "epoch milliseconds" in r.stdout
    r = _cli("dataset", "validate", str(tmp_path / "ours"))
    assert r.returncode == 0 and "epoch milliseconds" not in r.stdout  # not presented as a repair made now
    assert "1 case(s) were repaired when imported" in r.stdout
    check = validate_dataset(tmp_path / "ours")
    assert check.notes == {} and "epoch milliseconds" in check.recorded["ray-worker-1_cpu/1"][0]
    r = _cli("dataset", "validate", str(tmp_path / "plain"))  # the original still needs the repair, now
    assert "ray-worker-1_cpu/1: repaired" in r.stdout and "epoch milliseconds" in r.stdout


def test_validate_warns_about_cases_of_two_layouts(tmp_path: Path) -> None:
    """A dataset joined from two campaigns (other columns, another call graph) is readable but flagged once."""
    from dataclasses import replace

    from llmrca.telemetry.catalogue import paper_topology

    for i in (1, 2):
        write_case(make_case(root="ray-worker-1", fault="cpu", seed=i, with_logs=False, with_traces=False), tmp_path / f"ray-worker-1_cpu/{i}")
    alike = validate_dataset(tmp_path)
    assert alike.ok and "dataset" not in alike.warnings
    other = make_case(root="ray-worker-2", fault="cpu", seed=3, with_logs=False, with_traces=False)
    m = other.metrics.drop(columns=[c for c in other.metrics.columns if c.endswith("_latency-50")])
    write_case(replace(other, metrics=m, metric_sets={"basic": m}, topology=paper_topology(3, "every-pod")), tmp_path / "ray-worker-2_cpu/1")
    mixed = validate_dataset(tmp_path)
    assert mixed.ok  # a warning, not a problem: each case is valid on its own
    (w,) = mixed.warnings["dataset"]
    assert "2 case(s) such as ray-worker-1_cpu/1" in w and "1 case(s) such as ray-worker-2_cpu/1" in w
    assert "6 fewer column(s) (e.g. no kuberay-operator_latency-50)" in w and "another call graph (edges kuberay-operator->ray-head" in w
    out = subprocess.run([sys.executable, "-m", "llmrca", "dataset", "validate", str(tmp_path)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, check=False)
    assert out.returncode == 0 and "dataset: warning: the cases are not alike" in out.stdout
    # evaluate says it too (a note beside its results), and still scores every case
    ev = subprocess.run([sys.executable, "-m", "llmrca", "evaluate", str(tmp_path), "--methods", "nsigma", "--out", str(tmp_path / "ev"),
                         "--jobs", "1", "--quiet"], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}, check=False)
    assert ev.returncode == 0, ev.stderr
    assert "note: the cases are not alike: 2 case(s) such as ray-worker-1_cpu/1" in " ".join((ev.stdout + ev.stderr).split())
    # and the report of that evaluation says it under Table 1
    rep = subprocess.run([sys.executable, "-m", "llmrca", "report", str(tmp_path / "ev")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": SRC}, check=False)
    assert rep.returncode == 0, rep.stderr
    md = next((tmp_path / "ev").rglob("REPORT.md")).read_text()
    assert "Warning: the cases are not alike: 2 case(s) such as ray-worker-1_cpu/1" in " ".join(md.split())


def test_evaluate_says_why_cases_were_invalid_and_compares_layouts_over_the_readable_ones(tmp_path: Path) -> None:
    """An invalid case is listed with its reason and the validate command; it is not also called "another layout"."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    for i in (1, 2):
        write_case(make_case(root="ray-worker-1", fault="cpu", seed=i, with_logs=False, with_traces=False), tmp_path / f"ds/ray-worker-1_cpu/{i}")
    bad = write_case(make_case(root="ray-worker-2", fault="cpu", seed=3, with_logs=False, with_traces=False), tmp_path / "ds/ray-worker-2_cpu/1")
    (bad / "case.json").unlink()
    (bad / "inject_time.txt").unlink()
    df = pd.read_csv(bad / "data.csv")
    df.drop(columns=[c for c in df.columns if c.endswith("_latency-50")]).to_csv(bad / "data.csv", index=False)  # another layout too
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "nsigma", "--out", str(tmp_path / "ev"), "--jobs", "1", "-q"],
                           terminal_width=400)
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "invalid cases skipped: 1" in out
    assert "ray-worker-2_cpu/1: no inject_time.txt in the case folder" in out
    assert f"every problem of every case: llmrca dataset validate {tmp_path / 'ds'}" in out
    assert "not alike" not in out  # the only case of another layout is the invalid one


def test_layout_note_says_no_call_graph_instead_of_empty_edges() -> None:
    from llmrca.dataset.validate import _mixed_shapes

    cols = ("a_cpu", "b_cpu", "time")
    w = _mixed_shapes({(cols, (("a", "b"),)): ["x/1", "x/2"], (cols, ()): ["y/1"]})
    assert "1 case(s) such as y/1 differ from them: no call graph in case.json" in w and "(edges )" not in w
    w = _mixed_shapes({(cols, ()): ["x/1", "x/2"], (cols, (("a", "b"),)): ["y/1"]})
    assert "differ from them: a call graph (edges a->b)" in w


def test_a_number_where_the_fault_label_goes_is_said(tmp_path: Path) -> None:
    """'<component>_<rep>' (ray-worker-1_1): read, but the note says the number became the fault type and how to name it."""
    folder = write_case(make_case(root="ray-worker-1", fault="cpu", seed=1, with_logs=False, with_traces=False), tmp_path / "ds/ray-worker-1_1")
    (folder / "case.json").unlink()
    case = read_case(folder)
    assert case.fault is not None and case.fault.type == "1" and case.root_causes == {"ray-worker-1"}
    (note,) = case.meta["normalised"]
    assert "ends in '1', a number, read as the fault type '1'" in note and "'<component>_<fault>/<rep>'" in note
    named = write_case(make_case(root="ray-worker-1", fault="cpu", seed=1, with_logs=False, with_traces=False), tmp_path / "ds/ray-worker-1_cpu/1")
    (named / "case.json").unlink()
    assert not read_case(named).meta.get("normalised")
