"""Run methods × cases, write results as they finish, resume, summarise.

``run_evaluation`` is the one entry point (the CLI's ``llmrca evaluate``
calls it).  Each (method, case) run ends as ``ok``, ``failed`` (with the
error), ``timeout`` or ``unavailable`` (with the reason); only ``ok`` runs
are scored on their ranking, except that ``random_on_failure=True`` scores
failed / timed-out runs on a seeded random ranking, as the paper did, and
counts those fallbacks.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.config import ConfigError
from llmrca.dataset.io import Dataset, write_json
from llmrca.errors import LlmrcaError, MissingDependency
from llmrca.evaluate.engines import ProcessEngine, RayEngine
from llmrca.evaluate.fingerprint import case_fingerprint, dataset_fingerprint
from llmrca.evaluate.lock import FolderLock
from llmrca.evaluate.results import RETRYABLE, STATUSES, ResultStore, ResultsWriteError, run_key, status_class
from llmrca.evaluate.task import Task, config_hash, reads_sli, sli_ignored
from llmrca.model import METRIC_SETS


class EvaluationError(LlmrcaError, ValueError):
    """Bad input to an evaluation (unknown method, bad option, empty dataset)."""


class DatasetMismatch(EvaluationError):
    """The output folder ``out`` holds results of another dataset (``other`` describes it)."""

    def __init__(self, message: str, *, out: Path, other: str, current: Path) -> None:
        super().__init__(message)
        self.out, self.other, self.current = out, other, current

@dataclass
class EvaluationResult:
    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    status: pd.DataFrame  # per method: ok, failed, timeout, unavailable, invalid_case, fallbacks
    counts: dict[str, int] = field(default_factory=dict)
    new_runs: int = 0  # runs made now (including retried ones)
    skipped_runs: int = 0  # runs reused from results.jsonl
    retried_runs: int = 0  # stored runs made again because of --retry
    notes: list[str] = field(default_factory=list)  # what resume repaired or took over
    fingerprint_s: float = 0.0  # time spent fingerprinting the dataset's cases

    @property
    def n_ok(self) -> int:
        return self.counts.get("ok", 0)

    @property
    def n_failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def n_timeout(self) -> int:
        return self.counts.get("timeout", 0)

    @property
    def n_unavailable(self) -> int:
        return self.counts.get("unavailable", 0)

def resolve_methods(methods: list[str] | str) -> list[str]:
    from llmrca.methods.registry import PLUGIN_HINT, names

    items = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    if not items:
        raise EvaluationError("no methods given; pass e.g. --methods nsigma,baro or --methods all")
    if items == ["all"]:
        return names()
    unknown = [m for m in items if m not in names()]
    if unknown:
        raise EvaluationError(f"unknown method(s) {unknown}; known: {', '.join(names())} (see `llmrca methods`; {PLUGIN_HINT})")
    return list(dict.fromkeys(items))

def check_run_options(*, jobs: int = 2, timeout_s: float = 300.0, metric_set: str | None = None, engine: str = "process") -> None:
    """The evaluator's options, checked (by :func:`run_evaluation`, and by ``reproduce`` before its campaign).

    Raises :class:`EvaluationError` naming the option: ``--jobs`` below 1, a ``--timeout`` that is not a finite
    number of seconds above 0 (``inf`` / ``nan`` included), an unknown ``--metric-set`` or ``--engine``.
    """
    import math

    if jobs < 1:
        raise EvaluationError(f"--jobs must be >= 1, got {jobs}")
    if not math.isfinite(timeout_s) or timeout_s <= 0:
        raise EvaluationError(f"--timeout must be a finite number of seconds > 0, got {timeout_s}")
    if metric_set is not None and metric_set not in METRIC_SETS:
        raise EvaluationError(f"unknown metric set {metric_set!r} (--metric-set); use one of {', '.join(METRIC_SETS)}")
    if engine not in ("process", "ray"):
        raise EvaluationError(f"unknown engine {engine!r} (--engine); use 'process' or 'ray'")


def full_config(method: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The method's complete config dict (defaults + overrides); checked here, before any run."""
    from llmrca.methods.registry import MethodLoadError, method_class

    try:
        cls = method_class(method)
    except MissingDependency:
        return dict(overrides or {})  # reported as unavailable per run
    except MethodLoadError as e:  # a plug-in row that points at nothing: refused before any run
        raise EvaluationError(str(e)) from e
    try:
        return cls.config_cls.from_dict(overrides or {}).to_dict()
    except ConfigError as e:
        raise EvaluationError(f"method {method!r}: {e}") from e

