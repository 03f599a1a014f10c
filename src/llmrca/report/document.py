"""REPORT.md and REPORT.html: an evaluation explained to a reader who was not there.

One output layout for ``llmrca reproduce`` and ``llmrca evaluate``::

    <folder>/                 what ``reproduce --out`` names (default results/)
        dataset/              the labelled cases (reproduce only)
        eval/                 what ``evaluate --out`` names (default results/eval/):
                              results.jsonl, run.json, summary.csv, table1.*, misattribution.png
        fault_effects.png     the paper's Fig. 6, drawn from the dataset
        REPORT.md, REPORT.html
        reproduce.json        settings and timings (reproduce only)

:func:`write_documents` accepts the folder or its ``eval/`` part (any folder
holding results.jsonl): it regenerates the tables and figures with
:func:`llmrca.report.build.write_report` and writes REPORT.md and a
self-contained REPORT.html (figures as data URIs, a sortable Table 1, and a
drill-down per case) next to the evaluation's parent layout.

Definitions follow the paper's eq. (1) and :mod:`llmrca.evaluate.metrics`.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrca.model import NO_FAULT
from llmrca.report.build import Report, ReportError, select_records, write_report
from llmrca.report.explain import explanation_lines
from llmrca.report.tables import FAULT_LABELS, display_name, table1_markdown

EVAL_DIR = "eval"
#: top of a ranking shown per method in the drill-down
TOP_SHOWN = 5
#: an AC@1 difference from the paper at least this large (as shown, two decimals) is marked ⚠ in REPORT.md
FLAG_DIFF = 0.5


@dataclass
class Documents:
    """What :func:`write_documents` wrote."""

    report: Report
    eval_dir: Path
    folder: Path
    markdown: Path
    html: Path
    fault_effects: Path | None


def locate(folder: str | Path) -> tuple[Path, Path]:
    """``(eval_dir, folder)`` for a reproduce folder (holding ``eval/results.jsonl``) or an evaluation folder.

    An evaluation folder named ``eval`` reports into its parent (the layout
    above); any other evaluation folder reports into itself.  Raises
    ReportError (a ValueError) when neither holds results.jsonl.
    """
    folder = Path(folder)
    if (folder / EVAL_DIR / "results.jsonl").is_file():
        return folder / EVAL_DIR, folder
    if (folder / "results.jsonl").is_file():
        return folder, (folder.parent if folder.name == EVAL_DIR else folder)
    raise ReportError(
        f"no results.jsonl in {folder} nor in {folder / EVAL_DIR}; "
        f"run `llmrca reproduce --out {folder}` or `llmrca evaluate DATASET --out {folder / EVAL_DIR}` first"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def _dataset_dir(eval_dir: Path, folder: Path) -> Path | None:
    """The evaluated dataset: run.json's path (absolute, or relative to here or the folder), else ``folder/dataset``.

    A folder counts when it has a ``dataset.json`` or any case folder of any
    accepted layout (:func:`llmrca.dataset.io.find_case_dirs`).
    """
    raw = (_read_json(eval_dir / "run.json").get("dataset") or {}).get("path")
    candidates = [Path(raw), folder / Path(raw).name] if raw else []
    candidates.append(folder / "dataset")
    from llmrca.dataset.io import find_case_dirs

    for c in candidates:
        if (c / "dataset.json").is_file() or (c.is_dir() and find_case_dirs(c)):  # any layout (llmrca, RE1/RE2, RCD)
            return c
    return None


def write_documents(folder: str | Path, *, title: str = "llmrca report") -> Documents:
    """Regenerate the evaluation's tables and figures, then write REPORT.md and REPORT.html.

    ``folder``: a reproduce folder or an evaluation folder (see :func:`locate`).
    The fault-effect figure and the per-case signals need the dataset; when it
    cannot be found (moved or deleted) the report says so and leaves them out.
    Raises ReportError when there is nothing to report.
    """
    eval_dir, folder = locate(folder)
    rep = write_report(eval_dir)
    ds_dir = _dataset_dir(eval_dir, folder)
    fe_png: Path | None = None
    fe_note = ""
    if ds_dir is not None:
        from llmrca.report.fault_effects import fault_effects_figure

        try:
            fe_png = fault_effects_figure(ds_dir, folder / "fault_effects.png")
        except ValueError as e:
            fe_note = str(e)
    else:
        fe_note = "the dataset was not found (run.json names a folder that is gone), so the fault-effect figure is left out"
    meta = _read_json(folder / "reproduce.json")
    session = _read_json(eval_dir / "run.json")
    from llmrca.evaluate.results import read_results

    records = select_records(read_results(eval_dir / "results.jsonl"), session)
    from llmrca.report.findings import paper_scope, with_targets

    scored = with_targets(rep.scored, records)
    paper_scored, left_out = paper_scope(scored)
    ctx = _Context(rep, eval_dir, folder, ds_dir, fe_png, fe_note, meta, records, title, _fidelity(rep, paper_scored), scored, paper_scored, left_out)
    ctx.status_note = _status_note(ctx)  # reads the dataset's headers (layout check): once for both documents
    md = folder / "REPORT.md"
    md.write_text(_markdown(ctx))
    page = folder / "REPORT.html"
    page.write_text(_html(ctx))
    return Documents(rep, eval_dir, folder, md, page, fe_png)


@dataclass
class _Context:
    rep: Report
    eval_dir: Path
    folder: Path
    dataset: Path | None
    fault_effects: Path | None
    fe_note: str
    meta: dict[str, Any]
    records: list[dict[str, Any]]
    title: str
    fidelity: Any = None  # llmrca.report.fidelity.Fidelity, when the paper's faults and methods were evaluated
    scored: pd.DataFrame | None = None  # rep.scored with each run's fault target
    paper_scored: pd.DataFrame | None = None  # the runs the paper comparisons use (findings.paper_scope)
    left_out: dict[str, int] = field(default_factory=dict)  # faulty cases left out of them, per reason
    status_note: list[str] = field(default_factory=list)  # the lines under Table 1 (_status_note), for both renderers

    def scope_sentence(self) -> str:
        from llmrca.report.findings import scope_sentence

        ps = self.paper_scored if self.paper_scored is not None else self.rep.scored
        return scope_sentence(self.left_out, int(ps["case"].nunique()) if "case" in ps else len(ps))

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(m for _, m in self.rep.table1.index))

    def n_per_fault(self) -> tuple[dict[str, int], list[str]]:
        """The usual number of scored cases per fault, and the exceptions (method: fault n)."""
        per = self.rep.summary[self.rep.summary["fault"] != "all"]
        usual: dict[str, int] = {}
        for f, grp in per.groupby("fault", sort=False):
            # the most common n; on a tie the larger (a method whose runs all failed should not set the rule)
            usual[str(f)] = int(max(Counter(grp["n"].astype(int)).items(), key=lambda kv: (kv[1], kv[0]))[0])
        odd = [f"{display_name(r.method)} {FAULT_LABELS.get(str(r.fault), str(r.fault).upper())} n={int(r.n)}"
               for r in per.itertuples() if int(r.n) != usual[str(r.fault)]]
        have = {(str(r.method), str(r.fault)) for r in per.itertuples()}
        odd += [f"{display_name(m)} {FAULT_LABELS.get(f, f.upper())} n=0"  # no scored run of that fault at all
                for m in dict.fromkeys(str(x) for x in per["method"]) for f in usual if (m, f) not in have]
        return usual, odd

    def incomplete(self) -> tuple[int, int, bool] | None:
        """``(runs in results.jsonl, methods x cases, interrupted)`` when the evaluation did not run every method on
        every case of its last session (:func:`llmrca.evaluate.results.completeness`), else None."""
        from llmrca.evaluate.results import completeness

        run = _read_json(self.eval_dir / "run.json")
        part = completeness(self.records, run)
        return (*part, bool(run.get("interrupted"))) if part is not None else None


def _fidelity(rep: Report, scored: pd.DataFrame | None = None) -> Any:
    """Agreement with the paper's Table 1 on ``scored`` (default: every scored run; the report passes the paper's
    fault types placed on workers), when at least three of its methods ran on its fault types."""
    from llmrca.report.fidelity import FAULTS, fidelity_from_scored

    scored = rep.scored if scored is None else scored
    if scored.empty or not set(scored["fault"]) & set(FAULTS):
        return None
    fid = fidelity_from_scored(scored, n_boot=1000, seed=0)
    nd = {m: {k: v for k, v in o.items() if k != "reference_mode"} for m, o in (rep.non_default or {}).items()}
    fid.non_default = {m: o for m, o in nd.items() if o}
    return fid if len(fid.methods) >= 3 else None


def _too_few_for_fidelity(ctx: Any) -> str:
    """Why the agreement section is left out when one or two of the paper's methods ran ('' otherwise)."""
    from llmrca.report.fidelity import FAULTS, paper_table

    scored = ctx.rep.scored
    if scored is None or scored.empty or "method" not in scored or not set(scored["fault"]) & set(FAULTS):
        return ""
    ran = sorted(set(scored["method"]) & set(paper_table()["table"]))
    if not 0 < len(ran) < 3:
        return ""
    return (f"Not computed: {len(ran)} of the paper's methods ran ({', '.join(display_name(m) for m in ran)}), and Spearman's ρ "
            "over their cells needs at least 3 (evaluate more of them, e.g. `llmrca reproduce --methods ...`).")


