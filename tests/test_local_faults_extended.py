"""System tests of the six fault types beyond the paper's four on the local testbed (real processes, real Prometheus).

One small testbed (2 workers, background load of 1.5 requests/s through the
gateway) serves the whole module.  Each fault is injected into a worker and
its physical effect is compared with the same testbed without the fault
(a window measured just before), on the engine's ``/metrics``, the pod's
cgroup, the kernel's counters or Prometheus; then it is undone and the test
checks that nothing of it is left.  The last tests interrupt (SIGINT) and
kill (SIGKILL) ``llmrca inject`` mid-fault; the module's teardown brings the
testbed down and checks that no process, cgroup, cpuset, control file or
iptables rule is left.  Budget: about 4 minutes.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmrca.model import FaultSpec

pytestmark = [pytest.mark.system, pytest.mark.slow]

from _localtestbed import require_local_testbed  # noqa: E402

require_local_testbed()

TARGET = "ray-worker-1"
CONTROL_FILES = ("kv.json", "thermal.json", "xid.json", "model_load.json")
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def tb(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A 2-worker testbed under load for the whole module; torn down and checked for leftovers at the end."""
    from llmrca.load import LoadRunner
    from llmrca.testbed.local import cgroups as cgr
    from llmrca.testbed.local import netfilter as nf
    from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig, leftovers

    run_dir = tmp_path_factory.mktemp("xl") / "run"
    t = LocalTestbed.up(LocalTestbedConfig(workers=2, run_dir=str(run_dir), scrape_interval_s=1.0))
    run_id, groups = t.state.run_id, dict(t.state.groups)
    load = LoadRunner(t.state.gateway_url, qps=1.5, duration_s=900, prompt_tokens=48, output_tokens=32, model="llmrca/emulated-7b",
                      timeout_s=60.0, drain_s=0.0)
    load.start()
    time.sleep(5)
    try:
        yield t
    finally:
        load.stop(timeout=10)
        t.down()
        assert leftovers(run_id, groups, run_dir) == []
        assert nf.rule_lines(f"llmrca:{run_id}:") == [], "packet-loss rules left after down"
        assert not (cgr.CGROUP_FS / "cpuset" / cgr.PREFIX / run_id).exists(), "cpusets left after down"
        assert not (cgr.CGROUP_FS / "cpu" / cgr.PREFIX / run_id).exists()


def _inject(tb: Any, ftype: str, seconds: float, **params: Any) -> dict[str, Any]:
    from llmrca.faults import inject

    with inject(FaultSpec(ftype, TARGET, params, duration_s=seconds), backend="local", testbed=tb) as a:
        time.sleep(seconds)
    return a.record.achieved


def _engine(tb: Any, pod: str = TARGET) -> dict[str, float]:
    from llmrca.faults.local import engine_metrics

    return engine_metrics(tb.state.pods[pod]["admin"])


def _hist_mean(m0: dict[str, float], m1: dict[str, float], h: str) -> float:
    n = m1.get(h + "_count", 0.0) - m0.get(h + "_count", 0.0)
    assert n > 0, f"no {h} observations in the window"
    return (m1[h + "_sum"] - m0.get(h + "_sum", 0.0)) / n


def _prom(tb: Any, q: str, at: float | None = None) -> float | None:
    params = {"query": q} | ({"time": str(at)} if at is not None else {})
    r = httpx.get(tb.state.prometheus_url + "/api/v1/query", params=params, timeout=10).json()
    res = r["data"]["result"]
    return float(res[0]["value"][1]) if res else None


def _clean(tb: Any, pod: str = TARGET) -> list[str]:
    """What of a fault is left on ``pod``: control files, iptables rules, cpusets, neighbour cgroups, fault process groups."""
    from llmrca.testbed.local import cgroups as cgr
    from llmrca.testbed.local import netfilter as nf
    from llmrca.testbed.local.stack import State

    rid = tb.state.run_id
    d = tb.state.pod_dir(pod)
    left = [f"control file {f}" for f in CONTROL_FILES if (d / f).exists()]
    left += nf.rule_lines(nf.tag(rid, pod))
    left += [str(p) for p in (cgr.CGROUP_FS / "cpuset" / cgr.PREFIX / rid / pod, cgr.CGROUP_FS / "cpu" / cgr.PREFIX / rid / f"noisy-{pod}") if p.exists()]
    st = State.load(tb.state.run_dir)
    left += [g for g in (st.groups if st else {}) if g.startswith("fault/") and g.endswith(f"/{pod}")]
    for pid in tb.state.cgroup(pod).pids():
        cs = next((ln.split(":", 2)[2] for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if ":cpuset:" in ln), "/")
        if cs != "/":
            left.append(f"pid {pid} still pinned in cpuset {cs}")
    return left


