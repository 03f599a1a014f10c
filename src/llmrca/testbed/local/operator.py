"""The kuberay-operator pod: the controller that watches the RayCluster's pods.

Every ``interval_s`` it reconciles: probes each pod's health endpoint through
the pod's sidecar (so a delayed or dead pod is seen as a mesh would see it),
records controller-runtime and KubeRay metrics, and logs state changes
(pod not ready / ready again), as the real operator's reconcile loop does.
Restarting a dead engine is the per-pod supervisor's job (Ray restarts the
actor); the operator reports, as KubeRay does for replica-level failures.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llmrca.testbed.local.common import PodLog, metrics_app, serve


async def amain(a: argparse.Namespace) -> None:
    """The operator pod: reconcile loop over the targets' health endpoints, its metrics and log."""
    d = Path(a.dir)
    log = PodLog(d / f"{a.pod}.log", "kuberay-operator")
    targets: dict[str, str] = dict(x.split("=", 1) for x in a.target)
    reg = CollectorRegistry()
    rec = Counter("controller_runtime_reconcile", "Reconciliations", ["controller", "result"], registry=reg)
    rec_t = Histogram("controller_runtime_reconcile_time_seconds", "Reconcile time", ["controller"], registry=reg,
                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
    ready = Gauge("kuberay_cluster_pod_ready", "1 when the pod answers its readiness probe", ["name", "namespace", "member"], registry=reg)
    info = Gauge("kuberay_cluster_info", "RayCluster info", ["name", "namespace", "owner_kind"], registry=reg)
    info.labels("llm-raycluster", "llmrca", "None").set(1)
    app = metrics_app(reg)
    _runner = await serve(app, a.port)
    log(f"Starting KubeRay operator (reconcile every {a.interval_s:g} s) for RayCluster llm-raycluster: {', '.join(targets)}")
    state: dict[str, bool] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=a.probe_timeout_s)) as s:
        while True:
            t0 = time.monotonic()
            all_ok = True
            for name, url in targets.items():
                try:
                    async with s.get(url) as r:
                        ok = r.status == 200
                except (TimeoutError, aiohttp.ClientError, OSError):
                    ok = False
                ready.labels(name, "llmrca", name).set(1 if ok else 0)
                all_ok &= ok
                if state.get(name) != ok:
                    if ok:
                        log(f"Pod {name} is ready")
                    else:
                        log(f"Pod {name} readiness probe failed ({url}); RayCluster llm-raycluster not ready", "WARNING")
                state[name] = ok
            rec.labels("raycluster-controller", "success" if all_ok else "requeue").inc()
            rec_t.labels("raycluster-controller").observe(time.monotonic() - t0)
            await asyncio.sleep(max(a.interval_s - (time.monotonic() - t0), 0.1))


def main() -> None:
    """Command line of the operator process."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--pod", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--target", action="append", default=[], help="POD=http://127.0.0.1:PORT/health")
    ap.add_argument("--interval-s", type=float, default=2.0)
    ap.add_argument("--probe-timeout-s", type=float, default=3.0)
    asyncio.run(amain(ap.parse_args()))


if __name__ == "__main__":
    main()
