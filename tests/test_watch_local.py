"""``llmrca watch`` and ``llmrca audit`` on the local testbed: real processes, a real Prometheus, real faults.

The paper's Fig. 8 on real processes, within a CI budget: a healthy window
during which Prometheus is killed and restarted (no alert, the outage
reported, the loop still running), then two faults (a CPU hog and a memory
leak on two workers) that ``watch --execute`` must alert on, blame on
the right worker with the right type, act on, and see recover.  The audit
runs on the testbed's Prometheus (everything present, exit 0) and on a real
Prometheus backfilled with the same series minus the two opt-in DCGM fields
(power limit, clock-event reasons): GPU faults then cannot be diagnosed, the
fix names the dcgm-exporter counters, exit 1.

Needs root, cgroups, nginx, prometheus, promtool and stress-ng (else skipped).
Budget ~8 minutes (the two faults: ~4 minutes, at most ~7).  ``benchmarks/watch_local.py``
runs all four faults and a 10-minute healthy window.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.system, pytest.mark.slow]

from _localtestbed import require_local_testbed  # noqa: E402

require_local_testbed()

from llmrca.heal.audit import audit  # noqa: E402
from llmrca.heal.fig8 import fault_figure, run_faults, start_watcher  # noqa: E402
from llmrca.heal.watch import WatchConfig  # noqa: E402
from llmrca.load import LoadRunner  # noqa: E402
from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig, leftovers  # noqa: E402

RUN_DIR = "/tmp/llmrca-test-watch"
WORKERS = ["ray-worker-1", "ray-worker-2", "ray-worker-3"]
GPU_FIELDS = ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS")
# loop settings for CI: the paper's rule shape, shorter quiet times
CFG = WatchConfig(cooldown_s=30.0, recover_timeout_s=180.0)


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalTestbed]:
    from llmrca.testbed.local.stack import down

    down(RUN_DIR)  # leftovers of an interrupted run
    tb = LocalTestbed.up(LocalTestbedConfig(run_dir=RUN_DIR, scrape_interval_s=2.0))
    run_id, groups = tb.state.run_id, dict(tb.state.groups)
    load = LoadRunner(tb.state.gateway_url, qps=1.0, duration_s=1500.0, arrival="poisson", prompt_tokens=64, output_tokens=48, seed=0, timeout_s=60.0)
    load.start()
    try:
        yield tb
    finally:
        with contextlib.suppress(Exception):
            load.stop(timeout=10)
        groups.update(tb.state.groups)
        tb.down()
        assert leftovers(run_id, groups, RUN_DIR) == []


def _steps(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]


def _kill_prometheus(tb: LocalTestbed) -> list[str]:
    """SIGKILL the testbed's Prometheus group; returns its command line (to start it again)."""
    pg = tb.state.groups["node/prometheus"]
    cmd = [x for x in Path(f"/proc/{pg}/cmdline").read_bytes().decode().split("\0") if x]
    os.killpg(pg, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pg, 0)
    return cmd


def test_healthy_window_raises_no_alert_and_survives_prometheus_dying(stack: LocalTestbed, tmp_path: Path) -> None:
    time.sleep(max(0.0, 50.0 - (time.time() - stack.state.created)))  # Prometheus holds enough history for the baseline
    lines: list[str] = []
    w, th = start_watcher(RUN_DIR, tmp_path, CFG.replace(execute=True), allow=WORKERS, say=lines.append)
    deadline = time.time() + 90  # every rule arms once its baseline holds enough samples (30 s on an idle machine)
    while time.time() < deadline and not (w.rules and all(r.band() is not None for r in w.rules.values())):
        time.sleep(2)
    unarmed = {n: len(r.samples) for n, r in w.rules.items() if r.band() is None}
    assert w.rules and not unarmed, unarmed
    cmd = _kill_prometheus(stack)
    time.sleep(20)
    assert th.is_alive()  # the loop survives Prometheus going away
    stack._spawn("node/prometheus", cmd, None, Path(RUN_DIR) / "node" / "prometheus.out")
    deadline = time.time() + 60
    while time.time() < deadline and not any(s["step"] == "prometheus-back" for s in _steps(tmp_path)):
        time.sleep(1)
    time.sleep(30)  # evaluations after the outage: still no alert
    w.stop.set()
    th.join(30)
    assert not th.is_alive()
    steps = _steps(tmp_path)
    names = [s["step"] for s in steps]
    assert names[0] == "start" and names[1] == "baseline" and names[-1] == "stop"
    assert "prometheus-unreachable" in names and "prometheus-back" in names
    back = next(s for s in steps if s["step"] == "prometheus-back")
    assert 15 <= back["down_s"] <= 80
    assert "alert" not in names, [s for s in steps if s["step"] == "alert"]  # healthy: 0 false alarms
    assert w.report.evaluations >= 12 and w.report.incidents == []
    assert any("unreachable" in ln for ln in lines) and any("back after" in ln for ln in lines)


