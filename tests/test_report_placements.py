"""The report on a dataset with every fault type placed on every component (the ``extended`` kind of campaign):
the fault-effect figure shows every fault type on a worker, the paper comparisons keep to the paper's setting
(its four fault types on workers), fault types named are scored, and the docs list every profile and fault module."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import llmrca.campaign as campaign
from llmrca.campaign import Profile, run_campaign
from llmrca.cli import app
from llmrca.evaluate.results import read_results, scored_frame
from llmrca.evaluate.runner import run_evaluation
from llmrca.model import ALL_FAULT_TYPES, FAULT_TYPES
from llmrca.report.document import write_documents
from llmrca.report.fault_effects import fault_effect_panels, fault_effects_figure
from llmrca.report.fidelity import fidelity_from_scored
from llmrca.report.findings import _kind, findings, findings_lines
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR
from llmrca.testbed.base import FAULT_IMPLEMENTATIONS

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["llm-rca", "nsigma", "baro", "circa"]
#: every fault type on the components it applies to, targets in turn (gateway, head, workers...): 31 faulty cases
MIX = Profile("mix", ALL_FAULT_TYPES, 3, 1, "every fault type, 3 cases each over its components, and one healthy case", healthy=1, placement="all", cases_per_fault=3)
WORKERS_ONLY = Profile("paper-tiny", FAULT_TYPES, 1, 1, "the paper's four faults on one worker")


def _campaign(profile: Profile, out: Path, seed: int) -> Path:
    campaign.PROFILES[profile.name] = profile
    try:
        run_campaign("sim", profile.name, seed=seed, out=out, progress=False)
    finally:
        campaign.PROFILES.pop(profile.name, None)
    return out


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """(dataset, evaluation folder, REPORT.md) of the MIX campaign (seed 7) evaluated with four methods, report written."""
    root = tmp_path_factory.mktemp("placements")
    ds = _campaign(MIX, root / "ds", 7)
    ev = root / "eval"
    run_evaluation(ds, METHODS, ev, jobs=1, progress=False)
    return ds, ev, write_documents(ev).markdown


def _truth(ds: Path) -> dict[str, tuple[str, str]]:
    """case name -> (fault type, target), read from each case.json."""
    out = {}
    for p in ds.glob("*/*/case.json"):
        d = json.loads(p.read_text())
        fault = d.get("fault") or {}
        if fault.get("target"):
            out[f"{p.parent.parent.name}/{p.parent.name}"] = (fault["type"], fault["target"])
    return out


def test_fault_effect_figure_shows_every_fault_type_on_a_worker_with_its_key_signals(mixed, tmp_path):
    ds, _, _ = mixed
    truth = _truth(ds)
    assert {t for _, t in truth.values()} >= {GATEWAY, HEAD, "ray-worker-1"}  # the dataset places faults elsewhere too
    panels = fault_effect_panels(ds)
    rows = [p for p in panels if p.column == 0]
    assert [p.fault for p in rows] == list(ALL_FAULT_TYPES)
    assert all(p.case.fault.target.startswith("ray-worker-") for p in rows)
    cols = {(p.fault, p.column): [s.column.split("_", 1)[1] for s in p.series] for p in panels}
    assert cols[("kv-cache", 0)] == ["vllm:kv_cache_usage_perc"]
    assert cols[("kv-cache", 1)] == ["vllm:time_to_first_token_seconds:p90"]
    assert cols[("gpu-thermal", 0)] == ["DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_GPU_TEMP"]
    assert cols[("gpu-thermal", 1)] == ["DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_POWER_MGMT_LIMIT"]
    assert cols[("gpu-error", 0)] == ["ray_serve_deployment_replica_healthy", "DCGM_FI_DEV_XID_ERRORS"]
    assert cols[("gpu-error", 1)] == ["ray_serve_deployment_error_counter_total:rate"]
    assert cols[("model-load", 0)][0] == "ray_serve_deployment_replica_healthy" and cols[("model-load", 1)] == ["latency-90"]
    assert cols[("packet-loss", 0)] == ["node_netstat_Tcp_RetransSegs:rate"] and cols[("packet-loss", 1)] == ["latency-90"]
    assert cols[("noisy-neighbour", 0)] == ["container_pressure_cpu_waiting_seconds_total:rate", "node_cpu_seconds_total:rate"]
    assert cols[("noisy-neighbour", 1)] == ["latency-90"]
    # the paper's four keep their signals
    assert cols[("cpu", 0)] == ["cpu"] and cols[("memory", 0)] == ["mem"] and cols[("gpu", 0)] == ["gpu"]
    # the fault is visible: the replica is marked unhealthy during a gpu-error, TCP retransmits rise under packet loss
    by = {(p.fault, p.column): p for p in panels}
    healthy = by[("gpu-error", 0)].series[0]
    assert healthy.v[(healthy.t > 0.2) & (healthy.t < 0.8)].min() == 0 and healthy.v[healthy.t < -0.5].min() == 1
    retx = by[("packet-loss", 0)].series[0]
    assert retx.v[(retx.t > 0.2) & (retx.t < 0.8)].mean() > 3 * max(retx.v[retx.t < -0.5].mean(), 1e-9)
    png = fault_effects_figure(ds, tmp_path / "fe.png")
    width, height = struct.unpack(">II", png.read_bytes()[16:24])
    assert width == 1300 and height == round(130 * (1.72 * 10 + 0.7))  # ten rows of two panels


def test_kind_of_a_wrong_component_is_relative_to_the_true_target():
    assert _kind("ray-worker-2", GATEWAY) == "worker"
    assert _kind("ray-worker-2", OPERATOR) == "worker"
    assert _kind("ray-worker-2", "ray-worker-1") == "other worker"
    assert _kind("ray-worker-2") == "other worker"
    assert _kind(HEAD, "ray-worker-1") == "head" and _kind(GATEWAY, HEAD) == "gateway" and _kind(OPERATOR, GATEWAY) == "operator"
    rows = [
        {"method": "baro", "case": "a", "fault": "cpu", "target": GATEWAY, "top1": "ray-worker-1", "hit1": False, "ac@1": 0.0},
        {"method": "baro", "case": "b", "fault": "cpu", "target": "ray-worker-1", "top1": "ray-worker-2", "hit1": False, "ac@1": 0.0},
    ]
    f = findings(pd.DataFrame(rows))
    assert f.blame_share == {"worker": 0.5, "other worker": 0.5}


def test_report_compares_with_the_paper_on_worker_placed_paper_faults_only(mixed):
    ds, ev, report = mixed
    truth = _truth(ds)
    paper_cases = {c for c, (ft, t) in truth.items() if ft in FAULT_TYPES and t.startswith("ray-worker-")}
    others = set(truth) - paper_cases
    assert paper_cases and others
    records = read_results(ev / "results.jsonl")
    scored = scored_frame(records)
    kept = scored[scored["case"].isin(paper_cases)]
    md = report.read_text()
    assert f"use the {len(paper_cases)} such cases and leave out the other {len(others)} faulty cases" in md
    n_other_types = sum(1 for ft, _ in truth.values() if ft not in FAULT_TYPES)
    assert f"{n_other_types} of other fault types" in md
    findings_md = md.split("## Findings", 1)[1].split("## ", 1)[0]
    f_kept = findings_lines(findings(kept))
    assert f_kept and all(line in findings_md for line in f_kept)
    assert findings_lines(findings(scored)) != f_kept  # all cases would have said something else
    fid_md = md.split("## Agreement with the paper", 1)[1]
    fid = fidelity_from_scored(kept, n_boot=1000, seed=0)
    assert all(line in fid_md for line in fid.lines())
    assert "other worker" not in findings_md or "another worker for" in findings_md


def test_summary_and_report_say_whether_the_fault_type_was_named(mixed):
    ds, ev, report = mixed
    records = [r for r in read_results(ev / "results.jsonl") if r["method"] == "llm-rca" and r.get("root_causes")]
    right = {}
    for r in records:
        right.setdefault(r["fault"], []).append((r.get("explanation") or {}).get("fault_type") == r["fault"])
    s = pd.read_csv(ev / "summary.csv")
    ours = s[s["method"] == "llm-rca"].set_index("fault")["type_named"]
    for ft, hits in right.items():
        assert ours[ft] == pytest.approx(sum(hits) / len(hits), abs=1e-4)
    assert ours["all"] == pytest.approx(sum(sum(h) for h in right.values()) / len(records), abs=1e-4)
    assert pd.isna(ours["none"])
    assert s[s["method"] == "nsigma"]["type_named"].isna().all()  # NSigma names no type
    md = report.read_text()
    table = md.split("## Fault type named", 1)[1].split("## ", 1)[0]
    assert "| LLM-RCA (ours) |" in table and "NSigma" not in table
    assert f"{ours['all']:.2f} |" in table.split("| LLM-RCA (ours) |", 1)[1].splitlines()[0]
    place = md.split("## AC@1 by placement", 1)[1].split("## ", 1)[0]
    truth = _truth(ds)
    n_gw = sum(1 for _, t in truth.values() if t == GATEWAY)
    assert f"gateway (n={n_gw})" in place and "head (n=" in place and "worker (n=" in place
    scored = scored_frame(read_results(ev / "results.jsonl"))
    gw = scored[(scored["method"] == "baro") & scored["case"].map(lambda c: truth[c][1] == GATEWAY)]
    assert f"| BARO | {gw['ac@1'].mean():.2f} |" in place


def test_a_paper_like_dataset_gets_no_scope_sentence_nor_placement_table(tmp_path):
    ds = _campaign(WORKERS_ONLY, tmp_path / "ds", 3)
    ev = tmp_path / "eval"
    run_evaluation(ds, ["nsigma", "baro", "circa"], ev, jobs=1, progress=False)
    md = write_documents(ev).markdown.read_text()
    assert "## Agreement with the paper" in md and "leave out the other" not in md
    assert "Mode: every method as published (failed runs count as misses)" in md  # the report says how they ran
    assert "Simulator: the defaults (ingress='every-pod': a Serve proxy on every pod, the paper's Fig. 4)." in md.split("\n\n", 2)[1]  # ... and with which simulator settings
    man = json.loads((ds / "dataset.json").read_text())
    man["parameters"]["sim"]["ws_jitter_bytes"] = 0.0  # as if made with --set sim.ws_jitter_bytes=0
    (ds / "dataset.json").write_text(json.dumps(man))
    md = write_documents(ev).markdown.read_text()
    assert "Simulator: options other than the defaults: ws_jitter_bytes=0.0 (default 131072.0)." in md
    del man["parameters"]["sim"]["ray_heap_jitter_bytes"], man["parameters"]["sim"]["ingress"]  # an older llmrca's manifest
    (ds / "dataset.json").write_text(json.dumps(man))
    md = write_documents(ev).markdown.read_text()
    assert ("Simulator: options other than the defaults: ws_jitter_bytes=0.0 (default 131072.0); not recorded (a dataset "
            "made before these options existed; today's defaults need not be what it used): ingress, ray_heap_jitter_bytes.") in md
    # as the paper ran them: the reference modes are named, with the methods that have none
    ref = tmp_path / "eval-ref"
    run_evaluation(ds, ["nsigma", "baro", "random"], ref, jobs=1, progress=False, random_on_failure=True,
                   method_configs={"nsigma": {"reference_mode": "rcaeval"}, "baro": {"reference_mode": "rcaeval"}})
    md = write_documents(ref).markdown.read_text()
    assert ("Mode: reference implementations for NSigma (rcaeval), BARO (rcaeval); the other as published (Random); "
            "failed runs scored on a seeded random ranking, as the paper did.") in md
    assert "## AC@1 by placement" not in md and "## Fault type named" not in md
    assert "type_named" not in pd.read_csv(ev / "summary.csv").columns


@pytest.mark.parametrize(
    ("methods", "ref", "sentence"),
    [
        (["nsigma"], ["nsigma"], "Mode: a reference implementation for the one method; a failed run is a miss."),
        (["nsigma", "baro"], ["nsigma", "baro"], "Mode: reference implementations for both methods; a failed run is a miss."),
        (["nsigma", "baro", "circa"], ["nsigma", "baro", "circa"], "Mode: reference implementations for all 3 methods; a failed run is a miss."),
        (["nsigma", "baro"], ["baro"], "Mode: a reference implementation for 1 of the 2 methods, the other as published; a failed run is a miss."),
        (["nsigma", "baro", "random"], ["nsigma", "baro"], "Mode: reference implementations for 2 of the 3 methods, the other as published; a failed run is a miss."),
        (["nsigma", "baro", "circa", "random"], ["nsigma"], "Mode: a reference implementation for 1 of the 4 methods, the others as published; a failed run is a miss."),
    ],
)
def test_the_reference_mode_sentence_reads_for_one_two_and_many_methods(tmp_path, methods, ref, sentence):
    from llmrca.dataset.io import Dataset
    from llmrca.synthetic import make_case

    ds = tmp_path / "ds"
    Dataset.write([make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)], ds)
    ev = tmp_path / "eval"
    run_evaluation(ds, methods, ev, jobs=1, progress=False, method_configs={m: {"reference_mode": "rcaeval"} for m in ref})
    md = write_documents(ev).markdown.read_text()
    setting = md.split("\n\n")[:4]
    assert any(sentence in para for para in setting), setting
    assert not any("all 1 method" in para or "all 2 methods" in para for para in setting)
    if len(methods) >= 3:  # the agreement section names them: singular for one, plural for several
        names = {"nsigma": "NSigma", "baro": "BARO", "circa": "CIRCA", "random": "Random"}
        what = "a reference implementation" if len(ref) == 1 else "reference implementations"
        plain = [m for m in methods if m not in ref]
        others = (f"the other{'s' if len(plain) > 1 else ''} as published" if plain else "no other method compared")
        line = next(ln for ln in md.splitlines() if ln.startswith("Mode: "))
        assert line.startswith(f"Mode: {what} for {', '.join(f'{names[m]} (rcaeval)' for m in ref)}; {others}"), line


def test_docs_list_every_profile_and_fault_module():
    res = CliRunner().invoke(app, ["campaign", "--help"], terminal_width=400)
    assert res.exit_code == 0
    helptext = " ".join(res.output.split())
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `llmrca campaign --backend sim"))
    for name in campaign.PROFILES:
        assert name in helptext, name
        assert f"\\|{name}`" in row or f"\\|{name}\\|" in row or f"--profile {name}\\|" in row, name
    modules = {v.split(":")[0].rsplit(".", 1)[1] + ".py" for (backend, _), v in FAULT_IMPLEMENTATIONS.items() if backend == "sim"}
    assert len(modules) == len(ALL_FAULT_TYPES)
    for doc in ("campaign.md", "simulator.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert all(f"`{m}`" in text for m in modules), (doc, sorted(m for m in modules if f"`{m}`" not in text))


def test_the_scope_sentence_of_other_fault_types_only_speaks_of_types() -> None:
    """A Sock Shop dataset with disk / loss cases was told 'the paper placed its faults on worker replicas only'."""
    from llmrca.report.findings import scope_sentence

    only_types = scope_sentence({"other types": 6}, 12)
    assert only_types.startswith("The paper's Table 1 has four fault types") and "worker" not in only_types
    assert "the 12 cases of those types and leave out the other 6 faulty cases" in only_types
    assert "worker replicas only" in scope_sentence({"other types": 2, "gateway": 3}, 12)
