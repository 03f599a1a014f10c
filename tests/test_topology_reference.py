"""MicroRCA, Microscope and MonitorRank as the paper ran them (``reference_mode="rcaeval"``).

Cases are built on the paper's Figure-4 mesh graph (gateway -> every serving
pod, operator -> head) with one pod's latency tripled after the injection, so
the reference's steps can be checked one by one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from llmrca.config import ConfigError
from llmrca.methods.registry import get_method
from llmrca.methods.topology import reference
from llmrca.reproduce import reference_modes
from llmrca.synthetic import make_case
from llmrca.telemetry.catalogue import paper_topology

TOPOLOGY = ["microrca", "microscope", "monitorrank"]


def _fig4_case(root: str = "ray-worker-2", factor: float = 3.0, seed: int = 0):
    """A Figure-4 case whose ``root`` latency (its one mesh edge) rises ``factor``-fold at injection, with its CPU."""
    case = make_case(root=root, fault="cpu", n_workers=3, seed=seed, shift=0.0, with_traces=False)
    m = case.metrics.copy()
    after = (m["time"] >= case.inject_time).to_numpy()
    rng = np.random.default_rng(seed)
    for c in [c for c in m.columns if c.endswith("latency-90") or c.endswith("latency-50")]:
        m[c] = 1.0 + 0.02 * rng.standard_normal(len(m))
    for q in ("latency-90", "latency-50"):
        m.loc[after, f"{root}_{q}"] *= factor
        m.loc[after, f"nginx-gateway_{q}"] += m.loc[after, f"{root}_{q}"] - 1.0  # the gateway's latency is the sum of its edges
    m.loc[after, f"{root}_cpu"] += 5.0 * m[f"{root}_cpu"].std()
    return replace(case, metrics=m, metric_sets={"basic": m}, topology=paper_topology(3, "every-pod"))


def test_every_pod_topology_is_the_mesh_graph() -> None:
    t = paper_topology(2, "every-pod")
    assert set(t.edges) == {("nginx-gateway", "ray-head"), ("nginx-gateway", "ray-worker-1"), ("nginx-gateway", "ray-worker-2"), ("kuberay-operator", "ray-head")}
    assert paper_topology(2).edges == (("nginx-gateway", "ray-head"), ("ray-head", "ray-worker-1"), ("ray-head", "ray-worker-2"))
    with pytest.raises(ValueError, match="ingress"):
        paper_topology(2, "sidecar")


def test_simulated_case_carries_its_layouts_graph() -> None:
    from llmrca.testbed.sim.backend import SimBackend
    from llmrca.testbed.sim.config import SimConfig

    fig4 = SimBackend(SimConfig(ingress="every-pod")).topology().edges
    fig1 = SimBackend(SimConfig(ingress="head", proxy_local_routing=False)).topology().edges
    assert ("nginx-gateway", "ray-worker-1") in fig4 and ("ray-head", "ray-worker-1") not in fig4
    assert ("ray-head", "ray-worker-1") in fig1 and ("nginx-gateway", "ray-worker-1") not in fig1


def test_birch_detector_flags_a_step_not_noise() -> None:
    rng = np.random.default_rng(1)
    flat = pd.Series(1.0 + 0.02 * rng.standard_normal(72))
    step = flat.copy()
    step.iloc[57:] *= 3.0
    assert not reference.birch_anomalous(flat)
    assert reference.birch_anomalous(step)
    assert not reference.birch_anomalous(pd.Series(np.zeros(72)))  # an all-zero edge (no requests) is one cluster


@pytest.mark.parametrize("root", ["ray-worker-1", "ray-worker-3"])
def test_reference_microscope_returns_only_candidates(root: str) -> None:
    r = get_method("microscope", reference_mode="rcaeval").rank(_fig4_case(root).without_truth())
    assert r.explanation["anomalous_edges"] == [["nginx-gateway", root]]
    assert r.components == [root]  # the anomalous leaf is the one candidate; nothing else is ranked
    assert r.explanation["correlated_with"] == root  # scored against the last node the walk visited


def test_reference_microscope_without_anomaly_names_the_entry() -> None:
    case = _fig4_case(factor=1.0).without_truth()
    r = get_method("microscope", reference_mode="rcaeval").rank(case)
    assert r.explanation["anomalous_edges"] == []
    assert r.components == ["nginx-gateway"]


def test_reference_monitorrank_ranks_the_anomalous_subgraph() -> None:
    r = get_method("monitorrank", reference_mode="rcaeval").rank(_fig4_case("ray-worker-2").without_truth())
    assert set(r.components) == {"nginx-gateway", "ray-worker-2"}
    assert r.components[0] == "ray-worker-2"
    assert r.explanation["similarity"]["nginx-gateway"] == 0.0  # the entry's personalisation is zeroed
    assert 0.9 < r.explanation["similarity"]["ray-worker-2"] <= 1.0


def test_reference_microrca_uses_container_metrics() -> None:
    r = get_method("microrca", reference_mode="rcaeval").rank(_fig4_case("ray-worker-2").without_truth())
    assert r.components[0] == "ray-worker-2"
    assert set(r.components) == {"nginx-gateway", "ray-worker-2"}
    assert r.explanation["node_detail"]["ray-worker-2"]["resource_metric"] == "ray-worker-2_cpu"


@pytest.mark.parametrize("name", TOPOLOGY)
def test_reference_without_anomaly_ranks_nothing_or_the_entry(name: str) -> None:
    r = get_method(name, reference_mode="rcaeval").rank(_fig4_case(factor=1.0).without_truth())
    assert r.components in ([], ["nginx-gateway"])
    assert "ray-worker-2" not in r.components
    # an empty ranking is an abstention that says why (llmrca rank prints it)
    assert r.abstained == (r.components == []) == ("named_nothing_because" in r.explanation)


@pytest.mark.parametrize("name", TOPOLOGY)
def test_reference_mode_is_offered_and_checked(name: str) -> None:
    assert reference_modes([name]) == {name: "rcaeval"}
    with pytest.raises(ConfigError, match="reference_mode"):
        get_method(name, reference_mode="pyrca")


@pytest.mark.parametrize("name", TOPOLOGY)
def test_reference_is_deterministic(name: str) -> None:
    case = _fig4_case("ray-worker-3", seed=4).without_truth()
    m = get_method(name, reference_mode="rcaeval")
    assert m.rank(case).to_dict() == m.rank(case).to_dict()


def test_rank_cli_says_why_the_reference_named_nothing(tmp_path) -> None:
    """`llmrca rank` takes evaluate's METHOD.key=value form too, and says why an empty reference ranking abstains."""
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.dataset.io import write_case

    folder = write_case(_fig4_case(factor=1.0), tmp_path / "ray-worker-2_cpu" / "1")
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "monitorrank", "--set", "monitorrank.reference_mode=rcaeval"])
    assert r.exit_code == 0, r.output
    assert f"answer: no root cause (the method abstained: {reference.NAMED_NOTHING})" in " ".join(r.output.split())
    assert "scores as a miss" in r.output


