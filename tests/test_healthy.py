"""Healthy cases (nothing injected) end to end: written by the simulator, read back, validated,
imported, evaluated as a false-alarm rate, resumed; methods that answer "no root cause"."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

import llmrca.campaign as campaign
from llmrca.campaign import Profile, run_campaign
from llmrca.cli import app
from llmrca.config import ConfigError
from llmrca.dataset.io import read_case
from llmrca.dataset.schema import parse_case_json
from llmrca.dataset.validate import import_tree
from llmrca.evaluate.runner import run_evaluation
from llmrca.methods.llm.method import LlmRca
from llmrca.methods.statistical.nsigma import NSigma
from llmrca.model import NO_FAULT, FaultSpec, Ranking
from llmrca.report.fault_effects import fault_effect_panels
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend

TINY = Profile("tiny", ("cpu",), 1, 1, "one CPU case and two healthy ones", healthy=2)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A simulated campaign: ray-worker-1_cpu/1, healthy/1, healthy/2 (seed 3)."""
    out = tmp_path_factory.mktemp("healthy") / "ds"
    campaign.PROFILES["tiny"] = TINY
    try:
        run_campaign("sim", "tiny", seed=3, out=out, progress=False)
    finally:
        campaign.PROFILES.pop("tiny", None)
    return out


def test_sim_writes_a_healthy_case_and_reads_it_back(tiny_dataset):
    man = json.loads((tiny_dataset / "dataset.json").read_text())
    assert man["healthy"] == 2
    assert [e["path"] for e in man["cases"]] == ["ray-worker-1_cpu/1", "healthy/1", "healthy/2"]
    h = man["cases"][1]
    assert (h["fault"], h["target"], h["root_causes"], h["healthy"], h["achieved"]) == ("none", None, [], True, {"injected": False})
    cj = json.loads((tiny_dataset / "healthy/1/case.json").read_text())
    assert cj["fault"]["type"] == "none" and cj["fault"]["target"] is None and cj["root_causes"] == []
    # the protocol's instant: normal window 285 s, then the (empty) fault window of 60 s
    assert cj["fault"]["start"] == cj["inject_time"] and cj["fault"]["end"] == cj["inject_time"] + 60.0
    case = read_case(tiny_dataset / "healthy/1")
    faulty = read_case(tiny_dataset / "ray-worker-1_cpu/1")
    assert case.healthy and not faulty.healthy
    assert case.root_causes == frozenset() and case.fault.target is None and case.fault_type == NO_FAULT
    assert list(case.metrics.columns) == list(faulty.metrics.columns)
    t = case.metrics["time"]
    assert (t < case.inject_time).sum() > 50 and (t >= case.inject_time).sum() > 10  # both windows hold 5 s scrapes
    assert set(case.metric_sets) == {"basic", "extended"}
    # healthy: the target's CPU does not move at the injection; in the faulty case it does
    def cpu_ratio(c, comp="ray-worker-1"):
        col = f"{comp}_cpu"
        return c.anomalous()[col].mean() / c.normal()[col].mean()
    assert cpu_ratio(case) < 1.3 and cpu_ratio(faulty) > 2.0


def test_healthy_cases_validate_and_are_skipped_by_the_fault_effect_figure(tiny_dataset):
    r = CliRunner().invoke(app, ["dataset", "validate", str(tiny_dataset)])
    assert r.exit_code == 0, r.output
    assert "3 valid case(s), 0 with problems" in r.output
    r = CliRunner().invoke(app, ["dataset", "describe", str(tiny_dataset / "healthy" / "1")])
    assert r.exit_code == 0, r.output
    assert [p.fault for p in fault_effect_panels(tiny_dataset)] == ["cpu", "cpu"]


def test_case_json_rules_for_healthy_cases(tiny_dataset):
    good = json.loads((tiny_dataset / "healthy/1/case.json").read_text())
    assert parse_case_json(good)[1] == []
    spec, probs = parse_case_json({**good, "fault": {**good["fault"], "target": "ray-worker-1"}})
    assert spec is None and "fault.target is 'ray-worker-1' but fault.type is 'none'" in probs[0]
    spec, probs = parse_case_json({**good, "root_causes": ["ray-worker-1"]})
    assert spec is None and any("root_causes is ['ray-worker-1'] but fault.type is 'none'" in p for p in probs)
    spec, probs = parse_case_json({**good, "fault": {**good["fault"], "type": "cpu"}})
    assert spec is None and "fault.target is null; expected a component name" in probs[0]


def test_plain_healthy_folder_is_imported(tiny_dataset, tmp_path):
    src = tmp_path / "plain"
    for rel in ("healthy/1", "ray-worker-1_cpu/1"):
        (src / rel).mkdir(parents=True)
        for f in ("data.csv", "inject_time.txt"):
            shutil.copy(tiny_dataset / rel / f, src / rel / f)
    rep = import_tree(src, tmp_path / "imported")
    assert rep.ok, rep.problems
    case = read_case(tmp_path / "imported" / "healthy" / "1")
    assert case.healthy and case.root_causes == frozenset()
    man = json.loads((tmp_path / "imported" / "dataset.json").read_text())
    assert {e["path"]: e["fault"] for e in man["cases"]} == {"healthy/1": "none", "ray-worker-1_cpu/1": "cpu"}


