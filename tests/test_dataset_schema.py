"""The declared schema of case.json / dataset.json: every problem as a sentence, never an exception."""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmrca.dataset.io import Dataset, case_json, write_case
from llmrca.dataset.schema import (
    CaseSpec,
    DatasetSpec,
    check_against_data,
    json_depth,
    parse_case_json,
    parse_dataset_json,
    parse_json_text,
)
from llmrca.model import components_of
from llmrca.synthetic import make_case

COMPONENTS = ["nginx-gateway", "ray-head", "ray-worker-1", "ray-worker-2", "ray-worker-3", "kuberay-operator"]


@pytest.fixture(scope="module")
def good() -> dict:
    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    return json.loads(json.dumps(case_json(case)))


def _problems(data: object) -> list[str]:
    spec, probs = parse_case_json(data, file="x/case.json")
    assert spec is None and probs, "a malformed case.json must give problems"
    assert all(p.startswith("x/case.json: ") for p in probs), probs
    return probs


def _with(good: dict, path: str, value: object) -> dict:
    d = copy.deepcopy(good)
    *head, last = path.split(".")
    cur = d
    for k in head:
        cur = cur[k]
    cur[last] = value
    return d


# -- round trip with the current writers -----------------------------------------------------------


def test_written_case_json_parses(good: dict) -> None:
    spec, probs = parse_case_json(good, file="case.json")
    assert probs == []
    assert isinstance(spec, CaseSpec)
    assert spec.fault is not None and spec.fault.type == "cpu" and spec.fault.target == "ray-worker-1"
    assert spec.root_causes == ["ray-worker-1"]
    assert spec.topology is not None and spec.topology.entry == "nginx-gateway" and len(spec.topology.edges) == 4
    assert spec.metric_sets == {"basic": "data.csv"} and spec.meta["backend"] == "synthetic"
    assert spec.schema_ == 1


def test_sim_case_files_round_trip(tmp_path: Path) -> None:
    """Sim cases (basic + extended sets, achieved values, protocol in meta) and the campaign manifest parse and agree with the data."""
    from llmrca.campaign import Protocol, make_backend
    from llmrca.dataset.io import add_case, write_manifest
    from llmrca.model import FaultSpec

    be = make_backend("sim", workers=2, qps=2.0, scrape_interval_s=None)
    proto = Protocol(normal_s=60.0, fault_s=20.0, tail_s=5.0, cooldown_s=0.0, warmup_s=5.0)
    out = tmp_path / "ds"
    counts: dict[str, int] = {}
    entries = []
    for i, ftype in enumerate(("cpu", "gpu")):
        case = be.run_case(FaultSpec(ftype, "ray-worker-1", duration_s=proto.fault_s), seed=i, protocol=proto, start_time=1_767_225_600.0)
        entry = add_case(case, out, counts)
        entry.update({"seed": i, "achieved": dict(case.fault.achieved) if case.fault else {}})
        entries.append(entry)
    write_manifest(out, entries, {"backend": "sim", "seed": 3, "protocol": proto.to_dict()})
    spec_d, probs_d = parse_dataset_json(json.loads((out / "dataset.json").read_text()), file="dataset.json")
    assert probs_d == [] and isinstance(spec_d, DatasetSpec)
    assert spec_d.n_cases == 2 == len(spec_d.cases)
    assert spec_d.model_extra is not None and spec_d.model_extra["backend"] == "sim"  # campaign fields kept
    for entry in spec_d.cases:
        folder = out / entry.path
        spec, probs = parse_case_json(json.loads((folder / "case.json").read_text()), file=str(folder / "case.json"))
        assert probs == [], probs
        assert spec is not None and set(spec.metric_sets or {}) == {"basic", "extended"}
        assert spec.fault is not None and spec.fault.achieved  # measured values survive
        comps = components_of(pd.read_csv(folder / "data.csv", nrows=1).columns)
        assert check_against_data(spec, comps, folder) == []


