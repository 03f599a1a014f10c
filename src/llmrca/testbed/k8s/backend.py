"""The Kubernetes backend of ``llmrca campaign --backend k8s`` (:class:`llmrca.testbed.base.Backend`).

One case on a real cluster, on the wall clock (``start_time`` from the campaign is ignored):

1. apply the rendered stack once (``apply_stack``, default on) and wait until the RayService is Ready and
   every Ray pod and the gateway are ready (this is also the cooldown check of every later case);
2. open-loop load at the gateway (:class:`llmrca.load.LoadRunner`, the paper's 5 QPS, 512 prompt and
   256 output tokens); the gateway URL is the user's (``k8s.gateway_url``), so a non-loopback URL needs
   ``--allow-remote`` as for ``llmrca load``;
3. warm-up, the normal window, the fault (the ``K8s...`` classes of :mod:`llmrca.faults` through
   :func:`llmrca.testbed.injection.inject`, removed however the block ends), the tail;
4. the case collected from the cluster's Prometheus (``k8s.prometheus_url``) with
   :func:`llmrca.collect.collect_case`, one selector ``namespace="...",pod="..."`` per component
   (:meth:`K8sStack.selectors`); GPU series are matched by the same ``pod`` label, which the GPU
   Operator's dcgm-exporter sets (``honorLabels`` in the rendered ServiceMonitor);
5. the cooldown.

Logs and spans are not collected on this backend yet (pods' logs would need a log store).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from llmrca.config import Config, ConfigError
from llmrca.model import NO_FAULT, Case, FaultSpec, Topology
from llmrca.telemetry import HEAD
from llmrca.testbed.base import Backend, Timeline
from llmrca.testbed.injection import inject_or_wait, injector_class
from llmrca.testbed.k8s.api import ClusterApi
from llmrca.testbed.k8s.config import K8sConfig, profile_config
from llmrca.testbed.k8s.stack import K8sStack
from llmrca.testbed.topology import paper_topology


@dataclass
class K8sOptions(Config):
    """How a campaign reaches the cluster and loads it (``--set k8s.<option>=V``).

    ``gateway_url``: the gateway's URL as reachable from here (e.g. a LoadBalancer address or
    ``http://127.0.0.1:8080`` with ``kubectl port-forward svc/nginx-gateway 8080:80``);
    ``prometheus_url``: the cluster's Prometheus (likewise); ``kubeconfig`` / ``context``: as for kubectl;
    ``allow_remote``: allow a non-loopback gateway URL; ``apply_stack``: apply the rendered stack before
    the first case; ``ready_timeout_s``: wait for readiness; ``qps``, ``prompt_tokens``, ``output_tokens``,
    ``arrival``, ``timeout_s``: the load (paper: 5 QPS constant, 512 / 256 tokens); ``wait_fault_s``:
    how long a fault may take to show in Chaos Mesh's status or DCGM; ``step_s``: collection step;
    ``stack_profile``: the stack's profile (``paper`` or ``small``, as ``llmrca k8s render --profile``), which
    the stack settings given with ``--set k8s.<setting>`` then override.
    """

    gateway_url: str = ""
    prometheus_url: str = ""
    kubeconfig: str = ""
    context: str = ""
    allow_remote: bool = False
    apply_stack: bool = True
    ready_timeout_s: float = 1800.0
    qps: float = 5.0
    prompt_tokens: int = 512
    output_tokens: int = 256
    arrival: str = "constant"
    timeout_s: float = 120.0
    wait_fault_s: float = 60.0
    step_s: float = 5.0
    stack_profile: str = "paper"


#: ``collector(prometheus_url, components, start, end, inject_time, record, topology, *, step_s, meta, name)`` -> Case.
Collector = Callable[..., Case]


def _default_collector(prom_url: str, components: Mapping[str, str], start: float, end: float, inject_time: float, record: Any,
                       topology: Topology, *, step_s: float, meta: dict[str, Any], name: str) -> Case:
    from llmrca.collect import collect_case

    return collect_case(prom_url, components, start, end, inject_time, record, topology, step_s=step_s, meta=meta, name=name,
                        scrape_interval_s=step_s, rate_window_s=max(4 * step_s, 20.0))


class K8sBackend(Backend):
    """The paper's stack on a Kubernetes cluster (see the module docstring).

    ``api``: a :class:`ClusterApi` (default: :class:`~llmrca.testbed.k8s.api.KubeApi` from the options);
    ``prom``: a client with ``.query`` for the faults' read-backs (default: a PromClient on
    ``prometheus_url``); ``collector``: builds the Case (default :func:`llmrca.collect.collect_case`);
    ``sleep``: waits (tests pass a fast one).
    """

    name = "k8s"

    def __init__(self, config: K8sConfig | None = None, options: K8sOptions | None = None, *, api: ClusterApi | None = None,
                 prom: Any = None, collector: Collector | None = None, sleep: Callable[[float], None] = time.sleep,
                 progress: Callable[[str], None] | None = None) -> None:
        self.config = config or K8sConfig()
        self.options = options or K8sOptions()
        self._api = api
        self._prom = prom
        self.collector = collector or _default_collector
        self.sleep = sleep
        self.say = progress or (lambda m: None)
        self._applied = False

    @classmethod
    def from_options(cls, *, workers: int | None, qps: float | None, scrape_interval_s: float | None,
                     params: Mapping[str, Any] | None = None) -> K8sBackend:
        """Split ``params`` into :class:`K8sConfig` and :class:`K8sOptions` fields; raises ConfigError for an unknown one or a missing URL."""
        params = dict(params or {})
        opt_keys = {f.name for f in fields(K8sOptions)}
        cfg_keys = {f.name for f in fields(K8sConfig)}
        unknown = sorted(set(params) - opt_keys - cfg_keys)
        if unknown:
            raise ConfigError(f"unknown k8s option(s) {unknown}; options: {sorted(opt_keys | cfg_keys)}")
        opts = {k: v for k, v in params.items() if k in opt_keys}
        if qps is not None:
            opts["qps"] = qps
        if scrape_interval_s is not None:
            opts["step_s"] = scrape_interval_s
        cfg = {k: v for k, v in params.items() if k in cfg_keys}
        if workers is not None:
            cfg["workers"] = workers
        o = K8sOptions.from_dict(opts)
        missing = [k for k in ("gateway_url", "prometheus_url") if not getattr(o, k)]
        if missing:
            raise ConfigError(f"--backend k8s needs {', '.join(f'--set k8s.{k}=URL' for k in missing)} (see docs/k8s.md)")
        from llmrca.load.generator import check_target

        try:
            check_target(o.gateway_url, o.allow_remote)
        except Exception as e:
            raise ConfigError(f"{e}") from None
        return cls(profile_config(o.stack_profile, cfg), o)

    # -- parts ---------------------------------------------------------------------
    @property
    def api(self) -> ClusterApi:
        if self._api is None:
            from llmrca.testbed.k8s.api import KubeApi

            self._api = KubeApi(self.options.kubeconfig or None, self.options.context or None)
        return self._api

    @property
    def prom(self) -> Any:
        if self._prom is None:
            from llmrca.collect import PromClient

            self._prom = PromClient(self.options.prometheus_url)
        return self._prom

    @property
    def stack(self) -> K8sStack:
        return K8sStack(self.api, self.config, sleep=self.sleep)

    def topology(self) -> Topology:
        """gateway -> head -> workers, plus the operator."""
        return paper_topology(self.config.workers)

    def workers(self) -> list[str]:
        """``ray-worker-1..n`` (the paper injects into the workers only)."""
        return [f"ray-worker-{i}" for i in range(1, self.config.workers + 1)]

    def describe(self) -> dict[str, Any]:
        """The stack's settings and the options, without credentials (there are none in them)."""
        return {"k8s": self.config.to_dict(), "options": self.options.to_dict()}

    def check_fault(self, spec: FaultSpec) -> None:
        """Raise ConfigError for an unknown parameter or a target that is not a serving pod. A healthy spec (type ``none``) passes."""
        if spec.type == NO_FAULT:
            return
        known = injector_class("k8s", spec.type).defaults
        bad = sorted(set(spec.params) - set(known))
        if bad:
            raise ConfigError(f"unknown {spec.type} fault parameter(s) {bad} on k8s; known: {sorted(known)}")
        if spec.target not in self.workers() and spec.target != HEAD:
            raise ConfigError(f"fault target {spec.target!r} is not a serving pod ({', '.join([HEAD, *self.workers()])})")

    # -- one case --------------------------------------------------------------------
    def run_case(self, fault: FaultSpec, *, seed: int, protocol: Timeline, start_time: float) -> Case:
        """One case (see the module docstring); raises ClusterError, FaultError or CollectionError when a step fails."""
        from llmrca.load import LoadRunner

        o, st = self.options, self.stack
        if o.apply_stack and not self._applied:
            self.say(f"applying {len(st.objects())} objects")
            st.apply()
            self._applied = True
        st.wait_ready(o.ready_timeout_s)
        selectors = st.selectors()
        p = protocol
        total = p.warmup_s + p.normal_s + p.fault_s + p.tail_s
        runner = LoadRunner(o.gateway_url, qps=o.qps, duration_s=total, arrival=o.arrival, prompt_tokens=o.prompt_tokens,
                            output_tokens=o.output_tokens, seed=seed % 2**31, model=self.config.model, timeout_s=o.timeout_s,
                            drain_s=0.0, allow_remote=o.allow_remote)
        runner.start()
        try:
            self.sleep(p.warmup_s)
            t_start = time.time()
            self.sleep(p.normal_s)
            with inject_or_wait(fault, backend="k8s", stack=st, prom=self.prom, sleep=self.sleep, wait_s=o.wait_fault_s) as active:
                inject_time = time.time()
                self.sleep(fault.duration_s)
            self.sleep(p.tail_s)
            t_end = time.time()
        finally:
            report = runner.stop()
        self.sleep(2 * o.step_s)  # the last scrapes land
        s = report.summary
        meta = {
            "backend": self.name,
            "seed": int(seed),
            "protocol": p.to_dict(),
            "requests": {"requests": s["n_sent"], "ok": s["n_ok"], "failed": s["n_error"], "cancelled": s["n_cancelled"]},
            "load": {k: getattr(o, k) for k in ("qps", "prompt_tokens", "output_tokens", "arrival")},
            "k8s": {"namespace": self.config.namespace, "stack": self.config.name,
                    "pods": {c: sel.split('pod="')[1].rstrip('"') for c, sel in selectors.items()}},
        }
        case = self.collector(o.prometheus_url, selectors, t_start, t_end, inject_time, active.record, self.topology(),
                              step_s=o.step_s, meta=meta, name="healthy" if fault.type == NO_FAULT else f"{fault.target}_{fault.type}")
        self.say(f"case {case.name}: achieved {dict(active.record.achieved)}")
        self.sleep(p.cooldown_s)
        return case

    def close(self) -> None:
        """Sweep any fault object left by this process (the stack stays; ``llmrca k8s down --stack`` removes it)."""
        if self._api is not None:
            from llmrca.testbed.k8s.stack import sweep_faults

            sweep_faults(self._api, self.config.namespace, self.config.name)
