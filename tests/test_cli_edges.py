"""Rough edges of the CLI: what -q prints, how --sli problems are worded, validate agreeing with rank/evaluate,
fidelity's refusal, and resuming a reproduce folder that was copied elsewhere."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import llmrca.campaign as campaign
from llmrca.campaign import Profile
from llmrca.cli import app
from llmrca.evaluate.runner import EvaluationError, run_evaluation


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


@pytest.fixture(scope="module")
def one_case(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated dataset of one CPU case (its folder is returned's parent's parent)."""
    ds = tmp_path_factory.mktemp("one") / "ds"
    campaign.run_campaign(profile="quick", seed=31, out=ds, progress=False, faults=["cpu"], cases_per_fault=1)
    return next(p.parent for p in sorted(ds.glob("*/*/case.json")))


def test_sli_time_is_named_the_time_index_not_a_missing_column(one_case: Path, tmp_path: Path) -> None:
    """`time` is a column of every metrics file, but it is the time index: rank and evaluate say so (MicroCause's
    reference mode, which walks from the SLI, said it is "not a column" / "constant") and list latency columns."""
    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "microcause", "--set", "reference_mode=rcaeval", "--sli", "time", "-q"])
    assert r.exit_code == 2, r.output
    assert "--sli 'time' is the time index, not a metric: name a latency column of the basic metric set of" in r.output
    assert "ray-worker-1_latency-90" in r.output and "not a column" not in r.output and "constant" not in r.output
    with pytest.raises(EvaluationError, match=r"'time' is the time index, not a metric: .* which microcause read \(.*nginx-gateway_latency-90"):
        run_evaluation(one_case.parent.parent, ["microcause"], tmp_path / "ev", sli="time", progress=False,
                       method_configs={"microcause": {"reference_mode": "rcaeval"}})
    assert not (tmp_path / "ev" / "results.jsonl").exists()  # refused before any run, not 1 failed run per case


def test_sli_all_nan_column_is_called_empty(one_case: Path, tmp_path: Path) -> None:
    """A column present in data.csv with no value is dropped by the reader; --sli naming it is "empty", not "not a column"."""
    ds = tmp_path / "ds"
    case = ds / one_case.parent.name / one_case.name
    shutil.copytree(one_case, case)
    for name in ("data.csv", "data_extended.csv"):
        frame = pd.read_csv(case / name)
        frame["ray-head_latency-90"] = float("nan")
        frame.to_csv(case / name, index=False)
    rows = len(frame)
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "microcause", "--sli", "ray-head_latency-90", "-q"])
    assert r.exit_code == 2, r.output
    assert f"--sli 'ray-head_latency-90' is empty in the basic metric set of {case}: all {rows} of its values are missing" in r.output
    assert "not a column" not in r.output and "nginx-gateway_latency-90" in r.output
    with pytest.raises(EvaluationError, match=f"'ray-head_latency-90' is empty in the basic metric set .*: all {rows} of its values"):
        run_evaluation(ds, ["microcause"], tmp_path / "ev", sli="ray-head_latency-90", progress=False)
    # a column that is in no file is still "not a column"
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "microcause", "--sli", "ray-head_latency-99", "-q"])
    assert r.exit_code == 2 and "--sli 'ray-head_latency-99' is not a column of the basic metric set" in r.output


def test_a_method_handed_sli_time_is_told_it_is_the_time_index(one_case: Path) -> None:
    """Through the Python API (no CLI check), the SLI chooser refuses `time` instead of falling back to its default."""
    from llmrca.dataset.io import read_case
    from llmrca.methods.common.sli import SliError, sli_column

    case = read_case(one_case).without_truth()
    assert sli_column(case) == "nginx-gateway_latency-90"
    case.meta = {**case.meta, "sli": "time"}
    with pytest.raises(SliError, match="'time' is the time index of this case, not a metric"):
        sli_column(case)