def test_dataset_write_manifest_round_trip(tmp_path: Path) -> None:
    cases = [make_case(root=r, fault=f, seed=i, with_logs=False, with_traces=False) for i, (r, f) in enumerate([("ray-worker-2", "memory"), ("ray-head", "network")])]
    ds = Dataset.write(cases, tmp_path / "ds", info={"seed": 7})
    spec, probs = parse_dataset_json(json.loads((ds.root / "dataset.json").read_text()))
    assert probs == [] and spec is not None
    assert [c.path for c in spec.cases] == ["ray-worker-2_memory/1", "ray-head_network/1"]
    assert [c.fault for c in spec.cases] == ["memory", "network"]


# -- wrong types: file, field path, what was found, what is expected --------------------------------


def test_root_causes_as_integers(good: dict) -> None:
    probs = _problems(_with(good, "root_causes", [1, 2]))
    assert "x/case.json: field root_causes[0] is an integer 1; expected a component name string such as 'ray-worker-1'" in probs
    assert any("root_causes[1] is an integer 2" in p for p in probs)


def test_fault_end_as_string(good: dict) -> None:
    (p,) = _problems(_with(good, "fault.end", "tomorrow"))
    assert p == "x/case.json: field fault.end is a string 'tomorrow'; expected a number of epoch seconds or null"


def test_topology_nodes_nested_lists(good: dict) -> None:
    probs = _problems(_with(good, "topology.nodes", [["a"], ["b", ["c"]]]))
    assert any(p.startswith("x/case.json: field topology.nodes[0] is a list of 1 item; expected a component name") for p in probs)


def test_every_problem_reported_at_once(good: dict) -> None:
    d = _with(good, "inject_time", "noon")
    d["fault"]["start"] = True  # a boolean is not a number
    d["meta"] = []
    d["topology"]["entry"] = 5
    probs = _problems(d)
    fields = {p.split(" field ")[1].split(" ")[0] for p in probs}
    assert fields == {"inject_time", "fault.start", "meta", "topology.entry"}, probs
    assert any("fault.start is a boolean True; expected a number of epoch seconds or null" in p for p in probs)


@pytest.mark.parametrize("value", [None, 3, "x", [], [1, 2]])
def test_not_an_object(value: object) -> None:
    (p,) = _problems(value)
    assert "expected a JSON object with fields schema, name" in p


def test_missing_required_subfields(good: dict) -> None:
    d = copy.deepcopy(good)
    del d["fault"]["target"]
    probs = _problems(d)
    assert probs == ["x/case.json: field fault.target is missing; expected a component name string such as 'ray-worker-1'"]


def test_topology_with_unknown_keys_is_rejected(good: dict) -> None:
    probs = _problems(_with(good, "topology", {"a": 1}))
    assert "x/case.json: field topology.nodes is missing; expected a list of component names" in probs
    assert any(p.startswith("x/case.json: field topology.a is not a field of topology") for p in probs)


def test_unknown_top_level_field(good: dict) -> None:
    (p,) = _problems(_with(good, "root_cause", ["ray-worker-1"]))
    assert "field root_cause is not a field of the top level" in p and "move it under meta" in p


def test_nan_and_infinite_numbers(good: dict) -> None:
    (p,) = _problems(_with(good, "inject_time", float("inf")))
    assert "field inject_time" in p and "expected a finite number" in p


def test_huge_value_is_cut_in_the_message(good: dict) -> None:
    (p,) = _problems(_with(good, "fault.end", "9" * 1_000_000))
    assert len(p) < 400 and "(1000000 long)" in p


# -- values that must be rejected ------------------------------------------------------------------


@pytest.mark.parametrize("ftype", ["", "  ", "str", "None", "null", "Cpu Load!", "x" * 60, "ray_worker"])
def test_bad_fault_types(good: dict, ftype: str) -> None:
    (p,) = _problems(_with(good, "fault.type", ftype))
    assert p.startswith("x/case.json: field fault.type is a string") and "expected a fault type" in p


