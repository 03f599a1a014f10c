"""``write_report(out_dir)``: regenerate every output of an evaluation from results.jsonl.

Part of the evaluation (the runner writes these files after every run); :mod:`llmrca.report`
re-exports it and builds REPORT.md / REPORT.html on top.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.evaluate.figures import misattribution_figure
from llmrca.evaluate.metrics import misattribution, summarize, type_named_frame, with_false_alarms, with_type_named
from llmrca.evaluate.render import write_table1
from llmrca.evaluate.results import (
    failure_reasons,
    false_alarm_frame,
    false_alarm_summary,
    has_healthy_cases,
    read_results,
    scored_frame,
    status_counts,
)
from llmrca.evaluate.tables import table1


class ReportError(ValueError):
    """The folder holds no evaluation results to report."""


@dataclass
class Report:
    out: Path
    results: pd.DataFrame  # one row per run (flattened records)
    scored: pd.DataFrame
    summary: pd.DataFrame
    status: pd.DataFrame
    table1: pd.DataFrame
    misattribution: pd.DataFrame
    random_on_failure: bool
    files: list[Path]
    false_alarms: pd.DataFrame | None = None  # one row per answered run on a healthy case (results.false_alarm_frame)
    non_default: dict[str, dict[str, tuple[Any, Any]]] | None = None  # method -> option -> (value used, default)
    notes: list[str] = field(default_factory=list)  # what select_records took from earlier evaluations or left out


def _session_method(session: dict[str, Any], method: str) -> dict[str, Any]:
    """``run.json``'s entry of ``method``: the latest session's, else the latest earlier session's that ran it."""
    for s in [session, *reversed(session.get("sessions") or [])]:
        entry = ((s or {}).get("methods") or {}).get(method) if isinstance(s, dict) else None
        if isinstance(entry, dict):
            return entry
    return {}


def _latest_session(out: Path) -> dict[str, Any]:
    p = out / "run.json"
    if not p.exists():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise ReportError(f"{p} is not valid JSON ({e}); delete it to report every run in results.jsonl") from e


def select_records(
    records: list[dict[str, Any]], session: dict[str, Any], notes: list[str] | None = None
) -> list[dict[str, Any]]:
    """The runs to report: the latest session's methods and configs, and the methods of earlier sessions into the
    same folder (last record per method and case).

    A method evaluated only by an earlier session (``evaluate -m a,b`` then ``evaluate -m c`` into one ``--out``)
    is reported at the config that session used when its runs cover every case the latest session evaluated and
    were scored the same way (``random_on_failure``); otherwise it is left out and ``notes`` (when given) says
    why, so a table never compares methods over different cases or scoring.  When the session lists its cases
    (``cases``: case id -> content fingerprint), only runs of those cases, with that content, count: a case
    removed from the dataset or edited since its run is not scored from a stale record.
    """
    wanted = {m: v.get("config_hash") for m, v in (session.get("methods") or {}).items()}
    cases: dict[str, str] | None = session.get("cases")
    rof = bool(session.get("random_on_failure", False))
    earlier: dict[str, str | None] = {}
    other_mode: list[str] = []
    for old in reversed((session.get("sessions") or [])[:-1]):  # the last one is the latest session itself
        for m, v in ((old or {}).get("methods") or {}).items() if isinstance(old, dict) else ():
            if m in wanted or m in earlier or m in other_mode:
                continue
            if bool(old.get("random_on_failure", False)) != rof:
                other_mode.append(m)
            else:
                earlier[m] = v.get("config_hash") if isinstance(v, dict) else None
    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        want = wanted.get(r["method"], earlier.get(r["method"], ""))
        if (wanted or earlier) and want != r.get("config_hash"):
            continue
        if cases is not None and (r["case"] not in cases or (r.get("case_fp") and r["case_fp"] != cases[r["case"]])):
            continue
        chosen[(r["method"], r["case"])] = r
    partial: list[str] = []
    if cases is not None:
        for m in earlier:
            n = sum(1 for (mm, _c) in chosen if mm == m)
            if n != len(cases):
                partial.append(f"{m} ({n} of {len(cases)} cases)")
                for c in list(cases):
                    chosen.pop((m, c), None)
    if notes is not None:
        kept = [m for m in earlier if not any(p.startswith(f"{m} (") for p in partial)]
        if kept:
            notes.append(f"also reported, from earlier evaluations into this folder: {', '.join(kept)} "
                         "(each at the configuration of its latest evaluation here)")
        if partial:
            notes.append(f"not reported: {', '.join(partial)}, evaluated here earlier on only part of the current cases; "
                         f"evaluate again with --methods {','.join(p.split(' ', 1)[0] for p in partial)} to run the rest")
        if other_mode:
            notes.append(f"not reported: {', '.join(other_mode)}, evaluated here earlier "
                         f"{'without' if rof else 'with'} failed runs scored as random (the paper's mode); "
                         f"evaluate again with --methods {','.join(other_mode)} to report them in this mode")
    order = {m: i for i, m in enumerate([*wanted, *earlier] or dict.fromkeys(r["method"] for r in records))}
    return sorted(chosen.values(), key=lambda r: (order.get(r["method"], 1 << 30), r["case"]))