def _versions() -> dict[str, str]:
    import numpy
    import pandas

    import llmrca

    return {"llmrca": llmrca.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__, "python": platform.python_version()}

def parse_retry(retry: Iterable[str] | str | None) -> frozenset[str]:
    """``"failed,timeout"`` or a list -> the set of statuses to re-run (None: none).

    Raises EvaluationError (one line naming the valid statuses, :data:`RETRYABLE`) on an
    unknown status, and on a string that names none (``""``, ``" , "``: a ``--retry`` given empty).
    """
    if retry is None:
        return frozenset()
    items = [x.strip() for x in (retry.split(",") if isinstance(retry, str) else retry) if x.strip()]
    valid = f"use any of {', '.join(RETRYABLE)}, comma-separated (e.g. --retry failed,timeout)"
    if isinstance(retry, str) and not items:
        raise EvaluationError(f"--retry {retry!r} names no status; {valid}, or leave --retry out to reuse every stored run")
    bad = [x for x in dict.fromkeys(items) if x not in RETRYABLE]
    if bad:
        raise EvaluationError(f"--retry {retry if isinstance(retry, str) else ','.join(items)!r}: unknown status(es) "
                              f"{', '.join(bad)}; {valid}")
    return frozenset(items)


def run_evaluation(
    dataset: str | Path,
    methods: list[str],
    out: str | Path,
    *,
    jobs: int = 2,
    timeout_s: float = 300.0,
    metric_set: str | None = None,
    engine: str = "process",
    random_on_failure: bool = False,
    resume: bool = True,
    fresh: bool = False,
    retry: Iterable[str] | str | None = None,
    method_configs: dict[str, dict] | None = None,
    progress: bool = True,
    sli: str | None = None,
) -> EvaluationResult:
    """Evaluate ``methods`` on every case of ``dataset``; write results and reports to ``out``.

    ``sli`` names the service-level-indicator column for methods that walk from one
    (default: the entry component's latency, chosen by meaning; see methods.common.sli).

    Resume (the default) reuses a stored run only if its method, case id,
    config fingerprint, case-content fingerprint and dataset fingerprint all
    match (:mod:`llmrca.evaluate.fingerprint`); ``retry`` (statuses among
    ``failed, timeout, invalid_case, unavailable``) re-runs stored runs that
    ended so.  ``out`` is locked for the whole evaluation.

    Raises :class:`EvaluationError` on bad input; :class:`DatasetMismatch`
    when ``out`` holds results of another dataset (pass another ``out``, or
    ``fresh=True`` to move them to ``out/previous/<time>/``);
    :class:`~llmrca.evaluate.lock.FolderLocked` when another evaluation
    writes to ``out``; :class:`~llmrca.evaluate.results.ResultsWriteError`
    when ``out`` cannot be written (e.g. a full disk).
    """
    from llmrca.methods.registry import REGISTRY

    check_run_options(jobs=jobs, timeout_s=timeout_s, metric_set=metric_set, engine=engine)
    if engine == "ray":
        from llmrca.errors import require

        require("ray", "ray", "the ray engine")
    retry_set = parse_retry(retry)
    names = resolve_methods(methods)
    configs = method_configs or {}
    unknown_cfg = sorted(set(configs) - set(names))

    not_methods = [m for m in unknown_cfg if m not in REGISTRY]
    if not_methods:
        import difflib

        close = [c for m in not_methods for c in difflib.get_close_matches(m, list(REGISTRY), n=1)]
        raise EvaluationError(f"options (--set) given for {not_methods}, which {'is no method' if len(not_methods) == 1 else 'are no methods'}"
                              + (f" (did you mean {', '.join(map(repr, close))}?)" if close else "")
                              + "; `llmrca methods` lists the method names")
    if unknown_cfg:
        raise EvaluationError(
            f"options (--set) given for {unknown_cfg}, not among the methods being evaluated ({', '.join(names)}); "
            "add them to --methods or drop the --set (method names: llmrca methods)"
        )
    try:
        ds = Dataset(dataset)
    except FileNotFoundError as e:
        raise EvaluationError(f"{e}; pass a folder of cases (see docs/dataset.md)") from e
    except NotADirectoryError as e:
        raise EvaluationError(str(e)) from e
    dirs = ds.case_dirs()
    if not dirs:
        from llmrca.dataset.validate import nothing_readable

        raise EvaluationError(nothing_readable(Path(dataset)))
    out = Path(out)
    from llmrca.dataset.layouts import file_in_the_way

    if (blocker := file_in_the_way(out)) is not None:
        raise EvaluationError(f"--out {out}: {blocker} is a file; the output must be a folder (a new one, or an earlier evaluation's to resume)")
    if sli is not None:
        _check_sli(ds, dirs[0], sli, names, metric_set)
    cfg = {m: full_config(m, configs.get(m)) for m in names}
    # a chosen SLI changes what the methods that read it answer: it is part of their config fingerprint only
    # (a method that ignores it keeps its runs)
    hashes = {m: config_hash(m, {**cfg[m], "sli": sli} if sli and reads_sli(m) else cfg[m], metric_set) for m in names}
    with _writing(out):
        out.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(out)
    notes: list[str] = []
    ignored = sli_ignored(names, sli)
    if ignored is not None:
        notes.append(ignored)
    with _writing(out):
        took_over = lock.acquire()
    if took_over:
        notes.append(took_over)
    try:
        return _run_locked(
            ds, dirs, names, cfg, hashes, out, notes,
            jobs=jobs, timeout_s=timeout_s, metric_set=metric_set, engine=engine, random_on_failure=random_on_failure,
            resume=resume, fresh=fresh, retry_set=retry_set, progress=progress, registry=REGISTRY, sli=sli,
        )
    finally:
        lock.release()