@pytest.mark.parametrize(("given", "normalised"), [("mem", "memory"), ("delay", "network"), ("GPU", "gpu"), ("disk", "disk"), ("f6", "f6"), ("pod-kill", "pod-kill")])
def test_good_fault_types(good: dict, given: str, normalised: str) -> None:
    spec, probs = parse_case_json(_with(good, "fault.type", given))
    assert probs == [] and spec is not None and spec.fault is not None and spec.fault.type == normalised


def test_fault_type_equal_to_a_component(good: dict) -> None:
    (p,) = _problems(_with(good, "fault.type", "ray-worker-2"))
    assert p == "x/case.json: field fault.type is 'ray-worker-2', a component name; expected a fault type such as 'cpu' (are type and target swapped?)"


def test_fault_type_equal_to_a_data_component(good: dict) -> None:
    d = _with(good, "topology", None)
    d["fault"]["type"] = "kuberay-operator"
    spec, probs = parse_case_json(d)
    assert probs == [] and spec is not None  # no names in the file to compare with ...
    (p,) = check_against_data(spec, COMPONENTS, file="case.json")  # ... but the data has it
    assert "fault.type is 'kuberay-operator', a component of data.csv" in p


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../x", "path separator"),
        ("ray_worker_1", "contains '_'"),
        ("ray\u200bworker-1", "U+200B ZERO WIDTH SPACE"),
        ("ray-worker-1\x00", "U+0000 NUL"),
        ("\ufeffray-worker-1", "U+FEFF"),
        ("..", "is a path"),
        ("", "empty"),
        (" ray-worker-1", "leading or trailing spaces"),
    ],
)
def test_bad_component_names(good: dict, name: str, why: str) -> None:
    probs = _problems(_with(good, "root_causes", [name]))
    assert any(p.startswith("x/case.json: field root_causes[0] is a string") and why in p for p in probs), probs
    probs = _problems(_with(good, "fault.target", name))
    assert any("field fault.target is a string" in p and why in p for p in probs), probs


def test_target_not_in_root_causes(good: dict) -> None:
    (p,) = _problems(_with(good, "root_causes", ["ray-worker-2"]))
    assert p == "x/case.json: field fault.target is 'ray-worker-1', which is not in root_causes ['ray-worker-2']; expected the injected component among the root causes"


def test_start_not_before_end(good: dict) -> None:
    d = _with(good, "fault.end", good["fault"]["start"])
    (p,) = _problems(d)
    assert p.startswith("x/case.json: field fault.end is 1700000300.0, not after fault.start 1700000300.0; expected start < end")


def test_unknown_schema_version(good: dict) -> None:
    (p,) = _problems(_with(good, "schema", 2))
    assert "field schema is 2; expected a known format version (1)" in p
    (p,) = _problems(_with(good, "schema", "1"))
    assert "field schema is a string '1'; expected an integer format version (1)" in p


@pytest.mark.parametrize("fname", ["/etc/passwd", "../data.csv", "sub/data.csv", "..", "C:\\data.csv", "", "da\x00ta.csv"])
def test_metric_sets_must_be_plain_names(good: dict, fname: str) -> None:
    (p,) = _problems(_with(good, "metric_sets", {"basic": fname}))
    assert p.startswith("x/case.json: field metric_sets is an object of 1 item; expected metric set names mapped to plain file names inside the case folder")
    assert "file of set 'basic'" in p


def test_topology_edges_and_entry_name_nodes(good: dict) -> None:
    d = _with(good, "topology.edges", [["nginx-gateway", "ray-head"], ["ray-head", "ghost"]])
    d["topology"]["entry"] = "nowhere"
    probs = _problems(d)
    assert probs == [
        "x/case.json: field topology.edges[1] callee is 'ghost', not a node; expected a name in topology.nodes",
        "x/case.json: field topology.entry is 'nowhere', not a node; expected a name in topology.nodes",
    ]


def test_normalised_notes_allowed(good: dict) -> None:
    spec, probs = parse_case_json(_with(good, "normalised", ["time converted from milliseconds", "dropped all-NaN column 'a_b'"]))
    assert probs == [] and spec is not None and len(spec.normalised) == 2


