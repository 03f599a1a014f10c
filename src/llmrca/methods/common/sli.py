"""The service-level indicator (SLI) a method walks from, chosen by meaning, never by ground truth.

Methods such as the random-walk heads, MicroCause, CIRCA and MonitorRank
start from what the user feels: the latency of requests at the entry of the
system.  The SLI is chosen as:

1. ``case.meta["sli"]`` when set (``--sli COLUMN`` on the command line);
   a column that the case does not have raises :class:`SliError`;
2. else the *entry component*: the topology's ``entry``, else the first
   component whose name says it is an entry by role — gateway, ingress,
   nginx, proxy, frontend, front-end (in that order of preference) — and of
   its columns the first latency kind of
   :data:`~llmrca.telemetry.vocabulary.LATENCY_KINDS` (p90 first);
3. else the first component (in the case's component order) that has a
   latency column of any of those kinds.

Latency kinds are read through the metric vocabulary, so ``latency-90``,
sock-shop's ``lat_90``, Istio's ``istio_request_duration_milliseconds:p90``
or ingress-nginx's request duration all qualify.
"""

from __future__ import annotations

from collections.abc import Sequence

from llmrca.model import Case, split_column
from llmrca.telemetry.vocabulary import LATENCY_KINDS, describe_columns

#: Name fragments that mark an entry component, in order of preference.
ENTRY_ROLES: tuple[str, ...] = ("gateway", "ingress", "nginx", "proxy", "frontend", "front-end")


class SliError(ValueError):
    """The requested SLI column is not in the case."""


def entry_component(case: Case, components: Sequence[str] | None = None) -> str | None:
    """The component where client requests enter: the topology's entry, else by role name, else None."""
    comps = list(case.components if components is None else components)
    if case.topology is not None and case.topology.entry:
        return case.topology.entry
    for role in ENTRY_ROLES:
        for c in comps:
            if role in c.lower():
                return c
    return None


def latency_columns(columns: Sequence[str], component: str) -> list[str]:
    """The component's latency columns, most preferred kind first (see :data:`LATENCY_KINDS`)."""
    rank = {k: i for i, k in enumerate(LATENCY_KINDS)}
    found = [(rank[cm.kind], i, cm.column) for i, cm in enumerate(describe_columns(columns)) if cm.component == component and cm.kind in rank]
    return [col for _, _, col in sorted(found)]


def sli_column(case: Case, columns: Sequence[str] | None = None) -> str | None:
    """The SLI column of ``case`` among ``columns`` (default: the case's metric columns), or None.

    Raises :class:`SliError` when ``case.meta["sli"]`` names a column that is not there.
    """
    cols = [str(c) for c in (case.metrics.columns if columns is None else columns) if c != "time"]
    wanted = case.meta.get("sli") if isinstance(case.meta, dict) else None
    if wanted:
        if wanted == "time":
            raise SliError("--sli 'time' is the time index of this case, not a metric; name a latency column "
                           f"(latency columns: {[c for c in cols if latency_columns([c], split_column(c)[0])][:10]})")
        if wanted in cols:
            return str(wanted)
        if wanted in case.metrics.columns:
            return None  # asked for, present in the case, but dropped by the caller's preprocessing
        raise SliError(f"--sli {wanted!r} is not a column of this case (latency columns: {[c for c in cols if latency_columns([c], split_column(c)[0])][:10]})")
    entry = entry_component(case)
    if entry is not None:
        own = latency_columns(cols, entry)
        if own:
            return own[0]
    comps = list(case.components)
    comps += [c for c in dict.fromkeys(split_column(c)[0] for c in cols) if c not in comps]
    for comp in comps:
        own = latency_columns(cols, comp)
        if own:
            return own[0]
    return None
