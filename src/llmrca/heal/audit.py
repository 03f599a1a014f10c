"""``llmrca audit PROM_URL``: the paper's observability guidelines (§5.5) made executable.

For every component, which signals of the metric vocabulary
(:mod:`llmrca.telemetry.vocabulary`) this Prometheus holds — asked through the
same collector ``watch`` and the campaigns use (:func:`llmrca.collect.collect_metrics`,
so other exporters' names count) — and therefore which fault types llmrca can
and cannot diagnose here, each gap with the exporter setting that closes it.

The guideline signals (:data:`GUIDELINES`) span the paper's three layers:
system (CPU, CFS throttling, memory, limit hits, network, GPU utilisation,
power, power limit, clock-event reasons, SM clock), orchestration (replica
starts / health, restarts) and application (mesh and gateway latency and
errors, TTFT, inter-token latency, KV cache, engine queue), plus logs (read
from files, not from Prometheus).  A fault type is *diagnosable* when every
signal it requires (:data:`FAULTS`) is present on every model replica (the
components whose data shows an engine or an accelerator, or, when none does,
those named like one) and a service-level signal exists to alert on.

The **minimum set** is met when an SLO signal exists and every fault type is
diagnosable; ``llmrca audit`` exits 0 then and 1 otherwise.

Sources: the paper §5.5 (layers, actor lifecycle, TTFT/E2E, structured logs),
dcgm-exporter's ``default-counters.csv`` / ``dcp-metrics-included.csv`` (the
power-management limit and the clock-event reasons are not in the default
list and must be added to the counters CSV passed with ``-f``), DCGM's
``dcgm_fields.h`` (``DCGM_FI_DEV_POWER_MGMT_LIMIT``, field 164;
``DCGM_FI_DEV_CLOCKS_EVENT_REASONS``, field 112, named
``DCGM_FI_DEV_CLOCK_THROTTLE_REASONS`` before DCGM 3.3), vLLM's production
metrics, Ray Serve's metrics, Istio's standard metrics, ingress-nginx's
metrics, cAdvisor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrca.collect.metrics import collect_metrics
from llmrca.collect.prom import PromClient, PrometheusError
from llmrca.telemetry import is_serving
from llmrca.telemetry.aliases import POD_LABELS
from llmrca.telemetry.catalogue import MetricDef
from llmrca.telemetry.vocabulary import describe, meaning, replica_components


@dataclass(frozen=True)
class Guideline:
    """One signal the guidelines ask for: any of ``kinds`` counts; ``where``: ``replica``, ``entry`` or ``all``."""

    name: str
    kinds: tuple[str, ...]
    where: str
    layer: str
    fix: str


#: The signals of the guidelines, with the exporter setting that provides each.
GUIDELINES: tuple[Guideline, ...] = (
    Guideline("cpu", ("cpu",), "all", "system", "scrape cAdvisor / the kubelet (container_cpu_usage_seconds_total)"),
    Guideline("cpu throttling", ("cpu_throttled",), "all", "system", "scrape cAdvisor (container_cpu_cfs_throttled_seconds_total)"),
    Guideline("memory", ("memory",), "all", "system", "scrape cAdvisor (container_memory_working_set_bytes)"),
    Guideline("memory limit hits", ("memory_failcnt",), "all", "system", "scrape cAdvisor (container_memory_failcnt)"),
    Guideline("network", ("net_rx", "net_tx", "net"), "all", "system", "scrape cAdvisor (container_network_{receive,transmit}_bytes_total)"),
    Guideline("gpu utilisation", ("gpu_util",), "replica", "system", "run dcgm-exporter (DCGM_FI_DEV_GPU_UTIL is a default counter) and map devices to pods"),
    Guideline("gpu power", ("power",), "replica", "system", "dcgm-exporter default counter DCGM_FI_DEV_POWER_USAGE"),
    Guideline(
        "gpu power limit",
        ("power_limit",),
        "replica",
        "system",
        "add 'DCGM_FI_DEV_POWER_MGMT_LIMIT, gauge, Power management limit (in W).' to dcgm-exporter's counters CSV (-f / "
        "DCGM_EXPORTER_COLLECTORS); it is not a default counter",
    ),
    Guideline(
        "clock-event (throttle) reasons",
        ("clock_events",),
        "replica",
        "system",
        "add 'DCGM_FI_DEV_CLOCKS_EVENT_REASONS, gauge, Clock event reasons.' (DCGM >= 3.3; DCGM_FI_DEV_CLOCK_THROTTLE_REASONS "
        "before) to dcgm-exporter's counters CSV; it is not a default counter",
    ),
    Guideline("sm clock", ("sm_clock",), "replica", "system", "dcgm-exporter default counter DCGM_FI_DEV_SM_CLOCK"),
    Guideline("replica lifecycle", ("replica_starts", "replica_healthy", "restarts"), "replica", "orchestration",
              "scrape Ray's metrics port (ray_serve_deployment_replica_starts_total, ray_serve_deployment_replica_healthy) "
              "or kube-state-metrics (kube_pod_container_status_restarts_total)"),  # read by RESTARTS below
    Guideline("mesh latency", ("latency_p90", "latency_p50", "latency_mean", "latency_p95", "latency_p99"), "all", "application",
              "inject the Istio sidecar (istio_request_duration_milliseconds); Ray's direct pod-to-pod traffic needs Ray's Istio setup"),
    Guideline("mesh errors", ("error_rate",), "all", "application", "Istio standard metrics (istio_requests_total with response_code)"),
    Guideline("gateway latency", ("gateway_latency_p90", "gateway_latency_p50"), "entry", "application",
              "enable ingress-nginx metrics (controller.metrics.enabled=true): nginx_ingress_controller_request_duration_seconds"),
    Guideline("gateway errors", ("gateway_5xx_rate",), "entry", "application", "ingress-nginx metrics: nginx_ingress_controller_requests{status}"),
    Guideline("ttft", ("ttft_p90", "ttft_p50", "ttft_mean"), "replica", "application", "scrape vLLM's /metrics (vllm:time_to_first_token_seconds)"),
    Guideline("inter-token latency", ("itl_p90", "itl_p50", "itl_mean"), "replica", "application",
              "scrape vLLM's /metrics (vllm:inter_token_latency_seconds; vllm:time_per_output_token_seconds before 0.11)"),
    Guideline("kv cache", ("kv_cache",), "replica", "application", "scrape vLLM's /metrics (vllm:kv_cache_usage_perc)"),
    Guideline("engine queue", ("engine_queue", "running"), "replica", "application", "scrape vLLM's /metrics (vllm:num_requests_waiting/running)"),
)

#: Fault type -> (signals it requires, signals that help).  ``a|b``: either of the two.
FAULTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cpu": (("cpu",), ("cpu throttling",)),
    "memory": (("memory", "replica lifecycle|memory limit hits|logs"), ("memory limit hits", "logs")),
    "network": (("mesh latency",), ("network",)),
    "gpu": (("gpu power limit|clock-event (throttle) reasons",), ("gpu power", "sm clock", "gpu utilisation", "inter-token latency")),
}

#: Why a fault type needs what it needs (printed with a gap).
WHY: dict[str, str] = {
    "cpu": "a CPU hog shows as the pod's CPU at its quota (and CFS throttling)",
    "memory": "a leak shows as memory growth, and its OOM kill only as a replica restart, a limit hit or a log line",
    "network": "a delay in front of a pod shows only in the latency of requests into it (mesh), not in its resources",
    "gpu": "a power cap looks like load unless the limit or the SW-power-cap clock-event reason is exported",
}

#: Signals an alert needs: something the user feels.
SLO = ("gateway latency", "mesh latency", "gateway errors", "mesh errors")


@dataclass
class AuditReport:
    """What :func:`audit` found: per component the guideline signals present, per fault type the verdict."""

    prometheus: str
    window: tuple[float, float]
    components: dict[str, str]
    replicas: list[str]
    entry: str | None
    present: dict[str, dict[str, list[str]]]  # component -> guideline -> columns
    faults: dict[str, dict[str, Any]]
    slo: list[str]
    logs: dict[str, bool]
    gpu_unmapped: dict[str, str] = field(default_factory=dict)
    missing_components: list[str] = field(default_factory=list)
    roles_inferred: dict[str, list[str]] = field(default_factory=dict)  # component -> roles its series show (name gives none)
    stale: dict[str, float | None] = field(default_factory=dict)  # component -> s since its last sample (None: > 5 min)

    @property
    def minimum_ok(self) -> bool:
        """An SLO signal exists and every fault type is diagnosable."""
        return bool(self.slo) and all(f["diagnosable"] for f in self.faults.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "prometheus": self.prometheus,
            "window": list(self.window),
            "components": self.components,
            "replicas": self.replicas,
            "entry": self.entry,
            "signals": {c: sorted(g) for c, g in self.present.items()},
            "faults": self.faults,
            "slo_signals": self.slo,
            "logs": self.logs,
            "gpu_unmapped": self.gpu_unmapped,
            "missing_components": self.missing_components,
            "roles_inferred": self.roles_inferred,
            "stale": self.stale,
            "minimum_set": self.minimum_ok,
        }


def _discover(client: PromClient, start: float, end: float, namespace: str | None = None) -> dict[str, str]:
    """Every pod Prometheus holds series of in ``[start, end]`` (of ``namespace`` when given) -> its selector.

    A pod is named by any of the labels of :data:`~llmrca.telemetry.aliases.POD_LABELS` (``pod``, and
    ``exported_pod`` / ``pod_name`` / ``kubernetes_pod_name`` of other setups), its namespace by the label of the
    same setup; the collector rewrites ``pod="<name>"`` into the label its series carry.  Names with ``_`` (no
    Kubernetes pod) are left out.
    """
    from llmrca.telemetry.aliases import LABEL_SCHEMES

    pods: set[str] = set()
    schemes = [{"pod": "pod", "namespace": "namespace"}, *LABEL_SCHEMES.values()]
    for label in POD_LABELS:
        ns_labels = sorted({sc.get("namespace", "namespace") for sc in schemes if sc.get("pod", "pod") == label}) or ["namespace"]
        for ns_label in ns_labels if namespace is not None else [None]:
            match = f'{{{label}!=""{f",{ns_label}={_quoted(namespace)}" if ns_label else ""}}}'
            try:
                pods.update(client.label_values(label, start, end, match=match if ns_label else None))
            except PrometheusError:  # a query frontend may not serve the label API: series present at the end
                pods.update(s.labels[label] for s in client.query(f"count by ({label}) ({match})", end) if s.labels.get(label))
    ns = f"namespace={_quoted(namespace)}," if namespace is not None else ""
    return {p: f'{ns}pod="{p}"' for p in sorted(pods) if p and "_" not in p}


def _quoted(value: str) -> str:
    """``value`` as a PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def audit(
    prom_url: str,
    components: Mapping[str, str] | None = None,
    *,
    window_s: float = 600.0,
    scrape_interval_s: float = 15.0,
    run_dir: str | Path | None = None,
    log_files: Mapping[str, str | Path] | None = None,
    end: float | None = None,
    gpu_selectors: Mapping[str, str] | None = None,
    gpu_join: str | None = None,
    namespace: str | None = None,
) -> AuditReport:
    """Audit ``prom_url`` over the last ``window_s`` (ending at ``end``, default now).

    ``components``: name -> label selector; default: the local testbed's pods
    (``run_dir``) when one runs there, else every pod Prometheus holds series
    of in the window (named by ``pod`` or another setup's pod label).
    ``log_files``: component -> log file (default: the local testbed's).
    ``gpu_selectors`` / ``gpu_join``: how DCGM devices map to components when their series carry no pod label
    (as :func:`~llmrca.collect.metrics.collect_metrics` takes them).  ``namespace``: discover only that
    namespace's pods (when no component is given).
    Raises :class:`PrometheusError` when Prometheus cannot be
    asked, ValueError when no component is found.
    """
    from llmrca.heal.watch import EXTRA_DEFS, entry_component

    t1 = float(end if end is not None else time.time())
    t0 = t1 - window_s
    comps = dict(components or {})
    logs = {k: str(v) for k, v in (log_files or {}).items()}
    if not comps and run_dir is not None:
        from llmrca.testbed.local.stack import State

        st = State.load(run_dir)
        if st is not None and st.prometheus_url.rstrip("/") == prom_url.rstrip("/"):
            comps = {p: f'pod="{p}"' for p in st.pods}
            logs = logs or {p: str(st.pod_dir(p) / f"{p}.log") for p in st.pods}
    with PromClient(prom_url, timeout_s=30.0) as client:
        try:
            held = client.label_values("__name__", t0, t1)
            earlier = [] if held else client.label_values("__name__", t1 - 7 * 86400, t0)
        except PrometheusError:
            held, earlier = ["?"], []
        if not held:  # not a matter of selectors: nothing at all was scraped in the window
            raise ValueError(
                f"{prom_url} holds no sample in the last {window_s:g} s"
                + (f" (it holds {len(earlier)} series before that: its scrapes stopped, or its clock is off)" if earlier else "")
                + "; check its targets (Status > Targets), or widen --window"
            )
        if not comps:
            comps = _discover(client, t0, t1, namespace)
        if not comps:
            raise ValueError(
                f"no component found at {prom_url} (no series with a pod label ({', '.join(POD_LABELS)})"
                + (f" in namespace {namespace!r}" if namespace is not None else "") + f" in the last {window_s:g} s); "
                "give --component NAME=SELECTOR"
            )
        step = max(scrape_interval_s, window_s / 100.0)
        res = collect_metrics(client, comps, t0, t1, step_s=step, metric_set="extended", scrape_interval_s=scrape_interval_s,
                              queries={m.name: m for m in (*EXTRA_DEFS, RESTARTS)}, gpu_selectors=gpu_selectors, gpu_join=gpu_join)
        # how fresh: asked only of the components the window has data of (a component without any is missing, not stale)
        with_data = {col.partition("_")[0] for col in res.frame.columns if col != "time"}
        last = {c: _last_sample(client, sel, t1) for c, sel in comps.items() if c in with_data}
    desc = describe([c for c in res.frame.columns if c != "time"])
    by_comp: dict[str, dict[str, list[str]]] = {c: {} for c in comps}
    for cm in desc.columns:
        if cm.kind is None or cm.component not in by_comp:
            continue
        for g in GUIDELINES:
            if cm.kind in g.kinds:
                by_comp[cm.component].setdefault(g.name, []).append(cm.column)
    # a component scraped once but not lately (its target down): what it had is no signal the loop can use now
    stale = {c: (None if t is None else round(t1 - t, 1)) for c, t in last.items()
             if by_comp.get(c) and (t is None or t1 - t > max(3 * scrape_interval_s, 2 * step))}
    for c in stale:
        by_comp[c] = {}
    log_ok = {c: Path(p).is_file() for c, p in logs.items()}
    for c, ok in log_ok.items():
        if ok and c in by_comp:
            by_comp[c]["logs"] = [logs[c]]
    names = list(comps)
    replicas = [c for c in replica_components(res.frame.columns) if c in comps] or [c for c in names if is_serving(c)]
    entry = entry_component(names) or next((c for c, r in res.roles_inferred.items() if "gateway" in r), None)
    slo = sorted({g for c, gs in by_comp.items() for g in gs if g in SLO and (c == entry or g.startswith("mesh"))})
    faults: dict[str, dict[str, Any]] = {}
    for ft, (required, helpful) in FAULTS.items():
        gaps: list[dict[str, Any]] = []
        for req in required:
            alts = req.split("|")
            lacking = [c for c in replicas if not any(a in by_comp.get(c, {}) for a in alts)]
            if lacking or not replicas:
                fix = _fix(alts)
                unmapped = [c for c in lacking if c in res.gpu_unmapped]
                if unmapped and any(a.startswith(("gpu", "clock")) for a in alts):
                    # the DCGM series may well be there: what is missing is which device is whose (say that first)
                    fix = ("map the GPUs to the components (--gpu COMPONENT=SELECTOR or --gpu-join kube_pod_info:node=Hostname; "
                           f"the note on {unmapped[0]} below lists the DCGM series Prometheus holds); else " + fix)
                idle = [c for c in lacking if _exported_but_empty(res.dropped, c, alts)]
                if idle and len(idle) == len(lacking):
                    # the series are there and held no observation (a histogram before its first request): no traffic,
                    # not a missing exporter
                    fix = (f"the series are exported on {', '.join(idle)} but held no observation in the window (no requests "
                           "yet?): send traffic, or widen --window; not a missing exporter")
                if not replicas:  # nothing is missing from a replica: no component was recognised as one
                    fix = ("no component was recognised as a model replica: none has an engine series (vLLM, SGLang, TGI) "
                           "or a GPU series; scrape the servers' /metrics, map the GPUs (--gpu / --gpu-join), or name the "
                           "replicas' components ray-worker-N")
                gaps.append({"signal": " or ".join(alts), "components": lacking or ["(no model replica found)"], "fix": fix})
        weak = [{"signal": h, "components": [c for c in replicas if h not in by_comp.get(c, {})], "fix": _fix([h])}
                for h in helpful if any(h not in by_comp.get(c, {}) for c in replicas)]
        faults[ft] = {"diagnosable": not gaps, "why": WHY[ft], "missing": gaps, "would_help": weak}
    return AuditReport(
        prometheus=prom_url,
        window=(t0, t1),
        components=comps,
        replicas=replicas,
        entry=entry,
        present=by_comp,
        faults=faults,
        slo=slo,
        logs=log_ok,
        gpu_unmapped=dict(res.gpu_unmapped),
        missing_components=list(res.missing_components),
        roles_inferred=dict(res.roles_inferred),
        stale=stale,
    )


