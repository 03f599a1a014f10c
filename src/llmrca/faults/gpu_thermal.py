"""GPU thermal / hardware slowdown: the clocks fall for a reason other than the power cap (issue 16).

* :class:`SimGpuThermal` (simulator): the target GPU's cooling fails (a fan, blocked
  airflow, a hot aisle); its temperature climbs from its working point to the slowdown
  threshold in ``heat_time_s``, then the hardware thermal slowdown holds it there by cutting
  the SM clock to ``clock_factor`` of its maximum.  The clock-event reasons read
  ``HW_THERMAL_SLOWDOWN (0x40) | HW_SLOWDOWN (0x8)``; the power limit is untouched and the
  draw *falls* (``P ~ f^alpha`` at a lower clock), far below the limit — unlike a power cap
  (0x4, power pinned at its lowered limit).  Prefill and the SM-bound part of decode slow
  down by ``1 / clock_factor``; DCGM's thermal-violation counter accumulates the time.

Source: NVIDIA NVML API reference, ``nvmlClocksEventReasons`` (``…SwPowerCap 0x4``,
``…HwSlowdown 0x8``, ``…SwThermalSlowdown 0x20``, ``…HwThermalSlowdown 0x40``,
``…HwPowerBrakeSlowdown 0x80``) and ``nvidia-smi -q`` "Clocks Event Reasons" ("HW Slowdown:
… reducing the core clocks by a factor of 2 or more … temperature being too high"); DCGM
fields ``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` (``…_CLOCKS_EVENT_REASONS`` since DCGM 3.3),
``DCGM_FI_DEV_GPU_TEMP``, ``DCGM_FI_DEV_THERMAL_VIOLATION``.

NVML's clock-event reasons (NVML API reference, ``nvmlClocksEventReasons``;
DCGM ``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` maps them 1:1): ``HW_SLOWDOWN``
0x8 ("reducing the core clocks by a factor of 2 or more ... temperature being
too high, external power brake, fast trigger"), ``SW_THERMAL_SLOWDOWN`` 0x20,
``HW_THERMAL_SLOWDOWN`` 0x40 ("temperature being too high"), as opposed to
``SW_POWER_CAP`` 0x4 (the ``gpu`` power-cap fault); ``nvidia-smi -q`` prints
them under "Clocks Event Reasons" ("HW Slowdown: Active", "HW Thermal
Slowdown: Active").  A failing fan or a blocked airflow gives exactly this:
the SM clock halves, steps slow down, the temperature reads above the slowdown threshold, and the power
draw *falls* — it is nowhere near its limit, which is how it is told apart
from a power cap.

* :class:`LocalGpuThermal` (local testbed): ``thermal.json`` in the pod
  directory; the emulated accelerator (:class:`llmrca.testbed.local.engine.EmulatedGpu`)
  holds its SM clock at ``sm_clock_mhz``, reports ``reasons`` and
  ``temperature_c``; prefill and the SM-bound share of decode slow down as
  under a power cap, through the same GPU model.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.faults.local import EngineSampler, LocalInjector
from llmrca.testbed.gpu import GpuModel
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun

HW_SLOWDOWN = 0x8
SW_THERMAL_SLOWDOWN = 0x20
HW_THERMAL_SLOWDOWN = 0x40


class SimGpuThermal(SimFault):
    """The target GPU overheats and its hardware thermal slowdown cuts the SM clock to ``clock_factor``."""

    type = "gpu-thermal"
    defaults: ClassVar[dict[str, Any]] = {"slowdown_temp_c": 88.0, "heat_time_s": 10.0, "clock_factor": 0.5}
    roles = ("head", "worker")

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``clock_factor`` in (0, 1), ``heat_time_s`` >= 0, ``slowdown_temp_c`` in 60..110 C."""
        bad = []
        if not 0 < p["clock_factor"] < 1:
            bad.append("clock_factor must be in (0, 1) (the share of the maximum SM clock left)")
        if p["heat_time_s"] < 0:
            bad.append("heat_time_s must be >= 0")
        if not 60 <= p["slowdown_temp_c"] <= 110:
            bad.append("slowdown_temp_c must be in 60..110 (degrees C)")
        return bad

    def bind(self, run: SimRun) -> None:
        """Not hot yet; what the fault measures starts empty."""
        super().bind(run)
        p = self.params
        self.factor, self.heat_s, self.t_slow = float(p["clock_factor"]), float(p["heat_time_s"]), float(p["slowdown_temp_c"])
        self.throttled = False
        self.last_power = run.sim.gpus[self.tgt].gpu.busy_power_w
        self.t0_temp: float | None = None
        self.slow_at: float | None = None
        self.clock: list[float] = []
        self.power: list[float] = []
        self.temps: list[float] = []

    def on_tick(self, run: SimRun, t: float, on: bool) -> None:
        """Heat up while on (linear to the threshold in ``heat_time_s``), throttle at the threshold, cool when off."""
        if not on:
            self.throttled = False
            run.gpu_temp[self.tgt] = np.nan
            return
        if self.t0_temp is None:
            self.t0_temp = run.cfg.gpu_ambient_c + run.cfg.gpu_c_per_w * self.last_power
        frac = 1.0 if self.heat_s <= 0 else min(1.0, (t - self.start) / self.heat_s)
        run.gpu_temp[self.tgt] = self.t0_temp + (self.t_slow + 1.0 - self.t0_temp) * frac
        was = self.throttled
        self.throttled = frac >= 1.0
        if self.throttled and not was:
            self.slow_at = t
            run.events.append((t, self.target, "gpu-thermal-slowdown"))

    def gpu_slowdown(self, run: SimRun, slow: np.ndarray) -> np.ndarray:
        """SM-bound work takes ``1 / clock_factor`` longer while throttled."""
        if not self.throttled:
            return slow
        slow = slow.copy()
        slow[self.tgt] = slow[self.tgt] / self.factor
        return slow

    def after_step(self, run: SimRun, gpu_busy: np.ndarray, on: bool) -> None:
        """DCGM's thermal violation counter (µs held back by temperature)."""
        if self.throttled:
            run.thermal_us[self.tgt] += run.dt * 1e6

    def on_scrape(self, run: SimRun, s: int, on: bool) -> None:
        """While throttled the GPU reads the reduced clock, the lower draw and the thermal clock-event bits."""
        if not self.throttled:
            self.last_power = float(run.rep_s["power_w"][s, self.tgt])
            return
        g = run.sim.gpus[self.tgt]
        spec = g.gpu
        r = run.rep_s
        prev = r["gpu_busy_s"][s - 1, self.tgt] if s > 0 else run.busy_rec0[self.tgt]
        load = float(np.clip((r["gpu_busy_s"][s, self.tgt] - prev) / run.cfg.scrape_interval_s, 0.0, 1.0))
        f = min(self.factor, g.sm_clock_mhz(load) / spec.max_sm_clock_mhz)
        r["sm_clock_mhz"][s, self.tgt] = spec.max_sm_clock_mhz * f
        r["power_w"][s, self.tgt] = spec.idle_power_w + (spec.busy_power_w - spec.idle_power_w) * load * f**spec.power_exponent
        r["throttle"][s, self.tgt] = int(r["throttle"][s, self.tgt]) | HW_THERMAL_SLOWDOWN | HW_SLOWDOWN
        self.clock.append(float(r["sm_clock_mhz"][s, self.tgt]))
        self.power.append(float(r["power_w"][s, self.tgt]))
        self.temps.append(float(run.gpu_temp[self.tgt]))

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """Seconds to the slowdown, mean SM clock (MHz) and power (W) while throttled, peak temperature (C), the bits."""
        return {
            "slowdown_after_s": None if self.slow_at is None else round(self.slow_at - self.start, 2),
            "mean_sm_clock_mhz": round(float(np.mean(self.clock)), 1) if self.clock else None,
            "mean_power_w": round(float(np.mean(self.power)), 1) if self.power else None,
            "power_limit_w": float(run.sim.gpus[self.tgt].power_limit_w),
            "peak_temp_c": round(max(self.temps), 1) if self.temps else None,
            "clock_event_reasons": HW_THERMAL_SLOWDOWN | HW_SLOWDOWN if self.clock else 0,
        }


