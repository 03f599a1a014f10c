"""The paper's serving topology (gateway -> Ray head -> Ray workers, plus the operator).

Defined in :mod:`llmrca.telemetry.catalogue` beside the component names (methods and
fixtures use it too, and methods never import the testbed); re-exported here for the backends.
"""

from __future__ import annotations

from llmrca.telemetry.catalogue import paper_topology

__all__ = ["paper_topology"]
