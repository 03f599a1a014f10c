"""Strict checks of metrics files where a repair would be a guess."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pandas as pd

from llmrca.dataset.io import write_case
from llmrca.dataset.safe_io import read_first_line, read_last_lines
from llmrca.dataset.strict import (
    check_frame,
    dropped_root_cause_problems,
    header_problems,
    last_row_problem,
    metric_type_problems,
    name_problems,
    pandas_duplicate_columns,
    text_columns,
    time_problems,
    trailing_nan_row,
)
from llmrca.synthetic import make_case


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text))


def test_a_written_case_has_no_problems(tmp_path: Path) -> None:
    case = make_case(root="ray-worker-1", fault="cpu", seed=0, with_logs=False, with_traces=False)
    folder = write_case(case, tmp_path / "c")
    p = folder / "data.csv"
    df = pd.read_csv(p)
    lines, ends_nl = read_last_lines(p, 1)
    assert check_frame(df, file="data.csv", header_line=read_first_line(p), last_line=lines[-1], ends_with_newline=ends_nl, root_causes=["ray-worker-1"]) == []
    assert check_frame(df, file="data.csv") == []  # the pandas-pattern fallbacks give no false alarm either


def test_infinite_time() -> None:
    df = _csv("time,a_cpu\n1,1\ninf,2\n3,3\n-inf,4\n")
    assert time_problems(df, file="d/data.csv") == [
        "d/data.csv: 'time' is inf in row 1 (2 such rows); a timestamp must be finite epoch seconds: fix or delete those rows"
    ]
    assert time_problems(_csv("time,a_cpu\n1,1\n2,2\n"), file="data.csv") == []


def test_truncated_last_row_from_the_raw_line(tmp_path: Path) -> None:
    p = tmp_path / "data.csv"
    p.write_text("time,a_cpu,a_mem,b_cpu\n1,0.1,0.2,0.3\n2,0.1,0.2,0.3\n3,0.1,0.")
    lines, ends_nl = read_last_lines(p, 1)
    probs = last_row_problem(read_first_line(p), lines[-1], file="data.csv", ends_with_newline=ends_nl)
    assert probs == [
        "data.csv: the last line has 3 of the header's 4 fields and the file does not end with a line end (detected from the raw last line): "
        "the file was cut off while being written; delete the last line or export the file again"
    ]
    assert last_row_problem("time,a_cpu", "1,2,3", file="data.csv")[0].startswith("data.csv: the last line has 3 fields but the header has 2")
    assert last_row_problem("time,a_cpu", "1,2", file="data.csv") == []
    assert last_row_problem('time,"a_x,y"', '1,"2"', file="data.csv") == []  # quoted commas counted right


def test_truncated_last_row_from_pandas_pattern() -> None:
    df = _csv("time,a_cpu,a_mem,b_cpu\n1,0.1,0.2,0.3\n2,0.1,0.2,0.3\n3,0.1\n")
    (p,) = trailing_nan_row(df, file="data.csv")
    assert p.startswith("data.csv: the last row (row 2) has no values in its last 2 columns (from 'a_mem' on)")
    assert "detected from pandas' NaN-filled trailing cells" in p
    # a gap that earlier rows have too is ordinary missing data, not truncation
    assert trailing_nan_row(_csv("time,a_cpu,b_cpu\n1,0.1,\n2,0.1,0.3\n3,0.1,\n"), file="data.csv") == []


def test_duplicated_columns_from_the_raw_header() -> None:
    probs = header_problems("time,a_cpu,b_cpu,a_cpu,time", file="data.csv")
    assert probs == [
        "data.csv: column 'time' appears 2 times in the header (columns 1, 5); which one holds the right values is unknown: remove or rename the duplicates",
        "data.csv: column 'a_cpu' appears 2 times in the header (columns 2, 4); which one holds the right values is unknown: remove or rename the duplicates",
    ]
    df = _csv("time,a_cpu,b_cpu,a_cpu\n1,2,3,4\n")
    assert list(df.columns) == ["time", "a_cpu", "b_cpu", "a_cpu.1"]
    (p,) = pandas_duplicate_columns(list(df.columns), file="data.csv")
    assert "columns 'a_cpu' and 'a_cpu.1': the header most likely repeats 'a_cpu'" in p


def test_booleans_and_text_as_metrics() -> None:
    df = _csv('time,a_ok,a_cpu,a_lat,a_pod,b_flag\n1,True,0.5,"1,5",pod-a,1\n2,False,oops,"2,5",pod-a,true\n3,True,0.7,"3,5",pod-a,2\n')
    probs = metric_type_problems(df, file="data.csv")
    assert probs[0] == "data.csv: column 'a_ok' holds booleans (True/False); metrics must be numbers: write 1/0 if that is what it means"
    assert probs[1] == (
        "data.csv: column 'a_cpu' mixes numbers and text (row 1: 'oops', 1 such cells); which number the text stands for is unknown: "
        "write a number or leave the cell empty"
    )
    assert probs[2].startswith("data.csv: column 'a_lat' holds numbers written as text (e.g. '1,5')")
    assert probs[3].startswith("data.csv: column 'b_flag' mixes numbers and text (row 1: 'true'")
    assert len(probs) == 4
    assert text_columns(df) == ["a_pod"]  # identity text: the reader may drop it with a note
    units = _csv("time,a_lat\n1,12ms\n2,15ms\n")
    assert "holds numbers written as text (e.g. '12ms')" in metric_type_problems(units, file="data.csv")[0]


def test_invisible_characters_in_names() -> None:
    cols = ["time", "ray\u200bworker-1_cpu", "ray-worker-1_m\x00em", "ray-worker-2_\ufeffcpu", "nginx-gateway_cpu", " ray-head_cpu", "../evil_cpu"]
    probs = name_problems(cols, file="data.csv")
    assert probs == [
        "data.csv: column name 'ray\\u200bworker-1_cpu' contains invisible or control characters (U+200B ZERO WIDTH SPACE at position 3); retype the name",
        "data.csv: column name 'ray-worker-1_m\\x00em' contains invisible or control characters (U+0000 NUL at position 14); retype the name",
        "data.csv: column name 'ray-worker-2_\\ufeffcpu' contains invisible or control characters (U+FEFF ZERO WIDTH NO-BREAK SPACE at position 13); retype the name",
        "data.csv: column name ' ray-head_cpu' has leading or trailing spaces; remove them (e.g. no space after the commas of the header)",
        "data.csv: column '../evil_cpu': its component '../evil' contains a path separator ('/' or '\\'); a component name must be a plain name such as 'ray-worker-1'",
    ]
    # a BOM at the very start of the file is an encoding mark, not part of the name
    assert header_problems("\ufefftime,a_cpu", file="data.csv") == []


def test_root_cause_whose_columns_were_all_dropped() -> None:
    probs = dropped_root_cause_problems(
        ["ray-worker-1", "ray-worker-2"],
        ["time", "ray-worker-2_cpu"],
        {"ray-worker-1_cpu": "all NaN", "ray-worker-1_pod_name": "text", "ray-worker-2_mem": "all NaN"},
        file="data.csv",
    )
    assert probs == [
        "data.csv: root cause 'ray-worker-1' has no metric column left: all 2 of its columns were dropped "
        "('ray-worker-1_cpu': all NaN; 'ray-worker-1_pod_name': text); the case cannot be scored: fix those columns in the data"
    ]
    assert dropped_root_cause_problems(["x"], ["time"], [], file="data.csv") == []  # never had columns: not this check's business


def test_check_frame_collects_every_kind() -> None:
    header = "time,a_cpu,a_cpu,b\u200b_cpu,c_ok"
    df = _csv(header + "\ninf,1,2,3,True\n2,1,2,3,False\n")
    probs = check_frame(df, file="data.csv", header_line=header, last_line="2,1,2,3,False", root_causes=["d"], dropped={"d_cpu": "all NaN"})
    kinds = ["appears 2 times", "invisible or control", "'time' is inf", "holds booleans", "root cause 'd' has no metric column left"]
    assert len(probs) == len(kinds) and all(k in p for k, p in zip(kinds, probs, strict=True)), probs


def test_wide_frame_is_checked_in_linear_time() -> None:
    """100k metric columns: every check runs in seconds (measured ~0.4 s here; bound 20 s for a shared machine)."""
    n = 100_000
    cols = ["time"] + [f"c{i // 10}-x_m{i % 10}" for i in range(n)]
    df = pd.DataFrame(np.random.default_rng(0).normal(size=(5, n + 1)), columns=cols)
    header = ",".join(cols)
    bad_header = header + ",c1-x_m1,z\u200b_cpu"  # a duplicate and an invisible character at the far end
    t = time.perf_counter()
    probs = check_frame(df, file="wide.csv", header_line=bad_header, last_line="1," + ",".join(["0"] * (n - 3)), root_causes=["c1-x"])
    elapsed = time.perf_counter() - t
    assert elapsed < 20, f"{elapsed:.1f} s"
    assert len(probs) == 3, probs
    assert "column 'c1-x_m1' appears 2 times in the header (columns 13, 100002)" in probs[0]
    assert "'z\\u200b_cpu'" in probs[1] and "the last line has 99998 of the header's 100003 fields" in probs[2]
    t = time.perf_counter()
    assert check_frame(df, file="wide.csv") == []
    assert time.perf_counter() - t < 20
