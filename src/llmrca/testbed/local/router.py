"""The Ray Serve proxy role on the head pod: route each request to a replica.

Routing is Ray Serve's "power of two choices": pick two healthy replicas at
random and send to the one with fewer requests in flight.  Replicas are
health-checked every second; a connection failure (replica being restarted)
is retried on another replica, up to ``max_retries`` times, as Ray Serve's
proxy retries a replica that died.  Metrics use Ray Serve's names.

Draining (the ``drain`` remediation, :mod:`llmrca.testbed.local.actuator`):
``POST /admin/drain?replica=NAME`` takes a replica out of routing until
``POST /admin/undrain?replica=NAME``; ``GET /admin/replicas`` lists each
replica's health, drained flag and requests in flight.  The router listens
on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from pathlib import Path

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llmrca.testbed.local.common import (
    PodLog,
    SpanWriter,
    metrics_app,
    new_id,
    now,
    parse_traceparent,
    serve,
)

HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade", "te", "trailers"}
LAT_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)


class Router:
    """Ray Serve's router on the head: power of two choices over healthy replicas, health checks, spans."""
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.dir = Path(a.dir)
        self.log = PodLog(self.dir / f"{a.pod}.log", "serve-proxy")
        self.spans = SpanWriter(self.dir / "spans.jsonl", a.pod)
        self.replicas: dict[str, str] = dict(x.split("=", 1) for x in a.replica)  # name -> base URL
        self.inflight = {n: 0 for n in self.replicas}
        self.healthy = {n: True for n in self.replicas}
        self.drained: set[str] = set()
        self.rng = random.Random(a.seed)
        r = self.reg = CollectorRegistry()
        self.c_req = Counter("ray_serve_num_router_requests", "Requests routed", ["deployment", "route", "application"], registry=r)
        self.g_queued = Gauge("ray_serve_deployment_queued_queries", "Queries waiting for a replica", ["deployment", "application"], registry=r)
        self.h_lat = Histogram("ray_serve_deployment_processing_latency_ms", "Latency of requests on a replica (ms)",
                               ["deployment", "replica", "application"], buckets=LAT_BUCKETS_MS, registry=r)
        self.c_err = Counter("ray_serve_deployment_error_counter", "Failed requests", ["deployment", "replica", "application"], registry=r)
        self.g_inflight = Gauge("ray_serve_replica_inflight_requests", "Requests in flight per replica", ["replica"], registry=r)
        self.g_rhealthy = Gauge("ray_serve_router_replica_healthy", "Router's view of replica health", ["replica"], registry=r)
        self.c_req.labels("LLMServer", "/v1/chat/completions", "llm")
        for n in self.replicas:
            self.c_err.labels("LLMServer", n, "llm")
        self.g_queued.labels("LLMServer", "llm").set(0)
        self.queued = 0
        self.session: aiohttp.ClientSession | None = None

    def _choose(self, exclude: set[str]) -> str | None:
        routable = [n for n in self.replicas if n not in self.drained]
        cands = [n for n in routable if self.healthy[n] and n not in exclude]
        if not cands:
            cands = [n for n in routable if n not in exclude]  # all unhealthy: still try, as Serve does
        if not cands:
            return None
        two = self.rng.sample(cands, min(2, len(cands)))
        return min(two, key=lambda n: self.inflight[n])

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Route one request to a replica and stream its answer back (503 when no replica is healthy)."""
        assert self.session is not None
        t0 = now()
        body = await request.read()
        ctx = parse_traceparent(request.headers.get("traceparent"))
        trace, parent = ctx if ctx else (new_id(16), "")
        span_id = new_id(8)
        self.c_req.labels("LLMServer", request.path, "llm").inc()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        headers["traceparent"] = f"00-{trace}-{span_id}-01"
        tried: set[str] = set()
        self.queued += 1
        dequeued = False
        self.g_queued.labels("LLMServer", "llm").set(self.queued)
        try:
            for _attempt in range(self.a.max_retries + 1):
                name = self._choose(tried)
                if name is None:
                    break
                tried.add(name)
                self.inflight[name] += 1
                self.g_inflight.labels(name).set(self.inflight[name])
                ts = now()
                try:
                    async with self.session.request(request.method, self.replicas[name] + request.path_qs, data=body or None, headers=headers) as up:
                        if up.status >= 500:
                            # sidecar answered but the replica behind it is down: retry elsewhere
                            self.c_err.labels("LLMServer", name, "llm").inc()
                            self.healthy[name] = False
                            self.log(f"replica {name} returned {up.status}; retrying on another replica", "WARNING")
                            continue
                        if not dequeued and self.queued > 0:
                            dequeued = True
                            self.queued -= 1
                            self.g_queued.labels("LLMServer", "llm").set(self.queued)
                        out = web.StreamResponse(status=up.status, headers={k: v for k, v in up.headers.items() if k.lower() not in HOP})
                        await out.prepare(request)
                        async for chunk in up.content.iter_any():
                            await out.write(chunk)
                        await out.write_eof()
                        self.h_lat.labels("LLMServer", name, "llm").observe((now() - ts) * 1000)
                        self.spans.write(trace, span_id, parent, request.path, request.method, t0, now() - t0, up.status)
                        return out
                except (TimeoutError, aiohttp.ClientConnectionError, ConnectionError) as e:
                    self.c_err.labels("LLMServer", name, "llm").inc()
                    self.healthy[name] = False
                    self.log(f"request to replica {name} failed ({type(e).__name__}); retrying on another replica", "WARNING")
                finally:
                    self.inflight[name] -= 1
                    self.g_inflight.labels(name).set(self.inflight[name])
            self.log(f"no replica could serve the request after {len(tried)} attempt(s)", "ERROR")
            self.spans.write(trace, span_id, parent, request.path, request.method, t0, now() - t0, 503)
            return web.json_response({"error": {"message": "no healthy replica", "type": "ServiceUnavailable"}}, status=503)
        finally:
            if dequeued is False and self.queued > 0:
                self.queued -= 1
                self.g_queued.labels("LLMServer", "llm").set(self.queued)

    async def drain(self, request: web.Request) -> web.Response:
        """``POST /admin/drain?replica=NAME``: stop routing to NAME (404 for an unknown replica, 409 for the last routable one)."""
        name = request.query.get("replica", "")
        if name not in self.replicas:
            return web.json_response({"error": f"unknown replica {name!r}; replicas: {', '.join(self.replicas)}"}, status=404)
        if name not in self.drained and len(self.replicas) - len(self.drained) <= 1:
            return web.json_response({"error": f"{name} is the last routable replica; draining it would stop the service"}, status=409)
        self.drained.add(name)
        self.log(f"replica {name} drained: no new requests are routed to it", "WARNING")
        return await self.replicas_view(request)

    async def undrain(self, request: web.Request) -> web.Response:
        """``POST /admin/undrain?replica=NAME``: route to NAME again."""
        name = request.query.get("replica", "")
        if name not in self.replicas:
            return web.json_response({"error": f"unknown replica {name!r}; replicas: {', '.join(self.replicas)}"}, status=404)
        if name in self.drained:
            self.drained.discard(name)
            self.log(f"replica {name} back in routing")
        return await self.replicas_view(request)

    async def replicas_view(self, request: web.Request) -> web.Response:
        """``GET /admin/replicas``: per replica ``healthy``, ``drained``, ``inflight``."""
        return web.json_response({n: {"healthy": self.healthy[n], "drained": n in self.drained, "inflight": self.inflight[n]} for n in self.replicas})

    async def health_checks(self) -> None:
        """Poll every replica's health endpoint and keep the routable set current."""
        assert self.session is not None
        while True:
            for n, base in self.replicas.items():
                ok = False
                try:
                    async with self.session.get(base + "/health", timeout=aiohttp.ClientTimeout(total=self.a.health_timeout_s)) as r:
                        ok = r.status == 200
                except (TimeoutError, aiohttp.ClientError, OSError):
                    ok = False
                if ok != self.healthy[n]:
                    self.log(f"replica {n} is now {'healthy' if ok else 'UNHEALTHY'}", "INFO" if ok else "WARNING")
                self.healthy[n] = ok
                self.g_rhealthy.labels(n).set(1 if ok else 0)
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        """Serve on the router port until cancelled."""
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0), auto_decompress=False,
                                             connector=aiohttp.TCPConnector(limit=0))
        app = metrics_app(self.reg, health_paths=("/-/healthz", "/health"))
        app.router.add_route("*", "/v1/{tail:.*}", self.handle)
        app.router.add_post("/admin/drain", self.drain)
        app.router.add_post("/admin/undrain", self.undrain)
        app.router.add_get("/admin/replicas", self.replicas_view)
        _runner = await serve(app, self.a.port)
        self.log(f"Serve proxy up on port {self.a.port}; replicas: {', '.join(self.replicas)}")
        await self.health_checks()


def main() -> None:
    """Command line of the router process."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--pod", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--replica", action="append", default=[], help="NAME=http://127.0.0.1:PORT")
    ap.add_argument("--max-retries", type=int, default=3)
    ap.add_argument("--health-timeout-s", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    asyncio.run(Router(a).run())


if __name__ == "__main__":
    main()
