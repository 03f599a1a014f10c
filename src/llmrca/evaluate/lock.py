"""One writer per output folder: an exclusive ``flock`` on ``<out>/.llmrca.lock``.

The kernel releases a ``flock`` when its holder dies, so a lock left by a
killed evaluator (even ``kill -9``) is free at once; the pid, host, start
time and command written into the file tell the next evaluator who held it,
and it says so when it takes such a lock over.  Forked children (the
process engine's workers) close their copy of the descriptor right after
the fork, so a worker that outlives its evaluator by a moment cannot keep
the folder locked.

Source: flock(2) (Linux man-pages): locks belong to the open file
description and are released when every descriptor of it is closed.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmrca.errors import LlmrcaError

LOCK_NAME = ".llmrca.lock"
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in list(_HELD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class FolderLocked(LlmrcaError, ValueError):
    """Another live process holds the folder's lock."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class FolderLock:
    """Exclusive, non-blocking lock of ``folder`` for one evaluation.

    ``acquire()`` raises :class:`FolderLocked` (with the holder's pid, host
    and command) when a live process holds it, and returns a note (or None)
    when it took over a lock left behind by a process that is gone.
    """

    def __init__(self, folder: str | Path, what: str = "evaluation") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> str | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_info(fd)
            os.close(fd)
            who = _describe(holder) if holder else "another process"
            raise FolderLocked(
                f"{self.folder} is in use by another {self.what} ({who}); wait for it to finish, "
                "or write to another folder (--out OTHER)"
            ) from None
        except OSError:
            os.close(fd)
            raise
        old = _read_info(fd)
        note = None
        if old and old.get("pid") != os.getpid():
            if old.get("host") == socket.gethostname():
                state = "no longer running" if not _pid_alive(int(old.get("pid", 0))) else "running but not holding it"
            else:
                state = f"on another host, {old.get('host')}"
            note = f"took over the lock of {self.folder} left by pid {old.get('pid')} ({state}; started {old.get('started', '?')})"
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": datetime.now(UTC).isoformat(timespec="seconds"), "command": sys.argv}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError:
            pass  # a full disk: the lock still holds; only the holder's description is missing
        self._fd = fd
        _HELD.add(fd)
        return note

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        _HELD.discard(fd)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # empty: the next holder has nobody to report as left behind
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_info(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}


def _describe(info: dict[str, Any]) -> str:
    cmd = " ".join(str(c) for c in info.get("command") or [])
    return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('started')}" + (f": {cmd}" if cmd else "")
