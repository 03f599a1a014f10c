"""One (method, case) run, as executed inside a worker process or Ray task.

Everything a run needs travels in a small picklable :class:`Task` (the case
is loaded from disk by path inside the worker), and everything it produces
is a JSON-able record: never an exception, so one bad run cannot take the
evaluation down.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmrca.errors import MethodUnavailable, MissingDependency
from llmrca.evaluate.fingerprint import FP_VERSION
from llmrca.evaluate.results import INVALID_CASE
from llmrca.model import Case, CaseValidationError, no_basic_set_problem


@dataclass(frozen=True)
class Task:
    method: str
    case_id: str
    case_dir: str
    config: dict[str, Any]
    config_hash: str
    metric_set: str | None = None  # forced set (None: the method's preferred one)
    extra_entries: tuple[tuple[str, str, str], ...] = field(default=())  # run-time registry entries (name, target, family)
    case_fp: str | None = None  # fingerprint of the case folder's files (llmrca.evaluate.fingerprint)
    dataset_fp: str | None = None  # fingerprint of the dataset
    sli: str | None = None  # service-level indicator column for methods that walk from one (None: chosen by meaning)


#: True in an evaluator's worker process (set by :func:`llmrca.evaluate.engines._worker_main`), where SIGINT is
#: ignored, so a KeyboardInterrupt or SystemExit during a run can only come from the method
IN_WORKER = False


def config_hash(method: str, config: dict[str, Any], metric_set: str | None, code_version: str | None = None) -> str:
    """The method's config fingerprint (name, full config, forced metric set, code version); 16 hex digits."""
    from llmrca.evaluate.fingerprint import config_fingerprint, method_code_version

    return config_fingerprint(method, config, metric_set, code_version if code_version is not None else method_code_version(method))


def fallback_seed(method: str, case_id: str) -> int:
    return int(hashlib.sha256(f"{method}\0{case_id}".encode()).hexdigest()[:8], 16)


def random_fallback(components: list[str], method: str, case_id: str) -> list[str]:
    """The seeded random ranking used when "random on failure" is on (the paper's rule): a permutation of the sorted
    names, so the order the case's columns came in does not change it."""
    rng = np.random.default_rng(fallback_seed(method, case_id))
    names = sorted(components)
    return [names[i] for i in rng.permutation(len(names))]


def base_record(task: Task) -> dict[str, Any]:
    return {
        "method": task.method,
        "case": task.case_id,
        "case_dir": task.case_dir,
        "config_hash": task.config_hash,
        "config": task.config,
        "case_fp": task.case_fp,
        "dataset_fp": task.dataset_fp,
        "fp_version": FP_VERSION,
        "status": None,
        "error": None,
        "error_kind": None,
        "fault": None,
        "target": None,
        "root_causes": [],
        "components": [],
        "metric_set": None,
        "ranking": None,
        "scores": None,
        "top_metrics": None,
        "explanation": None,
        "abstained": None,
        "confidence": None,
        "fallback_ranking": None,
        "duration_s": None,
    }


def truth_fields(case: Case) -> dict[str, Any]:
    return {
        "fault": case.fault_type,
        "target": case.fault.target if case.fault else None,
        "root_causes": sorted(case.root_causes),
        "components": list(case.components),
    }


def truth_from_disk(task: Task) -> dict[str, Any]:
    """Ground truth of a case, read by the parent for runs whose worker was killed."""
    from llmrca.dataset.io import read_case

    try:
        return truth_fields(read_case(task.case_dir, validate=False))
    except Exception:  # the case itself is broken; the record says so elsewhere
        return {}


def _ensure_entries(entries: tuple[tuple[str, str, str], ...]) -> None:
    from llmrca.methods import registry

    for name, target, family in entries:
        if name not in registry.REGISTRY:
            registry.register(registry.Entry(name, target, family))


def harness_sli(columns: Iterable[str], target: str | None) -> str | None:
    """The SLI column the paper's artifact harness gave the methods for a case injected into ``target``.

    ``rca-benchmark/main.py`` (exalsius/rca-llm) renames ``*_latency-90`` to ``*_latency`` and passes
    ``sli = "<target>_latency"`` (``"<target>_lat_90"`` where that exists): the injected component's own
    p90 latency, read from the case's label.  Only a method in reference mode whose config class sets
    ``harness_sli`` receives it (MicroCause, whose reference walks from it); no other method sees any
    part of the ground truth.  ``None`` when the case has no such column (the reference then fails).
    """
    if not target:
        return None
    cols = set(columns)
    found = None
    for name in (f"{target}_latency-90", f"{target}_latency", f"{target}_lat_90"):
        if name in cols:
            found = name if found is None or name.endswith("_lat_90") else found
    return found


#: the families whose methods read the SLI (the graph methods' preprocessing, MicroCause, CIRCA)
SLI_FAMILIES = frozenset({"graph", "causal"})

#: why a healthy case gives a reference mode that walks from the harness's SLI nothing to start from
HEALTHY_NO_HARNESS_SLI = ("a healthy case has no injected component, hence no SLI from the paper's harness "
                          "(the injected component's own latency)")


