"""The load generator against a real streaming HTTP server on 127.0.0.1 with known delays."""

from __future__ import annotations

import time

import numpy as np
import pytest
from typer.testing import CliRunner

from llmrca.load import LoadRunner, RemoteTargetRefused, chat_url, is_loopback_url, make_schedule, run_load, synth_prompt
from llmrca.load.stub_server import StubBehaviour, StubServer

TTFT, ITL = 0.08, 0.02


@pytest.fixture(scope="module")
def server() -> StubServer:
    with StubServer(StubBehaviour(ttft_s=TTFT, itl_s=ITL)) as s:
        yield s


@pytest.fixture(scope="module")
def faulty() -> StubServer:
    with StubServer(StubBehaviour(ttft_s=0.01, itl_s=0.005, fail_every=4, close_every=5, close_after=2)) as s:
        yield s


def test_schedule_is_deterministic_per_seed_and_bounded() -> None:
    a = make_schedule(qps=10, duration_s=30, arrival="poisson", length_spread=0.5, seed=3)
    b = make_schedule(qps=10, duration_s=30, arrival="poisson", length_spread=0.5, seed=3)
    c = make_schedule(qps=10, duration_s=30, arrival="poisson", length_spread=0.5, seed=4)
    assert np.array_equal(a.offsets_s, b.offsets_s) and np.array_equal(a.prompt_tokens, b.prompt_tokens)
    assert not np.array_equal(a.offsets_s[:10], c.offsets_s[:10])
    assert a.offsets_s.max() < 30 and 240 < len(a) < 360  # Poisson count around 300
    assert abs(a.prompt_tokens.mean() - 512) < 25 and a.prompt_tokens.min() >= 256 and a.prompt_tokens.max() <= 768
    const = make_schedule(qps=4, duration_s=2.0)
    assert np.allclose(const.offsets_s, [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75])
    assert len(make_schedule(qps=100, duration_s=10, max_requests=7)) == 7
    assert synth_prompt(50, 1) == synth_prompt(50, 1) != synth_prompt(50, 2)
    assert len(synth_prompt(50, 1).split()) == 50


def test_poisson_rate_matches_qps_over_a_long_schedule() -> None:
    s = make_schedule(qps=5, duration_s=4000, arrival="poisson", seed=0)
    gaps = np.diff(s.offsets_s)
    assert abs(1 / gaps.mean() - 5) < 0.2
    assert abs(gaps.std() / gaps.mean() - 1) < 0.05  # exponential: coefficient of variation 1


def test_measured_ttft_itl_match_server_delays(server: StubServer) -> None:
    r = run_load(server.url, qps=10, duration_s=1.5, output_tokens=12, prompt_tokens=64)
    s = r.summary
    assert s["n_ok"] == 15 and s["n_error"] == 0
    assert TTFT <= s["ttft_s"]["p50"] < TTFT + 0.04
    assert abs(s["itl_s"]["p50"] - ITL) < 0.004
    assert abs(s["itl_s"]["mean"] - ITL) < 0.004
    e2e_expected = TTFT + 11 * ITL
    assert e2e_expected <= s["e2e_s"]["p50"] < e2e_expected + 0.04
    assert abs(s["achieved_qps"] - 10) < 1.0
    assert (r.records["output_tokens"] == 12).all() and (r.records["output_chunks"] == 12).all()
    assert (r.records["finish_reason"] == "length").all()
    assert len(r.itl_s) == 15 * 11


def test_bounds_by_count_and_duration(server: StubServer) -> None:
    t0 = time.monotonic()
    r = run_load(server.url, qps=50, duration_s=10, max_requests=7, output_tokens=2)
    assert len(r.records) == 7 and r.summary["n_ok"] == 7
    assert time.monotonic() - t0 < 2.0  # 7 arrivals at 50 QPS, not 10 s
    r = run_load(server.url, qps=5, duration_s=1.0, output_tokens=2)
    assert len(r.records) == 5
    assert r.records["scheduled_s"].max() < 1.0


def test_errors_are_counted_by_kind(faulty: StubServer) -> None:
    r = run_load(faulty.url, qps=40, duration_s=1.0, output_tokens=6)
    s = r.summary
    # requests 1..40: multiples of 4 fail with 500; other multiples of 5 are cut short
    assert s["errors_by_kind"] == {"http_500": 10, "incomplete": 6}
    assert s["n_ok"] == 24
    bad = r.records[r.records["status"] == "error"]
    assert np.isnan(bad["e2e_s"]).all()
    # ITL, as TTFT and E2E, is over the requests that succeeded: 24 requests of 6 tokens, 5 gaps each
    assert len(r.itl_s) == 24 * 5 and s["itl_s"]["n"] == 24 * 5


def test_concurrency_cap_drops_instead_of_waiting(server: StubServer) -> None:
    # each request takes ~0.08 + 39*0.02 = 0.86 s; at 20 QPS about 17 would be in flight
    r = run_load(server.url, qps=20, duration_s=0.5, output_tokens=40, concurrency=3)
    s = r.summary
    assert s["n_ok"] == 3 and s["n_dropped"] == 7
    assert (r.records.loc[r.records["status"] == "dropped", "error_kind"] == "concurrency_cap").all()
    assert abs(s["achieved_qps"] - 20) < 2  # drops did not slow the arrivals


