"""Method registry: short name -> implementation, imported only when used.

Listing the registry imports nothing heavy: each entry names its module and
the optional modules it needs, so ``llmrca methods`` can report a method as
unavailable (with the extra to install) without importing it.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any

from llmrca.errors import MissingDependency


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:Class"
    family: str
    requires: tuple[str, ...] = ()
    extra: str | None = None


def _e(name: str, target: str, family: str, requires: tuple[str, ...] = (), extra: str | None = None) -> Entry:
    return Entry(name, "llmrca.methods." + target, family, requires, extra)


# One block per family; keep the paper's Table 1 order inside a block.
_ENTRIES: list[Entry] = [
    # -- statistical (spine) --
    _e("random", "statistical.random:RandomRank", "statistical"),
    _e("nsigma", "statistical.nsigma:NSigma", "statistical"),
    _e("baro", "statistical.baro:Baro", "statistical"),
    # -- end statistical --

    # -- causal-graph family --
    _e("pc-pagerank", "graph.methods:PcPageRank", "graph"),
    _e("pc-randomwalk", "graph.methods:PcRandomWalk", "graph"),
    _e("fci-pagerank", "graph.methods:FciPageRank", "graph"),
    _e("fci-randomwalk", "graph.methods:FciRandomWalk", "graph"),
    _e("granger-pagerank", "graph.methods:GrangerPageRank", "graph"),
    _e("granger-randomwalk", "graph.methods:GrangerRandomWalk", "graph"),
    _e("lingam-pagerank", "graph.methods:LingamPageRank", "graph"),
    _e("lingam-randomwalk", "graph.methods:LingamRandomWalk", "graph"),
    _e("microcause", "graph.microcause:MicroCause", "causal"),
    _e("circa", "causal.circa:Circa", "causal"),
    _e("rcd", "causal.rcd:Rcd", "causal"),
    _e("causalrca", "causal.causalrca:CausalRca", "causal", requires=("torch",), extra="torch"),
    _e("causalai", "causal.causalai:CausalAi", "causal"),
    # -- end causal-graph family --

    # -- statistical / topology / trace / multi-source family --
    _e("e-diagnosis", "statistical.e_diagnosis:EDiagnosis", "statistical"),
    _e("microrca", "topology.microrca:MicroRCA", "topology"),
    _e("microscope", "topology.microscope:Microscope", "topology"),
    _e("monitorrank", "topology.monitorrank:MonitorRank", "topology"),
    _e("microrank", "trace.microrank:MicroRank", "trace"),
    _e("tracerca", "trace.tracerca:TraceRCA", "trace"),
    _e("mm-baro", "multisource.mm_baro:MMBaro", "multisource"),
    _e("pdiagnose", "multisource.pdiagnose:PDiagnose", "multisource"),
    # -- end statistical / topology / trace / multi-source family --

    # -- LLM-aware --
    _e("llm-rca", "llm.method:LlmRca", "llm"),
    # -- end LLM-aware --
]

REGISTRY: dict[str, Entry] = {e.name: e for e in _ENTRIES}


def register(new: Entry, *, replace: bool = False) -> Entry:
    """Add a method entry at run time (plugins, test-only methods).

    ``new.target`` is ``"module:Class"`` with a full module path.  Worker
    processes of the evaluator are forked (Linux), so they inherit entries
    registered before the evaluation starts; the Ray engine ships them with
    each task.  Raises ValueError if the name is taken (unless ``replace``).
    """
    if new.name in REGISTRY and not replace:
        raise ValueError(f"method {new.name!r} is already registered ({REGISTRY[new.name].target})")
    if ":" not in new.target:
        raise ValueError(f"entry target {new.target!r} must be 'module:Class'")
    REGISTRY[new.name] = new
    return new


def unregister(name: str) -> None:
    """Remove a run-time entry (tests clean up after themselves)."""
    REGISTRY.pop(name, None)


def names() -> list[str]:
    """All registered method names, in registry order."""
    return list(REGISTRY)


def entry(name: str) -> Entry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(REGISTRY)}") from None


def available(name: str) -> tuple[bool, str]:
    """Whether ``name`` can run here, and why not (with the install hint)."""
    e = entry(name)
    for mod in e.requires:
        if importlib.util.find_spec(mod) is None:
            hint = f'pip install "llmrca[{e.extra}]"' if e.extra else f"pip install {mod}"
            return False, f"needs {mod}: {hint}"
    return True, ""


def method_class(name: str) -> type:
    """Import and return the method class (raises MissingDependency if unavailable)."""
    e = entry(name)
    if not available(name)[0]:
        raise MissingDependency(e.requires[0], e.extra, what=f"method {name!r}")
    module, _, cls = e.target.partition(":")
    return getattr(importlib.import_module(module), cls)


def get_method(name: str, config: Any = None, **overrides: Any) -> Any:
    """Build method ``name`` from a config (dataclass or dict) plus overrides."""
    return method_class(name)(config, **overrides)


def list_methods() -> list[dict[str, Any]]:
    """One row per method: name, family, availability, reason, extra."""
    rows = []
    for e in REGISTRY.values():
        ok, why = available(e.name)
        rows.append({"name": e.name, "family": e.family, "available": ok, "reason": why, "extra": e.extra})
    return rows