def test_minimal_case_json_of_other_tools() -> None:
    """Fields are optional: the readers fall back to inject_time.txt and the folder name."""
    spec, probs = parse_case_json({"root_causes": ["ray-worker-1", "ray-worker-2"], "inject_time": 1_700_000_000})
    assert probs == [] and spec is not None and spec.inject_time == 1_700_000_000.0 and spec.fault is None


# -- checks against the data ----------------------------------------------------------------------


def test_root_cause_not_in_data(good: dict) -> None:
    spec, _ = parse_case_json(good)
    assert spec is not None
    probs = check_against_data(spec, [c for c in COMPONENTS if c != "ray-worker-1"])
    assert probs[0].startswith("case.json: root cause 'ray-worker-1' is not a component of data.csv (components: nginx-gateway, ray-head")


def test_root_cause_spelt_with_underscores_in_the_columns_is_named(good: dict) -> None:
    """Columns ``ray_worker_1_*`` are read as the component ``ray`` (first-'_' rule): the problem says so and how to name them."""
    spec, _ = parse_case_json(good)
    assert spec is not None
    comps = [c for c in COMPONENTS if c != "ray-worker-1"] + ["ray"]
    (p, *_) = check_against_data(spec, comps)
    assert "root cause 'ray-worker-1' is not a component" in p
    assert "spell it 'ray_worker_1_*'" in p and "read as the component 'ray'" in p and "name them 'ray-worker-1_<metric>'" in p
    (p, *_) = check_against_data(spec, [c for c in COMPONENTS if c != "ray-worker-1"])
    assert "spell it" not in p  # no such columns: no guess


def test_basic_column_missing_from_extended_says_renamed_unless_the_sets_are_swapped(tmp_path: Path) -> None:
    from llmrca.dataset.io import read_case
    from llmrca.model import CaseValidationError

    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    folder = write_case(case, tmp_path / "c")
    d = json.loads((folder / "case.json").read_text())
    d["metric_sets"] = {"basic": "data.csv", "extended": "data_extended.csv"}
    (folder / "case.json").write_text(json.dumps(d))
    ext = case.metrics.assign(**{"ray-head_extra": 1.0})
    ext.to_csv(folder / "data_extended.csv", index=False)
    col = next(c for c in case.metrics.columns if c.startswith("ray-worker-1_"))
    case.metrics.rename(columns={col: col + "_usage"}).to_csv(folder / "data.csv", index=False)
    with pytest.raises(CaseValidationError) as e:
        read_case(folder)
    assert f"(e.g. '{col}_usage')" in str(e.value) and "renamed or dropped in one file only" in str(e.value)
    assert "swapped" not in str(e.value)
    # the other way round: the extended file holds fewer columns than the basic one -> the sets look swapped
    ext.to_csv(folder / "data.csv", index=False)
    case.metrics.to_csv(folder / "data_extended.csv", index=False)
    with pytest.raises(CaseValidationError) as e:
        read_case(folder)
    assert "are metric_sets.basic and metric_sets.extended swapped, or were columns dropped from data_extended.csv?" in str(e.value)


def test_metric_sets_files_checked(tmp_path: Path) -> None:
    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    folder = write_case(case, tmp_path / "c")
    d = case_json(case)
    d["metric_sets"] = {"basic": "data.csv", "extended": "data_extended.csv", "other": "data_other.csv"}
    # extended: other components; other: a symlink to a file outside the case folder
    case.metrics.rename(columns=lambda c: c.replace("ray-worker-3", "ray-worker-9")).to_csv(folder / "data_extended.csv", index=False)
    outside = tmp_path / "outside.csv"
    case.metrics.to_csv(outside, index=False)
    os.symlink(outside, folder / "data_other.csv")
    spec, probs = parse_case_json(json.loads(json.dumps(d)))
    assert probs == [] and spec is not None
    comps = components_of(case.metrics.columns)
    probs = check_against_data(spec, comps, folder)
    assert len(probs) == 2, probs
    assert "metric set 'extended' (data_extended.csv) holds other components than data.csv: extra ['ray-worker-9'], missing ['ray-worker-3']" in probs[0]
    assert "field metric_sets.other:" in probs[1] and "points outside" in probs[1]
    (folder / "data_extended.csv").unlink()
    probs = check_against_data(spec, comps, folder)
    assert any("metric_sets.extended names 'data_extended.csv', which does not exist" in p for p in probs)


