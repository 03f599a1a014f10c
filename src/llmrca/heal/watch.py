"""Live RCA on a real Prometheus: alert -> localize -> decide -> act -> recovered (``llmrca watch``).

The online counterpart of :mod:`llmrca.heal.loop` (paper §5.6, Fig. 8).  Every
``interval_s`` the loop asks Prometheus (through :func:`llmrca.collect.collect_metrics`,
so by the metric vocabulary, not by our own names) for the service-level
signals, and runs one alert rule per signal the way Prometheus runs a rule
with ``for:``:

* a rule's **band** is learned from a rolling healthy baseline (the last
  ``baseline_s`` of evaluations that were neither pending nor part of an
  incident; at start it is filled from Prometheus' history): the threshold is
  ``max(median + k·1.4826·MAD, (1 + rel)·median, median + floor)`` where
  ``floor`` is an absolute floor per kind group (:data:`ABS_FLOOR`: 50 ms for
  a request latency, 0.05/s for an error or restart rate), so a flat baseline
  does not page on noise;
* the rule is **pending** while its value is above the threshold and
  **firing** once it has been for ``for_s`` (a missing value resets it, as an
  empty rule evaluation does in Prometheus);
* the default signals are what the user feels: the mean latency of requests
  into every component as the mesh measures it (the gateway's is the
  user's; a worker's shows a network delay in front of it), the entry
  component's 5xx rate and the mesh 5xx rate of every component, the mean
  inter-token latency of every replica (how fast the answer streams); plus the
  replicas' (re)start rate, the crash-loop rule of kube-prometheus
  (``KubePodCrashLooping``): a replica killed over and over by a leak is
  routed around and users may feel nothing while capacity is gone.

When a rule fires (an **incident**), the loop waits ``decide_after_s`` of
anomalous data, collects the extended metric set over ``lookback_s`` before
the onset up to now (plus the pods' log files when it knows them), and
localizes with any registered method: ``llm-rca`` through its online API
(:meth:`~llmrca.methods.llm.method.LlmRca.fit_normal` on the rows before the
onset, :meth:`~llmrca.methods.llm.method.LlmRca.decide` on the rows after),
any other method through ``rank`` on the same window.  The culprit and fault
type choose the action (:func:`llmrca.heal.loop.choose_action`), which goes
through a :class:`~llmrca.heal.actuators.GuardedActuator` (dry run unless
``execute``, allow-list, rate limit), and only when the culprit's own signals
corroborate the verdict (``corroborate``: one of its rules is out of band).  The loop then watches the signals
until every rule is back under its band for ``clear_s`` (``recovered``) or
``recover_timeout_s`` passes (``unresolved``), and keeps quiet for
``cooldown_s``: one decision per incident, no flapping.

Prometheus going away is reported (``prometheus-unreachable``) and retried
with exponential backoff (1 s doubling up to ``max_backoff_s``) until it is
back (``prometheus-back``); SIGINT / SIGTERM stop the loop after the step in
progress.

Audit: ``<out>/audit.jsonl``, one JSON object per step with ``step`` and
``time`` (epoch s); the steps are ``start``, ``baseline``, ``alert``,
``localize``, ``decide``, ``act``, ``recovered`` / ``unresolved``,
``prometheus-unreachable`` / ``prometheus-back``, ``stop``.  ``watch.json``
holds the incidents with their times and ``watch.png`` the signals with the
alert, decision, action and recovery marked.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from llmrca.collect.metrics import collect_metrics, component_tags, default_aliases, infer_roles, metric_defs
from llmrca.collect.prom import PromClient, PrometheusError
from llmrca.config import Config
from llmrca.heal.actuators import ActionResult, GuardedActuator
from llmrca.heal.loop import choose_action
from llmrca.model import split_column
from llmrca.telemetry.catalogue import MetricDef
from llmrca.telemetry.vocabulary import KINDS, canonical_frame, columns_of_kind, meaning, replica_components

#: Signals the live loop asks for besides the catalogue's: the mesh's and the gateway's 5xx rate per
#: component (Istio standard metric ``istio_requests_total``; ingress-nginx's requests counter).  The 5xx
#: rate reads 0 (not "no data") while the component serves without errors.  The mesh's mean latency
#: (``_sum`` / ``_count``; a histogram's p90 is interpolated inside its bucket, 2.5 s .. 5 s for whole LLM
#: requests, so a second of added delay can leave it unchanged while the mean moves with it) is in the
#: catalogue (:data:`llmrca.telemetry.catalogue.PROMETHEUS_EXTRA`), so the localization window has it too.
EXTRA_DEFS: tuple[MetricDef, ...] = (
    MetricDef(
        "istio_requests_total_5xx:rate",
        'sum(rate(istio_requests_total{{{sel},response_code=~"5.."}}[{w}])) or (0 * sum(rate(istio_requests_total{{{sel}}}[{w}])))',
        "1/s",
        "all",
        "5xx responses of the component per second (mesh)",
    ),
    MetricDef(
        "nginx_ingress_controller_requests_5xx:rate",
        'sum(rate(nginx_ingress_controller_requests{{{sel},status=~"5.."}}[{w}])) or (0 * sum(rate(nginx_ingress_controller_requests{{{sel}}}[{w}])))',
        "1/s",
        "gateway",
        "gateway 5xx responses per second",
    ),
)

#: Absolute floor of a band above its healthy median, by the kind's group: a request latency must rise
#: by at least 50 ms, an error or restart rate by 0.05/s (3 per minute) before a rule can fire.  Engine
#: kinds (inter-token latency, TTFT) have no floor: their healthy spread is small and ``rel`` bounds them.
ABS_FLOOR: dict[str, float] = {"latency": 0.05, "errors": 0.05, "lifecycle": 0.05}


@dataclass
class WatchConfig(Config):
    """Options of :func:`watch` (durations in seconds)."""

    #: Comma-separated SLO signals: ``entry:<kind>`` (the entry component's), ``max:<kind>`` (worst
    #: component), ``each:<kind>`` (one rule per component reporting it); kinds of the vocabulary.
    signals: str = "each:latency_mean,each:itl_mean,entry:gateway_5xx_rate,each:error_rate,each:replica_starts"
    interval_s: float = 5.0  # evaluation interval (Prometheus' evaluation_interval)
    lag_s: float = 3.0  # evaluate this far behind now, so the last scrape is in
    rate_window_s: float = 30.0  # rate() / histogram window of the SLO signals
    scrape_interval_s: float = 2.0  # of the Prometheus watched (rate windows of the localizer's data)
    k: float = 6.0
    rel: float = 0.10
    for_s: float = 15.0
    clear_s: float = 20.0
    baseline_s: float = 300.0
    min_baseline: int = 8  # evaluations a rule needs before it can fire
    decide_after_s: float = 20.0
    lookback_s: float = 180.0
    step_s: float = 2.0  # row spacing of the localizer's data
    settle_s: float = 15.0  # after an action, when its "after" values are read
    recover_timeout_s: float = 240.0
    cooldown_s: float = 60.0
    max_backoff_s: float = 30.0
    #: Act only when the culprit's own signals corroborate the verdict (one of its rules is out of
    #: band at decision time); a verdict on a component whose signals all look healthy goes to a human.
    corroborate: bool = True
    method: str = "llm-rca"
    execute: bool = False
    duration_s: float = 0.0  # 0: until stopped
    max_incidents: int = 0  # 0: no bound

    checked_ranges: ClassVar[bool | None] = True  # NaN refused, and the ranges below
    option_bounds: ClassVar[dict[str, str]] = {
        **dict.fromkeys(("interval_s", "rate_window_s", "scrape_interval_s", "baseline_s", "lookback_s", "step_s", "max_backoff_s"),
                        "(0, inf)"),
        **dict.fromkeys(("lag_s", "rel", "for_s", "clear_s", "decide_after_s", "settle_s", "recover_timeout_s", "cooldown_s",
                         "duration_s", "max_incidents"), "[0, inf)"),
        "k": "(0, inf)",
        "min_baseline": "[1, inf)",
    }


# -- the audit log -----------------------------------------------------------------------------


class AuditLog:
    """Append-only ``audit.jsonl``: one JSON object per step, ``step`` and ``time`` (epoch s) first."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def log(self, step: str, when: float | None = None, **data: Any) -> dict[str, Any]:
        row = {"step": step, "time": round(time.time() if when is None else when, 3), **data}
        self.rows.append(row)
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps(row, default=_jsonable) + "\n")
        return row


