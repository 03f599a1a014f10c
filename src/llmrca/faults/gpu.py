"""The GPU power cap (``nvidia-smi -pl``; paper §4.3): the target replica's accelerator runs at a lower power limit.

One fault type, every backend side by side:

* :class:`SimGpuPowerCap` (simulator): :meth:`GpuModel.set_power_limit
  <llmrca.testbed.gpu.GpuModel.set_power_limit>` on the target's GPU; the SM
  clock falls, so prefill and the SM-bound part of decode slow down; undone
  when the fault ends (or by the ``reset-power-limit`` remediation).
* :class:`LocalGpuPowerCap` (local testbed): the emulated accelerator's limit
  set through the engine's admin endpoint and read back.
* Kubernetes: ``nvidia-smi -pl`` in a privileged debug container on the
  target's node (Chaos Mesh has no GPU chaos); not implemented yet
  (register it in :data:`llmrca.testbed.base.FAULT_IMPLEMENTATIONS`).
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import numpy as np

from llmrca.config import ConfigError
from llmrca.faults.local import LocalInjector
from llmrca.testbed.gpu import GpuModel
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun


class SimGpuPowerCap(SimFault):
    """The target GPU's power limit set to ``power_limit_w`` watts while the fault is on."""

    type = "gpu"
    # nvidia-smi -pl 150 on a 300 W A100
    defaults: ClassVar[dict[str, Any]] = {"power_limit_w": 150.0}
    ends_on = ("reset-power-limit",)  # the limit stays on the device through a pod restart

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``power_limit_w`` > 0."""
        return ["power_limit_w must be > 0"] if p["power_limit_w"] <= 0 else []

    def check(self) -> None:
        """Raise ConfigError when the limit is outside the simulated GPU's range (W)."""
        g = GpuModel().gpu
        w = self.params["power_limit_w"]
        if not g.min_power_limit_w <= w <= g.max_power_limit_w:
            raise ConfigError(f"fault.gpu.power_limit_w={w:g} is outside the {g.name}'s range {g.min_power_limit_w:g}..{g.max_power_limit_w:g} W")

    def bind(self, run: SimRun) -> None:
        """Not applied yet; utilisation of the last tick starts at 0.5."""
        super().bind(run)
        self.applied = False
        self.read_back: float | None = None
        self.util_prev = np.full(run.R, 0.5)
        self.power_w: list[float] = []
        self.sm_clock_mhz: list[float] = []

    def on_tick(self, run: SimRun, t: float, on: bool) -> None:
        """Set the limit when the fault turns on (read back), restore the default when it turns off."""
        gpu = run.sim.gpus[self.tgt]
        if on and not self.applied:
            self.read_back = gpu.set_power_limit(float(self.params["power_limit_w"]))
            self.applied = True
            run.events.append((t, self.target, "gpu-power-limit"))
        elif not on and self.applied:
            gpu.set_power_limit(gpu.gpu.default_power_limit_w)
            self.applied = False

    def gpu_slowdown(self, run: SimRun, slow: np.ndarray) -> np.ndarray:
        """The capped GPU's SM slowdown at last tick's utilisation."""
        if not self.applied:
            return slow
        slow = slow.copy()
        slow[self.tgt] = run.sim.gpus[self.tgt].slowdown(self.util_prev[self.tgt])
        return slow

    def after_step(self, run: SimRun, gpu_busy: np.ndarray, on: bool) -> None:
        """Utilisation of the tick (busy s / tick s, 0 for a dead actor); power and SM clock sampled while on."""
        self.util_prev = np.where(run.alive, np.minimum(gpu_busy / run.dt, 1.0), 0.0)
        if on:
            gpu = run.sim.gpus[self.tgt]
            self.power_w.append(gpu.power_w(self.util_prev[self.tgt]))
            self.sm_clock_mhz.append(gpu.sm_clock_mhz(self.util_prev[self.tgt]))

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """Limit read back (W), mean power (W) and mean SM clock (MHz) while on."""
        return {
            "power_limit_w_read_back": self.read_back,
            "mean_power_w": round(float(np.mean(self.power_w)), 1) if self.power_w else None,
            "mean_sm_clock_mhz": round(float(np.mean(self.sm_clock_mhz)), 1) if self.sm_clock_mhz else None,
        }