def test_false_alarm_column_and_resume(tiny_dataset, tmp_path):
    # nsigma always ranks: every healthy case is a false alarm (1.0); with a huge abstain_below it
    # abstains everywhere: no false alarm (0.0), and its abstention on the CPU case is a miss (AC@1 0)
    always = run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "always", jobs=1, progress=False)
    quiet = run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "quiet", jobs=1, progress=False, method_configs={"nsigma": {"abstain_below": 1e9}})
    assert always.counts["ok"] == quiet.counts["ok"] == 3
    s = pd.read_csv(tmp_path / "always" / "summary.csv").set_index(["method", "fault"])
    assert s.loc[("nsigma", "none"), "false_alarm"] == 1.0 and s.loc[("nsigma", "none"), "n"] == 2
    assert s.loc[("nsigma", "cpu"), "ac@1"] == 1.0 and s.loc[("nsigma", "cpu"), "n"] == 1
    q = pd.read_csv(tmp_path / "quiet" / "summary.csv").set_index(["method", "fault"])
    assert q.loc[("nsigma", "none"), "false_alarm"] == 0.0 and q.loc[("nsigma", "cpu"), "ac@1"] == 0.0
    t1 = pd.read_csv(tmp_path / "always" / "table1.csv")
    assert t1.loc[0, "none_False_alarm"] == 1.0 and t1.loc[0, "none_n"] == 2
    md = (tmp_path / "quiet" / "table1.md").read_text()
    assert "HEALTHY False alarm | HEALTHY n |" in md and "| 0.00 | 2 |" in md
    fa = pd.read_csv(tmp_path / "quiet" / "false_alarms.csv")
    assert list(fa["alarm"]) == [False, False] and list(fa["case"]) == ["healthy/1", "healthy/2"]
    recs = [json.loads(x) for x in (tmp_path / "quiet" / "results.jsonl").read_text().splitlines()]
    assert all(r["abstained"] is True and r["confidence"] > 0 for r in recs)
    # resume: nothing re-run, same numbers
    again = run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "always", jobs=1, progress=False)
    assert (again.new_runs, again.skipped_runs) == (0, 3)
    assert len((tmp_path / "always" / "results.jsonl").read_text().splitlines()) == 3
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "always" / "summary.csv").set_index(["method", "fault"]), s)
    # fidelity compares the paper's cells only: healthy cases are not among them
    from llmrca.report.fidelity import fidelity_from_summary, fidelity_of

    for fid in (fidelity_of(tmp_path / "always"), fidelity_from_summary(pd.read_csv(tmp_path / "always" / "summary.csv"))):
        assert set(fid.cells["fault"]) == {"cpu", "memory", "network", "gpu"}
        assert fid.cells.set_index(["fault", "metric"]).loc[("cpu", "ac@1"), "ours"] == 1.0


def test_cli_healthy_flag_and_campaign_resume(tmp_path, monkeypatch):
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case"))
    out = tmp_path / "ds"
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--healthy", "1", "--seed", "5", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "dataset.json").read_text())
    assert man["healthy"] == 1 and [e["path"] for e in man["cases"]] == ["ray-worker-1_cpu/1", "healthy/1"]
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--healthy", "-1", "--out", str(tmp_path / "y")])
    assert r.exit_code != 0 and "Traceback" not in r.output
    with pytest.raises(ConfigError, match="started with 1 healthy case"):
        run_campaign("sim", "tiny", seed=5, out=out, progress=False, resume=True, healthy=3)
    # resuming with the same settings after the last case was lost re-runs only that one
    shutil.rmtree(out / "healthy" / "1")
    man["cases"] = man["cases"][:1]
    (out / "dataset.json").write_text(json.dumps(man))
    run_campaign("sim", "tiny", seed=5, out=out, progress=False, resume=True, healthy=1)
    assert read_case(out / "healthy" / "1").healthy


def test_ranking_abstention_round_trip():
    r = Ranking(components=["a", "b"], scores=[2.0, 1.0]).abstain(0.4)
    d = r.to_dict()
    assert d["abstained"] is True and d["confidence"] == 0.4
    assert Ranking.from_dict(d).abstained and Ranking(components=[]).abstained
    assert not Ranking(components=["a"]).abstained


def test_nsigma_abstains_only_when_asked(tiny_dataset):
    case = read_case(tiny_dataset / "healthy" / "1").without_truth()
    default = NSigma().rank(case)
    assert not default.abstained and default.confidence > 0
    assert NSigma(abstain_below=default.confidence + 1).rank(case).abstained


def test_llm_rca_abstains_on_a_healthy_case_and_not_on_a_faulty_one(tiny_dataset):
    m = LlmRca()
    for rel in ("healthy/1", "healthy/2"):
        case = read_case(tiny_dataset / rel).with_metric_set("extended").without_truth()
        r = m.rank(case)
        assert r.abstained and r.confidence < m.config.abstain_below and r.fault_type == "unknown"
        assert r.explanation["summary"].startswith("no root cause")
    faulty = read_case(tiny_dataset / "ray-worker-1_cpu/1").with_metric_set("extended")
    r = m.rank(faulty.without_truth())
    assert not r.abstained and r.components[0] == "ray-worker-1" and r.fault_type == "cpu"
    assert r.confidence > m.config.abstain_below
    # the paper's basic set lacks the engine latency decomposition and the GPU power signals: no abstention
    basic = m.rank(read_case(tiny_dataset / "healthy/1").with_metric_set("basic").without_truth())
    assert not basic.abstained and basic.confidence < m.config.abstain_below
    assert "lacks engine latency decomposition, accelerator power" in basic.explanation["not_abstained"]


