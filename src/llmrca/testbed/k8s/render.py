"""The paper's stack as plain Kubernetes objects (dicts built in code), and their files.

Objects (paper §4.3, PROTOCOL.md §1), all labelled ``app.kubernetes.io/managed-by=llmrca``:

* ``Namespace`` (Pod Security ``privileged``: the GPU Job needs it);
* ``ServiceAccount`` ``llmrca`` with a ``Role`` limited to what the campaign and the actuator do
  (read pods and their logs, delete and label pods, create/read/delete Chaos Mesh experiments and
  Jobs, read the RayService) and its ``RoleBinding``;
* a KubeRay ``RayService`` (``ray.io/v1``) serving an OpenAI-compatible app
  (``ray.serve.llm:build_openai_app``, vLLM engine) on a head pod and ``workers`` worker pods,
  each with ``gpus`` GPU(s), ``cpu`` CPU and ``memory`` as limits (paper: 1 GPU, 8 CPU, 16 GiB);
* a headless ``Service`` of the Ray pods' Serve proxies that are in routing
  (``llmrca.io/routing=in``; the ``drain`` remediation sets ``out``);
* the NGINX gateway: ``ConfigMap`` (nginx.conf), ``Deployment`` (nginx + nginx-prometheus-exporter), ``Service``;
* Prometheus-Operator monitors: ``PodMonitor`` for Ray's metrics, for vLLM's (Ray exports them as
  ``ray_vllm:*``; renamed to ``vllm:*``), ``ServiceMonitor`` for the gateway and for dcgm-exporter;
* a ``ConfigMap`` with dcgm-exporter's counters CSV in the GPU Operator's namespace, with the
  opt-in power and clock fields enabled (``DCGM_FI_DEV_POWER_MGMT_LIMIT``, ``..._CLOCKS_EVENT_REASONS``,
  ...; format: dcgm-exporter's ``default-counters.csv``: ``field, prometheus type, help``).

:func:`render_stack` returns the objects; :func:`write_manifests` writes one YAML file per object
kind group and a ``kustomization.yaml`` listing them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from llmrca.telemetry import HEAD
from llmrca.testbed.k8s.config import MANAGED_BY, MANAGER, ROLE_LABEL, ROUTING_LABEL, STACK_LABEL, K8sConfig

#: Ports of a Ray pod (KubeRay's defaults) and the gateway.
SERVE_PORT = 8000
RAY_METRICS_PORT = 8080
DASHBOARD_PORT = 8265
GCS_PORT = 6379
GATEWAY_PORT = 80
GATEWAY_EXPORTER_PORT = 9113

#: dcgm-exporter fields llmrca collects: (field, Prometheus type, help).  The power limit, the
#: clock event reasons and the clocks are not in dcgm-exporter's default set (NVIDIA DCGM field ids,
#: dcgm-exporter ``etc/default-counters.csv`` format).
DCGM_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge", "Current power limit (in W)."),
    ("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge", "Clock event reasons bitmask (0x4: SW power cap)."),
    ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ)."),
    ("DCGM_FI_DEV_POWER_VIOLATION", "counter", "Throttling duration due to power constraints (in us)."),
    ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active."),
    ("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "gauge", "Ratio of cycles the tensor (HMMA) pipe is active."),
    ("DCGM_FI_PROF_DRAM_ACTIVE", "gauge", "Ratio of cycles the device memory interface is active."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
)


def labels(cfg: K8sConfig, component: str, **extra: str) -> dict[str, str]:
    """The labels of every object of the stack: managed-by, part-of, stack, component, plus ``extra``."""
    return {
        MANAGED_BY: MANAGER,
        "app.kubernetes.io/part-of": "llmrca",
        "app.kubernetes.io/component": component,
        STACK_LABEL: cfg.name,
        **extra,
    }


def meta(cfg: K8sConfig, name: str, component: str, namespace: str | None = "", **extra: str) -> dict[str, Any]:
    """``metadata`` with ``name``, the stack's namespace (``None``: cluster-scoped; a string: that namespace) and labels."""
    m: dict[str, Any] = {"name": name, "labels": labels(cfg, component, **extra)}
    if namespace is not None:
        m["namespace"] = namespace or cfg.namespace
    return m