def test_sli_ignored_by_every_method_run_is_said_once(one_case: Path, tmp_path: Path) -> None:
    """--sli with only methods that read no SLI (nsigma, baro): one note naming them; none when one method reads it."""
    ds = str(one_case.parent.parent)
    sli = ["--sli", "nginx-gateway_latency-90"]
    r = CliRunner().invoke(app, ["evaluate", ds, "--methods", "nsigma,baro", *sli, "--out", str(tmp_path / "a"), "-q"])
    assert r.exit_code == 0, r.output
    said = [line for line in r.stderr.splitlines() if "--sli" in line]
    assert said == ["note: --sli 'nginx-gateway_latency-90' is ignored: nsigma, baro read no SLI (only the causal and graph "
                    "families do; `llmrca methods` gives each method's family)"]
    r = CliRunner().invoke(app, ["evaluate", ds, "--methods", "nsigma,microcause", *sli, "--out", str(tmp_path / "b"), "-q"])
    assert r.exit_code == 0, r.output
    assert "is ignored" not in r.output
    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "baro", *sli, "-q"])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("--sli 'nginx-gateway_latency-90' is ignored: baro reads no SLI") == 1
    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "microcause", *sli, "-q"])
    assert r.exit_code == 0 and "is ignored" not in r.output


def test_validate_refuses_a_case_without_a_basic_set_as_rank_and_evaluate_do(one_case: Path, tmp_path: Path) -> None:
    """case.json metric_sets with no `basic` key: validate lists the same problem rank and evaluate refuse the case with."""
    import json

    from llmrca.evaluate.results import read_results

    ds = tmp_path / "ds"
    case = ds / one_case.parent.name / one_case.name
    shutil.copytree(one_case, case)
    assert CliRunner().invoke(app, ["dataset", "validate", str(ds)]).exit_code == 0
    spec = json.loads((case / "case.json").read_text())
    spec["metric_sets"] = {"extended": "data_extended.csv"}
    (case / "case.json").write_text(json.dumps(spec))
    said = (f"case {spec['name']!r} has no metric set 'basic' (has: extended); the methods read the basic set unless they "
            "prefer another: name its file in case.json metric_sets, e.g. \"basic\": \"data.csv\"")
    r = CliRunner().invoke(app, ["dataset", "validate", str(ds)], terminal_width=400)
    assert r.exit_code == 1, r.output
    assert f"  - {said}" in r.stdout.splitlines() and "0 valid case(s), 1 with problems" in r.stdout
    from llmrca.dataset.validate import validate_dataset

    check = validate_dataset(ds)  # the Python API says the same
    assert check.valid == [] and list(check.problems.values()) == [[said]]
    r = CliRunner().invoke(app, ["dataset", "import", str(ds), str(tmp_path / "imported")], terminal_width=400)
    assert r.exit_code != 0 and said in " ".join(r.output.split())  # nor is it imported
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "nsigma", "-q"], terminal_width=400)
    assert r.exit_code == 2 and " ".join(r.stderr.split()) == f"error: invalid case {case}: {said}"
    run_evaluation(ds, ["nsigma"], tmp_path / "ev", progress=False, jobs=1)
    [rec] = read_results(tmp_path / "ev" / "results.jsonl")
    assert rec["error_kind"] == "invalid_case" and rec["error"] == f"{case.resolve()}: {said}"
    # every case invalid: nothing was evaluated, and the exit status says so
    r = CliRunner().invoke(app, ["evaluate", str(ds), "--methods", "nsigma", "--out", str(tmp_path / "ev2"), "-q"], terminal_width=400)
    assert r.exit_code == 1, r.output
    assert f"error: every case of {ds} is invalid, so no method was evaluated" in " ".join(r.output.split())


def test_fidelity_with_fewer_than_3_paper_methods_refuses_alone(one_case: Path, tmp_path: Path) -> None:
    """Two paper methods, one with a non-default option: the refusal is the only thing printed (no warnings first)."""
    run_evaluation(one_case.parent.parent, ["nsigma", "baro"], tmp_path / "ev", progress=False, jobs=1,
                   method_configs={"nsigma": {"abstain_below": 3}})
    r = CliRunner().invoke(app, ["fidelity", str(tmp_path / "ev")], terminal_width=400)
    assert r.exit_code == 2
    assert r.output.splitlines() == ["error: only 2 of the paper's methods were evaluated (baro, nsigma); ρ needs at least 3"]