# -- JSON text ------------------------------------------------------------------------------------


def test_deeply_nested_json_gives_a_message() -> None:
    text = "[" * 100_000 + "]" * 100_000
    t = time.perf_counter()
    value, probs = parse_json_text(text, file="case.json")
    assert time.perf_counter() - t < 5
    assert value is None and probs == ["case.json: JSON nested 100000 levels deep; expected at most 64 (our files nest 4 deep): the file is not a case/dataset description"]
    nested_obj = '{"a":' * 50_000 + "1" + "}" * 50_000
    value, probs = parse_json_text(nested_obj, file="case.json")
    assert value is None and "nested 50000 levels deep" in probs[0]


def test_brackets_in_strings_do_not_count() -> None:
    assert json_depth('{"name": "[[[[[[[[[[\\"]]]]", "x": [1]}') == 2
    value, probs = parse_json_text('{"name": "' + "[" * 1000 + '"}', file="case.json")
    assert probs == [] and value == {"name": "[" * 1000}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "a": 2}', "case.json: key 'a' appears more than once in an object; keep one"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": 1', "not valid JSON (Expecting ',' delimiter at line 1 column 8)"),
        ('{"a": ' + "1" * 5000 + "}", "not valid JSON"),
        ("", "not valid JSON (Expecting value at line 1 column 1)"),
    ],
)
def test_bad_json_text(text: str, expected: str) -> None:
    value, probs = parse_json_text(text, file="case.json")
    assert value is None and len(probs) == 1 and expected in probs[0]


# -- dataset.json ---------------------------------------------------------------------------------


def test_dataset_json_problems() -> None:
    data = {
        "schema": 1,
        "n_cases": 3,
        "cases": [
            {"path": "../../etc", "fault": "cpu", "target": "a", "root_causes": ["a"]},
            {"path": "a_cpu/1", "fault": "str", "target": "a", "root_causes": ["a"]},
            {"path": "/abs/1", "fault": None, "target": "b", "root_causes": ["c"]},
        ],
    }
    spec, probs = parse_dataset_json(data, file="ds/dataset.json")
    assert spec is None
    assert probs == ["ds/dataset.json: field cases[1].fault is a string 'str'; expected a fault type such as 'cpu', 'memory', 'network' or 'gpu'; this is a placeholder word, not a fault type"]
    data["cases"][1]["fault"] = "cpu"
    spec, probs = parse_dataset_json(data, file="ds/dataset.json")
    assert spec is None and len(probs) == 3, probs
    assert probs[0].startswith("ds/dataset.json: field cases[0].path '../../etc' has a bad part")
    assert probs[1].startswith("ds/dataset.json: field cases[2].path '/abs/1' is an absolute path")
    assert probs[2] == "ds/dataset.json: field cases[2].target 'b' is not in its root_causes ['c']; expected the injected component among them"


def test_dataset_json_counts_and_types() -> None:
    spec, probs = parse_dataset_json({"schema": 1, "n_cases": 2, "cases": [{"path": "a_cpu/1", "root_causes": ["a"]}]}, file="dataset.json")
    assert spec is None
    assert probs == ["dataset.json: field n_cases is 2 but cases lists 1 entries; expected them to agree (rewrite the manifest)"]
    spec, probs = parse_dataset_json({"n_cases": "2", "cases": {"a": 1}}, file="dataset.json")
    assert spec is None
    assert "dataset.json: field n_cases is a string '2'; expected a non-negative integer (the number of entries in cases)" in probs
    assert "dataset.json: field cases is an object of 1 item; expected a list of {path, fault, target, root_causes} objects" in probs


