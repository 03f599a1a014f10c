"""The metric vocabulary: other tools' names read by their meaning, in canonical units."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from llmrca.cli import app
from llmrca.methods.common.sli import SliError, entry_component, sli_column
from llmrca.methods.llm import LlmRca
from llmrca.model import Case, Topology
from llmrca.telemetry import BASIC, EXTENDED
from llmrca.telemetry.vocabulary import KINDS, canonical_frame, describe, find_column, meaning

REALWORLD = Path(__file__).resolve().parents[2].parent / "shared" / "cases" / "realworld"


@pytest.mark.parametrize(
    ("name", "kind", "factor"),
    [
        # cAdvisor / RCAEval / the paper's artifact
        ("container_cpu_usage_seconds_total:rate", "cpu", 1.0),
        ("ctn_cpu", "cpu", 1.0),
        ("ctn_memory", "memory", 1.0),
        ("container_memory_working_set_mb", "memory", 1e6),
        ("ctn_network", "net", 1.0),
        ("container_network_receive_bytes_total:rate", "net_rx", 1.0),
        ("node_cpu", "node_cpu", 1.0),
        ("lat_90", "latency_p90", 1.0),
        ("latency_ms_p99", "latency_p99", 1e-3),
        ("istio_request_duration_milliseconds:p90", "latency_p90", 1e-3),
        ("nginx_ingress_controller_request_duration_seconds:p90", "gateway_latency_p90", 1.0),
        ("ray_serve_deployment_processing_latency_ms:p90", "latency_p90", 1e-3),
        # vLLM v1, v0 and Ray Serve's prefixes
        ("vllm:kv_cache_usage_perc", "kv_cache", 1.0),
        ("ray_vllm:gpu_cache_usage_perc", "kv_cache", 1.0),
        ("vllm_gpu_cache_usage_perc", "kv_cache", 1.0),
        ("ray_vllm:time_per_output_token_seconds:p90", "itl_p90", 1.0),
        ("ray_vllm_inter_token_latency_seconds:p50", "itl_p50", 1.0),
        ("vllm:time_to_first_token_seconds:p90", "ttft_p90", 1.0),
        ("ray_serve_deployment_queued_queries", "router_queue", 1.0),
        ("kube_pod_container_status_restarts_total", "restarts", 1.0),
        # DCGM, old and new field names; nvidia-smi
        ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "clock_events", 1.0),
        ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "clock_events", 1.0),
        ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "power_limit", 1.0),
        ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", "power_limit", 1.0),
        ("DCGM_FI_DEV_POWER_VIOLATION", "power_violation", 1.0),
        ("DCGM_FI_DEV_POWER_USAGE", "power", 1.0),
        ("nvidia_smi_power_draw_watts", "power", 1.0),
        ("nvidia_smi_clocks_current_sm_clock_hz", "sm_clock", 1e-6),
        ("DCGM_FI_DEV_GPU_UTIL", "gpu_util", 1.0),
        ("ctn_gpu", "gpu_util", 1.0),
        ("nvidia_smi_utilization_gpu_ratio", "gpu_util", 100.0),
        # docker stats / psutil CPU in percent of a core (was read as cores: 20 % as 20 cores)
        ("cpu_percent", "cpu", 0.01),
        ("container_cpu_usage_percent", "cpu", 0.01),
        # a share of failed requests is no per-second rate
        ("error_ratio", "error_rate", 1.0),
        ("http_errors_percent", "error_rate", 0.01),
        # the GPU memory's temperature is a GPU temperature (was memory in bytes); nvidia_gpu_exporter's GPU memory
        # in bytes is GPU memory in MiB (was the host working set); vLLM v0's throughput gauges are tokens/s
        ("DCGM_FI_DEV_MEMORY_TEMP", "gpu_temperature", 1.0),
        ("nvidia_smi_memory_used_bytes", "gpu_memory", 2.0**-20),
        ("vllm:avg_prompt_throughput_toks_per_s", "prompt_tokens", 1.0),
        ("vllm:avg_generation_throughput_toks_per_s", "generation_tokens", 1.0),
        ("ray_node_mem_used", "node_memory", 1.0),
        ("http_server_requests_seconds:p90", "latency_p90", 1.0),  # Micrometer's request durations (were request rates)
        ("nvidia_smi_utilization_memory_ratio", "gpu_mem_copy_util", 100.0),  # was memory in bytes
        ("container_accelerator_memory_used_bytes", "gpu_memory", 2.0**-20),  # cAdvisor's accelerator memory
    ],
)
def test_names_of_other_exporters_have_their_meaning(name: str, kind: str, factor: float) -> None:
    m = meaning(name)
    assert m is not None, name
    assert (m.kind, m.factor) == (kind, pytest.approx(factor))


@pytest.mark.parametrize(
    "name",
    [
        "vllm:cpu_cache_usage_perc",  # v0's CPU swap space, was CPU cores (a KV-cache swap diagnosed as a CPU fault)
        "DCGM_FI_DEV_MEM_CLOCK",  # MHz, was memory bytes
        "ray_node_cpu_utilization",  # percent of the node, was cores
        "ray_node_cpu_count",  # a CPU count, was a histogram's observations per second
        "kube_pod_container_resource_requests",  # the spec's cores or bytes, was requests per second
        "kube_pod_container_resource_limits",
        "container_spec_cpu_quota",  # configuration, was cores
        "container_spec_cpu_shares",
        "container_cpu_cfs_periods_total",  # 100 ms periods, was cores
        "container_cpu_cfs_throttled_periods_total",  # periods, was seconds per second
        "container_network_receive_packets_total",  # packets, was bytes per second
        "container_network_receive_packets_dropped_total",
        "container_network_transmit_errors_total",  # was failed requests
        "container_fs_usage_bytes",  # space used, was disk I/O per second
        "ray_node_disk_usage",
        "node_disk_io_time_seconds_total",  # time busy, was bytes per second
        "container_memory_failures_total",  # page faults, was failed requests
        "node_pressure_memory_waiting_seconds_total",  # memory PSI, was node memory bytes
        "node_memory_MemAvailable_bytes",  # what is left rises when use rises: never the memory kind
        "node_memory_MemFree_bytes",
        "container_memory_cache",
        "vllm:lora_requests_info",  # an info metric (value 1), was requests per second
        "vllm:num_requests_swapped",
        "DCGM_FI_PROF_PCIE_TX_BYTES",  # PCIe / NVLink bytes, not the pod's network
        "DCGM_FI_PROF_NVLINK_RX_BYTES",
        "node_hwmon_temp_celsius",  # not a GPU's
        # found by a second trial: durations that are no requests', configuration, limits and thresholds, link state,
        # operations, in-flight gauges, OpenMetrics creation timestamps
        "go_gc_duration_seconds", "scrape_duration_seconds", "container_cpu_load_average_10s", "node_cpu_scaling_frequency_hertz",
        "DCGM_FI_DEV_POWER_MGMT_LIMIT_MAX", "DCGM_FI_DEV_MAX_SM_CLOCK", "nvidia_smi_clocks_max_sm_clock_hz", "DCGM_FI_DEV_SLOWDOWN_TEMP",
        "kube_node_status_allocatable_cpu_cores", "node_network_speed_bytes", "node_network_mtu_bytes", "node_network_up",
        "node_memory_SwapFree_bytes", "container_spec_memory_swap_limit_bytes", "process_virtual_memory_max_bytes",
        "http_requests_created", "process_cpu_seconds_created", "node_disk_reads_completed_total",
        "ray_node_disk_utilization_percentage", "ray_serve_num_ongoing_http_requests",
    ],
)
def test_names_that_look_like_a_kind_but_measure_something_else_have_none(name: str) -> None:
    assert meaning(name) is None, (name, meaning(name))


@pytest.mark.parametrize("name", ["DCGM_FI_DEV_POWER_VIOLATION", "DCGM_FI_DEV_THERMAL_VIOLATION", "container_memory_failcnt",
                                  "node_netstat_Tcp_RetransSegs", "nginx_ingress_controller_requests", "ray_node_network_received"])
def test_counters_named_without_total_are_read_as_their_rate(name: str) -> None:
    """Their exporters type them counter; describe said they were rates and llm-rca read the running totals as rates."""
    m = meaning(name)
    assert m is not None and m.counter, name
    assert not meaning(name + ":rate").counter
    t = np.arange(0.0, 300.0, 5.0)
    frame = pd.DataFrame({"time": t, f"ray-worker-1_{name}": 1000.0 + 40.0 * t})  # a running total, 40 per second
    out, renamed = canonical_frame(frame)
    [new] = [c for c in out.columns if c != "time"]
    assert renamed[new] == f"ray-worker-1_{name}" and np.allclose(out[new].to_numpy()[1:], 40.0), out[new].to_numpy()[:4]


def test_identity_and_unknown_names_have_no_kind() -> None:
    for name in ("pod_name", "pod_ip", "node_name", "foo", "x1"):
        assert meaning(name) is None, name
    # one bucket's cumulative count (was latency_mean in ms) and a memory share without bytes (was bytes) have no level
    for name in ("istio_request_duration_milliseconds_bucket", "http_request_duration_seconds_bucket", "mem_percent"):
        assert meaning(name) is None, name
    assert meaning("error_ratio").unit == "fraction" and meaning("cpu_percent").unit == "%"


def test_every_catalogue_metric_is_its_own_kind_canonically() -> None:
    # the catalogue's names map to a kind whose canonical name is the catalogue's own (no renaming)
    for m in (*BASIC, *EXTENDED):
        got = meaning(m.name)
        if got is None:
            continue
        if KINDS[got.kind].canonical == m.name:
            assert got.factor == 1.0


def test_canonical_frame_renames_and_converts_units() -> None:
    df = pd.DataFrame(
        {
            "time": [0.0, 5.0],
            "svc_istio_request_duration_milliseconds:p90": [120.0, 240.0],
            "svc_container_memory_working_set_mb": [100.0, 200.0],
            "svc_mystery": [1.0, 2.0],
        }
    )
    out, renamed = canonical_frame(df)
    assert list(out.columns) == ["time", "svc_latency-90", "svc_mem", "svc_mystery"]
    assert out["svc_latency-90"].tolist() == pytest.approx([0.12, 0.24])
    assert out["svc_mem"].tolist() == pytest.approx([1e8, 2e8])
    assert renamed == {"svc_latency-90": "svc_istio_request_duration_milliseconds:p90", "svc_mem": "svc_container_memory_working_set_mb"}
    assert df.columns[1] == "svc_istio_request_duration_milliseconds:p90"  # input untouched


def test_an_exact_canonical_column_wins_over_a_synonym() -> None:
    df = pd.DataFrame({"time": [0.0], "a_ctn_cpu": [1.0], "a_cpu": [2.0]})
    out, renamed = canonical_frame(df)
    assert renamed == {}
    assert list(out.columns) == ["time", "a_ctn_cpu", "a_cpu"]


def test_describe_groups_columns_and_lists_unmapped() -> None:
    d = describe(["time", "a_ctn_cpu", "b_ctn_cpu", "a_pod_name", "b_lat_90"])
    assert d.kinds == {"cpu": ["a_ctn_cpu", "b_ctn_cpu"], "latency_p90": ["b_lat_90"]}
    assert d.unmapped == ["a_pod_name"]
    assert find_column(["a_ctn_cpu", "a_lat_50", "a_lat_90"], "a", ["latency_p90", "latency_p50"]) == "a_lat_90"


def _frame(columns: list[str], n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    data = {"time": 1_750_000_000.0 + 5.0 * np.arange(n)}
    data.update({c: 1.0 + 0.05 * rng.standard_normal(n) for c in columns})
    return pd.DataFrame(data)


def test_sli_is_the_entry_latency_by_topology_then_by_role_name() -> None:
    cols = ["carts_lat_90", "front-end_cpu", "front-end_lat_50", "front-end_lat_90", "orders_lat_90"]
    case = Case(metrics=_frame(cols), inject_time=1_750_000_100.0)
    assert entry_component(case) == "front-end"
    assert sli_column(case) == "front-end_lat_90"
    with_topo = Case(metrics=case.metrics, inject_time=case.inject_time, topology=Topology(("orders", "carts", "front-end"), (), "orders"))
    assert sli_column(with_topo) == "orders_lat_90"
    istio = Case(metrics=_frame(["ingress_istio_request_duration_milliseconds:p90", "svc_cpu"]), inject_time=1_750_000_100.0)
    assert sli_column(istio) == "ingress_istio_request_duration_milliseconds:p90"


def test_sli_override_and_its_error() -> None:
    case = Case(metrics=_frame(["front-end_lat_90", "carts_lat_90"]), inject_time=1_750_000_100.0, meta={"sli": "carts_lat_90"})
    assert sli_column(case) == "carts_lat_90"
    case.meta["sli"] = "carts_latency"
    with pytest.raises(SliError, match="carts_latency"):
        sli_column(case)


def test_rank_cli_sli_option_reaches_the_walk(tmp_path: Path) -> None:
    src = REALWORLD / "rcaeval-re2-traces-ms" / "checkoutservice_delay" / "1"
    if not src.exists():
        pytest.skip("shared real-world cases not present")
    case_dir = tmp_path / "checkoutservice_delay" / "1"
    case_dir.mkdir(parents=True)
    for f in ("data.csv", "inject_time.txt"):
        shutil.copy(src / f, case_dir / f)
    r = CliRunner().invoke(app, ["rank", str(case_dir), "--method", "granger-randomwalk", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ranking"]["explanation"]["sli"] == "frontend_latency-90"
    r = CliRunner().invoke(app, ["rank", str(case_dir), "--method", "granger-randomwalk", "--json", "--sli", "redis_latency-90"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["ranking"]["explanation"]["sli"] == "redis_latency-90"
    r = CliRunner().invoke(app, ["rank", str(case_dir), "--method", "granger-randomwalk", "--sli", "nope_latency"])
    assert r.exit_code != 0 and "nope_latency" in r.output


def test_llm_rca_reads_the_artifact_names(tmp_path: Path) -> None:
    """The artifact's ctn_* names: llm-rca finds the faulty replica and names the columns it read."""
    rng = np.random.default_rng(3)
    n, k = 72, 60
    t = 1_750_000_000.0 + 5.0 * np.arange(n)
    cols: dict[str, np.ndarray] = {"time": t}
    for comp in ("nginx-proxy", "ray-head", "ray-replicas-0", "ray-replicas-1", "ray-replicas-2"):
        cols[f"{comp}_ctn_cpu"] = 2.0 + 0.05 * rng.standard_normal(n)
        cols[f"{comp}_ctn_memory"] = 8e9 + 5e7 * rng.standard_normal(n)
        cols[f"{comp}_ctn_network"] = 1e6 + 2e4 * rng.standard_normal(n)
        cols[f"{comp}_node_cpu"] = 10.0 + 0.3 * rng.standard_normal(n)
        if comp != "nginx-proxy":
            cols[f"{comp}_ctn_gpu"] = 60.0 + 2.0 * rng.standard_normal(n)
    cols["ray-replicas-1_ctn_cpu"][k:] += 6.0  # CPU hog on replica 1
    cols["ray-replicas-1_node_cpu"][k:] += 6.0
    case = Case(metrics=pd.DataFrame(cols), inject_time=float(t[k]))
    r = LlmRca().rank(case)
    assert r.components[0] == "ray-replicas-1"
    assert r.fault_type == "cpu"
    assert r.metrics is not None and r.metrics[0][0] == "ray-replicas-1_ctn_cpu"  # the user's column, not ours
    assert r.explanation is not None and r.explanation["columns_read_as"]["ray-replicas-1_cpu"] == "ray-replicas-1_ctn_cpu"


