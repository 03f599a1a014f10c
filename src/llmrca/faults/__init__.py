"""Fault types: one module per type, each with every backend's implementation side by side.

* :mod:`.cpu` (CPU hog), :mod:`.memory` (memory leak), :mod:`.network`
  (network delay), :mod:`.gpu` (GPU power cap): a ``Sim...`` class acting on
  the simulator through hooks (:class:`llmrca.testbed.sim.faults.SimFault`) and
  a ``Local...`` class injecting into the local testbed
  (:class:`llmrca.faults.local.LocalInjector`); the place for a Kubernetes
  implementation is named in each module's docstring.
* Every fault has the same four verbs: validate the spec, apply, measure what
  was achieved, undo.  Implementations are found by name through
  :data:`llmrca.testbed.base.FAULT_IMPLEMENTATIONS`.
* The lifecycle of a live injection (undone on exit, Ctrl-C and error) is
  :func:`inject` (:mod:`llmrca.testbed.injection`), re-exported here.
"""

from llmrca.testbed.injection import ActiveFault, FaultError, Injector, inject, injector_class, register, undo_all

__all__ = ["ActiveFault", "FaultError", "Injector", "inject", "injector_class", "register", "undo_all"]