def test_rank_cli_reports_a_method_failure_in_one_line(tmp_path) -> None:
    """A reference that fails as the paper's did (here MonitorRank's NaN similarity: with one proxy on the head the
    workers are on no mesh edge and have no latency) is an `error:` line with exit 1, not a traceback; another
    method's option is refused by name."""
    from typer.testing import CliRunner

    from llmrca.campaign import Timeline
    from llmrca.cli import app
    from llmrca.dataset.io import write_case
    from llmrca.model import FaultSpec
    from llmrca.testbed.sim.backend import SimBackend
    from llmrca.testbed.sim.config import SimConfig

    be = SimBackend(SimConfig(ingress="head", proxy_local_routing=False))
    short = Timeline(normal_s=60.0, fault_s=30.0, tail_s=10.0, warmup_s=10.0)
    case = be.run_case(FaultSpec("cpu", "ray-worker-1"), seed=1, protocol=short, start_time=1_767_225_600.0)
    folder = write_case(case, tmp_path / "ray-worker-1_cpu" / "1")
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "monitorrank", "--set", "reference_mode=rcaeval", "-q"])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "error: monitorrank failed on" in text and "FloatingPointError: monitorrank (reference): a similarity is NaN" in text
    assert "Traceback" not in r.output
    r = CliRunner().invoke(app, ["rank", str(folder), "--method", "monitorrank", "--set", "nsigma.abstain_below=3"])
    assert r.exit_code == 2 and "an option of nsigma; rank runs only --method monitorrank" in " ".join(r.output.split())