SW_POWER_CAP = 0x4
#: the clock-event bits a thermal / hardware slowdown may report (no power-cap bit)
THERMAL_BITS = HW_SLOWDOWN | SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN


class LocalGpuThermal(LocalInjector):
    """HW thermal slowdown of the target's emulated accelerator; measures clock, power against its limit, temperature and reasons.

    Parameters: ``sm_clock_mhz`` (the held clock, below the maximum;
    default half of 1410 MHz, NVML's "factor of 2 or more"),
    ``temperature_c`` (what the sensor reads, 0..120), ``reasons`` (the
    clock-event bitmask: a non-empty subset of 0x8 | 0x20 | 0x40, never the
    power-cap bit 0x4).  Achieved: min/mean SM clock, mean power and the
    power limit (the draw stays below it), the temperature and reasons
    seen, the mean step slowdown implied (``fmax / f``).
    """

    needs_engine = True

    fault_type = "gpu-thermal"
    # HW_SLOWDOWN | HW_THERMAL_SLOWDOWN at 92 C, the clock halved
    defaults: ClassVar[dict[str, Any]] = {"sm_clock_mhz": 705.0, "temperature_c": 92.0, "reasons": HW_SLOWDOWN | HW_THERMAL_SLOWDOWN}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """Clock in (0, max), temperature in 0..120 °C, reasons a non-empty subset of the thermal bits."""
        bad = []
        fmax = GpuModel().gpu.max_sm_clock_mhz
        try:
            if not 0 < float(p["sm_clock_mhz"]) < fmax:
                bad.append(f"sm_clock_mhz={p['sm_clock_mhz']} must be in (0, {fmax:g}) MHz (the emulated A100's maximum)")
            if not 0 <= float(p["temperature_c"]) <= 120:
                bad.append("temperature_c must be in 0..120 (degrees C)")
            r = int(p["reasons"])
            if r <= 0 or r & ~THERMAL_BITS:
                bad.append(f"reasons=0x{r:x} must be a non-empty combination of HW_SLOWDOWN 0x8, SW_THERMAL 0x20, HW_THERMAL 0x40 "
                           "(the power cap 0x4 is the 'gpu' fault)")
        except (TypeError, ValueError) as e:
            bad.append(f"parameters must be numbers: {e}")
        return bad

    def start(self) -> None:
        """Write ``thermal.json``, wait until the engine reports the clock held and the reasons, start sampling."""
        p = self.params
        self.before = self._engine_state(wait_s=60.0)
        self.clock = float(p["sm_clock_mhz"])
        self.bits = int(p["reasons"])
        self.ctl = self._write_control("thermal.json", {"sm_clock_mhz": self.clock, "temperature_c": float(p["temperature_c"]), "reasons": self.bits})
        deadline = time.monotonic() + 5.0
        while True:
            r = self._engine_state(wait_s=5.0)
            if int(r.get("throttle_reasons", 0)) & self.bits == self.bits and float(r.get("sm_clock_mhz", 0)) <= self.clock + 1e-6:
                self.readback = r
                break
            if time.monotonic() > deadline:
                raise FaultError(f"the accelerator of {self.spec.target} does not report the slowdown after 5 s (reads {r})")
            time.sleep(0.2)
        self.t0 = time.time()
        self.sampler = EngineSampler(self, 0.5)

    def measure(self) -> dict[str, Any]:
        """Clock, power vs limit, temperature, reasons seen (see the class docstring)."""
        self.sampler.stop()
        s = self.sampler
        clock, power, limit, temp = s.col("sm_clock_mhz"), s.col("power_w"), s.col("power_limit_w"), s.col("temperature_c")
        reasons = 0
        for x in s.samples:
            reasons |= int(x.get("throttle_reasons") or 0)
        fmax = GpuModel().gpu.max_sm_clock_mhz
        return {
            "sm_clock_mhz_min": round(min(clock), 1) if clock else None,
            "sm_clock_mhz_mean": round(statistics.fmean(clock), 1) if clock else None,
            "sm_clock_mhz_before": round(float(self.before.get("sm_clock_mhz", float("nan"))), 1),
            "power_w_mean": round(statistics.fmean(power), 1) if power else None,
            "power_w_max": round(max(power), 1) if power else None,
            "power_limit_w": max(limit) if limit else None,
            "temperature_c_mean": round(statistics.fmean(temp), 1) if temp else None,
            "temperature_c_before": round(float(self.before.get("temperature_c", float("nan"))), 1),
            "reasons_seen": reasons,
            "sw_power_cap_seen": bool(reasons & SW_POWER_CAP),
            "step_slowdown": round(fmax / statistics.fmean(clock), 2) if clock else None,
            "samples": len(s.samples),
        }

    def stop(self) -> None:
        """Remove ``thermal.json`` and wait (up to 3 s) for the clock to come back (idempotent)."""
        if getattr(self, "sampler", None) is not None:
            self.sampler.stop()
        if getattr(self, "ctl", None) is None:
            return
        self.ctl.unlink(missing_ok=True)
        self.ctl = None
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                if not int(self._engine_state().get("throttle_reasons", 0)) & THERMAL_BITS:
                    return
            except FaultError:
                return
            time.sleep(0.2)
