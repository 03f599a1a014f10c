"""The conditions every local-testbed test needs (root, cgroups, nginx, prometheus, stress-ng): skip the module otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BINARIES = ("/usr/sbin/nginx", "/usr/bin/prometheus", "/usr/bin/stress-ng")


def require_local_testbed() -> None:
    """Skip the calling test module unless the local testbed can run here."""
    from llmrca.testbed.local import cgroups as cgr

    missing = [b for b in BINARIES if not Path(b).exists()]
    if os.geteuid() != 0:
        pytest.skip("the local testbed needs root (cgroups)", allow_module_level=True)
    if missing:
        pytest.skip(f"missing system binaries: {missing}", allow_module_level=True)
    try:
        cgr.detect_version()
    except cgr.CgroupError as e:  # pragma: no cover - depends on the machine
        pytest.skip(str(e), allow_module_level=True)
