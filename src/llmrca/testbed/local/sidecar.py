"""The pod's sidecar: an HTTP proxy in front of every port of the pod, as a mesh sidecar is.

All traffic into the pod enters here.  The sidecar

* counts bytes received and sent (the pod's network figures; written to a
  small JSON file that the node's cgroup exporter publishes as cAdvisor's
  ``container_network_*_bytes_total``),
* records an Istio-style request histogram (``istio_request_duration_milliseconds``,
  ``istio_requests_total``) on its own stats port,
* and is where network delay is injected (the kernel here has no netem): a
  control file ``netem.json`` holds ``latency_ms``, ``jitter_ms`` and
  ``correlation``; every inbound request — API calls, health probes and
  metric scrapes alike — waits ``latency ± jitter`` before it is forwarded.
  The jitter is correlated as netem's is: ``u = (1 - c)·U(-1, 1) + c·u_prev``.

Run as ``python -m llmrca.testbed.local.sidecar --pod P --map 9001:8001 --stats-port 9002 --dir D``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from llmrca.testbed.local.common import CONTENT_TYPE, PodLog, metrics_body, now

ISTIO_BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000)
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers", "transfer-encoding", "upgrade", "host", "content-length"}
UNTIMED = ("/metrics", "/health", "/stats/prometheus")


class Netem:
    """Delay settings read from the control file; the correlated jitter of tc-netem."""

    def __init__(self, path: Path, seed: int) -> None:
        self.path = path
        self.latency_ms = 0.0
        self.jitter_ms = 0.0
        self.correlation = 0.0
        self.expires_at = 0.0
        self._mtime = 0.0
        self._last = 0.0
        self._rng = random.Random(seed)
        self.applied_ms_sum = 0.0
        self.applied_n = 0

    def reload(self) -> None:
        """Re-read the pod's ``netem.json`` (delay parameters); an expired or missing file means no delay."""
        if self.expires_at and now() > self.expires_at:
            # the injector vanished without undoing the fault (e.g. SIGKILL): expire it, as a Chaos Mesh duration does
            self.path.unlink(missing_ok=True)
        try:
            m = self.path.stat().st_mtime
        except FileNotFoundError:
            self.latency_ms = self.jitter_ms = self.correlation = self.expires_at = 0.0
            self._mtime = 0.0
            return
        if m == self._mtime:
            return
        self._mtime = m
        try:
            d = json.loads(self.path.read_text() or "{}")
        except (OSError, json.JSONDecodeError):
            return  # half-written file; next poll reads it whole
        self.latency_ms = float(d.get("latency_ms", 0.0))
        self.jitter_ms = float(d.get("jitter_ms", 0.0))
        self.correlation = float(d.get("correlation", 0.0))
        self.expires_at = float(d.get("expires_at", 0.0))

    def sample_s(self) -> float:
        """The delay of the next packet/request (seconds, >= 0): latency ± jitter with netem's correlation."""
        if self.latency_ms <= 0 and self.jitter_ms <= 0:
            return 0.0
        u = self._rng.uniform(-1.0, 1.0)
        u = (1.0 - self.correlation) * u + self.correlation * self._last
        self._last = u
        d = max(self.latency_ms + self.jitter_ms * u, 0.0)
        self.applied_ms_sum += d
        self.applied_n += 1
        return d / 1000.0


