"""Fast checks of the local testbed's pieces that run without root or system packages."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrca.config import ConfigError
from llmrca.faults import FaultError, injector_class
from llmrca.model import FaultSpec
from llmrca.testbed.local import cgroups as cgr
from llmrca.testbed.local.backend import LocalBackend
from llmrca.testbed.local.nginx import write_config


def test_local_injectors_registered_with_paper_defaults() -> None:
    assert injector_class("local", "cpu").defaults["workers"] >= 1
    assert injector_class("local", "mem").fault_type == "memory"  # folder spelling maps to our fault type
    net = injector_class("local", "delay").defaults
    assert (net["latency_ms"], net["jitter_ms"], net["correlation"]) == (1000.0, 100.0, 0.25)
    assert injector_class("local", "gpu").defaults["power_limit_w"] == 150.0
    with pytest.raises(FaultError, match="no 'disk' injector"):
        injector_class("local", "disk")


def test_backend_checks_faults_before_running() -> None:
    be = LocalBackend()
    be.check_fault(FaultSpec("network", "ray-worker-2", {"latency_ms": 500}))
    with pytest.raises(ConfigError, match="unknown cpu fault parameter"):
        be.check_fault(FaultSpec("cpu", "ray-worker-1", {"cores": 3}))
    with pytest.raises(ConfigError, match="not a serving pod"):
        be.check_fault(FaultSpec("gpu", "nginx-gateway", {}))
    assert be.topology().entry == "nginx-gateway"


def test_nginx_config_streams_and_logs_upstream_timing(tmp_path: Path) -> None:
    conf = write_config(tmp_path, 18080, 18081).read_text()
    assert "listen 127.0.0.1:18080;" in conf and "server 127.0.0.1:18081;" in conf
    assert "proxy_buffering off;" in conf and "$upstream_response_time" in conf
    assert f"pid {tmp_path}/nginx.pid;" in conf
    assert "traceparent" in conf


def test_cgroup_detection_on_fake_trees(tmp_path: Path) -> None:
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert cgr.detect_version(v2) == 2
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "memory").mkdir()
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (v1 / "unified").mkdir()
    (v1 / "unified" / "cgroup.controllers").write_text("\n")  # v2 mount without cpu/memory, as on this machine
    assert cgr.detect_version(v1) == 1
    with pytest.raises(cgr.CgroupError, match="no usable cgroup hierarchy"):
        cgr.detect_version(tmp_path / "none")


def test_v2_paths_and_readings(tmp_path: Path) -> None:
    fs = tmp_path
    (fs / "cgroup.controllers").write_text("cpu memory\n")
    cg = cgr.PodCgroup("llmrca/r1/ray-worker-1", 2, fs)
    d = fs / "llmrca/r1/ray-worker-1"
    d.mkdir(parents=True)
    (d / "cpu.max").write_text("40000 100000\n")
    (d / "cpu.stat").write_text("usage_usec 2500000\nthrottled_usec 500000\n")
    (d / "memory.current").write_text(str(300 * 2**20))
    (d / "memory.max").write_text(str(384 * 2**20))
    (d / "memory.stat").write_text("inactive_file 1048576\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\n")
    assert cg.cpu_quota_cores() == pytest.approx(0.4)
    assert cg.cpu_usage_s() == pytest.approx(2.5) and cg.cpu_throttled_s() == pytest.approx(0.5)
    assert cg.memory_working_set_bytes() == 299 * 2**20
    assert cg.memory_failcnt() == 7 and cg.oom_kills() == 2
    assert [c.rel for c in cgr.run_cgroups("r1", 2, fs)] == ["llmrca/r1/ray-worker-1"]