def test_bom_before_json_is_accepted() -> None:
    for text in ('\ufeff{"schema": 1}', b'\xef\xbb\xbf{"schema": 1}'):
        value, probs = parse_json_text(text, file="case.json")
        assert probs == [] and value == {"schema": 1}


def test_read_files_in_one_call(tmp_path: Path) -> None:
    from llmrca.dataset.schema import read_case_json, read_dataset_json, read_inject_time
    from llmrca.model import FaultRecord, Topology

    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    ds = Dataset.write([case], tmp_path / "ds")
    folder = ds.root / "ray-worker-1_cpu" / "1"
    spec, probs = read_case_json(folder / "case.json", root=ds.root)
    assert probs == [] and spec is not None and spec.fault is not None and spec.topology is not None
    assert spec.fault.to_record() == case.fault  # the same record as written
    assert spec.topology.to_topology() == case.topology and isinstance(spec.topology.to_topology(), Topology)
    assert isinstance(spec.fault.to_record(), FaultRecord)
    assert read_inject_time(folder / "inject_time.txt") == (case.inject_time, [])
    dspec, probs = read_dataset_json(ds.root / "dataset.json")
    assert probs == [] and dspec is not None and dspec.n_cases == 1
    # bad files: messages, never exceptions
    (folder / "inject_time.txt").write_text("1" * 1_000_000)
    value, probs = read_inject_time(folder / "inject_time.txt")
    assert value is None and len(probs) == 1 and len(probs[0]) < 300 and "reads at most 4.0 KiB" in probs[0]
    for text, expected in [("noon", "holds 'noon', not a number"), ("inf", "expected a finite number"), ("1700000300\r\n", None)]:
        (folder / "inject_time.txt").write_text(text)
        value, probs = read_inject_time(folder / "inject_time.txt")
        assert (expected is None and value == 1_700_000_300.0) or (value is None and expected in probs[0])
    (folder / "case.json").unlink()
    os.mkfifo(folder / "case.json")
    spec, probs = read_case_json(folder / "case.json")
    assert spec is None and "is a FIFO (named pipe), not a regular file" in probs[0]
    (folder / "case.json").unlink()
    (folder / "case.json").write_text("[" * 100_000)
    spec, probs = read_case_json(folder / "case.json")
    assert spec is None and "nested 100000 levels deep" in probs[0]


def test_problem_list_is_capped(good: dict) -> None:
    probs = _problems(_with(good, "root_causes", list(range(100_000))))
    assert len(probs) == 51 and probs[-1] == "x/case.json: ... and 99950 more problems of the same kinds"
    assert sum(len(p) for p in probs) < 10_000


def test_random_garbage_never_raises(good: dict) -> None:
    """Seeded random replacement of fields by values of every JSON type: always (spec, []) or (None, sentences)."""
    rng = np.random.default_rng(11)
    pool: list[object] = [None, True, 0, -1, 1e308, "", "x", "ray-worker-1", [], [None], [[1]], {}, {"a": []}, "\u200b", "../x", 2**70]
    paths = [p for p in _leaf_paths(good) if p]
    for _ in range(3000):
        d = copy.deepcopy(good)
        for _ in range(int(rng.integers(1, 4))):
            _set(d, paths[int(rng.integers(len(paths)))], copy.deepcopy(pool[int(rng.integers(len(pool)))]))
        spec, probs = parse_case_json(d, file="case.json")
        assert (spec is None) == bool(probs)
        assert all(isinstance(p, str) and p.startswith("case.json") for p in probs)


def _leaf_paths(d: object, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(d, dict):
        for k, v in d.items():
            out += _leaf_paths(v, (*prefix, k))
    elif isinstance(d, list):
        for i, v in enumerate(d):
            out += _leaf_paths(v, (*prefix, i))
    return out


def _set(d: object, path: tuple, value: object) -> None:
    """Set ``d[path]`` when the path still exists (an earlier replacement may have removed it)."""
    try:
        for k in path[:-1]:
            d = d[k]  # type: ignore[index]
        d[path[-1]] = value  # type: ignore[index]
    except (IndexError, KeyError, TypeError):
        pass
