"""The lifecycle of a live fault: every injection is undone on exit, Ctrl-C and error.

An :class:`Injector` knows one fault type on one live backend (the local
testbed today; Kubernetes next).  The implementations live in
:mod:`llmrca.faults` (one module per fault type) and are found by name in
:data:`llmrca.testbed.base.FAULT_IMPLEMENTATIONS`.  :func:`inject` is
the one way to run it::

    with inject(spec, backend="local", testbed=tb) as active:
        ...                      # the fault is on
    record = active.record       # FaultRecord with requested and achieved parameters

``start`` applies the fault, ``measure`` says what it achieved (CPU seconds
burned, bytes held, added latency seen, power limit read back — PROTOCOL §4:
Chaos Mesh users learnt not to trust the request), ``stop`` removes it and
must be idempotent.  Active injections are also undone by an ``atexit`` hook
and on SIGINT/SIGTERM, so a crashed or interrupted caller leaves no fault
behind; the local backend's faults additionally expire on their own
(``expires_at`` / ``--timeout``) in case the caller is SIGKILLed.
"""

from __future__ import annotations

import atexit
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from llmrca.model import FaultRecord, FaultSpec, normalize_fault_type
from llmrca.testbed.base import FAULT_IMPLEMENTATIONS, fault_class, register_fault


class FaultError(RuntimeError):
    """A fault could not be injected or removed."""


class Injector(ABC):
    """One fault type on one live backend: four verbs.

    * validate: the constructor checks ``spec.params`` against :attr:`defaults`
      (raises :class:`FaultError` naming the known parameters);
    * apply: :meth:`start`;  * measure: :meth:`measure`;  * undo: :meth:`stop`.
    """

    fault_type: str = ""
    #: default parameters (the paper's values scaled to the backend)
    defaults: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, spec: FaultSpec, **context: Any) -> None:
        self.spec = spec
        unknown = sorted(set(spec.params) - set(self.defaults))
        if unknown:
            raise FaultError(
                f"unknown parameter(s) {unknown} for {self.fault_type} fault; known: {', '.join(f'{k}={v}' for k, v in self.defaults.items())}"
            )
        self.params: dict[str, Any] = {**self.defaults, **dict(spec.params)}
        problems = getattr(type(self), "problems", None)  # the range checks of a fault type that has them
        if problems is not None and (bad := problems(self.params)):
            raise FaultError(f"{self.fault_type} fault: {'; '.join(bad)}")
        self.context = context

    @abstractmethod
    def start(self) -> None:
        """Apply the fault now; raises :class:`FaultError` when it cannot."""

    @abstractmethod
    def measure(self) -> dict[str, Any]:
        """What the fault achieved so far (called just before ``stop``)."""

    @abstractmethod
    def stop(self) -> None:
        """Remove the fault; safe to call twice."""


_ACTIVE: dict[int, Injector] = {}
_LOCK = threading.Lock()
_HANDLERS_INSTALLED = False


def register(backend: str, cls: type[Injector]) -> type[Injector]:
    """Register ``cls`` as the ``cls.fault_type`` fault of ``backend`` (a class defined outside :mod:`llmrca.faults`)."""
    register_fault(backend, cls.fault_type, f"{cls.__module__}:{cls.__qualname__}")
    return cls


def injector_class(backend: str, fault_type: str) -> type[Injector]:
    """The :class:`Injector` of ``fault_type`` (any spelling) on ``backend``; raises :class:`FaultError` if there is none."""
    ft = normalize_fault_type(fault_type)
    try:
        cls = fault_class(backend, ft)
    except ValueError:
        have = sorted(t for b, t in FAULT_IMPLEMENTATIONS if b == backend)
        raise FaultError(f"no {ft!r} injector for backend {backend!r}; available: {have or 'none'}") from None
    if not (isinstance(cls, type) and issubclass(cls, Injector)):
        raise FaultError(f"the {ft!r} fault of backend {backend!r} is simulated, not injected ({cls.__name__})")
    return cls