def test_a_copied_or_moved_reproduce_folder_resumes(tmp_path: Path, tiny: None) -> None:
    """`cp -r OUT OUT2` then `reproduce --out OUT2`: the stored runs (their dataset fingerprint covers OUT/dataset)
    are recognised as runs of OUT2/dataset and reused, not refused as "another dataset"; the same after a move."""
    import json

    out = tmp_path / "r"
    args = ["reproduce", "--profile", "tiny", "--methods", "nsigma,baro", "-q"]
    r = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert r.exit_code == 0, r.output
    first = (out / "eval" / "summary.csv").read_text()
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    r = CliRunner().invoke(app, [*args, "--out", str(copy)])
    assert r.exit_code == 0, r.output
    runs = json.loads((copy / "eval" / "run.json").read_text())["runs"]
    assert runs["total"] == 2 and runs["reused"] == 2 and runs["new"] == 0
    assert f"the stored runs were made when this dataset was at {(out / 'dataset').resolve()}" in r.stderr
    assert "evaluation: 0 run(s) made now, 2 reused from" in " ".join(r.stderr.split())  # a rerun says it reused them
    assert (copy / "eval" / "summary.csv").read_text() == first
    assert json.loads((copy / "eval" / "run.json").read_text())["dataset"]["path"] == str((copy / "dataset").resolve())
    # the time the results took is kept (this invocation's added), not replaced by a resume's few seconds
    was, now = (json.loads((d / "reproduce.json").read_text()) for d in (out, copy))
    assert now["invocations"] == 2 and was["invocations"] == 1
    assert now["evaluate_s"] >= was["evaluate_s"]
    # the campaign's time is its own clock (dataset.json wall_s, every session of it), not reproduce's: an interrupt
    # during the campaign ended an invocation before reproduce recorded it
    assert now["campaign_s"] == was["campaign_s"] == json.loads((copy / "dataset" / "dataset.json").read_text())["wall_s"]
    assert "(summed over 2 invocations into this folder)" in (copy / "REPORT.md").read_text()
    moved = tmp_path / "moved"
    copy.rename(moved)
    shutil.rmtree(out)  # the original folder is gone
    r = CliRunner().invoke(app, [*args, "--out", str(moved)])
    assert r.exit_code == 0, r.output
    assert json.loads((moved / "eval" / "run.json").read_text())["runs"]["reused"] == 2


def test_sli_is_no_part_of_the_config_of_a_method_that_does_not_read_it(one_case: Path, tmp_path: Path) -> None:
    """Adding --sli resumes N-Sigma's stored run (it reads no SLI) and runs MicroCause again (it walks from it)."""
    from llmrca.evaluate.results import read_results

    ds, out = one_case.parent.parent, tmp_path / "ev"
    run_evaluation(ds, ["nsigma", "microcause"], out, progress=False, jobs=1)
    before = {r["method"]: r["config_hash"] for r in read_results(out / "results.jsonl")}
    run_evaluation(ds, ["nsigma", "microcause"], out, progress=False, jobs=1, sli="nginx-gateway_latency-90")
    recs = read_results(out / "results.jsonl")
    assert len(recs) == 3  # one new run: MicroCause's with the SLI
    after = {r["method"]: r["config_hash"] for r in recs[2:]}
    assert list(after) == ["microcause"] and after["microcause"] != before["microcause"]
    assert recs[2]["sli_given"] == "nginx-gateway_latency-90" and "sli_given" not in recs[0]


def test_an_sli_column_missing_from_a_later_case_is_unavailable_there_not_a_failure(tmp_path: Path) -> None:
    """--sli is checked up front on the first case; a later case without the column makes the SLI-reading
    method's run there `unavailable` (not scored), not `failed` (a miss counted against the method)."""
    import pandas as pd

    from llmrca.evaluate.results import read_results

    ds = tmp_path / "ds"
    campaign.run_campaign(profile="quick", seed=32, out=ds, progress=False, faults=["cpu"], cases_per_fault=2)
    first, second = sorted(ds.glob("*/*/case.json"))[:2]
    data = second.parent / "data.csv"
    pd.read_csv(data).drop(columns=["nginx-gateway_latency-90"]).to_csv(data, index=False)
    res = run_evaluation(ds, ["pc-pagerank", "nsigma"], tmp_path / "ev", progress=False, jobs=1, sli="nginx-gateway_latency-90")
    recs = {(r["method"], r["case"]): r for r in read_results(tmp_path / "ev" / "results.jsonl")}
    gone = recs[("pc-pagerank", str(second.parent.relative_to(ds)))]
    assert gone["status"] == "unavailable" and "--sli 'nginx-gateway_latency-90' is not a column of this case" in gone["error"]
    assert recs[("pc-pagerank", str(first.parent.relative_to(ds)))]["status"] == "ok"
    assert recs[("nsigma", str(second.parent.relative_to(ds)))]["status"] == "ok"  # it reads no SLI
    assert int(res.status.set_index("method").loc["pc-pagerank", "failed"]) == 0


