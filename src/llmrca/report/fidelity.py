"""Agreement with the paper: Spearman's ρ between our Table 1 and the paper's.

The paper's Table 1 ships with llmrca as data (``report/data/paper_table1.json``,
published values of *Beyond Microservices: RCA for LLM inference deployments*).
For an evaluation we compare, per fault type and over all (method, fault)
cells together, the ranking of methods by AC@1 and by Avg@5 with the paper's,
as Spearman's rank correlation (``scipy.stats.spearmanr``).  The four
random-walk rows (PC-RW, FCI-RW, Granger-RW, LiNGAM-RW) are left out: in the
paper they are (almost) identical rows that do not depend on the data, so they
would only add ties.

With per-case results (``results.jsonl``) a 95 % interval comes from a
bootstrap over cases: the cases of each fault type are resampled with
replacement (``n_boot`` times, seeded), every (method, fault) score is
recomputed and ρ with it; the interval is the 2.5th–97.5th percentile.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FAULTS: tuple[str, ...] = ("cpu", "memory", "network", "gpu")
METRICS: tuple[str, ...] = ("ac@1", "avg@5")


#: what a NaN ρ means (said by ``llmrca fidelity`` and REPORT under the ρ lines)
NAN_NOTE = "(nan: fewer than 3 cells in that scope, or our cells or the paper's tie throughout it: no rank order to correlate)"


@lru_cache(maxsize=1)
def paper_table() -> dict[str, Any]:
    """The paper's Table 1: ``{"table": {method: {fault: {"ac@1", "ac@3", "avg@5"}}}, "data_blind": [...], ...}``."""
    return json.loads((Path(__file__).parent / "data" / "paper_table1.json").read_text())


def paper_frame() -> pd.DataFrame:
    """The paper's Table 1 as rows ``method, fault, ac@1, ac@3, avg@5`` (registry method names)."""
    rows = [{"method": m, "fault": f, **v} for m, by in paper_table()["table"].items() for f, v in by.items()]
    return pd.DataFrame(rows)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ: Pearson's r of the average ranks (ties share a rank), as ``scipy.stats.spearmanr`` computes it."""
    from scipy.stats import rankdata

    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(a[ok]), rankdata(b[ok]))[0, 1])


#: Fewer cases per fault type than this and the bootstrap interval is flagged as rough: resampling 3 cases cannot
#: show what another campaign seed would give (two quick-profile seeds, 3 cases per fault, fell outside each
#: other's intervals).
FEW_CASES = 10


