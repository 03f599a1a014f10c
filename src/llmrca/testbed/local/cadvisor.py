"""The node's container exporter: cAdvisor-named per-pod metrics read from the pods' cgroups.

CPU and memory come from each pod's cgroup (v1 or v2); the CPU pressure
(``container_pressure_cpu_waiting_seconds_total``, cAdvisor's name for the
PSI "some" time of cgroup v2) is the run-queue wait of the pod's threads
(``/proc/<pid>/task/<tid>/schedstat``, field 2), accumulated across scrapes so
it stays a counter when processes exit — cgroup v1 has no per-cgroup PSI; it
is what a noisy neighbour raises while the pod's own CPU use does not.
Network bytes come
from the pod's sidecar counters (``net.json``), since every byte into or out
of the pod passes its sidecar.  Values are read at scrape time.  This
exporter runs on the node, outside the pods (as cAdvisor in the kubelet
does), so a delayed pod does not delay its own cAdvisor series.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from llmrca.testbed.local.cgroups import PodCgroup
from llmrca.testbed.local.common import CONTENT_TYPE, metrics_body


class WaitCounter:
    """Seconds the threads of a set of processes waited for a CPU, as a counter that survives their exit."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.total_ns = 0

    def read(self, pids: list[int]) -> float:
        """Add the wait since the last read of every thread of ``pids`` (a new or reused thread id counts from 0); returns seconds."""
        seen: dict[int, int] = {}
        for pid in pids:
            for st in Path(f"/proc/{pid}/task").glob("*/schedstat"):
                try:
                    tid, w = int(st.parent.name), int(st.read_text().split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                prev = self.last.get(tid, 0)
                self.total_ns += w - prev if w >= prev else w
                seen[tid] = w
        self.last = seen
        return self.total_ns / 1e9


class PodCollector:
    """A Prometheus collector of the pods' cgroup counters under cAdvisor's metric names."""
    def __init__(self, pods: dict[str, PodCgroup], pods_dir: Path) -> None:
        self.pods = pods
        self.pods_dir = pods_dir
        self.waits = {pod: WaitCounter() for pod in pods}

    def collect(self) -> Iterator:
        """Yield the metric families (CPU s, throttled s, memory bytes, network bytes, failcnt) of every pod at this instant."""
        lab = ["namespace", "pod", "container"]
        fams = {
            "cpu": CounterMetricFamily("container_cpu_usage_seconds", "CPU time used", labels=lab),
            "thr": CounterMetricFamily("container_cpu_cfs_throttled_seconds", "CFS throttled time", labels=lab),
            "wait": CounterMetricFamily("container_pressure_cpu_waiting_seconds", "Time the pod's threads waited for a CPU", labels=lab),
            "ws": GaugeMetricFamily("container_memory_working_set_bytes", "Working-set memory", labels=lab),
            "use": GaugeMetricFamily("container_memory_usage_bytes", "Memory usage", labels=lab),
            "fail": GaugeMetricFamily("container_memory_failcnt", "Memory limit hits", labels=lab),
            "lim": GaugeMetricFamily("container_spec_memory_limit_bytes", "Memory limit", labels=lab),
            "quota": GaugeMetricFamily("container_spec_cpu_quota", "CPU quota (µs per 100 ms period)", labels=lab),
            "oom": CounterMetricFamily("container_oom_events", "OOM kills in the pod", labels=lab),
            "rx": CounterMetricFamily("container_network_receive_bytes", "Bytes received", labels=["namespace", "pod", "interface"]),
            "tx": CounterMetricFamily("container_network_transmit_bytes", "Bytes sent", labels=["namespace", "pod", "interface"]),
        }
        for pod, cg in self.pods.items():
            lv = ["llmrca", pod, pod]
            try:
                fams["cpu"].add_metric(lv, cg.cpu_usage_s())
                fams["thr"].add_metric(lv, cg.cpu_throttled_s())
                fams["wait"].add_metric(lv, self.waits[pod].read(cg.pids()))
                fams["ws"].add_metric(lv, cg.memory_working_set_bytes())
                fams["use"].add_metric(lv, cg.memory_usage_bytes())
                fams["fail"].add_metric(lv, cg.memory_failcnt())
                fams["lim"].add_metric(lv, cg.memory_limit_bytes())
                fams["quota"].add_metric(lv, cg.cpu_quota_cores() * 100_000)
                fams["oom"].add_metric(lv, cg.oom_kills())
            except (OSError, ValueError, KeyError):
                continue  # pod being torn down
            try:
                net = json.loads((self.pods_dir / pod / "net.json").read_text())
                fams["rx"].add_metric(["llmrca", pod, "eth0"], net["rx_bytes"])
                fams["tx"].add_metric(["llmrca", pod, "eth0"], net["tx_bytes"])
            except (OSError, ValueError, KeyError):
                pass
        yield from fams.values()


def main() -> None:
    """Serve the pods' cAdvisor-named metrics on ``--port`` until killed."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pods-dir", required=True)
    ap.add_argument("--pod", action="append", default=[], help="NAME=CGROUP_REL")
    ap.add_argument("--cgroup-version", type=int, default=1)
    a = ap.parse_args()
    pods = {x.split("=", 1)[0]: PodCgroup(x.split("=", 1)[1], a.cgroup_version) for x in a.pod}
    reg = CollectorRegistry()
    reg.register(PodCollector(pods, Path(a.pods_dir)))
    app = web.Application()

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics_body(reg), headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/metrics", metrics)
    web.run_app(app, host="127.0.0.1", port=a.port, access_log=None, print=None, handle_signals=False)


if __name__ == "__main__":
    main()
