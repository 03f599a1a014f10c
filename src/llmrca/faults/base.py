"""The old home of the injection lifecycle; it lives in :mod:`llmrca.testbed.injection` now."""

from llmrca.testbed.injection import ActiveFault, FaultError, Injector, inject, injector_class, register, undo_all

__all__ = ["ActiveFault", "FaultError", "Injector", "inject", "injector_class", "register", "undo_all"]
