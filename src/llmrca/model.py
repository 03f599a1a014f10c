"""The data model shared by every part of llmrca.

A :class:`Case` is one labelled failure: telemetry around one injected fault
plus the ground truth.  Every testbed backend ends in a Case and every RCA
method starts from one.  A :class:`Ranking` is what a method answers.

Column convention (RCAEval-compatible): ``metrics`` has a ``time`` column in
epoch seconds and one column per ``<component>_<metric>``.  Component names
contain no ``_``; the metric part may (``ray-worker-1_latency-90``,
``ray-worker-1_vllm:time_to_first_token_seconds:p90``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

#: Fault types of the paper's campaign, in Table 1 order.
FAULT_TYPES: tuple[str, ...] = ("cpu", "memory", "network", "gpu")

#: LLM-serving fault types beyond the paper's four, in table order:
#: KV-cache pressure, GPU thermal / hardware slowdown, GPU hardware error
#: (Xid), slow model (re)load, packet loss, noisy neighbour (CPU contention
#: from outside the pod).
EXTRA_FAULT_TYPES: tuple[str, ...] = ("kv-cache", "gpu-thermal", "gpu-error", "model-load", "packet-loss", "noisy-neighbour")

#: Every fault type llmrca knows, paper's first.
ALL_FAULT_TYPES: tuple[str, ...] = FAULT_TYPES + EXTRA_FAULT_TYPES

#: Ground truth of a case with nothing injected (a healthy window).
NO_FAULT = "none"

#: Folder-name spellings used by RCAEval and the paper's artifact, mapped to ours.
FAULT_ALIASES: dict[str, str] = {
    "cpu": "cpu",
    "mem": "memory",
    "memory": "memory",
    "memleak": "memory",
    "mem-leak": "memory",
    "memory-leak": "memory",
    "delay": "network",
    "netdelay": "network",
    "net-delay": "network",
    "network-delay": "network",
    "cpu-hog": "cpu",
    "cpuhog": "cpu",
    "cpu-stress": "cpu",
    "network": "network",
    "net": "network",
    "latency": "network",
    "gpu": "gpu",
    "gpu-throttle": "gpu",
    "disk": "disk",
    "loss": "packet-loss",
    "packet-loss": "packet-loss",
    "network-loss": "packet-loss",  # Chaos Mesh NetworkChaos action 'loss'
    "net-loss": "packet-loss",
    "packetloss": "packet-loss",
    "network-latency": "network",
    "memory-stress": "memory",  # Chaos Mesh StressChaos memory stressor
    "mem-stress": "memory",
    "gpu-power": "gpu",
    "gpu-power-limit": "gpu",
    "gpu-power-cap": "gpu",
    "power-limit": "gpu",
    "gpu-xid": "gpu-error",
    "kv-cache": "kv-cache",
    "kvcache": "kv-cache",
    "gpu-thermal": "gpu-thermal",
    "gpu-error": "gpu-error",
    "xid": "gpu-error",
    "model-load": "model-load",
    "noisy-neighbour": "noisy-neighbour",
    "noisy-neighbor": "noisy-neighbour",
    "socket": "socket",
}

#: Names of the metric sets a Case may carry.  ``basic`` is the paper's set
#: (cpu, memory, network, gpu utilisation, p50/p90 latency per component);
#: ``extended`` adds LLM-serving telemetry under its real names (vLLM, Ray
#: Serve, DCGM, cAdvisor).  See :mod:`llmrca.telemetry`.
METRIC_SETS: tuple[str, ...] = ("basic", "extended")


class CaseValidationError(ValueError):
    """A Case (or a case folder on disk) is malformed.

    ``problems`` lists every problem found, each a sentence that says what is
    wrong, where, and what to do.
    """

    def __init__(self, problems: Sequence[str], where: str = "") -> None:
        self.problems = list(problems)
        self.where = where
        #: a case folder's missing ground truth, found while reading it (said by validate and import with the
        #: problems, which rank, needing no truth, does not)
        self.truth_problem: str | None = None
        head = f"invalid case {where}: " if where else "invalid case: "
        super().__init__(head + "; ".join(self.problems))


def no_basic_set_problem(case_name: str, sets: Iterable[str]) -> str | None:
    """Why a case with the metric sets ``sets`` cannot be evaluated, or None: it has no ``basic`` set, which every
    method reads unless it prefers another set the case has (:func:`llmrca.methods.common.metric_set.choose_metric_set`).
    One wording for ``dataset validate``, ``rank`` and ``evaluate`` (a run on such a case is ``invalid_case``)."""
    have = sorted(str(s) for s in sets)
    if "basic" in have:
        return None
    return (f"case {case_name!r} has no metric set 'basic' (has: {', '.join(have) or 'none'}); the methods read the basic "
            "set unless they prefer another: name its file in case.json metric_sets, e.g. \"basic\": \"data.csv\"")


def normalize_fault_type(name: str) -> str:
    """Map a folder-name spelling (``mem``, ``delay``; ``_`` and ``-`` alike: ``network_loss``) to our fault type."""
    key = name.strip().lower()
    return FAULT_ALIASES.get(key, FAULT_ALIASES.get(key.replace("_", "-"), key))


def split_column(column: str) -> tuple[str, str]:
    """Split ``<component>_<metric>`` at the first ``_`` (RCAEval's rule)."""
    comp, sep, metric = column.partition("_")
    if not sep:
        return column, ""
    return comp, metric


def components_of(columns: Iterable[str]) -> list[str]:
    """Components named by metric columns, in first-appearance order."""
    seen: dict[str, None] = {}
    for col in columns:
        if col == "time":
            continue
        seen.setdefault(split_column(col)[0], None)
    return list(seen)


@dataclass(frozen=True)
class Topology:
    """The directed call graph: an edge ``(a, b)`` means *a calls b*.

    ``entry`` is where client requests enter (the gateway); methods that need
    a service-level indicator use the entry point's latency.
    """

    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...] = ()
    entry: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "edges", tuple((str(a), str(b)) for a, b in self.edges))

    def to_networkx(self) -> Any:
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(self.nodes)
        g.add_edges_from(self.edges)
        return g

    def callees(self, node: str) -> list[str]:
        return [b for a, b in self.edges if a == node]

    def callers(self, node: str) -> list[str]:
        return [a for a, b in self.edges if b == node]

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": list(self.nodes), "edges": [list(e) for e in self.edges], "entry": self.entry}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Topology:
        return cls(
            nodes=tuple(d.get("nodes", ())),
            edges=tuple((a, b) for a, b in d.get("edges", ())),
            entry=d.get("entry"),
        )