def _jsonable(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    return str(o)


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 6)


# -- alert rules ---------------------------------------------------------------------------------


@dataclass
class SloRule:
    """One alert rule over one signal, with a rolling healthy band and ``for:`` semantics."""

    name: str
    kind: str
    k: float
    rel: float
    floor: float
    for_s: float
    baseline_s: float
    min_baseline: int
    samples: deque[tuple[float, float]] = field(default_factory=deque)
    pending_since: float | None = None
    last: tuple[float, float] | None = None

    def learn(self, t: float, v: float) -> None:
        """Add a healthy evaluation to the baseline and forget those older than ``baseline_s``."""
        if math.isfinite(v):
            self.samples.append((t, v))
        while self.samples and t - self.samples[0][0] > self.baseline_s:
            self.samples.popleft()

    def band(self) -> tuple[float, float] | None:
        """(healthy median, threshold), or None while the baseline is too short."""
        if len(self.samples) < self.min_baseline:
            return None
        v = np.fromiter((x for _, x in self.samples), float)
        med = float(np.median(v))
        mad = float(np.median(np.abs(v - med))) * 1.4826
        return med, max(med + self.k * mad, med + abs(med) * self.rel, med + self.floor)

    def evaluate(self, t: float, v: float) -> str:
        """``inactive`` / ``pending`` / ``firing`` after the value ``v`` at ``t`` (NaN: no data, resets)."""
        self.last = (t, v)
        b = self.band()
        if b is None or not math.isfinite(v) or v <= b[1]:
            self.pending_since = None
            return "inactive"
        if self.pending_since is None:
            self.pending_since = t
        return "firing" if t - self.pending_since >= self.for_s - 1e-6 else "pending"

    def in_band(self, v: float) -> bool:
        """Whether ``v`` is under the threshold (no data counts as in band)."""
        b = self.band()
        return b is None or not math.isfinite(v) or v <= b[1]


