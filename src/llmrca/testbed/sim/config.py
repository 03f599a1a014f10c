"""Configuration of the simulated serving stack (every number in one place).

Defaults describe the paper's stack (§4.3): NGINX gateway -> Ray Serve head
(proxy + one replica) -> 3 Ray worker pods (one replica each), pods with 8 CPU,
16 GiB and one A100 80GB PCIe, Falcon-H1-7B-class model, 5 QPS open loop,
512 prompt / 256 output tokens on average.  CPU-side costs are chosen so that
the engine's CPU work is a visible share of a decode step (vLLM's scheduler,
detokenizer and streaming run in Python on the pod's CPUs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmrca.config import Config, ConfigError

_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """A UserWarning the first time ``message`` comes up in this process (a campaign validates its config per case)."""
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, stacklevel=3)


@dataclass
class SimConfig(Config):
    # -- topology -------------------------------------------------------------
    """Every number of the simulated stack (units in the field comments); see the module docstring for the defaults' source."""
    n_workers: int = 3  # Ray worker pods; the head pod hosts one more replica
    pod_cpus: float = 8.0  # cgroup CPU quota of every pod (cores)
    pod_memory_gib: float = 16.0  # cgroup memory limit of every pod
    # -- workload ---------------------------------------------------------------
    qps: float = 5.0
    arrivals: str = "constant"  # "constant" (the paper's Locust setup) or "poisson"
    prompt_tokens_mean: float = 512.0
    output_tokens_mean: float = 256.0
    length_cv: float = 0.6  # coefficient of variation of both lengths (lognormal; chat prompts vary widely)
    max_ongoing_requests: int = 500  # Ray Serve's per-replica cap
    request_timeout_s: float = 60.0  # gateway's proxy_read_timeout: older requests fail with 504
    # -- simulation ---------------------------------------------------------------
    tick_s: float = 0.2  # time step of the fluid engine model (first tokens and completions are interpolated inside it)
    start_epoch_s: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z; cases are placed after it
    # -- engine (vLLM) --------------------------------------------------------------
    max_num_seqs: int = 256
    step_cpu_s: float = 0.004  # scheduler + launch work per engine step on the CPU
    token_cpu_s: float = 0.00015  # detokenize + stream one output token
    prompt_token_cpu_s: float = 0.00002  # tokenize one prompt token
    engine_threads: float = 2.0  # runnable engine threads competing for the pod's CPU
    base_cpu_cores: float = 0.35  # raylet, metrics agent, Serve replica loop at idle
    head_extra_cpu_cores: float = 0.4  # GCS, Serve controller, dashboard on the head
    proxy_cpu_per_token_s: float = 0.00002  # Serve proxy relaying a streamed chunk
    gateway_cpu_per_request_s: float = 0.002
    gateway_cpu_per_token_s: float = 0.000005
    # -- memory -------------------------------------------------------------------
    pod_base_memory_gib: float = 5.5  # raylet, object store pages in use, agents
    head_extra_memory_gib: float = 1.5  # GCS, Serve controller, dashboard
    actor_memory_gib: float = 5.0  # vLLM replica actor RSS (torch, CUDA context, tokenizer)
    request_memory_bytes: float = 2.0e5  # CPU memory per in-flight request
    restart_delay_s: float = 12.0  # actor death -> Serve controller starts a new replica
    load_time_s: float = 12.0  # model load (from the node cache) until the new replica is healthy
    death_detect_s: float = 1.0  # router notices a dead replica
    dead_replica_retry_s: float = 0.5  # a call to a dead actor fails; the router backs off and retries elsewhere
    reclaim_stall: float = 1.5  # CPU work slowdown at the memory limit (direct reclaim), from 85 % of the limit
    # -- network ------------------------------------------------------------------
    bytes_per_prompt_token: float = 4.2  # JSON-encoded prompt
    request_overhead_bytes: float = 900.0  # HTTP headers, JSON envelope
    bytes_per_output_token: float = 160.0  # one SSE chunk per token
    background_bytes_s: float = 6000.0  # heartbeats, GCS, health checks per pod
    hop_latency_s: float = 0.002  # one in-cluster hop
    # where requests enter Ray Serve: "every-pod" (KubeRay's serve service selects every pod whose Serve proxy
    # is up, label ray.io/serve=true, and Serve runs a proxy on every node by default, proxy_location EveryNode;
    # kube-proxy picks one per connection at random; the paper's Fig. 4) or "head" (one proxy on the head relays
    # every request; the simulator's default before its fourth pass, docs/simulator.md)
    ingress: str = "every-pod"
    # a proxy routes to a replica whose engine is on its own pod unless that one is dead or at max_ongoing_requests
    # (acts only with every-pod).  Off: Ray Serve's RAY_SERVE_PROXY_PREFER_LOCAL_NODE_ROUTING prefers a *Serve
    # replica* on the proxy's node, but the artifact's VLLMDeployment (tensor parallelism 1) is bound without
    # resources and runs its engine with worker_use_ray, so the GPU worker is another Ray actor: the replica a
    # proxy prefers does not put the request on that pod's GPU (rca-llm vllm_deployment.py)
    proxy_local_routing: bool = False
    # Ray Serve's power-of-two router asks both candidates for their queue length and takes an answer only if it
    # arrives within RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S (0.1 s, doubling per retry up to 1 s); answers are
    # cached for RAY_SERVE_QUEUE_LENGTH_CACHE_TIMEOUT_S (10 s).  A replica whose replies are delayed stops
    # getting new requests once its cache entry expires
    router_probe_deadline_s: float = 0.1
    router_probe_max_deadline_s: float = 1.0
    router_queue_cache_s: float = 10.0
    # the gateway keeps connections to the serve service open (nginx `keepalive` in the upstream block); off
    # by default as in nginx: HTTP/1.0 and a new connection per request, so a delay on the pod that accepts it
    # also delays the handshake's SYN-ACK
    upstream_keepalive: bool = False
    # what an eBPF tracer (DeepFlow, paper §4.2) records of the Serve proxy's call to the replica actor:
    # "missing" (Ray's actor calls are gRPC on HTTP/2 channels opened when the actor starts; without the
    # connection preface and the HPACK state of the channel the tracer cannot parse them, and they bypass
    # the mesh, §5.5) or "linked" (a replica span per request, as an instrumented stack would record)
    trace_actor_calls: str = "missing"
    # the service a Serve proxy's span names: "service" (the artifact's spans come from OpenTelemetry SDKs,
    # nginx's `otel_service_name` and Ray's / vLLM's OTLP exporters, which name the RayService, not the pod
    # whose proxy handled the request: every such span maps to the head) or "pod" (an eBPF tracer's pod name)
    trace_service_names: str = "service"
    # -- control plane ----------------------------------------------------------------
    operator_requeue_s: float = 2.0  # KubeRay RayService controller's ServiceDefaultRequeueDuration (one reconcile log line each)
    operator_reconcile_s: float = 0.05  # mean duration of one reconcile (lognormal, CV 1): the requeue drifts by it
    # -- observation ----------------------------------------------------------------
    scrape_interval_s: float = 5.0
    rate_window_s: float = 30.0  # the [w] of rate() and histogram_quantile()
    noise: float = 0.02  # relative measurement noise of gauges and rates
    util_noise_pct: float = 3.0  # sd of a DCGM utilisation sample (percentage points; ~1-s samples of a bursty load)
    scrape_loss_under_delay: float = 0.3  # chance a delayed scrape of the target is lost
    vllm_log_interval_s: float = 10.0
    # -- beyond the paper's series (faults of issue 16) ---------------------------------
    gpu_ambient_c: float = 32.0  # GPU temperature at zero power draw (inlet air + heat sink offset)
    gpu_c_per_w: float = 0.11  # steady-state temperature rise per watt (an A100 PCIe at ~285 W runs ~63 C)
    node_system_cores: float = 0.6  # kubelet, container runtime, node exporters on every node (cores)
    # the basic set as the paper's exporter queried Prometheus (observe.artifact_basic): "artifact" or
    # "direct" (read like the extended set).  rca-llm export_rca_data.py: cpu = rate(cpu[1m]),
    # mem = rate(working_set[1m]) / 1000 (rate() of a gauge), over Prometheus' own scrapes
    basic_queries: str = "artifact"
    # the basic set's latency-50 / latency-90 as the exporter aggregated the mesh (observe.artifact_latency):
    # per component the sum of the quantiles of every mesh edge it is on; a pod on no edge has none (rca-llm
    # export_rca_data.py; False: each component's own latency, as the extended set reads it)
    artifact_latency: bool = True
    prom_scrape_s: float = 30.0  # Prometheus' scrape interval of cAdvisor (kube-prometheus-stack default; the PodMonitors set none)
    # -- working set (cAdvisor: usage - inactive file) --------------------------------------
    log_bytes_per_request: float = 200.0  # log line a pod writes per request it proxies / serves (page cache of an emptyDir log file)
    # the serving replica logs each request it receives whole (rca-llm vllm_deployment.py:
    # logger.info(f"Request: {request}") on Ray Serve's "ray.serve" logger): the ChatCompletionRequest's repr,
    # ~1.2 kB of fields and the log prefix, plus the prompt's text (4 bytes per token: the artifact's load generator,
    # llm-benchmark/main.py, pads its prompt with "Pad ", one token each);
    # Ray Serve writes a replica's records to its log file and, by default (RAY_SERVE_LOG_TO_STDERR=1), to the
    # worker's stderr file too, both in the emptyDir that Fluent Bit tails: so twice that per request
    # (0 and 0: only log_bytes_per_request on the replica's pod, as before)
    replica_request_log_bytes: float = 2400.0
    replica_log_bytes_per_prompt_token: float = 8.0
    agent_log_bytes_s: float = 2000.0  # raylet / dashboard agent logs per Ray pod (bursty; twice on the head); the operator's Go heap
    # rate at which the kernel ages a pod's active page cache to inactive (working set drops); 0 by default: pages
    # are aged only under reclaim, and these pods stay far below their limits (the earlier, tuned value: 1/120)
    ws_trim_rate_hz: float = 0.0
    # scrape-to-scrape jitter of the cgroup's charged memory (std, bytes; 0: none): memcg charges pages to a cgroup in
    # per-CPU batches of 64 pages (256 KiB) and usage includes the batches held, so the working set cAdvisor reads
    # moves by up to ±256 KiB between scrapes whatever the processes do (benchmarks/working_set_drops.py: std of the
    # 30-s change 170-204 KiB for nginx and a Python server, so ~128 KiB per sample)
    ws_jitter_bytes: float = 131072.0
    # on a Ray pod (the head and the workers) its dozen processes (GCS, raylet, dashboard and its agents, the Serve
    # proxy, controller and replica: Python heaps that grow and return arenas) add their own movement (std, bytes):
    # benchmarks/ray_working_set.py (a real Ray Serve node in one memory cgroup, 5 requests/s, two runs) measured a
    # fall between 30-s scrapes in 25-39 % of the pairs once warm, the 30-s change's robust std 1.0-1.1 MiB (~760 KiB
    # per sample) and a median creep of 9-36 KiB/s.  Off by default: with it (757760, and 20000 below) the paper's
    # BARO could not find 77 % of the memory leaks, as it did (docs/simulator.md, fourth pass)
    ray_heap_jitter_bytes: float = 0.0
    # and its working set creeps up (heap growth, bytes/s), measured with the jitter above
    ray_heap_growth_bytes_s: float = 0.0

    @classmethod
    def non_default(cls, options: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``{option: (value, default)}`` for the options of ``options`` (a ``to_dict()``, e.g. a dataset manifest's
        ``parameters.sim``) that differ from today's defaults; names this version does not have are left out."""
        default = cls().to_dict()
        return {k: (v, default[k]) for k, v in options.items() if k in default and v != default[k]}

    def validate(self) -> SimConfig:
        """Return self, or raise ConfigError listing every out-of-range option."""
        import dataclasses
        import math

        # every numeric option must hold a finite number (an empty --set value arrives as None, "nan" as NaN)
        bad = [
            f"{f.name} must be a finite number (got " + ("an empty value" if getattr(self, f.name) is None else repr(getattr(self, f.name))) + ")"
            for f in dataclasses.fields(self)
            if isinstance(f.default, int | float) and not isinstance(f.default, bool)
            and not (isinstance(getattr(self, f.name), int | float) and not isinstance(getattr(self, f.name), bool)
                     and math.isfinite(getattr(self, f.name)))
        ]
        if bad:
            raise ConfigError("SimConfig: " + "; ".join(bad))
        problems = []
        if self.n_workers < 1:
            problems.append(f"n_workers must be >= 1 (got {self.n_workers})")
        if self.qps <= 0:
            problems.append(f"qps must be > 0 (got {self.qps})")
        if self.arrivals not in ("constant", "poisson"):
            problems.append(f"arrivals must be 'constant' or 'poisson' (got {self.arrivals!r})")
        if self.ingress not in ("every-pod", "head"):
            problems.append(f"ingress must be 'every-pod' or 'head' (got {self.ingress!r})")
        if not 0 < self.router_probe_deadline_s <= self.router_probe_max_deadline_s:
            problems.append(
                f"router_probe_deadline_s ({self.router_probe_deadline_s}) must be > 0 and <= router_probe_max_deadline_s "
                f"({self.router_probe_max_deadline_s}); raise router_probe_max_deadline_s with it"
            )
        if self.router_queue_cache_s < 0:
            problems.append(f"router_queue_cache_s must be >= 0 (got {self.router_queue_cache_s})")
        if self.ingress == "head" and (self.proxy_local_routing or self.upstream_keepalive):
            _warn_once("SimConfig: proxy_local_routing and upstream_keepalive act only with ingress='every-pod' "
                       "(with ingress='head' one proxy relays every request over kept connections)")
        if self.basic_queries == "direct" and (self.ray_heap_jitter_bytes or self.ray_heap_growth_bytes_s):
            _warn_once("SimConfig: ray_heap_jitter_bytes and ray_heap_growth_bytes_s act only with basic_queries='artifact' "
                       "(the exporter's rate() of the working set; 'direct' reads the working set itself)")
        if self.trace_service_names not in ("service", "pod"):
            problems.append(f"trace_service_names must be 'service' or 'pod' (got {self.trace_service_names!r})")
        if self.trace_actor_calls not in ("missing", "linked"):
            problems.append(f"trace_actor_calls must be 'missing' or 'linked' (got {self.trace_actor_calls!r})")
        if self.operator_requeue_s <= 0 or self.operator_reconcile_s < 0:
            problems.append("operator_requeue_s must be > 0 and operator_reconcile_s >= 0")
        if self.basic_queries not in ("artifact", "direct"):
            problems.append(f"basic_queries must be 'artifact' or 'direct' (got {self.basic_queries!r})")
        if self.prom_scrape_s < self.scrape_interval_s:
            problems.append(f"prom_scrape_s ({self.prom_scrape_s}) must be >= scrape_interval_s ({self.scrape_interval_s})")
        for name in ("ws_trim_rate_hz", "ws_jitter_bytes", "ray_heap_jitter_bytes", "ray_heap_growth_bytes_s", "log_bytes_per_request", "agent_log_bytes_s", "replica_request_log_bytes", "replica_log_bytes_per_prompt_token"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (got {getattr(self, name)})")
        if not 0 <= self.noise <= 1 or not 0 <= self.scrape_loss_under_delay <= 1:
            problems.append(f"noise and scrape_loss_under_delay must be fractions in 0..1 (got {self.noise}, {self.scrape_loss_under_delay})")
        if self.ray_heap_growth_bytes_s > 2**20:
            problems.append(f"ray_heap_growth_bytes_s must be at most 1 MiB/s (got {self.ray_heap_growth_bytes_s}; the measured creep is "
                            "9-36 KiB/s, and faster growth would fill a pod's memory limit within hours without the OOM it would cause)")
        for name in ("ws_jitter_bytes", "ray_heap_jitter_bytes"):
            if getattr(self, name) > 2**30:
                problems.append(f"{name} must be at most 1 GiB (got {getattr(self, name)}; the measured value is {dict(ws_jitter_bytes=131072, ray_heap_jitter_bytes=757760)[name]})")
        if not 0.01 <= self.tick_s <= 1.0:
            problems.append(f"tick_s must be in 0.01..1 s (got {self.tick_s})")
        if self.scrape_interval_s < self.tick_s or self.scrape_interval_s <= 0:
            problems.append(f"scrape_interval_s must be >= tick_s ({self.tick_s}) (got {self.scrape_interval_s})")
        elif self.tick_s > 0 and abs(round(self.scrape_interval_s / self.tick_s) * self.tick_s - self.scrape_interval_s) > 1e-9:
            problems.append(f"scrape_interval_s ({self.scrape_interval_s}) must be a multiple of tick_s ({self.tick_s})")
        if self.rate_window_s < self.scrape_interval_s:
            problems.append(f"rate_window_s ({self.rate_window_s}) must be >= scrape_interval_s ({self.scrape_interval_s})")
        if self.prompt_tokens_mean < 1 or self.output_tokens_mean < 1:
            problems.append("prompt_tokens_mean and output_tokens_mean must be >= 1")
        if problems:
            raise ConfigError("SimConfig: " + "; ".join(problems))
        return self
