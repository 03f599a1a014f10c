"""More inputs of the kinds in /work/shared/cases/realworld, written as other people's tools write them.

Folder names that carry the ground truth at either level, RCD pairs whose headers differ, services whose names
hold '_', long tables, a comment above the header, hexadecimal values, empty repetition folders, and Prometheus
series whose pod belongs to a named workload.  Each test checks what the reader makes of the input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.dataset import read_case
from llmrca.evaluate.single import rank_case
from llmrca.model import CaseValidationError

T0, N, AT = 1_750_000_000, 360, 300


def _frame(services=("frontend", "carts", "orders"), target=("carts", "cpu"), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    d: dict[str, np.ndarray] = {"time": T0 + np.arange(N)}
    for s in services:
        for m in ("cpu", "mem", "latency-90"):
            x = 1 + 0.02 * rng.standard_normal(N)
            if (s, m) == target:
                x[AT:] = 10
            d[f"{s}_{m}"] = x
    return pd.DataFrame(d)


def _write(folder: Path, df: pd.DataFrame | None = None, **kw) -> Path:
    folder.mkdir(parents=True)
    (df if df is not None else _frame(**kw)).to_csv(folder / "data.csv", index=False)
    (folder / "inject_time.txt").write_text(f"{T0 + AT}\n")
    return folder


def _notes(case) -> str:
    return "\n".join(case.meta.get("normalised", []))


@pytest.mark.parametrize(
    ("rel", "root", "fault"),
    [
        ("frontend_study/carts_cpu", "carts", "cpu"),  # the case folder's own name, not its parent's
        ("frontend_study/orders_mem", "orders", "memory"),
        ("carts_cpu/rep_1", "carts", "cpu"),  # a repetition folder with '_': the parent's name
        ("carts_memleak/1", "carts", "memory"),  # other spellings of the paper's faults
        ("carts_netdelay/1", "carts", "network"),
        ("study/carts-memory-leak", "carts", "memory"),
        ("orders-memleak/rep_1", "orders", "memory"),  # '<component>-<fault>' beats a repetition folder with '_'
        ("study_x/carts-cpu", "carts", "cpu"),
        ("carts_cpu/orders-mem", "orders", "memory"),  # the case folder's own name first, whichever the spelling
    ],
)
def test_the_folder_that_names_a_known_fault_gives_the_ground_truth(tmp_path: Path, rel: str, root: str, fault: str) -> None:
    target = (root, {"cpu": "cpu", "memory": "mem", "network": "latency-90"}[fault])
    case = read_case(_write(tmp_path / rel, target=target))
    assert case.root_causes == frozenset({root}) and case.fault.type == fault


def test_an_unknown_fault_label_is_kept_and_said(tmp_path: Path) -> None:
    case = read_case(_write(tmp_path / "carts_runs" / "1"))
    assert case.fault.type == "runs" and "'runs' is not a fault type llmrca knows" in _notes(case)


def test_rank_inside_the_dataset_keeps_the_ground_truth(tmp_path: Path) -> None:
    _write(tmp_path / "carts_cpu" / "1")
    here = os.getcwd()
    try:
        os.chdir(tmp_path / "carts_cpu")
        assert rank_case("1", "nsigma").case.root_causes == frozenset({"carts"})
        os.chdir("1")
        assert rank_case(".", "nsigma").case.root_causes == frozenset({"carts"})
    finally:
        os.chdir(here)


def test_rcd_columns_in_one_file_only_are_left_out_with_a_warning(tmp_path: Path) -> None:
    df = _frame()
    d = tmp_path / "carts-cpu" / "1"
    d.mkdir(parents=True)
    anomalous = df.iloc[AT:].copy()
    anomalous["frontend_threads"] = 40 + np.random.default_rng(1).standard_normal(len(anomalous))  # no normal data at all
    df.iloc[:AT].drop(columns=["orders_mem"]).to_csv(d / "normal.csv", index=False)
    anomalous.to_csv(d / "anomalous.csv", index=False)
    case = read_case(d)
    assert "frontend_threads" not in case.metrics.columns and "orders_mem" not in case.metrics.columns
    assert "only in anomalous.csv (orders_mem, frontend_threads)" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "carts"  # without the one-sided column, the culprit first


def test_services_whose_names_hold_underscores_are_warned_about(tmp_path: Path) -> None:
    d = _write(tmp_path / "carts_cpu" / "1", services=("carts", "ts_order_service", "ts_payment_service"), target=("ts_order_service", "cpu"))
    case = read_case(d)
    assert "'ts_order_service', 'ts_payment_service'" in _notes(case) and "whose name holds '_'" in _notes(case)
    plain = read_case(_write(tmp_path / "ok" / "carts_cpu" / "1"))
    assert "whose name holds" not in _notes(plain)


def test_a_long_table_is_named_as_such(tmp_path: Path) -> None:
    rows = [(t, s, m, 1.0) for t in range(T0, T0 + 60) for s in ("carts", "orders") for m in ("cpu", "mem")]
    d = _write(tmp_path / "carts_cpu" / "1", pd.DataFrame(rows, columns=["time", "service", "metric", "value"]))
    with pytest.raises(CaseValidationError) as e:
        read_case(d)
    said = "\n".join(e.value.problems)
    assert "is a long table" in said and "pivot_table(index='time', columns=['service', 'metric'], values='value')" in said
    assert "repeats" not in said  # not taken for times written with too few digits


def test_times_that_collapse_to_one_value_are_named(tmp_path: Path) -> None:
    df = _frame()
    df["time"] = float(f"{T0 * 1e9:.6e}")  # nanoseconds written with 7 significant digits: one value
    with pytest.raises(CaseValidationError) as e:
        read_case(_write(tmp_path / "carts_cpu" / "1", df))
    assert any("is the same" in p and "too few digits" in p for p in e.value.problems)


def test_a_comment_above_the_header_is_skipped_with_a_note(tmp_path: Path) -> None:
    d = _write(tmp_path / "carts_cpu" / "1")
    (d / "data.csv").write_text("# exported by grafana 10.2\n" + (d / "data.csv").read_text())
    case = read_case(d)
    assert len(case.metrics) == N and "1 comment line(s) above the header skipped" in _notes(case)


def test_hexadecimal_values_are_refused_not_dropped(tmp_path: Path) -> None:
    df = _frame()
    df["carts_cpu"] = "0x1F"
    df["orders_cpu"] = (1.5).hex()  # Python's float.hex: '0x1.8000000000000p+0'
    with pytest.raises(CaseValidationError) as e:
        read_case(_write(tmp_path / "carts_cpu" / "1", df))
    assert any("'carts_cpu' holds numbers written as text" in p for p in e.value.problems)
    assert any("'orders_cpu' holds numbers written as text" in p for p in e.value.problems)


def test_empty_repetition_folders_are_reported(tmp_path: Path) -> None:
    _write(tmp_path / "ds" / "carts_cpu" / "1")
    (tmp_path / "ds" / "carts_cpu" / "2").mkdir()
    (tmp_path / "ds" / "orders_mem" / "1").mkdir(parents=True)
    (tmp_path / "ds" / "orders_mem" / "1" / ".DS_Store").write_text("")  # a Finder file does not make a folder a case
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "ds")])
    assert r.exit_code == 0, r.output
    assert "2 empty folder(s) hold no case" in r.output and "carts_cpu/2" in r.output and "orders_mem/1" in r.output


def test_a_pod_of_a_named_workload_is_named_by_the_workload(tmp_path: Path) -> None:
    from llmrca.names import series_columns

    cpu = 'container_cpu_usage_seconds_total{container="carts",namespace="x",pod="carts-7f9c5d4b8-x2x9z"}'
    mem = 'container_memory_working_set_bytes{container="carts",pod="carts-7f9c5d4b8-x2x9z"}'
    reps = [f'container_cpu_usage_seconds_total{{container="orders",pod="orders-{i}"}}' for i in (1, 2)]
    renames, _ = series_columns(["time", cpu, mem, *reps])
    assert renames[cpu] == "carts_container_cpu_usage_seconds_total" and renames[mem].startswith("carts_")
    assert {renames[r].split("_")[0] for r in reps} == {"orders-1", "orders-2"}  # two replicas keep their pod names


def test_the_not_alike_check_reads_quoted_headers_as_csv(tmp_path: Path) -> None:
    from llmrca.dataset.validate import _raw_shape

    d = _write(tmp_path / "a" / "carts_cpu" / "1")
    text = (d / "data.csv").read_text().split("\n", 1)
    (d / "data.csv").write_text(text[0].replace("carts_mem", '"carts_mem,rss"') + "\n" + text[1])
    cols, _ = _raw_shape(d)
    assert "carts_mem,rss" in cols and not any('"' in c for c in cols)
    s = _write(tmp_path / "b" / "carts_cpu" / "1", _frame().rename(columns={"carts_cpu": 'container_cpu{pod="carts"}'}))
    assert _raw_shape(s) is None  # series names are renamed by the reader: not compared as written


def test_a_pods_series_without_the_workload_label_follow_its_name(tmp_path: Path) -> None:
    from llmrca.names import series_columns

    cols = ['cpu{pod="carts-7f9c5d4b8-x2x9z",container="carts"}', 'latency{pod="carts-7f9c5d4b8-x2x9z"}']
    renames, _ = series_columns(["time", *cols])
    assert renames == {cols[0]: "carts_cpu", cols[1]: "carts_latency"}  # one component, not carts and its pod


@pytest.mark.parametrize("header", ["time,host,metric,value", "time,service,metric,value,unit"])
def test_long_tables_with_other_label_columns_are_named(tmp_path: Path, header: str) -> None:
    names = header.split(",")
    rows = [[t, "a", "cpu", 1.0, "cores"][: len(names)] for t in range(T0, T0 + 60)] + [[t, "b", "cpu", 2.0, "cores"][: len(names)] for t in range(T0, T0 + 60)]
    d = _write(tmp_path / "carts_cpu" / "1", pd.DataFrame(rows, columns=names))
    with pytest.raises(CaseValidationError) as e:
        read_case(d)
    assert any("is a long table" in p for p in e.value.problems), e.value.problems


def test_a_header_written_as_a_comment_is_read_as_the_header(tmp_path: Path) -> None:
    df = _frame()
    d = tmp_path / "carts_cpu" / "1"
    d.mkdir(parents=True)
    np.savetxt(d / "data.csv", df.to_numpy(), delimiter=",", header=",".join(df.columns), fmt="%.6f")  # '# time,...'
    (d / "inject_time.txt").write_text(f"{T0 + AT}\n")
    case = read_case(d)
    assert len(case.metrics) == N and "the header is written as a comment" in _notes(case)


def test_an_rcd_root_cause_whose_columns_are_one_sided_is_said_why(tmp_path: Path) -> None:
    df = _frame()
    d = tmp_path / "orders-cpu" / "3"
    d.mkdir(parents=True)
    df.iloc[:AT].drop(columns=[c for c in df.columns if c.startswith("orders_")]).to_csv(d / "normal.csv", index=False)
    df.iloc[AT:].to_csv(d / "anomalous.csv", index=False)
    with pytest.raises(CaseValidationError) as e:
        read_case(d)
    assert any("root cause 'orders' has no metric column left" in p for p in e.value.problems), e.value.problems


def test_services_with_underscores_are_warned_about_when_they_are_all_there_is(tmp_path: Path) -> None:
    case = read_case(_write(tmp_path / "ts_mem" / "1", services=("ts_auth_svc", "ts_user_svc"), target=("ts_auth_svc", "mem")))
    assert "'ts_auth_svc', 'ts_user_svc'" in _notes(case)


def test_a_collected_case_without_truth_stays_without_and_a_folder_root_cause_says_where_it_came_from(tmp_path: Path) -> None:
    import json

    from llmrca.dataset.io import ground_truth_problem

    # collected without --fault-type/--target (fault null, root_causes []) under folders whose names hold '_':
    # no truth is made up from them (the parent's name would give root cause 'my')
    d = _write(tmp_path / "my_cases" / "c1")
    (d / "case.json").write_text(json.dumps({"schema": 1, "inject_time": T0 + AT, "fault": None, "root_causes": [],
                                             "meta": {"collection": {"prometheus": "http://127.0.0.1:9090"}}}))
    case = read_case(d)
    assert case.root_causes == frozenset() and case.fault is None
    assert "collected without one" in ground_truth_problem(case)
    # without case.json, a folder name that names no component says where the root cause came from
    g = _write(tmp_path / "c_ghost")
    with pytest.raises(CaseValidationError) as e:
        read_case(g)
    assert any("read from the folder name 'c_ghost'" in p for p in e.value.problems), e.value.problems


def test_a_method_that_builds_a_duplicated_ranking_is_named() -> None:
    from llmrca.methods.base import Method
    from llmrca.model import Ranking
    from llmrca.synthetic import make_case

    class Twice(Method):
        name = "tmp-twice"

        def _rank(self, c):
            return Ranking(components=[c.components[0], c.components[0]])

    with pytest.raises(ValueError, match="tmp-twice built an invalid ranking"):
        Twice().rank(make_case(root="ray-worker-1", fault="cpu", seed=1, with_logs=False, with_traces=False).without_truth())
