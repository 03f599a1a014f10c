"""Metric frames from Prometheus: ``time`` + ``<component>_<metric>`` on a regular grid.

For each component (a name and a PromQL label selector such as
``pod="ray-worker-1"`` or ``job="gateway",instance=~".*:9113"``) and each
metric of the catalogue (:mod:`llmrca.telemetry`) that applies to it, the
metric's PromQL template is filled in (``{sel}`` = the selector, ``{w}`` =
the rate window) and asked with ``query_range`` over ``[start, end]`` at
``step_s``.  A sample Prometheus has no value for stays NaN; a column with no
finite value at all is dropped and reported, never filled in.

Aliases: the same signal can be exposed under other names (Ray Serve's
``ray_vllm:...``; ``vllm_...`` from prometheus-client >= 0.23 over
OpenMetrics; vLLM <= 0.10's v0 names such as ``vllm:gpu_cache_usage_perc``;
DCGM's renamed fields and dcgm-exporter 1.x names).  The alternatives of each
series name come from the tables of :mod:`llmrca.telemetry.aliases`; the
candidates are tried in order (current names first) and the first query that
returns any series is used (recorded per column in
:attr:`MetricsResult.queries`).  Equivalents in another unit
(``istio_request_duration_seconds`` for the milliseconds histogram,
``DCGM_FI_PROF_GR_ENGINE_ACTIVE`` for ``DCGM_FI_DEV_GPU_UTIL``) multiply the
query by their factor; a component's selector that finds nothing is retried
with its ``pod``/``namespace``/``container`` labels renamed as other setups
name them (``exported_pod``, ``pod_name``, ``kubernetes_pod_name``, ...).
How each column was read is in :attr:`MetricsResult.mappings`; a query
reading a series name Prometheus does not hold in the window is not sent.

GPU series: dcgm-exporter without Kubernetes pod mapping labels a device only
by ``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``
(NVIDIA/dcgm-exporter #342, #490), so a component's ``pod="..."`` selector
finds nothing.  Metrics whose query reads a DCGM series then use, per
component, a GPU selector given by the user (``gpu_selectors``) or found by
a join (:class:`GpuJoin`: the node of the component's pod from
``kube_pod_info`` = the ``Hostname`` of the DCGM series).  A component left
without GPU columns is reported (:attr:`MetricsResult.gpu_unmapped`) with the
DCGM series Prometheus holds and their labels.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llmrca.collect.prom import PromClient, PrometheusError
from llmrca.telemetry import BASIC, EXTENDED, GATEWAY, HEAD, PROMETHEUS_EXTRA, MetricDef, is_serving
from llmrca.telemetry.aliases import (
    LABEL_SCHEMES,
    POD_REGEX_MATCHER,
    Equivalent,
    equivalents,
    pod_labels_held,
    same_signal,
    selector_schemes,
)

#: A series name in a PromQL template: a metric name directly followed by its ``{`` label matcher.
_SERIES = re.compile(r"(?<![A-Za-z0-9_:])([A-Za-z_:][A-Za-z0-9_:]*)(?=\{)")
_HIST_SUFFIX = re.compile(r"_(bucket|sum|count)$")
#: DCGM series (current field names and dcgm-exporter 1.x names).
_GPU_SERIES = re.compile(r"^(DCGM_|dcgm_)")
_MAX_CANDIDATES = 64


def series_names(promql: str) -> list[str]:
    """Base series names a template reads, in order (``_bucket``/``_sum``/``_count`` removed)."""
    out: list[str] = []
    for name in _SERIES.findall(promql):
        base = _HIST_SUFFIX.sub("", name)
        if base not in out:
            out.append(base)
    return out


def default_aliases() -> dict[str, tuple[str, ...]]:
    """Series name of the catalogue -> its other names (:func:`llmrca.telemetry.aliases.same_signal`).

    E.g. ``vllm:kv_cache_usage_perc`` -> ``vllm_kv_cache_usage_perc``,
    ``ray_vllm:kv_cache_usage_perc``, ``ray_vllm_kv_cache_usage_perc``,
    ``vllm:gpu_cache_usage_perc`` (vLLM <= 0.10), ``ray_vllm:gpu_cache_usage_perc``, ...
    Names without other names are left out.
    """
    out: dict[str, tuple[str, ...]] = {}
    for m in (*BASIC, *EXTENDED, *PROMETHEUS_EXTRA):
        for name in series_names(m.promql):
            alts = same_signal(name)[1:]
            alts += tuple(e.name for e in equivalents(name) if e.name not in alts and e.name != name)
            if alts:
                out[name] = alts
    return out


@dataclass(frozen=True)
class QueryForm:
    """One way to ask for a metric: a template, the series swapped in and the factor to the catalogue's unit.

    ``swaps``: ``((catalogue series, series used), ...)``; ``factor`` multiplies
    the whole query (already applied in ``template``); ``sources``: where an
    :class:`~llmrca.telemetry.aliases.Equivalent` swapped in comes from.
    """

    template: str
    swaps: tuple[tuple[str, str], ...] = ()
    factor: float = 1.0
    sources: tuple[str, ...] = ()


def _selects_on(promql: str, label: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9_])" + re.escape(label) + r'\s*(?:=~|!~|!=|=)\s*"', promql) is not None


def _not_tried(m: MetricDef) -> list[tuple[str, str]]:
    """(equivalent series, label) pairs left out of ``m``'s forms because the template selects on a label they lack."""
    out = []
    for name in series_names(m.promql):
        for e in equivalents(name):
            lacking = [lb for lb in e.lacks if _selects_on(m.promql, lb)]
            if lacking:
                out.append((e.name, lacking[0]))
    return out


