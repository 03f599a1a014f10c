"""llm-rca reads a network delay from the mesh's mean latency when the histogram's buckets hide it.

The requests are binned into the real bucket layouts (the local testbed's sidecar uses Istio's default
``istio_request_duration_milliseconds`` buckets, its engine vLLM's request buckets) and the quantiles are
computed as Prometheus' ``histogram_quantile`` does over ``rate(..._bucket[8s])``: linear interpolation
inside the bucket that holds the rank.  Requests of ~2.9 s all fall in the 2.5 s .. 5 s bucket, with or
without a second of delay, so p50 and p90 stay put while the mean (``_sum`` / ``_count``) moves by the
second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrca.methods.llm import LlmRca
from llmrca.telemetry import GATEWAY, HEAD, OPERATOR, paper_topology
from llmrca.testbed.local.engine import REQ_BUCKETS
from llmrca.testbed.local.sidecar import ISTIO_BUCKETS_MS

STEP_S = 2.0
WINDOW_S = 8.0
N_NORMAL, N_FAULT = 150, 30  # 300 s normal, 60 s fault
WORKERS = ["ray-worker-1", "ray-worker-2", "ray-worker-3"]
DELAYED = "ray-worker-1"


def histogram_quantile(q: float, bounds: np.ndarray, counts: np.ndarray) -> float:
    """Prometheus' ``histogram_quantile`` over one window's per-bucket counts (``counts[-1]`` is +Inf)."""
    cum = np.cumsum(counts)
    total = cum[-1]
    if total <= 0:
        return float("nan")
    rank = q * total
    b = int(np.searchsorted(cum, rank, side="left"))
    if b >= len(bounds):
        return float(bounds[-1])
    lower = 0.0 if b == 0 else float(bounds[b - 1])
    below = 0.0 if b == 0 else float(cum[b - 1])
    return lower + (float(bounds[b]) - lower) * (rank - below) / float(counts[b])


def series(t_req: np.ndarray, dur_s: np.ndarray, grid: np.ndarray, bounds_s: tuple[float, ...]) -> dict[str, np.ndarray]:
    """p50, p90 (bucket-interpolated) and mean of the requests ending in each ``(t - 8 s, t]``."""
    bounds = np.asarray(bounds_s, dtype=float)
    out = {"p50": np.full(grid.size, np.nan), "p90": np.full(grid.size, np.nan), "mean": np.full(grid.size, np.nan)}
    for k, t in enumerate(grid):
        sel = (t_req > t - WINDOW_S) & (t_req <= t)
        if not sel.any():
            continue
        counts = np.bincount(np.searchsorted(bounds, dur_s[sel], side="left"), minlength=bounds.size + 1)
        out["p50"][k] = histogram_quantile(0.5, bounds, counts)
        out["p90"][k] = histogram_quantile(0.9, bounds, counts)
        out["mean"][k] = float(dur_s[sel].mean())
    return out


def frame(*, seed: int, mean: bool, engine_mean: bool, gaps_on: str | None = None) -> tuple[pd.DataFrame, float]:
    """A local-testbed-like frame: 1 QPS over three workers and the head, ~2.9 s requests, +1 s ± 0.1 s on ``DELAYED``."""
    rng = np.random.default_rng(seed)
    grid = 1_700_000_000.0 + STEP_S * np.arange(N_NORMAL + N_FAULT)
    onset = grid[N_NORMAL]
    span = (grid[0] - 30.0, grid[-1])
    cols: dict[str, np.ndarray] = {"time": grid}
    mesh_all: list[tuple[np.ndarray, np.ndarray]] = []
    istio_s = tuple(b / 1000.0 for b in ISTIO_BUCKETS_MS)
    for comp in [HEAD, *WORKERS]:
        n = rng.poisson(0.25 * (span[1] - span[0]))
        start = np.sort(rng.uniform(*span, n))
        engine = rng.normal(2.9, 0.12, n).clip(2.55, None)  # the engine's own time (s)
        net = 0.004 + np.where((comp == DELAYED) & (start >= onset), rng.normal(1.0, 0.1 / 3, n), 0.0)
        end = start + engine + net
        m = series(end, engine + net, grid, istio_s)
        e = series(end, engine, grid, REQ_BUCKETS)
        cols[f"{comp}_latency-50"], cols[f"{comp}_latency-90"] = m["p50"], m["p90"]
        cols[f"{comp}_vllm:e2e_request_latency_seconds:p90"] = e["p90"]
        if mean:
            cols[f"{comp}_latency"] = m["mean"]
        if engine_mean:
            cols[f"{comp}_vllm:e2e_request_latency_seconds:mean"] = e["mean"]
        cols[f"{comp}_gpu"] = rng.normal(60.0, 8.0, grid.size)
        cols[f"{comp}_vllm:num_requests_running"] = rng.poisson(0.8, grid.size).astype(float)
        mesh_all.append((end, engine + net))
    # the head calls the workers: its mesh latency is theirs plus its own hop; the gateway's likewise
    t_all = np.concatenate([a for a, _ in mesh_all])
    d_all = np.concatenate([b for _, b in mesh_all])
    for comp, hop in ((GATEWAY, 0.012), (HEAD, 0.006)):
        m = series(t_all + hop, d_all + hop, grid, istio_s)
        cols[f"{comp}_latency-50"], cols[f"{comp}_latency-90"] = m["p50"], m["p90"]
        if mean:
            cols[f"{comp}_latency"] = m["mean"]
    for comp in [GATEWAY, HEAD, *WORKERS, OPERATOR]:
        cols[f"{comp}_cpu"] = rng.normal(0.2, 0.01, grid.size)
        cols[f"{comp}_mem"] = rng.normal(180e6, 1e6, grid.size)
    if gaps_on is not None:  # a healthy peer misses a third of its scrapes in the fault window
        for name in [c for c in cols if c.startswith(f"{gaps_on}_")]:
            v = cols[name].copy()
            v[N_NORMAL::3] = np.nan
            cols[name] = v
    return pd.DataFrame(cols), float(onset)


def decide(df: pd.DataFrame, onset: float):
    t = df["time"].to_numpy()
    m = LlmRca().fit_normal(df[t < onset], topology=paper_topology(3))
    return m.decide(df[t >= onset])


def test_the_buckets_hide_the_delay_from_the_quantiles_and_not_from_the_mean() -> None:
    df, onset = frame(seed=1, mean=True, engine_mean=True)
    before, during = df[df["time"] < onset], df[df["time"] >= onset]
    p90 = during[f"{DELAYED}_latency-90"].median() - before[f"{DELAYED}_latency-90"].median()
    p50 = during[f"{DELAYED}_latency-50"].median() - before[f"{DELAYED}_latency-50"].median()
    mean = during[f"{DELAYED}_latency"].median() - before[f"{DELAYED}_latency"].median()
    assert abs(p90) < 0.1 and abs(p50) < 0.1, (p50, p90)  # a second of delay, < 0.1 s in the quantiles
    assert 0.85 < mean < 1.15, mean


@pytest.mark.parametrize("engine_mean", [True, False], ids=["engine-mean", "mesh-mean-only"])
def test_the_mean_names_the_delayed_replica_and_the_network(engine_mean: bool) -> None:
    df, onset = frame(seed=2, mean=True, engine_mean=engine_mean)
    r = decide(df, onset)
    assert r.components[0] == DELAYED, r.explanation["summary"]
    assert r.fault_type == "network", r.explanation["summary"]
    top = r.explanation["signals"][0]
    assert top["signal"] in ("latency", "net-share:mean") and top["hypothesis"] == "network"
    assert top["window"] - top["normal"] > 0.8  # seconds: the delay itself


def test_with_quantiles_only_the_delay_is_below_threshold() -> None:
    df, onset = frame(seed=2, mean=False, engine_mean=False)
    r = decide(df, onset)
    assert r.explanation["hypotheses"].get(DELAYED, {}).get("network", 0.0) < 1.0


def test_scrape_gaps_on_a_healthy_peer_do_not_outvote_the_latency_rise() -> None:
    df, onset = frame(seed=3, mean=True, engine_mean=True, gaps_on="ray-worker-2")
    r = decide(df, onset)
    assert r.components[0] == DELAYED, r.explanation["summary"]
    assert r.fault_type == "network"
    gaps = r.explanation["hypotheses"].get("ray-worker-2", {}).get("network", 0.0)
    assert 0.0 < gaps <= 1.0  # the peer's missing scrapes count, as a weak cue


def test_the_means_are_read_by_their_meaning_and_collected_from_a_real_prometheus() -> None:
    from llmrca.collect.metrics import metric_defs
    from llmrca.telemetry.vocabulary import meaning

    assert meaning("vllm:e2e_request_latency_seconds:mean").kind == "e2e_mean"
    assert meaning("ray_vllm:e2e_request_latency_seconds:avg").kind == "e2e_mean"
    assert meaning("vllm:e2e_request_latency_seconds:p90").kind == "e2e_p90"
    assert (meaning("latency").kind, meaning("istio_request_duration_milliseconds:mean").factor) == ("latency_mean", 0.001)
    extended = {m.name: m for m in metric_defs("extended")}
    assert "_sum{" in extended["latency"].promql and "_count{" in extended["latency"].promql
    assert "vllm:e2e_request_latency_seconds_sum" in extended["vllm:e2e_request_latency_seconds:mean"].promql
    assert "latency" not in {m.name for m in metric_defs("basic")}