def test_llm_rca_does_not_clear_a_replica_whose_gpu_series_are_missing(tiny_dataset):
    """A replica whose GPU was never mapped (dcgm-exporter without pod labels, no --gpu-join) cannot be cleared of a
    GPU fault, even when the other replicas' GPUs are seen: no abstention, and the gap is named."""
    m = LlmRca({"abstain_below": 1.0})
    case = read_case(tiny_dataset / "healthy/1").with_metric_set("extended").without_truth()
    gone = [c for c in case.metrics.columns if c.startswith("ray-worker-2_DCGM_FI_DEV_POWER") or c in (
        "ray-worker-2_DCGM_FI_DEV_SM_CLOCK", "ray-worker-2_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "ray-worker-2_DCGM_FI_DEV_POWER_VIOLATION:rate")]
    assert gone
    case.metrics = case.metrics.drop(columns=gone)
    case.metric_sets = {**case.metric_sets, "extended": case.metrics}
    r = m.rank(case)
    assert not r.abstained, r.explanation["summary"]
    assert "accelerator power of ray-worker-2" in r.explanation["lacking"]
    assert "accelerator power of ray-worker-2" in r.explanation["not_abstained"]


def test_healthy_spec_on_the_sim_backend_matches_the_unfaulted_run():
    be = SimBackend()
    tl = Timeline()
    spec = FaultSpec(type=NO_FAULT, target="", duration_s=tl.fault_s)
    be.check_fault(spec)  # a healthy spec needs no target
    a = be.run_case(spec, seed=11, protocol=tl, start_time=1_767_225_600.0)
    b = be.simulate(None, seed=11, protocol=tl, start_time=1_767_225_600.0)
    assert a.meta["requests"]["requests"] == int(b.requests["status"].size)
    assert a.name == "healthy" and a.fault.achieved == {"injected": False}


def test_rank_cli_says_the_method_abstained_on_a_healthy_case(tiny_dataset):
    r = CliRunner().invoke(app, ["rank", str(tiny_dataset / "healthy" / "1"), "--method", "llm-rca"])
    assert r.exit_code == 0, r.output
    assert "answer: no root cause (the method abstained, confidence" in r.output
    assert "healthy case (nothing injected): the right answer is no root cause; the method abstained (right)" in r.output
    r = CliRunner().invoke(app, ["rank", str(tiny_dataset / "healthy" / "1"), "--method", "nsigma", "--json"])
    top = json.loads(r.output)["ranking"]["components"][0]  # nsigma always names someone: whoever it ranks first
    r = CliRunner().invoke(app, ["rank", str(tiny_dataset / "healthy" / "1"), "--method", "nsigma"])
    assert r.exit_code == 0 and f"verdict: healthy case (nothing injected): the right answer is no root cause; the method named {top}: a false alarm" in r.output


def test_rank_cli_states_the_evaluators_verdict_on_a_faulty_case(tiny_dataset):
    case = str(tiny_dataset / "ray-worker-1_cpu" / "1")
    r = CliRunner().invoke(app, ["rank", case, "--method", "nsigma", "--set", "abstain_below=1e9"])
    assert r.exit_code == 0, r.output
    assert "verdict: faulty case: the method abstained, which scores as a miss (AC@k = 0 for every k)" in r.output
    r = CliRunner().invoke(app, ["rank", case, "--method", "nsigma"])
    assert "verdict: faulty case: a root cause is ranked #1 (AC@1 hit)" in r.output
    r = CliRunner().invoke(app, ["rank", case, "--method", "nsigma", "--set", "abstain_below=1e9", "--json"])
    d = json.loads(r.output)
    assert d["healthy"] is False and d["verdict"].startswith("faulty case: the method abstained")


def _copy_case(src, dst, edit=None):
    """Copy one case folder; ``edit(case_json_dict)`` changes its case.json in place."""
    shutil.copytree(src, dst)
    if edit is not None:
        p = dst / "case.json"
        d = json.loads(p.read_text())
        edit(d)
        p.write_text(json.dumps(d))
    return dst


def test_healthy_case_json_without_fault_is_repaired_from_its_folder(tiny_dataset, tmp_path):
    root = tmp_path / "ds"
    _copy_case(tiny_dataset / "healthy/1", root / "healthy/1", lambda d: d.pop("fault"))
    _copy_case(tiny_dataset / "healthy/2", root / "healthy/2", lambda d: (d.pop("fault"), d.pop("root_causes")))
    case = read_case(root / "healthy/1")
    assert case.healthy and case.root_causes == frozenset() and case.fault.target is None
    assert "case.json has no fault; fault 'none' (nothing injected) was taken from the folder name healthy/" in case.meta["normalised"]
    assert any("case.json has no root_causes; [] (no root cause)" in n for n in read_case(root / "healthy/2").meta["normalised"])
    r = CliRunner().invoke(app, ["dataset", "validate", str(root)])
    assert r.exit_code == 0, r.output
    assert "2 valid case(s), 0 with problems" in r.output and "no ground truth" not in r.output


def test_a_case_without_ground_truth_is_invalid_in_validate_and_evaluate(tiny_dataset, tmp_path):
    root = tmp_path / "ds"
    _copy_case(tiny_dataset / "healthy/1", root / "sub/1", lambda d: (d.pop("fault"), d.pop("root_causes")))
    _copy_case(tiny_dataset / "ray-worker-1_cpu/1", root / "ray-worker-1_cpu/1")
    r = CliRunner().invoke(app, ["dataset", "validate", str(root)])
    assert r.exit_code == 1 and "sub/1:\n  - no ground truth: neither case.json (fault, root_causes) nor the folder name gives one" in r.output
    res = run_evaluation(root, ["nsigma"], tmp_path / "eval", jobs=1, progress=False)
    st = res.status.set_index("method").loc["nsigma"]
    assert (st["ok"], st["invalid_case"]) == (1, 1)
    recs = {x["case"]: x for x in map(json.loads, (tmp_path / "eval" / "results.jsonl").read_text().splitlines())}
    assert recs["sub/1"]["error_kind"] == "invalid_case" and "no ground truth" in recs["sub/1"]["error"]
    assert recs["ray-worker-1_cpu/1"]["status"] == "ok"


@pytest.mark.parametrize(
    ("rel", "src", "edit", "expect"),
    [
        ("healthy/1", "ray-worker-1_cpu/1", None, "warning: case.json says fault 'cpu' on 'ray-worker-1' but the folder name healthy/ says nothing was injected"),
        ("ray-worker-1_cpu/1", "healthy/1", None, "warning: case.json says nothing injected (fault.type 'none') but the folder name says fault 'cpu' on 'ray-worker-1'"),
        ("healthy/1", "healthy/1", lambda d: d["fault"]["achieved"].update(injected=True), "fault.achieved.injected is true but fault.type is 'none'"),
        ("healthy/1", "healthy/1", lambda d: d.pop("root_causes"), "* case.json has no root_causes; a healthy case (fault.type 'none') has none"),
        ("healthy/1", "healthy/1", lambda d: d["fault"].update(type="Healthy"), "* case.json: fault.type 'Healthy' was read as 'none'"),
        ("sub/1", "healthy/1", lambda d: d["fault"].update(type="healthy"), "* case.json: fault.type 'healthy' was read as 'none'"),
    ],
)
def test_suspicious_healthy_inputs_are_said(tiny_dataset, tmp_path, rel, src, edit, expect):
    _copy_case(tiny_dataset / src, tmp_path / "ds" / rel, edit)
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")])
    assert expect in r.output, r.output
    assert "Traceback" not in r.output
    if expect.startswith("warning: "):  # said again after an import, not hidden among the recorded repairs
        r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "ds"), str(tmp_path / "imp")])
        assert r.exit_code == 0 and f"{rel}: {expect}" in r.output and "repaired" not in r.output, r.output
        r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "imp")])
        assert r.exit_code == 0 and f"{rel}: {expect}" in r.output, r.output
    if "injected is true" in expect:
        assert r.exit_code == 1
    else:
        assert r.exit_code == 0
        case = read_case(tmp_path / "ds" / rel)
        assert case.healthy == (src == "healthy/1")  # case.json wins over the folder name


