"""GPU hardware error (Xid): the engine dies with its GPU, restarts, and reloads the model (issue 16).

* :class:`SimGpuXidError` (simulator): at the fault's start the target's GPU reports Xid
  ``xid`` (79: "GPU has fallen off the bus"; 48: a double-bit ECC error) and stops
  answering; vLLM's engine core dies on the next CUDA call (``EngineDeadError``), every
  in-flight request fails with HTTP 500 and the Serve router takes the replica out.  The
  device comes back after ``reset_s`` (a GPU reset / the node's recovery); only then can the
  Serve controller start a new replica, which loads the model cold (``reload_s``: the weights
  are read again from storage, the CUDA graphs re-captured).  While the GPU is off the bus
  DCGM cannot read it: its series are gaps, except ``DCGM_FI_DEV_XID_ERRORS``, which keeps
  the last Xid.  The driver's line goes to the node's kernel log, vLLM's traceback to the
  replica's log.

Source: NVIDIA "Xid Errors" (GPU deployment and management documentation): Xid 79 "GPU has
fallen off the bus", Xid 48 "DBE (double bit error) ECC error", printed by the driver as
``NVRM: Xid (PCI:0000:xx:00): 79, pid=…, GPU has fallen off the bus.``; DCGM field
``DCGM_FI_DEV_XID_ERRORS`` ("value of the last XID error encountered"); vLLM v1's
``EngineDeadError`` ("EngineCore encountered an issue. See stack trace (above) for the root
cause.") raised to every waiting request when the engine core process dies.

The NVIDIA driver reports GPU faults as Xid events in the kernel log
(NVIDIA "Xid Errors" documentation: Xid 79 "GPU has fallen off the bus",
Xid 48 double-bit ECC error, Xid 94/95 contained/uncontained ECC errors),
e.g. ``NVRM: Xid (PCI:0000:06:00): 79, GPU has fallen off the bus.`` then
``NVRM: GPU 0000:06:00.0: GPU has fallen off the bus.`` (the kernel log in
NVIDIA/open-gpu-kernel-modules#1151; recent drivers add ``pid=..., name=...``),
and CUDA calls fail with ``cudaErrorUnknown``; DCGM exports the last one as ``DCGM_FI_DEV_XID_ERRORS`` (field
230).  A vLLM engine using that GPU gets CUDA errors, its engine core dies
(vLLM V1 logs "EngineCore encountered a fatal error" and the API server's
requests fail with ``EngineDeadError``; vllm-project/vllm#27430 is such a
crash on a CUDA error with the GPU left in nvidia-smi's "ERR!" state), the
requests in flight fail, and Ray restarts the replica, which loads the model
again (a cold start) before it serves.

* :class:`LocalGpuXidError` (local testbed): ``xid.json`` in the pod
  directory makes the running engine log the driver's and vLLM's lines and
  exit; ``model_load.json`` makes the restarted engine take ``reload_s`` to
  load; the new engine exports the Xid as ``DCGM_FI_DEV_XID_ERRORS`` until
  the fault is undone (as the field keeps the last Xid).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from llmrca.faults.model_load import LocalSlowModelLoad
from llmrca.testbed.injection import FaultError
from llmrca.testbed.sim.faults import SimFault

if TYPE_CHECKING:
    from llmrca.testbed.sim.engine import SimRun

#: What the driver prints after the Xid code, per code (NVIDIA's Xid catalogue).
XID_TEXT = {
    79: "GPU has fallen off the bus.",
    48: "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 1.",
    74: "NVLINK: fatal error detected on link 2.",
    94: "Contained ECC error.",
    95: "Uncontained ECC error.",
}


class SimGpuXidError(SimFault):
    """The target's GPU fails with Xid ``xid``: the engine dies, the replica restarts after the reset and reloads cold."""

    type = "gpu-error"
    defaults: ClassVar[dict[str, Any]] = {"xid": 79, "reset_s": 20.0, "reload_s": 45.0}
    roles = ("head", "worker")

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``xid`` one of :data:`XID_TEXT`, ``reset_s`` and ``reload_s`` >= 0."""
        bad = []
        if int(p["xid"]) not in XID_TEXT:
            bad.append(f"xid must be one of {sorted(XID_TEXT)} (NVIDIA Xid codes that kill the engine)")
        if p["reset_s"] < 0 or p["reload_s"] < 0:
            bad.append("reset_s and reload_s must be >= 0 (seconds)")
        return bad

    def bind(self, run: SimRun) -> None:
        """Not failed yet."""
        super().bind(run)
        self.failed_at: float | None = None
        self.back_at: float | None = None
        self.healthy_at: float | None = None
        self.failed_requests = 0

    def on_tick(self, run: SimRun, t: float, on: bool) -> None:
        """Fail the GPU at the start; bring the device back after ``reset_s``; note when the replica is healthy again."""
        tgt = self.tgt
        if on and self.failed_at is None:
            self.failed_at = t
            xid = int(self.params["xid"])
            run.xid[tgt] = xid
            run.gpu_lost[tgt] = xid == 79
            run.load_time[tgt] = float(self.params["reload_s"])
            before = int((run.status == 3).sum())
            run.kill_actor(tgt, t, 500, detect_s=run.cfg.death_detect_s)
            self.failed_requests = int((run.status == 3).sum()) - before
            # the controller cannot place the replica before the device is back
            run.restart_at[tgt] = max(run.restart_at[tgt], t + float(self.params["reset_s"]))
            run.events.append((t, self.target, "gpu-xid"))
            self._logs(run, t, xid)
        if self.failed_at is not None and self.back_at is None and t >= self.failed_at + float(self.params["reset_s"]):
            self.back_at = t
            run.gpu_lost[tgt] = False
        if self.back_at is not None and self.healthy_at is None and run.alive[tgt]:
            self.healthy_at = t

    def after_step(self, run: SimRun, gpu_busy: np.ndarray, on: bool) -> None:
        """A dead engine does no GPU work (nothing to adjust: the engine has no requests)."""

    def _logs(self, run: SimRun, t: float, xid: int) -> None:
        pci = f"0000:{0x17 + 0x20 * self.tgt:02x}:00"
        pid = 2000 + 37 * self.tgt
        ts = time.strftime("%m-%d %H:%M:%S", time.gmtime(t))
        lines = [
            (0.0, f"NVRM: Xid (PCI:{pci}): {xid}, pid={pid}, name=ray::ServeReplica:llm:LLMServer, {XID_TEXT[xid]}"),
            (0.3, f"ERROR {ts} [core.py:586] EngineCore encountered a fatal error. RuntimeError: CUDA error: unknown error"),
            (0.3, f"ERROR {ts} [async_llm.py:420] AsyncLLM output_handler failed. vllm.v1.engine.exceptions.EngineDeadError: "
                  "EngineCore encountered an issue. See stack trace (above) for the root cause."),
        ]
        if xid == 79:
            lines.insert(1, (0.0, f"NVRM: GPU {pci}.0: GPU has fallen off the bus."))
        for dt, msg in lines:
            run.fault_logs.append((t + dt, self.target, msg))

    def achieved(self, run: SimRun) -> dict[str, Any]:
        """The Xid, requests failed at the death, seconds until the device and the replica were back (None: not within the run)."""
        return {
            "xid": int(self.params["xid"]),
            "requests_failed": self.failed_requests,
            "gpu_back_after_s": None if self.back_at is None or self.failed_at is None else round(self.back_at - self.failed_at, 2),
            "replica_healthy_after_s": None if self.healthy_at is None or self.failed_at is None else round(self.healthy_at - self.failed_at, 2),
        }


#: Xid codes the emulated driver knows (NVIDIA Xid catalogue)
XID_MESSAGES = {79: "GPU has fallen off the bus", 48: "double bit ECC error", 94: "contained ECC error", 95: "uncontained ECC error"}


class LocalGpuXidError(LocalSlowModelLoad):
    """An Xid on the target's emulated GPU: the engine dies, the supervisor restarts it, the model reloads for ``reload_s``.

    Parameters: ``xid`` (79, 48, 94 or 95), ``reload_s`` (the cold start's
    model load, > 0).  Achieved: replica starts, seconds unready, failed
    probes, requests finished by the target and the others during the fault,
    the Xid read back from the restarted engine, the driver's log line found.
    What fails: the requests in flight on the engine when it dies (their
    streams break; the sidecar had already answered 200, so they count as 200
    there and as errors at the client); new requests are routed around the
    replica by the router's retries and health checks (Ray Serve's proxy).
    """

    fault_type = "gpu-error"
    # the cold start at the local scale (10 s of a 20 s fault window in the local profile: the replica comes back within it)
    defaults: ClassVar[dict[str, Any]] = {"xid": 79, "reload_s": 10.0}

    @classmethod
    def problems(cls, p: dict[str, Any]) -> list[str]:
        """``xid`` one of :data:`XID_MESSAGES`, ``reload_s`` in (0, 3600]."""
        bad = []
        try:
            if int(p["xid"]) not in XID_MESSAGES:
                bad.append(f"xid={p['xid']} is not one the emulated driver raises; use one of {sorted(XID_MESSAGES)}")
            if not 0 < float(p["reload_s"]) <= 3600:
                bad.append(f"reload_s={p['reload_s']} must be in (0, 3600] seconds")
        except (TypeError, ValueError) as e:
            bad.append(f"parameters must be numbers: {e}")
        return bad

    def start(self) -> None:
        """Write the reload and the Xid files; wait (10 s) until the engine has died; raises FaultError when it does not."""
        self._begin(float(self.params["reload_s"]))
        self.log = self.pod_dir / f"{self.spec.target}.log"
        self.log_size0 = self.log.stat().st_size if self.log.exists() else 0
        self.xid_ctl = self._write_control("xid.json", {"xid": int(self.params["xid"]), "at": time.time()})
        deadline = time.monotonic() + 10.0
        while not any(not ok for _, ok in self.probe.samples):
            if time.monotonic() > deadline:
                raise FaultError(f"the engine of {self.spec.target} did not fail within 10 s of the Xid")
            time.sleep(0.2)

    def measure(self) -> dict[str, Any]:
        """Restarts, unready seconds, failures, requests, the Xid exported after the restart and the driver's line."""
        out = self._common()
        try:
            xid = int(self._engine_state().get("xid", 0))
        except FaultError:
            xid = None  # still reloading
        text = ""
        if self.log.exists():
            with open(self.log, "rb") as f:
                f.seek(self.log_size0)
                text = f.read().decode(errors="replace")
        return {**out, "xid_read_back": xid, "nvrm_xid_logged": f": {int(self.params['xid'])}, pid=" in text and "NVRM: Xid" in text,
                "engine_dead_logged": "EngineDeadError" in text, "reload_s_requested": float(self.params["reload_s"])}

    def stop(self) -> None:
        """Remove the Xid and the reload files (idempotent)."""
        super().stop()
        if getattr(self, "xid_ctl", None) is not None:
            self.xid_ctl.unlink(missing_ok=True)
            self.xid_ctl = None