def parse_signals(spec: str) -> list[tuple[str, str]]:
    """``"each:latency_mean,entry:gateway_5xx_rate"`` -> ``[("each", "latency_mean"), ...]``; ValueError on a bad form or kind."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        how, _, kind = part.partition(":")
        if how not in ("entry", "max", "each") or kind not in KINDS:
            raise ValueError(
                f"signal {part!r}: use entry:<kind>, max:<kind> or each:<kind> with a kind of the vocabulary "
                f"(e.g. latency_mean, gateway_latency_p90, gateway_5xx_rate, error_rate, itl_mean); kinds: {', '.join(KINDS)}"
            )
        out.append((how, kind))
    if not out:
        raise ValueError("no alert signal given")
    return out


def signal_defs(kinds: set[str]) -> dict[str, MetricDef]:
    """Catalogue and :data:`EXTRA_DEFS` metric definitions whose column is of one of ``kinds`` (the queries of a tick)."""
    out: dict[str, MetricDef] = {}
    for m in (*metric_defs("extended"), *EXTRA_DEFS):
        mm = meaning(m.name)
        if mm is not None and mm.kind in kinds:
            out[m.name] = m
    return out


def entry_component(components: list[str]) -> str | None:
    """The entry component by its role name (gateway, ingress, nginx, proxy, frontend)."""
    from llmrca.methods.common.sli import ENTRY_ROLES

    return next((c for role in ENTRY_ROLES for c in components if role in c.lower()), None)


def signal_values(
    frame: pd.DataFrame, signals: list[tuple[str, str]], components: list[str], contributors: dict[str, set[str]] | None = None
) -> dict[str, np.ndarray]:
    """Rule name -> values over ``frame``'s rows (canonical units), for the rules the data supports.

    Error-rate kinds read 0 where the component answered the tick but has no error series.  ``contributors``
    (when given) gets, per rule, the components whose columns it reads (an ``entry:`` rule its entry, a ``max:``
    rule every component holding that kind).
    """
    canon, _ = canonical_frame(frame)
    cols = [str(c) for c in canon.columns]
    n = len(canon)
    entry = entry_component(components)
    out: dict[str, np.ndarray] = {}
    for how, kind in signals:
        unit = KINDS[kind].unit
        comps = [entry] if how == "entry" else (components if how == "each" else [None])
        for comp in comps:
            if how == "entry" and comp is None:
                continue
            kc = columns_of_kind(cols, kind, comp)
            if not kc:
                continue
            v = canon[kc].max(axis=1, skipna=True).to_numpy(dtype=float) if kc else np.full(n, np.nan)
            if unit == "1/s":
                v = np.where(np.isfinite(v), v, 0.0)
            name = f"{how}:{kind}" + (f"@{comp}" if how == "each" else "")
            out[name] = v
            if contributors is not None:
                contributors.setdefault(name, set()).update(split_column(c)[0] for c in kc)
    return out


# -- the loop ---------------------------------------------------------------------------------------


@dataclass
class Incident:
    """Times (epoch s) and verdict of one incident."""

    onset: float
    alert: float
    signals: list[str]
    decided: float | None = None
    culprit: str | None = None
    fault_type: str | None = None
    confidence: float | None = None
    action: str | None = None
    target: str | None = None
    action_status: str | None = None
    acted: float | None = None
    recovered: float | None = None
    unresolved: bool = False
    ended: float | None = None  # when the loop stopped watching it (recovered or gave up)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class WatchReport:
    """What one run of :func:`watch` saw: incidents, Prometheus outages, the signal history."""

    started: float
    ended: float = 0.0
    incidents: list[Incident] = field(default_factory=list)
    outages: list[tuple[float, float | None]] = field(default_factory=list)
    evaluations: int = 0
    stopped_by: str = ""
    history: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    thresholds: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "ended": self.ended,
            "incidents": [i.to_dict() for i in self.incidents],
            "outages": self.outages,
            "evaluations": self.evaluations,
            "stopped_by": self.stopped_by,
            "history": {n: [[round(t, 3), _num(v)] for t, v in h] for n, h in self.history.items()},
            "thresholds": {n: [[round(t, 3), _num(v)] for t, v in h] for n, h in self.thresholds.items()},
        }


class _Stop(Exception):
    pass


class Watcher:
    """The loop; see the module docstring.  Build with :func:`watch`, or directly for tests."""

    def __init__(
        self,
        prom_url: str,
        components: Mapping[str, str],
        config: WatchConfig,
        actuator: GuardedActuator,
        *,
        out: str | Path | None = None,
        log_files: Mapping[str, str | Path] | None = None,
        topology: Any = None,
        method_config: Mapping[str, Any] | None = None,
        say: Callable[[str], None] | None = None,
        stop_event: threading.Event | None = None,
        gpu_selectors: Mapping[str, str] | None = None,
        gpu_join: str | None = None,
    ) -> None:
        self.gpu = {"gpu_selectors": dict(gpu_selectors) if gpu_selectors else None, "gpu_join": gpu_join}  # DCGM without pod labels
        if not components:
            raise ValueError("no components to watch: give --component NAME=SELECTOR (or --run-dir of a local testbed)")
        self.url = prom_url.rstrip("/")
        self.components = dict(components)
        self.contributors: dict[str, set[str]] = {}  # rule -> the components whose columns it reads (signal_values)
        self.cfg = config
        self.guard = actuator
        self.signals = parse_signals(config.signals)
        self.kinds = {k for _, k in self.signals}
        self.defs = signal_defs(self.kinds)
        if not self.defs:
            raise ValueError(f"no query in the catalogue reads {sorted(self.kinds)}; choose other signals")
        from llmrca.methods.registry import get_method

        self.method = get_method(config.method, dict(method_config or {}) or None)  # a bad method: refused before --out is touched
        self.out = Path(out) if out is not None else None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        self.audit = AuditLog(self.out / "audit.jsonl" if self.out is not None else None)
        self.log_files = dict(log_files or {})
        self.topology = topology
        self.method_config = dict(method_config or {})
        self.say = say or (lambda m: None)
        self.stop = stop_event or threading.Event()
        self.client = PromClient(self.url, timeout_s=20.0)
        self.rules: dict[str, SloRule] = {}
        self.roles: dict[str, frozenset[str]] | None = None  # of components named otherwise than the paper's pods
        self.last_t: float | None = None
        self.down_since: float | None = None
        self.report = WatchReport(started=time.time())

    # -- Prometheus, with retries ------------------------------------------------------------------
    def _prom(self, fn: Callable[[], Any]) -> Any:
        """Call ``fn`` until Prometheus answers (backoff 1 s doubling to ``max_backoff_s``); raises _Stop when stopped."""
        backoff = 1.0
        while True:
            self._check_stop()
            try:
                r = fn()
            except PrometheusError as e:
                if self.down_since is None:
                    self.down_since = time.time()
                    self.report.outages.append((self.down_since, None))
                    self.audit.log("prometheus-unreachable", error=str(e)[:300], retry_in_s=backoff)
                    self.say(f"Prometheus at {self.url} is unreachable ({str(e)[:120]}); retrying with backoff")
                self._sleep(backoff)
                backoff = min(backoff * 2, self.cfg.max_backoff_s)
                continue
            if self.down_since is not None:
                down = time.time() - self.down_since
                self.report.outages[-1] = (self.down_since, time.time())
                self.audit.log("prometheus-back", down_s=round(down, 1))
                self.say(f"Prometheus is back after {down:.0f} s")
                self.down_since = None
            return r

    def _sleep(self, s: float) -> None:
        if self.stop.wait(max(0.0, s)):
            raise _Stop

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _Stop
        if self.cfg.duration_s and time.time() - self.report.started >= self.cfg.duration_s:
            self.report.stopped_by = self.report.stopped_by or "duration"
            raise _Stop

    # -- one evaluation ------------------------------------------------------------------------------
    def _grid_now(self) -> float:
        iv = self.cfg.interval_s
        return math.floor((time.time() - self.cfg.lag_s) / iv) * iv

    def _roles(self, start: float, end: float) -> dict[str, frozenset[str]]:
        """The roles of components whose names give none (vllm-0, ingress-nginx-controller-x), read once from their
        series (:func:`~llmrca.collect.metrics.infer_roles`) and said; the later queries reuse them."""
        if self.roles is None:
            unnamed = {c: sel for c, sel in self.components.items() if component_tags(c) == frozenset({"all"})}
            if unnamed:  # Prometheus down: raised here (and retried by the caller), not read as "no role"
                self.client.label_values("__name__", start, end)
            found = infer_roles(self.client, unnamed, start, end, metric_defs("extended"), default_aliases()) if unnamed else {}
            if found:
                said = ", ".join(f"{c} {'/'.join(sorted(r - {'all'}))}" for c, r in found.items())
                self.say(f"roles read from the components' series (their names give none): {said}")
                self.audit.log("roles", inferred={c: sorted(r - {"all"}) for c, r in found.items()})
            # every unnamed component gets its answer, none included: collect_metrics then asks no more each tick
            self.roles = {c: found.get(c, frozenset({"all"})) for c in unnamed}
        return self.roles

    def _query_signals(self, start: float, end: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Rule name -> (times, values) over ``[start, end]`` at ``interval_s``."""
        cfg = self.cfg
        res = collect_metrics(
            self.client,
            self.components,
            start,
            end,
            step_s=cfg.interval_s,
            metric_set="basic",
            queries=self.defs,
            rate_window_s=cfg.rate_window_s,
            scrape_interval_s=cfg.scrape_interval_s,
            roles=self._roles(start, end),
            **self.gpu,
        )
        frame = res.frame
        t = frame["time"].to_numpy(dtype=float)
        got = signal_values(frame, self.signals, list(self.components), self.contributors)
        return {name: (t, v) for name, v in got.items()}

    def _rule(self, name: str) -> SloRule:
        r = self.rules.get(name)
        if r is None:
            kind = name.split(":", 1)[1].split("@", 1)[0]
            c = self.cfg
            r = self.rules[name] = SloRule(name, kind, c.k, c.rel, ABS_FLOOR.get(KINDS[kind].group, 0.0), c.for_s, c.baseline_s, c.min_baseline)
        return r

    def _backfill(self) -> None:
        end = self._grid_now()
        start = end - self.cfg.baseline_s
        data = self._prom(lambda: self._query_signals(start, end))
        for name, (t, v) in data.items():
            r = self._rule(name)
            for ti, vi in zip(t, v, strict=True):
                r.learn(float(ti), float(vi))
        self.last_t = end
        self.audit.log(
            "baseline",
            window=[start, end],
            rules={n: {"samples": len(r.samples), "band": [_num(x) for x in (r.band() or (math.nan, math.nan))]} for n, r in self.rules.items()},
        )
        armed = sum(r.band() is not None for r in self.rules.values())
        self.say(f"baseline from Prometheus' last {self.cfg.baseline_s:.0f} s: {armed} of {len(self.rules)} rules armed")
        # a component is watched by a rule on it (each:), or through an entry: or max: rule that reads its columns
        watched = {c for n in self.rules for c in self.contributors.get(n, ())}
        silent = [c for c in self.components if c not in watched]
        if not armed or silent:  # nothing (or part of the system) can alert: say so, not only "0 of 0"
            self.say(
                f"warning: {'no rule could learn a baseline' if not armed else 'no SLO signal of ' + ', '.join(silent)}: no data "
                f"for the signals ({self.cfg.signals}) in the last {self.cfg.baseline_s:.0f} s; check the selectors, the scrape "
                f"interval (--scrape-interval; rate windows of {self.cfg.rate_window_s:g} s need several scrapes) and --signals"
            )
            self.audit.log("no-data", components=silent or list(self.components), armed=armed)

    def _tick(self, learn: bool) -> tuple[dict[str, str], dict[str, float]]:
        """Evaluate every rule at the new grid instants; returns (rule -> state, rule -> last value)."""
        iv = self.cfg.interval_s
        end = self._grid_now()
        if self.last_t is not None and end <= self.last_t:
            return {}, {}
        start = end if self.last_t is None else max(self.last_t + iv, end - 12 * iv)
        data = self._prom(lambda: self._query_signals(start, end))
        self.last_t = end
        states: dict[str, str] = {}
        values: dict[str, float] = {}
        grid = np.arange(start, end + iv / 2, iv)
        for ti in grid:
            self.report.evaluations += 1
            for name, (t, v) in data.items():
                k = np.flatnonzero(np.isclose(t, ti))
                val = float(v[k[0]]) if k.size else math.nan
                r = self._rule(name)
                st = r.evaluate(float(ti), val)
                states[name], values[name] = st, val
                b = r.band()
                self.report.history.setdefault(name, []).append((float(ti), val))
                if b is not None:
                    self.report.thresholds.setdefault(name, []).append((float(ti), b[1]))
                if learn and st == "inactive":
                    r.learn(float(ti), val)
            for name in set(self.rules) - set(data):  # a rule whose signal vanished: no data resets it
                self.rules[name].evaluate(float(ti), math.nan)
        return states, values

    # -- main loop ------------------------------------------------------------------------------------
    def run(self) -> WatchReport:
        """Run until stopped (signal, ``duration_s``, ``max_incidents``); returns the report (also written to ``out``)."""
        if self.out is not None:  # a new run's log, once it starts (the previous run's outputs are replaced)
            (self.out / "audit.jsonl").unlink(missing_ok=True)
        restore = self._install_signals()
        cfg = self.cfg
        self.audit.log("start", prometheus=self.url, components=self.components, config=cfg.to_dict(),
                       method=self.method.describe() if hasattr(self.method, "describe") else cfg.method,
                       actuator={"backend": self.guard.actuator.backend, "execute": self.guard.execute,
                                 "allow": sorted(self.guard.rails.allow) if self.guard.rails.allow is not None else None,
                                 "min_interval_s": self.guard.rails.min_interval_s, "max_actions": self.guard.rails.max_actions,
                                 "window_s": self.guard.rails.window_s})
        try:
            self._backfill()
            quiet_until = 0.0
            while True:
                self._check_stop()
                states, _ = self._tick(learn=time.time() >= quiet_until)
                firing = sorted(n for n, s in states.items() if s == "firing")
                if firing and time.time() >= quiet_until:
                    self._incident(firing)
                    quiet_until = time.time() + cfg.cooldown_s
                    for r in self.rules.values():
                        r.pending_since = None
                    if cfg.max_incidents and len(self.report.incidents) >= cfg.max_incidents:
                        self.report.stopped_by = "max-incidents"
                        break
                self._sleep(max(0.2, self._grid_now() + cfg.interval_s + cfg.lag_s - time.time()))
        except _Stop:
            self.report.stopped_by = self.report.stopped_by or "signal"
        finally:
            restore()
            self.report.ended = time.time()
            self.audit.log("stop", reason=self.report.stopped_by, incidents=len(self.report.incidents), evaluations=self.report.evaluations)
            self.client.close()
            self._write()
        return self.report

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

        def on(signum: int, frame: Any) -> None:
            self.report.stopped_by = signal.Signals(signum).name
            self.stop.set()

        for s in old:
            signal.signal(s, on)

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore

    # -- one incident -------------------------------------------------------------------------------------
    def _incident(self, firing: list[str]) -> None:
        cfg = self.cfg
        onset = min(self.rules[n].pending_since or self.last_t or time.time() for n in firing)
        inc = Incident(onset=onset, alert=time.time(), signals=firing)
        self.report.incidents.append(inc)
        detail = {}
        for n in firing:
            r = self.rules[n]
            med, thr = r.band() or (math.nan, math.nan)
            detail[n] = {"value": _num(r.last[1] if r.last else math.nan), "healthy_median": _num(med), "threshold": _num(thr)}
        self.audit.log("alert", inc.alert, onset=onset, signals=detail, for_s=cfg.for_s)
        self.say(f"ALERT {', '.join(firing)} (onset {time.strftime('%H:%M:%S', time.localtime(onset))})")
        try:
            self._localize_and_act(inc)
            self._watch_recovery(inc)
        except _Stop:
            raise
        finally:
            self._write()

    def _collect_window(self, onset: float, end: float) -> tuple[pd.DataFrame, Any, pd.DataFrame | None]:
        cfg = self.cfg
        start = onset - cfg.lookback_s
        res = self._prom(
            lambda: collect_metrics(self.client, self.components, start, end, step_s=cfg.step_s, metric_set="extended",
                                    scrape_interval_s=cfg.scrape_interval_s, roles=self._roles(start, end), **self.gpu)
        )
        logs = None
        if self.log_files:
            from llmrca.collect.logs import read_log_files

            try:
                logs = read_log_files(self.log_files, start, end, missing_ok=True).frame
            except (OSError, ValueError) as e:
                self.say(f"logs not read: {e}")
        return res.frame, res, logs

    def _rank(self, frame: pd.DataFrame, logs: pd.DataFrame | None, onset: float) -> Any:
        t = frame["time"].to_numpy(dtype=float)
        normal, window = frame[t < onset].reset_index(drop=True), frame[t >= onset].reset_index(drop=True)
        comps = [c for c in self.components]
        m = self.method
        if hasattr(m, "fit_normal") and hasattr(m, "decide"):
            lt = logs["time"].to_numpy(dtype=float) if logs is not None and "time" in logs.columns else None
            ln = logs[lt < onset] if lt is not None else None
            lw = logs[lt >= onset] if lt is not None else None
            m.fit_normal(normal, topology=self.topology, logs=ln)
            return m.decide(window, logs=lw, candidates=comps)
        from llmrca.model import Case

        case = Case(metrics=frame, inject_time=onset, logs=logs, topology=self.topology, metric_sets={"extended": frame}, metric_set="extended")
        return m.rank(case)

    def _current_values(self, names: list[str]) -> dict[str, float | None]:
        return {n: _num(self.rules[n].last[1]) if self.rules[n].last else None for n in names}

    def _localize_and_act(self, inc: Incident) -> None:
        cfg = self.cfg
        wait_until = inc.onset + cfg.decide_after_s + cfg.lag_s
        while time.time() < wait_until:
            self._sleep(min(cfg.interval_s, wait_until - time.time()))
            self._tick(learn=False)
        end = math.floor((time.time() - cfg.lag_s) / cfg.step_s) * cfg.step_s
        frame, res, logs = self._collect_window(inc.onset, end)
        blind = {
            "dropped_columns": len(res.dropped),
            "missing_components": res.missing_components,
            "gpu_unmapped": res.gpu_unmapped,
            "logs": "read" if logs is not None else "none given",
            "mappings": res.mappings,  # columns read from other exporters' names or labels (llmrca.collect.metrics)
        }
        t0 = time.perf_counter()
        try:
            ranking = self._rank(frame, logs, inc.onset)
        except Exception as e:  # a method that cannot rank this window is reported, the loop goes on
            self.audit.log("localize", window=[inc.onset - cfg.lookback_s, end], error=f"{type(e).__name__}: {e}", blind_spots=blind)
            self.say(f"localization failed: {type(e).__name__}: {e}")
            return
        rank_ms = round((time.perf_counter() - t0) * 1e3, 1)
        expl = ranking.explanation if isinstance(ranking.explanation, dict) else {}
        lacking = list(expl.get("lacking", []))
        self.audit.log("localize", window=[inc.onset - cfg.lookback_s, end], rows=len(frame), columns=frame.shape[1] - 1,
                       top3=ranking.components[:3], scores=[_num(s) for s in ranking.scores[:3]], rank_ms=rank_ms,
                       summary=expl.get("summary"), lacking=lacking, blind_spots=blind)
        culprit, ftype = ranking.components[0], ranking.fault_type
        conf = expl.get("confidence")
        if conf is None and len(ranking.scores) > 1:
            s1, s2 = ranking.scores[0], ranking.scores[1]
            conf = round(s1 / (abs(s1) + abs(s2) + 1e-9), 3) if s1 > 0 else None
        replicas = replica_components(frame.columns)
        action, target = choose_action(culprit, ftype, replicas)
        inc.decided, inc.culprit, inc.fault_type, inc.confidence = time.time(), culprit, ftype, conf
        inc.action, inc.target = action, target
        self.audit.log("decide", inc.decided, culprit=culprit, fault_type=ftype, confidence=conf, action=action, target=target,
                       execute=self.guard.execute, evidence=expl.get("signals", [])[:5])
        self._verdict(inc, ranking, expl, lacking, blind)
        before = self._current_values(sorted(self.rules))
        own = [n for n in self.rules if n.endswith("@" + culprit)]
        out_of_band = [n for n in own if self.rules[n].pending_since is not None
                       or (self.rules[n].last is not None and not self.rules[n].in_band(self.rules[n].last[1]))]
        if target is None:
            why = action if action.startswith("no automated action") else f"{culprit} is not a model replica: a human decides"
            res_a = ActionResult(action, culprit, "refused", reason=why, time=time.time(),
                                 before=before, backend=self.guard.actuator.backend)
        elif cfg.corroborate and own and not out_of_band:
            res_a = ActionResult(action, target, "refused", time=time.time(), before=before, backend=self.guard.actuator.backend,
                                 reason=f"verdict not corroborated: none of {culprit}'s signals ({', '.join(own)}) is out of its band "
                                        f"(the alert was on {', '.join(inc.signals)}); a human decides")
        else:
            res_a = self.guard.request(action, target, before=before)
        inc.action_status = res_a.status
        if res_a.executed:
            inc.acted = time.time()
            settle_end = inc.acted + cfg.settle_s
            while time.time() < settle_end:
                self._sleep(min(cfg.interval_s, max(0.0, settle_end - time.time())))
                self._tick(learn=False)
            res_a.after = self._current_values(sorted(self.rules))
        self.audit.log("act", res_a.time, **res_a.to_dict())
        self.say(f"ACT {res_a.action} on {res_a.target}: {res_a.status}" + (f" ({res_a.reason})" if res_a.reason else ""))

    def _verdict(self, inc: Incident, ranking: Any, expl: dict[str, Any], lacking: list[str], blind: dict[str, Any]) -> None:
        lines = [
            "=" * 72,
            f"VERDICT  culprit: {inc.culprit}   fault type: {inc.fault_type or 'unknown'}   confidence: {inc.confidence}",
            f"         ranking: {', '.join(ranking.components[:3])}",
        ]
        if expl.get("summary"):
            lines.append(f"evidence: {expl['summary']}")
        for s in expl.get("signals", [])[:4]:
            if isinstance(s, dict):
                lines.append("  - " + ", ".join(f"{k}={v}" for k, v in list(s.items())[:5]))
        cannot = list(lacking)
        if blind["missing_components"]:
            cannot.append(f"no metrics for {', '.join(blind['missing_components'])}")
        cannot += [f"GPU of {c} unmapped" for c in blind["gpu_unmapped"]]
        lines.append("could not see: " + ("; ".join(cannot) if cannot else "nothing missing from the vocabulary"))
        mode = "EXECUTE" if self.guard.execute else "dry run"
        lines.append(f"action: {inc.action}" + (f" on {inc.target}" if inc.target else "") + f"   [{mode}]")
        lines.append("=" * 72)
        for ln in lines:
            self.say(ln)

    def _watch_recovery(self, inc: Incident) -> None:
        cfg = self.cfg
        deadline = time.time() + cfg.recover_timeout_s
        ok_since: float | None = None
        while time.time() < deadline:
            self._sleep(max(0.2, self._grid_now() + cfg.interval_s + cfg.lag_s - time.time()))
            _, values = self._tick(learn=False)
            if not values:
                continue
            good = all(self.rules[n].in_band(v) for n, v in values.items())
            if good:
                ok_since = ok_since or (self.last_t or time.time())
                if (self.last_t or time.time()) - ok_since >= cfg.clear_s - 1e-6:
                    inc.recovered, inc.ended = ok_since, time.time()
                    self.audit.log("recovered", since=ok_since, after_alert_s=round(ok_since - inc.alert, 1),
                                   after_action_s=round(ok_since - inc.acted, 1) if inc.acted else None,
                                   values={n: _num(v) for n, v in values.items()})
                    self.say(f"RECOVERED: every signal back in its band since {time.strftime('%H:%M:%S', time.localtime(ok_since))}")
                    return
            else:
                ok_since = None
        inc.unresolved, inc.ended = True, time.time()
        self.audit.log("unresolved", waited_s=cfg.recover_timeout_s,
                       out_of_band=[n for n, r in self.rules.items() if r.last and not r.in_band(r.last[1])])
        self.say(f"not recovered within {cfg.recover_timeout_s:.0f} s")

    # -- outputs ---------------------------------------------------------------------------------------------
    def _write(self) -> None:
        if self.out is None:
            return
        (self.out / "watch.json").write_text(json.dumps(self.report.to_dict(), indent=2, default=_jsonable) + "\n")
        try:
            figure(self.report, self.out / "watch.png")
        except Exception as e:  # a figure is a convenience: never a reason to fail the loop
            self.say(f"figure not written: {type(e).__name__}: {e}")