def test_check_method_accepts_an_empty_ranking_and_reports_mutation_without_keyerror():
    import sys
    from pathlib import Path

    from llmrca.methods import registry
    from llmrca.methods.checks import check_method

    sys.path.insert(0, str(Path(__file__).parent))
    import _evalhelpers

    for name, cls in (("test-always-empty", "AlwaysEmpty"), ("test-empty-vandal", "EmptyVandal")):
        registry.register(registry.Entry(name, f"_evalhelpers:{cls}", "statistical", display=cls, citation="test helper"), replace=True)
    try:
        results = {r.check: r for r in check_method(_evalhelpers.AlwaysEmpty, raise_on_failure=False)}
        bad = {r.check: r for r in check_method(_evalhelpers.EmptyVandal, raise_on_failure=False)}
    finally:
        registry.unregister("test-always-empty")
        registry.unregister("test-empty-vandal")
    assert all(r.passed is not False for r in results.values()), {k: r.message for k, r in results.items()}
    assert results["rank_contract"].passed is True and results["no_mutation"].passed is True
    assert bad["rank_contract"].passed is True
    assert bad["no_mutation"].passed is False and "rank changed the case's" in bad["no_mutation"].message
    assert "KeyError" not in bad["no_mutation"].message


def test_evaluate_set_method_option_is_checked_reported_and_warned_by_fidelity(tiny_dataset, tmp_path):
    out = tmp_path / "ev"
    r = CliRunner().invoke(app, ["evaluate", str(tiny_dataset), "--methods", "nsigma", "--set", "nsigma.abstain_below=1e9", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    s = pd.read_csv(out / "summary.csv").set_index(["method", "fault"])
    assert s.loc[("nsigma", "none"), "false_alarm"] == 0.0 and s.loc[("nsigma", "cpu"), "ac@1"] == 0.0  # it abstained everywhere
    sentence = "Non-default method options (these rows are not the methods as published): nsigma abstain_below=1000000000.0 (default None)."
    assert sentence in (out / "table1.md").read_text()
    r = CliRunner().invoke(app, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert sentence in (out / "REPORT.md").read_text() and "nsigma abstain_below=1000000000.0 (default None)" in (out / "REPORT.html").read_text()
    from llmrca.report.fidelity import fidelity_of

    for where in (out, out / "summary.csv"):
        w = fidelity_of(where, n_boot=0).warnings()
        assert w == ["warning: nsigma ran with non-default options (abstain_below=1000000000.0, default None): its numbers are not the paper's method as published"]
    r = CliRunner().invoke(app, ["fidelity", str(out), "--boot", "0"])  # one paper method: only the refusal
    assert r.exit_code == 2 and r.output == "error: only 1 of the paper's methods were evaluated (nsigma); ρ needs at least 3\n"
    r = CliRunner().invoke(app, ["fidelity", str(out), "--boot", "0", "--json"])  # what there is, the warning on stderr
    assert "warning: nsigma ran with non-default options" in r.stderr and json.loads(r.stdout)["methods"] == ["nsigma"]
    # a reference mode without the paper's failure rule is said as such, from the folder or its summary.csv
    ref = tmp_path / "ref"
    CliRunner().invoke(app, ["evaluate", str(tiny_dataset), "--methods", "nsigma,baro,e-diagnosis", "--set", "nsigma.reference_mode=rcaeval", "--out", str(ref), "-q"])
    for where in (ref, ref / "summary.csv"):
        r = CliRunner().invoke(app, ["fidelity", str(where), "--boot", "0"])
        assert "mode: reference modes for nsigma rcaeval, the other methods as published; failed runs count as misses" in r.output
        d = json.loads(CliRunner().invoke(app, ["fidelity", str(where), "--boot", "0", "--json"]).output)
        assert d["reference_modes"] == {"nsigma": "rcaeval"} and d["random_on_failure"] is False
    # the defaults: nothing said
    CliRunner().invoke(app, ["evaluate", str(tiny_dataset), "--methods", "nsigma", "--out", str(tmp_path / "plain"), "-q"])
    assert "Non-default" not in (tmp_path / "plain" / "table1.md").read_text() and fidelity_of(tmp_path / "plain", n_boot=0).warnings() == []
    for bad, said in (
        ("nsgma.abstain_below=3", "options (--set) given for ['nsgma'], which is no method (did you mean 'nsigma'?)"),
        ("baro.q_low=0.1", "options (--set) given for ['baro'], not among the methods being evaluated (nsigma)"),
        ("nsigma.nope=3", "method 'nsigma': NSigmaConfig: unknown option(s) ['nope']; valid options: ['abstain_below'"),
        ("abstain_below=3", "--set 'abstain_below=3' is not METHOD.option=VALUE"),
        ("nsigma.abstain_below=[", "the value is not valid YAML"),
    ):
        r = CliRunner().invoke(app, ["evaluate", str(tiny_dataset), "--methods", "nsigma", "--set", bad, "--out", str(tmp_path / "x"), "-q"])
        assert r.exit_code == 2 and said in r.output and "Traceback" not in r.output, (bad, r.output)


def test_reproduce_set_is_checked_before_the_campaign(tmp_path):
    r = CliRunner().invoke(app, ["reproduce", "--methods", "nsigma", "--set", "baro.abstain_below=2", "--out", str(tmp_path / "r"), "-q"])
    assert r.exit_code == 2 and "--set names ['baro'], not among the methods to run (nsigma)" in r.output
    r = CliRunner().invoke(app, ["reproduce", "--methods", "nsigma", "--set", "nsigma.nope=2", "--out", str(tmp_path / "r"), "-q"])
    assert r.exit_code == 2 and "unknown option(s) ['nope']" in r.output
    assert not (tmp_path / "r" / "dataset").exists()  # refused before any case was made


@pytest.fixture
def raiser():
    """The test method that always fails, registered with a display name of its own."""
    import sys
    from pathlib import Path

    from llmrca.methods import registry

    sys.path.insert(0, str(Path(__file__).parent))
    registry.register(registry.Entry("test-raises", "_evalhelpers:Raising", "statistical", display="Raiser", citation="test helper"), replace=True)
    yield "test-raises"
    registry.unregister("test-raises")


def test_healthy_columns_stay_when_a_method_answers_no_healthy_case(tiny_dataset, tmp_path, raiser):
    alone = tmp_path / "alone"
    run_evaluation(tiny_dataset, [raiser], alone, jobs=1, progress=False)
    md = (alone / "table1.md").read_text()
    assert "HEALTHY False alarm | HEALTHY n |" in md and "| Raiser |" in md  # the plug-in's display name
    assert md.splitlines()[2].endswith("| – | 0 |")
    fa = pd.read_csv(alone / "false_alarms.csv")
    assert fa.empty and list(fa.columns)[:5] == ["method", "case", "status", "fallback", "alarm"]
    s = pd.read_csv(alone / "summary.csv").set_index(["method", "fault"])
    assert s.loc[(raiser, "none"), "n"] == 0 and pd.isna(s.loc[(raiser, "none"), "false_alarm"])
    both = tmp_path / "both"
    run_evaluation(tiny_dataset, ["nsigma", raiser], both, jobs=1, progress=False)
    t1 = (both / "table1.csv").read_text().splitlines()
    assert t1[0].endswith("none_False_alarm,none_n")
    assert t1[1].endswith(",1.0,2") and t1[2].endswith(",,0")  # whole counts, not 2.0
    r = CliRunner().invoke(app, ["report", str(both)])
    assert r.exit_code == 0, r.output
    rep = (both / "REPORT.md").read_text()
    assert "HEALTHY n=2 cases; exceptions: Raiser HEALTHY n=0." in rep
    assert "3 cases (healthy 2, cpu 1), 2 methods." in rep  # not "none 2"


def test_evaluate_console_summary_shows_false_alarms(tiny_dataset, tmp_path):
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["evaluate", str(tiny_dataset), "--methods", "nsigma", "--out", str(tmp_path / "all"), "-q"])
    assert r.exit_code == 0, r.output
    assert "Best methods (all faults, false alarms on the healthy cases)" in r.output
    row = next(line for line in r.output.splitlines() if "nsigma" in line)
    assert row.split("│")[1:-1] == [" nsigma ", " 1 ", " 1.00 ", " 1.00 ", "  1.00 ", "        1.00 ", "         2 "]
    only = tmp_path / "honly"
    for rel in ("healthy/1", "healthy/2"):
        _copy_case(tiny_dataset / rel, only / rel)
    r = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["evaluate", str(only), "--methods", "nsigma", "--out", str(tmp_path / "h"), "-q"])
    assert r.exit_code == 0, r.output
    assert "False alarms" in r.output and "Best methods" not in r.output
    assert "healthy cases only (nothing to rank): share where the method named a root cause, lower is better" in " ".join(r.output.split())
    row = next(line for line in r.output.splitlines() if "nsigma" in line)
    assert [c.strip() for c in row.split("│")[1:-1]] == ["nsigma", "1.00", "2"]


def test_campaign_resume_reads_healthy_from_the_manifest_and_counts_every_case(tmp_path, monkeypatch):
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case"))
    out = tmp_path / "ds"
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--healthy", "2", "--seed", "5", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "dataset.json").read_text())
    shutil.rmtree(out / "healthy" / "2")
    man["cases"] = man["cases"][:2]
    (out / "dataset.json").write_text(json.dumps(man))
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--seed", "5", "--out", str(out), "--resume"])
    assert r.exit_code == 0, r.output
    assert read_case(out / "healthy" / "2").healthy
    assert json.loads((out / "dataset.json").read_text())["healthy"] == 2
    flat = " ".join(r.output.split())
    assert "3 cases, 1 run now, 2 from before" in flat
    rows = {c[0]: c[1:3] for line in r.output.splitlines() if line.startswith("│") for c in [[x.strip() for x in line.strip("│").split("│")]]}
    assert rows["cpu"] == ["1", "0"] and rows["none (healthy)"] == ["2", "1"]  # every case of the dataset, and those run now
    assert "requests, failed and wall s/case: of the cases run now" in flat
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--seed", "5", "--healthy", "3", "--out", str(out), "--resume", "-q"])
    assert r.exit_code == 2 and "started with 2 healthy case(s), not 3" in r.output
    r = CliRunner().invoke(app, ["campaign", "--help"], env={"COLUMNS": "300"})
    assert "--healthy, if given, must match" in " ".join(r.output.split())


def test_campaign_resume_keeps_the_simulator_options_and_fault_parameters_it_was_started_with(tmp_path, monkeypatch):
    """A resumed campaign without --set continues with its own settings; other settings are refused by name."""
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case", healthy=2))
    out = tmp_path / "ds"
    args = ["campaign", "--profile", "tiny", "--seed", "5", "--out", str(out), "-q"]
    r = CliRunner().invoke(app, [*args, "--set", "sim.ingress=head", "--set", "fault.cpu.workers=4"])
    assert r.exit_code == 0, r.output
    man = json.loads((out / "dataset.json").read_text())
    shutil.rmtree(out / "healthy" / "2")  # as if killed before its last case
    man["cases"], man["complete"] = man["cases"][:2], False
    (out / "dataset.json").write_text(json.dumps(man))
    r = CliRunner().invoke(app, [*args, "--resume", "--set", "sim.ingress=every-pod"])
    assert r.exit_code == 2 and "sim.ingress='every-pod' (started with 'head')" in r.output, r.output
    r = CliRunner().invoke(app, [*args, "--resume", "--set", "fault.cpu.workers=8"])
    assert r.exit_code == 2 and "fault.cpu {'workers': 8} (started with {'workers': 4})" in r.output, r.output
    # options that repeat the recorded ones (or are not recorded as different) resume; only what differs is named
    r = CliRunner().invoke(app, [*args, "--resume", "--set", "sim.noise=0.03"])
    assert r.exit_code == 2 and "sim.noise=0.03 (started with 0.02)" in r.output and "ingress" not in r.output, r.output
    r = CliRunner().invoke(app, [*args, "--resume"])
    assert r.exit_code == 0, r.output
    params = json.loads((out / "dataset.json").read_text())["parameters"]
    assert params["sim"]["ingress"] == "head" and params["fault_params"] == {"cpu": {"workers": 4}}
    # the case run now is the one an uninterrupted campaign makes: the head relays it (no worker mesh latency)
    whole = tmp_path / "whole"
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--seed", "5", "--out", str(whole), "-q", "--set", "sim.ingress=head", "--set", "fault.cpu.workers=4"])
    assert r.exit_code == 0, r.output
    assert (out / "healthy" / "2" / "data.csv").read_bytes() == (whole / "healthy" / "2" / "data.csv").read_bytes()
    # a fault parameter given at its default is the setting the campaign was started with (none given)
    plain = tmp_path / "plain"
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--seed", "5", "--out", str(plain), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--seed", "5", "--out", str(plain), "-q", "--resume", "--set", "fault.cpu.workers=16"])
    assert r.exit_code == 0, r.output


