"""Fault injection: FaultSpec → injector per backend, measuring what each injection achieved.

See :mod:`llmrca.faults.base` for the interface and :mod:`llmrca.faults.local`
for the local testbed's real faults.
"""

from llmrca.faults.base import ActiveFault, FaultError, Injector, inject, injector_class, register, undo_all

__all__ = ["ActiveFault", "FaultError", "Injector", "inject", "injector_class", "register", "undo_all"]