@dataclass
class Fidelity:
    """ρ per fault type (and ``all``) and metric, with its bootstrap interval when per-case data was given.

    ``table``: rows ``scope, metric, rho, lo, hi, n`` (``n`` = number of (method, fault) cells compared);
    ``cells``: our and the paper's value per (method, fault, metric) with the difference;
    ``methods``: the methods compared; ``left_out``: the data-blind rows and methods the paper has that we did not run.
    """

    table: pd.DataFrame
    cells: pd.DataFrame
    methods: list[str]
    left_out: dict[str, list[str]] = field(default_factory=dict)
    n_boot: int = 0
    non_default: dict[str, dict[str, Any]] = field(default_factory=dict)  # compared method -> option -> (used, default)
    reference_modes: dict[str, str] = field(default_factory=dict)  # compared method -> the reference mode its runs used
    random_on_failure: bool = False  # failed runs scored on the random ranking (the paper's rule, --as-paper)
    mode_recorded: bool = True  # False when read from a summary.csv without its runs: the mode is unknown
    blank_cells: list[str] = field(default_factory=list)  # "method fault metric" cells without a number (left out of ρ)
    cases_per_fault: dict[str, int] = field(default_factory=dict)  # fault -> cases the interval resamples
    mostly_random: list[str] = field(default_factory=list)  # compared methods with at least half of their runs scored on the fallback
    incomplete: tuple[int, int] | None = None  # (runs done, methods x cases) of an evaluation that is not finished
    other_faults: list[str] = field(default_factory=list)  # fault types of the input the paper's Table 1 has no column for

    def problem(self) -> str | None:
        """Why no ρ can be given (nothing of the paper's fault types, fewer than 3 of its methods), or None."""
        if not len(self.cells) and self.other_faults:
            return (f"no scored case of the paper's fault types ({', '.join(FAULTS)}); this evaluation has "
                    f"{', '.join(self.other_faults)}, which the paper's Table 1 has no column for")
        if len(self.methods) < 3:
            other = self.left_out.get("not_in_paper") or []
            return (f"only {len(self.methods)} of the paper's methods were evaluated ({', '.join(self.methods) or 'none'}); ρ needs at least 3"
                    + (f" (not the paper's, so not compared: {', '.join(other)})" if other else ""))
        return None

    def warnings(self) -> list[str]:
        """A warning per compared method that ran with non-default options (its numbers are not the paper's method as
        published), and one naming the cells without a number (left out of ρ)."""
        out = [
            f"warning: {m} ran with non-default options ({', '.join(f'{k}={v!r}, default {d!r}' for k, (v, d) in opts.items())}): "
            "its numbers are not the paper's method as published"
            for m, opts in self.non_default.items()
            if m in self.methods
        ]
        if self.blank_cells:
            out.append(f"warning: {len(self.blank_cells)} cell(s) without a number, left out of ρ: {', '.join(self.blank_cells)}")
        if self.incomplete is not None:
            have, expected = self.incomplete
            out.append(f"warning: the evaluation is incomplete: {have} of its {expected} runs (methods × cases) are in "
                       "results.jsonl, so its cells average different cases for different methods; finish it (the same "
                       "evaluate or reproduce command resumes) before reading ρ")
        few = min(self.cases_per_fault.values(), default=FEW_CASES)
        if few < FEW_CASES and self.n_boot > 0:  # without resamples there is no interval to qualify
            counts = set(self.cases_per_fault.values())
            n = f"{few}" if len(counts) == 1 else f"as few as {few} ({', '.join(f'{k} {v}' for k, v in self.cases_per_fault.items())})"
            out.append(f"warning: {n} case(s) per fault type: the intervals resample these few cases and are far narrower than "
                       f"the spread from one campaign seed to another; take them as rough (the paper profile has 30 per fault)")
        return out

    def rho(self, scope: str = "all", metric: str = "ac@1") -> float:
        row = self.table[(self.table["scope"] == scope) & (self.table["metric"] == metric)]
        return float(row["rho"].iloc[0]) if len(row) else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rho": self.table.replace({np.nan: None}).to_dict(orient="records"),
            "methods": self.methods,
            "left_out": self.left_out,
            "bootstrap_samples": self.n_boot,
            # {} when every method ran as published; None when not recorded (a summary.csv without its runs)
            "reference_modes": self.reference_modes if self.mode_recorded else None,
            "random_on_failure": self.random_on_failure if self.mode_recorded else None,
            "source": paper_table()["source"],
            "warnings": self.warnings(),
            "mostly_random": self.mostly_random,
            "other_fault_types": self.other_faults,
            "problem": self.problem(),
        }

    def lines(self) -> list[str]:
        """A few lines a person reads: ρ per scope for AC@1 and Avg@5, with intervals."""
        out = []
        for scope in (*FAULTS, "all"):
            parts, ns = [], {}
            for metric in METRICS:
                r = self.table[(self.table["scope"] == scope) & (self.table["metric"] == metric)]
                if not len(r):
                    continue
                r = r.iloc[0]
                ci = f" [{r['lo']:.2f}, {r['hi']:.2f}]" if np.isfinite(r["lo"]) else ""
                name = "AC@1" if metric == "ac@1" else "Avg@5"
                parts.append(f"{name} ρ = {r['rho']:.2f}{ci}")
                ns[name] = int(r["n"])
            if parts and not any(ns.values()):  # nothing to compare: no scored run of this fault type
                out.append(f"{scope:8s} not computed: no scored case of this fault type")
            elif parts:
                # n counts (method, fault) cells, not cases
                n = (f"{next(iter(ns.values()))} cells" if len(set(ns.values())) == 1
                     else ", ".join(f"{v} cells for {k}" for k, v in ns.items()))
                out.append(f"{scope:8s} " + ", ".join(parts) + f" ({n})")
        return out


