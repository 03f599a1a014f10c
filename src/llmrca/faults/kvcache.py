"""KV-cache pressure: a replica whose KV cache is too small for its load (issue 16).

* :class:`SimKvCachePressure` (simulator): the target replica's KV cache shrinks to what
  ``gpu_memory_utilization`` leaves next to the weights (vLLM preallocates
  ``gpu_memory_utilization x framebuffer``; the weights come first, the KV blocks get the
  rest).  A lowered share — a replica redeployed with ``--gpu-memory-utilization`` cut to
  make room for a second model on the same GPU (Ray Serve's fractional ``num_gpus``), or,
  equivalently, long prompts filling a normal cache — leaves room for a few thousand tokens:
  the cache runs near 100 %, the scheduler preempts the youngest running requests
  (recompute), new requests wait, TTFT and the queue time rise.  Requests that fit still
  run; nothing fails.

Source: vLLM docs, "Optimization and Tuning — Preemption": when the KV cache cannot hold
every running request vLLM preempts requests (``PreemptionMode.RECOMPUTE``) and warns
"Sequence group … is preempted by PreemptionMode.RECOMPUTE mode because there is not enough
KV cache space … Increase gpu_memory_utilization or tensor_parallel_size to provide more KV
cache memory"; the ``vllm:num_preemptions_total`` counter and ``vllm:kv_cache_usage_perc``
(v0: ``vllm:gpu_cache_usage_perc``) gauge are vLLM's production metrics.

vLLM preallocates ``gpu_memory_utilization`` of the GPU's memory; what the
weights leave is the KV cache (vLLM docs, "Optimization and Tuning":
*Preemption* — "the KV cache space is insufficient to handle all batched
requests ... vLLM preempts requests ... `total_num_cumulative_preemption`";
the advice is to raise ``gpu_memory_utilization``).  Recompute is vLLM's
default preemption mode (vllm-project/vllm PR #12, "Implement preemption via
recomputation"); its warning "Sequence group ... is preempted by
PreemptionMode.RECOMPUTE mode because there is not enough KV cache space" is
what operators report under long prompts (vllm-project/vllm issue #16832).
The fault plays both causes together: a lowered KV budget and a stream of
long prompts into the target.

* :class:`LocalKvCachePressure` (local testbed): the emulated engine's KV
  budget is lowered through ``kv.json`` (what a restart with a lower
  ``gpu_memory_utilization`` would leave, computed with the accelerator's
  model: weights stay, the KV share shrinks) and long prompts are sent to the
  target pod's API (through its sidecar, so they are the pod's traffic).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import numpy as np

from llmrca.faults.local import EngineSampler, LocalInjector, engine_metrics
from llmrca.testbed.gpu import GpuModel, ModelSpec
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun

_PREEMPT_LINE = (
    "WARNING {ts} [scheduler.py:1560] Sequence group {sid} is preempted by PreemptionMode.RECOMPUTE mode because there is not "
    "enough KV cache space. This can affect the end-to-end performance. Increase gpu_memory_utilization or tensor_parallel_size "
    "to provide more KV cache memory. total_num_cumulative_preemption={n}"
)


class SimKvCachePressure(SimFault):
    """The target replica's KV cache holds only what ``gpu_memory_utilization`` leaves after the weights."""

    type = "kv-cache"
    # vLLM's default is 0.9; 0.168 of an 80 GB A100 leaves ~3.3 k tokens of KV cache for a 7B model in BF16
    defaults: ClassVar[dict[str, Any]] = {"gpu_memory_utilization": 0.168}
    ends_on = ("restart",)  # a restarted replica comes back with the deployment's own setting
    roles = ("head", "worker")

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``gpu_memory_utilization`` in (0, 1] and large enough to hold the weights and one long request."""
        u = p["gpu_memory_utilization"]
        if not 0 < u <= 1:
            return ["gpu_memory_utilization must be in (0, 1] (a share of the GPU's memory)"]
        cap = GpuModel(model=ModelSpec(gpu_memory_utilization=u)).kv_capacity_tokens()
        if cap < 2048:
            return [f"gpu_memory_utilization={u:g} leaves {cap} tokens of KV cache next to the weights; vLLM refuses to start below one request's context (>= 2048 tokens)"]
        return []

    def bind(self, run: SimRun) -> None:
        """The reduced capacity (tokens); counters of what the fault did."""
        super().bind(run)
        self.cap = float(GpuModel(model=ModelSpec(gpu_memory_utilization=float(self.params["gpu_memory_utilization"]))).kv_capacity_tokens())
        self.pre0: float | None = None
        self.now = run.t0
        self.logged = 0
        self.usage: list[float] = []
        self.waiting: list[float] = []

    def kv_capacity(self, run: SimRun, cap: np.ndarray, on: bool) -> np.ndarray:
        """The target's capacity is :attr:`cap` tokens while the fault is on."""
        if on:
            cap[self.tgt] = min(cap[self.tgt], self.cap)
        return cap

    def on_tick(self, run: SimRun, t: float, on: bool) -> None:
        """Remember the tick's time (for the log lines)."""
        self.now = t

    def after_step(self, run: SimRun, gpu_busy: np.ndarray, on: bool) -> None:
        """vLLM's preemption warning: at the first preemption and every 50th (vLLM rate-limits it so)."""
        if not on:
            return
        n = float(run.tot["pre"][self.tgt])
        if self.pre0 is None:
            self.pre0 = n
        k = int(n - self.pre0)
        if k > self.logged and (self.logged == 0 or k // 50 > self.logged // 50):
            self.logged = k
            t = self.now + run.dt
            run.fault_logs.append((t, self.target, _PREEMPT_LINE.format(ts=_ts(t), sid=int(n), n=k)))

    def on_scrape(self, run: SimRun, s: int, on: bool) -> None:
        """KV-cache use and waiting requests of the target while the fault is on."""
        if self.scrape_on(run, s):
            self.usage.append(float(run.rep_s["kv_usage"][s, self.tgt]))
            self.waiting.append(float(run.rep_s["waiting"][s, self.tgt]))

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """KV capacity (tokens, normal and under the fault), peak and mean use, preemptions and mean waiting requests."""
        return {
            "kv_capacity_tokens": int(self.cap),
            "normal_kv_capacity_tokens": int(run.sim.kv_cap),
            "peak_kv_usage": round(max(self.usage), 3) if self.usage else None,
            "mean_kv_usage": round(float(np.mean(self.usage)), 3) if self.usage else None,
            "preemptions": int(float(run.tot["pre"][self.tgt]) - (self.pre0 or 0.0)),
            "mean_waiting": round(float(np.mean(self.waiting)), 2) if self.waiting else None,
        }


def _ts(t: float) -> str:
    import time

    return time.strftime("%m-%d %H:%M:%S", time.gmtime(t))


def kv_budget_tokens(default_tokens: int, gpu_memory_utilization: float) -> int:
    """KV tokens left at ``gpu_memory_utilization`` when ``default_tokens`` is what vLLM's default (0.9) leaves; >= 0.

    The ratio is the emulated accelerator's (A100 80 GB, 7B model in BF16): the weights take a fixed share.
    """
    ref = GpuModel().kv_capacity_tokens()
    now_ = GpuModel(model=ModelSpec(gpu_memory_utilization=gpu_memory_utilization)).kv_capacity_tokens()
    return int(default_tokens * now_ / ref) if ref else 0


class LongPrompts:
    """Long chat completions sent to ``url`` at ``qps`` (constant spacing) from an event loop in a thread; stopped by cancelling them."""

    def __init__(self, url: str, qps: float, prompt_tokens: int, output_tokens: int, seed: int) -> None:
        self.url, self.qps, self.prompt_tokens, self.output_tokens = url, qps, prompt_tokens, output_tokens
        self.rng = random.Random(seed)
        self.sent = self.completed = self.failed = 0
        self.ttft_s: list[float] = []
        self._loop = asyncio.new_event_loop()
        self._task: asyncio.Task | None = None
        self._thr = threading.Thread(target=self._run, daemon=True)
        self._thr.start()

    def _prompt(self) -> str:
        return " ".join(f"w{self.rng.randrange(4096)}" for _ in range(self.prompt_tokens))

    async def _one(self, s: aiohttp.ClientSession) -> None:
        body = {"model": "x", "messages": [{"role": "user", "content": self._prompt()}], "max_tokens": self.output_tokens, "stream": True}
        t0 = time.monotonic()
        first = None
        try:
            async with s.post(self.url, json=body) as r:
                if r.status != 200:
                    self.failed += 1
                    return
                async for _ in r.content.iter_any():
                    if first is None:
                        first = time.monotonic() - t0
                        self.ttft_s.append(first)
            self.completed += 1
        except (aiohttp.ClientError, TimeoutError, OSError):
            self.failed += 1

    async def _main(self) -> None:
        if self.qps <= 0:
            return
        tasks: set[asyncio.Task] = set()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_connect=5.0)) as s:
            try:
                while True:
                    t = asyncio.create_task(self._one(s))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
                    self.sent += 1
                    await asyncio.sleep(1.0 / self.qps)
            finally:
                for t in list(tasks):
                    t.cancel()  # closes the connection: the engine aborts the request
                await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._task = self._loop.create_task(self._main())
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._task)
        self._loop.close()

    def stop(self) -> None:
        """Cancel the sender and every request in flight (idempotent); waits up to 10 s."""
        if self._thr.is_alive():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(lambda: self._task.cancel() if self._task else None)
            self._thr.join(timeout=10)