def _history_s(prom: str, pod: str, window_s: float) -> float:
    """Seconds of samples Prometheus holds for ``pod`` in the last ``window_s`` (the longest series; 2-s scrapes)."""
    try:
        r = httpx.get(prom + "/api/v1/query", params={"query": f'max(count_over_time({{pod="{pod}"}}[{int(window_s)}s]))'}, timeout=10).json()
        return 2.0 * float(r["data"]["result"][0]["value"][1])
    except (httpx.HTTPError, KeyError, IndexError, ValueError):
        return 0.0


def test_audit_on_the_testbed_prometheus(stack: LocalTestbed) -> None:
    # the test before restarts Prometheus (SIGKILL): wait until it holds the window again (its WAL replay may lose the
    # last minute), so that what the audit finds is the testbed's, not the restart's gap
    deadline = time.time() + 150
    while time.time() < deadline and min(_history_s(stack.state.prometheus_url, w, 60) for w in WORKERS) < 50:
        time.sleep(2)
    rep = audit(stack.state.prometheus_url, run_dir=RUN_DIR, window_s=60, scrape_interval_s=2.0)
    assert rep.replicas == ["ray-head", *WORKERS] and rep.entry == "nginx-gateway"
    for w in WORKERS:
        assert {"gpu power limit", "clock-event (throttle) reasons", "kv cache", "ttft", "inter-token latency", "mesh latency",
                "replica lifecycle", "cpu", "memory", "logs"} <= set(rep.present[w])
    assert {f: v["diagnosable"] for f, v in rep.faults.items()} == {"cpu": True, "memory": True, "network": True, "gpu": True}
    assert "gateway latency" in rep.slo and rep.minimum_ok
    done = subprocess.run([sys.executable, "-m", "llmrca", "audit", stack.state.prometheus_url, "--run-dir", RUN_DIR, "--window", "60",
                           "--scrape-interval", "2"], capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": "src"})
    assert done.returncode == 0, done.stderr
    assert "minimum set: present" in done.stdout and "gpu      can be diagnosed" in done.stdout


def _export_openmetrics(prom: str, start: float, end: float, drop: tuple[str, ...]) -> str:
    """Every series with a pod label in [start, end] as OpenMetrics text (one family after another), ``drop`` left out."""
    r = httpx.post(prom + "/api/v1/query_range", data={"query": '{pod!=""}', "start": start, "end": end, "step": 2}, timeout=60).json()
    by_name: dict[str, list[str]] = {}
    for s in r["data"]["result"]:
        m = dict(s["metric"])
        name = m.pop("__name__")
        if name in drop:
            continue
        labels = ",".join(f'{k}={json.dumps(v)}' for k, v in sorted(m.items()))
        by_name.setdefault(name, []).extend(f"{name}{{{labels}}} {v} {float(t):.3f}" for t, v in s["values"])
    return "\n".join(line for name in sorted(by_name) for line in by_name[name]) + "\n# EOF\n"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool")
def test_audit_without_the_opt_in_gpu_fields(stack: LocalTestbed, tmp_path: Path) -> None:
    from llmrca.collect.prometheus_server import PrometheusServer

    end = float(int(time.time()) - 5)
    start = end - 150
    (tmp_path / "series.om").write_text(_export_openmetrics(stack.state.prometheus_url, start, end, GPU_FIELDS))
    done = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(tmp_path / "series.om"), str(tmp_path / "tsdb")],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    with PrometheusServer({}, data_dir=tmp_path) as prom:
        rep = audit(prom.url, {p: f'pod="{p}"' for p in stack.state.pods}, window_s=120, scrape_interval_s=2.0, end=end)
        cli = subprocess.run([sys.executable, "-m", "llmrca", "audit", prom.url, "--window", "900", "--scrape-interval", "2", "--json"],
                             capture_output=True, text=True, timeout=180, env={**os.environ, "PYTHONPATH": "src"})
    for w in WORKERS:
        assert "gpu power limit" not in rep.present[w] and "clock-event (throttle) reasons" not in rep.present[w]
        assert {"gpu power", "sm clock", "gpu utilisation", "kv cache", "mesh latency", "cpu"} <= set(rep.present[w])
    gpu = rep.faults["gpu"]
    assert gpu["diagnosable"] is False
    assert gpu["missing"][0]["components"] == ["ray-head", *WORKERS]
    assert "DCGM_FI_DEV_POWER_MGMT_LIMIT" in gpu["missing"][0]["fix"] and "DCGM_FI_DEV_CLOCKS_EVENT_REASONS" in gpu["missing"][0]["fix"]
    assert all(rep.faults[f]["diagnosable"] for f in ("cpu", "memory", "network"))  # logs are not in Prometheus: restarts stand in
    assert not rep.minimum_ok
    # the CLI discovers the pods from the pod label and says the same, exit code 1
    assert cli.returncode == 1, cli.stderr
    body = json.loads(cli.stdout)
    assert body["minimum_set"] is False and body["faults"]["gpu"]["diagnosable"] is False and body["faults"]["cpu"]["diagnosable"] is True
    assert sorted(body["components"]) == sorted(stack.state.pods)