def test_an_early_kill_leaves_the_settings_on_disk_for_the_resume(tmp_path, monkeypatch):
    """dataset.json is written before the first case: a campaign killed during its first case resumes with its own settings."""
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case", healthy=1))
    out = tmp_path / "ds"
    seen = {}

    def crash(self, spec, **kw):
        seen["manifest"] = json.loads((out / "dataset.json").read_text())
        raise KeyboardInterrupt  # killed during the first case

    monkeypatch.setattr(SimBackend, "run_case", crash)
    with pytest.raises(KeyboardInterrupt):
        run_campaign("sim", "tiny", seed=5, out=out, progress=False, sim_params={"ingress": "head"}, fault_params={"cpu": {"workers": 4}})
    assert seen["manifest"]["cases"] == [] and seen["manifest"]["complete"] is False
    monkeypatch.undo()
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case", healthy=1))
    r = CliRunner().invoke(app, ["campaign", "--profile", "tiny", "--seed", "5", "--out", str(out), "--resume", "-q"])
    assert r.exit_code == 0, r.output
    params = json.loads((out / "dataset.json").read_text())["parameters"]
    assert params["sim"]["ingress"] == "head" and params["fault_params"] == {"cpu": {"workers": 4}}


def test_reproduce_takes_healthy(tmp_path, monkeypatch):
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case"))
    out = tmp_path / "r"
    r = CliRunner().invoke(app, ["reproduce", "--profile", "tiny", "--healthy", "1", "--methods", "nsigma", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "dataset" / "dataset.json").read_text())["healthy"] == 1
    s = pd.read_csv(out / "eval" / "summary.csv").set_index(["method", "fault"])
    assert s.loc[("nsigma", "none"), "n"] == 1
    # a second run with the same settings reuses the dataset; another --healthy is refused
    r = CliRunner().invoke(app, ["reproduce", "--profile", "tiny", "--healthy", "1", "--methods", "nsigma", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["reproduce", "--profile", "tiny", "--healthy", "2", "--methods", "nsigma", "--out", str(out), "-q"])
    assert r.exit_code == 2 and "other settings: healthy 1 (asked: 2); choose another --out" in r.output


def test_reproduce_passes_simulator_and_fault_options_to_the_campaign(tmp_path, monkeypatch):
    """--set sim.KEY=V / fault.TYPE.KEY=V go to the campaign (as `llmrca campaign --set`), METHOD.option=V to the methods;
    the dataset, reproduce.json and REPORT.md record them, and a rerun reuses the dataset only with the same ones."""
    monkeypatch.setitem(campaign.PROFILES, "tiny", Profile("tiny", ("cpu",), 1, 1, "one CPU case"))
    out = tmp_path / "r"
    args = ["reproduce", "--profile", "tiny", "--methods", "nsigma", "--out", str(out), "-q"]
    sets = ["--set", "sim.ingress=head", "--set", "fault.cpu.workers=4", "--set", "nsigma.abstain_below=2"]
    r = CliRunner().invoke(app, [*args, *sets])
    assert r.exit_code == 0, r.output
    params = json.loads((out / "dataset" / "dataset.json").read_text())["parameters"]
    assert params["sim"]["ingress"] == "head" and params["fault_params"] == {"cpu": {"workers": 4}}
    rec = json.loads((out / "reproduce.json").read_text())
    assert rec["campaign_options"] == {"fault_params": {"cpu": {"workers": 4}}, "sim_params": {"ingress": "head"}}
    assert rec["method_configs"] == {"nsigma": {"abstain_below": 2}}
    assert "ingress='head' (default 'every-pod')" in (out / "REPORT.md").read_text()
    assert "Mode: every method as published; a failed run is a miss." in (out / "REPORT.md").read_text()
    assert "Fault parameters other than the defaults: cpu.workers=4." in (out / "REPORT.md").read_text()
    mtime = (out / "dataset" / "dataset.json").stat().st_mtime_ns
    r = CliRunner().invoke(app, [*args, *sets])  # the same settings: the dataset is reused
    assert r.exit_code == 0, r.output
    assert (out / "dataset" / "dataset.json").stat().st_mtime_ns == mtime
    # an interrupted campaign (here: killed before its one case ended) is finished by the rerun, not scored as it is
    man = json.loads((out / "dataset" / "dataset.json").read_text())
    case = man["cases"][0]["path"]
    before = (out / "dataset" / case / "data.csv").read_bytes()
    shutil.rmtree(out / "dataset" / case)
    man["cases"], man["complete"] = [], False
    (out / "dataset" / "dataset.json").write_text(json.dumps(man))
    r = CliRunner().invoke(app, [*args, *sets])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "dataset" / "dataset.json").read_text())["complete"] is True
    assert (out / "dataset" / case / "data.csv").read_bytes() == before
    for other, said in (([], "other settings: sim.ingress 'head' (asked: the default ('every-pod')); fault.cpu {'workers': 4} (asked: the defaults);"),
                        (["--set", "sim.ingress=head"], "other settings: fault.cpu {'workers': 4} (asked: the defaults); choose another"),
                        (["--set", "sim.ws_jitter_bytes=0", "--set", "fault.cpu.workers=4"],
                         "other settings: sim.ingress 'head' (asked: the default ('every-pod')); sim.ws_jitter_bytes the default (131072.0) (asked: 0.0); choose")):
        r = CliRunner().invoke(app, [*args, *other])
        flat = " ".join(r.output.split())
        assert r.exit_code == 2 and said in flat and "choose another --out for different settings" in flat, (other, r.output)
    r = CliRunner().invoke(app, [*args, "--set", "sim.bogus=1"])
    assert r.exit_code == 2 and "unknown option(s) ['bogus']" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, [*args, "--set", "k8s.namespace=x"])  # another backend's option
    assert r.exit_code == 2 and "option 'k8s.namespace' is for --backend k8s, not sim" in r.output
    r = CliRunner().invoke(app, [*args, "--set", "sim.tick_s=0"])
    assert r.exit_code == 2 and "tick_s must be in 0.01..1 s (got 0" in r.output and "Traceback" not in r.output