def test_gpu_thermal_slows_steps_and_is_not_a_power_cap(tb: Any) -> None:
    m0 = _engine(tb)
    time.sleep(10)
    m1 = _engine(tb)
    itl_before = _hist_mean(m0, m1, "vllm:inter_token_latency_seconds")
    a = _inject(tb, "gpu-thermal", 10)
    m2 = _engine(tb)
    itl_during = _hist_mean(m1, m2, "vllm:inter_token_latency_seconds")
    assert a["sm_clock_mhz_min"] == 705.0 and a["sm_clock_mhz_before"] == 1410.0, a
    assert a["reasons_seen"] & 0x48 == 0x48 and not a["sw_power_cap_seen"], a
    assert a["power_w_max"] < 0.5 * a["power_limit_w"], a  # far below its limit: not a power cap
    assert a["temperature_c_mean"] == 92.0 and a["temperature_c_before"] < 92.0, a
    assert itl_during > 1.2 * itl_before, (itl_before, itl_during)  # steps slowed (decode: 45 % of a step runs at SM clock)
    # Prometheus scraped the clock-event reasons and the temperature of the target only
    assert _prom(tb, f'max_over_time(DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{{pod="{TARGET}"}}[15s])') == 0x48
    assert _prom(tb, f'max_over_time(DCGM_FI_DEV_GPU_TEMP{{pod="{TARGET}"}}[15s])') == 92.0
    assert (_prom(tb, 'max_over_time(DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{pod="ray-worker-2"}[15s])') or 0) & 0x48 == 0
    # the power cap reads differently: SW_POWER_CAP and no thermal bit
    cap = _inject(tb, "gpu", 6, power_limit_w=150.0)
    assert cap["sw_power_cap_seen"] and cap["power_w_max"] <= 150.0 + 1e-6, cap
    assert _clean(tb) == []


def test_kv_cache_pressure_fills_the_cache_preempts_and_queues(tb: Any) -> None:
    tb.wait_healthy(60)
    m0 = _engine(tb)
    time.sleep(8)
    m1 = _engine(tb)
    q_before = _hist_mean(m0, m1, "vllm:request_queue_time_seconds")
    a = _inject(tb, "kv-cache", 20)
    assert a["kv_tokens_read_back"] == 483 and a["kv_tokens_default"] == 4096, a  # gpu_memory_utilization 0.9 -> 0.25
    assert a["kv_usage_max"] >= 0.9 > 0.2 > a["kv_usage_before"], a
    assert a["preemptions"] >= 1 and a["waiting_max"] >= 2, a
    assert a["queue_time_mean_s_during"] > max(5 * q_before, 0.5), (q_before, a)
    assert a["long_requests_sent"] >= 5, a
    assert (_prom(tb, f'max_over_time(vllm:kv_cache_usage_perc{{pod="{TARGET}"}}[20s])') or 0) >= 0.85
    assert (_prom(tb, f'increase(vllm:num_preemptions_total{{pod="{TARGET}"}}[25s])') or 0) > 0
    assert _clean(tb) == []
    # the budget is back: the engine reads the default again
    assert httpx.get(tb.state.pods[TARGET]["admin"] + "/admin/gpu", timeout=5).json()["kv_tokens"] == 4096


def test_packet_loss_drops_real_packets_of_the_target_only(tb: Any) -> None:
    from llmrca.faults import inject
    from llmrca.testbed.local import netfilter as nf

    tb.wait_healthy(60)
    with inject(FaultSpec("packet-loss", TARGET, {"loss_pct": 20.0, "probes": 15}, duration_s=12), backend="local", testbed=tb) as act:
        time.sleep(12)
    rec = act.record
    a = rec.achieved
    # the probes made while the fault is on end with it: the rules stay 12 s, not until 15 slow probes are done
    assert rec.end - rec.start <= 12 + 2.5, (rec.start, rec.end)
    assert a["packets_dropped"] > 10 and 0.1 <= a["loss_ratio"] <= 0.3, a  # the kernel dropped ~20 % of the pod's packets
    assert a["tcp_retransmits_node"] > 0, a
    assert a["probe_ms_p90_during"] > a["probe_ms_p90_before"] + 150, a  # a lost segment costs >= 200 ms RTO
    other = tb.state.pods["ray-worker-2"]["ports"]["api"]
    assert other not in a["ports"]
    assert nf.rule_lines(f"llmrca:{tb.state.run_id}:") == []
    assert _clean(tb) == []


