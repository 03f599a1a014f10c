"""Packet loss on a pod's ports with the kernel's netfilter (iptables ``statistic``), and its removal.

The pods of the local testbed share the host's loopback (every component
listens on 127.0.0.1 on its own ports, PROTOCOL.md §5: no netem in this
kernel), so loss is applied per pod by port: two rules at the top of the
host's ``INPUT`` chain match TCP on ``lo`` to or from the pod's public ports
(its sidecar, through which all of the pod's traffic passes): a counting rule,
then a ``DROP`` with ``-m statistic --mode random --probability p``.  No
interface is created or changed.  Every rule carries the comment
``llmrca:<run_id>:<pod>:packet-loss`` (how :func:`remove_rules` finds them,
also from ``llmrca testbed down``) and ``-m time --datestop`` (UTC), after
which it matches nothing even if nobody removes it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

#: the pod ports its sidecar listens on (traffic from other pods and Prometheus); in-pod ports are not subject to loss
PUBLIC_PORTS = ("api", "sup_public", "router_public", "stats", "public", "exporter_public")


class NetfilterError(RuntimeError):
    """iptables is missing or refused a rule."""


def iptables() -> str:
    """Path of ``iptables``; raises NetfilterError when it is not installed."""
    path = shutil.which("iptables") or ("/usr/sbin/iptables" if os.path.exists("/usr/sbin/iptables") else None)
    if not path:
        raise NetfilterError("iptables is missing; install the Debian package iptables")
    return path


def _run(args: list[str]) -> str:
    r = subprocess.run([iptables(), "-w", "5", *args], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise NetfilterError(f"iptables {' '.join(args)} failed: {r.stderr.strip() or r.stdout.strip()}")
    return r.stdout


def tag(run_id: str, pod: str) -> str:
    """The comment that marks the loss rules of ``pod`` in run ``run_id``."""
    return f"llmrca:{run_id}:{pod}:packet-loss"


def loss_rules(ports: list[int], probability: float, comment: str, expires_at: float) -> tuple[list[str], list[str]]:
    """The (counting, dropping) rule specifications for ``ports`` (1..15 of them) at ``probability`` (0 < p <= 1)."""
    if not 1 <= len(ports) <= 15:
        raise NetfilterError(f"need 1..15 ports, got {len(ports)}")
    if not 0 < probability <= 1:
        raise NetfilterError(f"probability {probability} is not in (0, 1]")
    stop = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires_at))
    base = ["-i", "lo", "-p", "tcp", "-m", "multiport", "--ports", ",".join(str(p) for p in ports),
            "-m", "time", "--datestop", stop, "-m", "comment", "--comment", comment]
    return base, [*base, "-m", "statistic", "--mode", "random", "--probability", f"{probability:.6f}", "-j", "DROP"]


def add_rules(count: list[str], drop: list[str]) -> None:
    """Insert the drop rule, then the counting rule above it, at the top of INPUT; raises NetfilterError."""
    _run(["-I", "INPUT", "1", *drop])
    try:
        _run(["-I", "INPUT", "1", *count])
    except NetfilterError:
        _run(["-D", "INPUT", *drop])
        raise


def rule_lines(marker: str) -> list[str]:
    """``iptables -S INPUT -v`` lines whose comment contains ``marker`` (counters ``-c pkts bytes`` at the end)."""
    try:
        out = _run(["-S", "INPUT", "-v"])
    except NetfilterError:
        return []
    return [ln for ln in out.splitlines() if ln.startswith("-A INPUT") and marker in ln]


def counters(marker: str) -> tuple[int, int]:
    """(packets seen, packets dropped) by the rules whose comment contains ``marker``."""
    seen = dropped = 0
    for ln in rule_lines(marker):
        parts = ln.split()
        pk = int(parts[parts.index("-c") + 1]) if "-c" in parts else 0
        if "DROP" in parts:
            dropped += pk
        else:
            seen += pk
    return seen, dropped


def rule_stop(line: str) -> float | None:
    """The epoch second a rule stops matching (its ``--datestop``, UTC), or None when it has none."""
    import calendar
    import re

    m = re.search(r"--datestop (\S+)", line)
    if m is None:
        return None
    try:
        return float(calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")))
    except ValueError:
        return None


def live_rule_lines(marker: str) -> list[str]:
    """:func:`rule_lines` that still match (no ``--datestop``, or one in the future): expired rules left by a killed
    injector drop nothing and hold no fault."""
    now = time.time()
    return [ln for ln in rule_lines(marker) if (stop := rule_stop(ln)) is None or stop > now]


def remove_rules(marker: str) -> int:
    """Delete every INPUT rule whose comment contains ``marker`` (e.g. ``llmrca:<run_id>:``); returns how many.
    SIGINT and SIGTERM wait until every rule is deleted (in the main thread), so no half of a fault is left."""
    with signals_held():
        return _remove_rules(marker)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM are ignored inside the block (a cleanup that must finish), then restored; in the main
    thread only (elsewhere a no-op)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _remove_rules(marker: str) -> int:
    n = 0
    for ln in rule_lines(marker):
        args = shlex.split(ln)
        if "-c" in args:  # drop the counters
            i = args.index("-c")
            del args[i:i + 3]
        try:
            _run(["-D", *args[1:]])
            n += 1
        except NetfilterError:
            continue
    return n