def write_report(out_dir: str | Path) -> Report:
    """Write summary.csv, status.csv, misattribution.csv, table1.{md,csv,tex} and misattribution.png.

    Ranking metrics are over faulty cases; healthy cases (nothing injected)
    give each method a false-alarm rate (a ``fault == "none"`` row of
    summary.csv, the HEALTHY columns of Table 1) and ``false_alarms.csv``
    (one row per answered run on a healthy case).
    """
    from llmrca.methods.registry import REGISTRY

    out = Path(out_dir)
    res_path = out / "results.jsonl"
    if not res_path.exists():
        raise ReportError(f"no results.jsonl in {out}; run `llmrca evaluate DATASET --out {out}` first")
    session = _latest_session(out)
    notes: list[str] = []
    records = select_records(read_results(res_path, notes=notes), session, notes)  # a cut-off last line is said too
    rof = bool(session.get("random_on_failure", False))
    scored = scored_frame(records, random_on_failure=rof)
    fa = false_alarm_frame(records, random_on_failure=rof)
    methods = list(dict.fromkeys(r["method"] for r in records))
    healthy = has_healthy_cases(records)
    summary = with_false_alarms(summarize(scored), false_alarm_summary(fa, methods if healthy else None))
    summary = with_type_named(summary, type_named_frame(records, scored))
    status = status_counts(records, random_on_failure=rof)
    families = {m: (_session_method(session, m).get("family") or (REGISTRY[m].family if m in REGISTRY else "")) for m in methods}
    from llmrca.evaluate.render import remember_display

    for m in methods:  # a plug-in not loaded now keeps the paper name its evaluation recorded
        if m not in REGISTRY:
            remember_display(m, str(_session_method(session, m).get("display") or ""))
    t1 = table1(summary, families, methods)
    # misattribution counts real answers only: fallback (random) rankings are not a method's blame
    mis = misattribution(scored[scored["status"] == "ok"])
    files = [out / "summary.csv", out / "status.csv", out / "misattribution.csv"]
    summary.to_csv(files[0], index=False, float_format="%.4f")
    status.to_csv(files[1], index=False, float_format="%.4f")
    mis.to_csv(files[2], index=False)
    if healthy or not fa.empty:  # written whenever the dataset has healthy cases, even if no run answered one
        files.append(out / "false_alarms.csv")
        fa.to_csv(files[-1], index=False, float_format="%.4f")
    non_default = non_default_options(records)
    note = _table_note(status, rof, list(t1.columns.get_level_values(0)), failure_reasons(records))
    if non_default:
        note += "\n" + non_default_sentence(non_default)
    given = harness_sli_sentence(records)
    if given:
        note += "\n" + given
    files += write_table1(t1, out, note)
    files.append(
        misattribution_figure(
            mis,
            out / "misattribution.png",
            methods=[m for m in methods if m in set(scored["method"])],
            totals=scored[scored["status"] == "ok"].groupby("method").size().to_dict(),
        )
    )
    results = pd.DataFrame.from_records(
        [{k: r.get(k) for k in ("method", "case", "status", "fault", "root_causes", "ranking", "metric_set", "duration_s", "error", "error_kind", "config_hash", "case_warnings")} for r in records]
    )
    return Report(out, results, scored, summary, status, t1, mis, rof, files, fa, non_default, notes)