def _scope(ctx: Any) -> str:
    """The sentence on which cases the paper comparisons use ('' when every faulty case is in the paper's setting)."""
    return ctx.scope_sentence() if hasattr(ctx, "scope_sentence") else ""


def _findings_of(ctx: _Context) -> list[str]:
    """The paper's three findings measured on this evaluation (:mod:`llmrca.report.findings`)."""
    from llmrca.report.findings import findings, findings_lines

    sets = {r["method"]: r.get("metric_set") or "basic" for r in ctx.records}
    return findings_lines(findings(ctx.paper_scored if ctx.paper_scored is not None else ctx.rep.scored, sets))


def _findings_md(ctx: _Context) -> list[str]:
    lines = _findings_of(ctx)
    if not lines:
        return []
    scope = _scope(ctx)
    return ["## Findings", "", *([scope, ""] if scope else []), "The paper's three findings (§5.2–5.3), measured on this evaluation:", "", *lines, ""]


def _mode_sentence(ctx: _Context) -> str:
    """Which mode the compared methods ran in: as published, or as the paper ran them (reference modes)."""
    from llmrca.report.fidelity import _reference_modes

    fid = ctx.fidelity
    refs = _reference_modes(getattr(ctx, "records", None) or [], fid.methods)
    rule = ("failed runs scored on a seeded random ranking, as the paper did" if getattr(getattr(ctx, "rep", None), "random_on_failure", False)
            else "failed runs count as misses")
    if not refs:
        return (f"Mode: every method as published ({rule}); `llmrca reproduce --as-paper` runs the methods that have a "
                "reference implementation in its mode, as the paper ran them.")
    plain = [display_name(m) for m in fid.methods if m not in refs]
    what = "a reference implementation" if len(refs) == 1 else "reference implementations"
    others = f"the other{'s' if len(plain) > 1 else ''} as published ({', '.join(plain)})" if plain else "no other method compared"
    return f"Mode: {what} for {', '.join(f'{display_name(m)} ({v})' for m, v in refs.items())}; {others}; {rule}."


def _reference_scope(k: int, n: int) -> str:
    """How many of the ``n`` evaluated methods ran a reference implementation (``k`` >= 1), in words.

    E.g. "a reference implementation for the one method", "reference implementations for both methods",
    "... for all 5 methods", "a reference implementation for 1 of the 2 methods, the other as published"."""
    what = "a reference implementation" if k == 1 else "reference implementations"
    if k < n:
        return f"{what} for {k} of the {n} methods, the other{'s' if n - k > 1 else ''} as published"
    return f"{what} for " + ("the one method" if n == 1 else "both methods" if n == 2 else f"all {n} methods")