def _compared_methods(ours: set[str], methods: list[str] | None, evaluated: set[str] | None = None) -> tuple[list[str], dict[str, list[str]]]:
    """The paper's data-dependent methods compared (``ours``: those with cells of the paper's fault types), and what
    is left out: the data-blind rows run, and the paper's methods not run at all (``evaluated``: every method of the
    input, on any fault type; default ``ours``)."""
    paper = paper_table()
    blind = set(paper["data_blind"])
    candidates = [m for m in paper["table"] if m not in blind]
    if methods is not None:
        candidates = [m for m in candidates if m in set(methods)]
    chosen = [m for m in candidates if m in ours]
    left = {"data_blind": sorted(blind & ours), "not_run": sorted(m for m in candidates if m not in (ours | (evaluated or set())))}
    # methods run that the paper's Table 1 has no row for (this project's llm-rca aside): a plug-in is not compared
    left["not_in_paper"] = sorted(m for m in ((evaluated or set()) | ours) if m not in paper["table"] and m != "llm-rca")
    return chosen, left


def _table(values: dict[tuple[str, str], dict[str, float]], methods: list[str]) -> dict[tuple[str, str], tuple[float, int]]:
    """ρ per (scope, metric) from ``values[(method, fault)] = {metric: value}``."""
    paper = paper_table()["table"]
    out = {}
    for metric in METRICS:
        pooled_a, pooled_b = [], []
        for f in FAULTS:
            # rounded as summary.csv is: cells that tie (0.8 and 0.8000000000000002) must rank as ties
            a = np.round(np.array([values.get((m, f), {}).get(metric, np.nan) for m in methods], dtype=float), 4)
            b = np.array([paper[m][f][metric] for m in methods], dtype=float)
            out[(f, metric)] = (_spearman(a, b), int(np.isfinite(a).sum()))
            pooled_a.append(a)
            pooled_b.append(b)
        a, b = np.concatenate(pooled_a), np.concatenate(pooled_b)
        out[("all", metric)] = (_spearman(a, b), int(np.isfinite(a).sum()))
    return out


def fidelity_from_summary(summary: pd.DataFrame, *, methods: list[str] | None = None) -> Fidelity:
    """ρ from a ``summary.csv`` frame (columns by name: ``method``, ``fault``, ``ac@1``, ``avg@5``; others are
    ignored); no interval.  Raises ValueError naming the missing columns, or a cell that is not a number."""
    lower = {c: str(c).strip().lower() for c in summary.columns}  # AC@1 / Avg@5 as a spreadsheet writes them
    if len(set(lower.values())) == len(lower):
        summary = summary.rename(columns=lower)
    missing = [c for c in ("method", "fault", "ac@1", "avg@5") if c not in summary.columns]
    if missing:
        raise ValueError(
            f"not an evaluation summary: column(s) {', '.join(missing)} missing (has: {', '.join(map(str, summary.columns)) or 'none'}); "
            "pass the summary.csv that evaluate/reproduce wrote, or its folder"
        )
    s = summary[summary["fault"].isin(FAULTS)]
    try:
        values = {
            (str(m), str(f)): {"ac@1": float(a1), "avg@5": float(a5)}
            for m, f, a1, a5 in zip(s["method"], s["fault"], s["ac@1"], s["avg@5"], strict=True)
        }
    except (TypeError, ValueError) as e:
        raise ValueError(f"summary: an ac@1 or avg@5 cell is not a number ({e})") from e
    chosen, left = _compared_methods(set(s["method"]), methods, set(summary["method"].astype(str)))
    t = _table(values, chosen)
    table = pd.DataFrame([{"scope": sc, "metric": me, "rho": rho, "lo": np.nan, "hi": np.nan, "n": n} for (sc, me), (rho, n) in t.items()])
    blank = [f"{m} {f} {me}" for (m, f), v in values.items() if m in chosen for me in METRICS if not np.isfinite(v[me])]
    return Fidelity(_order(table), _cells(values, chosen), chosen, left, mode_recorded=False, blank_cells=blank,
                    other_faults=_other_faults(summary["fault"]))