def query_forms(m: MetricDef, aliases: Mapping[str, Sequence[str]], override: str | Sequence[str] | None = None) -> list[QueryForm]:
    """Query forms to try for ``m``, the catalogue's first (see :func:`candidates`).

    A swapped-in :class:`~llmrca.telemetry.aliases.Equivalent` multiplies the
    query by its factor (``(q) * 1000`` for Istio's seconds histogram) and is
    left out when the template selects on a label it lacks.
    """
    if override is not None and not isinstance(override, MetricDef):
        return [QueryForm(t) for t in ([override] if isinstance(override, str) else list(override))]
    present = [(name, [name, *alts]) for name, alts in aliases.items() if alts and _has_series(m.promql, name)]
    out = [QueryForm(m.promql)]
    seen = {m.promql}
    for combo in itertools.islice(itertools.product(*(names for _, names in present)), 1, _MAX_CANDIDATES):
        q, swaps, factor, sources, ok = m.promql, [], 1.0, [], True
        for (name, _), alt in zip(present, combo, strict=True):
            if alt == name:
                continue
            eq: Equivalent | None = next((e for e in equivalents(name) if e.name == alt), None)
            if eq is not None:
                if any(_selects_on(m.promql, label) for label in eq.lacks):
                    ok = False
                    break
                factor *= eq.factor
                sources.append(eq.source)
            q = _series_pattern(name).sub(lambda _m, a=alt: a, q)
            swaps.append((name, alt))
        if not ok:
            continue
        if factor != 1.0:
            q = f"({q}) * {factor:g}"
        if q not in seen:
            seen.add(q)
            out.append(QueryForm(q, tuple(swaps), factor, tuple(sources)))
    return out


def is_gpu_metric(m: MetricDef | str) -> bool:
    """Whether a metric's query reads a DCGM series (then GPU selectors apply to it)."""
    promql = m.promql if isinstance(m, MetricDef) else m
    return any(_GPU_SERIES.match(n) for n in series_names(promql))


def component_tags(component: str) -> frozenset[str]:
    """The ``where`` tags a component matches by its name (``all`` plus its role)."""
    tags = {"all"}
    if component == GATEWAY:
        tags.add("gateway")
    if is_serving(component):
        tags.add("serving")
    if component == HEAD:
        tags.add("head")
    return frozenset(tags)


#: Roles a component's own series can show, in the order they are named.
_ROLES = ("gateway", "head", "serving")


def infer_roles(
    client: PromClient, components: Mapping[str, str], start: float, end: float, defs: Sequence[MetricDef],
    aliases: Mapping[str, Sequence[str]],
) -> dict[str, frozenset[str]]:
    """Roles of ``components`` (those whose names give none: not the paper's ``nginx-gateway`` / ``ray-head`` /
    ``ray-worker-N``; the callers pick them), from the series Prometheus holds for them in ``[start, end]``.

    A component whose selector (under any label scheme of :data:`~llmrca.telemetry.aliases.LABEL_SCHEMES`)
    matches a series that a ``gateway``, ``head`` or ``serving`` metric reads, under any exporter's name
    (``vllm:*`` / ``vllm_*`` / ``ray_vllm*``, ``ray_serve_*``, ``nginx_ingress_controller_*``), gets that role;
    GPU (DCGM) series do not count (an exporter's own pod carries them too).  Returns component ->
    ``{"all", role, ...}`` for the components a role was found for.  One ``/api/v1/series`` request per label
    scheme of each such component; a refused request counts as no match.
    """
    role_of: dict[str, set[str]] = {}
    for m in defs:
        if m.where not in _ROLES or is_gpu_metric(m):
            continue
        for f in query_forms(m, aliases, None):
            for n in _SERIES.findall(f.template):
                role_of.setdefault(n, set()).add(m.where)
    if not role_of:
        return {}
    regex = "|".join(re.escape(n) for n in sorted(role_of))
    out: dict[str, frozenset[str]] = {}
    for c, sel in components.items():
        found: set[str] = set()
        for _scheme, s, _renamed in selector_schemes(sel):
            try:
                hits = client.series(f'{{__name__=~"{regex}",{s}}}', start, end)
            except PrometheusError:
                continue
            for h in hits:
                found |= role_of.get(h.get("__name__", ""), set())
            if found:
                break
        if found:
            out[c] = frozenset(found) | {"all"}
    return out


