"""Method registry: short name -> implementation, imported only when used.

Listing the registry imports nothing heavy: each entry names its module and
the optional modules it needs, so ``llmrca methods`` can report a method as
unavailable (with the extra to install) without importing it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import os
import warnings
from dataclasses import dataclass
from typing import Any

from llmrca.errors import MissingDependency


@dataclass(frozen=True)
class Tags:
    """What a method needs and uses (capability tags, not an isinstance ladder).

    ``metric_set`` is the metric set the method sees by default: the paper's
    baselines use ``basic`` (as in the paper), LLM-aware methods ``extended``.
    ``requires`` are optional Python modules it imports; ``extra`` is the
    ``pip install "llmrca[extra]"`` that brings them.  A registered method's
    tags come from its registry row (:attr:`Entry.tags`).
    """

    needs_metrics: bool = True
    needs_logs: bool = False
    needs_traces: bool = False
    needs_topology: bool = False
    uses_topology: bool = False
    metric_set: str = "basic"
    requires: tuple[str, ...] = ()
    extra: str | None = None
    family: str = "statistical"
    deterministic: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: The paper's "Data Source" group of each method family (Table 1).
SOURCES: dict[str, str] = {
    "statistical": "Metric",
    "graph": "Metric",
    "causal": "Metric",
    "topology": "Metric",
    "trace": "Trace",
    "multisource": "Multi Source",
    "llm": "LLM-aware",
}


@dataclass(frozen=True)
class Entry:
    """One method's row: everything known about it without importing it.

    ``target`` is ``"module:Class"``; ``family`` its group; ``requires`` the
    optional modules it imports and ``extra`` the ``llmrca[extra]`` that
    installs them; ``display`` the paper's spelling of its name; ``source``
    the paper's data-source group (default: from the family); ``citation``
    the paper(s) it implements; ``needs`` the inputs without which it cannot
    run (``metrics``, ``logs``, ``traces``, ``topology``); ``uses_topology``
    whether it uses a call graph when there is one; ``metric_set`` the metric
    set it sees by default; ``deterministic`` whether equal inputs give equal
    rankings (under the config's seed).
    """

    name: str
    target: str  # "module:Class"
    family: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    display: str = ""
    source: str = ""
    citation: str = ""
    needs: tuple[str, ...] = ("metrics",)
    uses_topology: bool = False
    metric_set: str = "basic"
    deterministic: bool = True

    @property
    def display_name(self) -> str:
        """The paper's name of the method (the registry name when none is given)."""
        return self.display or self.name

    @property
    def data_source(self) -> str:
        """The paper's data-source group: ``source``, else the family's, else ``Other``."""
        return self.source or SOURCES.get(self.family, "Other")

    @property
    def tags(self) -> Tags:
        """The row as the :class:`Tags` a method class exposes."""
        return Tags(
            needs_metrics="metrics" in self.needs,
            needs_logs="logs" in self.needs,
            needs_traces="traces" in self.needs,
            needs_topology="topology" in self.needs,
            uses_topology=self.uses_topology or "topology" in self.needs,
            metric_set=self.metric_set,
            requires=tuple(self.requires),
            extra=self.extra,
            family=self.family,
            deterministic=self.deterministic,
        )


def _e(name: str, target: str, family: str, display: str, citation: str, **kw: Any) -> Entry:
    return Entry(name, "llmrca.methods." + target, family, display=display, citation=citation, **kw)


_PC = "PC: Spirtes & Glymour, 'An algorithm for fast recovery of sparse causal graphs', Soc. Sci. Comput. Rev. 1991"
_FCI = "FCI: Spirtes, Meek & Richardson, 'Causal inference in the presence of latent variables and selection bias', UAI 1995"
_GRANGER = "Granger, 'Investigating causal relations by econometric models and cross-spectral methods', Econometrica 1969"
_LINGAM = "LiNGAM: Shimizu et al., JMLR 2006 (ICA-LiNGAM); Shimizu et al., 'DirectLiNGAM', JMLR 2011"
_PR = "PageRank head: Page et al. 1999; personalised as in MicroRCA (Wu et al., NOMS 2020) / RCAEval (Pham et al., WWW 2025)"
_RW = "random-walk head: CloudRanger (Wang et al., CCGRID 2018); MicroCause (Meng et al., IWQoS 2020)"
_BARO = "Pham, Ha, Zhang. BARO: Robust Root Cause Analysis for Microservices via Multivariate Bayesian Online Change Point Detection. FSE 2024"
_G = {"uses_topology": True}
_CL = {"requires": ("causallearn",), "extra": "causal"}
_LI = {"requires": ("lingam",), "extra": "causal"}

# One block per family; keep the paper's Table 1 order inside a block.
_ENTRIES: list[Entry] = [
    # -- statistical (spine) --
    _e("random", "statistical.random:RandomRank", "statistical", "Random", "uniformly random ranking (the floor every method must beat)"),
    _e("nsigma", "statistical.nsigma:NSigma", "statistical", "NSigma",
       "Pham, Ha, Zhang. Root Cause Analysis for Microservices based on Causal Inference: How Far Are We? ASE 2024"),
    _e("baro", "statistical.baro:Baro", "statistical", "BARO", _BARO),
    # -- end statistical --

    # -- causal-graph family --
    _e("pc-pagerank", "graph.methods:PcPageRank", "graph", "PC-PR", f"{_PC}; {_PR}", **_G, **_CL),
    _e("pc-randomwalk", "graph.methods:PcRandomWalk", "graph", "PC-RW", f"{_PC}; {_RW}", **_G, **_CL),
    _e("fci-pagerank", "graph.methods:FciPageRank", "graph", "FCI-PR", f"{_FCI}; {_PR}", **_G, **_CL),
    _e("fci-randomwalk", "graph.methods:FciRandomWalk", "graph", "FCI-RW", f"{_FCI}; {_RW}", **_G, **_CL),
    _e("granger-pagerank", "graph.methods:GrangerPageRank", "graph", "Granger-PR", f"{_GRANGER}; {_PR}", **_G),
    _e("granger-randomwalk", "graph.methods:GrangerRandomWalk", "graph", "Granger-RW", f"{_GRANGER}; {_RW}", **_G),
    _e("lingam-pagerank", "graph.methods:LingamPageRank", "graph", "LiNGAM-PR", f"{_LINGAM}; {_PR}", **_G, **_LI),
    _e("lingam-randomwalk", "graph.methods:LingamRandomWalk", "graph", "LiNGAM-RW", f"{_LINGAM}; {_RW}", **_G, **_LI),
    _e("microcause", "graph.microcause:MicroCause", "causal", "MicroCause",
       "Meng et al., 'Localizing Failure Root Causes in a Microservice through Causality Inference', IWQoS 2020; "
       "PCMCI: Runge et al., Science Advances 2019", **_G),
    _e("circa", "causal.circa:Circa", "causal", "CIRCA",
       "Li et al., Causal Inference-Based Root Cause Analysis for Online Service Systems with Intervention Recognition, KDD 2022", **_G, **_CL),
    _e("rcd", "causal.rcd:Rcd", "causal", "RCD",
       "Ikram et al., Root Cause Analysis of Failures in Microservices through Causal Discovery, NeurIPS 2022", **_CL),
    _e("causalrca", "causal.causalrca:CausalRca", "causal", "CausalRCA",
       "Xin et al., CausalRCA: Causal inference based precise fine-grained root cause localization, JSS 2023",
       requires=("torch",), extra="torch"),
    _e("causalai", "causal.causalai:CausalAi", "causal", "CausalAI", "Arpit et al., Salesforce CausalAI Library, arXiv:2301.10859, 2023", **_CL),
    # -- end causal-graph family --

    # -- statistical / topology / trace / multi-source family --
    _e("e-diagnosis", "statistical.e_diagnosis:EDiagnosis", "statistical", "ε-Diagnosis", "Shan et al., ε-Diagnosis, WWW 2019"),
    _e("microrca", "topology.microrca:MicroRCA", "topology", "MicroRCA", "Wu et al., MicroRCA, NOMS 2020", needs=("metrics", "topology")),
    _e("microscope", "topology.microscope:Microscope", "topology", "Microscope", "Lin et al., Microscope, ICSOC 2018",
       needs=("metrics", "topology")),
    _e("monitorrank", "topology.monitorrank:MonitorRank", "topology", "MonitorRank", "Kim et al., MonitorRank, SIGMETRICS 2013",
       needs=("metrics", "topology")),
    _e("microrank", "trace.microrank:MicroRank", "trace", "MicroRank", "Yu et al., MicroRank, WWW 2021", needs=("traces",)),
    _e("tracerca", "trace.tracerca:TraceRCA", "trace", "TraceRCA", "Li et al., TraceRCA, IWQoS 2021", needs=("traces",)),
    _e("mm-baro", "multisource.mm_baro:MMBaro", "multisource", "MM-BARO", f"{_BARO} (multi-source variant as in RCAEval, WWW 2025)"),
    _e("pdiagnose", "multisource.pdiagnose:PDiagnose", "multisource", "PDiagnose", "Hou et al., PDiagnose, 2021"),
    # -- end statistical / topology / trace / multi-source family --

    # -- LLM-aware --
    _e("llm-rca", "llm.method:LlmRca", "llm", "LLM-RCA (ours)", "this project (llmrca); design per the paper's §5.5–5.6 guidelines",
       uses_topology=True, metric_set="extended"),
    # -- end LLM-aware --
]

REGISTRY: dict[str, Entry] = {e.name: e for e in _ENTRIES}
#: how a plug-in's method becomes known (said where a method name is unknown)
PLUGIN_HINT = ("a plug-in's method is known once its module is named in $LLMRCA_PLUGINS or its package declares an "
               "entry point in the llmrca.methods group")
#: llmrca's own rows, as shipped (a plug-in may add rows, or replace one with ``register(..., replace=True)``)
_BUILTIN: dict[str, Entry] = dict(REGISTRY)


class MethodLoadError(ImportError):
    """A registry row whose class cannot be loaded: its module does not import, it has no such class, or the class
    declares another ``name`` than the row.  The message names the method, the row's target and the fix."""


def is_builtin(name: str) -> bool:
    """True when ``name``'s row is llmrca's own, as shipped (not added or replaced by a plug-in)."""
    return name in _BUILTIN and REGISTRY.get(name) == _BUILTIN[name]


def method_source(name: str) -> dict[str, Any]:
    """Where method ``name``'s code comes from: ``{"target": "module:Class", "builtin": bool, "file": path or None,
    "digest": 12 hex digits of the SHA-256 of that file or None}`` (the file is found without importing it;
    None when it cannot be found or read).  Recorded with each evaluation (``run.json``) so that a row of
    Table 1 can be traced to the code that produced it."""
    import hashlib

    e = entry(name)
    module = e.target.partition(":")[0]
    out: dict[str, Any] = {"target": e.target, "builtin": is_builtin(name), "file": None, "digest": None}
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    origin = getattr(spec, "origin", None)
    if origin and origin not in ("built-in", "frozen") and os.path.isfile(origin):
        out["file"] = origin
        try:
            with open(origin, "rb") as fh:
                out["digest"] = hashlib.sha256(fh.read()).hexdigest()[:12]
        except OSError:
            pass
    return out


_LOAD_PROBLEMS: dict[Entry, str] = {}


def _load_problem(e: Entry) -> str:
    """Why row ``e``'s class cannot be loaded ("" when it can); a row added by a plug-in is imported to find out."""
    if e in _LOAD_PROBLEMS:
        return _LOAD_PROBLEMS[e]
    module, _, attr = e.target.partition(":")
    why = ""
    try:
        cls = getattr(importlib.import_module(module), attr)
    except AttributeError:
        why = f"module {module!r} has no class {attr!r}"
    except Exception as exc:
        why = f"module {module!r} does not import ({type(exc).__name__}: {exc})"
    else:
        declared = getattr(cls, "name", None)
        if isinstance(declared, str) and declared != e.name:
            why = (f"its class {e.target} declares name = {declared!r}; the row and the class must agree "
                   f"(set name = {e.name!r} on the class, or register the row as {declared!r})")
    if why:
        origin = "" if is_builtin(e.name) else "plug-in "
        why = f"method {e.name!r} ({origin}entry {e.target}) cannot be loaded: {why}"
    _LOAD_PROBLEMS[e] = why
    return why


def register(new: Entry, *, replace: bool = False) -> Entry:
    """Add a method entry at run time (plugins, test-only methods).

    ``new.target`` is ``"module:Class"`` with a full module path.  Worker
    processes of the evaluator are forked (Linux), so they inherit entries
    registered before the evaluation starts; the Ray engine ships them with
    each task.  Raises ValueError if the name is taken (unless ``replace``).
    """
    if new.name in REGISTRY and not replace:
        raise ValueError(
            f"method {new.name!r} is already registered ({REGISTRY[new.name].target}); give the new method another name "
            "(its Entry's and its class's name), or pass replace=True to register() to replace the existing one on purpose"
        )
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
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(REGISTRY)} ({PLUGIN_HINT})") from None