@dataclass(frozen=True)
class FaultSpec:
    """What to inject: fault type, target component, parameters, duration."""

    type: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 60.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "target": self.target, "params": dict(self.params), "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaultSpec:
        return cls(type=d["type"], target=d["target"], params=dict(d.get("params", {})), duration_s=float(d.get("duration_s", 60.0)))


@dataclass(frozen=True)
class FaultRecord:
    """What was injected and what was achieved (measured after injection).

    A healthy case (nothing injected) has ``type == NO_FAULT`` and
    ``target is None``; ``start``/``end`` then still mark the protocol's fault
    window (the instant a fault would have been injected, and its end), so
    methods split normal and anomalous windows as usual.
    """

    type: str
    target: str | None
    requested: Mapping[str, Any] = field(default_factory=dict)
    achieved: Mapping[str, Any] = field(default_factory=dict)
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "target": self.target,
            "requested": dict(self.requested),
            "achieved": dict(self.achieved),
            "start": self.start,
            "end": self.end,
        }

    @property
    def injected(self) -> bool:
        """False for a healthy case (``type == NO_FAULT``: nothing was injected)."""
        return self.type != NO_FAULT

    @classmethod
    def healthy(cls, start: float | None, end: float | None, **achieved: Any) -> FaultRecord:
        """The record of a healthy case: nothing injected during ``[start, end)`` (epoch seconds, the protocol's fault window)."""
        return cls(type=NO_FAULT, target=None, requested={}, achieved={"injected": False, **achieved}, start=start, end=end)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FaultRecord:
        return cls(
            type=normalize_fault_type(d["type"]),
            target=d.get("target"),
            requested=dict(d.get("requested", {})),
            achieved=dict(d.get("achieved", {})),
            start=d.get("start"),
            end=d.get("end"),
        )


