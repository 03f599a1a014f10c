"""Log-file and span-file collection (no Prometheus needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from llmrca.collect import SpanWriter, parse_line, parse_traceparent, read_log_files, read_span_files, time_grid
from llmrca.dataset.io import LOG_COLUMNS, TRACE_COLUMNS

T = datetime(2026, 11, 25, 3, 26, 35, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("line", "when", "msg"),
    [
        ("2026-11-25T03:26:35.250000001Z stdout F engine ready", T + 0.25, "engine ready"),
        ("2026-11-25 03:26:35,500 INFO worker: step", T + 0.5, "INFO worker: step"),
        ("2026-11-25T05:26:35+02:00 shifted", T, "shifted"),
        ('127.0.0.1 - - [25/Nov/2026:04:26:35 +0100] "POST /v1/chat/completions HTTP/1.1" 200 12', T, None),
        ('{"ts": %r, "msg": "json epoch"}' % (T + 1), T + 1, "json epoch"),
        ('{"time": "2026-11-25T03:26:35Z", "message": "json iso"}', T, "json iso"),
        (f"{T + 2} epoch first", T + 2, "epoch first"),
    ],
)
def test_timestamp_forms(line: str, when: float, msg: str | None) -> None:
    parsed = parse_line(line)
    assert parsed is not None
    assert parsed[0] == pytest.approx(when, abs=1e-6)
    assert parsed[1] == (line if msg is None else msg)


def test_log_files_merge_continuations_filter_and_sort(tmp_path) -> None:
    a = tmp_path / "a.log"
    a.write_text(
        "no timestamp yet\n"
        "2026-11-25T03:26:30Z stdout F too early\n"
        "2026-11-25T03:26:36Z stderr F Traceback (most recent call last):\n"
        '  File "engine.py", line 3\n'
        "MemoryError\n"
        "\n"
        "2026-11-25T03:26:38Z stdout F restarted\n"
    )
    b = tmp_path / "b.log"
    b.write_text("2026-11-25 03:26:37 naive means UTC\n")
    res = read_log_files({"ray-worker-1": a, "ray-head": [b]}, start=T, end=T + 10)
    df = res.frame
    assert list(df.columns) == LOG_COLUMNS
    assert list(df["container_name"]) == ["ray-worker-1", "ray-head", "ray-worker-1"]
    assert list(df["time"]) == [T + 1, T + 2, T + 3]
    assert df["message"].iloc[0] == 'Traceback (most recent call last):\n  File "engine.py", line 3\nMemoryError'
    assert res.unparsed == {str(a): 1}
    local = read_log_files({"x": b}, naive_tz=timezone(timedelta(hours=1))).frame
    assert local["time"].iloc[0] == T + 2 - 3600
    with pytest.raises(FileNotFoundError, match="missing_ok"):
        read_log_files({"x": tmp_path / "nope.log"})


def test_spans_link_across_services_and_round_trip(tmp_path) -> None:
    path = tmp_path / "spans.jsonl"
    with SpanWriter(path, "nginx-gateway") as gw, SpanWriter(path, "ray-head") as head:
        with gw.span("/v1/chat/completions", method="POST") as root:
            with head.span("route", traceparent=root.traceparent) as child:
                child.status = 503
        with pytest.raises(ZeroDivisionError), gw.span("/broken"):
            1 / 0  # noqa: B018
    df = read_span_files([path]).frame
    assert list(df.columns) == TRACE_COLUMNS and len(df) == 3
    by_op = df.set_index("operationName")
    assert by_op.loc["route", "traceID"] == by_op.loc["/v1/chat/completions", "traceID"]
    assert by_op.loc["route", "parentSpanID"] == by_op.loc["/v1/chat/completions", "spanID"]
    assert by_op.loc["/v1/chat/completions", "parentSpanID"] == ""
    assert by_op.loc["route", "statusCode"] == 503 and by_op.loc["/broken", "statusCode"] == 500
    assert by_op.loc["/v1/chat/completions", "duration"] >= by_op.loc["route", "duration"] >= 0
    assert parse_traceparent("garbage") is None and parse_traceparent(root.traceparent) == (root.trace_id, root.span_id)


def test_span_file_shared_by_threads_and_processes(tmp_path) -> None:
    path = tmp_path / "spans.jsonl"
    w = SpanWriter(path, "ray-worker-1")
    threads = [threading.Thread(target=lambda: [w.record("op", T, 0.001) for _ in range(200)]) for _ in range(4)]
    code = f"from llmrca.collect import SpanWriter\nw=SpanWriter({str(path)!r}, 'ray-worker-2')\nfor _ in range(300): w.record('op', {T}, 0.001)\n"
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True, env={**os.environ, "PYTHONPATH": src})
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(30) == 0
    w.close()
    df = read_span_files({"all": path}).frame
    assert len(df) == 1100 and df["spanID"].nunique() == 1100
    assert (df["serviceName"] == "ray-worker-2").sum() == 300


def test_span_reader_reports_bad_lines(tmp_path) -> None:
    good = json.dumps(dict.fromkeys(TRACE_COLUMNS, 1))
    p = tmp_path / "s.jsonl"
    p.write_text(good + "\n" + good[:10])  # writer killed mid-line
    res = read_span_files([p])
    assert len(res.frame) == 1 and res.truncated_lines == {str(p): 1}
    p.write_text(good + "\nnot json\n" + good + "\n")
    with pytest.raises(ValueError, match=r"s.jsonl:2"):
        read_span_files([p])
    with pytest.raises(ValueError, match="contains '_'"):
        SpanWriter(tmp_path / "x", "bad_name")


def test_time_grid_matches_prometheus_steps() -> None:
    assert list(time_grid(100, 120, 5)) == [100, 105, 110, 115, 120]
    assert list(time_grid(100, 119, 5)) == [100, 105, 110, 115]
