"""System tests of the local testbed: real processes, cgroups, nginx, Prometheus and real faults.

They need root (cgroups) and the Debian packages nginx, prometheus and
stress-ng; otherwise they are skipped with the reason.  Budget: a few minutes
(windows are shortened: 20 s normal, 10 s fault).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.local import cgroups as cgr

pytestmark = [pytest.mark.system, pytest.mark.slow]

from _localtestbed import require_local_testbed  # noqa: E402

require_local_testbed()

TARGET = "ray-worker-1"
PROTO = Timeline(normal_s=20.0, fault_s=10.0, tail_s=3.0, cooldown_s=0.0, warmup_s=5.0)


def _window(case, col: str, fault: bool) -> np.ndarray:
    df = case.metric_sets["extended"]
    if col not in df.columns:
        return np.array([])
    t = df["time"].to_numpy()
    end = case.fault.end
    m = (t >= case.inject_time) & (t < end) if fault else (t < case.inject_time)  # the undo starts at the end: its samples are not the fault
    v = df.loc[m, col].to_numpy(dtype=float)
    return v[np.isfinite(v)]


def _mean_duration_s(prom: str, pod: str, t0: float, t1: float) -> float:
    import httpx

    w = max(int(t1 - t0), 1)
    q = (f'increase(istio_request_duration_milliseconds_sum{{pod="{pod}"}}[{w}s]) / '
         f'increase(istio_request_duration_milliseconds_count{{pod="{pod}"}}[{w}s]) / 1000')
    r = httpx.get(prom + "/api/v1/query", params={"query": q, "time": t1}, timeout=10).json()
    return float(r["data"]["result"][0]["value"][1])


def _leftovers(run_id: str, groups: dict[str, int], run_dir: Path) -> list[str]:
    from llmrca.testbed.local.stack import leftovers

    return leftovers(run_id, groups, run_dir)


def test_four_real_faults_end_to_end(tmp_path: Path) -> None:
    from llmrca.testbed.local.backend import LocalBackend, LocalLoad
    from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig

    run_dir = tmp_path / "run"
    cfg = LocalTestbedConfig(workers=2, run_dir=str(run_dir), scrape_interval_s=1.0)
    tb = LocalTestbed.up(cfg)
    run_id, groups = tb.state.run_id, dict(tb.state.groups)
    cases = {}
    try:
        be = LocalBackend(testbed=tb, load=LocalLoad(qps=1.5, prompt_tokens=48, output_tokens=32, arrival="constant"))
        specs = [
            FaultSpec("cpu", TARGET, {}, duration_s=PROTO.fault_s),
            FaultSpec("memory", TARGET, {}, duration_s=PROTO.fault_s),
            FaultSpec("network", TARGET, {"latency_ms": 300.0, "jitter_ms": 30.0}, duration_s=PROTO.fault_s),
            FaultSpec("gpu", TARGET, {"power_limit_w": 150.0}, duration_s=PROTO.fault_s),
        ]
        for i, spec in enumerate(specs):
            cases[spec.type] = c = be.run_case(spec, seed=i, protocol=PROTO, start_time=0.0)
            if spec.type == "network":
                # mean request duration into the target (Istio's buckets are too coarse for a 300 ms shift of ~2 s streams)
                mesh_mean_s = [_mean_duration_s(tb.state.prometheus_url, TARGET, t0, t1)
                               for t0, t1 in ((c.inject_time - PROTO.normal_s, c.inject_time), (c.inject_time + 1, c.fault.end))]
        groups.update(tb.state.groups)
    finally:
        tb.down()
    # --- nothing left behind: processes, cgroups, namespaces, files
    assert _leftovers(run_id, groups, run_dir) == []
    assert not any(run_id in r for r in cgr.list_runs())

    for c in cases.values():
        c.validate()
        assert c.root_causes == {TARGET}
        assert c.logs is not None and len(c.logs) > 0
        assert c.traces is not None and len(c.traces) > 0
        assert c.meta["ttft"]["client_n"] > 0

    # CPU hog: the target's CPU rises towards its quota (0.4 cores) and the cgroup is throttled or near quota
    cpu = cases["cpu"]
    a = cpu.fault.achieved
    assert a["hog_cpu_s"] > 0.5, a
    base, hot = _window(cpu, f"{TARGET}_cpu", False), _window(cpu, f"{TARGET}_cpu", True)
    assert np.median(hot) > 2 * np.median(base), (base, hot)
    assert a["pod_cpu_share_of_quota"] >= 0.5 or a["throttled_s"] > 0.1, a

    # memory leak: the engine is killed and restarted; seen in the record, the metrics and the logs
    mem = cases["memory"]
    a = mem.fault.achieved
    assert a["held_bytes"] > 0.8 * a["requested_bytes"], a
    assert a["engine_restarts"] >= 1 and (a["oom_kills"] + a["memory_monitor_kills"]) >= 1, a
    starts = _window(mem, f"{TARGET}_ray_serve_deployment_replica_starts_total:rate", True)
    assert starts.size and starts.max() > 0, starts
    logs = mem.logs
    after = logs[(logs["time"] >= mem.inject_time) & logs["message"].str.contains("Starting replica")]
    assert len(after) >= 1

    # network delay: ≈ the configured latency added on the target's requests
    net = cases["network"]
    a = net.fault.achieved
    assert 240 <= a["sidecar_mean_delay_ms"] <= 360, a
    assert a["added_latency_ms"] >= 200, a
    added = mesh_mean_s[1] - mesh_mean_s[0]
    assert 0.2 <= added <= 0.8, mesh_mean_s

    # GPU throttling: power pinned at the cap, limit read back, utilisation not lower
    gpu = cases["gpu"]
    a = gpu.fault.achieved
    assert a["power_limit_w_read_back"] == 150.0, a
    assert a["power_w_max"] <= 150.0 + 1e-6 and a["samples"] > 5, a
    lim = _window(gpu, f"{TARGET}_DCGM_FI_DEV_POWER_MGMT_LIMIT", True)
    assert lim.size and np.any(lim == 150.0)
    # power at the rows whose scrape already read the cap (power and limit come from the same exporter scrape; a
    # query step just after the injection can still show the last scrape before it, Prometheus' lookback)
    df = gpu.metric_sets["extended"]
    t = df["time"].to_numpy()
    capped = (t >= gpu.inject_time) & (t < gpu.fault.end) & (df[f"{TARGET}_DCGM_FI_DEV_POWER_MGMT_LIMIT"].to_numpy() == 150.0)
    pw = df.loc[capped, f"{TARGET}_DCGM_FI_DEV_POWER_USAGE"].to_numpy(dtype=float)
    pw = pw[np.isfinite(pw)]
    assert pw.size and pw.max() <= 150.0 + 1e-6 and pw.max() >= 149.0, pw
    ub, uf = _window(gpu, f"{TARGET}_gpu", False), _window(gpu, f"{TARGET}_gpu", True)
    assert np.mean(uf) >= np.mean(ub) - 20, (ub, uf)


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from llmrca.faults import inject
    from llmrca.model import FaultSpec
    from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig
    tb = LocalTestbed.up(LocalTestbedConfig(workers=1, run_dir=sys.argv[1], scrape_interval_s=2.0))
    with inject(FaultSpec("cpu", "ray-worker-1", {}, duration_s=300), backend="local", testbed=tb):
        with inject(FaultSpec("network", "ray-worker-1", {"latency_ms": 100, "probes": 1}, duration_s=300), backend="local", testbed=tb):
            print("FAULTS-ON", flush=True)
            time.sleep(600)
    """
)


