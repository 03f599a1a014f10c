"""Open-loop streaming load against an OpenAI-compatible ``/v1/chat/completions``.

Open loop: requests are sent at their scheduled arrival times whether or not
earlier ones have answered, as real users do; a slow server therefore sees
its queue grow instead of the load backing off.  At most ``concurrency``
requests are in flight; an arrival that finds the cap reached is recorded as
``dropped`` (never silently delayed, which would turn the run into a closed
loop).  The run is bounded twice: arrivals stop at ``duration_s`` or after
``max_requests``, whichever comes first, and requests still running then get
at most ``drain_s`` more before they are cancelled.

HTTP client: ``httpx.AsyncClient`` (HTTP/1.1, keep-alive pool sized to the
concurrency cap).  Times are taken with ``time.perf_counter`` when a server-
sent-event line arrives; TTFT is send → first non-empty content chunk, ITL
the gaps between consecutive content chunks (vLLM sends one chunk per
decode step, so this is its inter-token latency; a server that batches
tokens into chunks shows larger, fewer gaps), E2E is send → ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np
import pandas as pd

from llmrca.load.schedule import make_schedule, synth_prompt

#: Request outcome values of :attr:`RequestRecord.status`.
STATUSES = ("ok", "error", "dropped", "cancelled")


class RemoteTargetRefused(ValueError):
    """The URL is not on a loopback address and ``allow_remote`` was not given."""


@dataclass
class RequestRecord:
    """What one request did, as the client saw it (times in s, epoch for ``start_time``)."""

    id: int
    scheduled_s: float  # arrival offset from the start of the run
    start_time: float  # epoch s at which it was sent (or dropped)
    lag_s: float  # how late the generator sent it versus its schedule
    prompt_tokens_target: int
    output_tokens_target: int
    status: str = "ok"
    error_kind: str = ""
    error: str = ""
    http_status: int = 0
    ttft_s: float = float("nan")
    e2e_s: float = float("nan")
    itl_mean_s: float = float("nan")
    itl_max_s: float = float("nan")
    output_chunks: int = 0  # non-empty content chunks received
    output_tokens: int = 0  # usage.completion_tokens when the server reports it, else chunks
    prompt_tokens: float = float("nan")  # usage.prompt_tokens when reported
    finish_reason: str = ""
    itl_s: list[float] = field(default_factory=list, repr=False)


def is_loopback_url(url: str) -> bool:
    """True if ``url``'s host is ``localhost`` or a literal loopback IP (no DNS lookup)."""
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(url: str, allow_remote: bool) -> None:
    if not allow_remote and not is_loopback_url(url):
        raise RemoteTargetRefused(
            f"refusing to send load to {url!r}: its host is not a loopback address (127.0.0.0/8, ::1, localhost); "
            "pass allow_remote=True (CLI: --allow-remote) if you mean to load a remote server"
        )


