"""Fast checks of the six new local faults' building blocks: parameter validation, the emulated GPU's slowdown, vLLM-style preemption, iptables rules."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import pytest

from llmrca.faults.gpu_error import LocalGpuXidError
from llmrca.faults.gpu_thermal import LocalGpuThermal
from llmrca.faults.kvcache import LocalKvCachePressure, kv_budget_tokens
from llmrca.faults.model_load import LocalSlowModelLoad
from llmrca.faults.noisy_neighbour import LocalNoisyNeighbour, parse_cpus
from llmrca.faults.packet_loss import LocalPacketLoss
from llmrca.model import EXTRA_FAULT_TYPES
from llmrca.testbed.injection import injector_class
from llmrca.testbed.local import netfilter as nf
from llmrca.testbed.local.engine import EmulatedGpu, Engine, Req

CLASSES = [LocalKvCachePressure, LocalGpuThermal, LocalGpuXidError, LocalSlowModelLoad, LocalPacketLoss, LocalNoisyNeighbour]


def test_every_new_type_has_a_local_injector() -> None:
    assert {injector_class("local", t) for t in EXTRA_FAULT_TYPES} == set(CLASSES)
    assert [c.fault_type for c in CLASSES] == list(EXTRA_FAULT_TYPES)


@pytest.mark.parametrize("cls", CLASSES)
def test_defaults_are_valid(cls: type) -> None:
    assert cls.problems(dict(cls.defaults)) == []


@pytest.mark.parametrize(("cls", "bad", "words"), [
    (LocalKvCachePressure, {"gpu_memory_utilization": 0.95}, "(0, 0.9]"),
    (LocalKvCachePressure, {"gpu_memory_utilization": 0.15}, "no room for the KV cache"),
    (LocalKvCachePressure, {"long_qps": -1}, "long_qps"),
    (LocalGpuThermal, {"reasons": 0x4}, "power cap 0x4 is the 'gpu' fault"),
    (LocalGpuThermal, {"sm_clock_mhz": 2000}, "(0, 1410)"),
    (LocalGpuXidError, {"xid": 31}, "use one of [48, 79, 94, 95]"),
    (LocalSlowModelLoad, {"load_s": 0}, "load_s=0"),
    (LocalPacketLoss, {"loss_pct": 150}, "(0, 100]"),
    (LocalNoisyNeighbour, {"cpus": "a-b"}, "CPU ids"),
    (LocalNoisyNeighbour, {"cpus": "4096"}, "not a subset"),
    (LocalNoisyNeighbour, {"workers": 0}, "workers"),
])
def test_bad_parameters_are_named(cls: type, bad: dict, words: str) -> None:
    msgs = cls.problems({**cls.defaults, **bad})
    assert msgs and any(words in m for m in msgs), msgs


def test_kv_budget_follows_gpu_memory_utilization() -> None:
    assert kv_budget_tokens(4096, 0.9) == 4096
    assert kv_budget_tokens(4096, 0.25) == 483  # 7.5 GB of 63 GB of KV space left beside 14 GB of weights
    assert kv_budget_tokens(4096, 0.15) == 0


def test_parse_cpus() -> None:
    assert parse_cpus("1") == [1] and parse_cpus("0-2") == [0, 1, 2] and parse_cpus("3, 1") == [1, 3] and parse_cpus("") == []


def test_thermal_slowdown_is_not_a_power_cap() -> None:
    g = EmulatedGpu()
    assert g.throttle_reasons(1.0) == 0 and g.sm_clock_mhz(1.0) == 1410.0
    g.thermal_clock_mhz, g.thermal_reasons, g.thermal_temp_c = 705.0, 0x48, 92.0
    assert g.sm_clock_mhz(1.0) == 705.0 and g.throttle_reasons(1.0) == 0x48
    assert g.slowdown(1.0) == pytest.approx(2.0)
    assert g.power_w(1.0) < 0.4 * g.power_limit_w  # the draw falls with the clock: far from the limit
    assert g.temperature_c(1.0) == 92.0
    g.thermal_clock_mhz, g.thermal_reasons, g.thermal_temp_c = None, 0, None
    g.set_power_limit(150.0)
    assert g.throttle_reasons(1.0) == 0x4 and g.power_w(1.0) == pytest.approx(150.0, abs=1.0)
    assert g.temperature_c(1.0) == pytest.approx(30 + 0.17 * g.power_w(1.0), abs=0.1)


def _engine(tmp_path: Path, kv_tokens: int) -> Engine:
    a = argparse.Namespace(pod="p", dir=str(tmp_path), time_scale=0.01, max_num_seqs=8, kv_tokens=kv_tokens, cpu_per_token_ms=0.0,
                           cpu_per_step_ms=0.0, host_mem_mib=0)
    return Engine(a)


async def _serve(e: Engine, reqs: list[Req], timeout_s: float = 20.0) -> list[int]:
    for r in reqs:
        e.waiting.append(r)
    loop = asyncio.create_task(e.loop())
    e.wake.set()
    counts = []
    try:
        for r in reqs:
            n = 0
            deadline = time.monotonic() + timeout_s
            while True:
                _, done = await asyncio.wait_for(r.out.get(), max(deadline - time.monotonic(), 0.01))
                n += 1
                if done:
                    break
            counts.append(n)
    finally:
        loop.cancel()
    return counts


def test_engine_preempts_by_recompute_and_every_request_still_gets_all_its_tokens(tmp_path: Path) -> None:
    e = _engine(tmp_path, kv_tokens=100)
    reqs = [Req(f"r{i}", 40, 40, time.time(), "") for i in range(3)]
    counts = asyncio.run(_serve(e, reqs))
    assert counts == [40, 40, 40]  # no token lost or repeated across preemptions
    assert e.n_preempt >= 1  # two 40-token prompts fit (80 <= 100) but not their growth to 160
    assert e.c_pre.labels(*e.lv)._value.get() == e.n_preempt
    assert "PreemptionMode.RECOMPUTE" in (tmp_path / "p.log").read_text()


def test_engine_without_pressure_never_preempts(tmp_path: Path) -> None:
    e = _engine(tmp_path, kv_tokens=4096)
    counts = asyncio.run(_serve(e, [Req(f"r{i}", 48, 32, time.time(), "") for i in range(6)]))
    assert counts == [32] * 6 and e.n_preempt == 0


def test_engine_reads_the_fault_control_files(tmp_path: Path) -> None:
    e = _engine(tmp_path, kv_tokens=4096)
    exp = time.time() + 60
    (tmp_path / "kv.json").write_text(json.dumps({"kv_tokens": 483, "expires_at": exp}))
    (tmp_path / "thermal.json").write_text(json.dumps({"sm_clock_mhz": 705.0, "temperature_c": 92.0, "reasons": 0x48, "expires_at": exp}))
    (tmp_path / "xid.json").write_text(json.dumps({"xid": 79, "at": e.started_at - 1, "expires_at": exp}))  # older than the engine: no death
    e._poll_fault_files()
    assert e.kv_tokens == 483 and e.gpu.sm_clock_mhz() == 705.0 and e.xid == 79
    # an expired file is dropped (the injector vanished) and the defaults come back
    (tmp_path / "kv.json").write_text(json.dumps({"kv_tokens": 483, "expires_at": time.time() - 1}))
    for f in ("thermal.json", "xid.json"):
        (tmp_path / f).unlink()
    e._poll_fault_files()
    assert e.kv_tokens == 4096 and e.gpu.sm_clock_mhz() == 1410.0 and e.xid == 0
    assert not (tmp_path / "kv.json").exists()


def test_model_load_waits_for_the_file_or_its_time(tmp_path: Path) -> None:
    e = _engine(tmp_path, kv_tokens=4096)
    assert asyncio.run(e.load_model()) < 0.5  # no file: instant
    (tmp_path / "model_load.json").write_text(json.dumps({"load_s": 1.0, "expires_at": time.time() + 60}))
    assert 1.0 <= asyncio.run(e.load_model()) < 2.0
    assert "Model loading took" in (tmp_path / "p.log").read_text()


def test_loss_rules_are_tagged_and_expire() -> None:
    count, drop = nf.loss_rules([8001, 8002], 0.2, nf.tag("r1", "ray-worker-1"), 0.0)
    assert count == drop[: len(count)]
    assert "8001,8002" in count and "llmrca:r1:ray-worker-1:packet-loss" in count
    assert count[count.index("--datestop") + 1] == "1970-01-01T00:00:00"
    assert drop[-2:] == ["-j", "DROP"] and "0.200000" in drop
    with pytest.raises(nf.NetfilterError):
        nf.loss_rules([], 0.2, "x", 0.0)
    with pytest.raises(nf.NetfilterError):
        nf.loss_rules([1], 1.5, "x", 0.0)


def test_wait_counter_is_a_counter() -> None:
    import os

    from llmrca.testbed.local.cadvisor import WaitCounter

    w = WaitCounter()
    a = w.read([os.getpid()])
    sum(i * i for i in range(200_000))
    b = w.read([os.getpid()])
    assert b >= a >= 0
    assert w.read([]) == b  # the processes left: the counter keeps what they waited


def test_local_gpu_power_limit_outside_the_emulated_range_is_refused_before_anything_runs() -> None:
    """It failed only after a testbed had started (inject: 5 s; a campaign: 84 s), when the limit did not read back."""
    from llmrca.faults.gpu import LocalGpuPowerCap
    from llmrca.testbed.gpu import GpuModel

    g = GpuModel().gpu
    assert LocalGpuPowerCap.problems({"power_limit_w": 150.0}) == []
    said = LocalGpuPowerCap.problems({"power_limit_w": 5000.0})
    assert said and f"range {g.min_power_limit_w:g}..{g.max_power_limit_w:g} W" in said[0], said
    assert LocalGpuPowerCap.problems({"power_limit_w": "x"})


def test_local_network_delay_parameters_are_range_checked() -> None:
    from llmrca.faults.network import LocalNetworkDelay

    ok = {"latency_ms": 300.0, "jitter_ms": 30.0, "correlation": 0.25, "probes": 3}
    assert LocalNetworkDelay.problems(ok) == []
    assert LocalNetworkDelay.problems({**ok, "latency_ms": -500}) == ["latency_ms and jitter_ms must be >= 0"]
    assert "correlation must be in 0..1" in LocalNetworkDelay.problems({**ok, "correlation": 2})[0]
    assert LocalNetworkDelay.problems({**ok, "probes": 0}) == ["probes must be in 1..200"]
    assert "must be numbers" in LocalNetworkDelay.problems({**ok, "latency_ms": "x"})[0]