@dataclass
class Case:
    """One labelled failure case.

    ``metric_sets`` holds every metric set the case carries (``basic`` always,
    ``extended`` when available); ``metrics`` is the one in use (by default
    ``basic``).  Use :meth:`with_metric_set` to switch, :meth:`without_truth`
    before handing a case to a method, and :meth:`validate` to check it.
    """

    metrics: pd.DataFrame
    inject_time: float
    name: str = "case"
    logs: pd.DataFrame | None = None
    traces: pd.DataFrame | None = None
    fault: FaultRecord | None = None
    root_causes: frozenset[str] = frozenset()
    topology: Topology | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    metric_sets: dict[str, pd.DataFrame] = field(default_factory=dict)
    metric_set: str = "basic"

    def __post_init__(self) -> None:
        self.root_causes = frozenset(self.root_causes)
        if not self.metric_sets:
            self.metric_sets = {self.metric_set: self.metrics}
        else:
            self.metric_sets.setdefault(self.metric_set, self.metrics)

    # -- views ---------------------------------------------------------------
    @property
    def components(self) -> list[str]:
        """Candidate components: the topology's nodes, else those in the metrics."""
        if self.topology is not None and self.topology.nodes:
            return list(self.topology.nodes)
        return components_of(self.metrics.columns)

    @property
    def fault_type(self) -> str | None:
        return self.fault.type if self.fault is not None else None

    @property
    def healthy(self) -> bool:
        """True for a case with nothing injected (fault type :data:`NO_FAULT`): its ground truth is "no root cause"."""
        return self.fault is not None and self.fault.type == NO_FAULT

    @property
    def fault_end(self) -> float | None:
        return self.fault.end if self.fault is not None else None

    def normal(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Rows strictly before the injection time."""
        df = self.metrics if df is None else df
        return df[df["time"] < self.inject_time]

    def anomalous(self, df: pd.DataFrame | None = None) -> pd.DataFrame:
        """Rows from the injection time on, up to (excluding) the fault end when it is known.

        The fault end is ground truth: a case handed to a method
        (:meth:`without_truth`) has none, so this is then every row from the
        injection on.  Methods split windows with
        :mod:`llmrca.methods.common.windows`, which never reads the fault end.
        """
        df = self.metrics if df is None else df
        mask = df["time"] >= self.inject_time
        end = self.fault_end
        if end is not None and end > self.inject_time:
            mask &= df["time"] < end
        return df[mask]

    def with_metric_set(self, name: str) -> Case:
        """A copy whose ``metrics`` is the named set; KeyError names what exists."""
        if name not in self.metric_sets:
            raise KeyError(f"case {self.name!r} has no metric set {name!r} (has: {', '.join(sorted(self.metric_sets))})")
        return replace(self, metrics=self.metric_sets[name], metric_set=name, metric_sets=dict(self.metric_sets))

    @property
    def label(self) -> str:
        """How a message names the case: ``case 'ray-worker-1_cpu/1'``, or ``the case`` for a blinded one
        (:meth:`without_truth` renames it "case": its name may give the fault away)."""
        return "the case" if self.name == "case" else f"case {self.name!r}"

    def without_truth(self) -> Case:
        """A copy with the ground truth removed: what a method may see."""
        meta = {k: v for k, v in self.meta.items() if k not in {"fault", "root_causes", "target", "fault_type"}}
        return replace(self, fault=None, root_causes=frozenset(), meta=meta, name="case", metric_sets=dict(self.metric_sets))

    # -- validation ------------------------------------------------------------
    def problems(self) -> list[str]:
        """Every problem with this case, as actionable sentences (empty when valid)."""
        out: list[str] = []
        for set_name, df in self.metric_sets.items():
            out.extend(f"metric set {set_name!r}: {p}" for p in frame_problems(df, self.inject_time))
        comps = set(self.components)
        if self.topology is not None:
            bad_nodes = [n for n in self.topology.nodes if "_" in n]
            if bad_nodes:
                out.append(f"topology node names contain '_': {bad_nodes}; rename them (component names must not contain '_')")
            for a, b in self.topology.edges:
                if a not in self.topology.nodes or b not in self.topology.nodes:
                    out.append(f"topology edge {a}->{b} names a node that is not in topology.nodes")
        bad_roots = sorted(r for r in self.root_causes if "_" in r)
        if bad_roots:
            out.append(
                f"root causes {bad_roots} contain '_'; component names must not contain '_' "
                "(a folder '<component>_<fault>' splits at the first '_': rename the component, e.g. ray-worker-1)"
            )
        missing = sorted(set(self.root_causes) - comps)
        if missing:
            pods = sorted(c for c in comps for r in missing if str(c).startswith(f"{r}-"))  # a Deployment's pods: <name>-<hash>
            where = self.meta.get("truth_from_folder") if isinstance(self.meta, dict) else None
            out.append(f"root causes {missing} are not components of the case (components: {sorted(comps)})"
                       + (f"; they were read from the folder name {where!r} ('<component>_<fault>')" if where else "")
                       + (f"; {', '.join(pods[:3])} look like pods of it (a Deployment names them <name>-<hash>): name the columns "
                          "by the service, or give the pod as the root cause in case.json" if pods else ""))
        if self.healthy and self.root_causes:
            out.append(f"a healthy case (fault type {NO_FAULT!r}, nothing injected) has root causes {sorted(self.root_causes)}; a healthy case has none")
        if self.fault is not None and self.fault.injected and not self.fault.target:
            out.append(f"fault {self.fault.type!r} has no target; name the component it was injected into")
        if self.fault is not None and self.fault.end is not None and self.fault.end < self.inject_time:
            out.append(f"fault end {self.fault.end} is before the injection time {self.inject_time}")
        return out

    def validate(self) -> Case:
        """Raise :class:`CaseValidationError` listing every problem; return self if valid."""
        probs = self.problems()
        if probs:
            raise CaseValidationError(probs, where=self.name)
        return self


def one_hour_steps(t: Any) -> np.ndarray:
    """Which steps of ``t`` (epoch s, shape ``(n,)``; the result has shape ``(n - 1,)``) go one hour forward or back,
    within two sampling steps, in times otherwise sampled at least every 15 minutes: a daylight-saving change in
    local times written without a UTC offset.  All False when ``t`` has no increasing step or is sampled coarser."""
    d = np.diff(np.asarray(t, dtype=float))
    pos = d[np.isfinite(d) & (d > 0)]
    step = float(np.median(pos)) if pos.size else 0.0
    if not 0 < step < 900:
        return np.zeros(d.shape, dtype=bool)
    return np.abs(np.abs(d) - 3600.0) <= 2 * step


def frame_problems(df: pd.DataFrame, inject_time: float | None) -> list[str]:
    """Problems of one metrics frame (``time`` + ``<component>_<metric>`` columns)."""
    out: list[str] = []
    if not isinstance(df, pd.DataFrame):
        return [f"metrics must be a pandas DataFrame, got {type(df).__name__}"]
    if df.empty or len(df.columns) == 0:
        return ["metrics frame is empty (no rows or no columns); the case has no data to analyse"]
    if "time" not in df.columns:
        return [f"no 'time' column (columns start with {list(df.columns[:5])}); add epoch seconds as 'time'"]
    time = df["time"]
    if not pd.api.types.is_numeric_dtype(time):
        bad = time[pd.to_numeric(time, errors="coerce").isna()]
        first = bad.index[0] if len(bad) else None
        out.append(f"'time' is not numeric (e.g. row {first}: {bad.iloc[0]!r}); use epoch seconds")
        tv = np.array([], dtype=float)  # time checks skipped; the columns are still checked (one pass)
    else:
        tv = time.to_numpy(dtype=float)
    if np.isnan(tv).any():
        out.append(f"'time' has {int(np.isnan(tv).sum())} missing values (first at row {int(np.argmax(np.isnan(tv)))}); "
                   "drop those rows or give them their times")
        tv = np.array([], dtype=float)
    d = np.diff(tv)
    if (d == 0).any():
        i = int(np.argmax(d == 0)) + 1
        distinct = np.unique(tv)
        if len(d) >= 4 and (d == 0).mean() >= 0.25 and len(distinct) > 1:
            # most rows repeat a time: the times lost digits (1.750000e+18 ns), not rows written twice
            q = float(np.median(np.diff(distinct)))
            out.append(f"'time' repeats in runs: {len(distinct)} distinct values for {len(tv)} rows, {q:g} s apart (first repeat at row "
                       f"{i}: {tv[i]}); the times were written with too few digits (e.g. in exponent notation): write them in full")
        elif len(d) >= 4 and len(distinct) == 1:
            out.append(f"'time' is the same ({tv[0]}) in all {len(tv)} rows: the times were written with too few digits (e.g. in "
                       "exponent notation, 1.750000e+18) or one time was copied to every row; write each row's time in full")
        else:
            out.append(f"'time' has duplicated timestamps (first at row {i}: {tv[i]}); aggregate or drop duplicate rows")
    if (d < 0).any():
        i = int(np.argmax(d < 0)) + 1
        if one_hour_steps(tv)[i - 1]:
            out.append(f"'time' goes back by one hour at row {i} ({tv[i]} after {tv[i - 1]}): local times without a UTC offset across "
                       "the end of daylight saving (the hour repeats); write the times in UTC or with their offset (sorting would "
                       "interleave two hours)")
        else:
            out.append(f"'time' is not increasing (row {i}: {tv[i]} after {tv[i - 1]}); sort rows by time")
    data_cols = [c for c in df.columns if c != "time"]
    if not data_cols:
        out.append("no metric columns besides 'time'")
    flattened = [str(c) for c in data_cols if re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*\{.*=.*\}", str(c).strip())]
    if flattened:  # an export of Prometheus series as they print, which the dataset layer could not name (see series_columns)
        from llmrca.names import series_columns

        renames, unresolved = series_columns([str(c) for c in data_cols])
        c0 = flattened[0]
        why = unresolved.get(c0)
        eg = f" ({renames[c0]!r})" if c0 in renames else ""
        out.append(f"{len(flattened)} column(s) are Prometheus series written with their labels (e.g. {c0!r}{eg}), not "
                   "'<component>_<metric>'" + (f": {c0!r} cannot be named so because {why}" if why else "")
                   + "; name each by its component (the pod or service label) and metric, e.g. 'ray-worker-1_vllm:num_requests_running' "
                   "(or collect them with `llmrca collect`, which names them so)")
    empty = [str(c) for c in data_cols if re.fullmatch(r".*\{\s*\}\s*", str(c))]
    if empty:  # metric{}: read as component 'metric' otherwise (baro ranked such a phantom component first)
        out.append(f"{len(empty)} column(s) end in an empty label set (e.g. {empty[0]!r}): they name no component; export them "
                   "with the pod label, or name them '<component>_<metric>'")
    legend = [str(c) for c in data_cols if re.fullmatch(r"\s*\{.*=.*\}\s*", str(c))]
    if legend:  # a Grafana legend's label set, the metric name left out
        out.append(f"{len(legend)} column(s) are label sets without a metric name (e.g. {legend[0]!r}), as a dashboard legend writes "
                   "them: export them with the metric's name, named '<component>_<metric>', e.g. 'carts_container_cpu_usage_seconds_total'")
    no_sep = [c for c in data_cols if "_" not in str(c) and str(c) not in set(flattened) | set(legend)]
    if no_sep:
        out.append(f"columns {no_sep[:5]} are not '<component>_<metric>'; name them like 'ray-worker-1_cpu'")
    # one pass over a float matrix (per-column pandas access is slow on wide frames)
    dtypes = df.dtypes
    numeric = [c for c in data_cols if pd.api.types.is_numeric_dtype(dtypes[c])]
    numeric_set = set(numeric)  # built once: a set per column made this quadratic (100k columns took minutes)
    out.extend(f"column {c!r} is not numeric; convert it or drop it" for c in data_cols if c not in numeric_set)
    if numeric:
        v = numeric_block(df, numeric)
        all_nan = np.isnan(v).all(axis=0)
        has_inf = np.isinf(v).any(axis=0)
        for j in np.flatnonzero(all_nan | has_inf):
            c = numeric[j]
            if all_nan[j]:
                out.append(f"column {c!r} is all NaN; drop it")
            else:
                out.append(f"column {c!r} has infinite values (first at row {int(np.argmax(np.isinf(v[:, j])))}); replace them")
    if inject_time is not None and len(tv) and not (isinstance(inject_time, float | int) and math.isfinite(inject_time)):
        out.append(f"injection time {inject_time!r} is not a finite number")
    elif inject_time is not None and len(tv) and not (tv.min() <= inject_time <= tv.max()):
        hint = tz_shift_hint(float(inject_time), float(tv.min()), float(tv.max()))
        if not hint and tv.max() < 1e8 <= inject_time:  # the data's times are no epoch times of this era
            hint = ("the data's 'time' is not in epoch seconds: "
                    + ("its values look like spreadsheet serial days (days since 1899-12-30)" if 2e4 <= tv.min() and tv.max() <= 8e4
                       else "it starts near 0 (times relative to the start?)")
                    + "; write 'time' as epoch seconds (or RFC 3339 times)")
        out.append(
            f"injection time {inject_time} is outside the data ({tv.min()} .. {tv.max()}); "
            + (hint if hint else "check inject_time.txt is in epoch seconds and matches data.csv")
        )
    elif inject_time is not None and len(tv) and (before := int((tv < inject_time).sum())) < MIN_NORMAL_ROWS:
        out.append(
            f"injection time {inject_time} leaves {before} row(s) before it (the data starts at {tv.min()}); the methods "
            f"compare the rows before the injection (the normal behaviour) with those from it on and need at least "
            f"{MIN_NORMAL_ROWS} before: {NORMAL_ROWS_ADVICE}"
        )
    return out


#: The advice of the too-few-rows-before problem (the dataset reader names the injection time's source instead).
NORMAL_ROWS_ADVICE = "check the injection time, or export data from before the fault"


#: Rows a case needs before its injection time: the methods' normal window (a mean and a spread, a test
#: between two windows) needs two samples at least (:func:`llmrca.methods.common.windows.split_at`).
MIN_NORMAL_ROWS = 2


def tz_shift_hint(inject: float, t0: float, t1: float) -> str | None:
    """If ``inject`` moved by a UTC offset (whole hours |h| <= 14 first, then the half- and
    quarter-hour offsets in use: +05:30 India, +05:45 Nepal, -03:30 Newfoundland, ...) lands
    inside ``(t0, t1]``, a sentence saying so (a local-time / UTC mix-up), else None.
    Source: the IANA time zone database's UTC offsets."""
    whole = [60 * h for h in sorted(range(-14, 15), key=abs) if h]
    parts = [m for m in sorted({s * (60 * h + q) for h in range(0, 15) for q in (30, 45) for s in (1, -1)}, key=abs) if abs(m) <= 14 * 60]
    for minutes in [*whole, *parts]:
        if t0 < inject + 60 * minutes <= t1:
            h, m = divmod(abs(minutes), 60)
            by = f"{'+' if minutes > 0 else '-'}{h} h" + (f" {m} min" if m else "")
            return (
                f"moved by {by} it falls inside the data: this looks like a time-zone shift "
                "(local time written as UTC); write the injection time in UTC epoch seconds or as RFC 3339 with its offset"
            )
    return None


def numeric_block(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """``df[columns]`` as a float matrix; fast path when the whole frame is numeric.

    (Selecting columns by label copies block by block and costs milliseconds
    on wide frames; one ``to_numpy`` of an all-numeric frame does not.)
    """
    if all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes):
        pos = df.columns.get_indexer(list(columns))
        if (pos >= 0).all():
            return df.to_numpy(dtype=float)[:, pos]
    return df[list(columns)].to_numpy(dtype=float)


def _score(x: Any) -> float:
    """A stored score back to a float: null (or a legacy "-inf"/"nan" string) is -inf, a score never given."""
    if x is None:
        return float("-inf")
    v = float(x)
    return v if math.isfinite(v) else float("-inf")


@dataclass
class Ranking:
    """A method's answer for one case.

    ``components`` is ordered most-likely first with matching ``scores``.
    ``metrics`` is the metric-level ranking (``<component>_<metric>``, score)
    when the method has one; ``explanation`` says why (signals, paths) and
    ``fault_type`` names the fault where the method infers one.

    A method may answer "no root cause" (nothing is wrong): an empty
    ``components`` list, or ``abstained=True`` (it may keep its ranking for
    information; the evaluator then treats the answer as "no root cause":
    right on a healthy case, a miss on a faulty one).  ``confidence`` is the
    method's own evidence that something is wrong, on its own scale, when it
    has one (recorded in the results; None: the method gives none).
    """

    components: list[str]
    scores: list[float] = field(default_factory=list)
    metrics: list[tuple[str, float]] | None = None
    explanation: dict[str, Any] | None = None
    fault_type: str | None = None
    abstained: bool = False
    confidence: float | None = None

    def __post_init__(self) -> None:
        self.components = list(self.components)
        if not self.components:
            self.abstained = True  # an empty ranking names no root cause
        self.abstained = bool(self.abstained)
        if self.confidence is not None:
            self.confidence = float(self.confidence)
        if not self.scores:
            n = len(self.components)
            self.scores = [float(n - i) for i in range(n)]
        self.scores = [float(s) for s in self.scores]
        if len(self.scores) != len(self.components):
            raise ValueError("Ranking: components and scores differ in length")
        if len(set(self.components)) != len(self.components):
            raise ValueError(f"Ranking: duplicated components in {self.components}")

    @classmethod
    def from_metric_scores(
        cls,
        scores: Mapping[str, float] | Sequence[tuple[str, float]],
        *,
        candidates: Sequence[str] | None = None,
        explanation: dict[str, Any] | None = None,
        fault_type: str | None = None,
    ) -> Ranking:
        """Rank metrics by score (descending, stable), then components by first occurrence.

        This is RCAEval's rule: a component's rank is that of its best metric.
        Candidates that no metric names are appended at the end with score
        ``-inf`` (so every candidate appears exactly once).
        """
        items = list(scores.items()) if isinstance(scores, Mapping) else list(scores)
        clean = [(m, float(s) if s is not None and np.isfinite(s) else float("-inf")) for m, s in items]
        order = sorted(range(len(clean)), key=lambda i: -clean[i][1])
        ranked = [clean[i] for i in order]
        comps: list[str] = []
        cscores: list[float] = []
        seen: set[str] = set()
        for m, s in ranked:
            c = split_column(m)[0]
            if candidates is not None and c not in candidates:
                continue
            if c not in seen:
                seen.add(c)
                comps.append(c)
                cscores.append(s)
        for c in candidates or []:
            if c not in seen:
                seen.add(c)
                comps.append(c)
                cscores.append(float("-inf"))
        return cls(components=comps, scores=cscores, metrics=ranked, explanation=explanation, fault_type=fault_type)

    @classmethod
    def from_component_scores(
        cls,
        scores: Mapping[str, float],
        *,
        explanation: dict[str, Any] | None = None,
        fault_type: str | None = None,
    ) -> Ranking:
        """Rank components by score, descending, ties kept in input order."""
        items = list(scores.items())
        order = sorted(range(len(items)), key=lambda i: -float(items[i][1]))
        return cls(
            components=[items[i][0] for i in order],
            scores=[float(items[i][1]) for i in order],
            explanation=explanation,
            fault_type=fault_type,
        )

    def top(self, k: int = 1) -> list[str]:
        return self.components[:k]

    def to_dict(self) -> dict[str, Any]:
        def _f(x: float) -> float | None:
            # JSON has no infinities: a score the method could not give (-inf) is stored as null
            return x if math.isfinite(x) else None

        return {
            "components": self.components,
            "scores": [_f(s) for s in self.scores],
            "metrics": [[m, _f(s)] for m, s in self.metrics] if self.metrics is not None else None,
            "explanation": self.explanation,
            "fault_type": self.fault_type,
            "abstained": self.abstained,
            "confidence": self.confidence if self.confidence is None or math.isfinite(self.confidence) else None,
        }

    def abstain(self, confidence: float | None = None) -> Ranking:
        """This ranking marked as "no root cause" (kept for information), with ``confidence`` when given."""
        return replace(self, abstained=True, confidence=self.confidence if confidence is None else float(confidence))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Ranking:
        return cls(
            components=list(d["components"]),
            scores=[_score(s) for s in d.get("scores", [])],
            metrics=[(m, _score(s)) for m, s in d["metrics"]] if d.get("metrics") is not None else None,
            explanation=d.get("explanation"),
            fault_type=d.get("fault_type"),
            abstained=bool(d.get("abstained", False)),
            confidence=d.get("confidence"),
        )
