"""Metric frames from Prometheus: ``time`` + ``<component>_<metric>`` on a regular grid.

For each component (a name and a PromQL label selector such as
``pod="ray-worker-1"`` or ``job="gateway",instance=~".*:9113"``) and each
metric of the catalogue (:mod:`llmrca.telemetry`) that applies to it, the
metric's PromQL template is filled in (``{sel}`` = the selector, ``{w}`` =
the rate window) and asked with ``query_range`` over ``[start, end]`` at
``step_s``.  A sample Prometheus has no value for stays NaN; a column with no
finite value at all is dropped and reported, never filled in.

Aliases: the same series can be exposed under other names (Ray Serve's
``ray_vllm:...``; ``vllm_...`` from prometheus-client >= 0.23 over
OpenMetrics).  Each series name in a template may have alternatives; the
candidates are tried in order and the first query that returns any series is
used (recorded per column in :attr:`MetricsResult.queries`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from llmrca.collect.prom import PromClient, PrometheusError
from llmrca.telemetry import BASIC, EXTENDED, GATEWAY, HEAD, MetricDef, is_serving

_VLLM_NAME = re.compile(r"vllm:[A-Za-z0-9_]+?(?=_bucket\b|\{|\b)")


def default_aliases() -> dict[str, tuple[str, ...]]:
    """For every ``vllm:<name>`` series of the catalogue: ``vllm_<name>``, ``ray_vllm:<name>``, ``ray_vllm_<name>``."""
    out: dict[str, tuple[str, ...]] = {}
    for m in (*BASIC, *EXTENDED):
        for name in _VLLM_NAME.findall(m.promql):
            rest = name.removeprefix("vllm:")
            out[name] = (f"vllm_{rest}", f"ray_vllm:{rest}", f"ray_vllm_{rest}")
    return out


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


def metric_defs(metric_set: str, queries: Mapping[str, str | Sequence[str] | MetricDef] | None = None) -> list[MetricDef]:
    """The catalogue entries of ``basic`` or ``extended``, with overrides / additions from ``queries``."""
    if metric_set not in ("basic", "extended"):
        raise ValueError(f"metric_set must be 'basic' or 'extended', got {metric_set!r}")
    defs = {m.name: m for m in (BASIC if metric_set == "basic" else (*BASIC, *EXTENDED))}
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
    """Query templates to try for ``m``, canonical first."""
    if override is not None and not isinstance(override, MetricDef):
        return [override] if isinstance(override, str) else list(override)
    out = [m.promql]
    for name, alts in aliases.items():
        if name in m.promql:
            out.extend(m.promql.replace(name, alt) for alt in alts)
    return out


def time_grid(start: float, end: float, step_s: float) -> np.ndarray:
    """Prometheus' evaluation instants of a range query: start, start+step, ... <= end."""
    if step_s <= 0:
        raise ValueError(f"step_s must be > 0, got {step_s}")
    n = math.floor((end - start) / step_s + 1e-9) + 1
    return start + step_s * np.arange(n)


@dataclass
class MetricsResult:
    """A frame plus how it was made: the query per column and what was dropped and why."""

    frame: pd.DataFrame
    queries: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    missing_components: list[str] = field(default_factory=list)
    inf_replaced: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict[str, object]:
        return {
            "queries": dict(self.queries),
            "dropped": dict(self.dropped),
            "missing_components": list(self.missing_components),
            "inf_replaced": dict(self.inf_replaced),
        }


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
) -> MetricsResult:
    """Query every applicable metric for every component; see the module docstring.

    ``components``: component name (no ``_``) → label selector.  ``roles``:
    component → ``where`` tags, overriding :func:`component_tags` (for
    backends whose component names differ from the paper's).
    ``rate_window_s`` defaults to ``max(2·step, 4·scrape_interval)`` so every
    ``rate()`` sees at least four scrapes.  ``aliases`` defaults to
    :func:`default_aliases`; pass ``{}`` to disable.
    """
    bad = [c for c in components if "_" in c]
    if bad:
        raise ValueError(f"component names must not contain '_' (column names are <component>_<metric>): {bad}")
    empty = [c for c, sel in components.items() if not str(sel).strip()]
    if empty:
        raise ValueError(f'components {empty} have an empty label selector; give one such as pod="{empty[0]}"')
    client = PromClient(prom) if isinstance(prom, str) else prom
    window = rate_window_s if rate_window_s is not None else max(2 * step_s, 4 * scrape_interval_s)
    w = f"{int(window)}s" if float(window).is_integer() else f"{int(window * 1000)}ms"
    aliases = default_aliases() if aliases is None else aliases
    defs = metric_defs(metric_set, queries)
    grid = time_grid(start, end, step_s)
    tags = {c: frozenset(roles[c]) | {"all"} if roles and c in roles else component_tags(c) for c in components}

    def one_metric(m: MetricDef) -> list[tuple[str, np.ndarray | None, str, str]]:
        """(column, values or None, query used, reason if None) for each component."""
        cands = candidates(m, aliases, (queries or {}).get(m.name))
        order = list(range(len(cands)))
        out = []
        for comp, sel in components.items():
            if m.where not in tags[comp]:
                continue
            col = f"{comp}_{m.name}"
            found = None
            for k in order:
                q = cands[k].format(sel=sel, w=w)
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
                break
            if found is None:
                tried = " | ".join(c.format(sel=sel, w=w) for c in cands)
                out.append((col, None, "", f"no series for any of: {tried}"))
            else:
                out.append((col, found[0], found[1], ""))
        return out

    with ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool:
        results = list(pool.map(one_metric, defs))
    res = MetricsResult(frame=pd.DataFrame({"time": grid}))
    cols: dict[str, np.ndarray] = {}
    by_comp: dict[str, int] = dict.fromkeys(components, 0)
    # Column order: component by component, metrics in catalogue order.
    flat = {col: (vals, q, why) for per_metric in results for col, vals, q, why in per_metric}
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
    res.frame = pd.concat([res.frame, pd.DataFrame(cols)], axis=1)
    res.missing_components = [c for c, n in by_comp.items() if n == 0]
    return res


def split_frame(frame: pd.DataFrame, queries: Mapping[str, object] | None = None) -> dict[str, pd.DataFrame]:
    """``{"basic": time + basic columns, "extended": the whole frame}`` from one extended frame.

    A column is basic when its metric part is a basic metric name (custom
    ``queries`` entries count as extended unless they override a basic name).
    """
    from llmrca.model import split_column
    from llmrca.telemetry import BASIC_NAMES

    basic_cols = ["time"] + [c for c in frame.columns if c != "time" and split_column(c)[1] in BASIC_NAMES]
    return {"basic": frame[basic_cols].copy(), "extended": frame.copy()}
