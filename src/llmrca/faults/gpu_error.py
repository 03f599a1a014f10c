"""GPU hardware error (Xid): the engine's GPU is lost, the engine dies, restarts and reloads its model while requests fail.

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
from typing import Any, ClassVar

from llmrca.faults.model_load import LocalSlowModelLoad
from llmrca.testbed.injection import FaultError

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