def test_run_killed_mid_fault_is_cleaned_by_down(tmp_path: Path) -> None:
    from llmrca.testbed.local.stack import State, down

    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    p = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, env=env, text=True)
    try:
        deadline = time.monotonic() + 150
        line = ""
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if "FAULTS-ON" in line or (not line and p.poll() is not None):
                break
        assert "FAULTS-ON" in line, f"run did not reach the fault: {line!r}, rc={p.poll()}"
        st = State.load(run_dir)
        assert st is not None and "fault/cpu/ray-worker-1" in st.groups
        assert (st.pod_dir("ray-worker-1") / "netem.json").exists()
    finally:
        os.killpg(p.pid, signal.SIGKILL)  # the crash: no handler, no atexit runs
        p.wait()
    st = State.load(run_dir)
    assert st is not None
    groups = dict(st.groups)
    hog = groups["fault/cpu/ray-worker-1"]
    os.killpg(hog, 0)  # the hog survived the crash (it runs in its own group)...
    counts = down(run_dir)  # ...and down removes it with everything else
    assert counts["cgroups"] >= 3
    assert _leftovers(st.run_id, groups, run_dir) == []
    assert not run_dir.exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


UP_RUN = textwrap.dedent(
    """
    import sys, time
    from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig
    tb = LocalTestbed.up(LocalTestbedConfig(workers=1, run_dir=sys.argv[1], scrape_interval_s=2.0))
    print("UP", flush=True)
    time.sleep(600)
    """
)


