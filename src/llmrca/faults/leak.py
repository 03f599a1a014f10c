"""A memory leak: a process that allocates and touches memory at a steady rate, then holds it.

Started inside the target pod's cgroup, it counts against the pod's memory
limit as the leaking code would.  It writes how much it holds to
``--status`` (JSON) after every step, and exits by itself after
``--timeout`` seconds, so a killed injector cannot leave it behind.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    """Command line of the leaking process (bytes, rate in MiB/s, timeout in s, status file)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bytes", type=int, required=True)
    ap.add_argument("--rate-mib-s", type=float, default=64.0)
    ap.add_argument("--timeout", type=float, required=True)
    ap.add_argument("--status", required=True)
    a = ap.parse_args()
    status = Path(a.status)
    chunks: list[bytearray] = []
    held = 0
    step = 4 * 2**20
    end = time.monotonic() + a.timeout
    t0 = time.monotonic()
    while time.monotonic() < end:
        due = min(a.bytes, int((time.monotonic() - t0) * a.rate_mib_s * 2**20))
        while held < due:
            b = bytearray(min(step, a.bytes - held))
            for i in range(0, len(b), 4096):  # touch every page so it is resident
                b[i] = 1
            chunks.append(b)
            held += len(b)
        tmp = status.with_suffix(".tmp")
        tmp.write_text(json.dumps({"held_bytes": held, "pid": os.getpid(), "time": time.time()}))
        os.replace(tmp, status)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