def available(name: str) -> tuple[bool, str]:
    """Whether ``name`` can run here, and why not: the install hint of its missing extra, or (a plug-in's row)
    why its class cannot be loaded."""
    from llmrca.errors import unavailable_reason

    e = entry(name)
    why = unavailable_reason(tuple(e.requires), e.extra)
    if not why and not is_builtin(name):  # a plug-in's row: can its class be loaded?  (built-in rows are not imported here)
        why = _load_problem(e)
    return (not why), why


def method_class(name: str) -> type:
    """Import and return the method class.  Raises MissingDependency when its optional modules are missing,
    :class:`MethodLoadError` when its row's class cannot be loaded (see :func:`available`)."""
    e = entry(name)
    from llmrca.errors import unavailable_reason

    if unavailable_reason(tuple(e.requires), e.extra):
        raise MissingDependency(e.requires[0], e.extra, what=f"method {name!r}")
    if why := _load_problem(e):
        raise MethodLoadError(why)
    module, _, cls = e.target.partition(":")
    return getattr(importlib.import_module(module), cls)


def get_method(name: str, config: Any = None, **overrides: Any) -> Any:
    """Build method ``name`` from a config (dataclass or dict) plus overrides."""
    return method_class(name)(config, **overrides)


def list_methods() -> list[dict[str, Any]]:
    """One row per method: name, paper name, family, data source, needs, availability, reason, extra."""
    rows = []
    for e in REGISTRY.values():
        ok, why = available(e.name)
        rows.append({
            "name": e.name, "paper_name": e.display_name, "family": e.family, "source": e.data_source,
            "needs": list(e.needs), "available": ok, "reason": why, "extra": e.extra, "citation": e.citation,
        })
    return rows


