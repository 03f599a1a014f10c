"""The GPU power cap (``nvidia-smi -pl``; paper §4.3): the target replica's accelerator runs at a lower power limit.

One fault type, every backend side by side:

* :class:`SimGpuPowerCap` (simulator): :meth:`GpuModel.set_power_limit
  <llmrca.testbed.gpu.GpuModel.set_power_limit>` on the target's GPU; the SM
  clock falls, so prefill and the SM-bound part of decode slow down; undone
  when the fault ends (or by the ``reset-power-limit`` remediation).
* :class:`LocalGpuPowerCap` (local testbed): the emulated accelerator's limit
  set through the engine's admin endpoint and read back.
* :class:`K8sGpuPowerCap` (Kubernetes): ``nvidia-smi -pl`` in a short
  privileged Job on the target's node (Chaos Mesh has no GPU chaos) that
  always restores the default; the cap read back from DCGM through Prometheus.
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
from llmrca.faults.kubernetes import K8sInjector, dns_name
from llmrca.faults.local import LocalInjector, control_in_force, fault_lock
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

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``power_limit_w`` inside the emulated accelerator's range (as nvidia-smi -pl refuses one outside it), so
        a campaign or ``inject`` says so before anything runs."""
        g = GpuModel().gpu
        try:
            w = float(p["power_limit_w"])
        except (TypeError, ValueError):
            return [f"power_limit_w={p['power_limit_w']!r} must be a number of watts"]
        if not g.min_power_limit_w <= w <= g.max_power_limit_w:
            return [f"power_limit_w={w:g} is outside the emulated {g.name}'s range {g.min_power_limit_w:g}..{g.max_power_limit_w:g} W"]
        return []

    def _admin(self) -> str:
        info = self.tb.state.pods[self.spec.target]
        if "admin" not in info:
            raise FaultError(f"{self.spec.target} has no GPU (only the serving pods do): choose ray-head or a ray-worker")
        return info["admin"] + "/admin/gpu"

    def _read(self, wait_s: float = 0.0) -> dict[str, Any]:
        """The accelerator's state from the engine's admin API; retries up to ``wait_s`` while the engine is (re)starting."""
        deadline = time.monotonic() + wait_s
        while True:
            try:
                return httpx.get(self._admin(), timeout=5.0).json()
            except httpx.HTTPError as e:
                if time.monotonic() >= deadline:
                    raise FaultError(f"the engine of {self.spec.target} does not answer its admin API ({e}); is the pod up? (llmrca testbed status)") from e
                time.sleep(0.5)

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
        self.before = self._read(wait_s=60.0)  # a replica restarted by an earlier action may still be loading
        ctl = self.pod_dir / "gpu.json"
        w = float(self.params["power_limit_w"])
        with fault_lock(self.pod_dir):  # check and write as one step: two injections at once cannot both pass
            if control_in_force(ctl):  # another injection's limit: overwriting it would end that fault early
                raise FaultError(f"a gpu fault on {self.spec.target} is already in place (gpu.json, another injection?): "
                                 "wait for it to end, or stop it (llmrca testbed down removes every fault)")
            self.ctl = ctl
            tmp = self.ctl.with_suffix(".tmp")
            tmp.write_text(json.dumps({"power_limit_w": w, **self._control_times()}))
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




class K8sGpuPowerCap(K8sInjector):
    """``nvidia-smi -pl power_limit_w`` on the target pod's GPU through a privileged Job on its node (:mod:`llmrca.testbed.k8s.gpujob`).

    ``gpu``: the device (UUID or index; empty: the UUID dcgm-exporter maps to the target pod).  Achieved:
    the power limit DCGM reports through Prometheus after the Job started (``DCGM_FI_DEV_POWER_MGMT_LIMIT``,
    W) against the request, the limit before, the device and node, and after the fault whether the
    default came back.  Raises FaultError when the device cannot be found or the pod has no node.
    """

    fault_type = "gpu"
    # the paper: nvidia-smi -pl 150 on a 300 W A100 (its minimum limit)
    defaults: ClassVar[dict[str, Any]] = {"power_limit_w": 150.0, "gpu": ""}

    def start(self) -> None:
        """Find the node and the device, create the Job, wait (``wait_s``) for DCGM to report the cap."""
        from llmrca.testbed.k8s.gpujob import gpu_of_pod, power_job, read_limit

        node = (self.pod.get("spec") or {}).get("nodeName")
        if not node:
            raise FaultError(f"pod {self.pod_name} ({self.spec.target}) is not scheduled on a node yet")
        found = gpu_of_pod(self.prom, self.namespace, self.pod_name, self.clock()) if self.prom is not None else None
        gpu = str(self.params["gpu"] or (found or {}).get("uuid") or "")
        if not gpu:
            raise FaultError(
                f"no GPU of pod {self.pod_name} in dcgm-exporter's series (DCGM_FI_DEV_POWER_MGMT_LIMIT{{pod=...}}); "
                "enable the GPU Operator's pod mapping or give fault.gpu.gpu=<UUID or index>"
            )
        self.gpu, self.node = gpu, node
        self.before_w = (found or {}).get("power_limit_w")
        self.name = dns_name("llmrca", "gpu", self.spec.target, str(int(self.clock())))
        job = power_job(self.stack.config, self.object_meta(self.name), node, gpu, float(self.params["power_limit_w"]), self.expiry_s(),
                        owner=self.stack.rayservice())
        self.create(job)
        self.t0 = self.clock()
        want = float(self.params["power_limit_w"])
        deadline = self.clock() + self.wait_s
        self.read_back: float | None = None
        while self.prom is not None:
            self.read_back = read_limit(self.prom, gpu, self.clock())
            if (self.read_back is not None and abs(self.read_back - want) < 1.0) or self.clock() >= deadline:
                break
            self.sleep(1.0)
        self.waited_s = round(self.clock() - self.t0, 2)

    def measure(self) -> dict[str, Any]:
        """``achieved`` (DCGM reads the cap), the limit read back and before (W), device, node, Job, waited seconds."""
        from llmrca.testbed.k8s.gpujob import read_limit

        if getattr(self, "name", None) is None:
            return {"achieved": False, "reason": "the Job was not created"}
        now = read_limit(self.prom, self.gpu, self.clock()) if self.prom is not None else None
        want = float(self.params["power_limit_w"])
        seen = [v for v in (self.read_back, now) if v is not None]
        out: dict[str, Any] = {
            "achieved": any(abs(v - want) < 1.0 for v in seen),
            "power_limit_w_read_back": self.read_back,
            "power_limit_w_at_end": now,
            "power_limit_w_before": self.before_w,
            "gpu": self.gpu,
            "node": self.node,
            "job": self.name,
            "waited_s": self.waited_s,
        }
        if not out["achieved"]:
            out["reason"] = ("no Prometheus to read the limit back from" if self.prom is None
                             else f"DCGM reports {seen[-1] if seen else 'no'} W, not {want:g} W (check the Job's log: kubectl logs job/{self.name})")
        return out

    def stop(self) -> None:
        """Delete the Job (its pod's exit trap restores the default limit); idempotent."""
        self.delete_created()
