"""The evaluator: statuses, timeouts, metric sets, random on failure, resume, outputs, Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import _evalhelpers
from llmrca.dataset.io import Dataset
from llmrca.evaluate import EvaluationError, run_evaluation
from llmrca.evaluate.results import ResultStore, read_results
from llmrca.methods import registry
from llmrca.report import write_report
from llmrca.synthetic import make_case

SRC = str(Path(__file__).resolve().parents[1] / "src")
ROOTS = ["ray-worker-1", "ray-worker-2", "ray-worker-3"]


@pytest.fixture()
def test_methods():
    for name, target, family in _evalhelpers.ENTRIES:
        registry.register(registry.Entry(name, target, family), replace=True)
    yield
    for name, _, _ in _evalhelpers.ENTRIES:
        registry.unregister(name)


def _dataset(root: Path, n_seeds: int = 1, faults=("cpu", "gpu")) -> Path:
    cases = [make_case(root=r, fault=f, seed=s, with_logs=False, with_traces=False) for s in range(n_seeds) for r in ROOTS for f in faults]
    Dataset.write(cases, root)
    return root


@pytest.fixture(scope="module")
def small_ds(tmp_path_factory) -> Path:
    return _dataset(tmp_path_factory.mktemp("ds") / "ds")


def _records(out: Path) -> list[dict]:
    return read_results(out / "results.jsonl")


def test_raising_and_hanging_methods_are_reported_while_the_rest_finish(small_ds: Path, tmp_path: Path, test_methods) -> None:
    t0 = time.monotonic()
    res = run_evaluation(small_ds, ["nsigma", "test-raises", "test-hangs", "test-dies"], tmp_path / "out", jobs=2, timeout_s=1.5, progress=False)
    elapsed = time.monotonic() - t0
    st = res.status.set_index("method")
    assert st.loc["nsigma", "ok"] == 6
    assert st.loc["test-raises", "failed"] == 6 and st.loc["test-raises", "ok"] == 0
    assert st.loc["test-hangs", "timeout"] == 6
    assert st.loc["test-dies", "failed"] == 6
    assert res.counts == {"ok": 6, "failed": 12, "timeout": 6, "unavailable": 0}
    # six 1.5 s timeouts on two workers: about 4.5 s, not six times the sleep
    assert elapsed < 30
    recs = {(r["method"], r["case"]): r for r in _records(tmp_path / "out")}
    failed = recs[("test-raises", "ray-worker-1_cpu/1")]
    assert "RuntimeError: deliberate failure for the test" in failed["error"] and failed["ranking"] is None
    assert recs[("test-hangs", "ray-worker-1_cpu/1")]["ranking"] is None
    died = recs[("test-dies", "ray-worker-1_cpu/1")]
    assert died["error_kind"] == "worker_died" and "exit code -9" in died["error"] and died["root_causes"] == ["ray-worker-1"]
    # a crash is never a ranking: failed / timed-out methods score zero, nsigma scores
    s = res.summary.set_index(["method", "fault"])
    assert s.loc[("test-raises", "all"), "ac@3"] == 0.0 and s.loc[("test-hangs", "all"), "avg@5"] == 0.0
    assert s.loc[("nsigma", "all"), "ac@1"] == 1.0
    note = (tmp_path / "out" / "table1.md").read_text()
    assert "test-raises: 6 failed" in note and "test-hangs: 6 timeout" in note


def test_random_on_failure_is_explicit_and_counted(small_ds: Path, tmp_path: Path, test_methods) -> None:
    res = run_evaluation(small_ds, ["test-raises", "random"], tmp_path / "out", jobs=1, random_on_failure=True, progress=False)
    st = res.status.set_index("method")
    assert st.loc["test-raises", "failed"] == 6 and st.loc["test-raises", "fallbacks"] == 6
    assert st.loc["random", "fallbacks"] == 0
    s = res.summary.set_index(["method", "fault"])
    assert s.loc[("test-raises", "all"), "avg@5"] > 0  # scored on the seeded random fallback
    assert "fallbacks: test-raises 6" in (tmp_path / "out" / "table1.md").read_text()
    recs = [r for r in _records(tmp_path / "out") if r["method"] == "test-raises"]
    assert all(r["status"] == "failed" and r["fallback_ranking"] for r in recs)
    # the same fallback every time (seeded by method and case)
    again = run_evaluation(small_ds, ["test-raises"], tmp_path / "out2", jobs=1, random_on_failure=True, progress=False)
    assert again.summary.set_index(["method", "fault"]).loc[("test-raises", "all"), "avg@5"] == s.loc[("test-raises", "all"), "avg@5"]


def test_a_methods_warnings_are_recorded_per_run_not_printed(small_ds: Path, tmp_path: Path, test_methods, capfd) -> None:
    out = tmp_path / "ev2"
    run_evaluation(small_ds, ["test-warns"], out, jobs=1, progress=False)
    recs = _records(out)
    assert recs and all(x["status"] == "ok" for x in recs)
    w = recs[0]["warnings"]
    assert w["RuntimeWarning"]["n"] == 2 and w["RuntimeWarning"]["first"] == "did not converge after 0 iterations"
    assert w["RuntimeWarning"]["messages"] == {"did not converge after 0 iterations": 1, "did not converge after 1 iterations": 1}
    assert w["DeprecationWarning"]["n"] == 1  # shown even where Python hides it by default
    printed = capfd.readouterr()
    assert "did not converge" not in printed.err + printed.out  # the worker processes printed none of them
    # one case ranked from the command line: the answer, then one line about the warnings, not the warnings
    from typer.testing import CliRunner

    from llmrca.cli import app

    case = next(d for d in sorted(small_ds.glob("*/*")) if d.is_dir())
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "test-warns", "-q"])
    assert r.exit_code == 0, r.output
    assert "note: test-warns raised library warnings: RuntimeWarning ×2" in r.output and r.output.count("did not converge") == 1
    d = json.loads(CliRunner().invoke(app, ["rank", str(case), "--method", "test-warns", "-q", "--json"]).stdout)
    assert d["warnings"]["DeprecationWarning"]["n"] == 1
    plain = run_evaluation(small_ds, ["nsigma"], tmp_path / "ev3", jobs=1, progress=False)
    assert plain.summary is not None and "warnings" not in _records(tmp_path / "ev3")[0]


def test_metric_set_choice(tmp_path: Path, test_methods) -> None:
    base = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    ext = base.metrics.assign(**{"ray-worker-1_vllm:num_requests_running": 1.0 + base.metrics.index % 3})
    rich = make_case(root="ray-worker-2", fault="cpu", seed=1, with_logs=False, with_traces=False)
    rich.metric_sets = {"basic": rich.metrics, "extended": ext}
    Dataset.write([base, rich], tmp_path / "ds")
    res = run_evaluation(tmp_path / "ds", ["test-extended", "nsigma"], tmp_path / "out", jobs=1, progress=False)
    recs = {(r["method"], r["case"]): r for r in _records(tmp_path / "out")}
    assert recs[("test-extended", "ray-worker-2_cpu/1")]["metric_set"] == "extended"
    assert recs[("test-extended", "ray-worker-2_cpu/1")]["explanation"]["n_columns"] == len(ext.columns)
    assert recs[("test-extended", "ray-worker-1_cpu/1")]["metric_set"] == "basic"  # case lacks it: fall back to basic, recorded
    assert recs[("nsigma", "ray-worker-2_cpu/1")]["metric_set"] == "basic"
    assert res.n_ok == 4
    forced = run_evaluation(tmp_path / "ds", ["nsigma"], tmp_path / "out2", jobs=1, metric_set="extended", progress=False)
    recs = {r["case"]: r for r in _records(tmp_path / "out2")}
    assert recs["ray-worker-2_cpu/1"]["status"] == "ok" and recs["ray-worker-2_cpu/1"]["metric_set"] == "extended"
    assert recs["ray-worker-1_cpu/1"]["status"] == "unavailable" and "no 'extended' metric set" in recs["ray-worker-1_cpu/1"]["error"]
    assert forced.n_unavailable == 1


def test_methods_never_see_the_truth(small_ds: Path, tmp_path: Path) -> None:
    class Peeking(_evalhelpers.Raising):
        name = "test-peeks"

        def _rank(self, case):
            assert case.root_causes == frozenset() and case.fault is None and case.name == "case"
            from llmrca.model import Ranking

            return Ranking(components=case.components)

    _evalhelpers.Peeking = Peeking
    registry.register(registry.Entry("test-peeks", "_evalhelpers:Peeking", "statistical"), replace=True)
    try:
        res = run_evaluation(small_ds, ["test-peeks"], tmp_path / "out", jobs=1, progress=False)
    finally:
        registry.unregister("test-peeks")
    assert res.n_ok == 6


def test_a_method_that_edits_its_input_cannot_affect_the_next(small_ds: Path, tmp_path: Path, test_methods) -> None:
    # one worker: both methods see the same cached case, vandal first
    res = run_evaluation(small_ds, ["test-vandal", "nsigma"], tmp_path / "out", jobs=1, progress=False)
    assert res.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] == 1.0


def test_outputs_provenance_and_report_regeneration(small_ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_evaluation(small_ds, ["nsigma", "baro"], out, jobs=2, progress=False)
    for name in ("results.jsonl", "summary.csv", "table1.md", "table1.csv", "table1.tex", "misattribution.png", "run.json", "status.csv"):
        assert (out / name).stat().st_size > 0, name
    assert list(pd.read_csv(out / "summary.csv").columns) == ["method", "fault", "n", "ac@1", "ac@3", "avg@5"]
    t1 = pd.read_csv(out / "table1.csv")
    assert list(t1.columns[:5]) == ["source", "method", "cpu_AC@1", "cpu_AC@3", "cpu_Avg@5"] and set(t1["source"]) == {"Metric"}
    assert "\\begin{tabular}" in (out / "table1.tex").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["versions"]["numpy"] and run["methods"]["baro"]["config"]["q_low"] == 0.25
    assert run["engine"] == "process" and run["jobs"] == 2 and run["dataset"]["n_cases"] == 6 and run["ended"]
    before = (out / "summary.csv").read_text()
    (out / "summary.csv").unlink()
    (out / "table1.md").unlink()
    write_report(out)
    assert (out / "summary.csv").read_text() == before and (out / "table1.md").exists()


def test_bad_input_is_a_clear_error(small_ds: Path, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="unknown method"):
        run_evaluation(small_ds, ["nope"], tmp_path / "o", progress=False)
    with pytest.raises(EvaluationError, match="unknown option"):
        run_evaluation(small_ds, ["baro"], tmp_path / "o", method_configs={"baro": {"q_lo": 0.1}}, progress=False)
    with pytest.raises(EvaluationError, match="no case under"):
        run_evaluation(tmp_path, ["nsigma"], tmp_path / "o", progress=False)
    with pytest.raises(EvaluationError, match="metric set"):
        run_evaluation(small_ds, ["nsigma"], tmp_path / "o", metric_set="fancy", progress=False)


def test_invalid_case_is_reported_and_skipped(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", faults=("cpu",))
    (ds / "ray-worker-2_cpu" / "1" / "data.csv").write_text("")
    res = run_evaluation(ds, ["nsigma"], tmp_path / "out", jobs=1, progress=False)
    st = res.status.set_index("method")
    assert st.loc["nsigma", "invalid_case"] == 1 and st.loc["nsigma", "ok"] == 2
    assert res.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "n"] == 2


def test_truncated_last_line_is_tolerated(tmp_path: Path) -> None:
    p = tmp_path / "results.jsonl"
    p.write_text(json.dumps({"method": "m", "case": "c1", "config_hash": "h", "status": "ok"}) + "\n" + '{"method": "m", "ca')
    store = ResultStore(p)
    assert store.done == {("m", "c1", "h", None, None)}  # no fingerprints: stale for any real run
    assert store.notes and "incomplete last line" in store.notes[0]
    store.append({"method": "m", "case": "c2", "config_hash": "h", "status": "ok"})
    store.close()
    assert [r["case"] for r in read_results(p)] == ["c1", "c2"]


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.run([sys.executable, "-m", "llmrca", *args], capture_output=True, text=True, env=env, timeout=120, **kw)


@pytest.mark.slow
def test_resume_after_the_runner_is_killed(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "ds", n_seeds=8, faults=("cpu", "memory"))  # 48 cases
    out = tmp_path / "out"
    args = [sys.executable, "-m", "llmrca", "evaluate", str(ds), "--methods", "random,nsigma,baro", "--jobs", "1", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(args, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    res_file = out / "results.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if res_file.exists() and res_file.read_bytes().count(b"\n") >= 20:
                break
            if proc.poll() is not None:
                pytest.fail(f"evaluation ended before it could be killed: {proc.stderr.read().decode()}")
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
    first = read_results(res_file)
    total = 48 * 3
    assert 20 <= len(first) < total
    r = _cli("evaluate", str(ds), "--methods", "random,nsigma,baro", "--jobs", "2", "--out", str(out), "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"{total - len(first)} run now, {len(first)} resumed" in r.stdout
    final = read_results(res_file)
    keys = [(x["method"], x["case"], x["config_hash"]) for x in final]
    assert len(keys) == len(set(keys)) == total  # nothing lost, nothing twice
    assert final[: len(first)] == first  # finished runs were not recomputed
    assert (out / "table1.md").exists()


def test_cli_smoke(small_ds: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    r = _cli("evaluate", str(small_ds), "--methods", "nsigma,random", "--jobs", "2", "--timeout", "60", "--out", str(out), "--random-on-failure")
    assert r.returncode == 0, r.stderr
    assert "Best methods" in r.stdout and "ok 12, failed 0, timeout 0, unavailable 0" in r.stdout
    assert json.loads((out / "run.json").read_text())["random_on_failure"] is True
    r = _cli("rank", str(small_ds / "ray-worker-2_gpu" / "1"), "--method", "baro", "--set", "q_low=0.1", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["config"]["q_low"] == 0.1 and d["ranking"]["components"][0] == "ray-worker-2" and d["truth_positions"] == {"ray-worker-2": 1}
    # the rest in-process (same app, faster)
    from typer.testing import CliRunner

    from llmrca.cli import app

    r = CliRunner().invoke(app, ["rank", str(small_ds / "ray-worker-2_gpu" / "1"), "--method", "nsigma"])
    assert r.exit_code == 0 and "true root cause ray-worker-2: ranked #1 of 6" in r.stdout
    r = CliRunner().invoke(app, ["report", str(out)])
    assert r.exit_code == 0 and "Best methods" in r.stdout
    # report runs nothing: it says what it read, not "0 run now, N resumed"
    assert "runs: ok 12, failed 0, timeout 0, unavailable 0 (12 read from results.jsonl)" in r.stdout
    assert "run now" not in r.stdout and "resumed" not in r.stdout


def test_cli_bad_input_exits_2_without_traceback(small_ds: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app

    out = tmp_path / "out"
    for bad in (
        ["evaluate", str(tmp_path / "nope"), "--methods", "nsigma", "--out", str(out)],
        ["evaluate", str(small_ds), "--methods", "nsigma", "--jobs", "0", "--out", str(out)],
        ["evaluate", str(small_ds), "--methods", "nsigma", "--engine", "spark", "--out", str(out)],
        ["rank", str(small_ds), "--method", "nsigma"],
        ["rank", str(small_ds / "ray-worker-2_gpu" / "1"), "--method", "baro", "--set", "q_hi=2"],
        ["report", str(tmp_path)],
    ):
        r = CliRunner().invoke(app, bad)
        assert r.exit_code == 2, (bad, r.output)
        assert "error:" in r.stderr and "Traceback" not in r.output, r.output


@pytest.mark.slow
def test_ray_engine_local(tmp_path: Path, test_methods) -> None:
    ray = pytest.importorskip("ray", reason='ray is not installed (pip install "llmrca[ray]")')
    ds = tmp_path / "ds"
    Dataset.write([make_case(root=r, fault="cpu", seed=0, with_logs=False, with_traces=False) for r in ROOTS[:2]], ds)
    from llmrca.evaluate.engines import ray_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, runtime_env=ray_runtime_env(["_evalhelpers"]), log_to_driver=False)
    try:
        res = run_evaluation(ds, ["nsigma", "test-raises", "test-hangs"], tmp_path / "out", engine="ray", jobs=2, timeout_s=5, progress=False)
    finally:
        ray.shutdown()
    st = res.status.set_index("method")
    assert st.loc["nsigma", "ok"] == 2 and st.loc["test-raises", "failed"] == 2 and st.loc["test-hangs", "timeout"] == 2
    assert res.summary.set_index(["method", "fault"]).loc[("nsigma", "all"), "ac@1"] == 1.0
    assert json.loads((tmp_path / "out" / "run.json").read_text())["engine"] == "ray"


def test_a_method_that_exits_or_raises_keyboardinterrupt_is_a_failed_run(small_ds: Path, tmp_path: Path) -> None:
    class Exits(_evalhelpers.Raising):
        name = "test-exits"
        calls = 0

        def _rank(self, case):
            Exits.calls += 1  # one worker: the runs alternate between the two
            raise SystemExit(3) if Exits.calls % 2 else KeyboardInterrupt()

    _evalhelpers.Exits = Exits
    registry.register(registry.Entry("test-exits", "_evalhelpers:Exits", "statistical"), replace=True)
    try:
        res = run_evaluation(small_ds, ["test-exits", "nsigma"], tmp_path / "out", jobs=1, progress=False)
    finally:
        registry.unregister("test-exits")
    recs = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    mine = [r for r in recs if r["method"] == "test-exits"]
    assert mine and all(r["status"] == "failed" for r in mine)
    assert {r["error_kind"] for r in mine} == {"SystemExit", "KeyboardInterrupt"}
    assert all("raised by the method" in r["error"] for r in mine)
    assert res.n_ok == len([r for r in recs if r["method"] == "nsigma"])  # the other method's runs are kept