def _fidelity_md(ctx: _Context) -> list[str]:
    fid = ctx.fidelity
    if fid is None:
        few = _too_few_for_fidelity(ctx)
        return ["## Agreement with the paper", "", few, ""] if few else []
    from llmrca.report.fidelity import FAULTS, NAN_NOTE

    scope = _scope(ctx)
    out = [
        "## Agreement with the paper",
        "",
        *([scope, ""] if scope else []),
        _mode_sentence(ctx),
        "",
        "Spearman's ρ between this evaluation's per-(method, fault) scores and the paper's Table 1 "
        f"({len(fid.methods)} methods; the four data-blind random-walk rows left out; 95 % interval from "
        f"{fid.n_boot} bootstrap resamples of the cases):",
        "",
        "```",
        *fid.lines(),
        "```",
        "",
        *([NAN_NOTE, ""] if fid.table["rho"].isna().any() else []),
        *[w for w in fid.warnings() for w in (w, "")],
        "AC@1 side by side (ours / paper, and the difference):",
        "",
        "| Method | " + " | ".join(f.upper() for f in FAULTS) + " |",
        "|---|" + "---:|" * len(FAULTS),
    ]
    cells = fid.cells[fid.cells["metric"] == "ac@1"]
    random = _mostly_random(ctx)
    for m in fid.methods:
        row = []
        for f in FAULTS:
            c = cells[(cells["method"] == m) & (cells["fault"] == f)].iloc[0]
            if not np.isfinite(float(c["ours"])):  # no scored case of that fault for this method: as Table 1 says it
                row.append(f"– / {c['paper']:.2f}")
                continue
            shown_diff = f"{c['diff']:+.2f}"
            mark = " ⚠" if abs(float(shown_diff)) >= FLAG_DIFF else ""  # the rule reads the number as shown
            mark += " ᴿ" if (m, f) in random else ""
            row.append(f"{c['ours']:.2f} / {c['paper']:.2f} ({shown_diff}){mark}")
        out.append(f"| {display_name(m)} | " + " | ".join(row) + " |")
    shown = any(m in fid.methods for m, _ in random)
    out += ["", f"⚠ marks a difference of {FLAG_DIFF} or more (as shown, to two decimals)."
            + (f" {RANDOM_NOTE}" if shown else ""), ""]
    return out


#: What the ᴿ mark of the side-by-side table means.
RANDOM_NOTE = "ᴿ marks a cell where at least half of the runs failed or timed out and were scored on the seeded random ranking (the paper's rule, `--as-paper`): it measures the fallback, not the method."


def _mostly_random(ctx: _Context) -> set[tuple[str, str]]:
    """(method, fault) cells in which at least half of the scored runs were failures scored on the random fallback.

    Empty unless the evaluation scored failures that way (``--as-paper``): otherwise a failed run is a miss,
    whatever fallback ranking its record keeps.
    """
    if not getattr(getattr(ctx, "rep", None), "random_on_failure", False):
        return set()
    runs: Counter[tuple[str, str]] = Counter()
    fell: Counter[tuple[str, str]] = Counter()
    for r in getattr(ctx, "records", None) or []:
        key = (r.get("method"), r.get("fault"))
        runs[key] += 1
        fell[key] += r.get("fallback_ranking") is not None
    return {k for k, n in runs.items() if n and fell[k] >= n / 2}


def _fidelity_html(ctx: _Context) -> str:
    fid = ctx.fidelity
    if fid is None:
        few = _too_few_for_fidelity(ctx)
        return f"<h2>Agreement with the paper</h2><p>{_md_inline(few)}</p>" if few else ""
    from llmrca.report.fidelity import FAULTS, NAN_NOTE

    cells = fid.cells[fid.cells["metric"] == "ac@1"]
    random = _mostly_random(ctx)
    rows = []
    for m in fid.methods:
        tds = []
        for f in FAULTS:
            c = cells[(cells["method"] == m) & (cells["fault"] == f)].iloc[0]
            if not np.isfinite(float(c["ours"])):
                tds.append(f'<td class="num" title="no scored case">– / {c["paper"]:.2f}</td>')
                continue
            alpha = min(1.0, abs(float(c["diff"])) / 0.8)
            colour = f"rgba(214,39,40,{alpha:.2f})" if c["diff"] > 0 else f"rgba(31,119,180,{alpha:.2f})"
            mark = " ᴿ" if (m, f) in random else ""
            tds.append(f'<td class="num" style="background:{colour}" title="ours {c["ours"]:.2f}, paper {c["paper"]:.2f}">{c["ours"]:.2f} / {c["paper"]:.2f}{mark}</td>')
        rows.append(f"<tr><td>{_e(display_name(m))}</td>{''.join(tds)}</tr>")
    head = "<tr><th>Method</th>" + "".join(f"<th>{f.upper()} AC@1 ours / paper</th>" for f in FAULTS) + "</tr>"
    return (
        "<h2>Agreement with the paper</h2>"
        + (f"<p>{_e(_scope(ctx))}</p>" if _scope(ctx) else "")
        + f"<p>{_md_inline(_mode_sentence(ctx))}</p>"  # its `commands` as code, like the Markdown's
        + f"<p>Spearman's ρ with the paper's Table 1 ({len(fid.methods)} methods, random-walk rows left out; 95 % bootstrap interval over cases):</p>"
        + f"<pre>{_e(chr(10).join(fid.lines()))}</pre>"
        + (f"<p class=\"muted\">{_e(NAN_NOTE)}</p>" if fid.table["rho"].isna().any() else "")
        + "".join(f"<p><strong>{_e(w)}</strong></p>" for w in fid.warnings())
        + "<p class=\"muted\">Cell colour: red where we score higher than the paper, blue where lower; the stronger, the larger the difference."
        + (f" {_e(RANDOM_NOTE)}" if random else "") + "</p>"
        f"<table>{head}{''.join(rows)}</table>"
    )


# -- Markdown ------------------------------------------------------------------


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(path, start)).as_posix()


