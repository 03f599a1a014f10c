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
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from llmrca.config import ConfigError
from llmrca.dataset.io import Dataset, write_json
from llmrca.errors import LlmrcaError, MissingDependency
from llmrca.evaluate.engines import ProcessEngine, RayEngine
from llmrca.evaluate.results import STATUSES, ResultStore
from llmrca.evaluate.task import Task, config_hash
from llmrca.model import METRIC_SETS


class EvaluationError(LlmrcaError, ValueError):
    """Bad input to an evaluation (unknown method, bad option, empty dataset)."""

@dataclass
class EvaluationResult:
    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    status: pd.DataFrame  # per method: ok, failed, timeout, unavailable, invalid_case, fallbacks
    counts: dict[str, int] = field(default_factory=dict)
    new_runs: int = 0
    skipped_runs: int = 0

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
    from llmrca.methods.registry import names

    items = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
    if not items:
        raise EvaluationError("no methods given; pass e.g. --methods nsigma,baro or --methods all")
    if items == ["all"]:
        return names()
    unknown = [m for m in items if m not in names()]
    if unknown:
        raise EvaluationError(f"unknown method(s) {unknown}; known: {', '.join(names())} (see `llmrca methods`)")
    return list(dict.fromkeys(items))

def full_config(method: str, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The method's complete config dict (defaults + overrides); checked here, before any run."""
    from llmrca.methods.registry import method_class

    try:
        cls = method_class(method)
    except MissingDependency:
        return dict(overrides or {})  # reported as unavailable per run
    try:
        return cls.config_cls.from_dict(overrides or {}).to_dict()
    except ConfigError as e:
        raise EvaluationError(f"method {method!r}: {e}") from e

def _versions() -> dict[str, str]:
    import numpy
    import pandas

    import llmrca

    return {"llmrca": llmrca.__version__, "numpy": numpy.__version__, "pandas": pandas.__version__, "python": platform.python_version()}

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
    method_configs: dict[str, dict] | None = None,
    progress: bool = True,
    sli: str | None = None,
) -> EvaluationResult:
    """Evaluate ``methods`` on every case of ``dataset``; write results and reports to ``out``.

    ``sli`` names the service-level-indicator column for methods that walk from one
    (default: the entry component's latency, chosen by meaning; see methods.common.sli).
    """
    from llmrca.methods.registry import REGISTRY
    from llmrca.report import write_report

    if jobs < 1:
        raise EvaluationError(f"jobs must be >= 1, got {jobs}")
    if timeout_s <= 0:
        raise EvaluationError(f"timeout must be > 0 seconds, got {timeout_s}")
    if metric_set is not None and metric_set not in METRIC_SETS:
        raise EvaluationError(f"unknown metric set {metric_set!r}; use one of {', '.join(METRIC_SETS)}")
    if engine not in ("process", "ray"):
        raise EvaluationError(f"unknown engine {engine!r}; use 'process' or 'ray'")
    if engine == "ray":
        from llmrca.errors import require

        require("ray", "ray", "the ray engine")
    names = resolve_methods(methods)
    configs = method_configs or {}
    unknown_cfg = sorted(set(configs) - set(names))
    if unknown_cfg:
        raise EvaluationError(f"method_configs for methods not being evaluated: {unknown_cfg}")
    try:
        ds = Dataset(dataset)
    except FileNotFoundError as e:
        raise EvaluationError(f"{e}; pass a folder of cases (see docs/dataset.md)") from e
    dirs = ds.case_dirs()
    if not dirs:
        raise EvaluationError(f"no cases under {dataset}: expected <component>_<fault>/<rep>/data.csv folders")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {m: full_config(m, configs.get(m)) for m in names}
    hashes = {m: config_hash(m, cfg[m], metric_set, sli) for m in names}
    builtin = {e.name for e in _builtin_entries()}
    extra = tuple((e.name, e.target, e.family) for e in REGISTRY.values() if e.name not in builtin)
    tasks = [
        Task(m, ds.case_id(d), str(d.resolve()), cfg[m], hashes[m], metric_set, extra, sli)
        for d in dirs
        for m in names
    ]
    started = datetime.now(UTC).isoformat(timespec="seconds")
    session = {
        "started": started,
        "ended": None,
        "versions": _versions(),
        "methods": {m: {"config": cfg[m], "config_hash": hashes[m], "family": REGISTRY[m].family} for m in names},
        "engine": engine,
        "jobs": jobs,
        "timeout_s": timeout_s,
        "metric_set": metric_set,
        "random_on_failure": random_on_failure,
        "resume": resume,
        "dataset": {"path": str(Path(dataset).resolve()), "n_cases": len(dirs), "manifest": _manifest_info(ds.manifest)},
        "command": sys.argv,
    }
    run_json = out / "run.json"
    history = _read_run_json(run_json) if resume else {}
    sessions = [*history.get("sessions", []), session]
    write_json(run_json, {**session, "sessions": sessions})

    store = ResultStore(out / "results.jsonl", resume=resume)
    todo = [t for t in tasks if (t.method, t.case_id, t.config_hash) not in store.done]
    skipped = len(tasks) - len(todo)
    eng = ProcessEngine(jobs, timeout_s) if engine == "process" else RayEngine(jobs, timeout_s)
    try:
        with _progress(progress, len(todo), f"evaluating {len(names)} method(s) × {len(dirs)} case(s)") as advance:

            def on_result(rec: dict[str, Any]) -> None:
                rec["finished_at"] = time.time()
                store.append(rec)
                advance(rec)

            eng.run(todo, on_result)
    finally:
        store.close()
        session["ended"] = datetime.now(UTC).isoformat(timespec="seconds")
        sessions[-1] = session
        write_json(run_json, {**session, "sessions": sessions})
    rep = write_report(out)
    return EvaluationResult(
        out=out,
        results=rep.results,
        summary=rep.summary,
        status=rep.status,
        counts={s: int(rep.status[s].sum()) if not rep.status.empty else 0 for s in STATUSES},
        new_runs=len(todo),
        skipped_runs=skipped,
    )

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
    """A rich progress bar (stderr) driven from the main thread (no refresh thread: workers fork)."""
    if not enabled or total == 0:
        yield lambda rec: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    counts = dict.fromkeys(STATUSES, 0)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
        console=Console(stderr=True),
        auto_refresh=False,
    )
    tid = bar.add_task(label, total=total, status="")
    last = [0.0]

    def advance(rec: dict[str, Any]) -> None:
        counts[rec["status"]] = counts.get(rec["status"], 0) + 1
        bar.update(tid, advance=1, status=" ".join(f"{k}={v}" for k, v in counts.items() if v))
        now = time.monotonic()
        if now - last[0] > 0.2:
            bar.refresh()
            last[0] = now

    with bar:
        yield advance
        bar.refresh()

OnAdvance = Callable[[dict[str, Any]], None]