def _other_faults(faults: pd.Series) -> list[str]:
    """The fault types in ``faults`` the paper has no column for (not ``all`` nor the healthy cases')."""
    from llmrca.model import NO_FAULT

    return sorted({str(f) for f in faults.dropna()} - set(FAULTS) - {"all", NO_FAULT})


def fidelity_from_scored(scored: pd.DataFrame, *, methods: list[str] | None = None, n_boot: int = 1000, seed: int = 0) -> Fidelity:
    """ρ from per-case scores (``method, case, fault, ac@1, avg@5`` per run) with a bootstrap interval over cases."""
    s = scored[scored["fault"].isin(FAULTS)]
    chosen, left = _compared_methods(set(s["method"]), methods, set(scored["method"].astype(str)) if "method" in scored else None)
    values: dict[tuple[str, str], dict[str, float]] = {}
    # cases x methods matrices per fault and metric: resampling rows resamples cases
    mats: dict[tuple[str, str], np.ndarray] = {}
    for f in FAULTS:
        sub = s[(s["fault"] == f) & (s["method"].isin(chosen))]
        for metric in METRICS:
            piv = sub.pivot_table(index="case", columns="method", values=metric, aggfunc="mean").reindex(columns=chosen)
            mats[(f, metric)] = piv.to_numpy(dtype=float)
            for m, v in piv.mean(axis=0, skipna=True).items():
                values.setdefault((m, f), {})[metric] = float(v)
    point = _table(values, chosen)
    rng = np.random.default_rng(seed)
    boots: dict[tuple[str, str], list[float]] = {k: [] for k in point}
    for _ in range(n_boot):
        bv: dict[tuple[str, str], dict[str, float]] = {}
        for f in FAULTS:
            n_cases = mats[(f, METRICS[0])].shape[0]
            if n_cases == 0:
                continue
            idx = rng.integers(0, n_cases, n_cases)
            for metric in METRICS:
                with np.errstate(all="ignore"), warnings.catch_warnings():  # a method without a scored run here: NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    means = np.nanmean(mats[(f, metric)][idx], axis=0)
                for m, v in zip(chosen, means, strict=True):
                    bv.setdefault((m, f), {})[metric] = float(v)
        for k, (rho, _n) in _table(bv, chosen).items():
            boots[k].append(rho)
    rows = []
    for (scope, metric), (rho, n) in point.items():
        b = np.array(boots[(scope, metric)], dtype=float)
        b = b[np.isfinite(b)]
        lo, hi = (float(np.percentile(b, 2.5)), float(np.percentile(b, 97.5))) if b.size >= 20 else (np.nan, np.nan)
        rows.append({"scope": scope, "metric": metric, "rho": rho, "lo": lo, "hi": hi, "n": n})
    counts = {f: mats[(f, METRICS[0])].shape[0] for f in FAULTS if mats[(f, METRICS[0])].shape[0]}
    return Fidelity(_order(pd.DataFrame(rows)), _cells(values, chosen), chosen, left, n_boot, cases_per_fault=counts,
                    other_faults=_other_faults(scored["fault"]) if "fault" in scored else [])


def _order(table: pd.DataFrame) -> pd.DataFrame:
    key = {s: i for i, s in enumerate((*FAULTS, "all"))}
    return table.sort_values(["metric", "scope"], key=lambda c: c.map(key) if c.name == "scope" else c).reset_index(drop=True)


