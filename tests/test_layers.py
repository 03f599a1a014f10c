"""Import layers of llmrca: who may import whom, and no import cycles.

The experiment half is layered ``cli -> campaign -> faults -> testbed``: the
orchestrator finds backends and fault implementations by name
(:mod:`llmrca.testbed.base` registries), fault types act on testbeds, and
testbeds import neither faults nor the orchestrator.  Methods analyse cases
and know nothing of how they were produced.  The graph is read from the
source by grimp (imports inside functions count; ``if TYPE_CHECKING`` ones
do not).
"""

from __future__ import annotations

from pathlib import Path

import grimp
import networkx as nx
import pytest

import llmrca

#: (importer, imported): the importer may not depend on the imported package, directly or through others.
FORBIDDEN = [
    *(("llmrca.methods", x) for x in ("llmrca.testbed", "llmrca.campaign", "llmrca.cli", "llmrca.faults")),
    *(("llmrca.testbed", x) for x in ("llmrca.campaign", "llmrca.cli", "llmrca.faults")),
    *(("llmrca.faults", x) for x in ("llmrca.campaign", "llmrca.cli")),
    ("llmrca.campaign", "llmrca.cli"),
    # the analysis half: an evaluation writes its own tables and figures; documents (report) build on it
    ("llmrca.evaluate", "llmrca.report"),
    ("llmrca.evaluate", "llmrca.cli"),
    ("llmrca.dataset", "llmrca.methods"),
    ("llmrca.model", "llmrca.dataset"),
]

#: Package-level cycles known today, each with its reason; anything else fails.
KNOWN_CYCLES: set[frozenset[str]] = set()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    g = grimp.build_graph("llmrca", include_external_packages=False, exclude_type_checking_imports=True)
    # the graph is of the code under test, not another installed copy
    assert Path(llmrca.__file__).parent.joinpath("campaign.py").exists()
    assert "llmrca.testbed.base" in g.modules and "llmrca.faults.cpu" in g.modules
    return g


@pytest.mark.parametrize(("importer", "imported"), FORBIDDEN, ids=[f"{a.split('.')[-1]}-not-{b.split('.')[-1]}" for a, b in FORBIDDEN])
def test_layer_is_respected(graph: grimp.ImportGraph, importer: str, imported: str) -> None:
    chains = graph.find_shortest_chains(importer=importer, imported=imported, as_packages=True)
    assert not chains, f"{importer} must not import {imported}; found: " + "; ".join(" -> ".join(c) for c in sorted(chains))


def test_no_cycles_between_subpackages(graph: grimp.ImportGraph) -> None:
    top = sorted(graph.find_children("llmrca"))
    g = nx.DiGraph()
    g.add_nodes_from(top)
    g.add_edges_from((a, b) for a in top for b in top if a != b and graph.direct_import_exists(importer=a, imported=b, as_packages=True))
    cycles = [c for c in nx.strongly_connected_components(g) if len(c) > 1]
    unexpected = [sorted(c) for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not unexpected, f"import cycles between llmrca's subpackages: {unexpected}"


@pytest.mark.parametrize("package", ["llmrca.testbed", "llmrca.faults", "llmrca.campaign"])
def test_no_module_cycles_in_the_experiment_half(graph: grimp.ImportGraph, package: str) -> None:
    g = nx.DiGraph()
    for m in graph.modules:
        g.add_edges_from((m, d) for d in graph.find_modules_directly_imported_by(m))
    mine = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1 and c & mine]
    assert not cycles, f"module import cycles touching {package}: {cycles}"


def test_a_forbidden_import_would_be_caught() -> None:
    """The check sees a new edge: add one to a fresh graph and the layer test's query finds it."""
    g = grimp.build_graph("llmrca", include_external_packages=False, exclude_type_checking_imports=True)
    assert not g.find_shortest_chains(importer="llmrca.testbed", imported="llmrca.campaign", as_packages=True)
    g.add_import(importer="llmrca.testbed.sim.engine", imported="llmrca.campaign")
    assert g.find_shortest_chains(importer="llmrca.testbed", imported="llmrca.campaign", as_packages=True)
