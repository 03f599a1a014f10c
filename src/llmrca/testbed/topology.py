"""The paper's serving topology (gateway -> Ray head -> Ray workers, plus the operator)."""

from __future__ import annotations

from llmrca.model import Topology
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, worker_name


def paper_topology(n_workers: int = 3) -> Topology:
    """gateway -> head -> workers, plus the operator (which manages the Ray pods).

    ``n_workers``: Ray worker pods (>= 0); the head hosts one more replica.
    Nodes are ``(gateway, head, ray-worker-1..n, operator)``; edges point from
    caller to callee (paper §4.3, Fig. 1).  Raises nothing.
    """
    workers = [worker_name(i) for i in range(1, n_workers + 1)]
    nodes = (GATEWAY, HEAD, *workers, OPERATOR)
    edges = [(GATEWAY, HEAD)] + [(HEAD, w) for w in workers]
    return Topology(nodes=nodes, edges=tuple(edges), entry=GATEWAY)