def undo_all() -> list[str]:
    """Stop every active injection (atexit / signal path); returns errors, never raises."""
    errors = []
    with _LOCK:
        active = list(_ACTIVE.values())
        _ACTIVE.clear()
    for inj in active:
        try:
            inj.stop()
        except Exception as e:  # undo as much as possible; report every failure
            errors.append(f"{inj.fault_type}@{inj.spec.target}: {e}")
    return errors


def _install_handlers() -> None:
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    _HANDLERS_INSTALLED = True
    atexit.register(undo_all)
    for sig in (signal.SIGINT, signal.SIGTERM):
        prev = signal.getsignal(sig)

        def handler(signum: int, frame: Any, _prev: Any = prev) -> None:
            undo_all()
            if callable(_prev):
                _prev(signum, frame)
            elif signum == signal.SIGINT:
                raise KeyboardInterrupt
            else:
                raise SystemExit(128 + signum)

        signal.signal(sig, handler)


class ActiveFault:
    """An injection under way: its injector, start and end (epoch s) and what it achieved (set on exit)."""

    def __init__(self, inj: Injector) -> None:
        self.injector = inj
        self.start: float | None = None
        self.end: float | None = None
        self.achieved: dict[str, Any] = {}

    @property
    def record(self) -> FaultRecord:
        """The FaultRecord: requested parameters (with ``duration_s``), achieved values, start and end."""
        s = self.injector.spec
        return FaultRecord(type=normalize_fault_type(s.type), target=s.target, requested={**self.injector.params, "duration_s": s.duration_s},
                           achieved=self.achieved, start=self.start, end=self.end)


@contextmanager
def inject(spec: FaultSpec, backend: str = "local", on_measure: Callable[[dict[str, Any]], None] | None = None, **context: Any) -> Iterator[ActiveFault]:
    """Apply ``spec`` for the duration of the block; the fault is removed however the block ends.

    ``context`` goes to the injector (the local backend: ``testbed=`` or
    ``run_dir=``).  Raises :class:`FaultError` for an unknown fault type or
    parameter, or when the fault cannot be applied; ``on_measure`` receives
    the achieved values after the fault is removed.
    """
    inj = injector_class(backend, spec.type)(spec, **context)
    _install_handlers()
    act = ActiveFault(inj)
    with _LOCK:
        _ACTIVE[id(inj)] = inj
    try:
        act.start = time.time()
        inj.start()
        act.start = getattr(inj, "applied_at", None) or act.start  # after probes made before the fault, when it went in
        yield act
    finally:
        interrupted = False
        try:
            act.achieved = inj.measure()
        except KeyboardInterrupt:  # Ctrl-C while measuring: the fault goes, what was measured is said, then the interrupt
            act.achieved = {"measure_error": "interrupted while measuring"}
            interrupted = True
        except Exception as e:  # the measurement failing must not keep the fault on
            act.achieved = {"measure_error": f"{type(e).__name__}: {e}"}
        finally:
            with _LOCK:
                _ACTIVE.pop(id(inj), None)
            inj.stop()
            act.end = time.time()
        if on_measure:
            on_measure(act.achieved)
        if interrupted:
            raise KeyboardInterrupt


class HealthyWindow:
    """The stand-in for :class:`ActiveFault` in a healthy case: nothing is injected; start and end mark the window."""

    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.start: float | None = None
        self.end: float | None = None
        self.achieved: dict[str, Any] = {"injected": False}

    @property
    def record(self) -> FaultRecord:
        """``FaultRecord.healthy(start, end)``: type ``none``, no target, ``achieved = {"injected": false}``."""
        return FaultRecord.healthy(self.start, self.end)


@contextmanager
def inject_or_wait(spec: FaultSpec, backend: str = "local", **context: Any) -> Iterator[ActiveFault | HealthyWindow]:
    """:func:`inject` for a fault; for a healthy spec (type :data:`~llmrca.model.NO_FAULT`) no injector at all.

    The block runs either way (the caller still waits out the fault window),
    so a healthy case follows the same timeline as a faulty one.
    """
    from llmrca.model import NO_FAULT

    if spec.type != NO_FAULT:
        with inject(spec, backend=backend, **context) as act:
            yield act
        return
    win = HealthyWindow(spec)
    win.start = time.time()
    try:
        yield win
    finally:
        win.end = time.time()
