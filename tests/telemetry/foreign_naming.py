"""Rewrite an llmrca dataset into other tools' naming and layout (for the vocabulary tests).

Two foreign namings, each with its own component names, metric names, units
and on-disk layout, and no ``case.json`` (ground truth from folder names only,
as public datasets carry it):

* :func:`to_artifact` — the paper artifact's prepared layout: ``data.csv`` with
  ``ctn_cpu`` / ``ctn_memory`` / ``ctn_network`` (rx + tx in one series) /
  ``ctn_gpu`` and sock-shop style ``lat_50`` / ``lat_90`` in milliseconds;
  components ``nginx-proxy``, ``ray-head``, ``ray-replicas-N``; the call graph
  in ``mpg.csv`` as the artifact ships it;
* :func:`to_prometheus_re2` — RCAEval RE2's layout (``simple_metrics.csv`` +
  ``metrics.csv``) with raw exporter names: cAdvisor counters' rates, memory in
  MB, Istio latency in ms, vLLM <= 0.10 names under Ray (``ray_vllm:...``), the
  new DCGM field names (``CLOCKS_EVENT_REASONS``, ``ENFORCED_POWER_LIMIT``) and
  the SM clock in Hz from nvidia-smi; components ``ingress``, ``serve-head``,
  ``vllm-N``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from llmrca.dataset.io import Dataset
from llmrca.model import Case, split_column


def _worker_index(comp: str) -> int | None:
    m = re.fullmatch(r"ray-worker-(\d+)", comp)
    return int(m.group(1)) if m else None


def artifact_component(comp: str) -> str:
    i = _worker_index(comp)
    if i is not None:
        return f"ray-replicas-{i}"
    return {"nginx-gateway": "nginx-proxy"}.get(comp, comp)


def re2_component(comp: str) -> str:
    i = _worker_index(comp)
    if i is not None:
        return f"vllm-{i}"
    return {"nginx-gateway": "ingress", "ray-head": "serve-head", "kuberay-operator": "operator"}.get(comp, comp)


def _artifact_frame(df: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, object] = {"time": df["time"]}
    names = {"cpu": ("ctn_cpu", 1.0), "mem": ("ctn_memory", 1.0), "gpu": ("ctn_gpu", 1.0), "latency-50": ("lat_50", 1e3), "latency-90": ("lat_90", 1e3)}
    comps = list(dict.fromkeys(split_column(c)[0] for c in df.columns if c != "time"))
    for comp in comps:
        new = artifact_component(comp)
        for metric, (name, factor) in names.items():
            col = f"{comp}_{metric}"
            if col in df:
                out[f"{new}_{name}"] = df[col] * factor
        if f"{comp}_net-rx" in df and f"{comp}_net-tx" in df:
            out[f"{new}_ctn_network"] = df[f"{comp}_net-rx"] + df[f"{comp}_net-tx"]
    return pd.DataFrame(out)


_RE2_RENAMES: dict[str, tuple[str, float]] = {
    "cpu": ("container_cpu_usage_seconds_total:rate", 1.0),
    "mem": ("container_memory_working_set_mb", 1e-6),
    "net-rx": ("container_network_receive_bytes_total:rate", 1.0),
    "net-tx": ("container_network_transmit_bytes_total:rate", 1.0),
    "gpu": ("DCGM_FI_DEV_GPU_UTIL", 1.0),
    "latency-50": ("istio_request_duration_milliseconds:p50", 1e3),
    "latency-90": ("istio_request_duration_milliseconds:p90", 1e3),
    "vllm:kv_cache_usage_perc": ("ray_vllm:gpu_cache_usage_perc", 1.0),
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", 1.0),
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": ("DCGM_FI_DEV_ENFORCED_POWER_LIMIT", 1.0),
    "DCGM_FI_DEV_SM_CLOCK": ("nvidia_smi_clocks_current_sm_clock_hz", 1e6),
}


def _re2_metric(metric: str) -> tuple[str, float]:
    if metric in _RE2_RENAMES:
        return _RE2_RENAMES[metric]
    if metric.startswith("vllm:inter_token_latency_seconds"):
        return metric.replace("vllm:inter_token_latency_seconds", "ray_vllm:time_per_output_token_seconds"), 1.0
    if metric.startswith("vllm:"):
        return "ray_vllm_" + metric.removeprefix("vllm:"), 1.0
    return metric, 1.0


def _re2_frame(df: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, object] = {"time": df["time"]}
    for col in df.columns:
        if col == "time":
            continue
        comp, metric = split_column(col)
        name, factor = _re2_metric(metric)
        out[f"{re2_component(comp)}_{name}"] = df[col] * factor
    return pd.DataFrame(out)


def _rewrite(src: Path, dst: Path, component: Callable[[str], str], write: Callable[[Case, Path], None]) -> Path:
    ds = Dataset(src)
    for folder in ds.case_dirs():
        case = ds.load(folder)
        assert case.fault is not None
        target = component(case.fault.target)
        out = dst / folder.relative_to(ds.root).parent.parent / f"{target}_{case.fault.type}" / folder.name
        out.mkdir(parents=True, exist_ok=True)
        write(case, out)
        (out / "inject_time.txt").write_text(f"{int(case.inject_time)}\n")
    return dst


def to_artifact(src: Path, dst: Path) -> Path:
    """``src`` (an llmrca dataset) rewritten in the artifact's naming under ``dst``; the basic set only."""

    def write(case: Case, out: Path) -> None:
        _artifact_frame(case.metric_sets["basic"]).to_csv(out / "data.csv", index=False)
        if case.topology is not None:  # the artifact's call graph file (mpg.csv: ,source,destination)
            edges = [(artifact_component(a), artifact_component(b)) for a, b in case.topology.edges]
            pd.DataFrame(edges, columns=["source", "destination"]).to_csv(out / "mpg.csv")

    return _rewrite(src, dst, artifact_component, write)


def to_prometheus_re2(src: Path, dst: Path) -> Path:
    """``src`` rewritten in RE2's layout with raw exporter names: ``simple_metrics.csv`` (basic) + ``metrics.csv`` (extended)."""

    def write(case: Case, out: Path) -> None:
        _re2_frame(case.metric_sets["basic"]).to_csv(out / "simple_metrics.csv", index=False)
        _re2_frame(case.metric_sets["extended"]).to_csv(out / "metrics.csv", index=False)

    return _rewrite(src, dst, re2_component, write)