def test_rank_prints_a_time_field_in_full_epoch_seconds(one_case: Path) -> None:
    """BARO's inject_time_used is an epoch time: printed as 1750…, never as 1.75e+09 (which loses the seconds)."""
    import json

    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "baro", "-q"], terminal_width=400)
    assert r.exit_code == 0, r.output
    used = json.loads((one_case / "case.json").read_text())["inject_time"]
    assert f"inject_time_used: {used:.0f}" in r.stdout and "e+09" not in r.stdout


def test_rank_on_a_dataset_folder_names_a_case_and_evaluate(one_case: Path) -> None:
    """`rank DATASET` (or a fault's folder of repetitions) is refused with one of its cases and the evaluate command, not
    with a list of the folder's entries as if it were a case missing its files."""
    for folder in (one_case.parent.parent, one_case.parent):
        r = CliRunner().invoke(app, ["rank", str(folder), "--method", "nsigma", "-q"], terminal_width=400)
        assert r.exit_code == 2, r.output
        assert "not one case" in r.output and f"e.g. {one_case}" in r.output
        assert f"llmrca evaluate {folder} --methods nsigma" in r.output
    assert CliRunner().invoke(app, ["rank", str(one_case), "--method", "nsigma", "-q"]).exit_code == 0


def test_reproduce_refusing_a_bad_sim_value_leaves_no_empty_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "rp"
    r = CliRunner().invoke(app, ["reproduce", "--set", "sim.replica_request_log_bytes=-1", "--out", str(out), "-q"], terminal_width=400)
    assert r.exit_code == 2 and "replica_request_log_bytes must be >= 0" in r.output
    assert not out.exists()
    (tmp_path / "kept").mkdir()  # a folder the user made is never removed
    r = CliRunner().invoke(app, ["reproduce", "--set", "sim.replica_request_log_bytes=-1", "--out", str(tmp_path / "kept"), "-q"])
    assert r.exit_code == 2 and (tmp_path / "kept").is_dir()


def test_rank_says_what_the_reader_repaired(one_case: Path, tmp_path: Path) -> None:
    """`rank` states the reader's repairs (as `dataset validate` does) instead of applying them silently."""
    case = tmp_path / "c" / one_case.parent.name / one_case.name
    shutil.copytree(one_case, case)
    df = pd.read_csv(case / "data.csv")
    df.rename(columns={"time": "timestamp"}).to_csv(case / "data.csv", index=False)
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "nsigma", "-q"], terminal_width=400)
    assert r.exit_code == 0, r.output
    assert f"note: {case} was read with 1 repair(s): data.csv: no 'time' column; 'timestamp' was read as 'time'" in r.output
    plain = CliRunner().invoke(app, ["rank", str(one_case), "--method", "nsigma", "-q"], terminal_width=400)
    assert "repair" not in plain.output


def test_set_written_as_yaml_key_colon_value_is_named_as_typed_with_the_fix(one_case: Path) -> None:
    """`--set 'baro.q_low: 0.1'` used to be reported as "option 'q_low: 0.1'" (the method's prefix taken off)."""
    import json

    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "baro", "--set", "baro.q_low: 0.1", "-q"], terminal_width=400)
    assert r.exit_code == 2 and "--set 'baro.q_low: 0.1' is not key=value" in r.output and "did you mean 'baro.q_low=0.1'" in r.output, r.output
    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "baro", "--set", "q_low: 0.1", "--json"], terminal_width=400)
    out = json.loads(r.stdout)
    assert r.exit_code == 2 and out["error_kind"] == "usage" and "did you mean 'q_low=0.1'" in out["error"]
    ds = str(one_case.parent.parent)
    r = CliRunner().invoke(app, ["evaluate", ds, "--methods", "baro", "--set", "baro.q_low: 0.1", "-q"], terminal_width=400)
    assert r.exit_code == 2 and "did you mean 'baro.q_low=0.1'" in r.output, r.output