def _run_locked(
    ds: Dataset, dirs: list[Path], names: list[str], cfg: dict[str, dict[str, Any]], hashes: dict[str, str], out: Path, notes: list[str],
    *, jobs: int, timeout_s: float, metric_set: str | None, engine: str, random_on_failure: bool, resume: bool, fresh: bool,
    retry_set: frozenset[str], progress: bool, registry: dict[str, Any], sli: str | None = None,
) -> EvaluationResult:
    from llmrca.evaluate.outputs import write_report
    from llmrca.methods.registry import method_source

    t_fp = time.perf_counter()
    dataset_fp = dataset_fingerprint(ds.root, ds.manifest)
    case_fps = {}
    for d in dirs:
        try:
            case_fps[d] = case_fingerprint(d)
        except OSError as e:
            raise EvaluationError(f"cannot read case folder {d}: {e.strerror or e}") from e
    fingerprint_s = time.perf_counter() - t_fp
    if fresh:
        with _writing(out):
            moved = move_aside(out)
        if moved:
            notes.append(f"--fresh: moved {len(moved)} earlier output file(s) to {moved[0].parent}")
    with _writing(out):
        store = ResultStore(out / "results.jsonl", resume=resume)
    try:
        notes.extend(store.notes)
        run_json = out / "run.json"
        history = _read_run_json(run_json) if resume else {}
        moved_from = _adopt_moved(store, dataset_fp, ds.manifest, {ds.case_id(d): case_fps[d] for d in dirs})
        if moved_from:
            notes.append(f"the stored runs were made when this dataset was at {', '.join(moved_from)}; it was moved or copied to "
                         f"{ds.root.resolve()} (same manifest), so they are reused where the case contents are unchanged")
        other = _other_dataset(store.records, dataset_fp, ds.root, {ds.case_id(d): case_fps[d] for d in dirs})
        if other:
            raise DatasetMismatch(
                f"{out} holds results of another dataset ({other}); this evaluation is of {ds.root}. "
                f"Evaluate into another folder (--out OTHER), or pass --fresh to move the old results to {out / 'previous'}/<time>/ and start over",
                out=out, other=other, current=ds.root,
            )
        builtin = {e.name for e in _builtin_entries()}
        extra = tuple((e.name, e.target, e.family) for e in registry.values() if e.name not in builtin)
        tasks = [
            Task(m, ds.case_id(d), str(d.resolve()), cfg[m], hashes[m], metric_set, extra, case_fps[d], dataset_fp, sli)
            for d in dirs
            for m in names
        ]
        # readers (reports) take the last record of each (method, case, config): note which one that is
        last_of = {(r["method"], r["case"], r["config_hash"]): r for r in store.records}
        todo: list[Task] = []
        reinstate: list[dict[str, Any]] = []
        retried = 0
        retried_keys: set[tuple[Any, ...]] = set()
        kept_bad: dict[str, int] = {}
        for t in tasks:
            key = (t.method, t.case_id, t.config_hash, t.case_fp, t.dataset_fp)
            prev = store.latest.get(key)
            if prev is not None and status_class(prev) in ("failed", "timeout") and status_class(prev) not in retry_set:
                kept_bad[status_class(prev)] = kept_bad.get(status_class(prev), 0) + 1
            if prev is None:
                todo.append(t)
            elif status_class(prev) in retry_set:
                store.forget(key)
                todo.append(t)
                retried += 1
                retried_keys.add(key)
            elif last_of.get((t.method, t.case_id, t.config_hash)) is not prev:
                # a case edited and then restored: its matching run is stored, but a later line is of the edit
                reinstate.append(prev)
        skipped = len(tasks) - len(todo)
        if kept_bad:
            notes.append(
                "reused " + ", ".join(f"{n} stored {k} run(s)" for k, n in kept_bad.items())
                + f"; pass --retry {','.join(sorted(kept_bad))} to run them again (e.g. with a longer --timeout)"
            )
        stale = _count_stale(store.records, {(t.method, t.case_id, t.config_hash, t.case_fp, t.dataset_fp) for t in tasks})
        started = datetime.now(UTC).isoformat(timespec="seconds")
        session = {
            "started": started,
            "ended": None,
            "versions": _versions(),
            # where each method's code comes from (a plug-in's module file and its digest), and its paper name
            "methods": {m: {"config": cfg[m], "config_hash": hashes[m], "family": registry[m].family,
                            "display": registry[m].display_name, "code": method_source(m)} for m in names},
            "engine": engine,
            "jobs": jobs,
            "timeout_s": timeout_s,
            "metric_set": metric_set,
            "random_on_failure": random_on_failure,
            "resume": resume,
            "fresh": fresh,
            "retry": sorted(retry_set),
            "dataset": {
                "path": str(ds.root.resolve()),
                "n_cases": len(dirs),
                "fingerprint": dataset_fp,
                "manifest": _manifest_info(ds.manifest),
            },
            # the cases evaluated now, with their content fingerprints: reports score these and no others
            "cases": {ds.case_id(d): case_fps[d] for d in dirs},
            # new / retried: planned here, replaced by the runs actually finished when the session ends (Ctrl-C: fewer)
            "runs": {"total": len(tasks), "planned": len(todo), "new": len(todo) - retried, "retried": retried, "reused": skipped,
                     "reinstated": len(reinstate), "stale_records": stale},
            "interrupted": False,
            "fingerprint_s": round(fingerprint_s, 4),
            "notes": notes,
            "command": sys.argv,
        }
        sessions = [*history.get("sessions", []), session]
        with _writing(out):
            write_json(run_json, {**session, "sessions": sessions})
        for rec in reinstate:  # append a copy so the matching run is again the last line of its pair
            store.forget(run_key(rec))
            store.append({**rec, "reinstated_at": time.time()})
        if reinstate:
            notes.append(f"{len(reinstate)} stored run(s) match their case again after a change was undone; re-appended as the current ones")
        eng = ProcessEngine(jobs, timeout_s) if engine == "process" else RayEngine(jobs, timeout_s)
        finished = {"new": 0, "retried": 0}
        try:
            with _progress(progress, len(todo), f"evaluating {len(names)} method(s) × {len(dirs)} case(s)") as advance:

                def on_result(rec: dict[str, Any]) -> None:
                    rec["finished_at"] = time.time()
                    store.append(rec)
                    finished["retried" if run_key(rec) in retried_keys else "new"] += 1
                    advance(rec)

                eng.run(todo, on_result)
        except KeyboardInterrupt:  # Ctrl-C: the session says so; the CLI says what is kept (exit 130)
            session["interrupted"] = True
            raise
        finally:
            session["runs"].update(finished)  # the runs really finished (and appended to results.jsonl)
            session["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
            sessions[-1] = session
            with contextlib.suppress(OSError):  # a full disk is reported by the append that hit it
                write_json(run_json, {**session, "sessions": sessions})
    finally:
        store.close()
    with _writing(out):
        rep = write_report(out)
    notes.extend(rep.notes)  # methods reported from earlier evaluations into this folder, or left out
    from llmrca.dataset.validate import empty_folder_warning, layout_warning, symlink_warning

    # compared over the cases that could be read (an invalid case is reported as such, not as "another layout")
    invalid = set(rep.results.loc[rep.results["error_kind"] == "invalid_case", "case"]) if "error_kind" in rep.results else set()
    mixed = layout_warning(ds, [d for d in dirs if ds.case_id(d) not in invalid])
    if mixed:
        notes.append(mixed)
    if ds.manifest_problems:  # the cases are found by their files; the campaign's settings are then unknown to the report
        notes.append(f"dataset.json is ignored ({ds.manifest_problems[0]}): the report names no backend, profile or seed; "
                     f"`llmrca dataset validate {ds.root}` lists why")
    if ds.manifest.get("complete") is False:  # scored as it is; the rest is added by a later evaluation into this --out
        notes.append(f"the dataset's campaign is not finished (dataset.json: complete false, {len(dirs)} case(s) so far): finish it with "
                     f"`llmrca campaign --resume --out {ds.root}` (with its options), then evaluate again into this --out to add the rest")
    if (twice := symlink_warning(ds, dirs)) is not None:
        notes.append(twice)
    if (empty := empty_folder_warning(ds)) is not None:
        notes.append(empty)
    if "case_warnings" in rep.results:
        warned = rep.results.dropna(subset=["case_warnings"]).drop_duplicates("case")
        warned = warned[[bool(w) for w in warned["case_warnings"]]]
        if len(warned):
            first = warned.iloc[0]
            notes.append(f"{len(warned)} case(s) were read with warnings, e.g. {first['case']}: {first['case_warnings'][0]}; "
                         f"`llmrca dataset validate {ds.root}` lists them")
    if {"status", "method", "error"} <= set(rep.results.columns):
        # a method none of whose runs succeeded: say why here (its table row is all zeros), not only in results.jsonl
        for m, grp in rep.results.groupby("method", sort=False):
            bad = grp[grp["status"].isin(("failed", "timeout", "unavailable")) & (grp.get("error_kind") != "invalid_case")]
            if len(grp) and len(bad) == len(grp):
                first = bad.iloc[0]
                counts = ", ".join(f"{n} {st}" for st, n in bad["status"].value_counts().items())
                notes.append(f"no run of {m} succeeded ({counts}), e.g. on {first['case']}: {first['error']}")
    from llmrca.dataset.validate import archive_warning

    if (packed := archive_warning(ds.root)) is not None:
        notes.append(packed)
    return EvaluationResult(
        out=out,
        results=rep.results,
        summary=rep.summary,
        status=rep.status,
        counts={s: int(rep.status[s].sum()) if not rep.status.empty else 0 for s in STATUSES},
        new_runs=len(todo),
        skipped_runs=skipped,
        retried_runs=retried,
        notes=notes,
        fingerprint_s=fingerprint_s,
    )


#: the files an evaluation writes into ``out``; ``--fresh`` moves them aside
OUTPUT_FILES = (
    "results.jsonl", "run.json", "run.json.tmp", "summary.csv", "status.csv", "misattribution.csv", "misattribution.png",
    "table1.md", "table1.csv", "table1.tex", "false_alarms.csv",
)


def move_aside(out: Path) -> list[Path]:
    """Move the evaluation outputs in ``out`` to ``out/previous/<UTC time>/``; returns their new paths."""
    present = [out / n for n in OUTPUT_FILES if (out / n).exists()]
    if not present:
        return []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    dest = out / "previous" / stamp
    i = 1
    while dest.exists():
        i += 1
        dest = out / "previous" / f"{stamp}-{i}"
    dest.mkdir(parents=True)
    moved = []
    for p in present:
        target = dest / p.name
        os.replace(p, target)
        moved.append(target)
    return moved


def _check_sli(ds: Dataset, first: Path, sli: str, methods: list[str], metric_set: str | None = None) -> None:
    """Refuse a ``--sli`` column that the metric set a method reads lacks in the dataset's first case.

    Each method that reads the SLI (:func:`~llmrca.evaluate.task.reads_sli`) reads its preferred set
    (``--metric-set`` when given; see :func:`~llmrca.methods.common.metric_set.choose_metric_set`); a column only
    the other set has would make every run of that method fail, so it is refused up front, naming the set's
    latency columns.  With no such method, any column of the case will do.
    """
    from llmrca.errors import MethodUnavailable
    from llmrca.evaluate.task import reads_sli, sli_problem
    from llmrca.methods.common.metric_set import choose_metric_set
    from llmrca.methods.registry import entry
    from llmrca.model import CaseValidationError

    try:
        case = ds.load(first)
    except CaseValidationError:
        return  # the case is invalid: the evaluation records it; nothing to check against
    sets: dict[str, list[str]] = {}
    for m in filter(reads_sli, methods):
        try:
            sets.setdefault(choose_metric_set(case.metric_sets, entry(m).tags.metric_set, metric_set), []).append(m)
        except MethodUnavailable:  # a forced set the case lacks: the evaluation reports it per run
            continue
    # (what is checked, its columns, how the error names it)
    checks = [(name, [str(c) for c in case.metric_sets[name].columns],
               f"the {name} metric set of {ds.case_id(first)}, which {', '.join(users[:4])}{' …' if len(users) > 4 else ''} read")
              for name, users in sets.items()] or [
        ("any", sorted({str(c) for df in case.metric_sets.values() for c in df.columns}), ds.case_id(first))]
    for name, cols, where in checks:
        problem = sli_problem(sli, cols, where, first, name if name in case.metric_sets else None)
        if problem is not None:
            raise EvaluationError(problem)


def _other_dataset(records: list[dict[str, Any]], dataset_fp: str, root: Path, cases: dict[str, str] | None = None) -> str | None:
    """A description of the other dataset whose results are stored here, or None.

    Records with a ``dataset_fp`` are compared by it; older records without
    one by the folder of their ``case_dir`` (the absolute case folder).  A
    dataset without ``dataset.json`` is identified by its folder only, so a
    folder whose cases were all replaced (none of the stored runs' case
    contents, ``cases`` = case id -> content fingerprint, is there any more)
    holds another dataset too.
    """
    root_s = str(root.resolve())
    for r in records:
        fp = r.get("dataset_fp")
        if fp is not None:
            if fp != dataset_fp:
                return f"{_record_root(r)}, fingerprint {fp}"
        elif r.get("case_dir") and not _under(r["case_dir"], root_s):
            return f"{_record_root(r)}, results written before fingerprints"
    if cases is not None:
        stored = {(r.get("case"), r.get("case_fp")) for r in records if r.get("case_fp")}
        if stored and not any(cases.get(c) == fp for c, fp in stored):
            return f"{root_s} before its cases were replaced: none of the {len({c for c, _ in stored})} stored cases matches a case there now"
    return None


def _adopt_moved(store: ResultStore, dataset_fp: str, manifest: dict[str, Any], cases: dict[str, str]) -> list[str]:
    """Take the stored records of this dataset made when it was in another folder as records of it; returns those folders.

    A record's ``dataset_fp`` covers the dataset's folder (:func:`~llmrca.evaluate.fingerprint.dataset_identity`), so a
    results folder copied or moved with its dataset (``cp -r OUT OUT2``: ``OUT2/eval`` and ``OUT2/dataset``) would
    hold "another dataset".  A record whose own folder (its ``case_dir`` without the case id) and the current manifest
    give its ``dataset_fp``, and one of whose records has the content fingerprint of a case here now (``cases``:
    case id -> fingerprint; a dataset without a manifest is known by its contents only), is of this dataset: its
    records' ``dataset_fp`` is set to ``dataset_fp`` in memory (the file is not rewritten; a later move is recognised
    the same way).  Each run is still reused only where its case's content fingerprint matches.
    """
    from llmrca.evaluate.results import run_key

    by_root: dict[str, list[dict[str, Any]]] = {}
    for r in store.records:
        fp = r.get("dataset_fp")
        root = _record_root(r)
        if fp is not None and fp != dataset_fp and root not in (r.get("case_dir"), "unknown folder"):  # else: folder unknown
            by_root.setdefault(root, []).append(r)
    own = {root: dataset_fingerprint(root, manifest) for root in by_root}  # what this dataset's fingerprint was there
    roots = [root for root, recs in by_root.items()
             if any(r["dataset_fp"] == own[root] and cases.get(r.get("case")) == r.get("case_fp") for r in recs)]
    for root in roots:
        for r in by_root[root]:
            if r["dataset_fp"] == own[root]:
                r["dataset_fp"] = dataset_fp
    if roots:
        store.latest = {run_key(r): r for r in store.records}
    return roots


def _record_root(r: dict[str, Any]) -> str:
    cd, case = str(r.get("case_dir") or ""), str(r.get("case") or "")
    if cd and case and cd.endswith(case):
        return cd[: -len(case)].rstrip("/") or cd
    return cd or "unknown folder"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _count_stale(records: list[dict[str, Any]], keys: set[Any]) -> int:
    """Stored runs of this evaluation's (method, case) pairs whose fingerprints no longer match (they are re-run)."""
    pairs = {(k[0], k[1]) for k in keys}
    return sum(1 for r in records if (r["method"], r["case"]) in pairs and run_key(r) not in keys)


@contextlib.contextmanager
def _writing(out: Path):
    """Turn an OSError while writing into ``out`` (full disk, read-only, permissions) into a clear error."""
    try:
        yield
    except ResultsWriteError:
        raise
    except OSError as e:
        where = e.filename or out
        resumable = (Path(out) / "results.jsonl").is_file()  # nothing to keep when not even the folder could be made
        raise ResultsWriteError(
            f"cannot write {where}: {e.strerror or e}. Free some space or fix the permissions (or choose another --out)"
            + (", then rerun the same command: finished runs in results.jsonl are kept and resumed" if resumable else "")
        ) from e


def _builtin_entries() -> list[Any]:
    from llmrca.methods import registry

    return list(registry._ENTRIES)

def _manifest_info(manifest: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in manifest.items() if k != "cases"}

def _read_run_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}

@contextlib.contextmanager
def _progress(enabled: bool, total: int, label: str):
    """The evaluation's bar (stderr), drawn from the main thread only: workers fork while it runs."""
    from llmrca.progress import progress_bar

    counts = dict.fromkeys(STATUSES, 0)
    with progress_bar(label, total, enabled=enabled, auto_refresh=False, transient=False) as bar:

        def advance(rec: dict[str, Any]) -> None:
            key = "invalid" if rec.get("error_kind") == "invalid_case" else rec["status"]  # as the summary counts them
            counts[key] = counts.get(key, 0) + 1
            bar.update(advance=1, status=" ".join(f"{k}={v}" for k, v in counts.items() if v))

        yield advance


OnAdvance = Callable[[dict[str, Any]], None]