def _definitions_md(ctx: _Context) -> list[str]:
    usual, odd = ctx.n_per_fault()
    n_text = ", ".join(f"{FAULT_LABELS.get(f, f.upper())} n={n}" for f, n in usual.items()) or "no scored runs"
    tie = "expected"  # llmrca.evaluate.metrics default, used by scored_frame
    lines = [
        "> **How to read the numbers**",
        ">",
        "> - **AC@k** (the paper's eq. (1)): for one case with ranking *R* and true root-cause set *V*,",
        ">   AC@k = |{R[1], ..., R[k]} ∩ V| / min(k, |V|). A cell is the mean over the cases of that fault type,",
        ">   so AC@1 is the share of cases whose first-ranked component is the culprit. 0 to 1, higher is better.",
        "> - **Avg@5** = (AC@1 + AC@2 + ... + AC@5) / 5 per case, then averaged like AC@k: it rewards a culprit near the top.",
        f"> - **Ties** ({tie} rule): components with equal scores have no order, so a tie group that straddles position k",
        ">   counts its expected number of root causes under a uniformly random order of the group",
        ">   (three components tied first with the culprit among them give AC@1 = 1/3).",
        f"> - **n per cell**: each cell averages {n_text} cases"
        + (f"; exceptions: {', '.join(odd)}." if odd else " (the same for every method)."),
        ">   " + _scoring_rule(ctx.rep.random_on_failure),
        "> - **–**: no scored run for that method and fault.",
    ]
    if "none" in set(ctx.rep.summary["fault"]):
        lines.append(
            "> - **HEALTHY False alarm**: share of the healthy cases (nothing injected) where the method named a root cause; "
            "the right answer there is \"no root cause\" (an abstention). **HEALTHY n**: healthy cases answered. "
            "AC@k and Avg@5 are over the faulty cases only; an abstention on a faulty case counts as a miss."
        )
    return lines


def _scoring_rule(rof: bool) -> str:
    if rof:
        return "Failed and timed-out runs are scored on a seeded random ranking (as the paper did); unavailable runs are not scored."
    return "Failed and timed-out runs count as misses (0); unavailable runs are not scored."


def _names_footnote(methods: list[str]) -> str:
    named = [f"{display_name(m)} = `{m}`" for m in methods if display_name(m) != m]
    return ("<sup>names</sup> Method names are the paper's; the name `--methods` takes: " + "; ".join(named) + ".") if named else ""


def _setting(ctx: _Context) -> str:
    """One paragraph: backend, profile, seed, timings, cases per fault, methods."""
    meta = ctx.meta
    cases = {r["case"]: r for r in ctx.records}
    by_fault = Counter(r["fault"] for r in cases.values())
    setting = []
    # reproduce.json, else the dataset manifest recorded in the evaluation's run.json
    origin = meta or (_read_json(ctx.eval_dir / "run.json").get("dataset") or {}).get("manifest") or {}
    if origin.get("backend"):
        setting.append(f"Backend `{origin.get('backend')}`, profile `{origin.get('profile')}`, seed {origin.get('seed')}.")
    if meta:
        if "campaign_s" in meta:
            sessions = len(_read_json(ctx.eval_dir / "run.json").get("sessions") or [])  # the evaluator's, interrupted ones too
            runs = max(int(meta.get("invocations") or 1), sessions)
            over = f" (summed over {runs} invocations into this folder)" if runs > 1 else ""
            setting.append(f"Campaign {meta['campaign_s']:.0f} s, evaluation {meta.get('evaluate_s', 0):.0f} s{over}.")
    manifest = (_read_json(ctx.eval_dir / "run.json").get("dataset") or {}).get("manifest") or {}
    if manifest.get("complete") is False:  # scored as it was: the tables cover only the cases it had
        setting.append("**The dataset's campaign was not finished when it was evaluated** (dataset.json: complete false): "
                       "the tables cover the cases it had; finish it with `llmrca campaign --resume` and evaluate again into this folder.")
    part = ctx.incomplete()
    if part is not None:  # cells then average different cases for different methods: said first, in bold
        have, expected, stopped = part
        setting.append(f"**The evaluation is incomplete**: {have} of its {expected} runs (methods × cases) are in "
                       f"results.jsonl{' (it was interrupted)' if stopped else ''}, so the cells below average different "
                       "cases for different methods; rerun the same `llmrca evaluate` (or `llmrca reproduce`) command to "
                       "finish it (it resumes), then `llmrca report`.")
    setting.append(f"{len(cases)} cases (" + ", ".join(f"{'healthy' if f == NO_FAULT else 'unreadable' if f is None else f} {n}" for f, n in by_fault.items()) + f"), {len(ctx.methods)} method{'s' if len(ctx.methods) != 1 else ''}.")
    from llmrca.report.fidelity import _reference_modes

    refs = _reference_modes(ctx.records, ctx.methods)
    on_failure = getattr(getattr(ctx, "rep", None), "random_on_failure", False)
    n = len(ctx.methods)
    setting.append("Mode: " + (_reference_scope(len(refs), n) if refs else "every method as published")
                   + ("; a failed run scores as random, as in the paper." if on_failure else "; a failed run is a miss."))
    ds_dir = getattr(ctx, "dataset", None)
    man = _read_json(ds_dir / "dataset.json") if ds_dir is not None else {}
    sim = _sim_options(man)
    if sim is not None:
        differ, unrecorded = sim
        from llmrca.testbed.sim.config import SimConfig

        layout = {"every-pod": "a Serve proxy on every pod, the paper's Fig. 4", "head": "the head's proxy relays every request"}
        ingress = SimConfig().ingress
        setting.append("Simulator: " + (f"the defaults (ingress={ingress!r}: {layout.get(ingress, ingress)})" if not differ
                                        else "options other than the defaults: "
                                        + ", ".join(f"{k}={v!r} (default {d!r})" for k, (v, d) in differ.items()))
                       + (f"; not recorded (a dataset made before these options existed; today's defaults need not be what "
                          f"it used): {', '.join(unrecorded)}." if unrecorded else "."))
    faults = (man.get("parameters") or {}).get("fault_params")
    if faults:
        setting.append("Fault parameters other than the defaults: " + ", ".join(f"{ft}.{k}={v!r}" for ft, d in sorted(faults.items()) for k, v in d.items()) + ".")
    return " ".join(setting)


def _sim_options(man: dict[str, Any]) -> tuple[dict[str, tuple[Any, Any]], list[str]] | None:
    """The simulator options the dataset (its manifest ``man``) was made with that differ from today's defaults, and
    today's options the manifest does not record (made by an older llmrca); None: not a simulated dataset, or no
    options recorded."""
    used = (man.get("parameters") or {}).get("sim") if man.get("backend") == "sim" else None
    if not isinstance(used, dict):
        return None
    from llmrca.testbed.sim.config import SimConfig

    return SimConfig.non_default(used), sorted(set(SimConfig().to_dict()) - set(used))