def test_a_number_for_a_text_option_with_choices_names_the_choices(one_case: Path) -> None:
    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "monitorrank", "--set", "restart=0.5", "-q"], terminal_width=400)
    assert r.exit_code == 2 and "option 'restart' must be one of similarity, entry; got 0.5" in r.output, r.output
    assert "quote the value" not in r.output


def test_json_on_stdout_has_no_infinity_or_nan() -> None:
    """Python's json writes Infinity and NaN, which strict JSON parsers refuse; every --json answer writes null."""
    import json

    from llmrca.cli import _json_text

    text = _json_text({"scores": [1.5, float("inf"), float("-inf")], "x": {"z": float("nan")}, "t": (2.0, float("nan"))})
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"scores": [1.5, None, None], "x": {"z": None}, "t": [2.0, None]}


def test_json_usage_errors_found_before_the_command_still_answer_json_on_stdout(one_case: Path) -> None:
    """An unknown option or a missing --method used to print only click's usage text: a script reading stdout got
    nothing to parse.  Run as the installed command is (python -m llmrca: the parser runs in llmrca.cli.main)."""
    import json
    import subprocess
    import sys

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "llmrca", *args], capture_output=True, text=True, timeout=120)

    r = run("rank", str(one_case), "--method", "baro", "--bogus", "--json")
    assert r.returncode == 2 and json.loads(r.stdout) == {"status": "failed", "error_kind": "usage", "error": "No such option: --bogus"}
    assert "No such option: --bogus" in r.stderr
    r = run("rank", str(one_case), "--json")
    assert r.returncode == 2 and "--method" in json.loads(r.stdout)["error"]
    r = run("rank", str(one_case), "--method", "baro", "--json", "-q")  # the command's own answer and status are unchanged
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"
    r = run("rank", str(one_case), "--method", "baro", "--set", "q_low=2", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["error_kind"] == "usage"


def test_an_old_option_spelling_is_said_as_one_warning_line(one_case: Path) -> None:
    """Old spellings are still taken; the user used to see nothing (a DeprecationWarning, hidden by Python)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "llmrca", "rank", str(one_case), "--method", "baro", "--set", "reference_mode=true", "-q"],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "warning: BaroConfig: reference_mode=true is now reference_mode='rcaeval'" in r.stderr
    assert "FutureWarning" not in r.stderr and ".py:" not in r.stderr


def test_rank_json_names_each_case_warning_and_repair_once(one_case: Path) -> None:
    """rank --json listed a reading note as often as the reader said it; evaluate and validate said it once."""
    from llmrca.dataset.io import WARNING_PREFIX
    from llmrca.evaluate.single import rank_case

    out = rank_case(one_case, "nsigma", {})
    warn = f"{WARNING_PREFIX}a copy not read"
    out.case.meta["normalised"] = [warn, "renamed a column", warn, "renamed a column"]
    d = out.to_dict()
    assert d["case_warnings"] == [warn.removeprefix("warning: ")] and d["case_repairs"] == ["renamed a column"]


def test_a_case_folder_evaluated_alone_is_named_as_rank_and_a_dataset_name_it(one_case: Path, tmp_path: Path) -> None:
    """`evaluate CASE_DIR` named the case "1" (its folder's last part); rank and a dataset say "<parent>/1"."""
    import json

    r = CliRunner().invoke(app, ["evaluate", str(one_case), "--methods", "nsigma", "--out", str(tmp_path / "ev"), "-q"])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "ev" / "results.jsonl").read_text().splitlines()[0])
    assert rec["case"] == f"{one_case.parent.name}/{one_case.name}"
    r = CliRunner().invoke(app, ["rank", str(one_case), "--method", "nsigma", "--json", "-q"])
    assert json.loads(r.stdout)["case"] == rec["case"]
    # its fault folder given as the dataset: the repetition is named with it, not "1"
    r = CliRunner().invoke(app, ["evaluate", str(one_case.parent), "--methods", "nsigma", "--out", str(tmp_path / "ev2"), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "ev2" / "results.jsonl").read_text().splitlines()[0])["case"] == rec["case"]