class Sidecar:
    """The pod's network: forwards each public port to the pod's internal one, delaying inbound traffic under a network fault."""
    def __init__(self, pod: str, maps: list[tuple[int, int]], stats_port: int, pod_dir: Path, seed: int) -> None:
        self.pod = pod
        self.maps = maps
        self.stats_port = stats_port
        self.dir = pod_dir
        self.log = PodLog(pod_dir / f"{pod}.log", "sidecar")
        self.netem = Netem(pod_dir / "netem.json", seed)
        self.rx = 0
        self.tx = 0
        self.reg = CollectorRegistry()
        self.h = Histogram(
            "istio_request_duration_milliseconds",
            "Duration of requests into the workload (ms)",
            ["reporter", "destination_workload"],
            buckets=ISTIO_BUCKETS_MS,
            registry=self.reg,
        )
        self.c = Counter("istio_requests", "Requests into the workload", ["reporter", "destination_workload", "response_code"], registry=self.reg)
        self.session: aiohttp.ClientSession | None = None

    def _app(self, upstream: int | None) -> web.Application:
        app = web.Application(client_max_size=16 * 2**20)

        async def handle(request: web.Request) -> web.StreamResponse:
            t0 = now()
            body = await request.read()
            self.rx += len(body) + sum(len(k) + len(v) + 4 for k, v in request.headers.items()) + len(request.path_qs) + 16
            delay = self.netem.sample_s()
            if delay:
                await asyncio.sleep(delay)
            if upstream is None:
                return await self._stats(request, t0)
            return await self._forward(request, upstream, body, t0)

        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    async def _stats(self, request: web.Request, t0: float) -> web.StreamResponse:
        data = metrics_body(self.reg)
        self.tx += len(data) + 100
        return web.Response(body=data, headers={"Content-Type": CONTENT_TYPE})

    async def _forward(self, request: web.Request, port: int, body: bytes, t0: float) -> web.StreamResponse:
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        url = f"http://127.0.0.1:{port}{request.path_qs}"
        status = 502
        try:
            async with self.session.request(request.method, url, data=body or None, headers=headers) as up:
                status = up.status
                out = web.StreamResponse(status=up.status, headers={k: v for k, v in up.headers.items() if k.lower() not in HOP})
                await out.prepare(request)
                self.tx += sum(len(k) + len(v) + 4 for k, v in up.headers.items()) + 16
                async for chunk in up.content.iter_any():
                    self.tx += len(chunk)
                    await out.write(chunk)
                await out.write_eof()
                return out
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as e:
            # upstream down (e.g. the engine is being restarted): answer as Envoy does
            msg = f"upstream connect error: {type(e).__name__}"
            self.tx += len(msg) + 100
            return web.Response(status=503, text=msg)
        finally:
            if not request.path.startswith(UNTIMED):
                self.h.labels("destination", self.pod).observe((now() - t0) * 1000.0)
                self.c.labels("destination", self.pod, str(status)).inc()

    async def _housekeeping(self) -> None:
        net = self.dir / "net.json"
        tmp = self.dir / "net.json.tmp"
        last_lat = -1.0
        while True:
            self.netem.reload()
            if self.netem.latency_ms != last_lat:
                last_lat = self.netem.latency_ms
                self.log(f"netem delay set to {self.netem.latency_ms:g}ms ± {self.netem.jitter_ms:g}ms corr {self.netem.correlation:g}")
            tmp.write_text(
                json.dumps(
                    {
                        "rx_bytes": self.rx,
                        "tx_bytes": self.tx,
                        "delay_applied_ms_sum": self.netem.applied_ms_sum,
                        "delay_applied_n": self.netem.applied_n,
                        "time": now(),
                    }
                )
            )
            os.replace(tmp, net)
            await asyncio.sleep(0.25)

    async def run(self) -> None:
        """Serve every mapped port and the stats port until cancelled."""
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0), auto_decompress=False, connector=aiohttp.TCPConnector(limit=0)
        )
        runners = []
        for listen, up in [*self.maps, (self.stats_port, None)]:
            r = web.AppRunner(self._app(up), access_log=None, handle_signals=False)
            await r.setup()
            await web.TCPSite(r, "127.0.0.1", listen, reuse_address=True).start()
            runners.append(r)
        self.log(f"sidecar up: {', '.join(f'{a}->{b}' for a, b in self.maps)}, stats on {self.stats_port}")
        await self._housekeeping()


def main() -> None:
    """Command line of the sidecar process."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--pod", required=True)
    ap.add_argument("--map", action="append", default=[], help="LISTEN:UPSTREAM port pair")
    ap.add_argument("--stats-port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    maps = [(int(x.split(":")[0]), int(x.split(":")[1])) for x in a.map]
    asyncio.run(Sidecar(a.pod, maps, a.stats_port, Path(a.dir), a.seed).run())


if __name__ == "__main__":
    main()