def reads_sli(method: str) -> bool:
    """Whether ``method`` reads the evaluation's SLI (a registered method of :data:`SLI_FAMILIES`)."""
    from llmrca.methods.registry import REGISTRY, entry

    return method in REGISTRY and entry(method).family in SLI_FAMILIES


def sli_ignored(methods: Iterable[str], sli: str | None) -> str | None:
    """The one warning that ``--sli sli`` changes nothing because none of ``methods`` reads an SLI
    (:func:`reads_sli`), naming them; None when ``sli`` is None or at least one of them reads it."""
    names = list(dict.fromkeys(methods))
    if sli is None or not names or any(map(reads_sli, names)):
        return None
    return (f"--sli {sli!r} is ignored: {', '.join(names)} {'reads' if len(names) == 1 else 'read'} no SLI "
            f"(only the {' and '.join(sorted(SLI_FAMILIES))} families do; `llmrca methods` gives each method's family)")


def sli_problem(sli: str, columns: Iterable[str], where: str, case_dir: str | Path | None = None, metric_set: str | None = None) -> str | None:
    """Why ``--sli sli`` cannot be used with ``columns`` (the metric columns of ``where``, e.g. "the basic metric
    set of CASE"), or None when it can.  The message names a few of the latency columns there.

    ``time`` is the time index, not a metric.  A column missing from ``columns`` is "empty" when ``case_dir``'s
    file (the ``metric_set`` one, else any) has it with no finite value (the reader drops such columns,
    :mod:`llmrca.dataset.normalise`), else "not a column".
    """
    from llmrca.telemetry.vocabulary import LATENCY_KINDS, describe_columns

    cols = [str(c) for c in columns]
    lat = [cm.column for cm in describe_columns(cols) if cm.kind in LATENCY_KINDS]
    shown = ", ".join(lat[:8]) + (f", … ({len(lat)} in all)" if len(lat) > 8 else "") if lat else "none"
    if sli == "time":
        return f"--sli 'time' is the time index, not a metric: name a latency column of {where} ({shown})"
    if sli in cols:
        return None
    n = _missing_on_disk(case_dir, metric_set, sli) if case_dir is not None else None
    if n is not None:
        return (f"--sli {sli!r} is empty in {where}: all {n} of its values are missing (the reader drops such a column); "
                f"name another column (its latency columns: {shown})")
    return f"--sli {sli!r} is not a column of {where} (its latency columns: {shown})"


def _missing_on_disk(case_dir: str | Path, metric_set: str | None, column: str) -> int | None:
    """The number of rows of ``column`` in ``case_dir``'s metrics as stored (no repair) when none is a finite
    number, else None (the column is not there, has values, or the case cannot be read)."""
    import pandas as pd

    from llmrca.dataset.io import read_case

    try:
        raw = read_case(case_dir, validate=False, normalise=False)
    except Exception:  # the normalised read worked; a raw one that does not says nothing about the column
        return None
    frames = [raw.metric_sets[metric_set]] if metric_set in raw.metric_sets else list(raw.metric_sets.values())
    for df in frames:
        if column in df.columns:
            v = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
            return None if np.isfinite(v).any() else len(v)
    return None


def wants_harness_sli(config: Any) -> bool:
    """Whether a method with ``config`` runs a reference mode that walks from the paper harness's SLI (MicroCause's)."""
    return bool(getattr(config, "reference_mode", None)) and bool(getattr(type(config), "harness_sli", False))


