"""Progress display on stderr: one bar and one spinner for every long-running step.

Campaigns, evaluations, dataset validation / import, ``rank``, ``heal`` and the
load generator all show progress through these two context managers, so they
look and behave alike: stderr only (stdout stays for results), text printed
literally (no terminal markup), nothing at all when disabled (``-q``).

``progress_bar(..., auto_refresh=False)`` draws only when updated, from the
calling thread: needed where worker processes are forked while the bar runs
(a refresh thread would be copied into the children).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any


class Bar:
    """Handle of a running bar: :meth:`update` moves it; a no-op when disabled."""

    def __init__(self, progress: Any = None, task: Any = None, *, manual: bool = False) -> None:
        self._p = progress
        self._task = task
        self._manual = manual
        self._last = 0.0

    def update(self, *, advance: float | None = None, completed: float | None = None, total: float | None = None, description: str | None = None, status: str | None = None) -> None:
        """Advance by ``advance`` or set ``completed`` (units of the bar's total); ``status`` is a short text after the bar."""
        if self._p is None:
            return
        fields: dict[str, Any] = {}
        if status is not None:
            fields["status"] = status
        self._p.update(self._task, advance=advance, completed=completed, total=total, description=description, **fields)
        if self._manual:
            now = time.monotonic()
            if now - self._last > 0.2:
                self._p.refresh()
                self._last = now


def _console() -> Any:
    """stderr, markup off; piped or redirected (no terminal, no ``COLUMNS``) 200 columns wide instead of rich's 80,
    so that a bar with its counts and status is not cut short in a log file."""
    import os
    import sys

    from rich.console import Console

    wide = not sys.stderr.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=True, markup=False, highlight=False, width=200 if wide else None)


@contextlib.contextmanager
def progress_bar(label: str, total: float | None, *, enabled: bool = True, auto_refresh: bool = True, transient: bool = True) -> Iterator[Bar]:
    """A bar ``label [#####    ] done/total elapsed remaining status`` on stderr while the block runs.

    ``total`` None: unknown until the first ``update(total=...)``.  Yields a
    :class:`Bar`; when ``enabled`` is false (or ``total`` is 0) the bar is a
    no-op and nothing is printed.
    """
    if not enabled or total == 0:
        yield Bar()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    p = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}", markup=False),
        console=_console(),
        auto_refresh=auto_refresh,
        transient=transient,
    )
    with p:
        task = p.add_task(label, total=total, status="")
        yield Bar(p, task, manual=not auto_refresh)
        if not auto_refresh:
            p.refresh()


@contextlib.contextmanager
def spinner(label: str, *, enabled: bool = True) -> Iterator[None]:
    """A spinner with elapsed time on stderr while a slow step of unknown length runs (only on a terminal: in a
    log or a pipe it would leave a blank line and no information)."""
    if not enabled or not _console().is_terminal:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    p = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(), console=_console(), transient=True)
    with p:
        p.add_task(label, total=None)
        yield