def metric_defs(metric_set: str, queries: Mapping[str, str | Sequence[str] | MetricDef] | None = None) -> list[MetricDef]:
    """The catalogue entries of ``basic`` or ``extended``, with overrides / additions from ``queries``.

    ``extended`` also holds :data:`~llmrca.telemetry.catalogue.PROMETHEUS_EXTRA` (the mesh's mean latency).
    """
    if metric_set not in ("basic", "extended"):
        raise ValueError(f"metric_set must be 'basic' or 'extended', got {metric_set!r}")
    defs = {m.name: m for m in (BASIC if metric_set == "basic" else (*BASIC, *EXTENDED, *PROMETHEUS_EXTRA))}
    for name, q in (queries or {}).items():
        if isinstance(q, MetricDef):
            defs[name] = q
        else:
            base = defs.get(name)
            first = q if isinstance(q, str) else q[0]
            defs[name] = MetricDef(
                name,
                first,
                base.unit if base else "",
                base.where if base else "all",
                base.description if base else "custom query",
            )
    return list(defs.values())


def candidates(m: MetricDef, aliases: Mapping[str, Sequence[str]], override: str | Sequence[str] | None = None) -> list[str]:
    """Query templates to try for ``m``, canonical first (the templates of :func:`query_forms`)."""
    return [f.template for f in query_forms(m, aliases, override)]


def _series_pattern(name: str) -> re.Pattern[str]:
    """``name`` as a whole series name in a template, with or without a histogram/counter suffix."""
    return re.compile(r"(?<![A-Za-z0-9_:])" + re.escape(name) + r"(?=(?:_bucket|_sum|_count|_total)?\{)")


def _has_series(promql: str, name: str) -> bool:
    return _series_pattern(name).search(promql) is not None


def time_grid(start: float, end: float, step_s: float) -> np.ndarray:
    """Prometheus' evaluation instants of a range query: start, start+step, ... <= end."""
    if step_s <= 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    n = math.floor((end - start) / step_s + 1e-9) + 1
    return start + step_s * np.arange(n)


@dataclass
class MetricsResult:
    """A frame plus how it was made: the query per column and what was dropped and why.

    ``gpu_selectors``: component -> ``{"selector": ..., "via": ...}`` for the
    GPU (DCGM) metrics, ``via`` one of ``gpu_selectors`` (given),
    ``join <series>.<label> = DCGM <label>`` or ``component selector``; a join's
    also holds ``join_label`` and ``join_value`` (``Hostname``, the pod's node).
    ``gpu_unmapped``: component -> why it has no GPU column and how to map it.
    ``dcgm_series``: what DCGM series Prometheus holds in the window (names,
    label names, example label sets), filled when a component is unmapped.
    ``mappings``: column -> how it was read when not by the catalogue's own
    query: ``series`` (catalogue name -> name used), ``labels`` (selector
    label -> label used) with their ``label_scheme``, ``factor`` (to the
    catalogue's unit) and ``sources``.
    """

    frame: pd.DataFrame
    queries: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    missing_components: list[str] = field(default_factory=list)
    inf_replaced: dict[str, int] = field(default_factory=dict)
    gpu_selectors: dict[str, dict[str, str]] = field(default_factory=dict)
    gpu_unmapped: dict[str, str] = field(default_factory=dict)
    dcgm_series: dict[str, object] = field(default_factory=dict)
    mappings: dict[str, dict[str, object]] = field(default_factory=dict)
    roles_inferred: dict[str, list[str]] = field(default_factory=dict)  # component -> roles read from its series
    several_pods: dict[str, list[str]] = field(default_factory=dict)  # component -> the pods its regex selector matched

    def report(self) -> dict[str, object]:
        return {
            "several_pods": {c: list(v) for c, v in self.several_pods.items()},
            "roles_inferred": {c: list(v) for c, v in self.roles_inferred.items()},
            "queries": dict(self.queries),
            "mappings": {c: dict(v) for c, v in self.mappings.items()},
            "dropped": dict(self.dropped),
            "missing_components": list(self.missing_components),
            "inf_replaced": dict(self.inf_replaced),
            "gpu": {
                "selectors": {c: dict(v) for c, v in self.gpu_selectors.items()},
                "unmapped": dict(self.gpu_unmapped),
                "dcgm_series": dict(self.dcgm_series),
            },
        }


