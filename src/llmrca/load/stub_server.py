"""A small OpenAI-compatible streaming server with known timing, for tests and benchmarks.

It stands in for vLLM where no GPU is available: ``POST /v1/chat/completions``
with ``stream: true`` answers with server-sent events, the first content
chunk ``ttft_s`` after the request arrived and the next ones every ``itl_s``
(absolute deadlines, so sleep jitter does not accumulate), ``max_tokens``
chunks in all, a usage chunk, then ``data: [DONE]``.  Faults on demand:
every ``fail_every``-th request gets HTTP 500, every ``close_every``-th is cut
after ``close_after`` chunks (connection closed without ``[DONE]``).

Pure asyncio (no web framework).  Run it as a process::

    python -m llmrca.load.stub_server --port 0 --ttft-s 0.05 --itl-s 0.01

It prints ``listening 127.0.0.1:<port>`` once ready.  :class:`StubServer`
does that for you in its own process group and stops it by the group.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass
class StubBehaviour:
    ttft_s: float = 0.05
    itl_s: float = 0.01
    fail_every: int = 0  # every n-th request (1-based) answers 500; 0 = never
    close_every: int = 0  # every n-th request is cut short; 0 = never
    close_after: int = 2  # chunks sent before cutting
    model: str = "stub-model"


class _Handler:
    def __init__(self, b: StubBehaviour) -> None:
        self.b = b
        self.n = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        t_recv = time.perf_counter()
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        if method == "GET" and path in ("/health", "/v1/models"):
            payload = (
                b"{}"
                if path == "/health"
                else json.dumps({"object": "list", "data": [{"id": self.b.model, "object": "model"}]}).encode()
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(payload), payload)
            )
            await writer.drain()
            return True
        if method != "POST" or not path.endswith("/chat/completions"):
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()
            return True
        self.n += 1
        n = self.n
        req = json.loads(body or b"{}")
        if self.b.fail_every and n % self.b.fail_every == 0:
            msg = b'{"error": {"message": "injected failure", "code": 500}}'
            writer.write(
                b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(msg), msg)
            )
            await writer.drain()
            return True
        max_tokens = int(req.get("max_tokens") or 16)
        cut = self.b.close_after if self.b.close_every and n % self.b.close_every == 0 else None
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        rid = f"chatcmpl-{n}"
        self._event(writer, {"id": rid, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        await writer.drain()
        first = t_recv + self.b.ttft_s
        for k in range(max_tokens):
            if cut is not None and k >= cut:
                writer.transport.abort()  # the way a dying engine ends a stream
                return False
            delay = first + k * self.b.itl_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            fin = "length" if k == max_tokens - 1 else None
            self._event(writer, {"id": rid, "choices": [{"index": 0, "delta": {"content": f" t{k}"}, "finish_reason": fin}]})
            await writer.drain()
        prompt = sum(len(str(m.get("content", "")).split()) for m in req.get("messages", []))
        self._event(writer, {"id": rid, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": max_tokens}})
        self._chunk(writer, b"data: [DONE]\n\n")
        self._chunk(writer, b"")
        await writer.drain()
        return True

    @staticmethod
    def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _event(self, writer: asyncio.StreamWriter, obj: dict) -> None:
        self._chunk(writer, b"data: " + json.dumps(obj).encode() + b"\n\n")


async def serve(b: StubBehaviour, host: str = "127.0.0.1", port: int = 0) -> None:
    server = await asyncio.start_server(_Handler(b), host, port, backlog=1024)
    real_port = server.sockets[0].getsockname()[1]
    print(f"listening {host}:{real_port}", flush=True)
    async with server:
        await server.serve_forever()


class StubServer:
    """Run the stub server as a child process (own process group); a context manager."""

    def __init__(self, behaviour: StubBehaviour | None = None, *, startup_timeout_s: float = 20.0) -> None:
        self.behaviour = behaviour or StubBehaviour()
        self.startup_timeout_s = startup_timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> StubServer:
        b = self.behaviour
        cmd = [
            sys.executable, "-m", "llmrca.load.stub_server", "--port", "0",
            "--ttft-s", str(b.ttft_s), "--itl-s", str(b.itl_s),
            "--fail-every", str(b.fail_every), "--close-every", str(b.close_every),
            "--close-after", str(b.close_after), "--model", b.model,
        ]  # fmt: skip
        env = dict(os.environ)
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, start_new_session=True, env=env)
        deadline = time.monotonic() + self.startup_timeout_s
        line = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if line.startswith("listening") or self.proc.poll() is not None:
                break
        if not line.startswith("listening"):
            self.__exit__()
            raise RuntimeError(f"stub server did not start (exit code {self.proc.poll()}, said {line!r})")
        self.url = "http://" + line.split()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ttft-s", type=float, default=0.05)
    p.add_argument("--itl-s", type=float, default=0.01)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--close-every", type=int, default=0)
    p.add_argument("--close-after", type=int, default=2)
    p.add_argument("--model", default="stub-model")
    a = p.parse_args(argv)
    b = StubBehaviour(a.ttft_s, a.itl_s, a.fail_every, a.close_every, a.close_after, a.model)
    try:
        asyncio.run(serve(b, a.host, a.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
