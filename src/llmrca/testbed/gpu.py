"""A GPU performance model for LLM serving: power cap -> SM clock -> step times.

Shared by the simulator and the local testbed's emulated accelerator, so the
two backends agree on what a power cap does.  The model is deliberately
small and physical:

* Dynamic power grows roughly with ``f**alpha`` (``P = V·I``, voltage scaling
  with frequency gives ``alpha`` between 2 and 3).  Under a power cap the
  driver lowers the SM clock until the draw fits: ``f = fmax ·
  ((cap - P_idle) / (P_busy - P_idle)) ** (1/alpha)``, never above ``fmax``.
  The "SW power cap" clock-event reason (bit 0x4) is set whenever the cap,
  not the workload, sets the clock.
* Prefill is compute bound: its time scales with ``fmax / f``.
* Decode is memory-bandwidth bound; the memory clock does not change under a
  power cap, but part of each step (attention kernels, sampling, launch
  gaps) runs on the SMs, so a fraction ``decode_sm_share`` of the step
  scales with ``fmax / f``.
* Utilisation (the fraction of time a kernel runs) and framebuffer use do
  not depend on the clock: a throttled GPU is just as "busy", which is why
  the paper's baselines cannot see throttling in utilisation.

Defaults describe an A100 80GB PCIe (300 W default limit, 150 W minimum,
1410 MHz max SM clock, ~1.9 TB/s HBM, 312 dense BF16 TFLOP/s) serving a 7B
model in BF16.  Published measurements it is checked against (PROTOCOL.md
§1): capping 250→175 W costs a few per cent of latency; prefill suffers
before decode; memory clock is unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass

SW_POWER_CAP = 0x4  # DCGM clock event reason bit


@dataclass(frozen=True)
class GpuSpec:
    """An accelerator's datasheet numbers (watts, MHz, MiB); defaults: A100 80GB PCIe."""
    name: str = "A100-80GB-PCIe"
    default_power_limit_w: float = 300.0
    min_power_limit_w: float = 150.0
    max_power_limit_w: float = 300.0
    max_sm_clock_mhz: float = 1410.0
    idle_power_w: float = 55.0
    busy_power_w: float = 285.0  # draw at max clock under a typical serving load
    power_exponent: float = 2.6
    hbm_bandwidth_gbs: float = 1935.0
    peak_tflops: float = 312.0
    framebuffer_mib: float = 81920.0


@dataclass(frozen=True)
class ModelSpec:
    """The served model (defaults: a 7B decoder in BF16)."""

    params_b: float = 7.0
    bytes_per_param: float = 2.0
    kv_bytes_per_token: float = 131072.0  # 32 layers × 2 × 8 KV heads × 128 × 2 B
    prefill_mfu: float = 0.45  # achieved fraction of peak FLOP/s in prefill
    decode_bw_eff: float = 0.75  # achieved fraction of HBM bandwidth in decode
    decode_sm_share: float = 0.45  # part of a decode step that runs at SM clock
    gpu_memory_utilization: float = 0.9  # vLLM preallocates this share of HBM

    @property
    def weight_bytes(self) -> float:
        """Bytes of the model's weights on the GPU (parameters x bytes per parameter)."""
        return self.params_b * 1e9 * self.bytes_per_param


class GpuModel:
    """Step times and DCGM-style readings of one GPU under a power limit."""

    def __init__(self, gpu: GpuSpec | None = None, model: ModelSpec | None = None) -> None:
        self.gpu = gpu or GpuSpec()
        self.model = model or ModelSpec()
        self._limit_w = self.gpu.default_power_limit_w

    # -- power management (what ``nvidia-smi -pl`` does) ----------------------
    @property
    def power_limit_w(self) -> float:
        """The power limit in force (W), as ``nvidia-smi -q`` reads it back."""
        return self._limit_w

    def set_power_limit(self, watts: float) -> float:
        """Set the power limit; like nvidia-smi, reject values outside the range."""
        g = self.gpu
        if not (g.min_power_limit_w <= watts <= g.max_power_limit_w):
            raise ValueError(
                f"power limit {watts} W is outside the range {g.min_power_limit_w:g}..{g.max_power_limit_w:g} W of {g.name}"
            )
        self._limit_w = float(watts)
        return self._limit_w

    def sm_clock_mhz(self, load: float = 1.0) -> float:
        """SM clock at a given load (0..1 share of time busy) under the current limit."""
        g = self.gpu
        busy = g.idle_power_w + (g.busy_power_w - g.idle_power_w) * max(load, 0.0)
        if busy <= self._limit_w or load <= 0:
            return g.max_sm_clock_mhz
        ratio = (self._limit_w - g.idle_power_w) / (busy - g.idle_power_w)
        return g.max_sm_clock_mhz * max(ratio, 0.05) ** (1.0 / g.power_exponent)

    def power_w(self, load: float) -> float:
        """Power draw at a load, after the clock has adapted to the limit."""
        g = self.gpu
        f = self.sm_clock_mhz(load) / g.max_sm_clock_mhz
        return g.idle_power_w + (g.busy_power_w - g.idle_power_w) * max(load, 0.0) * f**g.power_exponent

    def throttle_reasons(self, load: float) -> int:
        """DCGM's clock-throttle bitmask at utilisation ``load`` (0..1): ``SW_POWER_CAP`` when the SM clock is below its maximum, else 0."""
        return SW_POWER_CAP if self.sm_clock_mhz(load) < self.gpu.max_sm_clock_mhz - 1e-6 else 0

    def slowdown(self, load: float = 1.0) -> float:
        """``fmax / f``: how much longer SM-bound work takes (1.0 = unthrottled)."""
        return self.gpu.max_sm_clock_mhz / self.sm_clock_mhz(load)

    # -- step times -------------------------------------------------------------
    def prefill_s(self, tokens: int, load: float = 1.0) -> float:
        """Time to prefill ``tokens`` prompt tokens (compute bound)."""
        flops = 2.0 * self.model.params_b * 1e9 * tokens
        rate = self.gpu.peak_tflops * 1e12 * self.model.prefill_mfu
        return flops / rate * self.slowdown(load)

    def decode_step_s(self, batch: int, context_tokens: int, load: float = 1.0) -> float:
        """Time of one decode step for ``batch`` sequences holding ``context_tokens`` KV entries in all."""
        m = self.model
        bytes_moved = m.weight_bytes + m.kv_bytes_per_token * context_tokens
        mem_s = bytes_moved / (self.gpu.hbm_bandwidth_gbs * 1e9 * m.decode_bw_eff)
        compute_s = 2.0 * m.params_b * 1e9 * batch / (self.gpu.peak_tflops * 1e12 * m.prefill_mfu)
        base = max(mem_s, compute_s)
        s = self.slowdown(load)
        return base * ((1.0 - m.decode_sm_share) + m.decode_sm_share * s)

    # -- memory -------------------------------------------------------------------
    def framebuffer_used_mib(self) -> float:
        """vLLM preallocates weights + KV cache up front: constant while serving."""
        return self.gpu.framebuffer_mib * self.model.gpu_memory_utilization

    def kv_capacity_tokens(self) -> int:
        """Tokens of KV cache that fit next to the weights (vLLM's ``gpu_memory_utilization`` share of the framebuffer), >= 0."""
        m = self.model
        free = self.gpu.framebuffer_mib * 2**20 * m.gpu_memory_utilization - m.weight_bytes
        return int(max(free, 0) / m.kv_bytes_per_token)