def test_a_method_error_on_the_data_is_a_failed_run_in_rank_as_in_evaluate(one_case: Path, tmp_path: Path) -> None:
    """Finite but huge values break RCD's k-means: rank --json called that error_kind "usage" with exit 2, evaluate
    records it as a failed ValueError; now both say the method failed (exit 1), and messages say "the case", not
    "case 'case'" (the blinded name)."""
    import json

    case = tmp_path / "ds" / one_case.parent.name / "1"
    shutil.copytree(one_case, case)
    df = pd.read_csv(case / "data.csv")
    inject = float((case / "inject_time.txt").read_text())
    cols = [c for c in df.columns if c != "time"][:2]
    df.loc[df["time"] >= inject, cols] = 1e308  # finite, but k-means' sums overflow
    df.to_csv(case / "data.csv", index=False)
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "rcd", "--json", "-q"])
    out = json.loads(r.stdout)
    assert r.exit_code == 1 and (out["status"], out["error_kind"]) == ("failed", "ValueError"), r.output
    ev = tmp_path / "ev"
    r = CliRunner().invoke(app, ["evaluate", str(tmp_path / "ds"), "--methods", "rcd", "--out", str(ev), "-q"], terminal_width=400)
    rec = json.loads((ev / "results.jsonl").read_text().splitlines()[0])
    assert (rec["status"], rec["error_kind"]) == ("failed", out["error_kind"]) and rec["case"] == out["case"]
    assert "note: no run of rcd succeeded (1 failed), e.g. on " in r.output  # the reason, not only in results.jsonl
    const = tmp_path / "c" / "x_cpu" / "1"
    shutil.copytree(one_case, const)
    df = pd.read_csv(const / "data.csv")
    df[[c for c in df.columns if c != "time"]] = 1.0
    df.to_csv(const / "data.csv", index=False)
    r = CliRunner().invoke(app, ["rank", str(const), "--method", "circa", "-q"], terminal_width=400)
    # nothing varies: the case lacks what CIRCA reads (NotEnoughData, unavailable as in evaluate), not a failure of it
    assert r.exit_code == 2 and "the case has no metric column that varies" in r.output and "case 'case'" not in r.output, r.output


def test_rank_json_names_a_copied_case_by_its_folder_as_evaluate_does(one_case: Path, tmp_path: Path) -> None:
    """A rep copied under another number keeps case.json's name; rank --json used that name when it ranked and the
    folder's when it failed."""
    import json

    copy = tmp_path / one_case.parent.name / "7"
    shutil.copytree(one_case, copy)
    ok = json.loads(CliRunner().invoke(app, ["rank", str(copy), "--method", "baro", "--json", "-q"]).stdout)
    bad = json.loads(CliRunner().invoke(app, ["rank", str(copy), "--method", "baro", "--set", "q_low=5", "--json"]).stdout)
    assert ok["case"] == bad["case"] == f"{one_case.parent.name}/7"


def test_set_messages_for_integers_in_exponent_form_malformed_keys_and_unknown_methods(one_case: Path) -> None:
    def run(*args: str):
        return CliRunner().invoke(app, list(args), terminal_width=400)

    r = run("rank", str(one_case), "--method", "e-diagnosis", "--set", "n_permutations=1e4", "--set", "alpha=2")
    assert r.exit_code == 2 and "option 'alpha' must be in (0, 1)" in r.output, r.output  # 1e4 was taken as 10000
    r = run("rank", str(one_case), "--method", "pc-randomwalk", "--set", "walk_steps=2.5")
    assert r.exit_code == 2 and "expected an integer, got 2.5 (the option takes an integer in [1, 10000000])" in r.output, r.output
    for bad in (".q_low=1", "baro.=1"):
        r = run("rank", str(one_case), "--method", "baro", "--set", bad)
        assert r.exit_code == 2 and f"--set '{bad}' is not key=value (or baro.key=value)" in r.output, r.output
    r = run("rank", str(one_case), "--method", "baro", "--set", "reference_mode=1")
    assert r.exit_code == 2 and "reference_mode must be null (the paper's algorithm) or 'rcaeval', got 1" in r.output, r.output
    r = run("evaluate", str(one_case.parent.parent), "--set", "nosuch.x=1", "-q")
    assert r.exit_code == 2 and "options (--set) given for ['nosuch'], which is no method" in r.output, r.output
    r = run("rank", str(one_case), "--method", "baro", "--set", "reference_mode=false", "-q")
    assert r.exit_code == 0  # the old spelling is still taken; its warning says what to write instead (YAML)