def _owner_up(run_dir: Path, env: dict[str, str]) -> subprocess.Popen:
    """A process that brings a one-worker testbed up in ``run_dir`` (its own session) and keeps it; returned once up
    (its first line 'UP'); the caller kills its group."""
    owner = subprocess.Popen([sys.executable, "-c", UP_RUN, str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             start_new_session=True, env=env, text=True)
    deadline = time.monotonic() + 150
    line = ""
    while time.monotonic() < deadline and "UP" not in line and (line or owner.poll() is None):
        line = owner.stdout.readline()
    if "UP" not in line:
        os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()
        pytest.fail(f"testbed did not come up: rc={owner.poll()}")
    return owner


def test_down_stops_a_running_inject_cli_which_removes_its_fault_first(tmp_path: Path) -> None:
    """``llmrca inject`` waits out its duration in its own process: ``down`` must stop it (SIGTERM: it removes
    its fault and prints what it achieved, as on Ctrl-C) before it removes the run."""
    from llmrca.testbed.local.stack import down

    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    owner = _owner_up(run_dir, env)
    inj = None
    try:
        inj = subprocess.Popen([sys.executable, "-m", "llmrca", "inject", "cpu", "--target", "ray-worker-1", "--duration", "300",
                                "--run-dir", str(run_dir)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True, env=env, text=True)
        seen = ""
        while "for 300 s" not in seen and (line := inj.stdout.readline()):
            seen += line
        assert "for 300 s" in seen, seen
        assert len(list((run_dir / "injectors").glob("*.json"))) == 1
        time.sleep(2.0)  # the hog runs a while (its CPU seconds are then more than a clock tick)
        st = subprocess.run([sys.executable, "-m", "llmrca", "testbed", "status", "--run-dir", str(run_dir)],
                            capture_output=True, text=True, timeout=60, env=env)
        assert "fault: cpu on ray-worker-1: its processes run" in st.stdout, st.stdout  # every pod 'healthy', nothing said
        counts = down(run_dir)
        assert counts.get("injectors") == 1, counts
        out = seen + inj.communicate(timeout=30)[0]
        assert inj.returncode == 143, out  # stopped before its duration by down's SIGTERM: said by the exit code too
        assert "interrupted: removing the fault" in out and '"achieved"' in out, out
        assert json.loads(out[out.index("{"):])["achieved"]["hog_cpu_s"] > 0, out  # read before the stressors were killed
        assert not run_dir.exists()
    finally:
        for p in (inj, owner):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_down_without_state_is_harmless(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.testbed.local.stack import down

    assert down(tmp_path / "nothing") == {"process_groups": 0, "processes": 0, "cgroups": 0, "netns": 0}
    r = CliRunner().invoke(app, ["testbed", "down", "--run-dir", str(tmp_path / "typo")])  # a typo was all zeros, nothing said
    assert r.exit_code == 0 and "no testbed found in" in r.output and "check --run-dir" in r.output, r.output
    r = CliRunner().invoke(app, ["inject", "cpu", "--target", "ray-worker-1", "--duration", "-5", "--run-dir", str(tmp_path / "typo")])
    assert r.exit_code == 2 and "--duration must be a positive number of seconds" in r.output, r.output  # a traceback after starting


def test_a_start_ended_by_sigterm_or_by_two_interrupts_cleans_up(tmp_path: Path) -> None:
    """`timeout N llmrca testbed up` (SIGTERM) left the whole stack running; a second Ctrl-C (or timeout forwarding
    the signal again) cut the cleanup short and left cgroups and state.json, so the next `up` refused."""
    from llmrca.testbed.local.stack import State

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    for how in ("term", "int-int"):
        run_dir = tmp_path / how
        p = subprocess.Popen([sys.executable, "-m", "llmrca", "testbed", "up", "--workers", "1", "--run-dir", str(run_dir)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, env=env, text=True)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not (run_dir / "state.json").exists():
                time.sleep(0.05)
            time.sleep(3.0)  # some pods started
            st = State.load(run_dir)
            assert st is not None and st.groups, how
            groups, run_id = dict(st.groups), st.run_id
            if how == "term":
                os.killpg(p.pid, signal.SIGTERM)
            else:
                os.killpg(p.pid, signal.SIGINT)
                time.sleep(0.02)
                os.killpg(p.pid, signal.SIGINT)
            out = p.communicate(timeout=60)[0]
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        assert "cleaning up what was started" in out, (how, out)
        assert p.returncode == (143 if how == "term" else 130), (how, p.returncode, out)  # was 1 ("Aborted!") for both
        assert _leftovers(run_id, groups, run_dir) == [], (how, out)


def test_sidecar_jitter_is_correlated(tmp_path: Path) -> None:
    from llmrca.testbed.local.sidecar import Netem

    ctl = tmp_path / "netem.json"
    ctl.write_text(json.dumps({"latency_ms": 1000, "jitter_ms": 100, "correlation": 0.9}))
    n = Netem(ctl, seed=1)
    n.reload()
    d = np.array([n.sample_s() for _ in range(2000)])
    assert abs(d.mean() - 1.0) < 0.02 and d.min() >= 0.9 - 1e-9 and d.max() <= 1.1 + 1e-9
    lag1 = np.corrcoef(d[:-1], d[1:])[0, 1]
    n2 = Netem(ctl, seed=1)
    ctl.write_text(json.dumps({"latency_ms": 1000, "jitter_ms": 100, "correlation": 0.0}))
    n2.reload()
    d2 = np.array([n2.sample_s() for _ in range(2000)])
    assert lag1 > 0.6 and abs(np.corrcoef(d2[:-1], d2[1:])[0, 1]) < 0.1


def test_down_all_leaves_another_testbed_that_runs(tmp_path: Path) -> None:
    """`testbed down --all` (meant for runs left behind by a crash) killed every process of another user's live
    testbed and left it half-dead; a run whose state and process groups are alive is left, and said."""
    from llmrca.testbed.local.stack import State, down

    run_dir = tmp_path / "live"
    owner = _owner_up(run_dir, {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    try:
        st = State.load(run_dir)
        counts = down(tmp_path / "other", all_runs=True)
        assert counts.get("live_runs_left") == 1 and counts["processes"] == 0, counts
        assert all(os.getpgid(g) == g for g in st.groups.values())  # every group of the live run still there
        counts = down(run_dir)
        assert counts["process_groups"] >= 1 and _leftovers(st.run_id, dict(st.groups), run_dir) == []
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()
        shutil.rmtree(tmp_path, ignore_errors=True)


def test_down_all_removes_a_run_whose_folder_is_gone_prometheus_included(tmp_path: Path) -> None:
    """Prometheus and the exporter run outside the run's cgroups and were found only through the run folder's
    state file: with the folder moved away, `down --all` killed the pods and left both running."""
    from llmrca.testbed.local.stack import RUNS_REGISTRY, State, down

    run_dir = tmp_path / "run"
    owner = _owner_up(run_dir, {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")})
    moved = tmp_path / "moved"
    try:
        st = State.load(run_dir)
        os.killpg(owner.pid, signal.SIGKILL)  # the owner crashes; the testbed's own groups stay
        owner.wait()
        run_dir.rename(moved)
        assert any(_alive_group(g) for g in st.groups.values())
        counts = down(run_dir, all_runs=True)
        assert counts["process_groups"] >= 1, counts
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive_group(g) for g in st.groups.values()):
            time.sleep(0.1)
        assert [n for n, g in st.groups.items() if _alive_group(g)] == [], st.groups  # prometheus, the exporter included
        assert not (RUNS_REGISTRY / f"{st.run_id}.json").exists()
    finally:
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()
        if moved.exists():
            down(moved)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _alive_group(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_a_campaign_over_a_leftover_testbed_says_how_to_remove_it(tmp_path: Path) -> None:
    """`campaign --resume` after a SIGKILLed local campaign printed a 64-line traceback ending in TestbedError."""
    from typer.testing import CliRunner

    from llmrca.cli import app

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "state.json").write_text(json.dumps({"run_id": "r1-1", "run_dir": str(run_dir), "cgroup_version": 2, "config": {}}))
    r = CliRunner().invoke(app, ["campaign", "--backend", "local", "--profile", "local", "--faults", "cpu", "--targets", "ray-worker-1",
                                 "--set", f"local.run_dir={run_dir}", "--out", str(tmp_path / "ds")], terminal_width=300)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"run `llmrca testbed down --run-dir {run_dir}` first" in " ".join(r.output.split()), r.output
