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

The local-testbed implementation lives next to it (``LocalKvCachePressure``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.testbed.gpu import GpuModel, ModelSpec
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
