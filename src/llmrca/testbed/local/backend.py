"""The local testbed as a campaign backend (:class:`llmrca.testbed.base.Backend`).

One case on the real stack: open-loop load through the gateway (the load
generator of :mod:`llmrca.load`), a warm-up, the normal window, a real fault
(:mod:`llmrca.faults`, the ``Local...`` classes), a tail; then the case is collected from the
real Prometheus, the pods' log files and span files (:mod:`llmrca.collect`),
and the testbed cools down until every pod is healthy again.  Times are the
wall clock: ``start_time`` from the campaign (a synthetic clock for the
simulator) is ignored and the real injection time is recorded.

The case's ``meta["ttft"]`` holds both first-token latencies of the normal
window: the load generator's (client side: gateway, router, queueing in the
engine, prefill, network) and the engines' ``vllm:time_to_first_token_seconds``
(server side: from scheduling to the first token, so without queueing).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from llmrca.config import Config
from llmrca.model import NO_FAULT, Case, FaultSpec, Topology
from llmrca.telemetry import worker_name
from llmrca.testbed.base import Backend, Timeline
from llmrca.testbed.injection import inject_or_wait, injector_class
from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig, TestbedError
from llmrca.testbed.topology import paper_topology

#: The compressed protocol of the ``local`` profile (the paper: 285 s / 60 s / 15 s).
LOCAL_PROTOCOL = Timeline(normal_s=60.0, fault_s=20.0, tail_s=10.0, cooldown_s=5.0, warmup_s=10.0)


@dataclass
class LocalLoad(Config):
    """Load of the local profile, scaled from the paper's 5 QPS × (512 prompt, 256 output) tokens."""

    qps: float = 1.0
    prompt_tokens: int = 64
    output_tokens: int = 48
    arrival: str = "poisson"
    timeout_s: float = 60.0


