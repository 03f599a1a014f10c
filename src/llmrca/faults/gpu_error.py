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

The local-testbed implementation lives next to it (``LocalGpuXidError``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

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
