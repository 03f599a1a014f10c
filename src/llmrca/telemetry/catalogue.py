"""The metric catalogue: names of the ``basic`` and ``extended`` metric sets.

Every backend (simulator, local processes, Kubernetes) emits these columns
and every method reads them, so real data drops in.  A column is
``<component>_<metric>``.  Counters appear as per-second rates over the
scrape window (suffix ``:rate``); histograms as quantiles computed from
buckets, as Prometheus' ``histogram_quantile`` does (suffix ``:p50`` /
``:p90`` / ``:p99``).  ``promql`` is the query the collector issues against a
real Prometheus, with ``{sel}`` standing for the component's label selector and ``{w}`` for the rate window.

Units: cpu in cores, memory in bytes, network in bytes/s, latency in
seconds, power in W, clocks in MHz, framebuffer in MiB, utilisation in %.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrca.model import Topology


@dataclass(frozen=True)
class MetricDef:
    name: str  # metric part of the column name
    promql: str  # template; {sel} is the component's label selector
    unit: str
    where: str  # "all", "serving" (head + workers), "gateway", "head"
    description: str


def _containers(query: str) -> str:
    """``query`` over the pod's containers (``image!=""``) when cAdvisor reports them, else over every series it selects.

    cAdvisor reports a pod's cgroup (``container=""``, ``image=""``: the sum
    of its containers) beside each container, so summing every series of a pod
    counts its CPU and memory twice; the kubernetes-mixin recording rules
    select ``image!=""`` for that reason.  Where the ``image`` label was
    relabelled away (or a cAdvisor does not set it), the containers are the
    series with a ``container`` (kubelet ≥ 1.16) or ``container_name`` (older)
    label that is neither empty (the pod's cgroup) nor ``POD`` (the pause
    container).  Exporters that report one series per pod with none of these
    labels (llmrca's local testbed) fall to the last form (``a or b``: ``b``
    only where ``a`` has no value).
    """
    forms = ('{{{sel},image!=""}}', '{{{sel},container!~"|POD"}}', '{{{sel},container_name!~"|POD"}}')
    return " or ".join([*(query.replace("{{{sel}}}", f) for f in forms), query])


def _inbound(query: str) -> str:
    """``query`` over the series the component's proxy reports as the *destination* when there are such, else over
    every series it selects.

    Istio's sidecar of a pod reports each request twice in the mesh: as ``reporter="destination"`` for the
    requests into the pod and as ``reporter="source"`` for the pod's own calls out (Istio docs, "Istio
    Standard Metrics": the ``reporter`` label); a pod's selector picks both, so summing them mixes the latency
    of requests into the component with that of its calls to others (the gateway's own latency with the
    replicas' behind it).  An ambient waypoint (``reporter="waypoint"``) or an exporter without the label falls
    to the second form (``a or b``: ``b`` only where ``a`` has no value).
    """
    return query.replace("{{{sel}}}", '{{{sel},reporter="destination"}}') + " or " + query


#: The paper's basic set: per component cpu, memory, network, gpu utilisation
#: and p50/p90 latency from the service mesh (RCAEval names).
BASIC: tuple[MetricDef, ...] = (
    MetricDef("cpu", _containers("sum(rate(container_cpu_usage_seconds_total{{{sel}}}[{w}]))"), "cores", "all", "CPU used"),
    MetricDef("mem", _containers("sum(container_memory_working_set_bytes{{{sel}}})"), "bytes", "all", "working-set memory"),
    MetricDef("net-rx", "sum(rate(container_network_receive_bytes_total{{{sel}}}[{w}]))", "B/s", "all", "bytes received"),
    MetricDef("net-tx", "sum(rate(container_network_transmit_bytes_total{{{sel}}}[{w}]))", "B/s", "all", "bytes sent"),
    MetricDef("gpu", "avg(DCGM_FI_DEV_GPU_UTIL{{{sel}}})", "%", "serving", "GPU utilisation"),
    MetricDef(
        "latency-50",
        _inbound("histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{sel}}}[{w}]))) / 1000"),
        "s",
        "all",
        "median latency of requests into the component (mesh)",
    ),
    MetricDef(
        "latency-90",
        _inbound("histogram_quantile(0.9, sum by (le) (rate(istio_request_duration_milliseconds_bucket{{{sel}}}[{w}]))) / 1000"),
        "s",
        "all",
        "p90 latency of requests into the component (mesh)",
    ),
)


def _hq(q: float, name: str) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({name}_bucket{{{{{{sel}}}}}}[{{w}}])))"


def _on_node(node_expr: str) -> str:
    """Sum of a node-exporter expression over the node the component's pod runs on (``kube_pod_info{{sel}}``'s ``node``).

    node-exporter series name their node in one of two ways, tried in this
    order (``a or b``: ``b`` only where ``a`` has no value):

    * through the exporter's own pod: the Prometheus Operator's ServiceMonitor
      (kube-prometheus-stack and kube-prometheus) puts ``namespace`` and
      ``pod`` of the node-exporter pod on every series, and ``kube_pod_info``
      of that pod gives its ``node`` (the kubernetes-mixin recording rule
      ``node_namespace_pod:kube_pod_info:`` joins the same way);
    * by ``instance`` = the node's name (kube-prometheus relabels
      ``__meta_kubernetes_pod_node_name`` to ``instance``).

    ``kube_pod_info``'s own ``instance`` is kube-state-metrics' address, never the node's.
    """
    return (
        f"sum({node_expr} * on(namespace, pod) group_left(node) max by (namespace, pod, node) (kube_pod_info{{{{node!=\"\"}}}})"
        f" * on(node) group_left() max by (node) (kube_pod_info{{{{{{sel}}}}}}))"
        f" or sum({node_expr} * on(instance) group_left() max by (instance) "
        f'(label_replace(kube_pod_info{{{{{{sel}}}}}}, "instance", "$1", "node", "(.*)")))'
    )


#: Extra columns of the extended set (the extended set is BASIC + EXTENDED).
EXTENDED: tuple[MetricDef, ...] = (
    # vLLM engine (per replica)
    MetricDef("vllm:num_requests_running", "sum(vllm:num_requests_running{{{sel}}})", "requests", "serving", "requests in the batch"),
    MetricDef("vllm:num_requests_waiting", "sum(vllm:num_requests_waiting{{{sel}}})", "requests", "serving", "requests queued in the engine"),
    MetricDef("vllm:kv_cache_usage_perc", "avg(vllm:kv_cache_usage_perc{{{sel}}})", "fraction", "serving", "KV-cache use (0..1)"),
    MetricDef("vllm:prompt_tokens_total:rate", "sum(rate(vllm:prompt_tokens_total{{{sel}}}[{w}]))", "tokens/s", "serving", "prefill tokens/s"),
    MetricDef("vllm:generation_tokens_total:rate", "sum(rate(vllm:generation_tokens_total{{{sel}}}[{w}]))", "tokens/s", "serving", "decode tokens/s"),
    MetricDef("vllm:num_preemptions_total:rate", "sum(rate(vllm:num_preemptions_total{{{sel}}}[{w}]))", "1/s", "serving", "preemptions/s"),
    MetricDef("vllm:request_success_total:rate", "sum(rate(vllm:request_success_total{{{sel}}}[{w}]))", "1/s", "serving", "finished requests/s"),
    MetricDef("vllm:time_to_first_token_seconds:p50", _hq(0.5, "vllm:time_to_first_token_seconds"), "s", "serving", "TTFT p50 (server side, excludes queueing)"),
    MetricDef("vllm:time_to_first_token_seconds:p90", _hq(0.9, "vllm:time_to_first_token_seconds"), "s", "serving", "TTFT p90"),
    MetricDef("vllm:inter_token_latency_seconds:p50", _hq(0.5, "vllm:inter_token_latency_seconds"), "s", "serving", "inter-token latency p50"),
    MetricDef("vllm:inter_token_latency_seconds:p90", _hq(0.9, "vllm:inter_token_latency_seconds"), "s", "serving", "inter-token latency p90"),
    MetricDef(
        "vllm:inter_token_latency_seconds:mean",
        "sum(rate(vllm:inter_token_latency_seconds_sum{{{sel}}}[{w}])) / sum(rate(vllm:inter_token_latency_seconds_count{{{sel}}}[{w}]))",
        "s",
        "serving",
        "mean inter-token latency (from _sum/_count; finer than the coarse buckets)",
    ),
    MetricDef("vllm:e2e_request_latency_seconds:p90", _hq(0.9, "vllm:e2e_request_latency_seconds"), "s", "serving", "end-to-end latency p90"),
    MetricDef("vllm:request_queue_time_seconds:p90", _hq(0.9, "vllm:request_queue_time_seconds"), "s", "serving", "engine queue time p90"),
    # Ray Serve
    MetricDef("ray_serve_deployment_replica_starts_total:rate", "sum(rate(ray_serve_deployment_replica_starts_total{{{sel}}}[{w}]))", "1/s", "serving", "replica (actor) starts"),
    MetricDef("ray_serve_deployment_replica_healthy", "min(ray_serve_deployment_replica_healthy{{{sel}}})", "0/1", "serving", "replica healthy"),
    MetricDef("ray_serve_deployment_error_counter_total:rate", "sum(rate(ray_serve_deployment_error_counter_total{{{sel}}}[{w}]))", "1/s", "serving", "replica errors/s"),
    MetricDef("ray_serve_num_router_requests_total:rate", "sum(rate(ray_serve_num_router_requests_total{{{sel}}}[{w}]))", "1/s", "head", "requests routed/s"),
    MetricDef("ray_serve_deployment_queued_queries", "sum(ray_serve_deployment_queued_queries{{{sel}}})", "requests", "head", "queries queued in the router"),
    # DCGM (per GPU)
    MetricDef("DCGM_FI_DEV_POWER_USAGE", "avg(DCGM_FI_DEV_POWER_USAGE{{{sel}}})", "W", "serving", "GPU power draw"),
    MetricDef("DCGM_FI_DEV_POWER_MGMT_LIMIT", "avg(DCGM_FI_DEV_POWER_MGMT_LIMIT{{{sel}}})", "W", "serving", "GPU power limit (opt-in upstream)"),
    MetricDef("DCGM_FI_DEV_SM_CLOCK", "avg(DCGM_FI_DEV_SM_CLOCK{{{sel}}})", "MHz", "serving", "SM clock"),
    MetricDef("DCGM_FI_DEV_MEM_COPY_UTIL", "avg(DCGM_FI_DEV_MEM_COPY_UTIL{{{sel}}})", "%", "serving", "memory copy utilisation"),
    MetricDef("DCGM_FI_DEV_FB_USED", "avg(DCGM_FI_DEV_FB_USED{{{sel}}})", "MiB", "serving", "framebuffer used"),
    MetricDef("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "avg(DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{sel}}})", "fraction", "serving", "tensor pipe active"),
    MetricDef("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "max(DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{{{sel}}})", "bitmask", "serving", "clock event reasons (0x4 = SW power cap)"),
    # cAdvisor extras
    MetricDef(
        "container_cpu_cfs_throttled_seconds_total:rate",
        _containers("sum(rate(container_cpu_cfs_throttled_seconds_total{{{sel}}}[{w}]))"),
        "s/s",
        "all",
        "CFS throttled time",
    ),
    MetricDef("container_memory_failcnt:rate", _containers("sum(rate(container_memory_failcnt{{{sel}}}[{w}]))"), "1/s", "all", "memory limit hits"),
    MetricDef("container_spec_memory_limit_bytes", "max(container_spec_memory_limit_bytes{{{sel}}})", "bytes", "all", "memory limit"),
    # gateway
    MetricDef(
        "nginx_ingress_controller_request_duration_seconds:p50",
        _hq(0.5, "nginx_ingress_controller_request_duration_seconds"),
        "s",
        "gateway",
        "gateway request duration p50",
    ),
    MetricDef(
        "nginx_ingress_controller_request_duration_seconds:p90",
        _hq(0.9, "nginx_ingress_controller_request_duration_seconds"),
        "s",
        "gateway",
        "gateway request duration p90",
    ),
    MetricDef(
        "nginx_ingress_controller_requests:rate",
        "sum(rate(nginx_ingress_controller_requests{{{sel}}}[{w}]))",
        "1/s",
        "gateway",
        "gateway requests/s",
    ),
    MetricDef(
        "nginx_ingress_controller_requests_5xx:rate",
        'sum(rate(nginx_ingress_controller_requests{{{sel},status=~"5.."}}[{w}]))',
        "1/s",
        "gateway",
        "gateway 5xx responses/s",
    ),
    # beyond the paper (faults of issue 16): accelerator health, CPU contention, packet loss
    MetricDef("DCGM_FI_DEV_GPU_TEMP", "avg(DCGM_FI_DEV_GPU_TEMP{{{sel}}})", "C", "serving", "GPU temperature"),
    MetricDef(
        "DCGM_FI_DEV_THERMAL_VIOLATION:rate",
        "sum(rate(DCGM_FI_DEV_THERMAL_VIOLATION{{{sel}}}[{w}]))",
        "us/s",
        "serving",
        "time the clocks were held back by temperature, per second",
    ),
    MetricDef("DCGM_FI_DEV_XID_ERRORS", "max(DCGM_FI_DEV_XID_ERRORS{{{sel}}})", "code", "serving", "last Xid error of the GPU (0: none)"),
    MetricDef(
        "container_pressure_cpu_waiting_seconds_total:rate",
        _containers("sum(rate(container_pressure_cpu_waiting_seconds_total{{{sel}}}[{w}]))"),
        "s/s",
        "all",
        "CPU pressure (PSI some): time runnable threads waited for a CPU, per second",
    ),
    MetricDef(
        "node_cpu_seconds_total:rate",
        _on_node('rate(node_cpu_seconds_total{{mode!="idle"}}[{w}])'),
        "cores",
        "all",
        "CPU used on the component's node (every tenant)",
    ),
    MetricDef(
        "node_netstat_Tcp_RetransSegs:rate",
        _on_node("rate(node_netstat_Tcp_RetransSegs{{}}[{w}])"),
        "1/s",
        "all",
        "TCP segments retransmitted on the component's node",
    ),
)

#: Columns a real Prometheus gives beyond the simulator's catalogue (the collector asks for them with the
#: extended set): the mean request latency into each component as the mesh measures it (Istio standard
#: metric ``istio_request_duration_milliseconds``) and the engine's own mean end-to-end latency, both from
#: a histogram's ``_sum`` / ``_count``.  The quantiles above are interpolated inside one bucket (Istio's
#: default buckets jump 2.5 s -> 5 s -> 10 s), so a whole second of added delay on ~3 s LLM requests can
#: leave p50 and p90 unchanged, while the mean moves by that second (Prometheus docs, "Histograms and
#: summaries": a quantile's error is bounded by its bucket's width).  Mesh mean minus engine mean is the
#: network's share of a request.
PROMETHEUS_EXTRA: tuple[MetricDef, ...] = (
    MetricDef(
        "latency",
        _inbound("sum(rate(istio_request_duration_milliseconds_sum{{{sel}}}[{w}])) / sum(rate(istio_request_duration_milliseconds_count{{{sel}}}[{w}])) / 1000"),
        "s",
        "all",
        "mean latency of requests into the component (mesh, from _sum/_count; finer than the buckets)",
    ),
    MetricDef(
        "vllm:e2e_request_latency_seconds:mean",
        "sum(rate(vllm:e2e_request_latency_seconds_sum{{{sel}}}[{w}])) / sum(rate(vllm:e2e_request_latency_seconds_count{{{sel}}}[{w}]))",
        "s",
        "serving",
        "mean engine end-to-end latency (from _sum/_count): the mesh mean minus it is the network's share",
    ),
)

BASIC_NAMES: tuple[str, ...] = tuple(m.name for m in BASIC)
EXTENDED_NAMES: tuple[str, ...] = tuple(m.name for m in EXTENDED)

#: Component names of the paper's stack (the simulator and local testbed use them).
GATEWAY = "nginx-gateway"
HEAD = "ray-head"
OPERATOR = "kuberay-operator"


def worker_name(i: int) -> str:
    """Name of Ray worker ``i`` (1-based): ``ray-worker-1``."""
    return f"ray-worker-{i}"


def paper_topology(n_workers: int = 3, ingress: str = "head") -> Topology:
    """The serving stack's call graph: the gateway, the head, ``ray-worker-1..n`` and the operator.

    ``n_workers``: Ray worker pods (>= 0); the head hosts one more replica.
    Nodes are ``(gateway, head, ray-worker-1..n, operator)``; edges point from
    caller to callee.  ``ingress`` picks the layout:

    * ``"head"`` -- the paper's Fig. 1: gateway -> head -> workers (the head's
      proxy relays every request to a replica);
    * ``"every-pod"`` -- the paper's Fig. 4, as the artifact's mesh recorded
      it: the gateway calls every serving pod (NGINX proxies to the Serve
      service, which has a proxy on every pod) and the operator calls the
      head (its dashboard API).  Ray's own actor calls between pods bypass
      the mesh (paper §5.5), so there is no head -> worker edge; this is the
      graph rca-llm's ``export_rca_data.py`` ``mpg()`` builds from
      ``istio_requests_total{reporter="waypoint"}`` (its service-to-host
      edges are left out: the cases carry no node metrics).

    Raises ValueError for another ``ingress``.  It lives beside the component
    names (not in ``testbed``) because methods, fixtures and every backend
    share it.
    """
    workers = [worker_name(i) for i in range(1, n_workers + 1)]
    nodes = (GATEWAY, HEAD, *workers, OPERATOR)
    if ingress == "head":
        edges = [(GATEWAY, HEAD)] + [(HEAD, w) for w in workers]
    elif ingress == "every-pod":
        edges = [(GATEWAY, HEAD)] + [(GATEWAY, w) for w in workers] + [(OPERATOR, HEAD)]
    else:
        raise ValueError(f"ingress must be 'head' or 'every-pod', got {ingress!r}")
    return Topology(nodes=nodes, edges=tuple(edges), entry=GATEWAY)


def is_serving(component: str) -> bool:
    """Whether a component hosts a model replica (head and workers)."""
    return component == HEAD or component.startswith("ray-worker-")