def namespace(cfg: K8sConfig) -> dict[str, Any]:
    """The stack's namespace; Pod Security admission ``privileged`` there, since the GPU power-cap Job is privileged."""
    m = meta(cfg, cfg.namespace, "namespace", namespace=None)
    m["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": m}


def rbac(cfg: K8sConfig) -> list[dict[str, Any]]:
    """ServiceAccount, Role and RoleBinding of llmrca itself: only the verbs the campaign and the actuator use."""
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(cfg, "llmrca", "rbac")}
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch", "delete", "patch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["services", "configmaps"], "verbs": ["get", "list"]},
        {"apiGroups": ["ray.io"], "resources": ["rayservices"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["chaos-mesh.org"], "resources": ["stresschaos", "networkchaos"], "verbs": ["create", "get", "list", "watch", "delete"]},
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
    ]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta(cfg, "llmrca", "rbac"), "rules": rules}
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(cfg, "llmrca", "rbac"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "llmrca"},
        "subjects": [{"kind": "ServiceAccount", "name": "llmrca", "namespace": cfg.namespace}],
    }
    return [sa, role, binding]


def serve_config(cfg: K8sConfig) -> dict[str, Any]:
    """Ray Serve's config (``serveConfigV2``): one OpenAI-compatible LLM app with one replica per Ray pod.

    ``ray.serve.llm:build_openai_app`` with one ``llm_configs`` entry (Ray Serve LLM API): the model,
    a fixed replica count (no autoscaling during a campaign), ``max_ongoing_requests`` per replica
    (paper: 500) and vLLM engine arguments.
    """
    return {
        "applications": [
            {
                "name": "llm",
                "route_prefix": "/",
                "import_path": "ray.serve.llm:build_openai_app",
                "args": {
                    "llm_configs": [
                        {
                            "model_loading_config": {"model_id": cfg.model},
                            "deployment_config": {
                                "num_replicas": cfg.replicas,
                                "max_ongoing_requests": cfg.max_ongoing_requests,
                            },
                            "engine_kwargs": {"max_model_len": cfg.max_model_len, "tensor_parallel_size": cfg.gpus},
                            "log_engine_metrics": True,
                        }
                    ]
                },
            }
        ]
    }


def _ray_container(cfg: K8sConfig, name: str) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": cfg.cpu, "memory": cfg.memory}
    if cfg.gpus:
        limits["nvidia.com/gpu"] = cfg.gpus
    return {
        "name": name,
        "image": cfg.image,
        "resources": {"limits": limits, "requests": dict(limits)},
        "ports": [
            {"name": "gcs", "containerPort": GCS_PORT},
            {"name": "dashboard", "containerPort": DASHBOARD_PORT},
            {"name": "serve", "containerPort": SERVE_PORT},
            {"name": "metrics", "containerPort": RAY_METRICS_PORT},
        ],
        "env": [{"name": "HF_HOME", "value": "/tmp/hf"}],
    }


def _pod_template(cfg: K8sConfig, container: str, role: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {**labels(cfg, "ray"), ROUTING_LABEL: "in", ROLE_LABEL: role}},
        "spec": {"containers": [_ray_container(cfg, container)], "terminationGracePeriodSeconds": 30},
    }