#: The two faults whose detection is the most robust on a shared 2-core machine: a CPU hog (the pod's CFS
#: quota bites at once) and a memory leak (the replica is OOM-killed over and over: the crash-loop rule).
TWO_FAULTS = [("cpu", "ray-worker-2", {}), ("memory", "ray-worker-1", {})]
FAULT_S = 120.0  # a fault stays on at most this long (its incident usually ends within ~100 s)
READY_S = 45.0  # before each injection: pods healthy and the loop quiet within this long


def test_two_faults_are_alerted_localized_acted_on_and_recovered(stack: LocalTestbed, tmp_path: Path) -> None:
    t_start = time.time()
    time.sleep(max(0.0, 50.0 - (time.time() - stack.state.created)))  # Prometheus holds enough history for the baseline
    lines: list[str] = []
    w, th = start_watcher(RUN_DIR, tmp_path, CFG.replace(execute=True), allow=WORKERS, say=lines.append)
    try:
        outcomes = run_faults(stack, w, TWO_FAULTS, fault_s=FAULT_S, quiet_timeout_s=READY_S, say=lines.append)
    finally:
        w.stop.set()
        th.join(60)
    fault_figure(w, outcomes, tmp_path / "watch.png")
    print("\n".join(o.line() for o in outcomes), f"\n{time.time() - t_start:.0f} s")
    assert (tmp_path / "watch.png").stat().st_size > 10_000
    for o in outcomes:
        assert o.alert_s is not None and o.decision_s is not None and o.action_s is not None and o.recovered_s is not None, (o.to_dict(), lines[-30:])
        assert o.correct_culprit and o.correct_type, o.to_dict()
        assert 0 < o.alert_s <= 60.0, o.to_dict()  # alert within a minute of the injection
        assert o.alert_s < o.decision_s <= o.action_s < o.recovered_s, o.to_dict()
        assert o.action_status == "done"
    assert [o.action for o in outcomes] == ["restart", "restart"]
    steps = _steps(tmp_path)
    names = [s["step"] for s in steps]
    assert names.count("alert") == 2 and names.count("decide") == 2 and names.count("act") == 2 and names.count("recovered") == 2, names
    for s in steps:
        assert isinstance(s["time"], float) and s["time"] > 1.7e9
    decides = [s for s in steps if s["step"] == "decide"]
    assert [(d["culprit"], d["fault_type"]) for d in decides] == [("ray-worker-2", "cpu"), ("ray-worker-1", "memory")]
    acts = [s for s in steps if s["step"] == "act"]
    assert [(a["action"], a["target"], a["status"]) for a in acts] == [("restart", "ray-worker-2", "done"), ("restart", "ray-worker-1", "done")]
    # the restart killed the stressor living in the pod
    assert any(p["comm"].startswith("stress-ng") for p in acts[0]["detail"]["other_processes_killed"]), acts[0]["detail"]
    # the rules that fired name the culprit; the action recorded their values before and after it (right after
    # an action a 30 s rate window still holds the fault, so "after" is not yet lower); at recovery every one of
    # them is back under its threshold and under its value at the alert
    alerts = [s for s in steps if s["step"] == "alert"]
    rec = [s for s in steps if s["step"] == "recovered"]
    for al, act, r, culprit in zip(alerts, acts, rec, ("ray-worker-2", "ray-worker-1"), strict=True):
        assert any(key.endswith("@" + culprit) for key in al["signals"]), al
        assert r["time"] > act["time"] > al["time"]
        for key, fired in al["signals"].items():
            assert act["before"][key] is not None, (key, act)
            # "after" is read settle_s after the restart: the restarted culprit's new series may hold no request yet
            # (a per-request mean over no request has no value; a CI run under load met it), every other one has one
            assert act["after"][key] is not None or key.endswith("@" + culprit), (key, act)
            now = r["values"].get(key)  # absent: the series has no sample (a restarted replica gets no request for a while)
            assert now is None or (now <= fired["threshold"] and now < fired["value"]), (key, fired, now)
    assert any(ln.startswith("VERDICT") for ln in lines) and any(ln.startswith("could not see") for ln in lines)
    assert time.time() - t_start < 2 * (READY_S + FAULT_S) + 60  # bounded


def test_cli_watch_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": "src"}
    done = subprocess.run([sys.executable, "-m", "llmrca", "watch", "http://127.0.0.1:9", "--run-dir", str(tmp_path), "--duration", "1"],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "no --component given" in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "-m", "llmrca", "watch", "http://127.0.0.1:9", "-c", "a=pod=\"a\"", "--signals", "each:nope",
                           "--duration", "1"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and "each:nope" in done.stderr and "Traceback" not in done.stderr


def test_threads_left() -> None:
    assert not [t for t in threading.enumerate() if t.name == "llmrca-watch" and t.is_alive()]