@dataclass(frozen=True)
class GpuJoin:
    """Map a component to GPU devices through a series carrying both (default: ``kube_pod_info``).

    For each component, ``max by (<series_label>) (<series>{<component selector>})``
    over the window gives one value (e.g. the node of the pod); the GPU
    selector is then ``<gpu_label>="<value>"`` (e.g. ``Hostname="gpu-node-1"``,
    the label dcgm-exporter puts on every series; with NVIDIA's Helm chart it
    is the node name).  No mapping is made, and the reason is reported, when
    the series is absent, when the component moved between values within the
    window, or when several components share one value (their devices could
    not be told apart; give ``gpu_selectors`` then).  Text form:
    ``kube_pod_info:node=Hostname`` (:meth:`parse`).
    """

    series: str = "kube_pod_info"
    series_label: str = "node"
    gpu_label: str = "Hostname"

    @classmethod
    def parse(cls, text: str) -> GpuJoin:
        """``"kube_pod_info:node=Hostname"`` -> ``GpuJoin("kube_pod_info", "node", "Hostname")``; raises ValueError."""
        m = re.fullmatch(r"\s*([A-Za-z_:][A-Za-z0-9_:]*?):([A-Za-z_][A-Za-z0-9_]*)=([A-Za-z_][A-Za-z0-9_]*)\s*", text)
        if not m:
            raise ValueError(
                f"GPU join {text!r} must be SERIES:LABEL=DCGM_LABEL, e.g. kube_pod_info:node=Hostname "
                "(the series that carries the component's pod and its node, the node label, the DCGM label holding the same value)"
            )
        return cls(*m.groups())

    @property
    def via(self) -> str:
        return f"join {self.series}.{self.series_label} = DCGM {self.gpu_label}"


def _names_held(client: PromClient, start: float, end: float) -> frozenset[str] | None:
    """Metric names with samples in ``[start, end]``, or None when Prometheus cannot list them (then nothing is pruned)."""
    try:
        return frozenset(client.label_values("__name__", start, end))
    except PrometheusError:
        return None


def _label_value(v: str) -> str:
    """A PromQL string literal for a label value."""
    return json.dumps(v)