def paper_names() -> dict[str, str]:
    """Registry name -> the paper's spelling, for every registered method (run-time entries too)."""
    return {e.name: e.display_name for e in REGISTRY.values()}


def source_of_family() -> dict[str, str]:
    """Method family -> the paper's data-source group, as the registry rows say."""
    out = dict(SOURCES)
    out.update({e.family: e.data_source for e in REGISTRY.values()})
    return out


#: Thin views of the rows for the table code (``PAPER_NAMES[name]``, ``SOURCE_OF_FAMILY[family]``).
PAPER_NAMES: dict[str, str] = paper_names()
SOURCE_OF_FAMILY: dict[str, str] = source_of_family()


#: Entry-point group through which an installed package adds methods: each entry point names an
#: :class:`Entry` (or a function returning one or a list of them), e.g. in the plug-in's ``pyproject.toml``::
#:
#:     [project.entry-points."llmrca.methods"]
#:     my-method = "my_package.rca:ENTRY"
ENTRY_POINT_GROUP = "llmrca.methods"
#: Environment variable naming modules (comma-separated) imported for their ``register(...)`` calls.
PLUGINS_ENV = "LLMRCA_PLUGINS"


def _plugin_warning(what: str, exc: Exception, added: list[str], where: str) -> None:
    """Warn that a plug-in failed to load, naming what it did register before it failed.  The warning is placed at
    the plug-in (``<plug-in NAME>``), not at the line of llmrca that loads it."""
    if added:
        msg = f"{what} failed part-way: {exc}; registered before that: {', '.join(added)}; anything it registers after that is missing"
    else:
        msg = f"{what} not loaded: {exc}"
    warnings.warn_explicit(msg, RuntimeWarning, filename=f"<plug-in {where}>", lineno=0)


