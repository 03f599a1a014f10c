"""Where requests enter Ray Serve, and what the paper's exporter made of the mesh and the network counters.

``SimConfig.ingress = "every-pod"`` models the artifact's deployment (the gateway proxies to KubeRay's
serve service: any pod whose Serve proxy is up, a new connection per request); the default ``"head"``
relays every request through the head's proxy.  Each check compares runs of the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmrca.model import FaultSpec
from llmrca.testbed.base import Timeline
from llmrca.testbed.sim.backend import SimBackend
from llmrca.testbed.sim.config import SimConfig
from llmrca.testbed.sim.engine import DONE
from llmrca.testbed.sim.observe import build_frames

SEED = 23
START = 1_767_225_600.0
PROTO = Timeline()
INJECT = START + PROTO.normal_s
END = INJECT + PROTO.fault_s
TARGET = "ray-worker-1"


def _run(fault: str | None, **cfg):
    be = SimBackend(SimConfig(**cfg))
    res = be.simulate(FaultSpec(fault, TARGET) if fault else None, seed=SEED, protocol=PROTO, start_time=START)
    return res, build_frames(res, np.random.default_rng(0))


@pytest.fixture(scope="module")
def runs():
    return {
        # each run names its topology (the defaults are every-pod without local routing, artifact latency on)
        "head": _run(None, ingress="head", artifact_latency=False),
        "every": _run(None, ingress="every-pod", proxy_local_routing=True, artifact_latency=True),
        "every-net": _run("network", ingress="every-pod", proxy_local_routing=True),
        "every-net-keepalive": _run("network", ingress="every-pod", proxy_local_routing=True, upstream_keepalive=True),
    }


def _rate(res, key: str, pod: int, lo: float, hi: float) -> float:
    t = res.scrape_t
    i, j = np.searchsorted(t, lo), np.searchsorted(t, hi) - 1
    return float((res.pod[key][j, pod] - res.pod[key][i, pod]) / (t[j] - t[i]))


def test_every_pod_spreads_requests_over_the_serve_proxies_and_serves_them_locally(runs):
    res, _ = runs["every"]
    rq = res.requests
    done = rq["status"] == DONE
    share = np.bincount(rq["ingress"][done], minlength=res.n_replicas) / done.sum()
    assert np.all(np.abs(share - 0.25) < 0.05), share
    # locality: a proxy hands the request to the replica on its own pod
    assert np.mean(rq["ingress"][done] == rq["replica"][done]) > 0.99
    head_res, _ = runs["head"]
    assert np.all(head_res.requests["ingress"][head_res.requests["ingress"] >= 0] == 0)


def test_every_pod_moves_the_relaying_off_the_head(runs):
    head, _ = runs["head"]
    every, _ = runs["every"]
    lo, hi = START + 60, INJECT
    # the head relays every worker's stream in the default layout, only its own requests otherwise
    assert _rate(head, "rx_bytes", 0, lo, hi) > 5 * _rate(every, "rx_bytes", 0, lo, hi)
    assert _rate(head, "cpu_s", 0, lo, hi) > _rate(every, "cpu_s", 0, lo, hi)
    # a worker's proxy now sends its streams to the gateway itself
    assert _rate(every, "tx_bytes", 1, lo, hi) == pytest.approx(_rate(head, "tx_bytes", 1, lo, hi), rel=0.25)


def test_a_delayed_pod_that_accepts_new_connections_delays_the_handshake_too(runs):
    net, _ = runs["every-net"]
    kept, _ = runs["every-net-keepalive"]
    # netem delays the SYN-ACK of every new connection and the response stream: two delays of ~1 s
    assert 1800 < net.achieved["mean_added_latency_ms"] < 2200, net.achieved
    assert 900 < kept.achieved["mean_added_latency_ms"] < 1100, kept.achieved


def test_slow_start_on_a_delayed_pod_coalesces_chunks_into_fewer_packets(runs):
    base, _ = runs["every"]
    net, _ = runs["every-net"]
    lo, hi = INJECT + 10, END
    pk_base, pk_net = _rate(base, "tx_packets", 1, lo, hi), _rate(net, "tx_packets", 1, lo, hi)
    by_base, by_net = _rate(base, "tx_bytes", 1, lo, hi), _rate(net, "tx_bytes", 1, lo, hi)
    assert pk_net < 0.8 * pk_base, (pk_net, pk_base)
    assert by_net > 0.8 * by_base, (by_net, by_base)  # the bytes still go out
    # another worker is untouched (its proxy serves its own requests)
    assert _rate(net, "tx_packets", 2, lo, hi) == pytest.approx(_rate(base, "tx_packets", 2, lo, hi), rel=0.1)


def test_artifact_network_column_is_transmitted_packets_squared(runs):
    res, frames = runs["head"]
    basic = frames["basic"]
    t = res.scrape_t
    for pod, comp in ((0, "ray-head"), (1, "ray-worker-1"), (res.n_replicas, "nginx-gateway")):
        rate = np.diff(res.pod["tx_packets"][:, pod]) / np.diff(t)
        expect = (np.mean(rate[12:]) / 1000.0) ** 2
        got = float(np.nanmean(basic[f"{comp}_net-tx"].to_numpy()[12:]))
        assert got == pytest.approx(expect, rel=0.1), comp
    # the exporter has no received-bytes column; the extended set keeps the byte rate
    assert not any(c.endswith("_net-rx") for c in basic.columns)
    assert float(np.nanmean(frames["extended"]["ray-head_net-rx"])) > 1000.0


def test_artifact_latency_of_the_gateway_is_the_sum_of_its_edges(runs):
    _, frames = runs["every"]  # artifact_latency=True
    b = frames["basic"]
    pods = sum(b[f"{c}_latency-90"] for c in ("ray-head", "ray-worker-1", "ray-worker-2", "ray-worker-3"))
    # the head's latency also holds the operator's edge (its calls to the head's dashboard)
    expect = pods - b["kuberay-operator_latency-90"]
    np.testing.assert_allclose(b["nginx-gateway_latency-90"], expect, rtol=1e-9, atol=1e-9)
    # p90 of ~4-s requests, doubled (the exporter adds the same query as source and as destination)
    assert 8.0 < float(np.nanmedian(b["ray-worker-2_latency-90"])) < 25.0
    # the paper's methods got p90 only: the preparation merged latency_aggregated_90, the harness drops p50
    assert not any(c.endswith("_latency-50") for c in b.columns)


def test_artifact_latency_leaves_pods_on_no_mesh_edge_without_latency():
    _, frames = _run(None, ingress="head", artifact_latency=True)  # one proxy on the head: the workers are on no mesh edge
    cols = frames["basic"].columns
    assert "nginx-gateway_latency-90" in cols and "ray-head_latency-90" in cols
    assert not any(c.startswith("ray-worker-") and "_latency-" in c for c in cols)
    # the extended set keeps what the collector reads directly
    assert "ray-worker-1_latency-50" in frames["extended"].columns


def test_a_replica_whose_probe_answers_are_late_stops_getting_requests(runs):
    base, _ = _run(None)
    net, _ = _run("network")
    tgt = 1  # ray-worker-1
    def routed(res, lo, hi):
        rq = res.requests
        m = (rq["arrival"] >= lo) & (rq["arrival"] < hi) & (rq["replica"] >= 0)
        return np.bincount(rq["replica"][m], minlength=res.n_replicas)
    # while the router's cached answer is fresh (10 s) the target still gets its share, then almost nothing
    late_b, late_n = routed(base, INJECT + 15, END), routed(net, INJECT + 15, END)
    assert late_n[tgt] < 0.1 * late_b[tgt], (late_n, late_b)
    assert late_n.sum() == late_b.sum()  # the others take its load
    early_n = routed(net, INJECT, INJECT + 8)
    assert early_n[tgt] > 0