class LocalKvCachePressure(LocalInjector):
    """Lowered KV budget (``kv.json``) plus long prompts into the target; measures KV usage, preemptions, queue and TTFT.

    Parameters: ``gpu_memory_utilization`` (vLLM's option, 0 < x <= 0.9; the
    budget is what it leaves beside the weights, scaled to the testbed's
    ``kv_tokens``), ``long_prompt_tokens`` / ``long_output_tokens`` / ``long_qps``
    (the long requests; ``long_qps`` 0 sends none), ``seed``.  Achieved: the
    budget read back, KV usage (max / mean, 0..1), preemptions, the most
    requests waiting, the engine's mean TTFT and queue time before (since
    start) and during, the long requests sent / completed / failed.
    """

    needs_engine = True

    fault_type = "kv-cache"
    # vLLM's default 0.9 lowered to 0.25 (12 % of the KV blocks stay), plus long requests (192 prompt + 192 output tokens: they grow in the cache) at 0.3/s
    defaults: ClassVar[dict[str, Any]] = {"gpu_memory_utilization": 0.25, "long_prompt_tokens": 192, "long_output_tokens": 192,
                                          "long_qps": 0.3, "seed": 0}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """Range checks: utilisation in (weights' share, 0.9], tokens >= 1, ``long_qps`` in 0..20."""
        bad = []
        try:
            u = float(p["gpu_memory_utilization"])
            if not 0 < u <= 0.9:
                bad.append(f"gpu_memory_utilization={u:g} must be in (0, 0.9] (vLLM's default is 0.9; lower it to shrink the cache)")
            elif kv_budget_tokens(4096, u) <= 0:
                m, g = ModelSpec(), GpuModel().gpu
                bad.append(f"gpu_memory_utilization={u:g} leaves no room for the KV cache beside the {m.weight_bytes / 2**30:.1f} GiB of weights "
                           f"on the {g.framebuffer_mib / 1024:g} GiB accelerator: use > {m.weight_bytes / (g.framebuffer_mib * 2**20):.2f}")
            for k in ("long_prompt_tokens", "long_output_tokens"):
                if int(p[k]) < 1:
                    bad.append(f"{k} must be >= 1")
            if not 0 <= float(p["long_qps"]) <= 20:
                bad.append("long_qps must be in 0..20 requests/s (0: no long prompts)")
        except (TypeError, ValueError) as e:
            bad.append(f"parameters must be numbers: {e}")
        return bad

    def start(self) -> None:
        """Lower the budget, wait until the engine reads it back, start the long prompts and the sampler."""
        p = self.params
        url = self._engine_url()
        self.before = self._engine_state(wait_s=60.0)
        self.m0 = engine_metrics(url)
        default = int(self.tb.config.kv_tokens)
        self.budget = max(kv_budget_tokens(default, float(p["gpu_memory_utilization"])), 1)
        self.ctl = self._write_control("kv.json", {"kv_tokens": self.budget, "gpu_memory_utilization": float(p["gpu_memory_utilization"])})
        deadline = time.monotonic() + 5.0
        while int(self._engine_state(wait_s=5.0).get("kv_tokens", -1)) != self.budget:
            if time.monotonic() > deadline:
                raise FaultError(f"the engine of {self.spec.target} did not take the KV budget of {self.budget} tokens within 5 s")
            time.sleep(0.2)
        self.t0 = time.time()
        api = f"http://127.0.0.1:{self.tb.state.pods[self.spec.target]['ports']['api']}/v1/chat/completions"
        self.load = LongPrompts(api, float(p["long_qps"]), int(p["long_prompt_tokens"]), int(p["long_output_tokens"]), int(p["seed"]))
        self.sampler = EngineSampler(self, 0.5)

    def measure(self) -> dict[str, Any]:
        """Budget, KV usage, preemptions, queue, TTFT and queue time before/during, long requests (see the class docstring)."""
        self.sampler.stop()
        m1 = engine_metrics(self._engine_url())
        kv, wait = self.sampler.col("kv_usage"), self.sampler.col("waiting")

        def mean(m: dict[str, float], h: str) -> float | None:
            n = m.get(h + "_count", 0.0)
            return round(m.get(h + "_sum", 0.0) / n, 4) if n else None

        def delta_mean(h: str) -> float | None:
            n = m1.get(h + "_count", 0.0) - self.m0.get(h + "_count", 0.0)
            return round((m1.get(h + "_sum", 0.0) - self.m0.get(h + "_sum", 0.0)) / n, 4) if n > 0 else None

        ttft, qt = "vllm:time_to_first_token_seconds", "vllm:request_queue_time_seconds"
        return {
            "kv_tokens_read_back": self.budget if any(int(s.get("kv_tokens", -1)) == self.budget for s in self.sampler.samples) else None,
            "kv_tokens_default": int(self.before.get("kv_tokens", self.tb.config.kv_tokens)),
            "kv_usage_max": round(max(kv), 3) if kv else None,
            "kv_usage_mean": round(statistics.fmean(kv), 3) if kv else None,
            "kv_usage_before": round(float(self.before.get("kv_usage", 0.0)), 3),
            "preemptions": int(m1.get("vllm:num_preemptions_total", 0.0) - self.m0.get("vllm:num_preemptions_total", 0.0)) if m1 else None,
            "waiting_max": int(max(wait)) if wait else None,
            "ttft_mean_s_before": mean(self.m0, ttft),
            "ttft_mean_s_during": delta_mean(ttft),
            "queue_time_mean_s_before": mean(self.m0, qt),
            "queue_time_mean_s_during": delta_mean(qt),
            "long_requests_sent": self.load.sent,
            "long_requests_completed": self.load.completed,
            "long_requests_failed": self.load.failed,
            "long_client_ttft_s_median": round(statistics.median(self.load.ttft_s), 3) if self.load.ttft_s else None,
            "samples": len(self.sampler.samples),
        }

    def stop(self) -> None:
        """Stop the long prompts (their requests are aborted), restore the budget and wait (3 s) for the engine to read it (idempotent)."""
        if getattr(self, "load", None) is not None:
            self.load.stop()
        if getattr(self, "sampler", None) is not None:
            self.sampler.stop()
        if getattr(self, "ctl", None) is not None:
            self.ctl.unlink(missing_ok=True)
            self.ctl = None
            deadline = time.monotonic() + 3.0  # the engine polls its control files every 0.5 s
            while time.monotonic() < deadline:
                try:
                    if int(self._engine_state().get("kv_tokens", -1)) != self.budget:
                        return
                except FaultError:
                    return
                time.sleep(0.2)
