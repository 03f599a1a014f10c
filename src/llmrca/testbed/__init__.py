"""Testbeds: what serves the load and suffers the faults of a campaign.

:mod:`.base` holds the contract (:class:`~.base.Backend`, the case
:class:`~.base.Timeline`, the backend and fault-implementation registries),
:mod:`.injection` the lifecycle of a live fault, :mod:`.sim` the simulated
stack and :mod:`.local` the real processes.  Fault types themselves live in
:mod:`llmrca.faults` (one module per type, every backend side by side).
"""
