"""The load generator against servers that misbehave the way real ones do, each a small aiohttp app on loopback.

Every sent request must come back in the report with its outcome (none lost), a chunk of another shape is a
``protocol`` error, ``"error": null`` beside a good chunk is no error, a server that ignores ``"stream": true``
is named as such, and a stop while the model is still being asked for ends at once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from llmrca.cli import app  # noqa: E402
from llmrca.load import LoadRunner  # noqa: E402
from llmrca.load.generator import chat_url  # noqa: E402
from llmrca.load.schedule import make_schedule  # noqa: E402

GOOD = {"choices": [{"index": 0, "delta": {"content": "tok "}}]}


def _app(mode: str) -> web.Application:
    async def models(request: web.Request) -> web.StreamResponse:
        if mode == "hang-models":
            await asyncio.sleep(3600)
        return web.json_response({"object": "list", "data": [{"id": "m1"}]})

    async def chat(request: web.Request) -> web.StreamResponse:
        if mode == "json":
            return web.json_response({"choices": [{"message": {"content": "hello"}}]})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunks = {"list": [GOOD, [1, 2]], "str-delta": [GOOD, {"choices": [{"delta": "tok "}]}],
                  "error-null": [{**GOOD, "error": None}] * 3, "fail": []}[mode]
        for c in chunks:
            await resp.write(f"data: {json.dumps(c)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    a = web.Application()
    a.router.add_get("/v1/models", models)
    a.router.add_post("/v1/chat/completions", chat)
    return a


class _Server:
    def __init__(self, mode: str) -> None:
        self.mode, self.port = mode, 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> str:
        def go() -> None:
            self._loop = asyncio.new_event_loop()
            self._runner = web.AppRunner(_app(self.mode), shutdown_timeout=0.5)  # a hanging handler is not waited for
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()
            self._loop.run_forever()

        threading.Thread(target=go, daemon=True).start()
        assert self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)


@pytest.fixture()
def serve() -> Iterator:
    started: list[_Server] = []

    def start(mode: str) -> str:
        s = _Server(mode)
        started.append(s)
        return s.__enter__()

    yield start
    for s in started:
        s.__exit__()


@pytest.mark.parametrize("mode", ["list", "str-delta"])
def test_a_chunk_of_another_shape_is_a_protocol_error_and_no_request_is_lost(serve, mode: str) -> None:
    rep = LoadRunner(serve(mode), qps=4, duration_s=1, timeout_s=5, model="m1").run()
    s = rep.summary
    assert s["n_scheduled"] == 4 and s["n_sent"] == 4 and s["errors_by_kind"] == {"protocol": 4}, s


def test_error_null_beside_a_good_chunk_is_no_error(serve) -> None:
    s = LoadRunner(serve("error-null"), qps=4, duration_s=1, timeout_s=5, model="m1").run().summary
    assert s["n_ok"] == 4 and s["n_error"] == 0, s


def test_a_server_that_ignores_stream_is_named(serve) -> None:
    rep = LoadRunner(serve("json"), qps=2, duration_s=1, timeout_s=5, model="m1").run()
    assert rep.summary["errors_by_kind"] == {"not_streamed": 2}
    assert "ignores \"stream\": true" in rep.records["error"].iloc[0]


def test_stop_while_the_model_is_still_asked_for_ends_at_once(serve) -> None:
    runner = LoadRunner(serve("hang-models"), qps=2, duration_s=30, timeout_s=60).start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    rep = runner.stop(timeout=10)
    assert time.perf_counter() - t0 < 5 and rep.summary["n_sent"] == 0


def test_cli_exit_code_says_when_no_request_succeeded(serve) -> None:
    url = serve("list")
    r = CliRunner().invoke(app, ["load", url, "--qps", "2", "--duration", "1", "--model", "m1", "--timeout", "5"])
    assert r.exit_code == 1 and "no request succeeded (2 sent: protocol 2)" in r.output, r.output
    ok = CliRunner().invoke(app, ["load", serve("error-null"), "--qps", "2", "--duration", "1", "--model", "m1", "--timeout", "5"])
    assert ok.exit_code == 0, ok.output


def test_unbounded_and_not_a_number_rates_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        make_schedule(qps=float("inf"), duration_s=1)
    with pytest.raises(ValueError, match="finite"):
        make_schedule(qps=float("nan"), duration_s=1)
    with pytest.raises(ValueError, match="never end"):
        make_schedule(qps=1, duration_s=float("inf"))
    assert len(make_schedule(qps=1, duration_s=float("inf"), max_requests=3)) == 3
    assert len(make_schedule(qps=5, duration_s=1e12, max_requests=3, arrival="poisson")) == 3  # no 10^13 draws
    with pytest.raises(ValueError, match="at most"):
        make_schedule(qps=1e6, duration_s=1e6)


def test_other_schemes_and_the_legacy_completions_endpoint_are_refused() -> None:
    with pytest.raises(ValueError, match="http or https"):
        chat_url("ftp://127.0.0.1:8000")
    with pytest.raises(ValueError, match="legacy /completions"):
        chat_url("http://127.0.0.1:8000/v1/completions")
    assert chat_url("127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1/chat/completions"
