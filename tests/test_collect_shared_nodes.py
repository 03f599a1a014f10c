"""Collecting from a real Prometheus where pods share a node's GPUs, and where cAdvisor's series have no ``image``.

dcgm-exporter with its Kubernetes mapping attributes each device to the pod it is allocated to (``exported_pod``
when Prometheus renamed the device's ``pod``); a join through ``kube_pod_info``'s node must not average in a
device of another pod on the same node.  cAdvisor reports a pod's cgroup (``container=""``) and its pause
container (``POD``) beside the real containers; without the ``image`` label (relabelled away, or kubelet < 1.16
with ``container_name``) those must still not be summed in.  Series are backfilled with promtool and served by a
real Prometheus; expected values are what is written.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from _promhelpers import Backfilled, backfilled_prometheus
from llmrca.collect import collect_metrics

STEP, N = 5, 144
OWN_W, OTHER_W = 290.0, 100.0  # the component's device and another pod's device on the same node
CPU_CORES, MEM = 0.6, 6e9


def _gauge(name: str, labels: str, value, t0: int) -> list[str]:
    return [f"{name}{{{labels}}} {value(k) if callable(value) else value} {t0 + STEP * k}" for k in range(N)]


def openmetrics(t0: int) -> str:
    lines: list[str] = []
    node = 'Hostname="node-x",modelName="NVIDIA L4"'
    lines += _gauge("DCGM_FI_DEV_POWER_USAGE", f'{node},gpu="0",UUID="GPU-x0",pod="dcgm-exporter-1",exported_pod="vllm-a"', OWN_W, t0)
    lines += _gauge("DCGM_FI_DEV_POWER_USAGE", f'{node},gpu="1",UUID="GPU-x1",pod="dcgm-exporter-1",exported_pod="batch-job-1"', OTHER_W, t0)
    lines += _gauge("kube_pod_info", 'namespace="llm",pod="vllm-a",node="node-x"', 1, t0)
    lines += _gauge("kube_pod_info", 'namespace="llm",pod="batch-job-1",node="node-x"', 1, t0)
    # kubelet < 1.16 names, no image label: the container, the pause container and the pod's cgroup (their sum)
    for cname, cores, mem in (("main", CPU_CORES, MEM), ("POD", 0.001, 1e6), ("", CPU_CORES + 0.001, MEM + 1e6)):
        labels = f'namespace="llm",pod_name="vllm-0",container_name="{cname}"'
        lines += _gauge("container_cpu_usage_seconds_total", labels, lambda k, c=cores: round(c * STEP * k, 6), t0)
        lines += _gauge("container_memory_working_set_bytes", labels, mem, t0)
    # the GPU pod is a vLLM replica (its engine's series give it the serving role), with a basic column
    lines += _gauge("vllm:num_requests_running", 'namespace="llm",pod="vllm-a",model_name="m"', 4, t0)
    lines += _gauge("container_memory_working_set_bytes", 'namespace="llm",pod="vllm-a",container="main",image="vllm"', MEM, t0)
    # other LLM servers: SGLang and TGI replicas, known by their engine series
    lines += _gauge("sglang:num_running_reqs", 'namespace="llm",pod="sglang-0"', 7, t0)
    lines += _gauge("sglang:token_usage", 'namespace="llm",pod="sglang-0"', 0.42, t0)
    lines += _gauge("tgi_queue_size", 'namespace="llm",pod="tgi-0"', 3, t0)
    lines += _gauge("tgi_batch_current_size", 'namespace="llm",pod="tgi-0"', 5, t0)
    for pod in ("sglang-0", "tgi-0"):
        lines += _gauge("container_memory_working_set_bytes", f'namespace="llm",pod="{pod}",container="main",image="x"', MEM, t0)
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    yield from backfilled_prometheus(tmp_path_factory, openmetrics)


@pytest.mark.system
def test_a_gpu_join_leaves_out_the_devices_of_other_pods_on_the_node(backfilled: Backfilled) -> None:
    res = collect_metrics(backfilled.url, {"vllm-a": 'pod="vllm-a"'}, backfilled.start, backfilled.end, step_s=15,
                          metric_set="extended", rate_window_s=60, gpu_join="kube_pod_info:node=Hostname")
    got = res.gpu_selectors["vllm-a"]
    assert got["selector"].startswith('Hostname="node-x",exported_pod=~') and "batch-job-1" in got["via"], got
    np.testing.assert_allclose(res.frame["vllm-a_DCGM_FI_DEV_POWER_USAGE"], OWN_W)  # not the node's mean (195 W)


@pytest.mark.system
def test_cadvisor_series_without_image_are_not_summed_with_the_pods_cgroup(backfilled: Backfilled) -> None:
    res = collect_metrics(backfilled.url, {"vllm-0": 'pod="vllm-0"'}, backfilled.start, backfilled.end, step_s=15,
                          metric_set="basic", rate_window_s=60)
    np.testing.assert_allclose(res.frame["vllm-0_cpu"], CPU_CORES, rtol=1e-3)  # not 2 x 0.6 (+ the pause container)
    np.testing.assert_allclose(res.frame["vllm-0_mem"], MEM)


@pytest.mark.system
def test_sglang_and_tgi_replicas_are_serving_components_with_engine_columns(backfilled: Backfilled) -> None:
    comps = {"sglang-0": 'pod="sglang-0"', "tgi-0": 'pod="tgi-0"'}
    res = collect_metrics(backfilled.url, comps, backfilled.start, backfilled.end, step_s=15, metric_set="extended", rate_window_s=60)
    assert res.roles_inferred == {"sglang-0": ["serving"], "tgi-0": ["serving"]}, res.roles_inferred
    df = res.frame
    np.testing.assert_allclose(df["sglang-0_vllm:num_requests_running"], 7)
    np.testing.assert_allclose(df["sglang-0_vllm:kv_cache_usage_perc"], 0.42)
    np.testing.assert_allclose(df["tgi-0_vllm:num_requests_waiting"], 3)
    np.testing.assert_allclose(df["tgi-0_vllm:num_requests_running"], 5)
    assert "sglang:num_running_reqs{" in res.queries["sglang-0_vllm:num_requests_running"]


@pytest.mark.system
def test_a_regex_selector_that_matches_several_pods_is_said(backfilled: Backfilled) -> None:
    res = collect_metrics(backfilled.url, {"llm": 'pod=~"sglang-0|tgi-0"', "one": 'pod="vllm-a"'}, backfilled.start, backfilled.end,
                          step_s=15, metric_set="basic", rate_window_s=60)
    assert res.several_pods == {"llm": ["sglang-0", "tgi-0"]}
    np.testing.assert_allclose(res.frame["llm_mem"], 2 * MEM)  # what the warning says: the two pods summed


@pytest.mark.system
def test_audit_of_a_window_without_samples_says_so(backfilled: Backfilled) -> None:
    import time

    from llmrca.heal.audit import audit

    with pytest.raises(ValueError, match="holds no sample in the last 60 s") as e:
        audit(backfilled.url, window_s=60, end=time.time())  # the backfilled series end about an hour ago
    assert "series before that" in str(e.value)
    with pytest.raises(ValueError, match="holds no sample in the last 60 s"):  # with components given too
        audit(backfilled.url, components={"vllm-a": 'pod="vllm-a"'}, window_s=60, end=time.time())


@pytest.mark.system
def test_audit_counts_sglang_and_tgi_replicas_and_names_a_selector_without_series(backfilled: Backfilled) -> None:
    from llmrca.heal.audit import audit, render

    comps = {"sglang-0": 'pod="sglang-0"', "tgi-0": 'pod="tgi-0"', "ghost": 'pod="nope"'}
    rep = audit(backfilled.url, components=comps, window_s=backfilled.end - backfilled.start, scrape_interval_s=STEP, end=backfilled.end)
    assert set(rep.replicas) == {"sglang-0", "tgi-0"}
    assert "engine queue" in rep.present["tgi-0"] and "kv cache" in rep.present["sglang-0"]
    assert rep.missing_components == ["ghost"] and "NO SERIES: Prometheus holds no series for the selector of ghost" in render(rep)