def test_report_html_shows_a_healthy_case_as_nothing_injected_with_signals(tiny_dataset, tmp_path):
    from llmrca.report.document import write_documents

    run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "loud", jobs=1, progress=False)
    page = write_documents(tmp_path / "loud").html.read_text()
    assert "no fault record" not in page
    assert page.count("Nothing was injected (a healthy case)") == 2
    runs = [json.loads(line) for line in (tmp_path / "loud" / "results.jsonl").read_text().splitlines()]
    blamed = {r["ranking"][0] for r in runs if r["fault"] == "none"}  # nsigma always names someone on a healthy case
    for comp in blamed:
        assert f"Signals of {comp}, ranked first by 1 of 1 methods that named a root cause (each a false alarm)" in page
    assert page.count("<svg") >= 2 + 2  # CPU and latency of the faulty case's target; at least one panel per healthy case
    run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "quiet", jobs=1, progress=False, method_configs={"nsigma": {"abstain_below": 1e9}})
    page = write_documents(tmp_path / "quiet").html.read_text()
    entry = read_case(tiny_dataset / "healthy/1").topology.entry
    assert f"Signals of {entry}, the entry (no method named a root cause)" in page and page.count("<svg") > 2


def test_misattribution_finding_says_why_when_every_miss_is_an_abstention(tiny_dataset, tmp_path):
    from llmrca.report.document import write_documents

    run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "quiet", jobs=1, progress=False, method_configs={"nsigma": {"abstain_below": 1e9}})
    md = write_documents(tmp_path / "quiet").markdown.read_text()
    assert ("- **Misattribution goes upstream** (n/a): every miss of the baselines was 1 abstention(s): "
            "no component ranked first, so nothing was blamed.") in md
    run_evaluation(tiny_dataset, ["nsigma"], tmp_path / "loud", jobs=1, progress=False)
    md = write_documents(tmp_path / "loud").markdown.read_text()
    assert "- **Misattribution goes upstream** (n/a): the baselines ranked the culprit first in every case: nothing was misattributed." in md