def rayservice(cfg: K8sConfig) -> dict[str, Any]:
    """The KubeRay ``RayService``: head + ``workers`` worker pods, each serving one vLLM replica."""
    start = {"num-cpus": str(cfg.cpu), "metrics-export-port": str(RAY_METRICS_PORT)}
    if cfg.gpus:
        start["num-gpus"] = str(cfg.gpus)
    workers = []
    if cfg.workers:
        workers.append(
            {
                "groupName": "gpu-worker",
                "replicas": cfg.workers,
                "minReplicas": cfg.workers,
                "maxReplicas": cfg.workers,
                "rayStartParams": dict(start),
                "template": _pod_template(cfg, "ray-worker", "ray-worker"),
            }
        )
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": meta(cfg, cfg.name, "ray"),
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config(cfg), sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": cfg.ray_version,
                "enableInTreeAutoscaling": False,
                "headGroupSpec": {
                    "rayStartParams": {**start, "dashboard-host": "0.0.0.0"},
                    "template": _pod_template(cfg, "ray-head", HEAD),
                },
                "workerGroupSpecs": workers,
            },
        },
    }


def serve_pods_service(cfg: K8sConfig) -> dict[str, Any]:
    """Headless Service of the Ray pods' Serve proxies that are in routing (the gateway's upstream)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(cfg, f"{cfg.name}-serve-pods", "ray"),
        "spec": {
            "clusterIP": "None",
            "selector": {STACK_LABEL: cfg.name, "app.kubernetes.io/component": "ray", ROUTING_LABEL: "in"},
            "ports": [{"name": "serve", "port": SERVE_PORT, "targetPort": SERVE_PORT}],
            "publishNotReadyAddresses": False,
        },
    }


def nginx_conf(cfg: K8sConfig) -> str:
    """nginx.conf of the gateway: streaming proxy to the Serve proxies, re-resolved every 5 s; stub_status for the exporter."""
    upstream = f"{cfg.name}-serve-pods.{cfg.namespace}.svc.cluster.local"
    return "\n".join(
        [
            "worker_processes auto;",
            "events { worker_connections 4096; }",
            "http {",
            "  log_format timed '$time_iso8601 $remote_addr \"$request\" $status $request_time $upstream_addr $upstream_response_time';",
            "  access_log /dev/stdout timed;",
            "  error_log /dev/stderr warn;",
            "  resolver kube-dns.kube-system.svc.cluster.local valid=5s ipv6=off;",
            "  upstream serve {",
            "    zone serve 64k;",
            f"    server {upstream}:{SERVE_PORT} resolve;",
            "    keepalive 64;",
            "  }",
            "  server {",
            f"    listen {GATEWAY_PORT};",
            "    location / {",
            "      proxy_pass http://serve;",
            "      proxy_http_version 1.1;",
            "      proxy_set_header Connection \"\";",
            "      proxy_buffering off;",
            "      proxy_read_timeout 600s;",
            "    }",
            "  }",
            "  server {",
            "    listen 127.0.0.1:8081;",
            "    location /stub_status { stub_status; }",
            "  }",
            "}",
            "",
        ]
    )


def gateway(cfg: K8sConfig) -> list[dict[str, Any]]:
    """The NGINX gateway: ConfigMap, Deployment (nginx + exporter), Service."""
    name = "nginx-gateway"
    sel = {STACK_LABEL: cfg.name, "app.kubernetes.io/component": "gateway"}
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(cfg, name, "gateway"), "data": {"nginx.conf": nginx_conf(cfg)}}
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(cfg, name, "gateway"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": {**labels(cfg, "gateway"), ROLE_LABEL: "nginx-gateway"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": cfg.gateway_image,
                            "ports": [{"name": "http", "containerPort": GATEWAY_PORT}],
                            "resources": {"limits": {"cpu": cfg.gateway_cpu, "memory": cfg.gateway_memory}},
                            "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/nginx.conf", "subPath": "nginx.conf"}],
                            "readinessProbe": {"tcpSocket": {"port": GATEWAY_PORT}, "periodSeconds": 5},
                        },
                        {
                            "name": "exporter",
                            "image": cfg.gateway_exporter_image,
                            "args": ["--nginx.scrape-uri=http://127.0.0.1:8081/stub_status"],
                            "ports": [{"name": "metrics", "containerPort": GATEWAY_EXPORTER_PORT}],
                            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                        },
                    ],
                    "volumes": [{"name": "conf", "configMap": {"name": name}}],
                },
            },
        },
    }
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(cfg, name, "gateway"),
        "spec": {
            "selector": sel,
            "ports": [
                {"name": "http", "port": GATEWAY_PORT, "targetPort": GATEWAY_PORT},
                {"name": "metrics", "port": GATEWAY_EXPORTER_PORT, "targetPort": GATEWAY_EXPORTER_PORT},
            ],
        },
    }
    return [cm, dep, svc]


def dcgm_counters_csv() -> str:
    """dcgm-exporter's counters file: one ``field, type, help`` line per field of :data:`DCGM_FIELDS`."""
    head = "# Format: DCGM field, Prometheus metric type, help message (rendered by llmrca)\n"
    return head + "".join(f"{f}, {t}, {h}\n" for f, t, h in DCGM_FIELDS)


