"""Resume never reports the wrong run: dataset / case / config fingerprints, --fresh, --retry, the lock, a full disk, kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import _evalhelpers
from llmrca.dataset.io import Dataset
from llmrca.evaluate import run_evaluation
from llmrca.evaluate.lock import LOCK_NAME, FolderLock, FolderLocked
from llmrca.evaluate.results import ResultsWriteError, read_results, run_key
from llmrca.evaluate.runner import DatasetMismatch
from llmrca.methods import registry
from llmrca.synthetic import make_case

SRC = str(Path(__file__).resolve().parents[1] / "src")
ROOTS = ["ray-worker-1", "ray-worker-2", "ray-worker-3"]
METHODS = ["random", "nsigma", "baro"]


def _dataset(root: Path, *, n_seeds: int = 1, faults=("cpu", "gpu"), shift: float = 6.0, seed0: int = 0) -> Path:
    cases = [
        make_case(root=r, fault=f, seed=seed0 + s, shift=shift, with_logs=False, with_traces=False)
        for s in range(n_seeds)
        for r in ROOTS
        for f in faults
    ]
    Dataset.write(cases, root)
    return root


def _summary(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "summary.csv")


def _cli_args(ds: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "llmrca", "evaluate", str(ds), "--methods", ",".join(METHODS), "--jobs", "2", "--out", str(out), "--quiet", *extra]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "llmrca", *args], capture_output=True, text=True, env=env, timeout=300)


def _lines(p: Path) -> int:
    try:
        return p.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.fixture()
def sleepy():
    registry.register(registry.Entry("test-sleepy", "_evalhelpers:Sleepy", "statistical"), replace=True)
    yield
    registry.unregister("test-sleepy")


# -- another dataset into the same --out ---------------------------------------------------


def test_a_second_dataset_into_the_same_out_is_refused_and_fresh_runs_it(tmp_path: Path) -> None:
    # same case ids (folder names), different content: A's faults are strong, B's are absent
    a = _dataset(tmp_path / "A", shift=6.0)
    b = _dataset(tmp_path / "B", shift=0.0, seed0=100)
    out = tmp_path / "out"
    ra = run_evaluation(a, ["nsigma"], out, jobs=2, progress=False)
    assert ra.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] == 1.0
    before = (out / "results.jsonl").read_bytes()
    with pytest.raises(DatasetMismatch) as ei:
        run_evaluation(b, ["nsigma"], out, jobs=2, progress=False)
    msg = str(ei.value)
    assert str(a.resolve()) in msg and "--out OTHER" in msg and "--fresh" in msg
    assert (out / "results.jsonl").read_bytes() == before  # nothing written, A's results intact
    # the CLI: exit 2, the way out in the message, no traceback
    r = _cli("evaluate", str(b), "--methods", "nsigma", "--out", str(out), "--quiet")
    assert r.returncode == 2 and "another dataset" in r.stderr and "--fresh" in r.stderr and "Traceback" not in r.stderr
    # --fresh: A's outputs move to previous/<time>/, B runs in full and the summary is B's
    rb = run_evaluation(b, ["nsigma"], out, jobs=2, fresh=True, progress=False)
    assert rb.new_runs == 6 and rb.skipped_runs == 0 and any("--fresh: moved" in n for n in rb.notes)
    clean = run_evaluation(b, ["nsigma"], tmp_path / "clean-b", jobs=2, progress=False)
    pd.testing.assert_frame_equal(_summary(out), _summary(tmp_path / "clean-b"))
    assert _summary(out).set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] < 1.0  # not A's score
    assert rb.summary.equals(clean.summary)
    prev = list((out / "previous").iterdir())
    assert len(prev) == 1 and (prev[0] / "results.jsonl").read_bytes() == before
    fp_b = read_results(tmp_path / "clean-b" / "results.jsonl")[0]["dataset_fp"]
    assert {r["dataset_fp"] for r in read_results(out / "results.jsonl")} == {fp_b}


def test_results_written_before_fingerprints_are_re_run_or_refused(tmp_path: Path) -> None:
    a = _dataset(tmp_path / "A")
    out = tmp_path / "out"
    run_evaluation(a, ["nsigma"], out, jobs=1, progress=False)
    recs = read_results(out / "results.jsonl")
    legacy = [{k: v for k, v in r.items() if k not in ("case_fp", "dataset_fp", "fp_version")} for r in recs]
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in legacy))
    res = run_evaluation(a, ["nsigma"], out, jobs=1, progress=False)
    assert res.new_runs == 6 and res.skipped_runs == 0  # not trusted: re-run
    # legacy lines of another folder are refused, not silently kept
    (out / "results.jsonl").write_text("".join(json.dumps({**r, "case_dir": "/elsewhere/" + r["case"]}) + "\n" for r in legacy))
    with pytest.raises(DatasetMismatch, match="/elsewhere"):
        run_evaluation(a, ["nsigma"], out, jobs=1, progress=False)


# -- a changed case is re-run --------------------------------------------------------------


def test_an_edited_case_is_the_only_one_re_run_and_its_new_score_is_stored(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    first = run_evaluation(ds, ["nsigma", "baro"], out, jobs=2, progress=False)
    assert first.new_runs == 12
    edited = "ray-worker-2_cpu/1"
    # replace the case's data with a fault-free version of the same case: nsigma can no longer find the root
    weak = make_case(root="ray-worker-2", fault="cpu", seed=0, shift=0.0, with_logs=False, with_traces=False)
    Dataset.write([weak], tmp_path / "weak")
    shutil.copyfile(ds / edited / "data.csv", tmp_path / "orig.csv")
    shutil.copyfile(tmp_path / "weak" / edited / "data.csv", ds / edited / "data.csv")
    again = run_evaluation(ds, ["nsigma", "baro"], out, jobs=2, progress=False)
    assert again.new_runs == 2 and again.skipped_runs == 10
    latest = {(r["method"], r["case"]): r for r in read_results(out / "results.jsonl")}
    old = [r for r in read_results(out / "results.jsonl") if r["case"] == edited]
    assert len(old) == 4 and old[0]["case_fp"] != old[-1]["case_fp"]
    # the stored score is the edited case's: identical to a clean evaluation of the edited dataset
    clean = run_evaluation(ds, ["nsigma", "baro"], tmp_path / "clean", jobs=2, progress=False)
    pd.testing.assert_frame_equal(_summary(out), _summary(tmp_path / "clean"))
    clean_recs = {(r["method"], r["case"]): r for r in read_results(tmp_path / "clean" / "results.jsonl")}
    assert latest[("nsigma", edited)]["ranking"] == clean_recs[("nsigma", edited)]["ranking"]
    assert first.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] == 1.0
    assert clean.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] < 1.0
    # nothing changed: nothing runs
    assert run_evaluation(ds, ["nsigma", "baro"], out, jobs=2, progress=False).new_runs == 0
    # the edit undone: the original runs are reused and are again the ones reported
    shutil.copyfile(tmp_path / "orig.csv", ds / edited / "data.csv")
    back = run_evaluation(ds, ["nsigma", "baro"], out, jobs=2, progress=False)
    assert back.new_runs == 0 and any("change was undone" in n for n in back.notes)
    pd.testing.assert_frame_equal(back.summary, first.summary)
    assert back.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] == 1.0


def test_a_case_fixed_after_being_invalid_is_re_run(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    good = (ds / "ray-worker-2_cpu" / "1" / "data.csv").read_bytes()
    (ds / "ray-worker-2_cpu" / "1" / "data.csv").write_text("")
    out = tmp_path / "out"
    res = run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert res.status.set_index("method").loc["nsigma", "invalid_case"] == 1
    (ds / "ray-worker-2_cpu" / "1" / "data.csv").write_bytes(good)
    res = run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert res.new_runs == 1 and res.skipped_runs == 2
    st = res.status.set_index("method")
    assert st.loc["nsigma", "invalid_case"] == 0 and st.loc["nsigma", "ok"] == 3


def test_a_changed_method_config_is_re_run(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    out = tmp_path / "out"
    run_evaluation(ds, ["baro"], out, jobs=1, progress=False)
    res = run_evaluation(ds, ["baro"], out, jobs=1, method_configs={"baro": {"q_low": 0.1}}, progress=False)
    assert res.new_runs == 3
    assert {r["config"]["q_low"] for r in read_results(out / "results.jsonl")} == {0.25, 0.1}


def test_a_method_added_later_is_reported_with_the_earlier_ones(tmp_path: Path) -> None:
    """`evaluate -m nsigma,baro` then `evaluate -m random` into one --out reported random alone (table, summary,
    fidelity), silently; the earlier methods are reported too when their runs cover the current cases, and left
    out with a note when not (a case edited since) or when they were scored in the other mode."""
    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    out = tmp_path / "out"
    first = run_evaluation(ds, ["nsigma", "baro"], out, jobs=1, progress=False)
    added = run_evaluation(ds, ["random"], out, jobs=1, progress=False)
    assert added.new_runs == 3
    assert list(dict.fromkeys(added.summary["method"])) == ["random", "nsigma", "baro"]
    both = added.summary.set_index(["method", "fault"])
    for m in ("nsigma", "baro"):  # the earlier rows are the earlier evaluation's numbers
        pd.testing.assert_series_equal(both.loc[(m, "all")], first.summary.set_index(["method", "fault"]).loc[(m, "all")])
    assert any(n.startswith("also reported, from earlier evaluations into this folder: nsigma, baro") for n in added.notes), added.notes
    r = _cli("report", str(out))
    assert r.returncode == 0 and "note: also reported, from earlier evaluations into this folder: nsigma, baro" in r.stderr, r.stderr
    assert all(f"│ {m} " in r.stdout for m in ("random", "nsigma", "baro")), r.stdout
    assert "Also reported, from earlier evaluations" in (out / "REPORT.md").read_text()
    # a case edited since: the earlier methods' runs no longer cover the current cases
    weak = make_case(root="ray-worker-2", fault="cpu", seed=0, shift=0.0, with_logs=False, with_traces=False)
    Dataset.write([weak], tmp_path / "weak")
    shutil.copyfile(tmp_path / "weak" / "ray-worker-2_cpu" / "1" / "data.csv", ds / "ray-worker-2_cpu" / "1" / "data.csv")
    res = run_evaluation(ds, ["random"], out, jobs=1, progress=False)
    assert set(res.summary["method"]) == {"random"}
    assert any(n.startswith("not reported: nsigma (2 of 3 cases), baro (2 of 3 cases), evaluated here earlier on only part")
               and "--methods nsigma,baro" in n for n in res.notes), res.notes
    # scored in the other mode (failed runs as random, the paper's): not mixed into one table
    res = run_evaluation(ds, ["random"], out, jobs=1, progress=False, random_on_failure=True)
    assert set(res.summary["method"]) == {"random"}
    assert any(n.startswith("not reported: nsigma, baro, evaluated here earlier without failed runs scored as random") for n in res.notes)


# -- --retry -------------------------------------------------------------------------------


def test_retry_timeout_re_runs_timed_out_runs_with_the_new_timeout(tmp_path: Path, sleepy) -> None:
    ds = _dataset(tmp_path / "ds", faults=("cpu",))  # 3 cases
    out = tmp_path / "out"
    _evalhelpers.Sleepy.SLEEP_S = 1.0
    res = run_evaluation(ds, ["test-sleepy", "nsigma"], out, jobs=2, timeout_s=0.3, progress=False)
    assert res.status.set_index("method").loc["test-sleepy", "timeout"] == 3
    # a larger timeout alone does not redo stored runs
    res = run_evaluation(ds, ["test-sleepy", "nsigma"], out, jobs=2, timeout_s=30, progress=False)
    assert res.new_runs == 0 and res.status.set_index("method").loc["test-sleepy", "timeout"] == 3
    assert any("3 stored timeout run(s)" in n and "--retry timeout" in n for n in res.notes)  # the way out is said
    # --retry failed does not touch timeouts; --retry timeout does, and only those
    assert run_evaluation(ds, ["test-sleepy", "nsigma"], out, jobs=2, timeout_s=30, retry="failed", progress=False).new_runs == 0
    res = run_evaluation(ds, ["test-sleepy", "nsigma"], out, jobs=2, timeout_s=30, retry="timeout", progress=False)
    assert res.new_runs == 3 and res.retried_runs == 3 and res.skipped_runs == 3
    st = res.status.set_index("method")
    assert st.loc["test-sleepy", "ok"] == 3 and st.loc["test-sleepy", "timeout"] == 0
    recs = read_results(out / "results.jsonl")
    assert len(recs) == 9  # append-only: the timed-out lines stay, the newer ones win
    assert [r["status"] for r in recs if r["method"] == "test-sleepy"] == ["timeout"] * 3 + ["ok"] * 3
    # bad status names are a clear error
    r = _cli("evaluate", str(ds), "--methods", "nsigma", "--out", str(out), "--retry", "timeout,slow", "--quiet")
    assert r.returncode == 2 and "unknown status" in r.stderr and "invalid_case" in r.stderr


@pytest.mark.parametrize("value", ["", "   ", " , ", "bogus", "failed,Timeout"])
def test_an_empty_or_unknown_retry_is_refused_before_anything_runs(tmp_path: Path, value: str) -> None:
    """``--retry ''`` used to mean "retry nothing" silently; empty, blank and unknown values are one error line, exit 2."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    for args in (["evaluate", str(ds), "--methods", "nsigma", "--out", str(tmp_path / "ev"), "--quiet"],
                 ["reproduce", "--profile", "quick", "--methods", "nsigma", "--out", str(tmp_path / "rep"), "--quiet"]):
        r = CliRunner().invoke(app, [*args, "--retry", value], terminal_width=400)
        lines = [ln for ln in r.output.splitlines() if ln.strip()]
        assert r.exit_code == 2 and len(lines) == 1, (args[0], value, r.output)
        line = lines[0]
        assert line.startswith(f"error: --retry {value!r}") and "Traceback" not in r.output
        assert "use any of failed, timeout, invalid_case, unavailable" in line
        assert ("names no status" in line) if not value.strip(" ,") else (f"unknown status(es) {value.split(',')[-1]};" in line)
    assert not (tmp_path / "ev").exists() and not (tmp_path / "rep").exists()  # refused before the campaign or any run