def _cells(values: dict[tuple[str, str], dict[str, float]], methods: list[str]) -> pd.DataFrame:
    paper = paper_table()["table"]
    rows = []
    for m in methods:
        for f in FAULTS:
            for metric in METRICS:
                ours = values.get((m, f), {}).get(metric, np.nan)
                theirs = paper[m][f][metric]
                rows.append({"method": m, "fault": f, "metric": metric, "ours": ours, "paper": theirs, "diff": ours - theirs})
    return pd.DataFrame(rows)


def _non_default(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Options other than the defaults, per method; ``reference_mode`` (``--as-paper``: the reference
    implementation, i.e. the method as published) is not one."""
    from llmrca.evaluate.outputs import non_default_options

    return non_default_options(records, ignore=frozenset({"reference_mode"}))


def _reference_modes(records: list[dict[str, Any]], methods: list[str]) -> dict[str, str]:
    """``{method: reference_mode}`` of the compared methods whose runs used one (``reproduce --as-paper``)."""
    out: dict[str, str] = {}
    for r in records:
        mode = (r.get("config") or {}).get("reference_mode") if isinstance(r.get("config"), dict) else None
        if mode and r.get("method") in methods:
            out.setdefault(str(r["method"]), str(mode))
    return out


def _read_summary(p: Path) -> pd.DataFrame:
    """``p`` read as a CSV; ValueError naming the file when it is empty or not a CSV table."""
    try:
        return pd.read_csv(p)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: not a summary CSV ({str(e).strip()}); pass the summary.csv that evaluate/reproduce wrote, or its folder") from e


def fidelity_of(path: str | Path, *, n_boot: int = 1000, seed: int = 0) -> Fidelity:
    """Fidelity of an evaluation: a ``summary.csv`` file, an evaluation folder or a reproduce folder.

    A folder with ``results.jsonl`` gets bootstrap intervals (the latest
    session's runs, as the report selects them); so does an evaluation's own
    ``summary.csv`` or ``results.jsonl`` (read as their folder).  Another
    CSV, or a ``summary.csv`` without its runs, gives ρ without an interval
    and an unknown mode (``mode_recorded`` False).  Raises FileNotFoundError
    naming what was looked for, ValueError for a file that is not a summary.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist; pass an evaluation's output folder, a reproduce folder or a summary.csv")
    if p.is_file():
        if p.name in ("summary.csv", "results.jsonl") and (p.parent / "results.jsonl").exists():
            return fidelity_of(p.parent, n_boot=n_boot, seed=seed)  # the runs beside it: intervals and the mode
        if p.suffix == ".jsonl":
            raise ValueError(f"{p}: a results file is read with its folder (an evaluation's output); this one has no results.jsonl beside it")
        return fidelity_from_summary(_read_summary(p))
    for d in (p, p / "eval"):
        if (d / "results.jsonl").exists():
            from llmrca.evaluate.results import read_results, scored_frame
            from llmrca.report.build import _latest_session, select_records

            session = _latest_session(d)
            records = select_records(read_results(d / "results.jsonl"), session)
            scored = scored_frame(records, random_on_failure=bool(session.get("random_on_failure", False)))
            fid = fidelity_from_scored(scored, n_boot=n_boot, seed=seed)
            fid.non_default = _non_default(records)
            fid.reference_modes = _reference_modes(records, fid.methods)
            fid.random_on_failure = bool(session.get("random_on_failure", False))
            from llmrca.evaluate.results import mostly_fallback, status_counts

            fell = mostly_fallback(status_counts(records, random_on_failure=fid.random_on_failure))
            fid.mostly_random = [m for m in fid.methods if m in fell]
            from llmrca.evaluate.results import completeness

            fid.incomplete = completeness(records, session)
            return fid
        if (d / "summary.csv").exists():
            return fidelity_from_summary(_read_summary(d / "summary.csv"))
    raise FileNotFoundError(f"no summary.csv or results.jsonl in {p} (nor in {p / 'eval'}); pass an evaluation's output folder or its summary.csv")