def _markdown(ctx: _Context) -> str:
    rep, meta = ctx.rep, ctx.meta
    head = [f"# {ctx.title}", "", _setting(ctx), ""]
    head += [*_definitions_md(ctx), ""]
    table = table1_markdown(rep.table1).rstrip("\n").splitlines()
    if table:
        table[0] = table[0].replace("| Method |", "| Method<sup>names</sup> |", 1)
    note = ctx.status_note
    body = ["## Table 1", "", *table, ""]
    if note:
        body += [*note, ""]
    fn = _names_footnote(ctx.methods)
    if fn:
        body += [fn, ""]
    body += _type_named_md(ctx)
    body += _placement_md(ctx)
    body += ["## Figures", ""]
    mis = ctx.eval_dir / "misattribution.png"
    body += [
        f"![Misattribution (paper Fig. 5): per method, the component blamed at rank 1 when it was wrong]({_rel(mis, ctx.folder)})",
        "",
        "*Misattribution (paper Fig. 5): for each method, which component it ranked first when that was not the culprit.*",
        "",
    ]
    if ctx.fault_effects is not None:
        body += [
            f"![Fault effects (paper Fig. 6): one case per fault, the target's key signals, fault window shaded]({_rel(ctx.fault_effects, ctx.folder)})",
            "",
            "*Fault effects (paper Fig. 6): one case per fault type; left the resource on the target, right what serving feels.*",
            "",
        ]
    elif ctx.fe_note:
        body += [f"Fault-effect figure: {ctx.fe_note}.", ""]
    body += _findings_md(ctx)
    body += _fidelity_md(ctx)
    body += _best_overall_md(ctx)
    skipped = meta.get("unavailable") or []
    if skipped:
        body += ["## Methods not run", ""] + [f"- {display_name(r['name'])} (`{r['name']}`): {r['reason']}" for r in skipped] + [""]
    body += _files_md(ctx)
    return "\n".join(head + body)


def _files_md(ctx: _Context, page: str = "REPORT.html", what: str = "this report with a sortable Table 1 and every case's rankings and signals") -> list[str]:
    """The report's files, relative to its folder (``page``: the other rendering of the report)."""
    return [
        "## Files",
        "",
        f"- `{page}`: {what}",
        f"- `{_rel(ctx.eval_dir / 'results.jsonl', ctx.folder)}`: one record per (method, case) run; "
        f"`{_rel(ctx.eval_dir / 'summary.csv', ctx.folder)}`: every cell with its n; "
        f"`{_rel(ctx.eval_dir / 'table1.tex', ctx.folder)}`: Table 1 in LaTeX",
        *([f"- dataset: `{ctx.dataset}`"] if ctx.dataset is not None else []),
        "",
    ]


def _fault_order(faults: Any) -> list[str]:
    from llmrca.model import ALL_FAULT_TYPES

    present = set(faults)
    return [f for f in ALL_FAULT_TYPES if f in present] + sorted(present - set(ALL_FAULT_TYPES))


def _best_overall_md(ctx: _Context) -> list[str]:
    """The five methods with the best AC@1 (then Avg@5) over every fault."""
    summary = ctx.rep.summary
    overall = summary[summary["fault"] == "all"].sort_values(["ac@1", "avg@5"], ascending=False, kind="stable")
    if not len(overall):
        return []
    return [
        "## Best overall",
        "",
        *(f"{i + 1}. {display_name(r['method'])} (`{r['method']}`): AC@1 {r['ac@1']:.2f}, AC@3 {r['ac@3']:.2f}, "
          f"Avg@5 {r['avg@5']:.2f} over {int(r['n'])} cases" for i, (_, r) in enumerate(overall.head(5).iterrows())),
        "",
    ]


def _md_inline(text: str) -> str:
    """One line of the report's Markdown as HTML text: escaped, ``**`` dropped, `code` as <code>."""
    import re

    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _e(text).replace("**", ""))


def _md_html(lines: list[str]) -> str:
    """The simple Markdown of a report section (a ``##`` heading, paragraphs, a numbered list, a pipe table; inline
    code) as HTML, so that REPORT.html holds the sections REPORT.md has without a second renderer of each."""
    import re

    inline = _md_inline
    out: list[str] = []
    table: list[list[str]] = []
    items: list[str] = []
    bullets: list[tuple[bool, str]] = []  # (nested under the one before, text)

    def flush() -> None:
        if bullets:
            html, open_sub = "<ul>", False
            for i, (sub, text) in enumerate(bullets):
                if sub and not open_sub and i:
                    html = html.removesuffix("</li>") + "<ul>"
                    open_sub = True
                elif not sub and open_sub:
                    html += "</ul></li>"
                    open_sub = False
                html += f"<li>{inline(text)}</li>"
            html += "</ul></li>" if open_sub else ""
            out.append(html + "</ul>")
            bullets.clear()
        if table:
            head, *rows = table
            out.append("<table><tr>" + "".join(f"<th>{inline(c)}</th>" for c in head) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in rows) + "</table>")
            table.clear()
        if items:
            out.append("<ol>" + "".join(f"<li>{inline(x)}</li>" for x in items) + "</ol>")
            items.clear()

    for line in lines:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):  # the |---| separator row
                table.append(cells)
            continue
        if (m := re.match(r"\d+\. (.*)", line)) is not None:
            items.append(m.group(1))
            continue
        if line.startswith(("- ", "  - ")):
            bullets.append((line.startswith("  "), line.lstrip()[2:]))
            continue
        flush()
        if line.startswith("## "):
            out.append(f"<h2>{inline(line[3:])}</h2>")
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
    flush()
    return "".join(out)


def _type_named_md(ctx: _Context) -> list[str]:
    """Per method that names fault types: the share of faulty cases whose type it named right, per fault type."""
    s = ctx.rep.summary
    if "type_named" not in s:
        return []
    s = s[s["type_named"].notna() & (s["fault"] != NO_FAULT)]
    if s.empty:
        return []
    faults = [*_fault_order(s.loc[s["fault"] != "all", "fault"]), "all"]
    out = [
        "## Fault type named",
        "",
        "Share of the faulty cases whose fault *type* the method named right (methods that name a type only; "
        "a run that named none counts as wrong). `type_named` in summary.csv.",
        "",
        "| Method | " + " | ".join(FAULT_LABELS.get(f, f.upper()) if f != "all" else "All" for f in faults) + " |",
        "|---|" + "---:|" * len(faults),
    ]
    for m, grp in s.groupby("method", sort=False):
        by = dict(zip(grp["fault"], grp["type_named"], strict=True))
        out.append(f"| {display_name(str(m))} | " + " | ".join(f"{by[f]:.2f}" if f in by else "–" for f in faults) + " |")
    return [*out, ""]


