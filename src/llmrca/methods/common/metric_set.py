"""The metric-set rule: which metric set a method sees (one home for the evaluator, ``rank`` and heal)."""

from __future__ import annotations

from collections.abc import Collection

from llmrca.errors import MethodUnavailable


def choose_metric_set(available: Collection[str], preferred: str, forced: str | None = None) -> str:
    """The metric set to hand a method.

    ``forced`` (the user's ``--metric-set``) wins and must exist in
    ``available`` (else :class:`~llmrca.errors.MethodUnavailable` naming the
    sets there are); otherwise the method's ``preferred`` set (its registry
    row's ``metric_set``) when the case has it, else ``basic`` (every case
    has it).
    """
    if forced is not None:
        if forced not in available:
            raise MethodUnavailable(f"the case has no {forced!r} metric set (has: {', '.join(sorted(available))})")
        return forced
    return preferred if preferred in available else "basic"