def test_a_second_network_delay_on_the_same_pod_is_refused_and_the_first_stays(tb: Any) -> None:
    """Two delays on one pod shared one control file: the second overwrote the first's and removed it when it
    ended, so the first fault ended early while both reported success."""
    from llmrca.faults import inject
    from llmrca.testbed.injection import FaultError

    tb.wait_healthy(60)
    ctl = tb.state.pod_dir(TARGET) / "netem.json"
    spec = FaultSpec("network", TARGET, {"latency_ms": 200.0, "jitter_ms": 0.0, "probes": 1}, duration_s=8)
    with inject(spec, backend="local", testbed=tb):
        first = ctl.read_text()
        with pytest.raises(FaultError, match="already in place"), inject(spec, backend="local", testbed=tb):
            pass
        assert ctl.read_text() == first  # the first delay is untouched
        time.sleep(2)
    assert not ctl.exists() and _clean(tb) == []


def test_status_lists_a_killed_injectors_fault_only_while_it_can_be_on(tb: Any) -> None:
    """A record of a killed `llmrca inject` was warned about forever; now only until its fault expires (and the
    record goes then); packet-loss rules in force are named."""
    import json

    from llmrca.faults import inject
    from llmrca.testbed.local.stack import INJECTORS, proc_start_ticks

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    start = proc_start_ticks(gone.pid)
    gone.wait()
    d = Path(tb.state.run_dir) / INJECTORS
    d.mkdir(parents=True, exist_ok=True)
    old, new = d / "900001.json", d / "900002.json"
    old.write_text(json.dumps({"pid": gone.pid, "start": start or 1, "expires_at": time.time() - 5}))
    new.write_text(json.dumps({"pid": gone.pid, "start": start or 1, "expires_at": time.time() + 120}))
    said = tb.faults()
    assert sum("is gone without removing its fault" in x for x in said) == 1, said
    assert any("s more at most" in x for x in said) and not old.exists() and new.exists()
    new.unlink()
    with inject(FaultSpec("packet-loss", TARGET, {"loss_pct": 5.0, "probes": 1}, duration_s=3), backend="local", testbed=tb):
        assert any(x.startswith(f"{TARGET}: packet-loss rules (iptables) in force") for x in tb.faults()), tb.faults()
        time.sleep(3)
    assert not any("packet-loss" in x for x in tb.faults())
    # a control file in force is said with its fault's planned end, not only the safety expiry 30 s beyond it
    with inject(FaultSpec("gpu", TARGET, {}, duration_s=20), backend="local", testbed=tb):
        said = [x for x in tb.faults() if "gpu.json" in x]
        m = re.search(r"planned to end in (\d+) s \(the file expires by itself in (\d+) s\)", said[0]) if len(said) == 1 else None
        assert m and 10 <= int(m[1]) <= 20 and int(m[2]) - int(m[1]) in (29, 30, 31), said
        ctl = tb.state.pod_dir(TARGET) / "gpu.json"
        d = json.loads(ctl.read_text())
        ctl.write_text(json.dumps({**d, "ends_at": time.time() - 4}))  # as if its injector were late or killed
        assert any("past its planned end" in x for x in tb.faults() if "gpu.json" in x), tb.faults()
        ctl.write_text(json.dumps(d))


