"""The self-healing loop: detect -> localize -> remediate (paper §5.6, Fig. 8).

1. **Detect**: an alert rule on a service-level signal (by default the
   gateway's p90 latency, what users feel) learned from a healthy window.
2. **Localize**: when the alert fires, wait ``decide_after_s`` of anomalous
   data, cut a window (``lookback_s`` before the alert's onset, the onset as
   the "injection time", data up to the decision) and rank it with any RCA
   method from the registry — the method never sees the ground truth.
3. **Remediate**: map the culprit and the fault type the method names to an
   action (restart the pod for CPU / memory / unknown, reset the power limit
   for GPU throttling, drain the replica for network delay). Only serving
   replicas are acted on; a gateway or operator verdict is logged for a
   human. Dry-run by default: the decision is written to the audit log and
   nothing is done.

On the simulator, ``execute=True`` carries the action out through
:class:`~llmrca.heal.sim_actuator.SimActuator` (the ``sim`` backend of
:mod:`llmrca.heal.actuators`), which re-runs the same seeded world with the
action applied at decision time + the action's latency: everything before the action is identical, so the two runs show
what healing changed.  Every step is appended to ``audit.jsonl``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrca.config import Config
from llmrca.heal.detector import ThresholdAlert
from llmrca.model import Case, FaultSpec
from llmrca.telemetry import is_serving


@dataclass(frozen=True)
class Remedy:
    """What the loops do about one decided fault type.

    ``action``: one of :data:`llmrca.testbed.actuator.ACTIONS`, or None when no automated action
    helps (the loop logs ``why`` and ``human`` and does nothing).  ``why``: why this action
    (or none) fixes the type.  ``human``: what a person still has to do ("" when nothing).
    """

    action: str | None
    why: str
    human: str = ""


#: Fault type *named by the localizer* (never the true one) -> remediation; shared by
#: ``llmrca heal`` and ``llmrca watch`` (docs/heal.md has the table and the reasons).
POLICY: dict[str, Remedy] = {
    "cpu": Remedy("restart", "the CPU hog dies with the container"),
    "memory": Remedy("restart", "the leaking process dies with the container"),
    "gpu": Remedy("reset-power-limit", "the power cap stays on the device through a pod restart"),
    "network": Remedy("drain", "the delay is on the pod's network (re-applied to a restarted pod): route around it"),
    "kv-cache": Remedy("restart", "the replica comes back with the deployment's own gpu_memory_utilization"),
    "packet-loss": Remedy("drain", "the loss is on the pod's network path: route the requests around it"),
    "noisy-neighbour": Remedy("drain", "the contention comes from another tenant of the node: move the work off the node",
                              "move the neighbour or cordon the node"),
    "gpu-thermal": Remedy("drain", "a hot GPU throttles whatever runs on it: move the work off it",
                          "needs a human: the GPU's cooling (fans, airflow, inlet temperature)"),
    "gpu-error": Remedy(None, "the replica restarts itself after the GPU reset; a restart now would abort its cold reload",
                        "if the Xid error repeats, have the GPU checked or replaced"),
    "model-load": Remedy(None, "the replica is loading its weights; restarting it again starts the slow load over",
                         "wait for the load, or escalate: check the model storage / cache"),
}
#: What is done for a type the policy does not name (or no type at all).
DEFAULT_REMEDY = Remedy("restart", "type unknown: a restart clears most process-local faults")
DEFAULT_ACTION = "restart"


def remedy_for(fault_type: str | None) -> Remedy:
    """The :class:`Remedy` of the decided ``fault_type`` (:data:`DEFAULT_REMEDY` when unknown or None)."""
    return POLICY.get(fault_type or "", DEFAULT_REMEDY)
_START = 1_767_225_600.0


@dataclass
class HealConfig(Config):
    method: str = "llm-rca"
    #: Comma-separated SLO signals; the alert fires on the first that leaves its band.
    #: A signal is a column name, ``max:<kind>`` (the worst component's value of a
    #: vocabulary kind, e.g. ``max:itl_mean``), ``entry:<kind>`` (the entry
    #: component's value, e.g. ``entry:gateway_5xx_rate``), or ``max:<metric>`` (the
    #: worst value of every ``<component>_<metric>`` column).  Kinds are read
    #: through :mod:`llmrca.telemetry.vocabulary`, so any exporter's names work.
    #: ``max:ttft_p90`` catches KV-cache pressure (prefills wait, tokens flow at speed).
    signals: str = "max:itl_mean,entry:gateway_5xx_rate,max:ttft_p90"
    k: float = 4.0
    rel: float = 0.03
    for_samples: int = 3
    learn_s: float = 240.0  # healthy window the alert rule learns from
    lookback_s: float = 285.0  # normal data handed to the localizer
    decide_after_s: float = 30.0  # anomalous data the localizer waits for
    action_latency_s: float = 10.0  # time to carry the action out
    settle_s: float = 60.0  # time after the action before the outcome is judged
    execute: bool = False
    normal_s: float = 285.0
    fault_s: float = 300.0
    tail_s: float = 15.0


@dataclass
class HealReport:
    fault: dict[str, Any]
    detected: bool
    onset: float | None = None
    fired_at: float | None = None
    decided_at: float | None = None
    culprit: str | None = None
    fault_type: str | None = None
    ranking: list[str] = field(default_factory=list)
    explanation: str | None = None
    action: str | None = None
    action_target: str | None = None
    executed: bool = False
    correct_culprit: bool | None = None
    levels: dict[str, float | None] = field(default_factory=dict)
    recovered: bool | None = None
    rank_ms: float | None = None
    signal: str = ""
    #: why the action, and what a human must still do ("" when nothing)
    why: str = ""
    human: str = ""
    #: "recovered", "NOT recovered", "no SLO breach to recover from" (judged only with --execute)
    verdict: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}

    def summary(self) -> str:
        f = self.fault
        head = f"fault {f['type']} on {f['target']}: "
        if not self.detected:
            return head + "no alert fired (the signal never left its healthy band)"
        inj = f["start"]
        s = head + f"alert onset +{self.onset - inj:.0f} s, fired +{self.fired_at - inj:.0f} s; "
        s += f"blamed {self.culprit} ({self.fault_type or 'type unknown'}) at +{self.decided_at - inj:.0f} s"
        s += " (correct)" if self.correct_culprit else " (WRONG)"
        s += f"; action {self.action} on {self.action_target}" if self.action_target else f"; {self.action}"
        if self.human and self.action_target:
            s += f" (and {self.human})"
        lv = self.levels
        if self.verdict is not None:
            healed = f", healed {_fmt(lv.get('healed'))}" if self.executed else ""
            s += f"; {self.signal} healthy {_fmt(lv.get('healthy'))}, no action {_fmt(lv.get('no_action'))}{healed} -> {self.verdict}"
        elif self.action_target:
            s += " (dry run: nothing done)"
        return s


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


class Audit:
    """Append-only JSON-lines log of every step the loop takes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def log(self, step: str, **data: Any) -> None:
        row = {"wall_time": round(time.time(), 3), "step": step, **data}
        self.rows.append(row)
        if self.path is not None:
            with self.path.open("a") as fh:
                fh.write(json.dumps(row, default=_jsonable) + "\n")