def test_background_runner_stops_and_cancels(server: StubServer) -> None:
    seen: list[int] = []
    runner = LoadRunner(server.url, qps=10, duration_s=60, output_tokens=500, on_result=lambda rec: seen.append(rec.id))
    runner.start()
    time.sleep(0.6)
    assert runner.running
    t0 = time.monotonic()
    rep = runner.stop(drain_s=0.0)
    assert time.monotonic() - t0 < 2.0
    assert not runner.running
    assert 4 <= len(rep.records) <= 9 and rep.summary["n_cancelled"] == len(rep.records)
    assert sorted(seen) == sorted(rep.records["id"].tolist())


def test_timeout_is_an_error(server: StubServer) -> None:
    r = run_load(server.url, qps=5, duration_s=0.2, output_tokens=100, timeout_s=0.3)
    assert r.summary["errors_by_kind"] == {"timeout": 1}


def test_remote_targets_are_refused_without_permission() -> None:
    assert (
        is_loopback_url("http://127.0.0.1:8000") and is_loopback_url("http://localhost/v1") and is_loopback_url("http://[::1]:80")
    )
    assert not is_loopback_url("http://10.1.2.3:8000") and not is_loopback_url("https://api.example.com")
    with pytest.raises(RemoteTargetRefused, match="allow-remote"):
        LoadRunner("http://192.0.2.1:8000", qps=1, duration_s=1)
    LoadRunner("http://192.0.2.1:8000", qps=1, duration_s=1, allow_remote=True)  # constructing sends nothing
    assert (
        chat_url("http://h:1")
        == "http://h:1/v1/chat/completions"
        == chat_url("http://h:1/v1/")
        == chat_url("http://h:1/v1/chat/completions")
    )


def test_cli_prints_summary_and_writes_csv(server: StubServer, tmp_path) -> None:
    from llmrca.cli import app

    out = tmp_path / "r.csv"
    res = CliRunner().invoke(
        app, ["load", server.url, "--qps", "10", "--duration", "0.5", "--output-tokens", "3", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "5 ok" in res.output and "TTFT" in res.output
    assert len(out.read_text().splitlines()) == 6
    res = CliRunner().invoke(app, ["load", "http://198.51.100.7:8000", "--qps", "1", "--duration", "1"])
    assert res.exit_code == 2


def test_stop_right_after_start_sends_at_most_one(server: StubServer) -> None:
    with LoadRunner(server.url, qps=2, duration_s=30, output_tokens=2) as runner:
        pass  # __exit__ stops it
    rep = runner.report()
    assert len(rep.records) <= 1 and not runner.running


def test_binned_client_series(faulty: StubServer) -> None:
    r = run_load(faulty.url, qps=20, duration_s=1.0, output_tokens=3)
    b = r.binned(step_s=0.5, start=r.summary["start_time"])
    assert list(b["sent"]) == [10, 10]
    assert b["ok"].sum() == r.summary["n_ok"] and b["errors"].sum() == r.summary["n_error"]
    assert (b["ttft_p50_s"] >= 0.01).all() and (b["ttft_p90_s"] >= b["ttft_p50_s"]).all()
    assert np.allclose(np.diff(b["time"]), 0.5)


def _tiny_server(body_of: dict[str, tuple[int, bytes]]):
    """A loopback HTTP server answering GET paths from ``body_of`` (path -> (status, body)), 404 otherwise."""
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code, body = body_of.get(self.path, (404, b"not found"))
            self.send_response(code)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize(
    ("answers", "said"),
    [
        ({}, "HTTP 404: the server has no model list there"),
        ({"/v1/models": (200, b'{"object": "list", "data": []}')}, "it lists no model"),
        ({"/v1/models": (200, b"<html>hello</html>")}, "is not an OpenAI model list"),
        ({"/v1/models": (503, b"busy")}, "HTTP 503"),
    ],
)
def test_model_discovery_says_why_it_found_no_model(answers: dict, said: str) -> None:
    srv = _tiny_server(answers)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        with pytest.raises(RuntimeError) as e:
            run_load(url, qps=1, duration_s=0.5)
        assert said in str(e.value) and f"{url}/v1/models" in str(e.value) and "--model" in str(e.value), str(e.value)
    finally:
        srv.shutdown()
        srv.server_close()


def test_cli_load_error_is_one_readable_line_when_piped() -> None:
    """Piped stderr: the message is not cut at 80 columns, and not shown as an exception's repr."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    srv = _tiny_server({})
    try:
        env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1] / "src")
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        r = subprocess.run([sys.executable, "-m", "llmrca", "load", url, "--qps", "1", "--duration", "0.5"],
                           capture_output=True, text=True, env=env, timeout=120)
    finally:
        srv.shutdown()
        srv.server_close()
    assert r.returncode == 1
    line = next(x for x in r.stderr.splitlines() if x.startswith("error:"))
    assert "RuntimeError(" not in r.stderr and len(line) > 120, r.stderr
    assert line.endswith("pass model=... (CLI: --model)") and f"{url}/v1/models (HTTP 404" in line, r.stderr