def _placement_md(ctx: _Context) -> list[str]:
    """AC@1 per method and fault placement (gateway / head / worker / operator), when faults sit on more than workers."""
    from llmrca.report.findings import PLACEMENTS, placement

    sc = ctx.scored
    if sc is None or sc.empty or "target" not in sc:
        return []
    sc = sc.assign(_place=sc["target"].map(placement))
    places = [p for p in PLACEMENTS if p in set(sc["_place"])]
    if places == ["worker"] or not places:
        return []
    n = sc.drop_duplicates("case")["_place"].value_counts()
    out = [
        "## AC@1 by placement",
        "",
        "AC@1 over the faulty cases placed on each kind of component (every fault type; n = cases).",
        "",
        "| Method | " + " | ".join(f"{p} (n={int(n.get(p, 0))})" for p in places) + " |",
        "|---|" + "---:|" * len(places),
    ]
    for m, grp in sc.groupby("method", sort=False):
        by = grp.groupby("_place")["ac@1"].mean()
        out.append(f"| {display_name(str(m))} | " + " | ".join(f"{by[p]:.2f}" if p in by else "–" for p in places) + " |")
    return [*out, ""]


def _layout_warning(ctx: _Context) -> str | None:
    """The dataset's cases differ in columns or call graph (dataset.validate.layout_warning), or None."""
    if ctx.dataset is None or not Path(ctx.dataset).is_dir():
        return None
    from llmrca.dataset.io import Dataset
    from llmrca.dataset.validate import layout_warning

    try:
        ds = Dataset(ctx.dataset)
        evaluated = {r["case"] for r in ctx.records if r.get("error_kind") != "invalid_case"}  # invalid: reported as such
        return layout_warning(ds, [d for d in ds.case_dirs() if ds.case_id(d) in evaluated])
    except (OSError, ValueError):
        return None


def _status_note(ctx: _Context) -> list[str]:
    from llmrca.evaluate.outputs import runs_not_ok
    from llmrca.evaluate.results import failure_reasons, mostly_fallback

    rep = ctx.rep
    not_ok = runs_not_ok(rep.status, failure_reasons(ctx.records), display_name)
    out = [not_ok] if not_ok else []
    out += [n[0].upper() + n[1:] + "." for n in rep.notes]  # methods from earlier evaluations into the folder, or left out
    mixed = _layout_warning(ctx)
    if mixed:
        out.append(f"Warning: {mixed}")
    if rep.random_on_failure:  # Table 1 rows that measure the fallback more than the method
        mostly = [f"{display_name(m)} {fell} of {n}" for m, (fell, n) in mostly_fallback(rep.status).items()]
        if mostly:
            out.append("Scored mostly on the seeded random ranking (at least half of their runs failed or timed out; the "
                       "paper's rule): " + ", ".join(mostly) + ". Their rows measure the fallback, not the method.")
    if rep.non_default:
        from llmrca.evaluate.outputs import non_default_sentence

        out.append(non_default_sentence(rep.non_default))
    from llmrca.evaluate.outputs import harness_sli_sentence

    given = harness_sli_sentence(ctx.records, display_name)
    if given:
        out.append(given)
    return out