def load_plugins() -> list[str]:
    """Register the methods of installed plug-ins (:data:`ENTRY_POINT_GROUP`) and of the modules named in
    ``$LLMRCA_PLUGINS``; returns the names added.  Runs once when :mod:`llmrca.methods` is imported (after the
    registry and the base class exist, so a plug-in may import both), so every command (``llmrca methods``,
    ``evaluate --methods``, ``rank``) sees them.  A plug-in that fails to load is
    reported with a warning naming it and skipped: it never breaks the built-in methods.
    """
    before = set(REGISTRY)
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        had = set(REGISTRY)
        try:
            obj = ep.load()
            got = obj() if callable(obj) and not isinstance(obj, Entry) else obj
            for e in got if isinstance(got, list | tuple) else [got]:
                if not isinstance(e, Entry):
                    raise TypeError(f"expected an llmrca.methods.registry.Entry, got {type(e).__name__}")
                register(e, replace=False)
        except Exception as exc:  # a broken plug-in is named, never fatal
            _plugin_warning(f"llmrca plug-in {ep.name!r} ({ep.value})", exc, sorted(set(REGISTRY) - had), f"entry point {ep.name}")
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        had = set(REGISTRY)
        try:
            importlib.import_module(module)
        except Exception as exc:
            _plugin_warning(f"llmrca plug-in module {module!r} (from ${PLUGINS_ENV})", exc, sorted(set(REGISTRY) - had), module)
    return [n for n in REGISTRY if n not in before]
