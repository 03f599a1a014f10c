"""Every public dataset layout is read, and every repair is made and recorded.

Inputs: copies of /work/shared/cases/realworld (tests/data/realworld) plus
variants generated here (other units, other service names, RE3-like trees),
so that the kind of each problem is tested, not only the shipped file.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.dataset import normalise_case, read_case
from llmrca.dataset.validate import import_tree, validate_dataset
from llmrca.evaluate.single import rank_case
from llmrca.model import CaseValidationError
from llmrca.synthetic import make_case

DATA = Path(__file__).parent / "data" / "realworld"


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(DATA / name, dst)
    return dst


def _plain(tmp_path: Path, rel: str, *, seed: int = 0, root: str = "ray-worker-1", fault: str = "cpu", **kw) -> tuple[Path, object]:
    """A plain RCAEval RE1 case (data.csv + inject_time.txt) of a synthetic case."""
    c = make_case(root=root, fault=fault, seed=seed, with_logs=kw.pop("with_logs", False), with_traces=kw.pop("with_traces", False), **kw)
    d = tmp_path / rel
    d.mkdir(parents=True)
    c.metrics.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time)}\n")
    return d, c


def _notes(case) -> str:
    return "\n".join(case.meta.get("normalised", []))


# -- RCAEval RE1 -----------------------------------------------------------------------


def test_re1_sock_shop_and_online_boutique_column_names(tmp_path: Path) -> None:
    d, c = _plain(tmp_path, "ray-worker-1_cpu/1")
    df = pd.read_csv(d / "data.csv")
    df = df.rename(columns=lambda x: x.replace("latency-90", "lat_90").replace("latency-50", "lat_50"))
    df["frontend_latency"] = df["nginx-gateway_lat_90"]
    df["carts_lod"] = 1.0 + np.arange(len(df)) % 3
    df.to_csv(d / "data.csv", index=False)
    case = read_case(d)
    assert {"nginx-gateway_lat_90", "nginx-gateway_lat_50", "frontend_latency", "carts_lod"} <= set(case.metrics.columns)
    assert case.metrics.shape == (len(c.metrics), len(c.metrics.columns) + 2)
    assert case.meta["layout"] == "rcaeval-re1" and "normalised" not in case.meta  # nothing to repair


# -- RCAEval RE2 / RE3 ------------------------------------------------------------------


def test_re2_simple_metrics_and_metrics_csv(tmp_path: Path) -> None:
    src = _copy("re2-ob", tmp_path)
    case = read_case(src / "checkoutservice_cpu" / "1")
    simple = pd.read_csv(src / "checkoutservice_cpu/1/simple_metrics.csv")
    assert case.metric_set == "basic" and list(case.metric_sets) == ["basic", "extended"]
    assert case.metrics.shape == simple.shape == (180, 21)
    assert case.root_causes == {"checkoutservice"} and case.fault_type == "cpu"
    # logs: ns timestamp -> epoch seconds; traces: startTimeMillis -> startTime in µs
    assert list(case.logs.columns[:3]) == ["time", "container_name", "message"]
    assert case.logs["time"].iloc[0] == pytest.approx(1_750_000_000.0)
    raw = pd.read_csv(src / "checkoutservice_cpu/1/traces.csv")
    assert case.traces["startTime"].iloc[0] == pytest.approx(raw["startTimeMillis"].iloc[0] * 1000)
    assert case.traces["duration"].iloc[0] == raw["duration"].iloc[0]  # RE2 duration is µs already
    assert "simple_metrics.csv as the basic set + metrics.csv as the extended set" in _notes(case)
    # import writes our layout; case.json records the repairs; re-reading gives the same frames
    out = tmp_path / "ours"
    r = CliRunner().invoke(app, ["dataset", "import", str(src), str(out)])
    assert r.exit_code == 0, r.output
    cj = json.loads((out / "checkoutservice_cpu/1/case.json").read_text())
    assert any("startTimeMillis" in n for n in cj["normalised"]) and "normalised" not in cj["meta"]
    again = read_case(out / "checkoutservice_cpu/1")
    assert again.metrics.shape == (180, 21) and again.traces["startTime"].iloc[0] == case.traces["startTime"].iloc[0]
    assert not (out / "checkoutservice_cpu/1/simple_metrics.csv").exists()  # interpreted, not copied


def test_re3_like_metrics_only_iso_logs_and_ns_traces(tmp_path: Path) -> None:
    """RE3-like: metrics.csv only (no simple_metrics.csv), logs with an RFC 3339 time (+02:00), spans in ns."""
    c = make_case(root="ray-head", fault="mem", seed=3)
    d = tmp_path / "ray-head_mem" / "2"
    d.mkdir(parents=True)
    c.metrics.to_csv(d / "metrics.csv", index=False)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time)}")
    logs = c.logs.copy()
    logs["time"] = (pd.to_datetime(logs["time"], unit="s", utc=True).dt.tz_convert("+02:00")).map(lambda t: t.isoformat())
    logs.rename(columns={"container_name": "container"}).to_csv(d / "logs.csv", index=False)
    tr = c.traces.copy()
    tr["startTime"] = tr["startTime"].astype("int64") * 1000  # ns
    tr.to_csv(d / "traces.csv", index=False)
    case = read_case(d)
    assert case.metrics.shape == c.metrics.shape and case.root_causes == {"ray-head"} and case.fault_type == "memory"
    np.testing.assert_allclose(case.logs["time"].to_numpy(), c.logs["time"].to_numpy(), atol=1e-3)  # offset honoured
    assert (case.logs["container_name"] == c.logs["container_name"]).all()
    np.testing.assert_allclose(case.traces["startTime"].to_numpy(), c.traces["startTime"].to_numpy(dtype=float))
    assert "'container_name' taken from 'container'" in _notes(case) and "nanoseconds" in _notes(case)


def test_unreadable_tree_is_an_error_with_the_reason(tmp_path: Path) -> None:
    src = tmp_path / "not-a-dataset" / "something" / "1"
    src.mkdir(parents=True)
    (src / "readme.txt").write_text("hello")
    (src / "values.csv").write_text("a,b\n1,2\n")
    r = CliRunner().invoke(app, ["dataset", "import", str(tmp_path / "not-a-dataset"), str(tmp_path / "out")])
    assert r.exit_code == 1
    assert "no case under" in r.output and "simple_metrics.csv" in r.output and "values.csv" in r.output
    r = CliRunner().invoke(app, ["dataset", "validate", str(tmp_path / "not-a-dataset")])
    assert r.exit_code == 1 and "expected" in r.output and "found" in r.output


def test_a_folder_that_looks_like_a_case_is_listed_with_its_reason(tmp_path: Path) -> None:
    _plain(tmp_path, "ray-worker-1_cpu/1")
    half = tmp_path / "carts-cpu" / "1"
    half.mkdir(parents=True)
    shutil.copy(DATA / "rcd/carts-cpu/1/normal.csv", half / "normal.csv")
    only_inject = tmp_path / "ray-worker-2_cpu" / "1"
    only_inject.mkdir(parents=True)
    (only_inject / "inject_time.txt").write_text("1700000300")
    check = validate_dataset(tmp_path)
    assert check.valid == ["ray-worker-1_cpu/1"]
    assert "normal.csv but no anomalous.csv" in " ".join(check.problems["carts-cpu/1"])
    assert "no metrics in" in " ".join(check.problems["ray-worker-2_cpu/1"])
    rep = import_tree(tmp_path, tmp_path.parent / "imp")
    assert rep.imported == ["ray-worker-1_cpu/1"] and set(rep.problems) == {"carts-cpu/1", "ray-worker-2_cpu/1"} and not rep.ok


# -- the paper's artifact ----------------------------------------------------------------------


def test_rcallm_prepared_identity_columns_and_mpg(tmp_path: Path) -> None:
    src = _copy("rcallm-prepared", tmp_path)
    case = read_case(src / "ray-replicas-1_cpu" / "1")
    assert case.metrics.shape == (180, 38 - 12)  # 38 columns in data.csv, 12 of them identity columns
    assert not [c for c in case.metrics.columns if c.endswith(("_pod_name", "_pod_ip", "_node_name", "_node_ip"))]
    assert "ray-head_node_cpu" in case.metrics.columns  # a _node_* metric is kept
    assert case.meta["identity"]["ray-replicas-1_pod_name"] and len(case.meta["identity"]) == 12
    assert case.topology is not None and ("ray-head", "ray-replicas-1") in case.topology.edges
    assert case.topology.entry == "nginx-proxy"
    for method in ("nsigma", "baro"):
        assert rank_case(src / "ray-replicas-1_cpu" / "1", method).ranking.components[0] == "ray-replicas-1"
    out = tmp_path / "ours"
    rep = import_tree(src, out)
    assert rep.ok
    cj = json.loads((out / "ray-replicas-1_cpu/1/case.json").read_text())
    assert any("identity column(s)" in n for n in cj["normalised"]) and len(cj["meta"]["identity"]) == 12
    assert cj["topology"]["entry"] == "nginx-proxy"


def test_rcallm_mesh_graph_with_host_rows(tmp_path: Path) -> None:
    """The exporter's mpg() also writes container -> kubelet rows (``<ip>:10250``) and, with a proxy on every pod, the
    mesh has two roots (the gateway, and the operator calling the head): host rows are left out (as the artifact's
    causality_graph does) and the entry is the root that calls the most components."""
    src = _copy("rcallm-prepared", tmp_path)
    folder = src / "ray-replicas-1_cpu" / "1"
    pd.DataFrame({"source": ["nginx-proxy", "nginx-proxy", "nginx-proxy", "kuberay-operator", "ray-head", "ray-replicas-1"],
                  "destination": ["ray-head", "ray-replicas-0", "ray-replicas-1", "ray-head", "10.0.0.5:10250", "10.0.0.6:10250"]}
                 ).to_csv(folder / "mpg.csv")
    case = read_case(folder)
    assert set(case.topology.edges) == {("nginx-proxy", "ray-head"), ("nginx-proxy", "ray-replicas-0"), ("nginx-proxy", "ray-replicas-1"),
                                        ("kuberay-operator", "ray-head")}
    assert case.topology.entry == "nginx-proxy"
    assert "mpg.csv: 2 service -> host row(s) (e.g. '10.0.0.5:10250') left out of the call graph" in _notes(case)


def test_rcallm_raw_export_index_and_datetime(tmp_path: Path) -> None:
    src = _copy("rcallm-raw-export", tmp_path)
    case = read_case(src / "ray-replicas-0_cpu" / "1")
    assert list(case.metrics.columns) == ["time", "ray-head_ctn_cpu", "ray-replicas-0_ctn_cpu", "ray-replicas-0_ctn_memory"]
    assert case.metrics["time"].iloc[0] == 1_750_000_000.0 and case.inject_time == 1_750_000_300.0
    notes = _notes(case)
    assert "saved pandas index column ['Unnamed: 0']" in notes and "taken as UTC" in notes


def test_datetime_with_offset_is_honoured_and_all_problems_in_one_pass(tmp_path: Path) -> None:
    d, c = _plain(tmp_path, "ray-worker-1_cpu/1")
    df = pd.read_csv(d / "data.csv")
    df["time"] = pd.to_datetime(df["time"], unit="s", utc=True).dt.tz_convert("-05:00").map(lambda t: t.isoformat())
    df.to_csv(d / "data.csv")  # with the index: a second repair
    case = read_case(d)
    np.testing.assert_allclose(case.metrics["time"].to_numpy(), c.metrics["time"].to_numpy())
    assert "UTC offsets honoured" in _notes(case)
    # unrepairable: a bad time row, a mixed column and a bad inject time - all reported at once
    df.loc[4, "time"] = "later"
    df["ray-head_cpu"] = df["ray-head_cpu"].astype(object)
    df.loc[2, "ray-head_cpu"] = "n/a?"
    df.to_csv(d / "data.csv")
    (d / "inject_time.txt").write_text("soon")
    with pytest.raises(CaseValidationError) as ei:
        read_case(d)
    msg = str(ei.value)
    assert "'time' is not numeric and not a date-time (e.g. row 4: 'later')" in msg
    assert "column 'ray-head_cpu' mixes numbers and text (row 2: 'n/a?'" in msg and "holds 'soon'" in msg


# -- repeated time header ------------------------------------------------------------------------


def test_repeated_time_header(tmp_path: Path) -> None:
    d, c = _plain(tmp_path, "ray-head_cpu/1", root="ray-head")
    text = (d / "data.csv").read_text().splitlines()
    same = [text[0] + ",time", *(line + "," + line.split(",")[0] for line in text[1:])]
    (d / "data.csv").write_text("\n".join(same) + "\n")
    case = read_case(d)
    assert list(case.metrics.columns) == list(c.metrics.columns)
    assert "the copy equals 'time' and was dropped" in _notes(case)
    diff = [text[0] + ",time", *(line + "," + str(float(line.split(",")[0]) + (i == 5)) for i, line in enumerate(text[1:]))]
    (d / "data.csv").write_text("\n".join(diff) + "\n")
    with pytest.raises(CaseValidationError, match=r"repeats 'time' \(the second is read as 'time.1'\) and the two differ \(row 5"):
        read_case(d)


# -- RCD / CIRCA ----------------------------------------------------------------------------


def test_rcd_normal_anomalous_pair(tmp_path: Path) -> None:
    src = _copy("rcd", tmp_path)
    case = read_case(src / "carts-cpu" / "1")
    anomalous = pd.read_csv(src / "carts-cpu/1/anomalous.csv")
    assert case.metrics.shape == (180, 8) and case.inject_time == anomalous["time"].iloc[0]
    assert case.root_causes == {"carts"} and case.fault_type == "cpu"
    assert "injection time = first anomalous row" in _notes(case)
    assert rank_case(src / "carts-cpu" / "1", "nsigma").ranking.components[0] == "carts"


@pytest.mark.parametrize(("folder", "root", "fault"), [("carts-db-mem", "carts-db", "memory"), ("orders_delay", "orders", "network"), ("front-end-gpu-throttle", "front-end", "gpu")])
def test_rcd_pair_other_services(tmp_path: Path, folder: str, root: str, fault: str) -> None:
    c = make_case(root="ray-worker-2", fault="cpu", seed=5)
    ren = {col: col.replace("ray-worker-2", root) for col in c.metrics.columns}
    m = c.metrics.rename(columns=ren)
    d = tmp_path / folder / "3"
    d.mkdir(parents=True)
    m[m["time"] < c.inject_time].to_csv(d / "normal.csv", index=False)
    m[m["time"] >= c.inject_time].to_csv(d / "anomalous.csv", index=False)
    case = read_case(d)
    assert case.root_causes == {root} and case.fault_type == fault and case.inject_time == c.inject_time
    assert rank_case(d, "nsigma").ranking.components[0] == root


# -- time units -------------------------------------------------------------------------------


@pytest.mark.parametrize(("data_div", "inject_div", "unit"), [(1e3, 1e3, "milliseconds"), (1e6, 1, "microseconds"), (1e9, 1e3, "nanoseconds"), (1, 1e3, None)])
def test_time_unit_by_magnitude(tmp_path: Path, data_div: float, inject_div: float, unit: str | None) -> None:
    d, c = _plain(tmp_path / "src", "ray-worker-1_cpu/1")
    df = pd.read_csv(d / "data.csv")
    df["time"] = (df["time"] * data_div).astype("int64")
    df.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(f"{int(c.inject_time * inject_div)}\n")
    case = read_case(d)
    np.testing.assert_allclose(case.metrics["time"].to_numpy(), c.metrics["time"].to_numpy())
    assert case.inject_time == c.inject_time
    if unit:
        assert f"'time' is in epoch {unit}" in _notes(case)
    if inject_div != 1:
        assert "inject_time.txt: " in _notes(case) and "milliseconds" in _notes(case)
    assert rank_case(d, "nsigma").ranking.components[0] == "ray-worker-1"
    out = tmp_path / "ours"
    assert import_tree(tmp_path / "src", out).ok
    cj = json.loads((out / "ray-worker-1_cpu/1/case.json").read_text())
    assert cj["inject_time"] == c.inject_time and cj["normalised"] == case.meta["normalised"]


def test_case_json_inject_time_in_ms(tmp_path: Path) -> None:
    c = make_case(root="ray-worker-1", fault="cpu", seed=1, with_logs=False, with_traces=False)
    from llmrca.dataset import write_case

    d = write_case(c, tmp_path / "ray-worker-1_cpu/1")
    spec = json.loads((d / "case.json").read_text())
    spec["inject_time"] = c.inject_time * 1000
    (d / "case.json").write_text(json.dumps(spec))
    case = read_case(d)
    assert case.inject_time == c.inject_time and "case.json inject_time" in _notes(case)


def test_rfc3339_inject_time_and_timezone_shift(tmp_path: Path) -> None:
    d, c = _plain(tmp_path, "ray-worker-1_cpu/1")
    iso = pd.Timestamp(c.inject_time, unit="s", tz="UTC").tz_convert("+02:00").isoformat()
    (d / "inject_time.txt").write_text(iso)
    assert read_case(d).inject_time == c.inject_time
    (d / "inject_time.txt").write_text(f"{int(c.inject_time) - 3 * 3600}")
    with pytest.raises(CaseValidationError, match=r"moved by \+3 h it falls inside the data: this looks like a time-zone shift") as e:
        read_case(d)
    assert "both the data's times and the injection time are epoch numbers" in str(e.value)
    naive = pd.Timestamp(c.inject_time - 3 * 3600, unit="s").isoformat()  # local time, written without its offset
    (d / "inject_time.txt").write_text(naive)
    with pytest.raises(CaseValidationError, match=r"time-zone shift") as e:
        read_case(d)
    assert "(read without a UTC offset, as UTC: inject_time.txt)" in str(e.value)
    # the other way round: the injection time carries its offset, data.csv's date-times (local clock) do not
    m = c.metrics.copy()
    m["time"] = (pd.to_datetime(m["time"], unit="s") + pd.Timedelta(hours=2)).astype(str)
    m.to_csv(d / "data.csv", index=False)
    (d / "inject_time.txt").write_text(pd.Timestamp(c.inject_time, unit="s", tz="UTC").isoformat())
    with pytest.raises(CaseValidationError, match=r"moved by \+2 h it falls inside the data") as e:
        read_case(d)
    said = str(e.value)
    assert "data.csv wrote its times without a UTC offset, read as UTC: write them in UTC or with their offset" in said
    first = (pd.Timestamp(int(c.metrics["time"].iloc[0]), unit="s") + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    assert f"(e.g. {first}+02:00)" in said, said  # the data's own first time with the offset found
    assert "write the injection time in UTC" not in said


# -- constant, all-NaN, +Inf --------------------------------------------------------------------


def test_constant_allnan_inf_case_is_kept_and_every_method_runs(tmp_path: Path) -> None:
    src = _copy("constant-allnan-inf", tmp_path)
    case = read_case(src / "ray-worker-1_gpu" / "1")
    assert "ray-worker-2_DCGM_FI_DEV_FB_USED" not in case.metrics.columns
    assert case.metrics["nginx-gateway_latency"].isna().sum() == 1 and not np.isinf(case.metrics.drop(columns="time").to_numpy()).any()
    notes = _notes(case)
    assert "dropped 1 all-NaN column(s) ['ray-worker-2_DCGM_FI_DEV_FB_USED']" in notes and "treated as missing" in notes
    out = rank_case(src / "ray-worker-1_gpu" / "1", "causalai")  # used to fail: correlation matrix is singular
    assert out.ranking.components[0] == "ray-worker-1"
    assert "constant (no variance)" in out.ranking.explanation["dropped"].values()
    assert rank_case(src / "ray-worker-1_gpu" / "1", "nsigma").ranking.components[0] == "ray-worker-1"


# -- logs -------------------------------------------------------------------------------------


def test_non_utf8_logs_are_decoded_and_never_block_metrics(tmp_path: Path) -> None:
    src = _copy("logs-non-utf8", tmp_path)
    case = read_case(src / "ray-worker-1_memory" / "1")
    assert case.logs is not None and case.logs["message"].str.contains("\ufffd").any()
    assert "warning: logs.csv is not valid UTF-8" in _notes(case)
    assert rank_case(src / "ray-worker-1_memory" / "1", "nsigma").ranking.components[0] == "ray-worker-1"
    # a log file whose only row has an unbalanced quote: the case still reads, the row is dropped and counted
    (src / "ray-worker-1_memory/1/logs.csv").write_bytes(b'time,container_name,message\n1,"a\n')
    case = read_case(src / "ray-worker-1_memory" / "1")
    assert (case.logs is None or case.logs.empty) and "logs.csv: dropped 1 malformed line(s)" in _notes(case)


def test_bad_log_and_span_rows_dropped_with_a_count(tmp_path: Path) -> None:
    d, c = _plain(tmp_path, "ray-worker-1_cpu/1", with_logs=True, with_traces=True)
    logs = c.logs.copy().astype({"time": object})
    logs.loc[[1, 2], "time"] = "garbage"
    logs.to_csv(d / "logs.csv", index=False)
    tr = c.traces.copy().astype({"duration": object})
    tr.loc[0, "duration"] = "?"
    tr.to_csv(d / "traces.csv", index=False)
    case = read_case(d)
    assert len(case.logs) == len(c.logs) - 2 and "dropped 2 row(s) without a usable time" in _notes(case)
    assert len(case.traces) == len(c.traces) - 1 and "dropped 1 span(s)" in _notes(case)


def test_trace_methods_run_on_re2_traces_and_are_unavailable_without(tmp_path: Path) -> None:
    from llmrca.evaluate.runner import run_evaluation

    src = _copy("rcaeval-re2", tmp_path)
    methods = ["microrank", "tracerca", "mm-baro", "pdiagnose", "nsigma"]
    res = run_evaluation(src, methods, tmp_path / "out", jobs=1, progress=False)
    status = res.status.set_index("method")
    assert (status.loc[methods, "ok"] == 1).all(), res.status
    (src / "checkoutservice_delay/1/traces.csv").unlink()
    res = run_evaluation(src, methods, tmp_path / "out2", jobs=1, progress=False)
    status = res.status.set_index("method")
    assert status.loc["microrank", "unavailable"] == 1 and status.loc["tracerca", "unavailable"] == 1
    assert status.loc[["mm-baro", "pdiagnose", "nsigma"], "ok"].eq(1).all()


# -- the public normalisation step on an in-memory case -------------------------------------------


def test_normalise_case_in_memory() -> None:
    c = make_case(root="ray-worker-1", fault="cpu", seed=2)
    m = c.metrics.copy()
    m["time"] = m["time"] * 1000
    m["ray-head_gpu"] = np.nan
    m["ray-head_pod_name"] = "ray-head-abc"
    bad = type(c)(metrics=m, inject_time=c.inject_time * 1000, logs=c.logs, traces=c.traces, root_causes=c.root_causes)
    with pytest.raises(CaseValidationError):
        bad.validate()
    fixed, notes = normalise_case(bad)
    fixed.validate()
    assert fixed.inject_time == c.inject_time and list(fixed.metrics.columns) == list(c.metrics.columns)
    assert fixed.meta["identity"] == {"ray-head_pod_name": ["ray-head-abc"]} and fixed.meta["normalised"] == notes and len(notes) == 4


def test_relative_times_keep_their_units(tmp_path: Path) -> None:
    """Times that start at 0 (relative seconds, spans in µs) are not mistaken for another epoch unit."""
    c = make_case(root="ray-worker-2", fault="cpu", seed=4, start=0.0)
    from llmrca.dataset import write_case

    d = write_case(c, tmp_path / "ray-worker-2_cpu/1")
    case = read_case(d)
    np.testing.assert_allclose(case.traces["startTime"].to_numpy(), c.traces["startTime"].to_numpy(dtype=float))
    np.testing.assert_allclose(case.logs["time"].to_numpy(), c.logs["time"].to_numpy())
    assert case.inject_time == c.inject_time and "normalised" not in case.meta