class LocalBackend(Backend):
    """The local testbed (real processes in cgroups, real Prometheus) as a campaign backend; started on first use unless ``testbed`` is given."""
    name = "local"

    def __init__(
        self,
        config: LocalTestbedConfig | None = None,
        load: LocalLoad | None = None,
        testbed: LocalTestbed | None = None,
        progress: Callable[[str], None] | None = None,
        healthy_timeout_s: float = 120.0,
    ) -> None:
        self.config = config or (testbed.config if testbed else LocalTestbedConfig())
        self.load = load or LocalLoad()
        self._tb = testbed
        self._owned = testbed is None
        self.say = progress or (lambda m: None)
        self.healthy_timeout_s = healthy_timeout_s

    @classmethod
    def from_options(
        cls, *, workers: int | None, qps: float | None, scrape_interval_s: float | None, params: Mapping[str, Any] | None = None
    ) -> LocalBackend:
        """:func:`make_local_backend` (raises TestbedError on a bad option)."""
        return make_local_backend(workers=workers, qps=qps, scrape_interval_s=scrape_interval_s, params=dict(params or {}))

    @property
    def testbed(self) -> LocalTestbed:
        """The running testbed (brought up on first access; raises TestbedError when it cannot start)."""
        if self._tb is None:
            self._tb = LocalTestbed.up(self.config, progress=self.say)
        return self._tb

    def topology(self) -> Topology:
        """gateway -> head -> workers, plus the operator."""
        return paper_topology(self.config.workers)

    def workers(self) -> list[str]:
        """``ray-worker-1..n``."""
        return [worker_name(i) for i in range(1, self.config.workers + 1)]

    def describe(self) -> dict[str, Any]:
        """``{"local": testbed config, "load": load config}`` for the manifest."""
        return {"local": self.config.to_dict(), "load": self.load.to_dict()}

    def check_fault(self, spec: FaultSpec) -> None:
        """Raise ConfigError for an unknown parameter or a target that is not a serving pod (FaultError for an unknown type). A healthy spec (type ``none``) passes."""
        if spec.type == NO_FAULT:
            return
        from llmrca.config import ConfigError

        cls = injector_class("local", spec.type)
        known = cls.defaults
        bad = sorted(set(spec.params) - set(known))
        if bad:
            raise ConfigError(f"unknown {spec.type} fault parameter(s) {bad}; known: {sorted(known)}")
        problems = getattr(cls, "problems", None)  # range checks of the fault types that have them
        if problems is not None and (msgs := problems({**known, **dict(spec.params)})):
            raise ConfigError(f"{spec.type} fault: {'; '.join(msgs)}")
        if spec.target not in self.workers() and spec.target != "ray-head":
            raise ConfigError(f"fault target {spec.target!r} is not a serving pod ({', '.join(['ray-head', *self.workers()])})")

    def run_case(self, fault: FaultSpec, *, seed: int, protocol: Timeline, start_time: float) -> Case:
        """One case on the real stack on the wall clock (``start_time`` is ignored); raises TestbedError or FaultError when the stack or the fault fails."""
        from llmrca.collect import collect_case
        from llmrca.load import LoadRunner

        tb = self.testbed
        tb.wait_healthy(self.healthy_timeout_s)  # cooldown: the previous fault's effects are gone
        p = protocol
        total = p.warmup_s + p.normal_s + p.fault_s + p.tail_s
        runner = LoadRunner(tb.state.gateway_url, qps=self.load.qps, duration_s=total, arrival=self.load.arrival,
                            prompt_tokens=self.load.prompt_tokens, output_tokens=self.load.output_tokens, seed=seed % 2**31,
                            model="llmrca/emulated-7b", timeout_s=self.load.timeout_s, drain_s=0.0)
        runner.start()
        try:
            time.sleep(p.warmup_s)
            t_start = time.time()
            time.sleep(p.normal_s)
            with inject_or_wait(fault, backend="local", testbed=tb) as active:
                inject_time = time.time()
                time.sleep(fault.duration_s)
            time.sleep(p.tail_s)
            t_end = time.time()
        finally:
            report = runner.stop()
        time.sleep(2 * self.config.scrape_interval_s)  # let the last scrapes land
        st = tb.state
        comps = {pod: f'pod="{pod}"' for pod in st.pods}
        ttft = self._ttft(report, t_start, inject_time)
        s = report.summary
        case = collect_case(
            st.prometheus_url,
            comps,
            t_start,
            t_end,
            inject_time,
            active.record,
            self.topology(),
            step_s=self.config.scrape_interval_s,
            log_files={pod: str(st.pod_dir(pod) / f"{pod}.log") for pod in st.pods},
            span_files=[str(st.pod_dir(pod) / "spans.jsonl") for pod in st.pods],
            meta={
                "backend": self.name,
                "seed": int(seed),
                "protocol": p.to_dict(),
                "requests": {"requests": s["n_sent"], "ok": s["n_ok"], "failed": s["n_error"], "cancelled": s["n_cancelled"]},
                "load": self.load.to_dict(),
                "ttft": ttft,
                "testbed": {"run_id": st.run_id, "cgroup_version": st.cgroup_version},
            },
            name="healthy" if fault.type == NO_FAULT else f"{fault.target}_{fault.type}",
            scrape_interval_s=self.config.scrape_interval_s,
            rate_window_s=max(4 * self.config.scrape_interval_s, 4.0),
        )
        self.say(f"case {case.name}: achieved {dict(active.record.achieved)}")
        time.sleep(p.cooldown_s)
        return case

    def _ttft(self, report: Any, t0: float, t1: float) -> dict[str, Any]:
        """Client-side and server-side TTFT of the normal window ``[t0, t1)``."""
        df = report.records
        ok = df[(df["status"] == "ok") & (df["start_time"] >= t0) & (df["start_time"] < t1)]
        client = ok["ttft_s"].to_numpy(dtype=float)
        out: dict[str, Any] = {
            "client_p50_s": float(np.median(client)) if client.size else None,
            "client_p90_s": float(np.quantile(client, 0.9)) if client.size else None,
            "client_n": int(client.size),
        }
        w = max(int(t1 - t0), 1)
        for q in (0.5, 0.9):
            query = f"histogram_quantile({q}, sum by (le) (increase(vllm:time_to_first_token_seconds_bucket[{w}s])))"
            try:
                r = httpx.get(self.testbed.state.prometheus_url + "/api/v1/query", params={"query": query, "time": t1}, timeout=10).json()
                v = float(r["data"]["result"][0]["value"][1]) if r["data"]["result"] else float("nan")
            except (httpx.HTTPError, KeyError, ValueError, IndexError):
                v = float("nan")
            out[f"server_p{int(q * 100)}_s"] = v if math.isfinite(v) else None
        out["note"] = "client TTFT includes gateway, router, sidecars and engine queueing; server TTFT (vLLM) counts from scheduling"
        return out

    def close(self) -> None:
        """Stop the testbed if this backend started it."""
        if self._owned and self._tb is not None:
            self._tb.down()
            self._tb = None


def make_local_backend(workers: int | None = None, qps: float | None = None, scrape_interval_s: float | None = None,
                       params: dict[str, Any] | None = None, progress: Callable[[str], None] | None = None) -> LocalBackend:
    """The backend of ``llmrca campaign --backend local``; ``params`` are LocalTestbedConfig / LocalLoad fields."""
    params = dict(params or {})
    load_keys = set(LocalLoad.__dataclass_fields__)
    load = LocalLoad.from_dict({k: v for k, v in params.items() if k in load_keys} | ({"qps": qps} if qps is not None else {}))
    cfg_d = {k: v for k, v in params.items() if k not in load_keys}
    if workers is not None:
        cfg_d["workers"] = workers
    if scrape_interval_s is not None:
        cfg_d["scrape_interval_s"] = scrape_interval_s
    try:
        cfg = LocalTestbedConfig.from_dict(cfg_d)
    except Exception as e:
        raise TestbedError(f"bad local testbed option: {e}") from e
    return LocalBackend(cfg, load, progress=progress)