def test_packet_loss_cut_short_reports_its_counters_and_expired_rules_do_not_block(tb: Any) -> None:
    """Ctrl-C removed the rules before they were read (0 packets seen, 0 dropped); rules a killed injector left
    behind, expired, refused every later packet loss on the pod."""
    from llmrca.faults import inject
    from llmrca.testbed.local import netfilter as nf

    tb.wait_healthy(60)
    marker = nf.tag(tb.state.run_id, TARGET)
    ports = sorted(int(v) for k, v in tb.state.pods[TARGET]["ports"].items() if k in nf.PUBLIC_PORTS)
    nf.add_rules(*nf.loss_rules(ports, 0.1, marker, time.time() - 60))  # expired: they match nothing any more
    assert nf.rule_lines(marker) and not nf.live_rule_lines(marker)
    act = None
    with pytest.raises(KeyboardInterrupt):
        with inject(FaultSpec("packet-loss", TARGET, {"loss_pct": 30.0, "probes": 5}, duration_s=30), backend="local", testbed=tb) as act:
            time.sleep(6)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the handler removes the fault first
            time.sleep(5)
    a = act.record.achieved
    assert a["packets_seen"] > 0 and a["packets_dropped"] > 0, a  # read before the rules went
    assert act.record.end - act.record.start < 15
    assert nf.rule_lines(marker) == [] and _clean(tb) == []


def test_a_second_model_load_is_refused_at_once(tb: Any) -> None:
    import json

    from llmrca.faults import inject
    from llmrca.testbed.injection import FaultError

    tb.wait_healthy(60)
    ctl = tb.state.pod_dir(TARGET) / "model_load.json"
    ctl.write_text(json.dumps({"load_s": 1.0, "fault": "gpu-error", "expires_at": time.time() + 30}))
    try:
        t0 = time.monotonic()
        with pytest.raises(FaultError, match="a gpu-error fault on ray-worker-1 is already in place"):
            with inject(FaultSpec("model-load", TARGET, {"load_s": 5.0}, duration_s=5), backend="local", testbed=tb):
                pass
        assert time.monotonic() - t0 < 5  # said at once, not after waiting for the engine
    finally:
        ctl.unlink(missing_ok=True)
    tb.wait_healthy(60)


def test_noisy_neighbour_contends_without_raising_the_pods_cpu(tb: Any) -> None:
    from llmrca.faults.noisy_neighbour import task_wait_s

    tb.wait_healthy(60)
    cg = tb.state.cgroup(TARGET)
    m0, w0, c0, t0 = _engine(tb), task_wait_s(cg.pids()), cg.cpu_usage_s(), time.monotonic()
    time.sleep(10)
    m1, w1, c1, t1 = _engine(tb), task_wait_s(cg.pids()), cg.cpu_usage_s(), time.monotonic()
    wait_before, cpu_before = (w1 - w0) / (t1 - t0), (c1 - c0) / (t1 - t0)
    e2e_before = _hist_mean(m0, m1, "vllm:e2e_request_latency_seconds")
    tb_end = time.time()
    a = _inject(tb, "noisy-neighbour", 15)
    tf_end = time.time()
    m2 = _engine(tb)
    time.sleep(2)  # one more scrape
    psi = f'increase(container_pressure_cpu_waiting_seconds_total{{pod="{TARGET}"}}[10s])'
    psi_before, psi_during = _prom(tb, psi, tb_end), _prom(tb, psi, tf_end)
    assert psi_before is not None and psi_during is not None and psi_during > 2 * psi_before + 0.5, (psi_before, psi_during)
    e2e_during = _hist_mean(m1, m2, "vllm:e2e_request_latency_seconds")
    assert a["pod_wait_per_s_during"] > 3 * max(wait_before, 0.01), (wait_before, a)  # the pod waits for its CPU
    assert a["pod_cpu_cores_during"] <= cpu_before * 1.5 + 0.05, (cpu_before, a)  # its own usage does not rise
    assert a["neighbour_cpu_s"] > 0.3 * a["window_s"], a  # the neighbour ran (not charged to the pod)
    assert e2e_during > e2e_before, (e2e_before, e2e_during)
    assert _clean(tb) == []


def test_slow_model_load_leaves_the_replica_unready_while_others_serve(tb: Any) -> None:
    tb.wait_healthy(60)
    a = _inject(tb, "model-load", 12, load_s=90.0)
    assert a["replica_starts"] == 1 and a["killed_pid"], a
    assert a["unready_s"] >= 8, a  # unready until the fault ended the 90 s load
    assert a["others_requests_finished"] > 5, a
    log = (tb.state.pod_dir(TARGET) / f"{TARGET}.log").read_text()
    assert "Loading safetensors checkpoint shards" in log
    assert _clean(tb) == []
    tb.wait_healthy(30)  # the load ends with the fault