class LocalGpuPowerCap(LocalInjector):
    """The emulated accelerator's power limit set through the engine's admin API and read back; samples power and clocks."""

    fault_type = "gpu"
    # the paper: nvidia-smi -pl 150 on a 300 W A100 (its minimum limit)
    defaults: ClassVar[dict[str, Any]] = {"power_limit_w": 150.0}

    def _admin(self) -> str:
        info = self.tb.state.pods[self.spec.target]
        if "admin" not in info:
            raise FaultError(f"{self.spec.target} has no GPU (only the serving pods do): choose ray-head or a ray-worker")
        return info["admin"] + "/admin/gpu"

    def _read(self) -> dict[str, Any]:
        return httpx.get(self._admin(), timeout=5.0).json()

    def _wait_limit(self, watts: float, timeout_s: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        r: dict[str, Any] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError, ValueError):
                r = self._read()
                if abs(float(r["power_limit_w"]) - watts) < 1e-6:
                    return r
            time.sleep(0.2)
        raise FaultError(f"power limit of {self.spec.target} reads {r.get('power_limit_w')} W, not {watts} W, after {timeout_s:g} s")

    def start(self) -> None:
        """Set the limit, wait until the engine reads it back, start sampling; raises FaultError when it does not take."""
        self._admin()
        self.before = self._read()
        self.ctl = self.pod_dir / "gpu.json"
        w = float(self.params["power_limit_w"])
        tmp = self.ctl.with_suffix(".tmp")
        tmp.write_text(json.dumps({"power_limit_w": w, "expires_at": time.time() + self._expiry()}))
        os.replace(tmp, self.ctl)
        self.readback = self._wait_limit(w)
        self.t0 = time.time()
        # one reading is a coin toss on a lightly loaded replica (idle GPU draws idle power): sample the whole window
        self.samples: list[dict[str, Any]] = []
        self._stop_sampling = threading.Event()

        def sample() -> None:
            while not self._stop_sampling.wait(0.5):
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    self.samples.append(self._read())

        self._sampler = threading.Thread(target=sample, daemon=True)
        self._sampler.start()

    def measure(self) -> dict[str, Any]:
        """Power limit read back (W), max/mean power (W), min SM clock (MHz), utilisation, whether SW power cap was seen."""
        self._stop_sampling.set()
        self._sampler.join(timeout=5)
        sm = self.samples or [{}]

        def col(k: str) -> list[float]:
            return [float(x[k]) for x in sm if k in x]

        power, clock, util = col("power_w"), col("sm_clock_mhz"), col("util")
        return {
            "power_limit_w_read_back": self.readback.get("power_limit_w"),
            "power_w_max": round(max(power), 1) if power else None,
            "power_w_mean": round(statistics.fmean(power), 1) if power else None,
            "sm_clock_mhz_min": round(min(clock), 1) if clock else None,
            "sm_clock_mhz_before": round(float(self.before.get("sm_clock_mhz", float("nan"))), 1),
            "gpu_util_mean": round(statistics.fmean(util), 3) if util else None,
            "gpu_util_before": round(float(self.before.get("util", float("nan"))), 3),
            "sw_power_cap_seen": any(int(x.get("throttle_reasons") or 0) & 0x4 for x in sm),
            "samples": len(self.samples),
        }

    def stop(self) -> None:
        """Remove the limit and wait for the default to read back (idempotent)."""
        if getattr(self, "_stop_sampling", None) is not None:
            self._stop_sampling.set()
        if getattr(self, "ctl", None) is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.ctl.unlink()
        with contextlib.suppress(FaultError, httpx.HTTPError):
            self._wait_limit(float(self.before.get("power_limit_w", 300.0)), 3.0)
        self.ctl = None