def test_rank_refuses_a_bad_option_before_reading_the_case(one_case: Path, tmp_path: Path) -> None:
    """A bad --set used to be found only after the whole case was read (minutes for a large one), and a case that
    could not be read hid it."""
    import gzip

    broken = tmp_path / "svc_cpu" / "1"
    shutil.copytree(one_case, broken)
    (broken / "data.csv").unlink()
    (broken / "data.csv.gz").write_bytes(gzip.compress(b"time,a_cpu\n" + b"1,0.5\n" * 1000)[:200])  # cut off
    r = CliRunner().invoke(app, ["rank", str(broken), "--method", "baro", "--set", "q_low=2", "-q"], terminal_width=400)
    assert r.exit_code == 2 and "q_low" in r.output and "data.csv" not in r.output, r.output
    r = CliRunner().invoke(app, ["rank", str(broken), "--method", "baro", "-q"], terminal_width=400)
    assert r.exit_code != 0 and "data.csv" in r.output, r.output  # the case's own problem once the options are good


def test_evaluate_where_every_run_is_unavailable_fails(tmp_path: Path) -> None:
    """Every run unavailable (a trace method on cases without traces) printed an empty table and exited 0."""
    from llmrca.dataset.io import Dataset
    from llmrca.synthetic import make_case

    Dataset.write([make_case(root="ray-worker-1", fault="cpu", seed=s, with_logs=False, with_traces=False) for s in range(2)], tmp_path / "ds")
    args = ["evaluate", str(tmp_path / "ds"), "--methods", "tracerca", "--out", str(tmp_path / "ev"), "-q"]
    r = CliRunner().invoke(app, args, terminal_width=400)
    assert r.exit_code == 1, r.output
    assert "no run could be scored: every run of tracerca on" in r.output and "no run of tracerca succeeded (2 unavailable)" in r.output
    args[3] = "tracerca,nsigma"  # one method scored: a result, exit 0 (the note says why tracerca has none)
    r = CliRunner().invoke(app, args, terminal_width=400)
    assert r.exit_code == 0 and "no run of tracerca succeeded" in r.output, r.output


@pytest.mark.parametrize("method", ["llm-rca", "rcd", "circa", "causalai"])
def test_too_few_rows_before_the_injection_is_unavailable_not_a_failed_run(tmp_path: Path, method: str) -> None:
    """2 rows before the injection pass validate (a short-window warning); llm-rca's ValueError and the causal
    methods' NotEnoughData made the run 'failed' (scored as a miss); the case lacks what they read: unavailable."""

    import numpy as np

    rng = np.random.default_rng(0)
    t = 1_700_000_000 + np.arange(120)
    df = pd.DataFrame({"time": t} | {f"{s}_{m}": rng.normal(1.0, 0.05, len(t)) for s in ("cart", "front", "checkout") for m in ("cpu", "mem")})
    df.loc[2:, "cart_cpu"] += 2.0
    r, out = _rank_json(tmp_path / "cart_cpu" / "1", df, int(t[2]), method)
    assert (r.exit_code, out["status"]) == (2, "unavailable") and "2" in out["error"], r.output


def _rank_json(d: Path, df: pd.DataFrame, inject: int, method: str):
    """Write ``df`` as case folder ``d`` injected at ``inject`` and rank it with ``--json``: (result, answer)."""
    import json

    d.mkdir(parents=True)
    df.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(str(inject))
    r = CliRunner().invoke(app, ["rank", str(d), "--method", method, "--json", "-q"])
    return r, json.loads(r.stdout)