def dcgm_configmap(cfg: K8sConfig) -> dict[str, Any]:
    """The counters ConfigMap for the GPU Operator's dcgm-exporter (``dcgmExporter.config.name``)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(cfg, cfg.dcgm_configmap, "dcgm", namespace=cfg.dcgm_namespace),
        "data": {"dcgm-metrics.csv": dcgm_counters_csv()},
    }


def monitors(cfg: K8sConfig) -> list[dict[str, Any]]:
    """PodMonitors (Ray, vLLM) and ServiceMonitors (gateway, dcgm-exporter) selected by ``release=<prometheus_release>``."""
    rel = {"release": cfg.prometheus_release}
    ray_sel = {"matchLabels": {STACK_LABEL: cfg.name, "app.kubernetes.io/component": "ray"}}
    keep_pod = [{"sourceLabels": ["__meta_kubernetes_pod_label_llmrca_io_role"], "targetLabel": "llmrca_role", "action": "replace"}]
    def ray_pod_monitor(suffix: str, metric_relabelings: list[dict[str, Any]]) -> dict[str, Any]:
        # one scrape of the Ray pods' metrics port; the two monitors differ only in which series they keep
        return {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": meta(cfg, f"{cfg.name}-{suffix}", "monitoring", **rel),
            "spec": {
                "selector": ray_sel,
                "podMetricsEndpoints": [
                    {
                        "port": "metrics",
                        "path": "/metrics",
                        "interval": cfg.scrape_interval,
                        "relabelings": keep_pod,
                        "metricRelabelings": metric_relabelings,
                    }
                ],
            },
        }

    ray = ray_pod_monitor("ray", [{"sourceLabels": ["__name__"], "regex": "ray_vllm.*", "action": "drop"}])
    vllm = ray_pod_monitor(
        "vllm",
        [
            {"sourceLabels": ["__name__"], "regex": "ray_vllm:.*", "action": "keep"},
            {"sourceLabels": ["__name__"], "regex": "ray_(vllm:.*)", "targetLabel": "__name__", "replacement": "$1", "action": "replace"},
        ],
    )
    gw = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(cfg, f"{cfg.name}-gateway", "monitoring", **rel),
        "spec": {
            "selector": {"matchLabels": {STACK_LABEL: cfg.name, "app.kubernetes.io/component": "gateway"}},
            "endpoints": [{"port": "metrics", "interval": cfg.scrape_interval}],
        },
    }
    dcgm = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": meta(cfg, f"{cfg.name}-dcgm", "monitoring", **rel),
        "spec": {
            "selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}},
            "namespaceSelector": {"matchNames": [cfg.dcgm_namespace]},
            "endpoints": [{"port": "gpu-metrics", "interval": cfg.scrape_interval, "honorLabels": True}],
        },
    }
    return [ray, vllm, gw, dcgm]


def render_stack(cfg: K8sConfig) -> list[dict[str, Any]]:
    """Every object of the stack, in apply order (namespace first)."""
    return [namespace(cfg), *rbac(cfg), rayservice(cfg), serve_pods_service(cfg), *gateway(cfg), dcgm_configmap(cfg), *monitors(cfg)]


#: Files of :func:`write_manifests`: file name -> kinds it holds.
FILES: dict[str, tuple[str, ...]] = {
    "namespace.yaml": ("Namespace",),
    "rbac.yaml": ("ServiceAccount", "Role", "RoleBinding"),
    "rayservice.yaml": ("RayService",),
    "gateway.yaml": ("ConfigMap", "Deployment", "Service"),
    "monitoring.yaml": ("PodMonitor", "ServiceMonitor"),
}


def _file_of(obj: dict[str, Any]) -> str:
    comp = obj["metadata"]["labels"].get("app.kubernetes.io/component")
    if comp == "dcgm":
        return "monitoring.yaml"
    if obj["kind"] == "Service" and comp == "ray":
        return "rayservice.yaml"
    for f, kinds in FILES.items():
        if obj["kind"] in kinds:
            return f
    return "other.yaml"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (nginx.conf, Serve's config, the DCGM CSV) as literal blocks."""