def chat_url(url: str) -> str:
    """Accept a server base (``http://h:8000``), a ``/v1`` base, or the full endpoint.  Raises ValueError for
    another scheme than http(s) and for the legacy ``/completions`` endpoint."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: the scheme must be http or https (an OpenAI-compatible server's URL), not {parts.scheme!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        raise ValueError(f"{url!r} is the legacy /completions endpoint; llmrca load sends chat requests: give the server's "
                         "base URL or its /v1/chat/completions endpoint")
    if not path.endswith("/chat/completions"):
        path = path + ("/chat/completions" if path.endswith("/v1") else "/v1/chat/completions")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def models_url(url: str) -> str:
    return chat_url(url).removesuffix("/chat/completions") + "/models"


@dataclass
class LoadReport:
    """Per-request records, the inter-token gaps of the requests that succeeded (``itl_s``, seconds; what the
    summary's ITL reads, as its TTFT and E2E read only those requests), and a summary."""

    records: pd.DataFrame
    itl_s: np.ndarray
    summary: dict[str, Any]
    config: dict[str, Any]

    def to_csv(self, path: str) -> None:
        self.records.to_csv(path, index=False)

    def binned(self, step_s: float = 5.0, start: float | None = None) -> pd.DataFrame:
        """Client-side time series by send time: ``time`` (bin start, epoch s) and per-bin counts and quantiles.

        Columns: ``sent``, ``ok``, ``errors``, ``dropped``, ``ttft_p50_s``,
        ``ttft_p90_s``, ``e2e_p50_s``, ``e2e_p90_s``, ``itl_mean_s`` (over ok
        requests sent in the bin; NaN when none).  Put next to a case's
        metrics to compare client and server views (e.g. vLLM's TTFT, which
        excludes queueing).
        """
        df = self.records
        if df.empty:
            return pd.DataFrame(columns=["time", "sent", "ok", "errors", "dropped"])
        t0 = float(df["start_time"].min()) if start is None else float(start)
        b = np.floor((df["start_time"].to_numpy(dtype=float) - t0) / step_s).astype(int)
        d = df.assign(_bin=b)
        d = d[d["_bin"] >= 0]
        ok = d[d["status"] == "ok"].groupby("_bin")
        out = pd.DataFrame({"_bin": np.arange(int(d["_bin"].max()) + 1 if len(d) else 0)})
        g = d.groupby("_bin")
        out["time"] = t0 + out["_bin"] * step_s
        out["sent"] = (
            out["_bin"].map(g["status"].apply(lambda s: int(s.isin(["ok", "error", "cancelled"]).sum()))).fillna(0).astype(int)
        )
        out["ok"] = out["_bin"].map(ok.size()).fillna(0).astype(int)
        out["errors"] = out["_bin"].map(g["status"].apply(lambda s: int((s == "error").sum()))).fillna(0).astype(int)
        out["dropped"] = out["_bin"].map(g["status"].apply(lambda s: int((s == "dropped").sum()))).fillna(0).astype(int)
        for col, q in (("ttft", 0.5), ("ttft", 0.9), ("e2e", 0.5), ("e2e", 0.9)):
            out[f"{col}_p{int(q * 100)}_s"] = out["_bin"].map(ok[f"{col}_s"].quantile(q))
        out["itl_mean_s"] = out["_bin"].map(ok["itl_mean_s"].mean())
        return out.drop(columns="_bin")

    def format(self) -> str:
        """A summary a person reads in five seconds."""
        s = self.summary
        lines = [
            f"target {self.config['url']}  model {self.config['model']}  arrivals {self.config['arrival']} @ {self.config['qps']} QPS",
            f"requests: {s['n_scheduled']} scheduled, {s['n_sent']} sent, {s['n_ok']} ok, {s['n_error']} errors, "
            f"{s['n_dropped']} dropped (cap {self.config['concurrency']}), {s['n_cancelled']} cancelled",
            f"arrival rate {s['achieved_qps']:.3f}/s (asked {self.config['qps']}), completed {s['throughput_rps']:.3f}/s, "
            f"output {s['output_tokens_per_s']:.1f} tok/s, wall {s['wall_s']:.1f} s",
        ]
        for key, label in (("ttft_s", "TTFT"), ("itl_s", "ITL"), ("e2e_s", "E2E")):
            p = s[key]
            lines.append(
                f"{label:5s} p50 {_ms(p['p50'])}  p90 {_ms(p['p90'])}  p99 {_ms(p['p99'])}  mean {_ms(p['mean'])}  (n={p['n']})"
            )
        lines.append(f"send lag p50 {_ms(s['lag_s']['p50'])}  p99 {_ms(s['lag_s']['p99'])}  max {_ms(s['lag_s']['max'])}")
        if s["errors_by_kind"]:
            lines.append("errors: " + ", ".join(f"{k}={v}" for k, v in sorted(s["errors_by_kind"].items())))
        return "\n".join(lines)


def _ms(x: float) -> str:
    return "-" if not np.isfinite(x) else f"{x * 1000:.1f} ms"


def _stats(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return {"n": 0, "mean": float("nan"), "p50": float("nan"), "p90": float("nan"), "p99": float("nan"), "max": float("nan")}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"n": len(x), "mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(x.max())}


class LoadRunner:
    """One load run; use :meth:`run` (blocking) or :meth:`start` / :meth:`stop` (background thread).

    Parameters are those of :func:`run_load`.  The schedule is built (and the
    target checked) in the constructor, so mistakes raise in the caller.
    """

    def __init__(
        self,
        url: str,
        *,
        qps: float,
        duration_s: float,
        max_requests: int | None = None,
        arrival: str = "constant",
        prompt_tokens: int = 512,
        output_tokens: int = 256,
        length_spread: float = 0.0,
        concurrency: int = 500,
        seed: int = 0,
        model: str | None = None,
        timeout_s: float = 120.0,
        drain_s: float | None = None,
        on_result: Callable[[RequestRecord], None] | None = None,
        allow_remote: bool = False,
        ignore_eos: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        check_target(url, allow_remote)
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.url = chat_url(url)
        self.schedule = make_schedule(
            qps=qps,
            duration_s=duration_s,
            max_requests=max_requests,
            arrival=arrival,
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            length_spread=length_spread,
            seed=seed,
        )
        self.config: dict[str, Any] = {
            "url": self.url,
            "qps": qps,
            "duration_s": duration_s,
            "max_requests": max_requests,
            "arrival": arrival,
            "prompt_tokens": prompt_tokens,
            "output_tokens": output_tokens,
            "length_spread": length_spread,
            "concurrency": concurrency,
            "seed": seed,
            "model": model,
            "timeout_s": timeout_s,
            "drain_s": timeout_s + 1.0 if drain_s is None else drain_s,  # let per-request timeouts fire first
            "ignore_eos": ignore_eos,
            "client": f"httpx {httpx.__version__}",
        }
        self.extra_body = dict(extra_body or {})
        self.on_result = on_result
        self._records: list[RequestRecord] = []
        self._callback_errors: list[str] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sched_task: asyncio.Task[None] | None = None
        self._main_task: asyncio.Task[Any] | None = None
        self._drain_s = float(self.config["drain_s"])
        self._stop_requested = False  # read by the arrivals loop: stop() may come before it exists
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._t_start = float("nan")
        self._t_end = float("nan")

    # -- public API -----------------------------------------------------------
    def run(self) -> LoadReport:
        """Run to completion in this thread (which must not be running an event loop)."""
        asyncio.run(self.arun())
        return self.report()

    async def arun(self) -> LoadReport:
        """Run to completion inside the caller's event loop."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._main()
        finally:
            self._done.set()
        return self.report()

    def start(self) -> LoadRunner:
        """Start the run in a background thread and return at once."""
        if self._thread is not None:
            raise RuntimeError("this LoadRunner was already started; make a new one for a new run")
        ready = threading.Event()

        def target() -> None:
            async def go() -> None:
                self._loop = asyncio.get_running_loop()
                self._main_task = asyncio.current_task()
                ready.set()
                await self._main()

            try:
                asyncio.run(go())
            except BaseException as e:  # surfaced by wait()/stop()
                self._error = e
            finally:
                ready.set()
                self._done.set()

        self._thread = threading.Thread(target=target, name="llmrca-load", daemon=True)
        self._thread.start()
        ready.wait()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def n_finished(self) -> int:
        """Requests with an outcome so far (ok, error, dropped, cancelled)."""
        return len(self._records)

    def wait(self, timeout: float | None = None) -> LoadReport:
        """Wait until the run ends by itself (bounds reached); raise what the run raised."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"load run still going after {timeout} s; call stop() to end it")
        if self._thread is not None:
            self._thread.join()
        if isinstance(self._error, asyncio.CancelledError) and self._stop_requested:
            return self.report()  # stopped before the first request (while the model was being asked for)
        if self._error is not None:
            e = self._error
            said = str(e) if isinstance(e, RuntimeError) and str(e) else f"{type(e).__name__}: {e}"  # ours say what happened
            raise RuntimeError(f"load run failed: {said}") from e
        return self.report()

    def stop(self, drain_s: float = 0.0, timeout: float | None = 30.0) -> LoadReport:
        """Stop sending; give in-flight requests ``drain_s`` more, cancel the rest; return the report."""
        if self._loop is None and self._thread is None:
            raise RuntimeError("this LoadRunner was never started; call start() (or run()) first")
        self._drain_s = drain_s
        self._stop_requested = True
        loop = self._loop
        if loop is not None and not self._done.is_set():

            def cancel() -> None:
                if self._sched_task is not None:
                    self._sched_task.cancel()
                elif self._main_task is not None:  # still asking /v1/models for the model: nothing was sent yet
                    self._main_task.cancel()

            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime: the run has ended anyway
                loop.call_soon_threadsafe(cancel)
        return self.wait(None if timeout is None else timeout + drain_s)

    def __enter__(self) -> LoadRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()

    def report(self) -> LoadReport:
        """The report so far (final once the run has ended)."""
        recs = list(self._records)
        recs.sort(key=lambda r: r.id)
        rows = []
        gaps: list[float] = []
        for r in recs:
            d = asdict(r)
            d.pop("itl_s")
            rows.append(d)
            if r.status == "ok":  # as TTFT and E2E: a failed request's gaps (a stall before a reset) are not its speed
                gaps.extend(r.itl_s)
        cols = [f for f in RequestRecord.__dataclass_fields__ if f != "itl_s"]
        df = pd.DataFrame(rows, columns=cols)
        return LoadReport(
            records=df, itl_s=np.asarray(gaps, dtype=float), summary=self._summary(df, gaps), config=dict(self.config)
        )

    # -- the run ----------------------------------------------------------------
    def _summary(self, df: pd.DataFrame, gaps: list[float]) -> dict[str, Any]:
        ok = df[df["status"] == "ok"]
        arrivals = df.sort_values("scheduled_s")["start_time"].to_numpy(dtype=float)
        achieved = (
            (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
            if len(arrivals) >= 2 and arrivals[-1] > arrivals[0]
            else float("nan")
        )
        end = self._t_end if np.isfinite(self._t_end) else time.time()
        wall = end - self._t_start if np.isfinite(self._t_start) else float("nan")
        errs = df[df["status"] == "error"]["error_kind"].value_counts().to_dict()
        return {
            "n_scheduled": len(self.schedule),
            "n_sent": int(df["status"].isin(["ok", "error", "cancelled"]).sum()),
            "n_ok": len(ok),
            "n_error": int((df["status"] == "error").sum()),
            "n_dropped": int((df["status"] == "dropped").sum()),
            "n_cancelled": int((df["status"] == "cancelled").sum()),
            "errors_by_kind": {str(k): int(v) for k, v in errs.items()},
            "achieved_qps": float(achieved),
            "wall_s": float(wall),
            "throughput_rps": float(len(ok) / wall) if wall and wall > 0 else float("nan"),
            "output_tokens_per_s": float(ok["output_tokens"].sum() / wall) if wall and wall > 0 else float("nan"),
            "ttft_s": _stats(ok["ttft_s"].to_numpy()),
            "itl_s": _stats(np.asarray(gaps)),
            "e2e_s": _stats(ok["e2e_s"].to_numpy()),
            "lag_s": _stats(df["lag_s"].to_numpy()),
            "callback_errors": list(self._callback_errors),
            "start_time": self._t_start,
            "end_time": self._t_end,
        }

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.config["concurrency"], max_keepalive_connections=self.config["concurrency"])
        timeout = httpx.Timeout(self.config["timeout_s"], connect=min(10.0, self.config["timeout_s"]))
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            if self.config["model"] is None:
                self.config["model"] = await _discover_model(client, models_url(self.url))
            inflight: set[asyncio.Task[None]] = set()
            self._t_start = time.time()
            self._sched_task = asyncio.create_task(self._arrivals(client, inflight))
            try:
                await self._sched_task
            except asyncio.CancelledError:
                if asyncio.current_task().cancelling():  # type: ignore[union-attr]
                    raise  # we ourselves are being cancelled, not just the arrivals
            if inflight:
                _done, pending = await asyncio.wait(set(inflight), timeout=max(0.0, self._drain_s))
                for t in pending:
                    t.cancel()
                if pending:
                    await asyncio.wait(pending)
            self._t_end = time.time()

    async def _arrivals(self, client: httpx.AsyncClient, inflight: set[asyncio.Task[None]]) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        epoch0 = self._t_start
        cap = self.config["concurrency"]
        sched = self.schedule
        for i in range(len(sched)):
            if self._stop_requested:
                break
            offset = float(sched.offsets_s[i])
            delay = t0 + offset - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = loop.time() - t0 - offset
            rec = RequestRecord(
                id=i,
                scheduled_s=offset,
                start_time=epoch0 + offset + lag,
                lag_s=lag,
                prompt_tokens_target=int(sched.prompt_tokens[i]),
                output_tokens_target=int(sched.output_tokens[i]),
            )
            if len(inflight) >= cap:
                rec.status = "dropped"
                rec.error_kind = "concurrency_cap"
                self._finish(rec)
                continue
            task = asyncio.create_task(self._one(client, rec))
            inflight.add(task)
            task.add_done_callback(inflight.discard)

    def _body(self, rec: RequestRecord) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.config["model"],
            "messages": [
                {"role": "user", "content": synth_prompt(rec.prompt_tokens_target, seed=self.config["seed"] * 1_000_003 + rec.id)}
            ],
            "max_tokens": rec.output_tokens_target,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.config["ignore_eos"]:
            body["ignore_eos"] = True  # vLLM extension: always generate max_tokens
        body.update(self.extra_body)
        return body

    async def _one(self, client: httpx.AsyncClient, rec: RequestRecord) -> None:
        body = self._body(rec)
        t_send = time.perf_counter()
        try:
            async with asyncio.timeout(self.config["timeout_s"]):
                await self._stream(client, body, rec, t_send)
        except TimeoutError:
            rec.status, rec.error_kind, rec.error = "error", "timeout", f"no complete answer within {self.config['timeout_s']} s"
        except asyncio.CancelledError:
            rec.status, rec.error_kind, rec.error = "cancelled", "cancelled", "still running when the run stopped"
        except httpx.ConnectError as e:
            rec.status, rec.error_kind, rec.error = "error", "connect", str(e) or type(e).__name__
        except httpx.TimeoutException as e:
            rec.status, rec.error_kind, rec.error = "error", "timeout", str(e) or type(e).__name__
        except (httpx.RemoteProtocolError, httpx.ReadError) as e:
            rec.status, rec.error_kind, rec.error = "error", "incomplete", str(e) or type(e).__name__
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            rec.status, rec.error_kind, rec.error = "error", "transport", f"{type(e).__name__}: {e}"
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            # a chunk of another shape than the OpenAI streaming format (a list, a string delta, ...)
            rec.status, rec.error_kind, rec.error = "error", "protocol", f"unexpected stream content: {type(e).__name__}: {e}"
        except Exception as e:  # anything else is still this request's outcome: never a request lost from the report
            rec.status, rec.error_kind, rec.error = "error", "client", f"{type(e).__name__}: {e}"
        self._finish(rec)

    async def _stream(self, client: httpx.AsyncClient, body: dict[str, Any], rec: RequestRecord, t_send: float) -> None:
        async with client.stream("POST", self.url, json=body) as resp:
            rec.http_status = resp.status_code
            if resp.status_code != 200:
                text = (await resp.aread())[:300].decode("utf-8", "replace")
                rec.status, rec.error_kind, rec.error = "error", f"http_{resp.status_code}", text.strip()
                return
            ctype = resp.headers.get("content-type", "")
            if ctype.startswith("application/json"):  # the server ignored "stream": true and answered in one piece
                text = (await resp.aread())[:200].decode("utf-8", "replace")
                rec.status, rec.error_kind = "error", "not_streamed"
                rec.error = f"the server answered with one application/json body, not a stream (it ignores \"stream\": true): {text.strip()}"
                return
            last = None
            done = False
            async for line in resp.aiter_lines():
                if not line.startswith("data:"):
                    continue  # blank separators, comments, event: lines
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                now = time.perf_counter()
                chunk = json.loads(payload)
                if not isinstance(chunk, dict):
                    raise TypeError(f"a data: line holds {type(chunk).__name__} {payload[:80]!r}, not a JSON object")
                if chunk.get("error"):  # "error": null beside a good chunk is no error
                    rec.status, rec.error_kind, rec.error = "error", "stream_error", str(chunk["error"])[:300]
                    return
                usage = chunk.get("usage")
                if usage:
                    rec.output_tokens = int(usage.get("completion_tokens") or 0)
                    if usage.get("prompt_tokens") is not None:
                        rec.prompt_tokens = float(usage["prompt_tokens"])
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    if choice.get("finish_reason"):
                        rec.finish_reason = str(choice["finish_reason"])
                    if not text:
                        continue
                    if last is None:
                        rec.ttft_s = now - t_send
                    else:
                        rec.itl_s.append(now - last)
                    last = now
                    rec.output_chunks += 1
            if not done:
                rec.status, rec.error_kind, rec.error = (
                    "error",
                    "incomplete",
                    f"stream ended after {rec.output_chunks} chunks without [DONE]",
                )
                return
            rec.e2e_s = time.perf_counter() - t_send
            if not rec.output_tokens:
                rec.output_tokens = rec.output_chunks
            if rec.itl_s:
                rec.itl_mean_s = float(np.mean(rec.itl_s))
                rec.itl_max_s = float(np.max(rec.itl_s))

    def _finish(self, rec: RequestRecord) -> None:
        self._records.append(rec)
        if self.on_result is not None:
            try:
                self.on_result(rec)
            except Exception as e:  # a broken callback must not stop the load; it is reported
                self._callback_errors.append(f"request {rec.id}: {e!r}")


async def _discover_model(client: httpx.AsyncClient, url: str) -> str:
    try:
        r = await client.get(url)
        r.raise_for_status()
        data = r.json()["data"]
        return str(data[0]["id"])
    except (httpx.HTTPError, KeyError, IndexError, ValueError, TypeError) as e:
        if isinstance(e, httpx.HTTPStatusError) and e.response.status_code in (404, 405):
            why = (f"HTTP {e.response.status_code}: the server has no model list there; an OpenAI-compatible server "
                   "(vLLM, SGLang, TGI's Messages API) answers GET /v1/models next to /v1/chat/completions, so check "
                   "the URL's path")
        elif isinstance(e, httpx.HTTPStatusError):
            why = f"HTTP {e.response.status_code}"
        elif isinstance(e, IndexError):
            why = "it lists no model"
        elif isinstance(e, KeyError | TypeError | ValueError):
            why = 'the answer is not an OpenAI model list ({"data": [{"id": ...}]})'
        else:
            why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        raise RuntimeError(f"no model given and could not read one from {url} ({why}); pass model=... (CLI: --model)") from e


def run_load(url: str, **kwargs: Any) -> LoadReport:
    """Run open-loop streaming load against ``url`` and return its report (blocking).

    Keyword arguments: ``qps``, ``duration_s`` (required), ``max_requests``,
    ``arrival`` ("constant" | "poisson"), ``prompt_tokens``, ``output_tokens``,
    ``length_spread``, ``concurrency`` (500), ``seed``, ``model`` (None: ask
    ``/v1/models``), ``timeout_s``, ``drain_s``, ``on_result``,
    ``allow_remote``, ``ignore_eos``, ``extra_body``.  See :class:`LoadRunner`.
    """
    return LoadRunner(url, **kwargs).run()