def non_default_options(records: list[dict[str, Any]], *, ignore: frozenset[str] = frozenset()) -> dict[str, dict[str, tuple[Any, Any]]]:
    """Per method, the options its runs used that differ from the method's defaults: ``{method: {option: (used, default)}}``.

    Read from each record's ``config`` (the complete config the run used, see
    :func:`llmrca.evaluate.runner.full_config`) against ``config_cls()``; a method whose class cannot be
    imported here is left out.  ``ignore``: options not to report (e.g. ``reference_mode``).
    """
    from llmrca.methods.registry import method_class

    out: dict[str, dict[str, tuple[Any, Any]]] = {}
    defaults: dict[str, dict[str, Any] | None] = {}
    for r in records:
        m, used = r.get("method"), r.get("config")
        if not isinstance(used, dict) or m in out:
            continue
        if m not in defaults:
            try:
                defaults[m] = json.loads(json.dumps(method_class(m).config_cls().to_dict(), default=str))
            except Exception:  # unknown or unavailable here: nothing to compare with
                defaults[m] = None
        d = defaults[m]
        if d is None:
            continue
        diff = {k: (v, d.get(k)) for k, v in used.items() if k not in ignore and k in d and v != d[k]}
        if diff:
            out[m] = diff
    # the evaluation's --sli, for the methods that read it (recorded as sli_given): an option too
    for r in records:
        m, given = r.get("method"), r.get("sli_given")
        if given and "sli" not in ignore and "sli" not in out.get(m, {}):
            out.setdefault(m, {})["sli"] = (given, r.get("sli_default") or "chosen by the method")
    return out


def harness_sli_sentence(records: list[dict[str, Any]], name: Callable[[str], str] = str) -> str:
    """Which methods walked from the paper harness's SLI (empty when none did).

    A method in reference mode whose config asks for it (MicroCause's) gets the injected component's own latency
    column (``harness_sli`` in its records).  A user's ``--sli`` instead (``sli_given``) is reported as a non-default
    option (:func:`non_default_options`): not the paper's setting.
    """
    harness = sorted({r["method"] for r in records if r.get("harness_sli")})
    if not harness:
        return ""
    return (", ".join(name(m) for m in harness) + " (reference mode) walked from the SLI the paper's harness chose, the "
            "injected component's own latency, read from each case's label as the artifact did (harness_sli in results.jsonl).")


def non_default_sentence(non_default: dict[str, dict[str, tuple[Any, Any]]]) -> str:
    """One sentence naming every method that ran with options other than its defaults (empty when none)."""
    if not non_default:
        return ""
    # a reference mode is the implementation the paper ran (RCAEval / sfr-pyrca; reproduce --as-paper), said apart
    refs = [f"{m} {opts['reference_mode'][0]}" for m, opts in non_default.items() if "reference_mode" in opts]
    parts = [
        f"{m} " + ", ".join(f"{k}={v!r} (default {d!r})" for k, (v, d) in opts.items() if k != "reference_mode")
        for m, opts in non_default.items()
        if set(opts) - {"reference_mode"}
    ]
    out = []
    if refs:
        out.append("Ran in the reference implementation's mode (as the paper ran them; default: the published algorithm): " + ", ".join(refs) + ".")
    if parts:
        out.append("Non-default method options (these rows are not the methods as published): " + "; ".join(parts) + ".")
    return " ".join(out)


def _table_note(status: pd.DataFrame, random_on_failure: bool, table_faults: list[str] | None = None,
                reasons: dict[str, str] | None = None) -> str:
    table_faults = table_faults or []
    if status.empty:
        return ""
    lines = []
    if random_on_failure:
        fb = {r["method"]: int(r["fallbacks"]) for _, r in status.iterrows() if int(r["fallbacks"])}
        lines.append(
            "Random on failure (as in the paper): failed and timed-out runs are scored on a seeded random ranking"
            + (f"; fallbacks: {', '.join(f'{m} {n}' for m, n in fb.items())}." if fb else "; no fallbacks were needed.")
        )
    else:
        lines.append("Failed and timed-out runs count as misses (no random fallback); unavailable runs are not scored.")
    if "none" in set(table_faults):
        lines.append(
            "HEALTHY: cases with nothing injected. False alarm = share of them where the method named a root cause "
            "(right answer: abstain); n = healthy cases answered. AC@k are over the faulty cases only; an abstention on a faulty case is a miss."
        )
    not_ok = runs_not_ok(status, reasons)
    if not_ok:
        lines.append(not_ok)
    return "\n".join(lines)


def runs_not_ok(status: pd.DataFrame, reasons: dict[str, str] | None = None, name: Callable[[str], str] = str) -> str:
    """``"Runs not ok: <method>: 8 failed (most often: <reason>); ..."`` from :func:`status_counts` and
    :func:`~llmrca.evaluate.results.failure_reasons`; "" when every run was ok.  ``name`` renders a method."""
    parts = []
    for _, r in status.iterrows():
        bad = {k: int(r[k]) for k in ("failed", "timeout", "unavailable", "invalid_case") if int(r[k])}
        if bad:
            why = (reasons or {}).get(r["method"])
            parts.append(f"{name(r['method'])}: " + ", ".join(f"{v} {k}" for k, v in bad.items()) + (f" (most often: {why})" if why else ""))
    return "Runs not ok: " + "; ".join(parts) + "." if parts else ""