def test_missing_data_is_evidence() -> None:
    """A series absent before the injection and present after it is anomalous (not ignored as NaN)."""
    from llmrca.methods.registry import get_method

    rng = np.random.default_rng(5)
    n, k = 60, 48
    t = 1_750_000_000.0 + 5.0 * np.arange(n)
    df = pd.DataFrame({"time": t})
    for comp in ("gw", "a", "b"):
        df[f"{comp}_cpu"] = 1.0 + 0.05 * rng.standard_normal(n)
    errors = np.full(n, np.nan)
    errors[k:] = 3.0
    df["b_errors"] = errors  # the error series only exists once the fault starts
    case = Case(metrics=df, inject_time=float(t[k]))
    for name in ("nsigma", "baro", "llm-rca"):
        r = get_method(name).rank(case)
        assert r.components[0] == "b", name
        assert np.isfinite(r.scores[0]), name


def test_describe_cli(tmp_path: Path) -> None:
    case = tmp_path / "ray-replicas-1_cpu" / "1"
    case.mkdir(parents=True)
    _frame(["ray-replicas-1_ctn_cpu", "ray-replicas-1_lat_90", "ray-replicas-1_weird"]).to_csv(case / "data.csv", index=False)
    (case / "inject_time.txt").write_text("1750000100\n")
    r = CliRunner().invoke(app, ["dataset", "describe", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["kinds"]["cpu"]["columns"] == ["ray-replicas-1_ctn_cpu"]
    assert d["kinds"]["latency_p90"]["unit"] == "s"
    assert d["unmapped"] == ["ray-replicas-1_weird"]
    r = CliRunner().invoke(app, ["dataset", "describe", str(case)])
    assert r.exit_code == 0 and "unmapped" in r.output and "ray-replicas-1_weird" in r.output


def test_histogram_parts_and_raw_counters() -> None:
    assert meaning("vllm:time_to_first_token_seconds_sum") is None  # cumulative seconds: no level of its own
    count = meaning("vllm:time_to_first_token_seconds_count")
    assert count is not None and (count.kind, count.counter) == ("request_rate", True)
    raw = meaning("container_cpu_usage_seconds_total")
    assert raw is not None and (raw.kind, raw.counter) == ("cpu", True)
    assert not meaning("container_cpu_usage_seconds_total:rate").counter
    t = 1_750_000_000.0 + 5.0 * np.arange(8)
    counter = np.array([100.0, 110.0, 120.0, 130.0, 5.0, 15.0, 25.0, 35.0])  # a reset after the 4th sample
    df = pd.DataFrame({"time": t, "a_container_cpu_usage_seconds_total": counter, "b_container_cpu_usage_seconds_total": [2.0, 1.5, 2.5, 2.0, 1.0, 2.0, 1.5, 2.0]})
    out, _ = canonical_frame(df)
    assert np.isnan(out["a_cpu"].iloc[0])
    assert out["a_cpu"].iloc[1:].tolist() == pytest.approx([2.0, 2.0, 2.0, 1.0, 2.0, 2.0, 2.0])  # the reset step counts the value after it
    assert out["b_cpu"].tolist() == pytest.approx(df["b_container_cpu_usage_seconds_total"].tolist())  # already a rate: left alone


def test_a_ray_counter_exported_as_a_gauge_before_ray_2_10_is_read_as_its_rate() -> None:
    """Ray < 2.10 exported counters as gauges without _total (ray-project/ray#43795): the cumulative value was read
    as a level (errors per second growing for ever)."""
    m = meaning("ray_serve_deployment_error_counter")
    assert m is not None and (m.kind, m.counter) == ("replica_errors", True)
    assert not meaning("ray_serve_num_router_requests:rate").counter
    assert meaning("ray_serve_num_router_requests:rate").kind == "router_requests"
    t = 1_750_000_000.0 + 5.0 * np.arange(6)
    df = pd.DataFrame({"time": t, "ray-worker-1_ray_serve_deployment_error_counter": [3.0, 5.0, 7.0, 9.0, 11.0, 13.0]})
    out, _ = canonical_frame(df)
    assert out["ray-worker-1_ray_serve_deployment_error_counter_total:rate"].iloc[1:].tolist() == pytest.approx([0.4] * 5)


def test_a_mistyped_sli_is_refused_before_anything_runs(tmp_path: Path) -> None:
    from llmrca.evaluate import run_evaluation
    from llmrca.evaluate.runner import EvaluationError

    case = tmp_path / "ds" / "carts_cpu" / "1"
    case.mkdir(parents=True)
    _frame(["front-end_lat_90", "carts_lat_90", "carts_cpu"]).to_csv(case / "data.csv", index=False)
    (case / "inject_time.txt").write_text("1750000100\n")
    with pytest.raises(EvaluationError, match=r"nope_col.*front-end_lat_90"):
        run_evaluation(tmp_path / "ds", ["nsigma"], tmp_path / "out", jobs=1, progress=False, sli="nope_col")
    assert not (tmp_path / "out" / "results.jsonl").exists()
    r = CliRunner().invoke(app, ["rank", str(case), "--method", "nsigma", "--sli", "nope_col"])
    assert r.exit_code != 0 and "nope_col" in r.output