def test_rank_says_a_tie_as_the_evaluator_counts_it(tmp_path: Path) -> None:
    """Every score equal: rank said 'a root cause is ranked #1 (AC@1 hit)' (alphabetical order), evaluate scored
    AC@1 = 1/4; the table hid the tie behind 4 significant digits."""
    import json

    import numpy as np

    t = 1_700_000_000 + np.arange(120)
    df = pd.DataFrame({"time": t} | {f"{s}_cpu": np.ones(len(t)) for s in ("a", "b", "c", "d")})
    d = tmp_path / "a_cpu" / "1"
    d.mkdir(parents=True)
    df.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(str(int(t[60])))
    r = CliRunner().invoke(app, ["rank", str(d), "--method", "baro", "--json", "-q"])
    out = json.loads(r.stdout)
    assert "tied with 3 other(s) at #1-#4" in out["verdict"] and "AC@1 0.25" in out["verdict"], out["verdict"]
    r = CliRunner().invoke(app, ["rank", str(d), "--method", "baro", "-q"], terminal_width=200)
    assert r.output.count("(tie)") == 4, r.output
    ev = CliRunner().invoke(app, ["evaluate", str(tmp_path), "--methods", "baro", "--out", str(tmp_path / "ev"), "-q"])
    assert ev.exit_code == 0 and pd.read_csv(tmp_path / "ev" / "summary.csv").query("fault == 'all'")["ac@1"].iloc[0] == 0.25


def test_rank_explanations_read_as_text(tmp_path: Path) -> None:
    """rank printed Python reprs in explanations ('mode: None', "top_metrics: ('cart_cpu', 0.7266), ...")."""
    from llmrca.report.explain import explanation_lines

    lines = explanation_lines({"mode": None, "top_metrics": [("cart_cpu", 0.72661), ("cart_mem", 3)], "opts": {"a": None, "b": 2}})
    assert lines == ["mode: none", "top_metrics: cart_cpu 0.7266, cart_mem 3", "opts: a=none, b=2"]


@pytest.mark.parametrize("method", ["lingam-pagerank", "lingam-randomwalk"])
def test_fewer_rows_than_columns_is_unavailable_not_a_library_error(tmp_path: Path, method: str) -> None:
    """14 rows of 30 columns: LiNGAM failed with scikit-learn's LassoLarsIC error, PC with 'correlation matrix is
    singular' (failed runs, scored as misses); the case lacks what they estimate from."""

    import numpy as np

    rng = np.random.default_rng(0)
    t = 1_700_000_000 + np.arange(14)
    df = pd.DataFrame({"time": t} | {f"s{i}_m{j}": rng.normal(size=len(t)) for i in range(10) for j in range(3)})
    _r, out = _rank_json(tmp_path / "s1_cpu" / "1", df, int(t[8]), method)
    assert out["status"] == "unavailable" and "14 rows of 30 metric columns (fewer rows than columns)" in out["error"], out


def test_reproduce_counts_the_evaluation_time_of_an_interrupted_session(tmp_path: Path, tiny: None) -> None:
    """An evaluation Ctrl-C ended never reached reproduce.json; its session in eval/run.json is counted by the rerun."""
    import json

    out = tmp_path / "r"
    args = ["reproduce", "--profile", "tiny", "--methods", "nsigma", "-q", "--out", str(out)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    run = json.loads((out / "eval" / "run.json").read_text())
    cut = {**run["sessions"][-1], "started": "2026-01-01T10:00:00+00:00", "ended": "2026-01-01T10:00:40+00:00", "interrupted": True}
    run["sessions"].insert(0, cut)  # a 40-s session that an interrupt ended before reproduce wrote its times
    (out / "eval" / "run.json").write_text(json.dumps(run))
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert json.loads((out / "reproduce.json").read_text())["evaluate_s"] >= 40
    assert "(summed over 3 invocations into this folder)" in (out / "REPORT.md").read_text()  # the interrupted one too


def test_a_campaign_stopped_with_sigterm_stops_as_on_ctrl_c(tmp_path: Path) -> None:
    """`timeout` or `kill` (SIGTERM) ended a campaign without its cleanup (a local testbed's pods kept running);
    now it stops as on Ctrl-C, says so and exits 143."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    p = subprocess.Popen([sys.executable, "-m", "llmrca", "campaign", "--backend", "sim", "--profile", "paper", "--out", str(out), "-q"],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (out / "dataset.json").exists() and p.poll() is None:
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 143, err
    assert "terminated:" in err and "--resume" in err, err