def _last_sample(client: PromClient, selector: str, at: float, lookback_s: float = 300.0) -> float | None:
    """Time of the newest sample of any series ``selector`` matches (under any label scheme) in the
    ``lookback_s`` before ``at``; None when there is none.  Raw samples (a range-vector query): PromQL's
    ``timestamp()`` cannot take series of several metrics at once (their labels collide without the name)."""
    from llmrca.telemetry.aliases import selector_schemes

    newest: float | None = None
    for _scheme, sel, _ in selector_schemes(selector):
        try:
            got = client.samples(sel, at, lookback_s)
        except PrometheusError:
            continue
        for s in got:
            if len(s.times) and (newest is None or float(s.times[-1]) > newest):
                newest = float(s.times[-1])
    return newest


def _exported_but_empty(dropped: dict[str, str], component: str, signals: list[str]) -> bool:
    """Whether a column of ``component`` for one of ``signals`` (guideline names) was queried with an answer that
    held no finite value (``collect_metrics``' 'no finite value in the window': a histogram with no observation)."""
    from llmrca.model import split_column

    kinds = {k for g in GUIDELINES if g.name in signals for k in g.kinds}
    for col, why in dropped.items():
        comp, metric = split_column(col)
        m = meaning(metric) if comp == component and metric else None
        if m is not None and m.kind in kinds and why.startswith("no finite value in the window"):
            return True
    return False


