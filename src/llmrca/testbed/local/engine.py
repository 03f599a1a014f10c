"""A model server with an OpenAI-compatible streaming API and an emulated accelerator.

The engine is a continuous-batching scheduler in the style of vLLM: requests
wait in a queue, are admitted into the running batch while KV-cache space and
``max_num_seqs`` allow, get prefilled together, then advance one token per
decode step until their ``max_tokens``.  The accelerator is emulated: the
time of every prefill and decode step comes from :class:`llmrca.testbed.gpu.GpuModel`
(times ``time_scale``), and the power limit can be changed while the engine
runs by writing ``gpu.json`` in the pod directory, as ``nvidia-smi -pl`` does
(it persists across engine restarts, like a GPU's limit).

The CPU work is real: every step runs the scheduler and every token is
tokenized / detokenized in Python (``cpu_per_token_ms``, ``cpu_per_step_ms``
of CPU time, measured with the thread's CPU clock), so a CPU hog in the pod's
cgroup slows the engine down the same way it slows a real one.

Faults beyond the power cap reach the engine through more control files in
the pod directory, polled every 0.5 s (each carries an ``expires_at`` after
which the engine drops it, in case the injector vanished):

* ``kv.json`` ``{"kv_tokens": N}``: the KV-cache budget is lowered to ``N``
  tokens, as a lower ``gpu_memory_utilization`` leaves less HBM for blocks.
  Admission is vLLM's: a request is scheduled when its context fits; when a
  decode step needs more blocks than are free the most recently scheduled
  request is preempted (recompute mode: back to the head of the queue, its
  KV dropped, prefilled again when readmitted), counted in
  ``vllm:num_preemptions_total``.
* ``thermal.json`` ``{"sm_clock_mhz", "temperature_c", "reasons"}``: the
  accelerator runs in HW/thermal slowdown: its SM clock is held at
  ``sm_clock_mhz``, ``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` carries
  ``reasons`` (NVML clock-event bits), the temperature reads
  ``temperature_c``; the power draw falls with the clock (no power cap).
* ``xid.json`` ``{"xid": 79, "at": t}``: an Xid event raised after this
  process started makes the engine log what the driver and vLLM log and exit
  (the CUDA context is lost); ``DCGM_FI_DEV_XID_ERRORS`` reads the last Xid
  while the file is there.
* ``model_load.json`` ``{"load_s": S}``: read once at start-up; the engine
  "loads the model" for ``S`` seconds before it listens (vLLM's API server
  binds only after the engine is built), or until the file is removed.

Metrics on ``/metrics`` use vLLM's names and bucket boundaries and DCGM's
names; the server-side TTFT counts from the moment the request is scheduled
(vLLM's excludes queueing), the queue time is reported separately.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from llmrca.testbed.gpu import SW_POWER_CAP, GpuModel
from llmrca.testbed.local.common import CONTENT_TYPE, PodLog, SpanWriter, metrics_body, new_id, now

MODEL_NAME = "llmrca/emulated-7b"
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0)
REQ_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0)
VOCAB = [f"tok{i}" for i in range(4096)]


def burn_cpu_ms(ms: float) -> None:
    """Spend ``ms`` of this thread's CPU time (wall time grows when the cgroup is throttled)."""
    if ms <= 0:
        return
    end = time.thread_time() + ms / 1000.0
    h = hashlib.blake2b()
    while time.thread_time() < end:
        for _ in range(50):
            h.update(b"tokenizer-work")


