"""Settings of the rendered Kubernetes stack, with the ``paper`` and ``small`` profiles."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from llmrca.config import Config, ConfigError

#: Label put on every object llmrca creates (``llmrca k8s down`` sweeps by it).
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "llmrca"
#: Label naming the stack an object belongs to.
STACK_LABEL = "llmrca.io/stack"
#: Label on the objects a fault creates (StressChaos, NetworkChaos, GPU Jobs).
FAULT_LABEL = "llmrca.io/fault"
#: Pod label with the llmrca component a Ray worker pod plays (``ray-worker-2``), set by llmrca at first sight.
COMPONENT_LABEL = "llmrca.io/component"
#: Label on the objects a remediation creates (the reset-power-limit Job).
ACTION_LABEL = "llmrca.io/action"
#: Pod label the gateway's upstream Service selects on: ``in`` routed, ``out`` drained.
ROUTING_LABEL = "llmrca.io/routing"
#: Pod label naming the llmrca component a pod plays (``ray-head``, ``ray-worker-1`` is assigned at run time).
ROLE_LABEL = "llmrca.io/role"


#: A Kubernetes resource quantity (apimachinery ``resource.Quantity``: a decimal number with an optional binary
#: ``Ki..Ei``, decimal ``n u m k M G T P E`` or exponent suffix).
_QUANTITY = re.compile(r"^\+?(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$")
#: A Prometheus duration (``5s``, ``1m30s``, ``500ms``), as the Prometheus Operator's ``Duration`` type accepts it.
_DURATION = re.compile(r"^(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?$")


def quantity_problem(field: str, value: str) -> str | None:
    """Why ``value`` is not a positive Kubernetes quantity (``"8"``, ``"500m"``, ``"16Gi"``), or ``None``."""
    m = _QUANTITY.match(str(value).strip())
    if not m:
        return f"{field} {value!r} is not a Kubernetes quantity (e.g. '8', '500m', '16Gi')"
    try:
        if Decimal(m.group("num")) <= 0:
            return f"{field} {value!r} must be more than zero"
    except InvalidOperation:  # pragma: no cover - the pattern only lets numbers through
        return f"{field} {value!r} is not a Kubernetes quantity"
    return None


@dataclass
class K8sConfig(Config):
    """One stack on a cluster.

    ``workers``: Ray worker pods (the head serves one more replica, as in the paper: 1 + 3 = 4 replicas);
    ``cpu`` / ``memory``: limits of every Ray pod (paper: 8 CPU, 16 GiB); ``gpus``: GPUs per Ray pod, the tensor-parallel size of its vLLM replica;
    ``model``: served model id; ``image``: Ray + vLLM image; ``max_ongoing_requests``: per replica (paper: 500);
    ``prometheus_release``: value of the ``release`` label the cluster's Prometheus selects monitors by
    (kube-prometheus-stack: its Helm release name); ``dcgm_namespace``: where the GPU Operator's dcgm-exporter runs;
    ``scrape_interval``: of every monitor (Prometheus duration).
    """

    numeric_text: ClassVar[frozenset[str]] = frozenset({"cpu", "memory", "gateway_cpu", "gateway_memory"})

    name: str = "llmrca"
    namespace: str = "llmrca"
    workers: int = 3
    cpu: str = "8"
    memory: str = "16Gi"
    gpus: int = 1
    model: str = "tiiuae/Falcon-H1-7B-Instruct"
    image: str = "rayproject/ray-llm:2.49.0-py311-cu128"
    ray_version: str = "2.49.0"
    max_ongoing_requests: int = 500
    max_model_len: int = 4096
    gateway_image: str = "nginx:1.27.4"
    gateway_exporter_image: str = "nginx/nginx-prometheus-exporter:1.4.1"
    gateway_cpu: str = "2"
    gateway_memory: str = "1Gi"
    prometheus_release: str = "kube-prometheus-stack"
    dcgm_namespace: str = "gpu-operator"
    dcgm_configmap: str = "llmrca-dcgm-metrics"
    scrape_interval: str = "5s"
    gpu_job_image: str = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"
    gpu_runtime_class: str = "nvidia"

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.gpus < 1:
            raise ConfigError(f"gpus must be >= 1 (every Ray pod serves a vLLM replica on its own GPU), got {self.gpus}")
        if self.max_model_len < 1:
            raise ConfigError(f"max_model_len must be >= 1, got {self.max_model_len}")
        bad = [q for q in (quantity_problem(f, getattr(self, f)) for f in ("cpu", "memory", "gateway_cpu", "gateway_memory")) if q]
        if bad:
            raise ConfigError("; ".join(bad))
        if not self.scrape_interval or not _DURATION.match(self.scrape_interval) or not any(ch.isdigit() and ch != "0" for ch in self.scrape_interval):
            raise ConfigError(f"scrape_interval {self.scrape_interval!r} must be a Prometheus duration above zero (e.g. '5s', '1m')")
        if self.max_ongoing_requests < 1:
            raise ConfigError(f"max_ongoing_requests must be >= 1, got {self.max_ongoing_requests}")
        for field, most in (("name", 40), ("namespace", 40), ("dcgm_namespace", 63)):  # a namespace is an RFC 1123 label
            v = getattr(self, field)
            if not v or len(v) > most or not all(c.isdigit() or ("a" <= c <= "z") or c == "-" for c in v) or v[0] == "-" or v[-1] == "-":
                raise ConfigError(f"{field} {v!r} must be a DNS label of at most {most} characters (a-z, 0-9, '-')")

    @property
    def replicas(self) -> int:
        """Model replicas: one per Ray pod (head included)."""
        return self.workers + 1


#: Profiles: the paper's testbed, and a small one for a single-GPU-per-node trial cluster.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": {"workers": 1, "cpu": "4", "memory": "12Gi", "model": "Qwen/Qwen2.5-0.5B-Instruct", "max_ongoing_requests": 64, "max_model_len": 2048},
}


def profile_config(profile: str, overrides: dict[str, Any] | None = None) -> K8sConfig:
    """The :class:`K8sConfig` of ``profile`` with ``overrides`` (``--set key=value``); raises ConfigError naming the valid ones."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown k8s profile {profile!r}; profiles: {', '.join(PROFILES)}")
    return K8sConfig.from_dict({**PROFILES[profile], **dict(overrides or {})})