# -- kill -9 at random points --------------------------------------------------------------


@pytest.fixture(scope="module")
def mid_ds(tmp_path_factory) -> Path:
    return _dataset(tmp_path_factory.mktemp("mid") / "ds", n_seeds=8, faults=("cpu", "memory", "gpu"))  # 72 cases


@pytest.mark.slow
def test_kill_9_at_random_points_then_resume_gives_the_uninterrupted_summary(mid_ds: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    ref = tmp_path / "ref"
    r = subprocess.run(_cli_args(mid_ds, ref), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    total = 72 * len(METHODS)
    out = tmp_path / "out"
    res_file = out / "results.jsonl"
    rng = np.random.default_rng(20261130)
    killed_mid_run = 0
    for i in range(5):
        proc = subprocess.Popen(_cli_args(mid_ds, out), env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            if i == 0:
                time.sleep(float(rng.uniform(0.0, 1.0)))  # anywhere in start-up
            else:
                have = _lines(res_file)
                target = have + int(rng.integers(1, max(2, (total - have) // 2)))
                deadline = time.monotonic() + 120
                while _lines(res_file) < target and proc.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.002)
                time.sleep(float(rng.uniform(0.0, 0.03)))  # maybe in the middle of a write
            if proc.poll() is None:
                killed_mid_run += 1
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(30)
            proc.stderr.close()
    assert killed_mid_run == 5
    partial = read_results(res_file)
    assert 0 < len(partial) < total
    r = subprocess.run(_cli_args(mid_ds, out), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{total - len(partial)} run now, {len(partial)} resumed" in r.stdout
    assert "took over the lock" in r.stderr and "no longer running" in r.stderr
    assert (out / "summary.csv").read_text() == (ref / "summary.csv").read_text()
    assert (out / "status.csv").read_text().split("\n")[0] == (ref / "status.csv").read_text().split("\n")[0]
    keys = [run_key(x) for x in read_results(res_file)]
    assert len(keys) == len(set(keys)) == total
    assert res_file.read_bytes().endswith(b"\n")


# -- one writer per --out ------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_concurrent_evaluate_is_refused_and_nothing_interleaves(mid_ds: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    out = tmp_path / "out"
    args = _cli_args(mid_ds, out)
    args[args.index("--jobs") + 1] = "1"
    first = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _lines(out / "results.jsonl") < 3 and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert first.poll() is None, "the first evaluation ended too early to test the lock"
        # in-process: refused at once, naming the holder
        with pytest.raises(FolderLocked, match=f"pid {first.pid} on "):
            run_evaluation(mid_ds, METHODS, out, jobs=1, progress=False)
        # a second CLI: non-zero exit, clear message
        second = subprocess.run(_cli_args(mid_ds, out), env=env, capture_output=True, text=True, timeout=120)
        still_running = first.poll() is None
        assert second.returncode == 2 and "in use by another evaluation" in second.stderr and "Traceback" not in second.stderr
        assert still_running, "the first evaluation ended before the second was refused"
        assert first.wait(300) == 0, first.stderr.read().decode()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
        first.stderr.close()
    recs = read_results(out / "results.jsonl")
    keys = [run_key(x) for x in recs]
    assert len(keys) == len(set(keys)) == 72 * len(METHODS)
    assert len({r["dataset_fp"] for r in recs}) == 1
    assert (out / LOCK_NAME).read_text() == ""  # released: no holder described


def test_a_lock_left_by_a_dead_process_is_taken_over_and_said_so(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (out / LOCK_NAME).write_text(json.dumps({"pid": gone.pid, "host": os.uname().nodename, "started": "2026-01-01T00:00:00+00:00", "command": ["x"]}))
    res = run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert any(f"left by pid {gone.pid} (no longer running" in n for n in res.notes)
    assert res.n_ok == 3
    # held by a live lock in this process: refused
    with FolderLock(out):
        with pytest.raises(FolderLocked, match="in use by another evaluation"):
            run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False).new_runs == 0


def test_a_truncated_last_line_is_ignored_with_a_note(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    out = tmp_path / "out"
    run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    data = (out / "results.jsonl").read_bytes()
    last = data[: -1].rfind(b"\n") + 1
    (out / "results.jsonl").write_bytes(data[: last + 40])  # the last record cut mid-line, as a crash leaves it
    from typer.testing import CliRunner

    from llmrca.cli import app

    r = CliRunner().invoke(app, ["report", str(out)], terminal_width=400)  # report says what it left out, too
    assert r.exit_code == 0 and "ignored an incomplete last line" in r.output and "that run is not counted" in r.output, r.output
    assert "ignored an incomplete last line" in (out / "REPORT.md").read_text()
    res = run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert res.new_runs == 1 and any("incomplete last line" in n for n in res.notes)
    assert len(read_results(out / "results.jsonl")) == 3


@pytest.mark.parametrize(("junk", "said"), [("[]", "it holds an array"), ("null", "it holds null"), ('"x"', "it holds a string"),
                                            ("{}", "it holds an object without method, case, status"),
                                            ('{"method": "nsigma"}', "it holds an object without case, status"),
                                            ('{"method": "nsigma", "case": "x/1", "status": "OK"}', "its status 'OK' is none of ok, failed")])
def test_a_json_line_that_is_no_run_record_is_named_by_every_reader(tmp_path: Path, junk: str, said: str) -> None:
    """'[]' in results.jsonl was a TypeError traceback in evaluate, report and fidelity; '{}' was 'error: method'."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    out = tmp_path / "out"
    run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join([lines[0], junk + "\n", *lines[1:]]))
    for args in (["evaluate", str(ds), "-m", "nsigma", "--out", str(out)], ["report", str(out)], ["fidelity", str(out)]):
        r = CliRunner().invoke(app, args, terminal_width=400)
        flat = " ".join(r.output.split())
        assert r.exit_code == 2 and f"line 2 is not a run record ({said}" in flat and "fix or delete it" in flat, (args, r.output)


# -- a full disk ---------------------------------------------------------------------------


@pytest.mark.system
def test_a_full_disk_is_an_error_message_and_results_stay_parseable(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a small tmpfs")
    ds = _dataset(tmp_path / "ds", n_seeds=4)  # 24 cases x 3 methods: ~90 kB of results
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mnt)], check=True)
    try:
        out = mnt / "out"
        with pytest.raises(ResultsWriteError, match="No space left on device"):
            run_evaluation(ds, METHODS, out, jobs=2, progress=False)
        data = (out / "results.jsonl").read_bytes()
        assert data and data.endswith(b"\n")  # whole lines only
        stored = read_results(out / "results.jsonl")
        assert 0 < len(stored) < 72 and all(r["status"] == "ok" for r in stored)
        # the CLI says so, exit 2, no traceback, file still whole
        r = _cli("evaluate", str(ds), "--methods", ",".join(METHODS), "--out", str(out), "--quiet")
        assert r.returncode == 2 and "No space left on device" in r.stderr and "rerun the same command" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout
        assert (out / "results.jsonl").read_bytes().endswith(b"\n")
        n_before = len(read_results(out / "results.jsonl"))
        # more room: the same command resumes and ends with the uninterrupted summary
        subprocess.run(["mount", "-o", "remount,size=2m", str(mnt)], check=True)
        res = run_evaluation(ds, METHODS, out, jobs=2, progress=False)
        assert res.skipped_runs == n_before and res.new_runs == 72 - n_before
        run_evaluation(ds, METHODS, tmp_path / "ref", jobs=2, progress=False)
        assert (out / "summary.csv").read_text() == (tmp_path / "ref" / "summary.csv").read_text()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# -- reproduce -----------------------------------------------------------------------------


@pytest.mark.slow
def test_reproduce_resumes_and_refuses_another_datasets_results(tmp_path: Path) -> None:
    from llmrca.reproduce import reproduce

    out = tmp_path / "rep"
    reproduce(profile="quick", out=out, methods=["nsigma"], jobs=2, progress=False)
    n = len(read_results(out / "eval" / "results.jsonl"))
    assert n == 12
    reproduce(profile="quick", out=out, methods=["nsigma"], jobs=2, progress=False)  # dataset reused, every run reused
    assert len(read_results(out / "eval" / "results.jsonl")) == 12
    run = json.loads((out / "eval" / "run.json").read_text())
    assert run["runs"] == {"total": 12, "planned": 0, "new": 0, "retried": 0, "reused": 12, "reinstated": 0, "stale_records": 0}
    # eval/ of another dataset (here: a synthetic one) -> refused with the way out, nothing appended
    other = tmp_path / "other"
    _dataset(tmp_path / "syn", faults=("cpu",))
    run_evaluation(tmp_path / "syn", ["nsigma"], other / "eval", jobs=1, progress=False)
    shutil.copytree(out / "dataset", other / "dataset")
    r = _cli("reproduce", "--profile", "quick", "--out", str(other), "--methods", "nsigma", "--quiet")
    assert r.returncode == 2 and "another dataset" in r.stderr and "Choose another --out" in r.stderr and "Traceback" not in r.stderr
    assert len(read_results(other / "eval" / "results.jsonl")) == 3


def test_a_removed_case_is_no_longer_scored(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds")
    out = tmp_path / "out"
    run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert int(_summary(out).query("fault == 'all'")["n"].iloc[0]) == 6
    shutil.rmtree(ds / "ray-worker-1_cpu")
    res = run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    assert res.new_runs == 0
    assert int(_summary(out).query("fault == 'all'")["n"].iloc[0]) == 5  # the stored run of the removed case is not scored
    assert "ray-worker-1_cpu/1" not in set(res.results["case"])


def test_a_folder_whose_cases_were_all_replaced_is_another_dataset(tmp_path: Path) -> None:
    """Plain trees (no dataset.json) at the same path: B's scores are B's or the run is refused, never A's."""
    a = _dataset(tmp_path / "a", seed0=0)
    b = _dataset(tmp_path / "b", seed0=50, shift=0.5)
    for d in (a, b):
        (d / "dataset.json").unlink()
    ds = tmp_path / "ds"
    shutil.copytree(a, ds)
    out = tmp_path / "out"
    run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    shutil.rmtree(ds)
    shutil.copytree(b, ds)
    with pytest.raises(DatasetMismatch, match="replaced"):
        run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False)
    res = run_evaluation(ds, ["nsigma"], out, jobs=1, progress=False, fresh=True)
    clean = run_evaluation(b, ["nsigma"], tmp_path / "clean", jobs=1, progress=False)
    assert res.summary.equals(clean.summary)


@pytest.mark.slow
def test_reproduce_rerun_says_it_reused_timeouts_and_retries_them(tmp_path: Path) -> None:
    """A rerun of reproduce keeps the runs that timed out (and says so, with the way out); --retry re-runs them."""
    out = tmp_path / "rep"
    first = _cli("reproduce", "--profile", "quick", "--out", str(out), "--methods", "nsigma", "--timeout", "0.01", "--quiet")
    assert first.returncode == 0, first.stderr
    assert {r["status"] for r in read_results(out / "eval" / "results.jsonl")} == {"timeout"}
    again = _cli("reproduce", "--profile", "quick", "--out", str(out), "--methods", "nsigma", "--quiet")
    assert again.returncode == 0, again.stderr
    assert "note: reused 12 stored timeout run(s); pass --retry timeout to run them again" in " ".join(again.stderr.split())
    assert "nsigma: 12 timeout (most often: timeout: no result within 0.01 s" in (out / "REPORT.md").read_text().replace("NSigma", "nsigma")
    fixed = _cli("reproduce", "--profile", "quick", "--out", str(out), "--methods", "nsigma", "--retry", "timeout", "--quiet")
    assert fixed.returncode == 0, fixed.stderr
    st = pd.read_csv(out / "eval" / "status.csv").set_index("method")
    assert (st.loc["nsigma", "ok"], st.loc["nsigma", "timeout"]) == (12, 0)
    assert "Runs not ok" not in (out / "REPORT.md").read_text()


def test_ctrl_c_says_what_is_kept_and_how_to_go_on(tmp_path: Path) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) during `evaluate`: exit 130, the finished runs
    counted, the way to resume named, no traceback; run.json's session holds the runs finished and ``interrupted: true``;
    the rerun resumes from the kept runs."""
    import signal
    import time

    ds = _dataset(tmp_path / "ds", n_seeds=1)  # 6 cases x 2 methods: 12 runs of about a second each
    out = tmp_path / "ev"
    args = [sys.executable, "-m", "llmrca", "evaluate", str(ds), "--methods", "lingam-pagerank,pc-pagerank", "--jobs", "1",
            "--out", str(out), "--quiet"]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC},
                         start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while _lines(out / "results.jsonl") < 1 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        assert p.poll() is None, "the evaluation ended before it could be interrupted"
        os.killpg(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    kept = _lines(out / "results.jsonl")
    text = " ".join((stdout + stderr).split())
    assert p.returncode == 130, text
    assert f"interrupted: {kept} finished run(s) are kept in {out / 'results.jsonl'}" in text and "the same command resumes" in text
    assert "Traceback" not in text and 1 <= kept < 12
    # run.json's session records the runs really finished (not the 12 planned) and that it was interrupted
    cut = json.loads((out / "run.json").read_text())
    assert len(cut["sessions"]) == 1 and cut["sessions"][0] == {k: v for k, v in cut.items() if k != "sessions"}
    assert cut["interrupted"] is True and cut["ended"] is not None
    assert (cut["runs"]["total"], cut["runs"]["planned"], cut["runs"]["new"], cut["runs"]["retried"]) == (12, 12, kept, 0)
    again = subprocess.run(args, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=600)
    assert again.returncode == 0, again.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["runs"]["reused"] == kept and run["runs"]["new"] == run["runs"]["planned"] == 12 - kept
    assert [s["interrupted"] for s in run["sessions"]] == [True, False] and run["sessions"][0]["runs"]["new"] == kept


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("dataset.json", ".llmrca.lock")}


def test_a_campaign_resume_runs_a_listed_case_that_is_gone_again(tmp_path: Path) -> None:
    """`campaign --resume` after a case folder was deleted said '12 from before' with 11 on disk; the deleted case (and
    the ones after it) are run again and come out as they were."""
    from llmrca.campaign import run_campaign

    ref = run_campaign("sim", "quick", 1, tmp_path / "ref", progress=False, faults=["cpu", "gpu"])
    run_campaign("sim", "quick", 1, tmp_path / "ds", progress=False, faults=["cpu", "gpu"])
    shutil.rmtree(tmp_path / "ds" / "ray-worker-2_cpu")
    notes: list[str] = []
    run_campaign("sim", "quick", 1, tmp_path / "ds", progress=False, faults=["cpu", "gpu"], resume=True, on_note=notes.append)
    assert any("case ray-worker-2_cpu/1 listed in" in n and "is missing: the campaign runs it again" in n for n in notes), notes
    assert _files(tmp_path / "ds") == _files(ref)
    assert len(json.loads((tmp_path / "ds" / "dataset.json").read_text())["cases"]) == 6
    (tmp_path / "ds" / "ray-worker-3_gpu" / "1" / "data.csv").unlink()  # a case left without its data is not done either
    run_campaign("sim", "quick", 1, tmp_path / "ds", progress=False, faults=["cpu", "gpu"], resume=True, on_note=notes.append)
    assert "lacks its case.json or data.csv" in notes[-1] and _files(tmp_path / "ds") == _files(ref), notes


def test_two_campaigns_into_one_folder_are_refused_and_a_file_is_no_folder(tmp_path: Path) -> None:
    """Two campaigns into one folder at once both exited 0 with 19 cases where 12 were planned (pairs of
    byte-identical repetitions); `campaign --out afile` was a NotADirectoryError traceback."""
    from llmrca.evaluate.lock import FolderLock

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    with FolderLock(tmp_path / "ds", "campaign"):  # another campaign holds it
        r = subprocess.run([sys.executable, "-m", "llmrca", "campaign", "--out", str(tmp_path / "ds"), "--seed", "1", "-q"],
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 2 and "is in use by another campaign" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert [p.name for p in (tmp_path / "ds").iterdir()] == [".llmrca.lock"]
    (tmp_path / "afile").write_text("hi")
    for out in ("afile", "afile/x"):
        r = subprocess.run([sys.executable, "-m", "llmrca", "campaign", "--out", str(tmp_path / out), "-q"],
                           capture_output=True, text=True, timeout=120, env=env)
        assert r.returncode == 2 and "is a file; the output must be a folder" in r.stderr and "Traceback" not in r.stderr, r.stderr
    (tmp_path / "rp").mkdir()
    (tmp_path / "rp" / "dataset").write_text("x")  # reproduce said '[Errno 20] Not a directory'
    r = subprocess.run([sys.executable, "-m", "llmrca", "reproduce", "-m", "nsigma", "--out", str(tmp_path / "rp"), "-q"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "dataset is a file; its dataset/ must be a folder" in r.stderr, r.stderr


def test_an_unfinished_campaign_is_said_and_its_finished_dataset_is_the_same_one(tmp_path: Path) -> None:
    """Evaluating a campaign killed half-way gave no warning, and after `campaign --resume` the same --out refused the
    dataset as 'another dataset' (its fingerprint covered complete: false), naming the same folder twice."""
    from llmrca.campaign import run_campaign

    ds = run_campaign("sim", "quick", 1, tmp_path / "ds", progress=False, faults=["cpu", "gpu"])
    man = json.loads((ds / "dataset.json").read_text())
    full = list(man["cases"])
    for e in full[3:]:  # as a kill after the third case leaves it
        shutil.rmtree(ds / e["path"])
    (ds / "dataset.json").write_text(json.dumps({**man, "cases": full[:3], "n_cases": 3, "complete": False}))
    res = run_evaluation(ds, ["nsigma"], tmp_path / "ev", jobs=1, progress=False)
    assert any("the dataset's campaign is not finished (dataset.json: complete false, 3 case(s) so far)" in n for n in res.notes), res.notes
    from llmrca.report.document import write_documents

    assert "The dataset's campaign was not finished when it was evaluated" in write_documents(tmp_path / "ev").markdown.read_text()
    run_campaign("sim", "quick", 1, ds, progress=False, faults=["cpu", "gpu"], resume=True)
    res = run_evaluation(ds, ["nsigma"], tmp_path / "ev", jobs=1, progress=False)
    assert res.new_runs == 3 and not any("not finished" in n for n in res.notes), res.notes
    man = json.loads((ds / "dataset.json").read_text())
    (ds / "dataset.json").write_text(json.dumps({**man, "cases": man["cases"][:2]}))  # n_cases no longer its cases: ignored
    res = run_evaluation(ds, ["nsigma"], tmp_path / "ev2", jobs=1, progress=False)
    assert any(n.startswith("dataset.json is ignored (") for n in res.notes), res.notes  # it was ignored without a word


def test_report_of_an_unfinished_evaluation_says_so_and_counts_missing_cells(tmp_path: Path) -> None:
    """A report made from part of an evaluation (Ctrl-C, or read while it runs) says it is incomplete; a method
    without a cell that others have is an exception of 'n per cell', not 'the same for every method'."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    ds = _dataset(tmp_path / "ds", faults=("cpu", "gpu"))
    out = tmp_path / "out"
    run_evaluation(ds, ["nsigma", "baro", "circa"], out, jobs=1, progress=False)
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    total = len(lines)
    recs = [json.loads(x) for x in lines]
    keep = [x for x, r in zip(lines, recs, strict=True) if r["method"] == "nsigma" or r["fault"] == "cpu"]
    (out / "results.jsonl").write_text("".join(keep))
    r = CliRunner().invoke(app, ["report", str(out)], terminal_width=400)
    assert r.exit_code == 0, r.output
    md = (out / "REPORT.md").read_text()
    assert f"**The evaluation is incomplete**: {len(keep)} of its {total} runs (methods × cases) are in results.jsonl" in md
    assert "BARO GPU n=0" in md and "(the same for every method)" not in md
    r = CliRunner().invoke(app, ["fidelity", str(out)], terminal_width=400)
    assert f"warning: the evaluation is incomplete: {len(keep)} of its {total} runs" in " ".join(r.output.split()), r.output
    (out / "run.json").unlink()  # a results.jsonl without its run.json: the records' own methods and cases say it
    r = CliRunner().invoke(app, ["report", str(out)], terminal_width=400)
    assert r.exit_code == 0 and "**The evaluation is incomplete**" in (out / "REPORT.md").read_text(), r.output