def read_control(path: Path) -> dict | None:
    """The JSON control file at ``path``, or None when it is missing, half-written or expired (an expired one is removed)."""
    try:
        d = json.loads(path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(d, dict):
        return None
    exp = float(d.get("expires_at", 0.0) or 0.0)
    if exp and now() > exp:
        path.unlink(missing_ok=True)  # the injector vanished without undoing its fault: expire it
        return None
    return d


class EmulatedGpu(GpuModel):
    """:class:`GpuModel` plus a hardware/thermal slowdown (NVML clock-event reasons other than the power cap).

    While ``thermal_clock_mhz`` is set the SM clock is the lower of it and the
    power-limited clock; step times (:meth:`GpuModel.slowdown`) and the power
    draw follow the clock, so the draw falls *below* the limit, which tells a
    thermal slowdown from a power cap.
    """

    def __init__(self) -> None:
        super().__init__()
        self.thermal_clock_mhz: float | None = None
        self.thermal_reasons = 0
        self.thermal_temp_c: float | None = None

    def sm_clock_mhz(self, load: float = 1.0) -> float:
        """SM clock (MHz): the power-limited clock, held down to ``thermal_clock_mhz`` during a slowdown."""
        f = super().sm_clock_mhz(load)
        if self.thermal_clock_mhz is not None:
            f = min(f, self.thermal_clock_mhz)
        return f

    def throttle_reasons(self, load: float) -> int:
        """Clock-event bitmask: SW_POWER_CAP (0x4) when the power limit sets the clock, plus the slowdown's bits."""
        power_clock = GpuModel.sm_clock_mhz(self, load)
        bits = SW_POWER_CAP if power_clock < self.gpu.max_sm_clock_mhz - 1e-6 else 0
        if self.thermal_clock_mhz is not None:
            bits |= self.thermal_reasons
        return bits

    def temperature_c(self, util: float) -> float:
        """GPU temperature (°C): 30 °C plus 0.17 °C per watt drawn (an A100 at 300 W reads ~80 °C), or the slowdown's reading."""
        if self.thermal_temp_c is not None:
            return self.thermal_temp_c
        return round(30.0 + 0.17 * self.power_w(util), 1)


@dataclass
class Req:
    """One request in the emulated engine (tokens, arrival in epoch s, trace context)."""
    rid: str
    prompt_tokens: int
    max_tokens: int
    arrival: float
    traceparent: str
    out: asyncio.Queue = field(default_factory=asyncio.Queue)
    scheduled: float = 0.0
    first_token: float = 0.0
    last_token: float = 0.0
    generated: int = 0
    cancelled: bool = False
    preempted: int = 0


class Engine:
    """The emulated vLLM engine: continuous batching on an emulated GPU, OpenAI-style streaming API, vLLM's metrics."""
    def __init__(self, a: argparse.Namespace) -> None:
        self.pod = a.pod
        self.dir = Path(a.dir)
        self.scale = a.time_scale
        self.max_seqs = a.max_num_seqs
        self.kv_tokens_default = a.kv_tokens
        self.kv_tokens = a.kv_tokens
        self.started_at = now()
        self.n_preempt = 0
        self.cpu_tok = a.cpu_per_token_ms
        self.cpu_step = a.cpu_per_step_ms
        self.gpu = EmulatedGpu()
        self.xid = 0
        self.log = PodLog(self.dir / f"{self.pod}.log", "engine")
        self.spans = SpanWriter(self.dir / "spans.jsonl", self.pod)
        self.waiting: deque[Req] = deque()
        self.running: list[Req] = []
        self.wake = asyncio.Event()
        self.busy_s = 0.0
        self.util = 0.0
        self._gpu_mtime = 0.0
        self._gpu_expires = 0.0
        # host memory the engine holds (weights staging, pinned buffers): makes the
        # engine the pod's big process, as a vLLM worker is
        self._host = bytearray(a.host_mem_mib * 2**20)
        for i in range(0, len(self._host), 4096):
            self._host[i] = 1
        r = self.reg = CollectorRegistry()
        lab = ["model_name", "engine"]
        self.lv = (MODEL_NAME, "0")
        self.g_run = Gauge("vllm:num_requests_running", "Requests in the batch", lab, registry=r)
        self.g_wait = Gauge("vllm:num_requests_waiting", "Requests waiting", lab, registry=r)
        self.g_kv = Gauge("vllm:kv_cache_usage_perc", "KV-cache usage (0..1)", lab, registry=r)
        self.c_prompt = Counter("vllm:prompt_tokens", "Prefill tokens", lab, registry=r)
        self.c_gen = Counter("vllm:generation_tokens", "Generated tokens", lab, registry=r)
        self.c_pre = Counter("vllm:num_preemptions", "Preemptions", lab, registry=r)
        self.c_ok = Counter("vllm:request_success", "Finished requests", [*lab, "finished_reason"], registry=r)
        self.h_ttft = Histogram("vllm:time_to_first_token_seconds", "TTFT (from scheduling)", lab, buckets=TTFT_BUCKETS, registry=r)
        self.h_itl = Histogram("vllm:inter_token_latency_seconds", "Inter-token latency", lab, buckets=ITL_BUCKETS, registry=r)
        self.h_e2e = Histogram("vllm:e2e_request_latency_seconds", "End-to-end request latency", lab, buckets=REQ_BUCKETS, registry=r)
        self.h_queue = Histogram("vllm:request_queue_time_seconds", "Time waiting in the queue", lab, buckets=REQ_BUCKETS, registry=r)
        dl = ["gpu", "UUID", "modelName", "Hostname"]
        self.dv = ("0", f"GPU-emulated-{self.pod}", self.gpu.gpu.name, self.pod)
        self.d = {
            n: Gauge(n, n, dl, registry=r)
            for n in (
                "DCGM_FI_DEV_GPU_UTIL",
                "DCGM_FI_DEV_POWER_USAGE",
                "DCGM_FI_DEV_POWER_MGMT_LIMIT",
                "DCGM_FI_DEV_SM_CLOCK",
                "DCGM_FI_DEV_MEM_CLOCK",
                "DCGM_FI_DEV_MEM_COPY_UTIL",
                "DCGM_FI_DEV_FB_USED",
                "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
                "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
                "DCGM_FI_DEV_GPU_TEMP",
                "DCGM_FI_DEV_XID_ERRORS",
            )
        }
        for g in (self.g_run, self.g_wait, self.g_kv):
            g.labels(*self.lv).set(0)
        for c in (self.c_prompt, self.c_gen, self.c_pre):
            c.labels(*self.lv)
        self.c_ok.labels(*self.lv, "length")
        self._tp_prompt = 0
        self._tp_gen = 0

    # -- power limit (nvidia-smi -pl) -----------------------------------------------
    def _poll_gpu_file(self) -> None:
        p = self.dir / "gpu.json"
        if self._gpu_expires and now() > self._gpu_expires:
            p.unlink(missing_ok=True)  # the injector vanished without undoing the cap: expire it
            self._gpu_expires = 0.0
        try:
            m = p.stat().st_mtime
        except FileNotFoundError:
            if self.gpu.power_limit_w != self.gpu.gpu.default_power_limit_w:
                self.gpu.set_power_limit(self.gpu.gpu.default_power_limit_w)
                self.log(f"GPU 0 power limit reset to default {self.gpu.power_limit_w:g} W")
            self._gpu_mtime = 0.0
            return
        if m == self._gpu_mtime:
            return
        self._gpu_mtime = m
        try:
            d = json.loads(p.read_text())
            w = float(d["power_limit_w"])
            self.gpu.set_power_limit(w)
            self._gpu_expires = float(d.get("expires_at", 0.0))
            self.log(f"GPU 0 power limit set to {w:g} W")
        except (ValueError, KeyError, json.JSONDecodeError) as e:
            self.log(f"invalid power limit in {p}: {e}", "ERROR")

    # -- the other faults' control files (kv.json, thermal.json, xid.json) ----------------
    def _poll_fault_files(self) -> None:
        kv = read_control(self.dir / "kv.json")
        budget = self.kv_tokens_default
        if kv is not None:
            try:
                budget = max(1, min(int(kv["kv_tokens"]), self.kv_tokens_default))
            except (KeyError, TypeError, ValueError) as e:
                self.log(f"invalid KV budget in {self.dir / 'kv.json'}: {e}", "ERROR")
        if budget != self.kv_tokens:
            self.kv_tokens = budget
            self.log(f"# GPU blocks for the KV cache now hold {budget} tokens (default {self.kv_tokens_default})", "WARNING")
        th = read_control(self.dir / "thermal.json")
        g = self.gpu
        if th is not None:
            try:
                clock, temp, bits = float(th["sm_clock_mhz"]), float(th["temperature_c"]), int(th["reasons"])
            except (KeyError, TypeError, ValueError) as e:
                self.log(f"invalid slowdown in {self.dir / 'thermal.json'}: {e}", "ERROR")
            else:
                if g.thermal_clock_mhz != clock or g.thermal_reasons != bits:
                    self.log(f"GPU 0 clocks event reasons 0x{bits:x}: SM clock held at {clock:g} MHz, temperature {temp:g} C", "WARNING")
                g.thermal_clock_mhz, g.thermal_temp_c, g.thermal_reasons = clock, temp, bits
        elif g.thermal_clock_mhz is not None:
            g.thermal_clock_mhz, g.thermal_temp_c, g.thermal_reasons = None, None, 0
            self.log("GPU 0 clocks event reasons cleared: SM clock back to normal")
        xid = read_control(self.dir / "xid.json")
        self.xid = int(xid.get("xid", 0)) if xid is not None else 0
        if xid is not None and float(xid.get("at", 0.0)) > self.started_at:
            self._die_of_xid(self.xid)

    def _die_of_xid(self, xid: int) -> None:
        """The GPU is lost: log as the NVIDIA driver (``NVRM: Xid``) and vLLM do, then exit as the engine process does."""
        kern = PodLog(self.dir / f"{self.pod}.log", "kernel")
        pci = "PCI:0000:" + format(0x3B + sum(self.pod.encode()) % 64, "02x") + ":00"
        msg = {79: "GPU has fallen off the bus.", 48: "An uncorrectable double bit error (DBE) has been detected on GPU.",
               94: "Contained ECC error.", 95: "Uncontained ECC error."}.get(xid, "GPU error.")
        kern(f"NVRM: Xid ({pci}): {xid}, pid={os.getpid()}, name=python3, {msg}", "ERROR")
        if xid == 79:
            kern(f"NVRM: GPU {pci.removeprefix('PCI:')}.0: GPU has fallen off the bus.", "ERROR")
        self.log("EngineCore encountered a fatal error.", "ERROR")
        cuda = "unknown error" if xid == 79 else "uncorrectable ECC error encountered"  # cudaErrorUnknown / cudaErrorECCUncorrectable
        self.log(f"RuntimeError: CUDA error: {cuda}. CUDA kernel errors might be asynchronously reported "
                 "at some other API call, so the stacktrace below might be incorrect.", "ERROR")
        self.log(f"AsyncLLM output_handler failed. vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. "
                 f"See stack trace (above) for the root cause. ({len(self.running)} running, {len(self.waiting)} waiting requests aborted)", "ERROR")
        os._exit(1)

    def _load(self) -> float:
        return max(self.util, 0.3)

    # -- scheduling loop ------------------------------------------------------------
    def _kv_used(self) -> int:
        return sum(r.prompt_tokens + r.generated for r in self.running)

    def _preempt_for_decode(self) -> None:
        """vLLM's recompute preemption: while the next decode step needs more KV than the budget holds, drop the latest-scheduled request."""
        while len(self.running) > 1 and self._kv_used() + len(self.running) > self.kv_tokens:
            r = self.running.pop()
            r.preempted += 1
            self.waiting.appendleft(r)
            self.c_pre.labels(*self.lv).inc()
            self.n_preempt += 1
            if self.n_preempt % 50 == 1:
                self.log(
                    f"Sequence group {r.rid} is preempted by PreemptionMode.RECOMPUTE mode because there is not enough KV cache space. "
                    "This can affect the end-to-end performance. Increase gpu_memory_utilization or tensor_parallel_size to provide more "
                    f"KV cache memory. total_num_cumulative_preemption={self.n_preempt}",
                    "WARNING",
                )

    async def loop(self) -> None:
        """The scheduling loop: admit, prefill and decode steps while there is work."""
        while True:
            if not self.waiting and not self.running:
                self.wake.clear()
                await self.wake.wait()
                continue
            burn_cpu_ms(self.cpu_step)  # scheduler work
            admitted: list[Req] = []
            watermark = int(0.01 * self.kv_tokens)  # vLLM keeps 1 % of the blocks free when admitting
            while self.waiting and len(self.running) + len(admitted) < self.max_seqs:
                r = self.waiting[0]
                if r.cancelled:
                    self.waiting.popleft()
                    continue
                ctx = r.prompt_tokens + r.generated  # a preempted request is prefilled again with what it generated
                need = self._kv_used() + sum(x.prompt_tokens + x.generated for x in admitted) + ctx + watermark
                if need > self.kv_tokens and (self.running or admitted):
                    break
                admitted.append(self.waiting.popleft())
            t = now()
            for r in admitted:
                if not r.scheduled:
                    r.scheduled = t
                    self.h_queue.labels(*self.lv).observe(t - r.arrival)
                    burn_cpu_ms(self.cpu_tok * r.prompt_tokens / 8)  # tokenization of the prompt
            if admitted:
                tokens = sum(r.prompt_tokens + r.generated for r in admitted)
                step = self.gpu.prefill_s(tokens, self._load()) * self.scale
                self.running.extend(admitted)
                self.c_prompt.labels(*self.lv).inc(tokens)
                self._tp_prompt += tokens
                emit = admitted  # prefill produces the next token of the admitted requests
            else:
                self._preempt_for_decode()
                step = self.gpu.decode_step_s(len(self.running), self._kv_used(), self._load()) * self.scale
                emit = list(self.running)
            t0 = time.monotonic()
            await asyncio.sleep(step)
            self.busy_s += time.monotonic() - t0
            self._emit(emit)

    def _emit(self, reqs: list[Req]) -> None:
        t = now()
        for r in reqs:
            if r.cancelled:
                self._finish(r, "abort")
                continue
            if r not in self.running:
                continue  # preempted while the step ran
            burn_cpu_ms(self.cpu_tok)  # sampling + detokenization
            tok = VOCAB[hash((r.rid, r.generated)) % len(VOCAB)]
            r.generated += 1
            self.c_gen.labels(*self.lv).inc()
            self._tp_gen += 1
            if r.generated == 1:
                r.first_token = t
                self.h_ttft.labels(*self.lv).observe(t - r.scheduled)
            else:
                self.h_itl.labels(*self.lv).observe(t - r.last_token)
            r.last_token = t
            done = r.generated >= r.max_tokens
            r.out.put_nowait((tok, done))
            if done:
                self._finish(r, "length")

    def _finish(self, r: Req, reason: str) -> None:
        if r in self.running:
            self.running.remove(r)
        t = now()
        if reason != "abort":
            self.c_ok.labels(*self.lv, reason).inc()
            self.h_e2e.labels(*self.lv).observe(t - r.arrival)
        self.spans.record("/v1/chat/completions", r.arrival, t - r.arrival, method="POST", status=200 if reason != "abort" else 499,
                          traceparent=r.traceparent)

    # -- telemetry ticker -------------------------------------------------------------
    async def ticker(self) -> None:
        """Every 0.5 s: the DCGM gauges (utilisation, power, clocks); every 5 s of activity vLLM's throughput log line."""
        last_t = time.monotonic()
        last_busy = 0.0
        last_log = last_t
        while True:
            await asyncio.sleep(0.5)
            self._poll_gpu_file()
            self._poll_fault_files()
            t = time.monotonic()
            # a step in flight counts as busy up to now
            frac = min((self.busy_s - last_busy) / max(t - last_t, 1e-6), 1.0)
            self.util = 0.6 * self.util + 0.4 * frac
            last_t, last_busy = t, self.busy_s
            self.g_run.labels(*self.lv).set(len(self.running))
            self.g_wait.labels(*self.lv).set(len(self.waiting))
            self.g_kv.labels(*self.lv).set(min(self._kv_used() / self.kv_tokens, 1.0))
            g, load = self.gpu, self._load()
            busy = self.util > 0.01
            vals = {
                "DCGM_FI_DEV_GPU_UTIL": round(100 * self.util),
                "DCGM_FI_DEV_POWER_USAGE": g.power_w(self.util),
                "DCGM_FI_DEV_POWER_MGMT_LIMIT": g.power_limit_w,
                "DCGM_FI_DEV_SM_CLOCK": g.sm_clock_mhz(load) if busy else 210.0,
                "DCGM_FI_DEV_MEM_CLOCK": 1512.0,
                "DCGM_FI_DEV_MEM_COPY_UTIL": round(100 * self.util * 0.6),
                "DCGM_FI_DEV_FB_USED": g.framebuffer_used_mib(),
                "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE": self.util * 0.35,
                "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": g.throttle_reasons(load) if busy or g.thermal_clock_mhz is not None else 0,
                "DCGM_FI_DEV_GPU_TEMP": g.temperature_c(self.util),
                "DCGM_FI_DEV_XID_ERRORS": self.xid,
            }
            for k, v in vals.items():
                self.d[k].labels(*self.dv).set(v)
            if t - last_log >= 5.0 and (self._tp_gen or self._tp_prompt or self.running or self.waiting):
                dt = t - last_log
                self.log(
                    f"Avg prompt throughput: {self._tp_prompt / dt:.1f} tokens/s, Avg generation throughput: {self._tp_gen / dt:.1f} tokens/s, "
                    f"Running: {len(self.running)} reqs, Waiting: {len(self.waiting)} reqs, GPU KV cache usage: {100 * self._kv_used() / self.kv_tokens:.1f}%"
                )
                self._tp_prompt = self._tp_gen = 0
                last_log = t
            elif t - last_log >= 5.0:
                last_log = t

    # -- HTTP -------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/chat/completions``: stream the completion as server-sent events (400 on a bad body)."""
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": {"message": "body is not JSON", "type": "BadRequestError"}}, status=400)
        text = " ".join(str(m.get("content", "")) for m in body.get("messages", []) if isinstance(m, dict)) or str(body.get("prompt", ""))
        words = text.split()
        burn_cpu_ms(self.cpu_tok * len(words) / 8)
        prompt_tokens = max(len(words), 1)
        max_tokens = int(body.get("max_tokens") or body.get("max_completion_tokens") or 64)
        r = Req(new_id(), prompt_tokens, max_tokens, now(), request.headers.get("traceparent", ""))
        self.waiting.append(r)
        self.wake.set()
        rid = f"chatcmpl-{r.rid}"
        created = int(time.time())
        stream = bool(body.get("stream"))
        if not stream:
            toks = []
            while True:
                tok, done = await r.out.get()
                toks.append(tok)
                if done:
                    break
            return web.json_response(
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": created,
                    "model": MODEL_NAME,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": " ".join(toks)}, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(toks), "total_tokens": prompt_tokens + len(toks)},
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        try:
            while True:
                tok, done = await r.out.get()
                chunk = {
                    "id": rid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": MODEL_NAME,
                    "choices": [{"index": 0, "delta": {"content": tok + " "}, "finish_reason": "length" if done else None}],
                }
                await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                if done:
                    break
            if include_usage:
                u = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": MODEL_NAME, "choices": [],
                     "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": r.generated, "total_tokens": prompt_tokens + r.generated}}
                await resp.write(b"data: " + json.dumps(u).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            r.cancelled = True
            raise
        return resp

    async def metrics(self, request: web.Request) -> web.Response:
        """``GET /metrics`` in the Prometheus text format."""
        return web.Response(body=metrics_body(self.reg), headers={"Content-Type": CONTENT_TYPE})

    async def health(self, request: web.Request) -> web.Response:
        """``GET /health``: 200 ``ok`` while the engine serves."""
        return web.Response(text="ok")

    async def gpu_info(self, request: web.Request) -> web.Response:
        """``GET /admin/gpu``: power limit, its default and draw (W), SM clock (MHz), utilisation (0..1), throttle reasons."""
        g = self.gpu
        return web.json_response(
            {"power_limit_w": g.power_limit_w, "default_power_limit_w": g.gpu.default_power_limit_w, "power_w": g.power_w(self.util),
             "sm_clock_mhz": g.sm_clock_mhz(self._load()),
             "util": self.util, "throttle_reasons": g.throttle_reasons(self._load()), "temperature_c": g.temperature_c(self.util),
             "xid": self.xid, "kv_tokens": self.kv_tokens, "kv_usage": min(self._kv_used() / self.kv_tokens, 1.0),
             "num_preemptions": self.n_preempt, "running": len(self.running), "waiting": len(self.waiting)}
        )

    async def models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``: the one served model."""
        return web.json_response({"object": "list", "data": [{"id": MODEL_NAME, "object": "model"}]})

    async def load_model(self) -> float:
        """Load the weights: instant, unless ``model_load.json`` asks for ``load_s`` seconds (ends early when the file goes); returns seconds taken.

        Nothing listens meanwhile, as vLLM's API server binds only after the
        engine is built: the sidecar answers 503, the router and the
        supervisor's health check see the replica down.
        """
        ctl = self.dir / "model_load.json"
        d = read_control(ctl)
        t0 = time.monotonic()
        self.log(f"Starting to load model {MODEL_NAME}...")
        if d is not None:
            try:
                load_s = max(float(d.get("load_s", 0.0)), 0.0)
            except (TypeError, ValueError):
                load_s = 0.0
            self.log(f"Loading safetensors checkpoint shards from {d.get('source', 'the model store')} (expected {load_s:g} s)")
            while time.monotonic() - t0 < load_s and ctl.exists():
                await asyncio.sleep(0.25)
        took = time.monotonic() - t0
        w = self.gpu.model.weight_bytes / 2**30
        self.log(f"Model loading took {w:.2f} GiB and {took:.2f} seconds")
        return took

    async def run(self, port: int) -> None:
        """Serve the API on 127.0.0.1:``port`` and run the loops until cancelled."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/health", self.health)
        app.router.add_get("/admin/gpu", self.gpu_info)
        app.router.add_get("/v1/models", self.models)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await self.load_model()
        self._poll_gpu_file()
        asyncio.get_running_loop().create_task(self.loop())
        asyncio.get_running_loop().create_task(self.ticker())
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        self.log(
            f"Started engine (emulated {self.gpu.gpu.name}, model {MODEL_NAME}, time_scale {self.scale:g}, max_num_seqs {self.max_seqs}, "
            f"KV cache {self.kv_tokens} tokens) on port {port}, pid {os.getpid()}"
        )
        await asyncio.Event().wait()


def main() -> None:
    """Command line of the engine process (started by the supervisor)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--pod", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--time-scale", type=float, default=3.0)
    ap.add_argument("--max-num-seqs", type=int, default=32)
    ap.add_argument("--kv-tokens", type=int, default=4096)
    ap.add_argument("--cpu-per-token-ms", type=float, default=0.5)
    ap.add_argument("--cpu-per-step-ms", type=float, default=1.0)
    ap.add_argument("--host-mem-mib", type=int, default=96)
    a = ap.parse_args()
    asyncio.run(Engine(a).run(a.port))


if __name__ == "__main__":
    main()
