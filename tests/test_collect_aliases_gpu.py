"""Other exporters' names and unlabelled GPU series, collected from a real Prometheus.

The series are written as OpenMetrics text, backfilled with ``promtool tsdb
create-blocks-from openmetrics`` and served by a real Prometheus on 127.0.0.1:
vLLM <= 0.10 (v0) names under Ray Serve next to v1 names, DCGM series with no
pod label (dcgm-exporter without Kubernetes pod mapping, NVIDIA/dcgm-exporter
#342, #490), DCGM's renamed clock-event field, and ``kube_pod_info`` for the join.
Expected values are computed from what is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pytest

from _promhelpers import Backfilled, backfilled_prometheus, histogram_quantile_ref
from llmrca.collect import GpuJoin, PromClient, collect_metrics, default_aliases
from llmrca.collect.metrics import candidates, metric_defs
from llmrca.telemetry.aliases import RENAMES, VLLM_V0_ONLY, canonical, same_signal

STEP = 5  # s between written samples
N = 144  # samples per series: 12 minutes
BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1)
# observations per written sample, as {upper bound of the bucket they fall in: count}
ITL_V0 = {0.025: 2, 0.05: 8}  # 2 x 0.02 s + 8 x 0.04 s
ITL_V1 = {0.075: 10}  # 10 x 0.06 s
ITL_V0_SUM = 2 * 0.02 + 8 * 0.04
ITL_V1_SUM = 10 * 0.06
PROMPT_TOKENS_PER_SAMPLE = 50  # -> 10 tokens/s
ERRORS_PER_SAMPLE = 2  # -> 0.4 errors/s
W1 = 'Hostname="gpu-node-1",UUID="GPU-1a",gpu="0",pci_bus_id="00000000:8D:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3"'
W1B = 'Hostname="gpu-node-1",UUID="GPU-1b",gpu="1",pci_bus_id="00000000:8E:00.0",device="nvidia1",modelName="NVIDIA H100 80GB HBM3"'
W2 = 'Hostname="gpu-node-2",UUID="GPU-2a",gpu="0",pci_bus_id="00000000:8D:00.0",device="nvidia0",modelName="NVIDIA H100 80GB HBM3"'
W4A = 'Hostname="gpu-node-4",UUID="GPU-4a",gpu="0",pci_bus_id="00000000:8D:00.0",device="nvidia0",modelName="NVIDIA L4"'
W4B = 'Hostname="gpu-node-4",UUID="GPU-4b",gpu="1",pci_bus_id="00000000:8E:00.0",device="nvidia1",modelName="NVIDIA L4"'
GPU_UTIL = {W1: 80.0, W1B: 40.0, W2: 25.0, W4A: 10.0, W4B: 90.0}
POWER = {W1: 300.0, W1B: 200.0, W2: 150.0, W4A: 30.0, W4B: 60.0}
NODES = {"ray-worker-1": "gpu-node-1", "ray-worker-2": "gpu-node-2", "ray-worker-3": "gpu-node-3"}
NODES |= {"ray-worker-5": "gpu-node-4", "ray-worker-6": "gpu-node-4"}  # ray-worker-4 has no kube_pod_info
WORKERS = [f"ray-worker-{i}" for i in range(1, 7)]


def _histogram(name: str, labels: str, per_sample: dict[float, int], per_sample_sum: float, t0: int) -> list[str]:
    """Cumulative ``_bucket``/``_sum``/``_count`` lines of one histogram series (OpenMetrics, timestamps in s)."""
    lines = []
    for le in (*BUCKETS, float("inf")):
        inc = sum(c for ub, c in per_sample.items() if ub <= le)
        le_s = "+Inf" if le == float("inf") else repr(le)
        lines += [f'{name}_bucket{{{labels},le="{le_s}"}} {k * inc} {t0 + STEP * k}' for k in range(N)]
    total = sum(per_sample.values())
    lines += [f"{name}_sum{{{labels}}} {k * per_sample_sum:.6f} {t0 + STEP * k}" for k in range(N)]
    lines += [f"{name}_count{{{labels}}} {k * total} {t0 + STEP * k}" for k in range(N)]
    return lines


def _gauge(name: str, labels: str, value, t0: int) -> list[str]:
    return [f"{name}{{{labels}}} {value(k) if callable(value) else value} {t0 + STEP * k}" for k in range(N)]


def openmetrics(t0: int) -> str:
    w1 = 'pod="ray-worker-1",model_name="m",ReplicaId="r1"'
    w2 = 'pod="ray-worker-2",model_name="m"'
    lines: list[str] = []
    # ray-worker-1: vLLM 0.8.5 (v0 engine) under Ray Serve
    lines += _gauge("ray_vllm:gpu_cache_usage_perc", w1, lambda k: 0.1 + k / 1000, t0)
    lines += _gauge("ray_vllm:num_requests_running", w1, 4, t0)
    lines += _histogram("ray_vllm:time_per_output_token_seconds", w1, ITL_V0, ITL_V0_SUM, t0)
    lines += _gauge("ray_vllm:prompt_tokens_total", w1, lambda k: 1000 + PROMPT_TOKENS_PER_SAMPLE * k, t0)
    # Ray < 2.10: a counter exported as a gauge without _total (cumulative all the same)
    lines += _gauge("ray_serve_deployment_error_counter", w1, lambda k: 7 + ERRORS_PER_SAMPLE * k, t0)
    # ray-worker-2: v1 names
    lines += _gauge("vllm:kv_cache_usage_perc", w2, 0.5, t0)
    lines += _histogram("vllm:inter_token_latency_seconds", w2, ITL_V1, ITL_V1_SUM, t0)
    # DCGM without pod labels; the clock-event field under its DCGM >= 3.3 name
    for name, values in (("DCGM_FI_DEV_GPU_UTIL", GPU_UTIL), ("DCGM_FI_DEV_POWER_USAGE", POWER)):
        for labels, v in values.items():
            lines += _gauge(name, labels, v, t0)
    lines += _gauge("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", W1, 4, t0)
    for pod, node in NODES.items():
        lines += _gauge("kube_pod_info", f'namespace="llm",pod="{pod}",node="{node}"', 1, t0)
    for pod in WORKERS:
        lines += _gauge("container_memory_working_set_bytes", f'pod="{pod}"', 1e9, t0)
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from backfilled_prometheus(tmp_path_factory, openmetrics)


def _collect(b: Backfilled, components: dict[str, str], **kw):
    return collect_metrics(b.url, components, b.start, b.end, step_s=15, metric_set="extended", rate_window_s=60, **kw)


def _grid_index(b: Backfilled) -> np.ndarray:
    """Index k of the written sample at each query instant."""
    return (np.arange(b.start, b.end + 1, 15) - (b.start - 300)) / STEP


def _quantile(q: float, per_sample: dict[float, int]) -> float:
    return histogram_quantile_ref(q, per_sample, BUCKETS)


@pytest.mark.system
def test_v0_names_are_collected_as_v1_columns(backfilled: Backfilled) -> None:
    gpu = {"ray-worker-1": 'Hostname="gpu-node-1",gpu="0"', "ray-worker-2": 'UUID="GPU-2a"'}
    res = _collect(backfilled, {"ray-worker-1": 'pod="ray-worker-1"', "ray-worker-2": 'pod="ray-worker-2"'}, gpu_selectors=gpu)
    df = res.frame
    k = _grid_index(backfilled)
    assert len(df) == 5
    np.testing.assert_allclose(df["ray-worker-1_vllm:kv_cache_usage_perc"], 0.1 + k / 1000)
    assert _quantile(0.9, ITL_V0) == pytest.approx(0.046875) and _quantile(0.5, ITL_V0) == pytest.approx(0.034375)
    np.testing.assert_allclose(df["ray-worker-1_vllm:inter_token_latency_seconds:p90"], _quantile(0.9, ITL_V0))
    np.testing.assert_allclose(df["ray-worker-1_vllm:inter_token_latency_seconds:p50"], _quantile(0.5, ITL_V0))
    np.testing.assert_allclose(df["ray-worker-1_vllm:inter_token_latency_seconds:mean"], ITL_V0_SUM / 10)
    np.testing.assert_allclose(df["ray-worker-1_vllm:prompt_tokens_total:rate"], PROMPT_TOKENS_PER_SAMPLE / STEP)
    np.testing.assert_allclose(df["ray-worker-1_vllm:num_requests_running"], 4)
    np.testing.assert_allclose(df["ray-worker-1_ray_serve_deployment_error_counter_total:rate"], ERRORS_PER_SAMPLE / STEP)
    assert "ray_serve_deployment_error_counter{" in res.queries["ray-worker-1_ray_serve_deployment_error_counter_total:rate"]
    # which series answered is recorded per column
    assert "ray_vllm:gpu_cache_usage_perc{" in res.queries["ray-worker-1_vllm:kv_cache_usage_perc"]
    assert "ray_vllm:time_per_output_token_seconds_bucket{" in res.queries["ray-worker-1_vllm:inter_token_latency_seconds:p90"]
    # the v1 names of worker 2 in the same pass, same columns
    np.testing.assert_allclose(df["ray-worker-2_vllm:kv_cache_usage_perc"], 0.5)
    np.testing.assert_allclose(df["ray-worker-2_vllm:inter_token_latency_seconds:p90"], _quantile(0.9, ITL_V1))
    assert "vllm:inter_token_latency_seconds_bucket{" in res.queries["ray-worker-2_vllm:inter_token_latency_seconds:p90"]
    assert not any("gpu_cache_usage" in c or "time_per_output" in c for c in df.columns)
    # DCGM without pod labels, by GPU selector; the renamed clock-event field lands in the catalogue's column
    np.testing.assert_allclose(df["ray-worker-1_gpu"], 80.0)
    np.testing.assert_allclose(df["ray-worker-1_DCGM_FI_DEV_POWER_USAGE"], 300.0)
    np.testing.assert_allclose(df["ray-worker-1_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"], 4)
    assert "DCGM_FI_DEV_CLOCKS_EVENT_REASONS{" in res.queries["ray-worker-1_DCGM_FI_DEV_CLOCK_THROTTLE_REASONS"]
    np.testing.assert_allclose(df["ray-worker-2_gpu"], 25.0)
    assert res.queries["ray-worker-2_gpu"] == 'avg(DCGM_FI_DEV_GPU_UTIL{UUID="GPU-2a"})'
    assert res.gpu_selectors["ray-worker-1"] == {"selector": gpu["ray-worker-1"], "via": "gpu_selectors"}
    assert res.gpu_unmapped == {}
    json.dumps(res.report())


@pytest.mark.system
def test_gpu_join_through_kube_pod_info(backfilled: Backfilled) -> None:
    comps = {w: f'pod="{w}"' for w in WORKERS}
    res = _collect(backfilled, comps, gpu_join="kube_pod_info:node=Hostname", gpu_selectors={"ray-worker-5": 'UUID="GPU-4b"'})
    df = res.frame
    # worker 1 is alone on gpu-node-1 with two GPUs: the GPU columns average them
    assert res.gpu_selectors["ray-worker-1"] == {
        "selector": 'Hostname="gpu-node-1"', "via": GpuJoin().via, "join_label": "Hostname", "join_value": "gpu-node-1"
    }
    np.testing.assert_allclose(df["ray-worker-1_gpu"], (80.0 + 40.0) / 2)
    np.testing.assert_allclose(df["ray-worker-1_DCGM_FI_DEV_POWER_USAGE"], (300.0 + 200.0) / 2)
    np.testing.assert_allclose(df["ray-worker-2_gpu"], 25.0)
    # a given selector wins over the join
    np.testing.assert_allclose(df["ray-worker-5_gpu"], 90.0)
    # worker 6 shares gpu-node-4 with worker 5: the join cannot tell their GPUs apart, so no guess
    assert "ray-worker-6_gpu" not in df
    assert "cannot tell" in res.gpu_unmapped["ray-worker-6"] and "ray-worker-5" in res.gpu_unmapped["ray-worker-6"]
    # worker 3's node has no DCGM series; worker 4 has no kube_pod_info
    assert "ray-worker-3_gpu" not in df and "ray-worker-4_gpu" not in df
    assert "no kube_pod_info" in res.gpu_unmapped["ray-worker-4"]
    # the join found worker 3's node, but DCGM names no such Hostname: said with the Hostnames it does hold, and
    # not with the advice to use the join that was used
    msg3 = res.gpu_unmapped["ray-worker-3"]
    assert "the join found its pod on 'gpu-node-3', but no DCGM series has Hostname=\"gpu-node-3\"" in msg3, msg3
    assert "(their Hostname values: gpu-node-1, gpu-node-2, gpu-node-4)" in msg3 and "--gpu-join" not in msg3
    assert set(res.gpu_unmapped) == {"ray-worker-3", "ray-worker-4", "ray-worker-6"}
    # the non-GPU columns of unmapped workers are kept: they are not missing components
    assert res.missing_components == [] and "ray-worker-3_mem" in df


@pytest.mark.system
def test_unmapped_gpu_is_reported_with_the_series_and_labels(backfilled: Backfilled) -> None:
    res = _collect(backfilled, {"ray-worker-1": 'pod="ray-worker-1"'})
    assert not any(c.endswith(("_gpu", "DCGM_FI_DEV_POWER_USAGE")) for c in res.frame.columns)
    msg = res.gpu_unmapped["ray-worker-1"]
    assert 'pod="ray-worker-1"' in msg and "component selector" in msg
    assert "DCGM_FI_DEV_GPU_UTIL" in msg and "DCGM_FI_DEV_CLOCKS_EVENT_REASONS" in msg
    assert "no pod label" in msg and "--gpu ray-worker-1=" in msg and "--gpu-join kube_pod_info:node=Hostname" in msg
    info = res.dcgm_series
    assert {"Hostname", "UUID", "gpu", "pci_bus_id", "device", "modelName"} <= set(info["labels"])
    assert info["pod_labels"] == [] and info["devices"] == 5
    assert msg in res.dropped["ray-worker-1_gpu"]  # the dropped column says why too
    assert res.missing_components == []  # memory was collected


@pytest.mark.system
def test_collect_cli_gpu_options(backfilled: Backfilled, tmp_path) -> None:
    from typer.testing import CliRunner

    from llmrca.cli import app
    from llmrca.dataset.io import read_case

    comps = tmp_path / "components.yaml"
    comps.write_text("".join(f"{w}: 'pod=\"{w}\"'\n" for w in ("ray-worker-1", "ray-worker-2", "ray-worker-3")))
    base = ["collect", backfilled.url, "--components", str(comps), "--start", str(backfilled.start), "--end", str(backfilled.end)]
    base += ["--inject", str(backfilled.start + 30), "--step", "15", "--scrape-interval", "15"]
    args = [*base, "--gpu", 'ray-worker-2=UUID="GPU-2a"', "--gpu-join", "kube_pod_info:node=Hostname", "--out", str(tmp_path / "c")]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "no GPU columns: ray-worker-3" in res.output
    case = read_case(tmp_path / "c")
    assert np.allclose(case.metrics["ray-worker-1_gpu"], 60.0) and np.allclose(case.metrics["ray-worker-2_gpu"], 25.0)
    gpu = case.meta["collection"]["gpu"]
    assert gpu["selectors"]["ray-worker-2"]["via"] == "gpu_selectors" and set(gpu["unmapped"]) == {"ray-worker-3"}
    bad = CliRunner().invoke(app, [*base, "--gpu-join", "kube_pod_info", "--out", str(tmp_path / "d")])
    assert bad.exit_code == 2 and "SERIES:LABEL=DCGM_LABEL" in bad.output and "Traceback" not in bad.output
    bad = CliRunner().invoke(app, [*base, "--gpu", "ray-worker-1", "--out", str(tmp_path / "e")])
    assert bad.exit_code == 2 and "component=selector" in bad.output
    # a target that is no component was refused only after Prometheus had been asked (exit 1, "invalid case case")
    bad = CliRunner().invoke(app, [*base, "--fault-type", "cpu", "--target", "nobody", "--out", str(tmp_path / "f")], terminal_width=300)
    assert bad.exit_code == 2 and "--target nobody: not one of the components" in bad.output, bad.output
    import time

    late = [*base[:7], str(time.time() + 600), *base[8:], "--out", str(tmp_path / "g")]  # --end in the future: empty rows
    bad = CliRunner().invoke(app, late, terminal_width=300)
    assert bad.exit_code == 2 and "is in the future" in bad.output, bad.output


def test_alias_tables() -> None:
    assert canonical("ray_vllm:gpu_cache_usage_perc") == "vllm:kv_cache_usage_perc"
    assert canonical("vllm_time_per_output_token_seconds") == "vllm:inter_token_latency_seconds"
    assert canonical("dcgm_gpu_utilization") == "DCGM_FI_DEV_GPU_UTIL"
    assert canonical("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS") == "DCGM_FI_DEV_CLOCKS_EVENT_REASONS"
    # current names before old ones; every Ray/escaped prefix of each
    sig = same_signal("vllm:kv_cache_usage_perc")
    assert sig[:4] == ("vllm:kv_cache_usage_perc", "vllm_kv_cache_usage_perc", "ray_vllm:kv_cache_usage_perc", "ray_vllm_kv_cache_usage_perc")
    assert set(sig[4:]) == {"vllm:gpu_cache_usage_perc", "vllm_gpu_cache_usage_perc", "ray_vllm:gpu_cache_usage_perc", "ray_vllm_gpu_cache_usage_perc"}
    # the catalogue names the clock-event field by its old name: the new one is its alias
    assert same_signal("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS") == ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "DCGM_FI_DEV_CLOCKS_EVENT_REASONS")
    assert same_signal("vllm:prefix_cache_hits")[-1] == "ray_vllm_gpu_prefix_cache_hits"
    # v0-only signals are never mapped onto a v1 one; tables are plain str -> str
    assert not set(VLLM_V0_ONLY) & set(RENAMES)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in RENAMES.items())
    assert default_aliases()["vllm:inter_token_latency_seconds"][3] == "vllm:time_per_output_token_seconds"


def test_candidates_swap_every_occurrence_of_a_name() -> None:
    mean = next(m for m in metric_defs("extended") if m.name == "vllm:inter_token_latency_seconds:mean")
    cands = candidates(mean, default_aliases())
    assert cands[0] == mean.promql and len(cands) == 9  # 4 prefixes x 2 vLLM names, and SGLang's series
    assert sum("sglang:inter_token_latency_seconds_sum{" in c for c in cands) == 1
    v0 = [c for c in cands if "ray_vllm:time_per_output_token_seconds" in c]
    assert len(v0) == 1 and "_sum{" in v0[0] and "_count{" in v0[0] and "inter_token" not in v0[0]
    # a name that is only a prefix of another series name is not touched
    from llmrca.telemetry import MetricDef

    m = MetricDef("x", "sum(vllm:num_requests_running_extra{{{sel}}})", "", "all", "")
    assert candidates(m, {"vllm:num_requests_running": ("ray_vllm:num_requests_running",)}) == [m.promql]


def test_gpu_join_parse() -> None:
    assert GpuJoin.parse("kube_pod_info:node=Hostname") == GpuJoin()
    assert GpuJoin.parse("my_map:exported_pod=UUID") == GpuJoin("my_map", "exported_pod", "UUID")
    for bad in ("kube_pod_info", "kube_pod_info:node", ":node=Hostname", "a:b=c=d"):
        with pytest.raises(ValueError, match="SERIES:LABEL=DCGM_LABEL"):
            GpuJoin.parse(bad)


def test_gpu_selectors_for_unknown_components_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown components"):
        collect_metrics(PromClient("http://127.0.0.1:1"), {"ray-worker-1": 'pod="a"'}, 0, 10, gpu_selectors={"ray-worker-9": 'gpu="0"'})
