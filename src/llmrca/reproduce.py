"""``llmrca reproduce``: campaign -> evaluate every available method -> report.

The main job: it rebuilds the paper's experiment end to end on a backend
(the simulator by default) and writes, under ``out``:

* ``dataset/``   the labelled cases (RCAEval-compatible + case.json)
* ``eval/``      results.jsonl, summary.csv, Table 1 (md/csv/tex), misattribution.png, run.json
* ``fault_effects.png``  the paper's Fig. 6 from this dataset
* ``REPORT.md``, ``REPORT.html``  the report a reader needs without us
  (definitions, Table 1, figures; the HTML adds a drill-down per case)
* ``reproduce.json``  settings and timings

The layout is the one of :mod:`llmrca.report.document`; ``llmrca report
OUT`` rebuilds the reports from it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any


def reproduce(
    *,
    backend: str = "sim",
    profile: str = "quick",
    seed: int = 0,
    out: str | Path = "results",
    methods: list[str] | None = None,
    jobs: int = 2,
    timeout_s: float = 300.0,
    metric_set: str | None = None,
    progress: bool = True,
    campaign_options: dict[str, Any] | None = None,
    as_paper: bool = False,
    method_configs: dict[str, dict[str, Any]] | None = None,
    retry: str | list[str] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Path:
    """Run the whole experiment; returns the path of ``REPORT.md``.

    ``as_paper``: run every method in its reference mode where it has one
    (:func:`reference_modes`) and score a failed run on the seeded random
    ranking, as the paper did ("in the rare case of an RCA method failing to
    converge, we handle this error by defaulting to the random selection
    strategy", §5.2).  Compared with the default (our algorithms, a failure
    scores 0) this separates "our data differs" from "our implementation
    differs".  ``reproduce.json`` lists the modes used and the methods that
    have none.  ``method_configs`` (``{method: {option: value}}``, CLI
    ``--set METHOD.option=VALUE``) overrides options of the chosen methods
    (checked before the campaign runs); the report lists them as non-default.
    A rerun into the same folder resumes: stored runs are reused, those that failed or timed out too
    unless ``retry`` names their statuses (as ``evaluate --retry``); ``on_note`` receives the evaluator's
    notes (e.g. how many such runs were reused).
    """
    from llmrca.campaign import run_campaign
    from llmrca.errors import unavailable_reason
    from llmrca.evaluate import run_evaluation
    from llmrca.evaluate.runner import DatasetMismatch
    from llmrca.methods.registry import REGISTRY, list_methods
    from llmrca.report.document import EVAL_DIR, write_documents

    out = Path(out)
    from llmrca.dataset.layouts import file_in_the_way
    from llmrca.evaluate.runner import parse_retry

    for part in (out, out / "dataset", out / "eval"):  # a file where a folder is to be written: said before anything runs
        if (blocker := file_in_the_way(part)) is not None:
            raise NotADirectoryError(f"--out {out}: {blocker} is a file; {'the output' if part == out else 'its ' + part.name + '/'} must be a folder")

    parse_retry(retry)  # a bad --retry is refused now, not after the campaign
    from llmrca.evaluate.runner import check_run_options, resolve_methods

    check_run_options(jobs=jobs, timeout_s=timeout_s, metric_set=metric_set)  # so are the evaluator's options
    if methods is not None:
        methods = resolve_methods(methods)  # and unknown method names (or none at all)
    if method_configs:
        from llmrca.evaluate.runner import EvaluationError, full_config

        wanted = set(methods) if methods is not None else {r["name"] for r in list_methods() if r["available"]}
        unknown = sorted(set(method_configs) - wanted)
        if unknown:
            hint = ""
            if {"sim", "fault"} & set(unknown):
                hint = " — simulator and fault parameters go in campaign_options (sim_params, fault_params), as the CLI's --set sim.KEY=V does"
            raise EvaluationError(f"--set names {unknown}, not among the methods to run ({', '.join(sorted(wanted))}); see `llmrca methods`{hint}")
        early_modes = reference_modes(sorted(method_configs)) if as_paper else {}
        for m, opts in method_configs.items():
            try:  # an unknown option or a bad value is refused now, not after the campaign
                full_config(m, {**({"reference_mode": early_modes[m]} if m in early_modes else {}), **opts})
            except EvaluationError as e:
                if m in early_modes and "reference_mode" not in opts:
                    raise EvaluationError(f"{e} (--as-paper runs {m} in its reference mode, {early_modes[m]!r}; "
                                          f"add --set {m}.reference_mode=null to run it as published with these options)") from e
                raise
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    try:
        ds = _reuse_dataset(out / "dataset", backend=backend, profile=profile, seed=seed, options=campaign_options or {})
        if ds is None:
            interrupted = (out / "dataset" / "dataset.json").exists()  # the same settings, not finished: resumed
            ds = run_campaign(backend=backend, profile=profile, seed=seed, out=out / "dataset", progress=progress, resume=interrupted,
                              **(campaign_options or {}))
    except BaseException:  # refused before anything was written (a bad --set value): leave no empty --out behind
        if created:
            for d in (out / "dataset", out):
                with contextlib.suppress(OSError):
                    d.rmdir()  # only an empty folder goes
        raise
    t1 = time.time()
    rows = list_methods()
    chosen = methods or [r["name"] for r in rows if r["available"]]
    skipped = [r for r in rows if not r["available"] and (methods is None or r["name"] in methods)]
    modes: dict[str, str] = {}
    if as_paper:
        modes = reference_modes(chosen)
    # what each method runs in: --as-paper's reference mode unless the user's --set METHOD.reference_mode says otherwise
    asked = {m: c["reference_mode"] for m, c in (method_configs or {}).items() if "reference_mode" in c}
    ran_modes = {m: (modes.get(m) or "rcaeval") if v is True else v for m, v in {**modes, **asked}.items() if v}  # True: legacy spelling
    switched_off = sorted(m for m in modes if m not in ran_modes)  # --as-paper, but the user's --set reference_mode=null
    try:
        res = run_evaluation(
            ds, chosen, out / EVAL_DIR, jobs=jobs, timeout_s=timeout_s, metric_set=metric_set, progress=progress,
            method_configs={m: {**({"reference_mode": modes[m]} if m in modes else {}), **(method_configs or {}).get(m, {})}
                            for m in set(modes) | set(method_configs or {})} or None,
            random_on_failure=as_paper, retry=retry,
        )
    except DatasetMismatch as e:
        # the evaluator's own way out (--fresh) is not an option of reproduce: say what is
        raise DatasetMismatch(
            f"{e.out} holds evaluation results of another dataset ({e.other}), not of {e.current}. "
            f"Choose another --out, or move {e.out} away (or remove it) and rerun",
            out=e.out, other=e.other, current=e.current,
        ) from e
    for note in res.notes:
        if on_note is not None:
            on_note(note)
    if on_note is not None and res.skipped_runs:  # a rerun into this folder: what it reused, as evaluate says it
        on_note(f"evaluation: {res.new_runs} run(s) made now, {res.skipped_runs} reused from {out / EVAL_DIR / 'results.jsonl'} "
                "(made by an earlier invocation into this folder)")
    t2 = time.time()
    for r in skipped:  # the project's install hint (the torch extra: the CPU build first)
        e = REGISTRY[r["name"]]
        r["reason"] = unavailable_reason(e.requires, e.extra) or r["reason"]
    # a resumed folder (also a copied one) keeps the time its results took: this invocation's added to the earlier ones'
    try:
        before = json.loads((out / "reproduce.json").read_text())
    except (OSError, ValueError):
        before = {}
    before = before if isinstance(before, dict) else {}

    def _spent(key: str, now: float) -> float:
        prev = before.get(key)
        return round(now + (float(prev) if isinstance(prev, (int, float)) else 0.0), 2)

    def _campaign_wall(dataset: Path, fallback: float) -> float:
        # the campaign's own clock (dataset.json wall_s: every session of it, also one an interrupt ended before
        # reproduce could record it), else what reproduce measured
        try:
            w = json.loads((dataset / "dataset.json").read_text()).get("wall_s")
        except (OSError, ValueError, AttributeError):
            return fallback
        return round(float(w), 2) if isinstance(w, (int, float)) and w >= 0 else fallback

    def _evaluation_wall(eval_dir: Path, fallback: float) -> float:
        # the evaluator's own clock: every session recorded in run.json (one that Ctrl-C ended too, which reproduce
        # could not record), else what this invocation measured added to the earlier ones'
        try:
            sessions = json.loads((eval_dir / "run.json").read_text()).get("sessions") or []
            total = sum((datetime.fromisoformat(x["ended"]) - datetime.fromisoformat(x["started"])).total_seconds()
                        for x in sessions if x.get("started") and x.get("ended"))
        except (OSError, ValueError, AttributeError, TypeError, KeyError):
            return fallback
        return round(total, 2) if total > 0 else fallback

    earlier = before.get("invocations", 1) if before else 0  # a reproduce.json from before this key: one invocation
    invocations = (earlier if isinstance(earlier, int) else 1) + 1
    (out / "reproduce.json").write_text(
        json.dumps(
            {
                "backend": backend,
                "profile": profile,
                "seed": seed,
                "methods": chosen,
                "unavailable": [{"name": r["name"], "reason": r["reason"]} for r in skipped],
                "metric_set": metric_set,
                "as_paper": as_paper,
                "method_configs": method_configs or {},
                "campaign_options": campaign_options or {},
                "reference_modes": ran_modes,
                "no_reference_mode": sorted(set(chosen) - set(modes)) if as_paper else [],
                "reference_mode_off": switched_off,
                "campaign_s": _campaign_wall(out / "dataset", _spent("campaign_s", t1 - t0)),
                "evaluate_s": _evaluation_wall(out / EVAL_DIR, _spent("evaluate_s", t2 - t1)),
                "invocations": invocations,
            },
            indent=2,
        )
        + "\n"
    )
    return write_documents(out, title="llmrca reproduce").markdown


def reference_modes(methods: list[str]) -> dict[str, str]:
    """``{method: reference_mode}`` for the methods of ``methods`` that have a reference implementation.

    A method has one when its config has a ``reference_mode`` option and its class names the reference
    value (``Config.legacy_reference``: ``rcaeval`` / ``pyrca``; ``None`` where the option exists but no
    reference does, as MicroCause's) and the config accepts it.  Read from the config classes only: no
    method runs here (a method run in the evaluator's process before it forks its workers could leave
    state the workers inherit).  Unavailable or unknown methods are left out.
    """
    import dataclasses

    from llmrca.config import ConfigError
    from llmrca.errors import MissingDependency
    from llmrca.methods.registry import method_class

    out: dict[str, str] = {}
    for m in methods:
        try:
            cls = method_class(m)
        except (KeyError, MissingDependency):
            continue
        ref = getattr(cls.config_cls, "legacy_reference", None)
        if ref is None or "reference_mode" not in {f.name for f in dataclasses.fields(cls.config_cls)}:
            continue
        try:
            cls.config_cls.from_dict({"reference_mode": ref})
        except ConfigError:
            continue
        out[m] = ref
    return out


def _reuse_dataset(path: Path, *, backend: str, profile: str, seed: int, options: dict[str, Any]) -> Path | None:
    """A dataset from an earlier run with the same settings (complete, or finished now), else None.

    A re-run of ``reproduce`` into the same folder then skips the campaign (or resumes one that was
    interrupted: ``campaign --resume``) and the evaluator resumes from ``results.jsonl`` (runs whose
    dataset, case content and method config are unchanged are reused; an ``eval/`` holding another
    dataset's results is refused).  A dataset made with other settings is an error naming each one
    that differs; the user resolves it (another ``--out``, or remove the folder).
    """
    if not path.exists() or not any(path.iterdir()):
        return None
    manifest = path / "dataset.json"
    if not manifest.exists():
        raise FileExistsError(f"{path} holds an incomplete dataset (no dataset.json; an earlier campaign was interrupted): remove it or choose another --out")
    from llmrca.campaign import PROFILES, fault_settings

    info = json.loads(manifest.read_text())
    params = info.get("parameters") or {}
    differ = [f"{k} {info.get(k)} (asked: {v})" for k, v in (("backend", backend), ("profile", profile), ("seed", seed)) if info.get(k) != v]
    healthy = options.get("healthy")
    if healthy is None:
        healthy = PROFILES[profile].healthy if profile in PROFILES else 0
    if int(info.get("healthy", 0) or 0) != healthy:
        differ.append(f"healthy {info.get('healthy', 0) or 0} (asked: {healthy})")
    rest = {k: v for k, v in options.items() if k not in ("healthy", "fault_params", "sim_params")}
    differ += [f"{k} (asked: {v}; reproduce does not reuse a dataset made with it)" for k, v in rest.items()]
    made_with, asked = _backend_options(backend, params, options.get("sim_params") or {})
    defaults: dict[str, Any] = {}
    if backend == "sim":
        from llmrca.testbed.sim.config import SimConfig

        defaults = {k: getattr(SimConfig(), k) for k in set(made_with) | set(asked) if hasattr(SimConfig, k)}

    def _said(opts: dict[str, Any], k: str) -> str:  # a default is named with its value (ingress: 'every-pod')
        return repr(opts[k]) if k in opts else (f"the default ({defaults[k]!r})" if k in defaults else "the default")

    differ += [f"{backend}.{k} {_said(made_with, k)} (asked: {_said(asked, k)})"
               for k in sorted(set(made_with) | set(asked)) if made_with.get(k) != asked.get(k)]
    made_f, asked_f = params.get("fault_params") or {}, json.loads(json.dumps(options.get("fault_params") or {}))
    differ += [f"fault.{ft} {made_f.get(ft) or 'the defaults'} (asked: {asked_f.get(ft) or 'the defaults'})" for ft in sorted(set(made_f) | set(asked_f))
               if fault_settings(backend, ft, made_f.get(ft, {})) != fault_settings(backend, ft, asked_f.get(ft, {}))]
    if differ:
        raise FileExistsError(f"{path} holds a dataset made with other settings: {'; '.join(differ)}; choose another --out for different settings")
    if info.get("complete") is False:
        return None  # the same campaign, interrupted: run_campaign(resume=True) finishes it
    return path


def _backend_options(backend: str, params: dict[str, Any], asked: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the options a dataset was made with that differ from the defaults, the same for ``asked``) on the simulator;
    elsewhere (the recorded value of every option asked, ``asked``)."""
    if backend == "sim":
        from llmrca.testbed.sim.config import SimConfig

        made = {k: v for k, (v, _) in SimConfig.non_default(params.get("sim") or {}).items()}
        want = {k: v for k, (v, _) in SimConfig.non_default(SimConfig.from_dict(asked).validate().to_dict()).items()} if asked else {}
        return made, want
    recorded = params.get(backend) or {}
    return {k: recorded.get(k) for k in asked}, dict(asked)