def resolve_gpu_selectors(
    client: PromClient,
    components: Mapping[str, str],
    start: float,
    end: float,
    step_s: float,
    *,
    gpu_selectors: Mapping[str, str] | None = None,
    join: GpuJoin | None = None,
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """The selector each component's GPU metrics use, and why a join gave none.

    Returns ``({component: {"selector", "via"[, "join_label", "join_value"]}}, {component: problem})``.
    Given ``gpu_selectors`` win; then ``join``; otherwise (and when the join
    fails) the component's own selector is used.
    """
    given = dict(gpu_selectors or {})
    unknown = sorted(set(given) - set(components))
    if unknown:
        raise ValueError(f"GPU selectors given for unknown components {unknown}; components are {sorted(components)}")
    empty = [c for c, sel in given.items() if not str(sel).strip()]
    if empty:
        raise ValueError(f'GPU selectors of {empty} are empty; give one such as Hostname="gpu-node-1",gpu="0" or UUID="GPU-..."')
    out = {c: {"selector": str(sel), "via": "gpu_selectors"} for c, sel in given.items()}
    problems: dict[str, str] = {}
    if join is not None:
        # every component is looked up, those with given selectors too: they make a shared node ambiguous
        by_value: dict[str, list[str]] = {}
        pods_of: dict[str, list[str]] = {}  # the component's pod names, as the joined series names them
        for comp, sel in components.items():
            values: list[str] = []
            for _scheme, ssel, _renamed in selector_schemes(sel):  # kube_pod_info may carry exported_pod, ...
                q = f"max by ({join.series_label}, pod) ({join.series}{{{ssel}}})"
                found = [s for s in client.query_range(q, start, end, step_s) if np.isfinite(s.values).any()]
                values = sorted({s.labels.get(join.series_label, "") for s in found} - {""})
                pods_of[comp] = sorted({s.labels.get("pod", "") for s in found} - {""})
                if values:
                    break
            for v in values if comp in given or len(values) == 1 else ():
                by_value.setdefault(v, []).append(comp)
            if comp in given:
                continue
            if not values:
                problems[comp] = f"{join.via}: no {join.series}{{{sel}}} with a {join.series_label} label in the window"
            elif len(values) > 1:
                problems[comp] = (
                    f"{join.via}: {join.series}{{{sel}}} names {len(values)} {join.series_label} values in the window "
                    f"({', '.join(values)}): the component moved; give its GPU selector"
                )
        for v, comps in by_value.items():
            for comp in comps:
                if comp in given:
                    continue
                if len(comps) > 1:
                    problems[comp] = (
                        f"{join.via}: {', '.join(comps)} all run on {join.series_label}={v}, so the join cannot tell "
                        f'their GPUs apart; give each a GPU selector such as {join.gpu_label}={_label_value(v)},gpu="0"'
                    )
                else:
                    sel, via = f"{join.gpu_label}={_label_value(v)}", join.via
                    other = _other_pods_devices(client, join.gpu_label, v, pods_of.get(comp, []), start, end)
                    if other is not None:  # the node's devices attributed to other pods are not this component's
                        label, others = other
                        sel += f",{label}=~{_label_value('|' + '|'.join(re.escape(p) for p in pods_of[comp]))}"
                        via += f"; devices of other pods on the node left out ({label}: {', '.join(others[:3])}{' …' if len(others) > 3 else ''})"
                    out[comp] = {"selector": sel, "via": via, "join_label": join.gpu_label, "join_value": v}
    for comp, sel in components.items():
        out.setdefault(comp, {"selector": str(sel), "via": "component selector"})
    return out, problems


def _other_pods_devices(
    client: PromClient, gpu_label: str, value: str, pods: list[str], start: float, end: float
) -> tuple[str, list[str]] | None:
    """``(label, other pods)`` when some DCGM devices with ``gpu_label=value`` are attributed to pods other than
    ``pods`` (dcgm-exporter's Kubernetes mapping: ``exported_pod`` when Prometheus renamed the device's ``pod``,
    whose ``pod`` is then the exporter's own; else ``pod``, ``pod_name``, ``kubernetes_pod_name``), else None.
    A device with no pod label (not allocated to a pod, or no mapping) stays selected."""
    if not pods:
        return None
    try:
        sets = client.series(f'{{__name__=~"(?i)dcgm_.*",{gpu_label}={_label_value(value)}}}', start, end)
    except PrometheusError:
        return None
    label = next(iter(pod_labels_held({k for ls in sets for k in ls})), None)
    if label is None:
        return None
    others = sorted({ls[label] for ls in sets if ls.get(label)} - set(pods))
    return (label, others) if others else None


def describe_dcgm_series(
    client: PromClient, names: Sequence[str], start: float, end: float, max_examples: int = 4
) -> dict[str, object]:
    """What DCGM series Prometheus holds in ``[start, end]``: ``{"names", "labels", "examples", "pod_labels"}``."""
    regex = "|".join(re.escape(n) for n in sorted(set(names)))
    try:
        sets = client.series(f'{{__name__=~"{regex}"}}', start, end) if regex else []
    except PrometheusError as e:  # diagnostics only: a query frontend may not serve /api/v1/series
        return {"unavailable": str(e)}
    labels = sorted({k for ls in sets for k in ls} - {"__name__"})
    examples: list[dict[str, str]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for ls in sorted(sets, key=lambda d: sorted(d.items())):
        key = tuple(sorted((k, v) for k, v in ls.items() if k != "__name__"))
        if key not in seen:
            seen.add(key)
            if len(examples) < max_examples:
                examples.append(dict(key))
    return {
        "names": sorted({ls.get("__name__", "") for ls in sets}),
        "labels": labels,
        "examples": examples,
        # a pod label beside exported_pod is the exporter's own pod (Prometheus renamed the device's): list it last
        "pod_labels": pod_labels_held(labels),
        "devices": len(seen),
    }


def _unmapped_message(
    comp: str, sel: dict[str, str], problem: str | None, info: Mapping[str, object], join_values: Sequence[str] | None = None
) -> str:
    head = f"{comp}: no GPU series for {sel['selector']!r} ({sel['via']})"
    if problem:
        head += f"; {problem}"
    if sel.get("join_label") and join_values is not None and sel.get("join_value") not in join_values:
        label, value = sel["join_label"], sel["join_value"]
        held = ", ".join(sorted(join_values)[:6]) + (" …" if len(join_values) > 6 else "")
        return head + (
            f"; the join found its pod on {value!r}, but no DCGM series has {label}={_label_value(value)} (their {label} "
            f"values: {held or 'none'}). dcgm-exporter's {label} is the host name it was given: if those are exporter pod "
            f"names, it was not given the node's name; map the component to its devices instead with --gpu "
            + f"{comp}='UUID=\"<GPU-...>\"' or --gpu {comp}='{label}=\"<value above>\",gpu=\"<index>\"'"
        )
    names = list(info.get("names", []))  # type: ignore[call-overload]
    if "unavailable" in info:
        return head + (
            f"; the DCGM series could not be listed ({info['unavailable']}). If they carry no pod label, map the component "
            f'with gpu_selectors (CLI --gpu {comp}=\'Hostname="<node>",gpu="<index>"\') or --gpu-join kube_pod_info:node=Hostname'
        )
    if not names:
        return head + "; Prometheus holds no DCGM series in the window: is dcgm-exporter scraped?"
    ex = "; ".join(", ".join(f"{k}={v}" for k, v in e.items()) for e in info.get("examples", []))  # type: ignore[union-attr]
    msg = (
        f"{head}. Prometheus holds {', '.join(names[:8])}{' ...' if len(names) > 8 else ''} "
        f"for {info.get('devices')} device(s) with labels {', '.join(info.get('labels', []))} (e.g. {ex})"  # type: ignore[arg-type]
    )
    pod_labels = list(info.get("pod_labels", []))  # type: ignore[call-overload]
    if pod_labels:
        return msg + (
            f"; they carry {', '.join(pod_labels)}, and the selector was also tried with its pod/namespace/container "
            f"labels renamed as in {', '.join(LABEL_SCHEMES)}: no device has this component's pod name there. Check the "
            f'pod name, or give a GPU selector such as {pod_labels[0]}="<pod>" or Hostname="<node>",gpu="<index>"; '
            "a device that carries no pod label (dcgm-exporter names only the pods it can attribute a device to) is "
            "mapped with --gpu-join kube_pod_info:node=Hostname"
        )
    return msg + (
        "; they carry no pod label (dcgm-exporter without Kubernetes pod mapping): map the component to its devices "
        f'with gpu_selectors (CLI --gpu {comp}=\'Hostname="<node>",gpu="<index>"\' or UUID="<GPU-...>") '
        "or join through kube_pod_info (CLI --gpu-join kube_pod_info:node=Hostname)"
    )


def collect_metrics(
    prom: str | PromClient,
    components: Mapping[str, str],
    start: float,
    end: float,
    *,
    step_s: float = 5.0,
    metric_set: str = "basic",
    queries: Mapping[str, str | Sequence[str] | MetricDef] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    rate_window_s: float | None = None,
    scrape_interval_s: float = 15.0,
    roles: Mapping[str, Sequence[str]] | None = None,
    max_workers: int = 4,
    gpu_selectors: Mapping[str, str] | None = None,
    gpu_join: GpuJoin | str | None = None,
) -> MetricsResult:
    """Query every applicable metric for every component; see the module docstring.

    ``components``: component name (no ``_``) → label selector.  ``roles``:
    component → ``where`` tags, overriding :func:`component_tags` (for
    backends whose component names differ from the paper's).
    ``rate_window_s`` defaults to ``max(2·step, 4·scrape_interval)`` so every
    ``rate()`` sees at least four scrapes.  ``aliases`` defaults to
    :func:`default_aliases`; pass ``{}`` to disable.

    GPU (DCGM) metrics use ``gpu_selectors[component]`` (a label selector of
    the component's devices, e.g. ``'Hostname="gpu-node-1",gpu="0"'`` or
    ``'UUID="GPU-..."'``), else the mapping found by ``gpu_join``
    (:class:`GpuJoin` or its text form ``kube_pod_info:node=Hostname``), else
    the component's selector; see :func:`resolve_gpu_selectors`.  A
    component the GPU metrics apply to that gets no GPU column is listed in
    ``gpu_unmapped`` with what DCGM series exist and how to map them.

    Raises ``ValueError`` for bad component names, empty selectors, GPU
    selectors of unknown components or a malformed ``gpu_join``;
    :class:`PrometheusError` when Prometheus is unreachable or refuses a query.
    """
    bad = [c for c in components if "_" in c]
    if bad:
        raise ValueError(f"component names must not contain '_' (column names are <component>_<metric>): {bad}")
    empty = [c for c, sel in components.items() if not str(sel).strip()]
    if empty:
        raise ValueError(f'components {empty} have an empty label selector; give one such as pod="{empty[0]}"')
    join = GpuJoin.parse(gpu_join) if isinstance(gpu_join, str) else gpu_join
    client = PromClient(prom) if isinstance(prom, str) else prom
    window = rate_window_s if rate_window_s is not None else max(2 * step_s, 4 * scrape_interval_s)
    w = f"{int(window)}s" if float(window).is_integer() else f"{int(window * 1000)}ms"
    aliases = default_aliases() if aliases is None else aliases
    defs = metric_defs(metric_set, queries)
    grid = time_grid(start, end, step_s)
    tags = {c: frozenset(roles[c]) | {"all"} if roles and c in roles else component_tags(c) for c in components}
    unnamed = {c: sel for c, sel in components.items() if tags[c] == frozenset({"all"}) and not (roles and c in roles)}
    try:  # another setup's names (vllm-0, ingress-nginx-controller-x): the roles its series show
        inferred = infer_roles(client, unnamed, start - window, end, defs, aliases) if unnamed else {}
    except BaseException:
        if isinstance(prom, str):
            client.close()
        raise
    tags.update(inferred)
    gpu_defs = [m for m in defs if is_gpu_metric(m)]
    gpu_comps = {c: sel for c, sel in components.items() if any(m.where in tags[c] for m in gpu_defs)}
    try:
        gpu_sel, join_problems = (
            resolve_gpu_selectors(client, gpu_comps, start, end, step_s, gpu_selectors=gpu_selectors, join=join)
            if gpu_comps
            else ({}, {})
        )
        unknown = sorted(set(gpu_selectors or {}) - set(gpu_comps))
        if unknown:
            raise ValueError(
                f"GPU selectors given for {unknown}, which no GPU metric applies to "
                f"(components with GPU metrics: {sorted(gpu_comps) or 'none'}); check the names or roles"
            )
    except BaseException:
        if isinstance(prom, str):
            client.close()
        raise

    held = _names_held(client, start - window, end)
    mappings: dict[str, dict[str, object]] = {}

    def one_metric(m: MetricDef) -> list[tuple[str, np.ndarray | None, str, str]]:
        """(column, values or None, query used, reason if None) for each component."""
        forms = query_forms(m, aliases, (queries or {}).get(m.name))
        # a form reading a series name Prometheus does not hold in the window is not asked
        usable = [f for f in forms if held is None or all(n in held for n in _SERIES.findall(f.template))]
        asked = sorted({n for f in forms for n in _SERIES.findall(f.template)})  # every series name the forms read
        order = list(range(len(usable)))
        schemes_first: list[str] = []
        signal = f"{m.description} ({m.unit})" if m.unit else m.description
        skipped = "".join(f"; {name} was not tried: it has no {label} label, which this query selects on" for name, label in _not_tried(m))
        out = []
        gpu = is_gpu_metric(m)
        for comp, comp_sel in components.items():
            if m.where not in tags[comp]:
                continue
            sel = gpu_sel[comp]["selector"] if gpu else comp_sel
            col = f"{comp}_{m.name}"
            if not usable:
                why = f"{signal}: Prometheus holds no series named {', '.join(asked)} in the window{skipped}"
                out.append((col, None, "", why))
                continue
            found = None
            rank = {scheme: i for i, scheme in enumerate(schemes_first)}  # the schemes that worked, latest first
            schemes = sorted(selector_schemes(sel), key=lambda t: rank.get(t[0], len(rank)))
            for scheme, ssel, renamed in schemes:
                for k in order:
                    q = usable[k].template.format(sel=ssel, w=w)
                    series = client.query_range(q, start, end, step_s)
                    if not series:
                        continue
                    if len(series) > 1:
                        raise PrometheusError(
                            f"query for {col} returned {len(series)} series, expected one: {q!r}; aggregate it (sum/avg/max) in the template"
                        )
                    vals = np.full(len(grid), np.nan)
                    idx = np.rint((series[0].times - start) / step_s).astype(int)
                    ok = (idx >= 0) & (idx < len(grid))
                    vals[idx[ok]] = series[0].values[ok]
                    found = (vals, q)
                    order.remove(k)
                    order.insert(0, k)  # the form that worked first for the next component
                    if scheme in schemes_first:
                        schemes_first.remove(scheme)
                    schemes_first.insert(0, scheme)
                    f = usable[k]
                    if f.swaps or renamed or f.factor != 1.0:
                        mappings[col] = {
                            "series": dict(f.swaps),
                            "labels": dict(renamed),
                            "label_scheme": scheme,
                            "factor": f.factor,
                            "sources": list(f.sources),
                        }
                    break
                if found is not None:
                    break
            if found is None:
                tried = " | ".join(f.template.format(sel=sel, w=w) for f in usable)
                why = f"{signal}: no series for any of: {tried}"
                others = [t for t in schemes if t[0] != "as given"]
                if others:
                    why += f"; also tried with the selector's labels renamed as in {', '.join(t[0] for t in others)} ({' | '.join(t[1] for t in others)})"
                absent = [n for n in asked if n not in (held or ())]
                if held is not None and absent:
                    why += f"; Prometheus holds no series named {', '.join(absent)} in the window"
                out.append((col, None, "", why + skipped))
            else:
                out.append((col, found[0], found[1], ""))
        return out

    res = MetricsResult(frame=pd.DataFrame({"time": grid}), gpu_selectors=gpu_sel, mappings=mappings,
                        roles_inferred={c: sorted(r - {"all"}) for c, r in inferred.items()})
    try:
        with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
            results = list(pool.map(one_metric, defs))
        flat = {col: (vals, q, why) for per_metric in results for col, vals, q, why in per_metric}
        unmapped = [
            c
            for c in gpu_comps
            if not any(
                flat.get(f"{c}_{m.name}", (None,))[0] is not None and np.isfinite(flat[f"{c}_{m.name}"][0]).any()  # type: ignore[arg-type]
                for m in gpu_defs
            )
        ]
        if unmapped:
            names = [alt for m in gpu_defs for n in series_names(m.promql) for alt in (n, *aliases.get(n, ()))]
            res.dcgm_series = describe_dcgm_series(client, names, start, end)
            join_values: dict[str, list[str]] = {}  # the joined label's values the DCGM series hold
            for label in {gpu_sel[c]["join_label"] for c in unmapped if gpu_sel[c].get("join_label")}:
                try:
                    join_values[label] = client.label_values(label, start, end, match='{__name__=~"(?i)dcgm_.*"}')
                except PrometheusError:
                    pass
            for c in unmapped:
                res.gpu_unmapped[c] = _unmapped_message(c, gpu_sel[c], join_problems.get(c), res.dcgm_series,
                                                        join_values.get(gpu_sel[c].get("join_label", "")))
                for m in gpu_defs:
                    col = f"{c}_{m.name}"
                    if col in flat and flat[col][0] is None:
                        flat[col] = (None, "", f"{flat[col][2]}; {res.gpu_unmapped[c]}")
        res.several_pods = _several_pods(client, components, start, end)
    finally:
        if isinstance(prom, str):
            client.close()
    cols: dict[str, np.ndarray] = {}
    by_comp: dict[str, int] = dict.fromkeys(components, 0)
    # Column order: component by component, metrics in catalogue order.
    for comp in components:
        for m in defs:
            col = f"{comp}_{m.name}"
            if col not in flat:
                continue
            vals, q, why = flat[col]
            if vals is None:
                res.dropped[col] = why
                continue
            n_inf = int(np.isinf(vals).sum())
            if n_inf:
                # histogram_quantile answers +Inf when the quantile falls in the +Inf bucket: no finite estimate
                vals = np.where(np.isinf(vals), np.nan, vals)
                res.inf_replaced[col] = n_inf
            if not np.isfinite(vals).any():
                res.dropped[col] = f"no finite value in the window: {q}"
                continue
            cols[col] = vals
            res.queries[col] = q
            by_comp[comp] += 1
    for col in list(res.mappings):
        if col not in cols:
            del res.mappings[col]
    res.frame = pd.concat([res.frame, pd.DataFrame(cols)], axis=1)
    res.missing_components = [c for c, n in by_comp.items() if n == 0]
    return res


def _several_pods(client: PromClient, components: Mapping[str, str], start: float, end: float) -> dict[str, list[str]]:
    """Components whose selector matches its pod label with a regular expression (``pod=~"vllm-.*"``) and selects
    several pods in ``[start, end]``: their columns sum (CPU, memory) or average (GPU) those pods; said, not hidden."""
    out: dict[str, list[str]] = {}
    for comp, sel in components.items():
        m = POD_REGEX_MATCHER.search(str(sel))
        if m is None:
            continue
        try:
            pods = sorted(client.label_values(m.group(1), start, end, match=f"{{{sel}}}"))
        except PrometheusError:
            continue
        if len(pods) > 1:
            out[comp] = pods
    return out


def split_frame(frame: pd.DataFrame, queries: Mapping[str, object] | None = None) -> dict[str, pd.DataFrame]:
    """``{"basic": time + basic columns, "extended": the whole frame}`` from one extended frame.

    A column is basic when its metric part is a basic metric name (custom
    ``queries`` entries count as extended unless they override a basic name).
    """
    from llmrca.model import split_column
    from llmrca.telemetry import BASIC_NAMES

    basic_cols = ["time"] + [c for c in frame.columns if c != "time" and split_column(c)[1] in BASIC_NAMES]
    return {"basic": frame[basic_cols].copy(), "extended": frame.copy()}
