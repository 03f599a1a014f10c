"""Progress bars on stderr (llmrca.progress)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")


def test_a_bar_on_piped_stderr_keeps_its_counts_and_status() -> None:
    """Piped stderr (a log file): the bar is not cut at rich's 80 columns ('300/3… 0:01… ok=2…')."""
    code = (
        "from llmrca.progress import progress_bar\n"
        "with progress_bar('evaluating 25 method(s) x 12 case(s)', 300, transient=False, auto_refresh=False) as b:\n"
        "    b.update(advance=300, status='ok=288 failed=12')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["PYTHONPATH"] = SRC
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "300/300" in last and last.endswith("ok=288 failed=12"), last