def _jsonable(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def choose_action(culprit: str, fault_type: str | None, replicas: list[str] | None = None) -> tuple[str, str | None]:
    """(action, target) from the *decided* type (:func:`remedy_for`): only serving replicas are remediated.

    ``replicas``: the components that host a model replica as the telemetry shows
    (:func:`~llmrca.telemetry.vocabulary.replica_components`); by name when not given.
    When nothing automated helps, target is None and action is a sentence for a human.
    """
    serving = culprit in replicas if replicas is not None else is_serving(culprit)
    if not serving:
        return f"page a human: {culprit} is not a model replica", None
    r = remedy_for(fault_type)
    if r.action is None:
        return f"no automated action ({r.why}): {r.human}", None
    return r.action, culprit


def signal_series(frame: pd.DataFrame, spec: str) -> np.ndarray:
    """One signal as a float array over ``frame``'s rows (see :attr:`HealConfig.signals` for the forms).

    Kinds are converted to their canonical unit.  Raises ValueError naming
    what the telemetry has when the signal is not there.
    """
    from llmrca.methods.common.sli import ENTRY_ROLES
    from llmrca.telemetry.vocabulary import KINDS, canonical_frame, columns_of_kind

    how, _, what = spec.partition(":")
    if how in ("max", "entry") and what in KINDS:
        canon, _ = canonical_frame(frame)
        cols = [str(c) for c in canon.columns]
        if how == "entry":
            comps = list(dict.fromkeys(c.partition("_")[0] for c in cols if c != "time"))
            entry = next((c for role in ENTRY_ROLES for c in comps if role in c.lower()), None)
            cols = columns_of_kind(cols, what, entry) if entry is not None else []
        else:
            cols = columns_of_kind(cols, what)
        if not cols:
            raise ValueError(f"no component reports a {what!r} signal ({KINDS[what].description}); choose another signal")
        return canon[cols].max(axis=1, skipna=True).to_numpy(dtype=float)
    if how == "max":
        cols = [c for c in frame.columns if c.endswith("_" + what)]
        if not cols:
            raise ValueError(f"no component reports {what!r}; choose another signal")
        return frame[cols].max(axis=1, skipna=True).to_numpy(dtype=float)
    if spec not in frame.columns:
        raise ValueError(f"signal {spec!r} is not in the telemetry (e.g. {list(frame.columns[1:6])}); choose another signal")
    return frame[spec].to_numpy(dtype=float)


def detect(frame: pd.DataFrame, cfg: HealConfig, learn_until: float) -> tuple[dict[str, ThresholdAlert], str | None, float | None, float | None]:
    """Stream every signal through its alert rule; returns (rules, signal, onset, fired_at) of the first to fire."""
    specs = [x.strip() for x in cfg.signals.split(",") if x.strip()]
    if not specs:
        raise ValueError("no alert signal given")
    t = frame["time"].to_numpy(dtype=float)
    learn = t < learn_until
    series = {sp: signal_series(frame, sp) for sp in specs}
    rules = {sp: ThresholdAlert(k=cfg.k, rel=cfg.rel, for_samples=cfg.for_samples).fit(v[learn]) for sp, v in series.items()}
    for i in np.flatnonzero(~learn):
        for sp, v in series.items():
            onset = rules[sp].update(float(t[i]), float(v[i]))
            if onset is not None:
                return rules, sp, onset, float(t[i])
    return rules, None, None, None


def window_case(case: Case, start: float, end: float, onset: float) -> Case:
    """What the localizer sees: telemetry in [start, end], no ground truth."""
    def cut(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        col = "time" if "time" in df.columns else None
        if col is None and "startTime" in df.columns:
            t = df["startTime"].to_numpy(dtype=float) / 1e6
        elif col is not None:
            t = df[col].to_numpy(dtype=float)
        else:
            return df
        return df[(t >= start) & (t <= end)].reset_index(drop=True)

    sets = {k: cut(v) for k, v in case.metric_sets.items()}
    blind = case.without_truth()
    return Case(
        metrics=sets[blind.metric_set],
        metric_sets=sets,
        metric_set=blind.metric_set,
        inject_time=onset,
        logs=cut(case.logs),
        traces=cut(case.traces),
        topology=case.topology,
        meta={"backend": case.meta.get("backend"), "window": [start, end]},
    )


def heal_sim(
    fault: str,
    target: str,
    *,
    seed: int = 0,
    config: HealConfig | None = None,
    fault_params: dict[str, Any] | None = None,
    sim_params: dict[str, Any] | None = None,
    method_config: dict[str, Any] | None = None,
    out: str | Path | None = None,
) -> HealReport:
    """Run one fault on the simulated stack with the heal loop watching it."""
    from llmrca.methods.common.metric_set import choose_metric_set
    from llmrca.methods.registry import get_method
    from llmrca.testbed.base import Timeline
    from llmrca.testbed.sim.backend import SimBackend
    from llmrca.testbed.sim.config import SimConfig

    cfg = config or HealConfig()
    outp = Path(out) if out is not None else None
    if outp is not None:
        outp.mkdir(parents=True, exist_ok=True)
        (outp / "audit.jsonl").unlink(missing_ok=True)
    audit = Audit(outp / "audit.jsonl" if outp is not None else None)
    method = get_method(cfg.method, method_config)
    be = SimBackend(SimConfig.from_dict(sim_params or {}))
    spec = FaultSpec(type=fault, target=target, params=dict(fault_params or {}), duration_s=cfg.fault_s)
    be.check_fault(spec)
    protocol = Timeline(normal_s=cfg.normal_s, fault_s=cfg.fault_s, tail_s=cfg.tail_s)
    world = be.run_case(spec, seed=seed, protocol=protocol, start_time=_START)
    inject = world.inject_time
    fault_info = {"type": fault, "target": target, "start": inject, "seed": seed, "params": dict(world.fault.requested)}
    audit.log("start", fault=fault_info, config=cfg.to_dict(), method=method.describe())

    frame = world.metric_sets.get("extended", world.metrics)  # the alert rule sees all of Prometheus
    rules, signal, onset, fired = detect(frame, cfg, learn_until=_START + cfg.learn_s)
    for sp, rule in rules.items():
        audit.log("alert-rule", signal=sp, healthy_median=rule.median, threshold=rule.threshold)
    first = next(iter(rules))
    rep = HealReport(fault=fault_info, detected=onset is not None, signal=signal or first)
    if onset is None or fired is None:
        audit.log("no-alert")
        return _finish(rep, outp, world, None, cfg)
    rep.onset, rep.fired_at = onset, fired
    audit.log("alert", signal=signal, onset=onset, fired_at=fired)

    times = frame["time"].to_numpy(dtype=float)
    later = times[times >= max(fired, onset + cfg.decide_after_s)]
    decided = float(later[0]) if later.size else float(times[-1])
    view = window_case(world, onset - cfg.lookback_s, decided, onset)
    view = view.with_metric_set(choose_metric_set(view.metric_sets, method.tags.metric_set))
    t0 = time.perf_counter()
    ranking = method.rank(view)
    rep.rank_ms = round((time.perf_counter() - t0) * 1e3, 1)
    rep.decided_at = decided
    rep.ranking = ranking.components[:3]
    rep.culprit = ranking.components[0]
    rep.fault_type = ranking.fault_type
    expl = ranking.explanation or {}
    rep.explanation = expl.get("summary") if isinstance(expl, dict) else None
    rep.correct_culprit = rep.culprit in world.root_causes
    audit.log("localize", at=decided, top3=rep.ranking, fault_type=rep.fault_type, explanation=rep.explanation, rank_ms=rep.rank_ms)

    from llmrca.telemetry.vocabulary import replica_components

    rep.action, rep.action_target = choose_action(rep.culprit, rep.fault_type, replica_components(frame.columns))
    if rep.action_target is not None or rep.culprit in replica_components(frame.columns):
        rem = remedy_for(rep.fault_type)
        rep.why, rep.human = rem.why, rem.human
    audit.log("decide", action=rep.action, target=rep.action_target, execute=cfg.execute, why=rep.why, human=rep.human)
    healed = None
    if cfg.execute and rep.action_target is not None:
        from llmrca.heal.actuators import GuardedActuator, Rails
        from llmrca.heal.sim_actuator import SimActuator

        sim_act = SimActuator(be, spec, seed=seed, protocol=protocol, start_time=_START, clock=lambda: decided,
                              action_latency_s=cfg.action_latency_s)
        guard = GuardedActuator(sim_act, execute=True, rails=Rails(allow=frozenset({rep.action_target})), clock=lambda: decided)
        res = guard.request(rep.action, rep.action_target)
        healed = sim_act.healed
        rep.executed = res.executed
        audit.log("act", action=rep.action, target=rep.action_target, at=res.detail.get("at"), status=res.status, reason=res.reason,
                  backend=res.backend)
    return _finish(rep, outp, world, healed, cfg)


def _level(t: np.ndarray, v: np.ndarray, lo: float, hi: float) -> float | None:
    w = v[(t >= lo) & (t < hi)]
    w = w[np.isfinite(w)]
    return float(np.median(w)) if w.size else None


def _finish(rep: HealReport, outp: Path | None, world: Case, healed: Case | None, cfg: HealConfig) -> HealReport:
    inject = world.inject_time
    end = inject + cfg.fault_s
    base = world.metric_sets.get("extended", world.metrics)
    t = base["time"].to_numpy(dtype=float)
    v = signal_series(base, rep.signal)
    rep.levels["healthy"] = _level(t, v, _START, inject)
    if cfg.execute and rep.decided_at is not None:
        # judged over the same span with and without the action; a level within the alert's band
        # without any action means the signal had come back by itself: nothing to claim
        judge_from = rep.decided_at + cfg.action_latency_s + cfg.settle_s
        thr = ThresholdAlert(k=cfg.k, rel=cfg.rel).fit(v[t < _START + cfg.learn_s]).threshold
        rep.levels["threshold"] = thr
        rep.levels["no_action"] = no_action = _level(t, v, judge_from, end)
        after = no_action
        if healed is not None:
            hframe = healed.metric_sets.get("extended", healed.metrics)
            rep.levels["healed"] = after = _level(hframe["time"].to_numpy(dtype=float), signal_series(hframe, rep.signal), judge_from, end)
        if no_action is not None and no_action <= thr:
            rep.verdict, rep.recovered = "no SLO breach to recover from (the signal is back in band without any action)", None
        elif healed is None:
            rep.verdict, rep.recovered = "no action taken: still out of band", False
        else:
            rep.recovered = after is not None and after <= thr
            rep.verdict = "recovered" if rep.recovered else "NOT recovered"
            healthy = rep.levels.get("healthy")
            if not rep.recovered and after is not None and healthy is not None and no_action > healthy:
                removed = 1.0 - (after - healthy) / (no_action - healthy)
                if removed > 0:  # say how much the action did, and why it is not all of it after a drain
                    rep.verdict += f" (the action removed {min(removed, 1.0):.0%} of the excess over healthy"
                    rep.verdict += "; the drained replica's load now runs on the others)" if rep.action == "drain" else ")"
    if outp is not None:
        (outp / "heal.json").write_text(json.dumps(rep.to_dict(), indent=2, default=_jsonable) + "\n")
        _figure(rep, world, healed, cfg, outp / "heal.png")
    return rep


def _figure(rep: HealReport, world: Case, healed: Case | None, cfg: HealConfig, path: Path) -> None:
    from llmrca.errors import require

    matplotlib = require("matplotlib", "report", "the heal figure")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.6))
    inject = world.inject_time
    for case, label, style in ((world, "no action", "-"), (healed, "healed", "-")):
        if case is None:
            continue
        f = case.metric_sets.get("extended", case.metrics)
        ax.plot((f["time"] - inject) / 60.0, signal_series(f, rep.signal), style, lw=1.4, label=label)
    ax.axvspan(0, cfg.fault_s / 60.0, color="tab:red", alpha=0.08, label="fault")
    marks = [("alert", rep.fired_at, "tab:orange"), ("decision", rep.decided_at, "tab:purple")]
    if rep.executed and rep.decided_at is not None:
        marks.append((f"{rep.action}", rep.decided_at + cfg.action_latency_s, "tab:green"))
    for name, t, color in marks:
        if t is not None:
            ax.axvline((t - inject) / 60.0, color=color, ls="--", lw=1, label=name)
    ax.set_xlabel("minutes from fault injection")
    ax.set_ylabel(rep.signal, fontsize=8)
    verdict = f"{rep.culprit} ({rep.fault_type})" if rep.culprit else "no alert"
    ax.set_title(f"heal loop: {rep.fault['type']} on {rep.fault['target']} -> blamed {verdict}", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