#: kube-state-metrics' restart counter, which the replica-lifecycle guideline names as one of its sources
RESTARTS = MetricDef("kube_pod_container_status_restarts_total", "sum(kube_pod_container_status_restarts_total{{{sel}}})", "count", "all",
                     "container restarts (kube-state-metrics)")


def _fix(names: list[str]) -> str:
    fixes = []
    for n in names:
        if n == "logs":
            fixes.append("give the pods' log files (--log COMPONENT=PATH) or ship container logs")
            continue
        g = next((g for g in GUIDELINES if g.name == n), None)
        if g is not None:
            fixes.append(g.fix)
    return "; or ".join(fixes)


def render(rep: AuditReport) -> str:
    """The report as text: signals per component (x present, . missing), fault verdicts with fixes, the minimum-set verdict."""
    comps = list(rep.components)
    short = {c: c.replace("ray-worker-", "w").replace("ray-head", "head").replace("nginx-gateway", "gateway").replace("kuberay-operator", "operator")
             for c in comps}
    rows = [f"llmrca audit of {rep.prometheus} (window {rep.window[1] - rep.window[0]:.0f} s, {len(comps)} components, "
            f"replicas: {', '.join(rep.replicas) or 'none found'}, entry: {rep.entry or 'none found'})", ""]
    if rep.roles_inferred:
        rows[-1:-1] = ["roles read from the series (the names give none): "
                       + ", ".join(f"{c} {'/'.join(r)}" for c, r in rep.roles_inferred.items())]
    guidelines = (*GUIDELINES, Guideline("logs", (), "all", "logs", ""))

    def applies(g: Guideline, c: str) -> bool:
        return g.where == "all" or (g.where == "replica" and c in rep.replicas) or (g.where == "entry" and c == rep.entry)

    if (len(comps) <= 8 and all(len(v) <= 12 for v in short.values())) or len(comps) <= 4:
        width = max(10, *(len(v) + 1 for v in short.values()))
        head = f"{'signal':32s}{'layer':14s}" + "".join(f"{short[c]:>{width}s}" for c in comps)
        rows += [head, "-" * len(head)]
        for g in guidelines:
            cells = "".join(f"{('x' if g.name in rep.present.get(c, {}) else '.') if applies(g, c) else '':>{width}s}" for c in comps)
            rows.append(f"{g.name:32s}{g.layer:14s}{cells}")
    else:  # many components or long names: a table would be wider than any terminal; one line per component
        for c in comps:
            have = [g.name for g in guidelines if applies(g, c) and g.name in rep.present.get(c, {})]
            lack = [g.name for g in guidelines if applies(g, c) and g.name not in rep.present.get(c, {})]
            role = " (replica)" if c in rep.replicas else " (entry)" if c == rep.entry else ""
            rows.append(f"{c}{role}: {', '.join(have) or 'no signal'}" + (f"; missing: {', '.join(lack)}" if have and lack else ""))
    rows.append("")
    rows.append(f"alert (SLO) signals: {', '.join(rep.slo) or 'NONE: nothing the user feels is exported; enable ingress-nginx or Istio metrics'}")
    for ft, f in rep.faults.items():
        if f["diagnosable"]:
            rows.append(f"  {ft:8s} can be diagnosed" + (f" (would also help: {', '.join(w['signal'] for w in f['would_help'])})" if f["would_help"] else ""))
        else:
            rows.append(f"  {ft:8s} CANNOT be diagnosed: {f['why']}")
            for gap in f["missing"]:
                rows.append(f"           missing {gap['signal']} on {', '.join(gap['components'])}")
                rows.append(f"           fix: {gap['fix']}")
    said_listing = False
    for why in rep.gpu_unmapped.values():  # the DCGM listing and advice are the same for every replica: said once
        head, sep, _rest = why.partition(". Prometheus holds")
        rows.append(f"  note: {why}" if not said_listing or not sep else f"  note: {head} (the DCGM series and the advice as above)")
        said_listing = said_listing or bool(sep)
    if rep.missing_components:  # their rows show only dots: say why
        rows.append(f"  NO SERIES: Prometheus holds no series for the selector of {', '.join(rep.missing_components)} in the window: "
                    "check the selector (--component NAME=SELECTOR) against the pod's labels")
    if rep.stale:  # its signals are shown missing above: a target that stopped being scraped
        said = ", ".join(f"{c} ({'over 5 min' if ago is None else f'{ago:g} s'} ago)" for c, ago in rep.stale.items())
        rows.append(f"  STALE: no sample lately from {said}: is its scrape target down (`up == 0`)? its signals count as missing")
    rows.append("")
    rows.append("minimum set: " + ("present (exit 0)" if rep.minimum_ok else "NOT present (exit 1)"))
    return "\n".join(rows)


__all__ = ["FAULTS", "GUIDELINES", "AuditReport", "PrometheusError", "audit", "render"]