def test_methods_lists_which_can_abstain():
    r = CliRunner().invoke(app, ["methods", "--json"])
    rows = {x["name"]: x for x in json.loads(r.output)}
    assert rows["nsigma"]["abstain_option"] == rows["baro"]["abstain_option"] == "abstain_below"
    assert rows["random"]["abstain_option"] is None and rows["llm-rca"]["abstain_option"] == "abstain_below"
    r = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["methods"])
    line = next(x for x in r.output.splitlines() if x.startswith("can abstain"))
    assert "nsigma (abstain_below, off by default), baro (abstain_below, off by default)" in line
    assert "llm-rca (abstain_below, on: " in line and "random" not in line


def test_methods_lists_reference_modes():
    """``methods`` says which reference mode ``reproduce --as-paper`` sets, and which methods have none."""
    r = CliRunner().invoke(app, ["methods", "--json"])
    rows = {x["name"]: x for x in json.loads(r.output)}
    assert rows["baro"]["reference_mode"] == rows["circa"]["reference_mode"] == "rcaeval"
    assert rows["e-diagnosis"]["reference_mode"] == "pyrca"
    # MicroCause follows the artifact's RCAEval copy; random has no option at all
    assert rows["microcause"]["reference_mode"] == "rcaeval" and rows["random"]["reference_mode"] is None
    r = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["methods"])
    line = next(x for x in r.output.splitlines() if x.startswith("reference mode"))
    assert "e-diagnosis (pyrca)" in line and line.split("none: ")[1].startswith("random, rcd")