def _str(dumper: yaml.SafeDumper, s: str) -> yaml.ScalarNode:
    style = "|" if "\n" in s and not any(line != line.rstrip() for line in s.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", s, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(objs: list[dict[str, Any]]) -> str:
    """``objs`` as a multi-document YAML string (key order kept, multi-line strings as ``|`` blocks)."""
    return yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, width=200)


#: First line of every file :func:`write_manifests` writes (followed by the settings).
_HEADER = "# rendered by llmrca k8s render"


def write_manifests(objs: list[dict[str, Any]], out: str | Path, cfg: K8sConfig | None = None) -> list[Path]:
    """Write ``objs`` as multi-document YAML files and a ``kustomization.yaml`` listing them; returns the paths.

    Objects keep their order within a file; files follow :data:`FILES`.  Creates ``out``.  A manifest an earlier
    render left in ``out`` that this one does not write (a file whose first line is this function's header: a
    render with other settings) is removed, so the folder holds what ``kustomization.yaml`` lists; other files
    are left alone.  Raises OSError when ``out`` cannot be written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stale = rendered_manifests(out)
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in objs:
        groups.setdefault(_file_of(o), []).append(o)
    paths = []
    header = _HEADER + (f" ({json.dumps(cfg.to_dict(), sort_keys=True)})" if cfg else "") + "\n"
    order = [f for f in [*FILES, "other.yaml"] if f in groups]
    for f in order:
        p = out / f
        p.write_text(header + to_yaml(groups[f]))
        paths.append(p)
    kust: dict[str, Any] = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": order}
    if cfg is not None:
        kust["labels"] = [{"pairs": {STACK_LABEL: cfg.name}, "includeSelectors": False}]
    k = out / "kustomization.yaml"
    k.write_text(yaml.safe_dump(kust, sort_keys=False))
    paths.append(k)
    for p in stale - set(paths):
        p.unlink(missing_ok=True)
    return paths


def rendered_manifests(out: str | Path) -> set[Path]:
    """The ``*.yaml`` files in ``out`` that :func:`write_manifests` wrote (first line: its header), with
    ``kustomization.yaml`` when one of them is there; empty for a folder that does not exist."""
    out = Path(out)
    if not out.is_dir():
        return set()
    found = set()
    for p in out.glob("*.yaml"):
        try:
            with p.open(encoding="utf-8", errors="replace") as fh:
                first = fh.readline()
        except OSError:
            continue
        if first.startswith(_HEADER):
            found.add(p)
    if found and (out / "kustomization.yaml").is_file():
        found.add(out / "kustomization.yaml")
    return found