def execute(task: Task, case_cache: dict[str, Case] | None = None) -> dict[str, Any]:
    """Run one task and return its record (status ok / failed / unavailable)."""
    from llmrca.dataset.io import ground_truth_problem, read_case
    from llmrca.methods.registry import get_method

    rec = base_record(task)
    _ensure_entries(task.extra_entries)
    t0 = time.perf_counter()
    try:
        case = case_cache.get(task.case_dir) if case_cache is not None else None
        if case is None:
            case = read_case(Path(task.case_dir))
            case.name = task.case_id
            if case_cache is not None:
                case_cache.clear()  # keep one case: tasks arrive grouped by case
                case_cache[task.case_dir] = case
    except CaseValidationError as e:
        return {**rec, "status": "failed", "error": str(e), "error_kind": INVALID_CASE, "duration_s": time.perf_counter() - t0}
    except Exception as e:
        return {**rec, "status": "failed", "error": f"cannot read case: {type(e).__name__}: {e}", "error_kind": INVALID_CASE}
    no_truth = ground_truth_problem(case) or no_basic_set_problem(case.name, case.metric_sets)
    if no_truth is not None:  # the rule dataset validate applies: such a case cannot be scored, so it is not run
        return {**rec, "status": "failed", "error": f"{task.case_dir}: {no_truth}", "error_kind": INVALID_CASE, "duration_s": time.perf_counter() - t0}
    rec.update(truth_fields(case))
    from llmrca.dataset.io import warning_lines

    said = warning_lines((case.meta or {}).get("normalised"))
    if said:  # what the reader warned about the case as it is (a copy not read, a short window, ...)
        rec["case_warnings"] = said
    rec["fallback_ranking"] = random_fallback(rec["components"], task.method, task.case_id)
    try:
        method = get_method(task.method, task.config)
        from llmrca.methods.common.metric_set import choose_metric_set

        wanted = choose_metric_set(case.metric_sets, method.tags.metric_set, task.metric_set)
        rec["metric_set"] = wanted
        blind = _private_copy(case.with_metric_set(wanted).without_truth())
        wants_harness = wants_harness_sli(method.config)
        if task.sli is not None:
            blind.meta["sli"] = task.sli
            if wants_harness or reads_sli(task.method):
                if task.sli not in blind.metrics.columns:
                    # the user's column is missing here (checked before the run on the first case only): not the method's miss
                    raise MethodUnavailable(
                        f"--sli {task.sli!r} is not a column of this case's {wanted} metric set (or holds no value), so the "
                        "method cannot walk from it here; the check before the run looks at the dataset's first case only"
                    )
                # reported as a non-default option (evaluate.outputs)
                rec["sli_given"] = task.sli
                rec["sli_default"] = ("the paper harness's SLI, the injected component's latency" if wants_harness
                                      else "the entry component's latency")
        elif wants_harness:
            target = case.fault.target if case.fault is not None else None
            col = harness_sli(blind.metrics.columns, target)
            if col is not None:
                blind.meta["harness_sli"] = col
                rec["harness_sli"] = col
            elif target:  # the artifact's harness then passed 'nginx-proxy', no column: the reference failed
                blind.meta["harness_sli_error"] = f"the injected component {target} has no latency column"
            else:  # a healthy case: the harness never ran one, and there is no SLI to give
                blind.meta["harness_sli_unavailable"] = HEALTHY_NO_HARNESS_SLI
        t1 = time.perf_counter()
        # a method's library warnings (e.g. scikit-learn's ConvergenceWarning, hundreds per campaign) go into the
        # record instead of interleaving with the progress bar
        with recorded_warnings(into=rec):
            ranking = method.rank(blind)
        rec["duration_s"] = time.perf_counter() - t1
    except (MethodUnavailable, MissingDependency) as e:
        return {**rec, "status": "unavailable", "error": str(e), "error_kind": type(e).__name__, "fallback_ranking": None}
    except Exception as e:
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return {**rec, "status": "failed", "error": f"{type(e).__name__}: {e}", "error_kind": type(e).__name__, "traceback": "".join(tb[-4:])}
    except (KeyboardInterrupt, SystemExit) as e:
        if not IN_WORKER:  # in the evaluator's own process it is the user's Ctrl-C (or exit): not the method's to keep
            raise
        # a worker ignores SIGINT (engines._worker_main): this came from the method itself (sys.exit(), raise
        # KeyboardInterrupt); a failed run, not a dead worker with its traceback over the progress bar
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        return {**rec, "status": "failed", "error": f"{type(e).__name__}: {e} (raised by the method)", "error_kind": type(e).__name__,
                "traceback": "".join(tb[-4:])}
    d = ranking.to_dict()
    rec.update(
        status="ok",
        ranking=d["components"],
        scores=d["scores"],
        top_metrics=d["metrics"][:10] if d["metrics"] else None,
        explanation=_jsonable(ranking.explanation),
        abstained=d["abstained"],
        confidence=d["confidence"],
        fallback_ranking=None,
    )
    return rec


def warning_summary(caught: list[warnings.WarningMessage]) -> dict[str, dict[str, Any]]:
    """The warnings a run raised, per category: ``{"n": count, "first": first message, "messages": {message:
    count}}`` (the three most frequent distinct messages, 300 characters at most each)."""
    by_cat: dict[str, Counter[str]] = {}
    for w in caught:
        by_cat.setdefault(w.category.__name__, Counter())[str(w.message)[:300]] += 1
    return {cat: {"n": c.total(), "first": next(iter(c)), "messages": dict(c.most_common(3))} for cat, c in by_cat.items()}


@contextlib.contextmanager
def recorded_warnings(into: dict[str, Any]) -> Iterator[None]:
    """Record the warnings raised inside (each once per place, as Python's default filter shows them) instead of
    printing them; when there were any, ``into["warnings"]`` = :func:`warning_summary` of them, also on an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            yield
        finally:
            if caught:
                into["warnings"] = warning_summary(caught)


def _private_copy(case: Case) -> Case:
    """Copies of the frames, so a method that edits its input cannot touch the cached case."""
    sets = {k: v.copy() for k, v in case.metric_sets.items()}
    case.metric_sets = sets
    case.metrics = sets[case.metric_set]
    case.logs = case.logs.copy() if case.logs is not None else None
    case.traces = case.traces.copy() if case.traces is not None else None
    return case


def _jsonable(x: Any) -> Any:
    """``x`` as plain JSON values; NaN and ±Inf become ``None`` so results.jsonl stays valid JSON."""
    try:
        return _finite(json.loads(json.dumps(x, default=str)))
    except (TypeError, ValueError):
        return str(x)


def _finite(x: Any) -> Any:
    if isinstance(x, float):
        return x if np.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