def test_xid_error_kills_restarts_and_reloads(tb: Any) -> None:
    tb.wait_healthy(60)
    a = _inject(tb, "gpu-error", 16, xid=79, reload_s=6.0)
    assert a["replica_starts"] == 1 and a["nvrm_xid_logged"] and a["engine_dead_logged"], a
    assert 5 <= a["unready_s"] <= 14, a  # restart delay + the 6 s reload
    assert a["xid_read_back"] == 79, a  # the restarted engine exports the last Xid
    assert a["others_requests_finished"] > 5, a
    assert _prom(tb, f'max_over_time(DCGM_FI_DEV_XID_ERRORS{{pod="{TARGET}"}}[10s])') == 79
    assert _prom(tb, f'increase(ray_serve_deployment_replica_starts_total{{pod="{TARGET}"}}[30s])') > 0
    assert _clean(tb) == []
    tb.wait_healthy(30)
    # the engine polls its control files: after undo its last Xid reads 0 within a few polls
    deadline = time.time() + 15.0
    while (xid := httpx.get(tb.state.pods[TARGET]["admin"] + "/admin/gpu", timeout=5).json()["xid"]) != 0 and time.time() < deadline:
        time.sleep(0.5)
    assert xid == 0


def _cli_inject(tb: Any, ftype: str, pod: str, *sets: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, "-m", "llmrca", "inject", ftype, "--target", pod, "--duration", "120", "--run-dir", tb.state.run_dir]
    for s in sets:
        args += ["--set", s]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _applied(tb: Any, ftype: str, pod: str) -> bool:
    from llmrca.testbed.local import netfilter as nf

    d = tb.state.pod_dir(pod)
    return {
        "kv-cache": lambda: (d / "kv.json").exists(),
        "gpu-thermal": lambda: (d / "thermal.json").exists(),
        "gpu-error": lambda: (d / "xid.json").exists(),
        "model-load": lambda: (d / "model_load.json").exists(),
        "packet-loss": lambda: bool(nf.rule_lines(nf.tag(tb.state.run_id, pod))),
        "noisy-neighbour": lambda: any(g == f"fault/noisy-neighbour/{pod}" for g in (tb.attach(tb.state.run_dir).state.groups)),
    }[ftype]()


@pytest.mark.parametrize("ftype", ["kv-cache", "gpu-thermal", "gpu-error", "model-load", "packet-loss", "noisy-neighbour"])
def test_ctrl_c_mid_fault_leaves_nothing(tb: Any, ftype: str) -> None:
    pod = "ray-worker-2"
    tb.wait_healthy(60)
    p = _cli_inject(tb, ftype, pod, *(["reload_s=2"] if ftype == "gpu-error" else []))
    deadline = time.monotonic() + 30
    while not _applied(tb, ftype, pod):
        assert p.poll() is None, p.stdout.read().decode() if p.stdout else ""
        assert time.monotonic() < deadline, f"{ftype} was not applied within 30 s"
        time.sleep(0.2)
    time.sleep(3.0)
    os.kill(p.pid, signal.SIGINT)
    out = p.communicate(timeout=60)[0].decode()
    assert p.returncode == 130, out  # ended early by Ctrl-C: said by the exit code (it was 0)
    assert '"achieved"' in out, out
    assert _clean(tb, pod) == [], out


def test_sigkilled_injector_is_cleaned_by_down_or_expiry(tb: Any) -> None:
    """A crashed ``llmrca inject`` (SIGKILL: no handler runs) leaves rules and a pinned pod; they expire, and down removes them."""
    from llmrca.testbed.local import netfilter as nf

    pod = "ray-worker-2"
    tb.wait_healthy(60)
    procs = [_cli_inject(tb, "packet-loss", pod), _cli_inject(tb, "noisy-neighbour", pod)]
    deadline = time.monotonic() + 40
    while not (_applied(tb, "packet-loss", pod) and _applied(tb, "noisy-neighbour", pod)):
        assert time.monotonic() < deadline, "faults not applied within 40 s"
        time.sleep(0.2)
    for p in procs:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    lines = nf.rule_lines(nf.tag(tb.state.run_id, pod))
    assert len(lines) == 2 and all("--datestop" in ln for ln in lines), lines  # left behind, but with an expiry
    assert _clean(tb, pod) != []  # the module's teardown (down) must remove all of it