def figure(report: WatchReport, path: Path, signals: list[str] | None = None, marks: list[tuple[str, float]] | None = None) -> str | None:
    """The SLO signals over time (one panel per signal that fired, else the entry's), thresholds dashed,
    alert / decision / action / recovered marked; ``marks`` adds (label, epoch s) lines (e.g. injections).
    Returns the figure's title (None when there was no signal to draw and nothing was written)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fired = sorted({s for inc in report.incidents for s in inc.signals})
    comps = [n.partition("@")[2] for n in report.history if "@" in n]
    entry = entry_component(comps)
    felt = [n for n in sorted(report.history) if n.startswith("entry:") or (entry is not None and n.endswith("@" + entry))]
    felt.sort(key=lambda n: "latency" not in n)  # what the user feels first: the entry's latency
    names = signals or list(dict.fromkeys([*fired, *felt[:1]])) or sorted(report.history)[:2]
    names = [n for n in names if n in report.history][:4]
    if not names:
        return None
    t0 = report.started
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 2.4 * len(names) + 0.6), sharex=True, squeeze=False)
    for ax, n in zip(axes[:, 0], names, strict=True):
        h = np.array(report.history[n], dtype=float)
        ax.plot((h[:, 0] - t0) / 60, h[:, 1], lw=1.3, label=n)
        th = np.array(report.thresholds.get(n, []), dtype=float)
        if th.size:
            ax.plot((th[:, 0] - t0) / 60, th[:, 1], "--", color="grey", lw=0.9, label="alert threshold")
        for inc in report.incidents:
            for lab, t, col in (("alert", inc.alert, "tab:orange"), ("decision", inc.decided, "tab:purple"),
                                (_action_said(inc), inc.acted, "tab:green"), ("recovered", inc.recovered, "tab:blue")):
                if t is not None:
                    ax.axvline((t - t0) / 60, color=col, ls="--", lw=1, label=lab)
        for lab, t in marks or []:
            ax.axvline((t - t0) / 60, color="tab:red", ls=":", lw=1.2, label=lab)
        ax.set_ylabel(n.split(":", 1)[1].replace("@", "\n"), fontsize=7)
        ax.grid(alpha=0.3)
    hs, ls = axes[0, 0].get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for hh, ll in zip(hs, ls, strict=True):
        seen.setdefault(ll if not ll.startswith("each:") else "signal", hh)
    fig.legend(list(seen.values()), list(seen.keys()), fontsize=6, loc="lower center", ncol=min(len(seen), 6), frameon=False)
    axes[-1, 0].set_xlabel("minutes since watch started")
    verdicts = "; ".join(f"{i.culprit} ({i.fault_type}) -> {_action_said(i)}" for i in report.incidents if i.culprit) or "no incident"
    title = f"llmrca watch: {verdicts}"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06 if len(seen) > 6 else 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return title


def _action_said(inc: Incident) -> str:
    """The incident's action as the figure names it: ``restart``, or ``restart (failed)`` / ``(refused)`` /
    ``(dry-run)`` when it was not done."""
    if inc.action_status in (None, "done"):
        return str(inc.action)
    return f"{inc.action} ({inc.action_status})"


# -- entry point -----------------------------------------------------------------------------------------------


def local_defaults(run_dir: str | Path) -> dict[str, Any]:
    """Components (``pod="<pod>"``), log files, topology and scrape interval of the local testbed in ``run_dir``.

    Raises :class:`~llmrca.testbed.local.stack.TestbedError` when none runs there.
    """
    from llmrca.testbed.local.stack import LocalTestbed
    from llmrca.testbed.topology import paper_topology

    tb = LocalTestbed.attach(run_dir)
    st = tb.state
    workers = sum(1 for i in st.pods.values() if i.get("role") == "worker")
    return {
        "components": {pod: f'pod="{pod}"' for pod in st.pods},
        "log_files": {pod: str(st.pod_dir(pod) / f"{pod}.log") for pod in st.pods},
        "topology": paper_topology(workers),
        "scrape_interval_s": tb.config.scrape_interval_s,
        "prometheus": st.prometheus_url,
    }


def preflight(
    prom_url: str, components: Mapping[str, str], say: Callable[[str], None] | None = None, gpu_selectors: Mapping[str, str] | None = None,
    gpu_join: str | None = None,
) -> None:
    """Check before watching that ``prom_url`` is a Prometheus that answers and every selector is valid PromQL;
    say (``say``) which components have no series now under any label scheme, and when ``gpu_join``'s series or
    labels are absent now.  Raises ValueError naming the
    problem (a URL without scheme, nothing or something else answering, a selector Prometheus refuses): the loop
    retries an outage of a Prometheus that once answered, never a wrong address."""
    from urllib.parse import urlparse

    from llmrca.telemetry.aliases import selector_schemes

    if urlparse(prom_url).scheme not in ("http", "https"):
        raise ValueError(f"{prom_url!r} is not an http(s) URL; give Prometheus' base URL with its scheme, e.g. http://127.0.0.1:9090")
    from llmrca.names import component_name_problem

    for name, sel in components.items():  # a name that cannot be a component is refused before anything is asked
        if (why := component_name_problem(name)) is not None:
            raise ValueError(f"--component {name}={sel}: the component name {why}")
    with PromClient(prom_url.rstrip("/"), timeout_s=20.0) as client:
        try:
            client.query("vector(1)")
        except PrometheusError as e:
            raise ValueError(str(e) if "does not answer as Prometheus" in str(e)
                             else f"{prom_url} does not answer as Prometheus ({e}); check the URL") from None
        empty = []
        for name, sel in components.items():
            found = False
            for _scheme, s, _ in selector_schemes(sel):
                try:
                    found = bool(client.query(f"count({{{s}}})"))
                except PrometheusError as e:
                    raise ValueError(f"--component {name}={sel}: Prometheus refuses the selector ({e}); "
                                     f'give a PromQL label selector such as pod="{name}"') from None
                if found:
                    break
            if not found:
                empty.append(name)
        for name, sel in (gpu_selectors or {}).items():
            if name not in components:
                raise ValueError(f"--gpu {name}={sel}: {name} is not a watched component (components: {', '.join(components)})")
            try:
                client.query(f"count({{{sel}}})")
            except PrometheusError as e:
                raise ValueError(f"--gpu {name}={sel}: Prometheus refuses the selector ({e}); "
                                 "give a PromQL label selector of its DCGM series, such as Hostname=\"node-1\",gpu=\"0\"") from None
        join_gap = _gpu_join_gap(client, gpu_join) if gpu_join else None
    if empty and say is not None:
        say(f"warning: Prometheus holds no series of {', '.join(empty)} now (under any pod label); their signals stay "
            "unarmed until it does: check the selectors")
    if join_gap and say is not None:
        say(f"warning: --gpu-join {gpu_join}: {join_gap}; the GPUs of components without --gpu stay unmapped (their GPU "
            "signals unarmed) until it does: `llmrca audit` with the same --gpu-join says what Prometheus holds")


def _gpu_join_gap(client: PromClient, gpu_join: str) -> str | None:
    """Why ``gpu_join`` maps no GPU now (its series or its labels absent), or None.  Raises ValueError for a
    malformed join (:meth:`~llmrca.collect.metrics.GpuJoin.parse`)."""
    from llmrca.collect.metrics import GpuJoin

    join = GpuJoin.parse(gpu_join)
    try:
        if not client.query(f"count({join.series})"):
            return f"Prometheus holds no series {join.series} now"
        if not client.query(f'count({join.series}{{{join.series_label}!=""}})'):
            return f"the series {join.series} carry no label {join.series_label} now"
        if client.query('count({__name__=~"DCGM_FI_.+"})') and not client.query(f'count({{__name__=~"DCGM_FI_.+",{join.gpu_label}!=""}})'):
            return f"the DCGM series carry no label {join.gpu_label} now"
    except PrometheusError as e:
        raise ValueError(f"--gpu-join {gpu_join}: Prometheus refuses the query ({e})") from None
    return None


def watch(
    prom_url: str,
    components: Mapping[str, str],
    config: WatchConfig | None = None,
    *,
    backend: str | None = None,
    allow: list[str] | None = None,
    actuator_options: Mapping[str, Any] | None = None,
    min_action_interval_s: float = 300.0,
    max_actions: int = 3,
    actions_window_s: float = 3600.0,
    out: str | Path | None = None,
    log_files: Mapping[str, str | Path] | None = None,
    topology: Any = None,
    method_config: Mapping[str, Any] | None = None,
    say: Callable[[str], None] | None = None,
    stop_event: threading.Event | None = None,
    gpu_selectors: Mapping[str, str] | None = None,
    gpu_join: str | None = None,
) -> WatchReport:
    """Watch ``prom_url`` (see the module docstring); returns when stopped.

    ``backend``: the actuator's (``local``, ``k8s``, ... of :data:`llmrca.heal.actuators.ACTUATORS`;
    None: no actuator, decisions only).  ``allow``: components that may be acted on (None: any model
    replica).  ``gpu_selectors`` / ``gpu_join``: how DCGM devices map to components when their series carry
    no pod label (as :func:`~llmrca.collect.metrics.collect_metrics` takes them).  Raises ValueError for bad
    options (signals, components, method) and for a Prometheus that does not answer at the start (:func:`preflight`).
    """
    from llmrca.heal.actuators import Actuator, ActuatorError, GuardedActuator, Rails, actuator_class

    cfg = config or WatchConfig()
    unknown = sorted(set(allow or ()) - set(components))
    if unknown:
        raise ValueError(f"--allow {', '.join(unknown)}: not a watched component (components: {', '.join(components)})")
    if max_actions < 0 or min_action_interval_s < 0:
        raise ValueError(f"--max-actions and --min-action-interval must be >= 0, got {max_actions} and {min_action_interval_s:g}")
    stray = sorted(set(log_files or {}) - set(components))
    if stray:
        raise ValueError(f"--log {', '.join(stray)}: not a watched component (components: {', '.join(components)})")
    rails = Rails(frozenset(allow) if allow is not None else None, min_action_interval_s, max_actions, actions_window_s)
    if backend is None:

        class _NoActuator(Actuator):
            backend = "none"

            def _do(self, action: str, target: str) -> None:
                raise ActuatorError("no actuator backend given (--backend); the decision is logged only")

        act: Actuator = _NoActuator()
    else:
        act = actuator_class(backend)(**dict(actuator_options or {}))
    guard = GuardedActuator(act, execute=cfg.execute, rails=rails)
    w = Watcher(prom_url, components, cfg, guard, out=out, log_files=log_files, topology=topology, method_config=method_config,
                say=say, stop_event=stop_event, gpu_selectors=gpu_selectors, gpu_join=gpu_join)  # checks the options
    try:  # then Prometheus, before --out's previous log is replaced
        preflight(prom_url, components, say, gpu_selectors, gpu_join)
    except BaseException:
        w.client.close()
        raise
    return w.run()