# -- HTML ----------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
.defs{background:#f4f7fb;border:1px solid #cbd6e6;border-radius:6px;padding:.6em 1.2em}
.defs dt{font-weight:600;margin-top:.4em}.defs dd{margin-left:1.2em}
table{border-collapse:collapse;font-size:12.5px}th,td{border:1px solid #ddd;padding:2px 6px}
th{background:#f0f0f0;position:sticky;top:0}table.sortable th{cursor:pointer;user-select:none}
table.sortable th[data-dir=asc]::after{content:" \\25B2"}table.sortable th[data-dir=desc]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr.src td{background:#fafafa}
img{max-width:100%;height:auto;border:1px solid #eee}figure{margin:1em 0}figcaption{font-size:12.5px;color:#555}
details{border:1px solid #ddd;border-radius:4px;margin:.25em 0;padding:.2em .6em}summary{cursor:pointer}
.hit{font-weight:700;color:#0a6d2c}.miss{color:#a11}.muted{color:#777}pre{white-space:pre-wrap;font-size:12px;background:#fafafa;padding:.5em}
svg text{font:10px system-ui,sans-serif;fill:#444}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('thead th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var asc=th.dataset.dir!=='asc';
      t.querySelectorAll('thead th').forEach(function(o){delete o.dataset.dir;});
      th.dataset.dir=asc?'asc':'desc';
      var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v,c;
        if(x!==undefined&&y!==undefined){x=x===''?-Infinity:+x;y=y===''?-Infinity:+y;c=x-y;}
        else{c=a.cells[i].textContent.localeCompare(b.cells[i].textContent);}
        return asc?c:-c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
});
function expand(d){
  var tpl=d.querySelector('template');
  if(d.open&&tpl){d.appendChild(tpl.content.cloneNode(true));tpl.remove();}
}
document.querySelectorAll('details.case').forEach(function(d){
  d.addEventListener('toggle',function(){expand(d);});
  expand(d);
});
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _data_uri(png: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _definitions_html(ctx: _Context) -> str:
    usual, odd = ctx.n_per_fault()
    n_text = ", ".join(f"{FAULT_LABELS.get(f, f.upper())} n={n}" for f, n in usual.items()) or "no scored runs"
    return (
        '<div class="defs" id="definitions"><dl>'
        "<dt>AC@k (the paper's eq. (1))</dt><dd>For one case with ranking <i>R</i> and true root-cause set <i>V</i>: "
        "AC@k = |{R<sub>1</sub>, …, R<sub>k</sub>} ∩ V| / min(k, |V|). A cell is the mean over the cases of that fault type; "
        "AC@1 is the share of cases whose first-ranked component is the culprit. 0 to 1, higher is better.</dd>"
        "<dt>Avg@5</dt><dd>(AC@1 + … + AC@5) / 5 per case, averaged like AC@k.</dd>"
        "<dt>Ties (expected rule)</dt><dd>Components with equal scores have no order: a tie group straddling position k counts "
        "its expected number of root causes under a uniformly random order of the group (three tied first, one of them the culprit: AC@1 = 1/3).</dd>"
        f"<dt>n per cell</dt><dd>Each cell averages {_e(n_text)} cases"
        + (f"; exceptions: {_e(', '.join(odd))}." if odd else " (the same for every method).")
        + f" {_e(_scoring_rule(ctx.rep.random_on_failure))}</dd>"
        "<dt>–</dt><dd>No scored run for that method and fault. Hover a method name for the name <code>--methods</code> takes.</dd>"
        "</dl></div>"
    )


def _table1_html(ctx: _Context) -> str:
    t1 = ctx.rep.table1
    cols = list(t1.columns)  # (fault, metric); healthy cases add ("none", "False alarm") and ("none", "n")
    head = "<th>Data source</th><th>Method</th>" + "".join(f"<th>{_e(FAULT_LABELS.get(f, f.upper()))} {_e(m)}</th>" for f, m in cols)
    rows = []
    for (src, m), row in t1.iterrows():
        cells = [f"<td>{_e(src)}</td>", f'<td title="{_e(m)}">{_e(display_name(m))}</td>']
        for (_, metric), v in zip(cols, row.to_numpy(dtype=float), strict=True):
            shown = f"{int(v)}" if metric == "n" and not np.isnan(v) else f"{v:.2f}"
            cells.append('<td class="num" data-v="">–</td>' if np.isnan(v) else f'<td class="num" data-v="{v:.4f}">{shown}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="table1" class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _svg(series: list[tuple[Any, np.ndarray, np.ndarray]], window: tuple[float, float]) -> str:
    """Small multiples: one 300x92 panel per signal, the fault window shaded, min/max labelled, the x axis in minutes from injection.

    ``series``: ``(signal, minutes from injection, values)`` per signal
    (:func:`llmrca.report.fault_effects.key_series`); a series with fewer
    than two finite points is left out.
    """
    w, h, pad, bottom = 300, 92, 4, 14
    panels = []
    for i, (sig, t, v) in enumerate(series):
        ok = np.isfinite(t) & np.isfinite(v)
        if ok.sum() < 2:
            continue
        t, v = t[ok], v[ok]
        t0, t1 = float(t.min()), float(t.max())
        lo, hi = float(v.min()), float(v.max())
        span_v = hi - lo or 1.0
        span_t = t1 - t0 or 1.0
        plot_h = h - bottom - 14

        xs = pad + (t - t0) / span_t * (w - 2 * pad)
        ys = 14 + (1 - (v - lo) / span_v) * (plot_h - 4)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs, ys, strict=True))
        wx0 = pad + (max(window[0], t0) - t0) / span_t * (w - 2 * pad)
        wx1 = pad + (min(window[1], t1) - t0) / span_t * (w - 2 * pad)
        axis_y = 14 + plot_h
        panels.append(
            f'<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{_e(sig.label)}">'
            f'<rect x="{wx0:.1f}" y="12" width="{max(wx1 - wx0, 0):.1f}" height="{plot_h}" fill="#d62728" fill-opacity="0.12"/>'
            f'<polyline fill="none" stroke-width="1.3" points="{pts}" style="stroke:{_PALETTE[i % len(_PALETTE)]}"/>'
            f'<line x1="{pad}" y1="{axis_y}" x2="{w - pad}" y2="{axis_y}" stroke="#bbb" stroke-width="0.8"/>'
            f'<text x="{pad}" y="10">{_e(sig.label)}: {lo:.3g} to {hi:.3g}</text>'
            f'<text x="{pad}" y="{h - 2}">{t0:.3g}</text>'
            f'<text x="{w / 2:.0f}" y="{h - 2}" text-anchor="middle">minutes from injection</text>'
            f'<text x="{w - pad}" y="{h - 2}" text-anchor="end">{t1:.3g}</text></svg>'
        )
    return "".join(panels) or '<p class="muted">no signal columns for this case</p>'


_PALETTE = ("#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _load_cases(ctx: _Context, names: list[str], dirs: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The cases of ``names`` read with :func:`llmrca.dataset.io.read_case` (any layout), and why the others were not.

    A case is looked for at its recorded ``case_dir``, then under the dataset
    folder by name.  Returns ``(cases, reasons)``: ``reasons[name]`` says
    why a case has no signals (no folder found, or the problem reading it).
    """
    from llmrca.dataset.io import read_case

    out: dict[str, Any] = {}
    why: dict[str, str] = {}
    for name in names:
        cand = [Path(dirs[name])] if dirs.get(name) else []
        if ctx.dataset is not None:
            cand.append(ctx.dataset / name)
        folder = next((c for c in cand if c.is_dir()), None)
        if folder is None:
            why[name] = "the case folder was not found"
            continue
        try:
            out[name] = read_case(folder, validate=False)
        except Exception as e:  # a case that no longer reads is shown without signals, with the reason
            problems = getattr(e, "problems", None) or [str(e)]
            why[name] = f"the case folder {folder} no longer reads ({problems[0]})"
    return out, why


def _healthy_signals(case: Any, recs: list[dict[str, Any]]) -> list[str]:
    """A healthy case's drill-down: nothing was injected; the signals of the component the methods blamed
    most (first-ranked in answers that were not abstentions), else those of the entry component (its latency)."""
    from llmrca.report.fault_effects import component_series, fault_window_min

    blamed = Counter(r["ranking"][0] for r in recs if r["status"] == "ok" and r.get("ranking") and not r.get("abstained"))
    comps = list(case.components)
    if blamed:
        comp, n = blamed.most_common(1)[0]
        why = f"{comp}, ranked first by {n} of {sum(blamed.values())} methods that named a root cause (each a false alarm)"
    else:
        comp = case.topology.entry if case.topology is not None and case.topology.entry in comps else (comps[0] if comps else None)
        why = f"{comp}, the entry (no method named a root cause)"
    head = f"<p>Nothing was injected (a healthy case); shaded: the protocol's empty fault window. Signals of {_e(why)}; minutes from the injection time.</p>"
    series = component_series(case, comp) if comp is not None else []
    if not series:
        return [head, f'<p class="muted">signals not shown: {_e(comp or "no component")} has no CPU, memory or latency column</p>']
    return [head, _svg(series, fault_window_min(case))]


def _truth_pos(ranking: list[str], roots: set[str]) -> int | None:
    return next((i + 1 for i, c in enumerate(ranking) if c in roots), None)


def _cases_html(ctx: _Context) -> str:
    from llmrca.report.fault_effects import fault_window_min, key_series

    per_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    dirs: dict[str, str] = {}
    for r in ctx.records:
        per_case[r["case"]].append(r)
        dirs.setdefault(r["case"], r.get("case_dir") or "")
    names = sorted(per_case)
    cases, why = _load_cases(ctx, names, dirs)
    order = {m: i for i, m in enumerate(ctx.methods)}
    blocks = []
    for name in names:
        recs = sorted(per_case[name], key=lambda r: order.get(r["method"], 1 << 30))
        first = recs[0]
        roots = set(first.get("root_causes") or [])
        hits = sum(1 for r in recs if r["status"] == "ok" and (r.get("ranking") or [None])[0] in roots)
        scored = sum(1 for r in recs if r["status"] == "ok")
        llm = next((r for r in recs if r["method"] == "llm-rca"), None)
        llm_txt = ""
        if llm is not None:
            pos = _truth_pos(llm.get("ranking") or [], roots)
            llm_txt = f"; {display_name('llm-rca')}: " + (f"culprit #{pos}" if pos else "culprit not ranked")
        summary = (
            f"<b>{_e(name)}</b> — {_e(first.get('fault') or '?')} on {_e(', '.join(sorted(roots)) or '?')}: "
            f"{hits} of {scored} methods rank the culprit first{_e(llm_txt)}"
        )
        if first.get("fault") == "none" and not roots:  # a healthy case: the right answer is "no root cause"
            quiet = sum(1 for r in recs if r["status"] == "ok" and (r.get("abstained") or not r.get("ranking")))
            summary = f"<b>{_e(name)}</b> — healthy (nothing injected): {quiet} of {scored} methods answer \u201cno root cause\u201d"
        inner = []
        case = cases.get(name)
        if case is not None and case.fault is not None and case.fault.injected:
            inner.append("<h4>Key signals of the target (shaded: fault window; minutes from injection)</h4>")
            inner.append(_svg(key_series(case), fault_window_min(case)))
        elif case is not None and case.healthy:
            inner += _healthy_signals(case, recs)
        elif case is not None:
            inner.append('<p class="muted">signals not shown: the case has no fault record</p>')
        else:
            inner.append(f'<p class="muted">signals not shown: {_e(why.get(name, "the case folder was not found"))}</p>')
        rows = []
        for r in recs:
            ranking = r.get("ranking") or []
            top = ", ".join(
                f'<span class="hit">{_e(c)}</span>' if c in roots else _e(c) for c in ranking[:TOP_SHOWN]
            ) or '<span class="muted">(none)</span>'
            pos = _truth_pos(ranking, roots)
            status = r["status"] if r["status"] == "ok" else f'<span class="miss">{_e(r["status"])}</span>'
            rows.append(
                f'<tr><td title="{_e(r["method"])}">{_e(display_name(r["method"]))}</td><td>{status}</td>'
                f'<td class="num">{pos if pos else "–"}</td><td>{top}</td></tr>'
            )
        inner.append(
            "<h4>Top-5 per method (culprit in bold green)</h4><table><thead><tr><th>Method</th><th>status</th>"
            "<th>culprit at</th><th>top 5</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )
        if llm is not None:
            lines = explanation_lines(llm.get("explanation"))
            inner.append(f"<h4>{_e(display_name('llm-rca'))}: explanation</h4>")
            inner.append(f"<pre>{_e(chr(10).join(lines))}</pre>" if lines else '<p class="muted">no explanation recorded</p>')
        blocks.append(f'<details class="case"><summary>{summary}</summary><template>{"".join(inner)}</template></details>')
    return "".join(blocks)


def _html(ctx: _Context) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(ctx.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(ctx.title)}</h1><p>{_md_inline(_setting(ctx))}</p>",
        _definitions_html(ctx),
        "<h2>Table 1</h2><p class=\"muted\">Click a column header to sort.</p>",
        _table1_html(ctx),
    ]
    notes = ctx.status_note
    if notes:
        parts.append(f"<p>{_md_inline(' '.join(notes))}</p>")
    mis = ctx.eval_dir / "misattribution.png"
    parts.append("<h2>Figures</h2>")
    if mis.is_file():
        parts.append(
            f'<figure><img alt="Misattribution (paper Fig. 5)" src="{_data_uri(mis)}"><figcaption>Misattribution (paper Fig. 5): '
            "for each method, which component it ranked first when that was not the culprit.</figcaption></figure>"
        )
    if ctx.fault_effects is not None:
        parts.append(
            f'<figure><img alt="Fault effects (paper Fig. 6)" src="{_data_uri(ctx.fault_effects)}"><figcaption>Fault effects (paper Fig. 6): '
            "one case per fault type; left the resource on the target, right what serving feels.</figcaption></figure>"
        )
    elif ctx.fe_note:
        parts.append(f"<p>Fault-effect figure: {_e(ctx.fe_note)}.</p>")
    found = _findings_of(ctx)
    if found:
        items = _md_html(found)  # its sub-bullets (the Fig. 5 methods) nested, as in REPORT.md
        scope = _scope(ctx)
        parts.append(f"<h2>Findings</h2><p>The paper's three findings (§5.2–5.3), measured on this evaluation:</p>{f'<p>{_e(scope)}</p>' if scope else ''}{items}")
    parts.append(_fidelity_html(ctx))
    for section in (_best_overall_md(ctx), _type_named_md(ctx), _placement_md(ctx)):  # as REPORT.md has them
        if section:
            parts.append(_md_html(section))
    skipped = ctx.meta.get("unavailable") or []
    if skipped:
        parts.append("<h2>Methods not run</h2><ul>" + "".join(f"<li>{_e(display_name(r['name']))} (<code>{_e(r['name'])}</code>): <code>{_e(r['reason'])}</code></li>" for r in skipped) + "</ul>")
    parts.append(_md_html(_files_md(ctx, "REPORT.md", "this report in Markdown")))
    parts.append(f"<h2>Cases</h2><p class=\"muted\">{len({r['case'] for r in ctx.records})} cases; open one to see its signals, each method's top 5 and the explanation.</p>")
    parts.append(_cases_html(ctx))
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"