def test_methods_table_keeps_names_whole_in_a_narrow_terminal():
    """In 80 columns the table keeps the columns that fit (names whole: they are copied into --methods) and says
    what it left out; 150 columns and more show every column."""
    narrow = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["methods"]).output
    assert "│ granger-randomwalk │ Granger-RW" in narrow and "│ LLM-RCA (ours) │" in narrow and "…" not in narrow
    assert "source, needs, extra and install are left out: this terminal is 80 columns wide" in narrow
    wide = CliRunner(env={"COLUMNS": "250"}).invoke(app, ["methods"]).output
    assert all(h in wide.splitlines()[2] for h in ("source", "needs", "extra", "install")) and "left out" not in wide


def test_report_marks_agreement_cells_scored_on_the_random_fallback(tiny_dataset, tmp_path):
    """--as-paper scores a failed run on the random ranking: a side-by-side cell made mostly of such runs is marked."""
    from llmrca.evaluate.results import read_results
    from llmrca.report.document import RANDOM_NOTE, write_documents

    methods = ["nsigma", "baro", "e-diagnosis"]
    rows = {}
    # no run finishes in 10 ms: all time out, scored as random (--as-paper) or as misses (the default rule)
    for name, timeout, on_failure in (("fell", 0.01, True), ("ran", 300.0, True), ("missed", 0.01, False)):
        out = tmp_path / name
        run_evaluation(tiny_dataset, methods, out / "eval", jobs=1, timeout_s=timeout, progress=False, random_on_failure=on_failure)
        recs = read_results(out / "eval" / "results.jsonl")
        assert all((r["fallback_ranking"] is not None) == (name != "ran") for r in recs)
        md = write_documents(out).markdown.read_text()
        side = md[md.index("AC@1 side by side"):]
        rows[name] = [ln for ln in side.splitlines() if ln.startswith("| ") and " / " in ln]
        assert (RANDOM_NOTE in side) == (name == "fell")
        # the note under Table 1 (report and table1.md) names why runs were not ok
        not_ok = [ln for ln in md.splitlines() if ln.startswith("Runs not ok:")]
        t1 = (out / "eval" / "table1.md").read_text()
        assert (not_ok == []) == (name == "ran")
        fid = " ".join(CliRunner().invoke(app, ["fidelity", str(out / "eval"), "--boot", "20"]).output.split())
        said = "scored mostly on the random ranking (at least half of their runs failed): "
        assert (said in fid) == (name == "fell"), fid
        assert name != "fell" or set(fid.split(said)[1].split(";")[0].split(", ")) == {"nsigma", "baro", "e-diagnosis"}
        assert name != "fell" or "[lo, hi]: 95 % interval of 20 bootstrap resamples of the cases; it usually leans below the estimate" in fid
        mostly = "Scored mostly on the seeded random ranking (at least half of their runs failed or timed out"
        assert (mostly in md) == (name == "fell") and (name != "fell" or "NSigma 3 of 3, BARO 3 of 3" in md)
        if not_ok:
            assert "NSigma: 3 timeout (most often: timeout: no result within 0.01 s" in not_ok[0], not_ok
            assert "nsigma: 3 timeout (most often: timeout: no result within 0.01 s" in t1, t1
    assert len(rows["fell"]) == len(rows["ran"]) == len(rows["missed"]) == 3
    assert all(ln.split("|")[2].rstrip().endswith("ᴿ") for ln in rows["fell"])  # the CPU cell
    assert not any("ᴿ" in ln for ln in rows["ran"] + rows["missed"])  # a miss keeps its fallback ranking unused


def test_describe_says_the_simulated_basic_set_holds_the_exporters_queries(tiny_dataset, tmp_path):
    """`dataset describe` maps `mem` to bytes by its name; in a simulated basic set it is the exporter's rate() of the
    working set (kB/s), and describe says so (for the dataset and for one of its case folders), not for other data."""
    from llmrca.dataset.io import Dataset
    from llmrca.synthetic import make_case

    note = "note: this simulated dataset's basic set (data.csv) holds the paper exporter's queries"
    for target in (tiny_dataset, tiny_dataset / "ray-worker-1_cpu" / "1"):
        r = CliRunner().invoke(app, ["dataset", "describe", str(target)])
        assert r.exit_code == 0 and note in r.output and "mem = rate(container_memory_working_set_bytes[1m]) / 1000" in r.output
    r = CliRunner().invoke(app, ["dataset", "describe", str(tiny_dataset), "--metric-set", "extended"])
    assert r.exit_code == 0 and note not in r.output
    Dataset.write([make_case(seed=1, with_logs=False, with_traces=False)], tmp_path / "syn")
    r = CliRunner().invoke(app, ["dataset", "describe", str(tmp_path / "syn")])
    assert r.exit_code == 0 and note not in r.output
