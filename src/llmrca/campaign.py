"""The paper's experiment protocol over any testbed backend.

A campaign runs fault types × target workers × repetitions; every case is a
normal window (285 s), the fault (60 s) and a tail (15 s), followed by a
cooldown before the next case (paper §4.3, PROTOCOL.md §1).  The backend does
the serving and the injection; this module does the bookkeeping: which case
comes next, its seed (derived from the campaign seed with
``numpy.random.SeedSequence``, so any case can be re-run alone), its place on
the clock, and the dataset on disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from llmrca.config import ConfigError
from llmrca.dataset.io import add_case, write_manifest
from llmrca.model import ALL_FAULT_TYPES, FAULT_TYPES, NO_FAULT, FaultSpec, normalize_fault_type
from llmrca.progress import progress_bar
from llmrca.testbed.base import BACKENDS, Backend, Timeline, backend_class, fault_class, fault_roles

__all__ = ["BACKENDS", "PROFILES", "Backend", "Profile", "Protocol", "Timeline", "make_backend", "plan_cases", "run_campaign", "split_overrides"]


@dataclass(frozen=True)
class Profile:
    name: str
    faults: tuple[str, ...]
    n_targets: int
    repetitions: int
    description: str
    healthy: int = 0  # cases with nothing injected (ground truth "none"), run with the same timeline
    #: where faults go: "workers" (``n_targets`` workers spread over the list, the paper's protocol) or
    #: "all" (every component of the stack whose role the fault type applies to, as its class says)
    placement: str = "workers"
    cases_per_fault: int = 0  # > 0: this many cases per fault type, its targets taken in turn (instead of targets x repetitions)


PROFILES: dict[str, Profile] = {
    "quick": Profile("quick", FAULT_TYPES, 3, 1, "every fault on each of 3 workers once (12 cases)"),
    "paper": Profile("paper", FAULT_TYPES, 3, 10, "the paper's campaign: 4 faults x 3 workers x 10 (120 cases)"),
    "local": Profile("local", FAULT_TYPES, 3, 1, "12 cases with the compressed protocol of the local testbed (60 s / 20 s / 10 s)"),
    "local-extended": Profile("local-extended", ALL_FAULT_TYPES, 2, 1, "every fault type (the paper's four and six more) on 2 workers once, and 2 healthy cases (22 cases, local testbed)", healthy=2),
    "extended": Profile(
        "extended", ALL_FAULT_TYPES, 3, 3,
        "every fault type (paper's 4 + 6 LLM-serving ones) on every component it applies to (gateway, head, 3 workers, operator) "
        "x 3, plus 20 healthy cases (161 cases; about 2 minutes on the simulator)",
        healthy=20, placement="all",
    ),
}

#: Deprecated name of :class:`~llmrca.testbed.base.Timeline` (``typing.Protocol`` is another thing); kept for callers outside llmrca.
Protocol = Timeline


def pick_targets(workers: list[str], n: int) -> list[str]:
    """``n`` workers spread evenly over the list (all of them when there are fewer)."""
    if n >= len(workers):
        return list(workers)
    idx = np.unique(np.round(np.linspace(0, len(workers) - 1, n)).astype(int))
    return [workers[i] for i in idx]


def case_seeds(seed: int, n: int) -> list[int]:
    """Independent per-case seeds derived from the campaign seed."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n)]


def make_backend(backend: str, *, workers: int | None, qps: float | None, scrape_interval_s: float | None, sim_params: Mapping[str, Any] | None = None) -> Backend:
    """The backend registered as ``backend`` (:data:`llmrca.testbed.base.BACKENDS`) built from the campaign's options.

    Raises :class:`~llmrca.config.ConfigError` for an unknown backend or a bad option.
    """
    return backend_class(backend).from_options(workers=workers, qps=qps, scrape_interval_s=scrape_interval_s, params=sim_params)


def plan_cases(
    profile: Profile,
    workers: list[str],
    fault_params: Mapping[str, Mapping[str, Any]] | None,
    protocol: Timeline,
    *,
    placements: Mapping[str, str] | None = None,
    roles_of: Callable[[str], tuple[str, ...]] | None = None,
    faults: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> list[FaultSpec]:
    """The cases of ``profile``: every fault type on its targets, ``repetitions`` times (or ``cases_per_fault``
    cases per fault type, its targets taken in turn), then ``profile.healthy``
    cases with nothing injected (``FaultSpec(type=NO_FAULT, target="")``: ground truth "no root cause").

    Targets: ``profile.n_targets`` of ``workers`` (placement "workers"), or every component of
    ``placements`` (component -> role) whose role is in ``roles_of(fault type)`` (placement "all";
    the fault classes say where they apply, :func:`llmrca.testbed.base.fault_roles`).
    ``faults`` / ``targets`` narrow the plan to those fault types / components (None: all of the
    profile's): every name must be known and every named type must be in the profile.  With both
    given, the (type, target) pairs the placement rule of the fault classes allows are planned and
    the others skipped (a GPU fault on the gateway); a named target no type of the plan applies to is
    skipped too.  What was skipped, and why, is passed to ``on_note`` as one sentence.  Healthy cases
    are kept as ``profile.healthy`` says.
    Raises :class:`~llmrca.config.ConfigError` for fault parameters of an unknown fault type or of a
    type the plan has no case of, an unknown fault type or target, a narrowing that leaves no faulty
    case (no named pair applies), or a placement "all" without ``placements`` and ``roles_of``.
    """
    fp: dict[str, dict[str, Any]] = {}
    for k, v in (fault_params or {}).items():
        fp.setdefault(normalize_fault_type(k), {}).update(v)
    unknown = sorted(set(fp) - set(ALL_FAULT_TYPES))
    if unknown:
        raise ConfigError(f"fault parameters for unknown fault type(s) {unknown}; fault types: {', '.join(ALL_FAULT_TYPES)}")
    if profile.placement not in ("workers", "all"):
        raise ConfigError(f"profile {profile.name!r}: placement must be 'workers' or 'all', not {profile.placement!r}")
    if profile.placement == "all" and (placements is None or roles_of is None):
        raise ConfigError(f"profile {profile.name!r} places faults on every component: the backend must list its components with their roles")
    types = list(profile.faults)
    if faults is not None:
        want = list(dict.fromkeys(normalize_fault_type(f) for f in faults if f.strip()))
        bad = [f for f in want if f not in ALL_FAULT_TYPES]
        if bad or not want:
            raise ConfigError(f"--faults: unknown fault type(s) {', '.join(bad) or '(none given)'}; fault types: {', '.join(ALL_FAULT_TYPES)}")
        outside = [f for f in want if f not in profile.faults]
        if outside:
            raise ConfigError(f"--faults: profile {profile.name!r} has no {', '.join(outside)} case; its fault types: {', '.join(profile.faults)} "
                              f"(the extended profile has every type)")
        types = [f for f in profile.faults if f in want]
    known = list(placements) if profile.placement == "all" and placements is not None else list(workers)
    chosen: list[str] | None = None
    if targets is not None:
        chosen = list(dict.fromkeys(t.strip() for t in targets if t.strip()))
        bad = [t for t in chosen if t not in known]
        if bad or not chosen:
            raise ConfigError(f"--targets: unknown component(s) {', '.join(bad) or '(none given)'}; profile {profile.name!r} places faults on: {', '.join(known)}")
    missing = sorted(set(fp) - set(types))
    if missing:
        raise ConfigError("; ".join(f"fault.{ft}.* given but the campaign has no {ft} case" for ft in missing)
                          + f" (its fault types: {', '.join(types)})")
    specs = []
    placed: set[str] = set()
    skipped: list[str] = []  # per fault type: the named targets it does not apply to, and where it does
    n_skipped = 0
    for ftype in types:
        if profile.placement == "all":
            assert placements is not None and roles_of is not None
            roles = roles_of(ftype)
            targets_ = [c for c, role in placements.items() if role in roles]
            if chosen is not None:
                if faults is not None:
                    no = [c for c in chosen if c not in targets_]
                    if no:
                        n_skipped += len(no)
                        skipped.append(f"fault {ftype!r} does not apply to {', '.join(f'{c} ({placements[c]})' for c in no)}: it applies to {', '.join(roles)}")
                targets_ = [c for c in targets_ if c in chosen]
        else:
            targets_ = chosen if chosen is not None else pick_targets(workers, profile.n_targets)
        if not targets_:
            continue
        placed.update(targets_)
        if profile.cases_per_fault > 0:
            # spread evenly over the targets (8 on 3: 3, 3, 2), each target's cases together as with repetitions
            order = sorted(range(profile.cases_per_fault), key=lambda k: k % len(targets_))
            plan = [targets_[k % len(targets_)] for k in order]
        else:
            plan = [t for t in targets_ for _ in range(profile.repetitions)]
        for target in plan:
            specs.append(FaultSpec(type=ftype, target=target, params=fp.get(ftype, {}), duration_s=protocol.fault_s))
    if chosen is not None:
        unused = [c for c in chosen if c not in placed]
        if not specs:  # nothing applies: refused, with every reason
            if faults is not None and skipped:
                raise ConfigError(f"--faults/--targets: no named fault applies to a named target ({'; '.join(skipped)}); "
                                  "name targets of the roles listed, or other fault types")
            raise ConfigError(f"--targets: no fault type of the plan applies to {', '.join(unused)} (fault types: {', '.join(types)})")
        if faults is None and unused:
            skipped.append(f"no fault type of the plan applies to {', '.join(f'{c} ({placements[c]})' if placements else c for c in unused)} "
                           f"(fault types: {', '.join(types)})")
        if skipped and on_note is not None:
            pairs = f"{n_skipped} fault/target pair(s)" if faults is not None else "target(s)"
            on_note(f"--faults/--targets: skipped {pairs} that do not apply ({'; '.join(skipped)}); "
                    f"the campaign runs the {len({(s.type, s.target) for s in specs})} pair(s) that do")
    specs.extend(FaultSpec(type=NO_FAULT, target="", duration_s=protocol.fault_s) for _ in range(profile.healthy))
    return specs


def split_overrides(overrides: Mapping[str, Any], backend: str | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``{"fault.cpu.workers": 8, "sim.tick_s": 0.05}`` -> (fault params by type, backend options).

    With ``backend`` given, another backend's options (``k8s.namespace`` for the simulator) are refused
    (ConfigError) instead of being read as options of this one."""
    faults: dict[str, dict[str, Any]] = {}
    sim: dict[str, Any] = {}
    for key, v in overrides.items():
        parts = key.split(".")
        if parts[0] == "fault" and len(parts) == 3:
            faults.setdefault(parts[1], {})[parts[2]] = v
        elif parts[0] in ("sim", "local", "k8s") and len(parts) == 2:  # backend options
            if backend is not None and parts[0] != backend:
                raise ConfigError(f"option {key!r} is for --backend {parts[0]}, not {backend}; this backend's options are {backend}.KEY=VALUE")
            sim[parts[1]] = v
        else:
            raise ConfigError(f"option {key!r} is not fault.<type>.<param> or <backend>.<option> (e.g. fault.cpu.workers=8, sim.tick_s=0.05, k8s.gateway_url=http://127.0.0.1:8080)")
    return faults, sim


def profile_protocol(profile: str) -> Timeline:
    """The protocol a profile runs when none is given: the local testbed's short one (60 s / 20 s / 10 s,
    :data:`llmrca.testbed.local.backend.LOCAL_PROTOCOL`) for its profiles (``local``, ``local-extended``), the
    paper's (:class:`Timeline`, PROTOCOL.md §1) for the others."""
    if profile in ("local", "local-extended"):
        from llmrca.testbed.local.backend import LOCAL_PROTOCOL

        return LOCAL_PROTOCOL
    return Timeline()


def run_campaign(
    backend: str = "sim",
    profile: str = "quick",
    seed: int = 0,
    out: str | Path = "datasets/sim-quick",
    workers: int | None = None,
    qps: float | None = None,
    fault_params: dict | None = None,
    scrape_interval_s: float | None = None,
    progress: bool = True,
    *,
    protocol: Timeline | None = None,
    sim_params: Mapping[str, Any] | None = None,
    backend_obj: Backend | None = None,
    resume: bool = False,
    healthy: int | None = None,
    cases_per_fault: int | None = None,
    faults: Sequence[str] | None = None,
    targets: Sequence[str] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Path:
    """Run a campaign and write its dataset; returns the dataset folder.

    ``fault_params`` maps a fault type to parameter overrides, e.g.
    ``{"cpu": {"workers": 8}}``.  ``backend_obj`` lets a caller pass a backend
    it built itself (the local and k8s testbeds).  ``dataset.json`` is
    rewritten after every case (``"complete": false`` until the last), so
    ``resume=True`` on the same folder, backend, profile and seed runs only
    the cases not listed yet (a half-written case folder is removed first).
    ``healthy`` replaces the profile's number of healthy cases (nothing
    injected, ground truth "no root cause", written as ``healthy/<rep>``);
    on ``resume`` without it, the number the campaign was started with
    (``dataset.json`` ``healthy``) is used.
    ``cases_per_fault`` overrides the profile's targets x repetitions with that many
    cases per fault type (its targets in turn; e.g. 8 on 3 workers: 3, 3, 2); on ``resume`` without it, the campaign's own (``dataset.json``).
    ``faults`` / ``targets`` narrow the plan to those fault types / components (:func:`plan_cases`;
    recorded in ``dataset.json``, on ``resume`` without them the campaign's own); a narrowed campaign
    has no healthy case unless ``healthy`` says so; pairs of a named type and a named target it does not apply to are
    skipped, said to ``on_note`` (one sentence).  Fault parameters are checked for every type
    ``fault_params`` names (unknown parameter or value out of range: ConfigError), and a type the
    plan has no case of is refused.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; profiles: {', '.join(f'{k} ({v.description})' for k, v in PROFILES.items())}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:  # numpy's seeds are whole numbers >= 0
        raise ConfigError(f"--seed must be a whole number >= 0, got {seed!r}")
    prof = PROFILES[profile]
    if resume and healthy is None:
        healthy = _started_healthy(Path(out))
    if resume and cases_per_fault is None:
        cases_per_fault = _started(Path(out), "cases_per_fault")
    if resume and faults is None:
        faults = _started_list(Path(out), "faults")
    if resume and targets is None:
        targets = _started_list(Path(out), "targets")
    if healthy is None and (faults is not None or targets is not None):
        healthy = 0  # a narrowed campaign is about its faults
    if healthy is not None:
        if healthy < 0:
            raise ConfigError(f"healthy cases must be 0 or more, got {healthy}")
        prof = replace(prof, healthy=int(healthy))
    if cases_per_fault is not None:
        if cases_per_fault < 1:
            raise ConfigError(f"cases per fault must be at least 1, got {cases_per_fault}")
        prof = replace(prof, cases_per_fault=int(cases_per_fault))
    protocol = protocol or profile_protocol(profile)
    be = backend_obj or make_backend(backend, workers=workers, qps=qps, scrape_interval_s=scrape_interval_s, sim_params=sim_params)
    if resume and backend_obj is None:
        given = {**(sim_params or {}), **{k: v for k, v in (("workers", workers), ("qps", qps), ("scrape_interval_s", scrape_interval_s)) if v is not None}}
        be, fault_params = _resume_settings(Path(out), be, backend, given, fault_params)
    for ft, params in (fault_params or {}).items():  # every type named in --set, in the plan or not
        cls = fault_class(be.name, ft)
        if hasattr(cls, "params_from"):
            cls.params_from(params)
    specs = plan_cases(prof, be.workers(), fault_params, protocol, placements=be.placements(), roles_of=lambda ft: fault_roles(be.name, ft),
                       faults=faults, targets=targets, on_note=on_note)
    faults = None if faults is None else [normalize_fault_type(f) for f in faults if f.strip()]
    targets = None if targets is None else [t.strip() for t in targets if t.strip()]
    for spec in specs:  # every fault is checked before the first case runs
        be.check_fault(spec)
    run_dir = getattr(getattr(be, "config", None), "run_dir", None)
    if be.name == "local" and run_dir and on_note is not None:  # where its processes live, for a cleanup after a crash
        on_note(f"the local testbed runs in {run_dir} (set with --set local.run_dir=DIR); after a crash, "
                f"llmrca testbed down --run-dir {run_dir} removes what is left of it")
    out = Path(out)
    from llmrca.dataset.layouts import file_in_the_way
    from llmrca.evaluate.lock import LOCK_NAME, FolderLock

    lock = FolderLock(out, "campaign")
    try:
        if (blocker := file_in_the_way(out)) is not None:
            raise NotADirectoryError(f"--out {out}: {blocker} is a file; the output must be a folder (a new one, or a campaign's to --resume)")
        # one campaign per folder: two at once wrote the same cases twice (ray-worker-1_gpu/1 and /2, byte-identical)
        lock.acquire()
    except BaseException:
        be.close()
        raise
    try:
        return _run_locked(out, resume, be, profile, seed, specs, prof, faults, targets, protocol, fault_params, workers, qps,
                           scrape_interval_s, progress, LOCK_NAME, on_note)
    finally:
        lock.release()


def _run_locked(
    out: Path, resume: bool, be: Backend, profile: str, seed: int, specs: list[Any], prof: Any, faults: list[str] | None,
    targets: list[str] | None, protocol: Timeline, fault_params: Mapping[str, Any] | None, workers: int | None, qps: float | None,
    scrape_interval_s: float | None, progress: bool, lock_name: str, on_note: Callable[[str], None] | None = None,
) -> Path:
    """The body of :func:`run_campaign` once it holds the folder's lock."""
    entries: list[dict[str, Any]] = []
    if any(p.name != lock_name for p in out.iterdir()):
        if not resume:
            be.close()
            raise FileExistsError(f"output folder {out} exists and is not empty; choose a new --out, remove it, or pass --resume to finish it")
        try:
            entries = _resume_entries(out, be.name, profile, seed, len(specs), prof.healthy, prof.cases_per_fault, faults, targets, on_note)
        except BaseException:
            be.close()
            raise
    out.mkdir(parents=True, exist_ok=True)
    wall_before = _started_wall(out) if entries else 0.0
    seeds = case_seeds(seed, len(specs))
    base = 1_767_225_600.0 + 86_400.0 * (seed % 365)
    counts: dict[str, int] = {}
    stats: list[dict[str, Any]] = []
    t_wall = time.perf_counter()
    try:
        with progress_bar(f"{be.name}/{profile}", len(specs), enabled=progress, transient=False) as bar:
            bar.update(completed=len(entries))
            done = len(entries)

            def info(complete: bool) -> dict[str, Any]:
                return {
                    "backend": be.name,
                    "profile": profile,
                    "seed": seed,
                    "healthy": prof.healthy,
                    "protocol": protocol.to_dict(),
                    **({"cases_per_fault": prof.cases_per_fault} if prof.cases_per_fault else {}),
                    **({"faults": faults} if faults is not None else {}),
                    **({"targets": targets} if targets is not None else {}),
                    "parameters": {**be.describe(), "fault_params": fault_params or {}, "workers": workers, "qps": qps, "scrape_interval_s": scrape_interval_s},
                    "wall_s": round(wall_before + time.perf_counter() - t_wall, 2),  # every session of the campaign
                    "complete": complete,
                }

            if not entries:  # the settings are on disk before the first case: a resume after an early kill keeps them
                write_manifest(out, entries, info(False))
            for i, (spec, s) in enumerate(zip(specs, seeds, strict=True)):
                if i < done:
                    continue
                start = base + i * protocol.case_s + protocol.warmup_s
                t = time.perf_counter()
                case = be.run_case(spec, seed=s, protocol=protocol, start_time=start)
                case.meta.update({"profile": profile, "campaign_seed": seed, "case_index": i})
                entry = add_case(case, out, counts)
                entry.update({"seed": s, "achieved": dict(case.fault.achieved) if case.fault else {}})
                entries.append(entry)
                stats.append({"fault": spec.type, "wall_s": time.perf_counter() - t, **case.meta.get("requests", {})})
                if i < len(specs) - 1:
                    write_manifest(out, entries, info(False))
                bar.update(advance=1, description=f"{be.name}/{profile} {entry['path']}")
            write_manifest(out, entries, info(True))
    finally:
        be.close()
    if progress:
        _summary(out, entries, stats, time.perf_counter() - t_wall)
    return out


def campaign_manifest(out: Path) -> dict[str, Any]:
    """The ``dataset.json`` of the campaign in ``out`` as a dict ({} when there is none or it cannot be read:
    :func:`_resume_entries` says what is wrong with the folder)."""
    import json

    try:
        d = json.loads((Path(out) / "dataset.json").read_text())
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _started(out: Path, key: str) -> int | None:
    """The number ``key`` (``healthy``, ``cases_per_fault``) the campaign in ``out`` was started with (its ``dataset.json``), or None."""
    try:
        v = campaign_manifest(out).get(key)
        return int(v) if v is not None else None
    except (TypeError, ValueError):
        return None


def _started_list(out: Path, key: str) -> list[str] | None:
    """The list ``key`` (``faults``, ``targets``) the campaign in ``out`` was narrowed to (its ``dataset.json``), or None."""
    v = campaign_manifest(out).get(key)
    return [str(x) for x in v] if isinstance(v, list) else None


def _resume_settings(
    out: Path, be: Backend, backend: str, given: Mapping[str, Any], fault_params: Mapping[str, Any] | None
) -> tuple[Backend, Mapping[str, Any] | None]:
    """The backend and fault parameters a resumed campaign continues with: the ones it was started with.

    The simulator's options and the fault parameters recorded in ``dataset.json`` (``parameters``) are kept;
    ``given`` (the options on the command line: ``--set sim.*``, ``--workers``, ``--qps``, ``--scrape-interval``)
    and ``fault_params`` may repeat them, and one that differs refuses the resume (ConfigError naming it), so
    that one dataset never mixes two settings.  Fault parameters compare with their defaults filled in (a
    default given explicitly is the same setting).  A folder without a readable manifest is left to
    :func:`_resume_entries`.
    """

    man = campaign_manifest(out)
    if not man:
        return be, fault_params
    params = man.get("parameters") or {}
    differ = []
    # the simulator's options (a testbed's also hold run-specific paths and ports: only its fault parameters are kept)
    recorded = params.get("sim") if be.name == "sim" and isinstance(params.get("sim"), dict) else None
    if recorded is not None:
        now = be.describe()["sim"]  # the defaults with the options given
        kept = {o: v for o, v in recorded.items() if o in now}
        names = {"workers": "n_workers"}  # --workers sets n_workers; the other campaign options keep their names
        explicit = {names.get(k, k): now[names.get(k, k)] for k in given if names.get(k, k) in now}
        differ += [f"sim.{o}={v!r} (started with {kept[o]!r})" for o, v in sorted(explicit.items()) if o in kept and kept[o] != v]
        be = make_backend(backend, workers=None, qps=None, scrape_interval_s=None, sim_params={**kept, **explicit})
    started = {str(t): dict(v) for t, v in (params.get("fault_params") or {}).items()}
    mine = {str(t): dict(v) for t, v in (fault_params or {}).items()}
    for ft in sorted(mine):
        if fault_settings(be.name, ft, mine[ft]) != fault_settings(be.name, ft, started.get(ft, {})):
            differ.append(f"fault.{ft} {mine[ft]} (started with {started.get(ft, {}) or 'the defaults'})")
    if differ:
        raise ConfigError(f"cannot resume {out}: it was started with other settings: {'; '.join(differ)}; "
                          "resume without them (its own settings are kept) or choose another --out")
    return be, started or fault_params


def fault_settings(backend: str, fault_type: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a fault of ``fault_type`` runs with on ``backend``: its defaults with ``overrides`` (so that a default
    given explicitly compares equal to none given); raises ConfigError on a bad parameter."""
    cls = fault_class(backend, fault_type)
    return cls.params_from(overrides) if hasattr(cls, "params_from") else dict(overrides)


def _started_wall(out: Path) -> float:
    """Wall seconds the earlier sessions of the campaign in ``out`` took (its ``dataset.json``; 0 when unknown)."""
    try:
        return float(campaign_manifest(out).get("wall_s") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _started_healthy(out: Path) -> int | None:
    """The number of healthy cases the campaign in ``out`` was started with, or None."""
    return _started(out, "healthy")


def _resume_entries(
    out: Path, backend: str, profile: str, seed: int, n_specs: int, healthy: int = 0, cases_per_fault: int = 0,
    faults: Sequence[str] | None = None, targets: Sequence[str] | None = None, on_note: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The cases a previous run of this campaign finished in ``out``; removes case folders it had not listed.

    Raises ConfigError when ``out`` holds another campaign (backend, profile, seed or number of healthy cases differ) or no manifest.
    """
    import json
    import shutil

    man = out / "dataset.json"
    if not man.exists():
        raise ConfigError(f"cannot resume {out}: it has no dataset.json (not a campaign folder, or killed before its first case ended); remove it")
    d = json.loads(man.read_text())
    theirs = (d.get("backend"), d.get("profile"), d.get("seed"))
    if theirs != (backend, profile, seed):
        raise ConfigError(f"cannot resume {out}: it holds backend/profile/seed {theirs}, not {(backend, profile, seed)}")
    if int(d.get("healthy", 0) or 0) != healthy:
        raise ConfigError(f"cannot resume {out}: it was started with {d.get('healthy', 0) or 0} healthy case(s), not {healthy}; pass --healthy {d.get('healthy', 0) or 0}")
    if int(d.get("cases_per_fault", 0)) != cases_per_fault:
        raise ConfigError(f"cannot resume {out}: it was planned with --cases-per-fault {d.get('cases_per_fault', 0) or '(none)'}, not {cases_per_fault or '(none)'}")
    for key, mine in (("faults", faults), ("targets", targets)):
        theirs_l = d.get(key)
        if (list(theirs_l) if theirs_l is not None else None) != (list(mine) if mine is not None else None):
            was = ",".join(theirs_l) if theirs_l else "(all of the profile's)"
            raise ConfigError(f"cannot resume {out}: it was planned with --{key} {was}, not {','.join(mine) if mine else '(all)'}; pass --{key} {was}"
                              if theirs_l else f"cannot resume {out}: it was planned with all of the profile's {key}, not --{key} {','.join(mine or [])}")
    entries = list(d.get("cases") or [])
    if len(entries) > n_specs:
        raise ConfigError(f"cannot resume {out}: it lists {len(entries)} cases, the campaign has {n_specs}")
    # a listed case whose folder is gone (deleted by hand) is run again, with every case after it: the plan is
    # followed in order, so the cases after it get their numbers again (the same seeds give the same data)
    def whole(e: dict[str, Any]) -> bool:  # the files every case of a campaign has (write_case)
        return all((out / str(e.get("path", "")) / f).is_file() for f in ("case.json", "data.csv"))

    gone = next((i for i, e in enumerate(entries) if not whole(e)), None)
    if gone is not None:
        if on_note is not None:
            what = "is missing" if not (out / str(entries[gone].get("path", ""))).is_dir() else "lacks its case.json or data.csv"
            on_note(f"case {entries[gone].get('path')} listed in {man} {what}: the campaign runs it again, and the "
                    f"{len(entries) - gone - 1} case(s) listed after it ({len(entries) - gone} in all)")
        shutil.rmtree(out / str(entries[gone].get("path", "")), ignore_errors=True)
        entries = entries[:gone]
    listed = {e["path"] for e in entries}
    for group in out.iterdir():
        if group.is_dir():
            for rep in group.iterdir():
                if rep.is_dir() and rep.name.isdigit() and f"{group.name}/{rep.name}" not in listed:
                    shutil.rmtree(rep)
    return entries


def _summary(out: Path, entries: list[dict[str, Any]], stats: list[dict[str, Any]], wall: float) -> None:
    """Per fault type: the dataset's cases (``entries``, also those of an earlier run when resumed) and,
    for the cases run now (``stats``), their number, requests, failed requests and wall time."""
    from rich.console import Console
    from rich.table import Table

    resumed = len(entries) - len(stats)
    t = Table(title=f"campaign -> {out} ({len(entries)} cases" + (f", {len(stats)} run now, {resumed} from before" if resumed else "") + f"; {wall:.1f} s)")
    if resumed:  # 'cases' counts the dataset's; the columns after 'run now' only the cases run now
        t.caption = "requests, failed and wall s/case: of the cases run now"
    for col in ("fault", "cases", "run now", "requests", "failed", "wall s/case"):
        t.add_column(col)
    for ft in sorted({str(e.get("fault")) for e in entries} | {s["fault"] for s in stats}):
        rows = [s for s in stats if s["fault"] == ft]
        t.add_row(
            "none (healthy)" if ft == NO_FAULT else ft,
            str(sum(str(e.get("fault")) == ft for e in entries)),
            str(len(rows)),
            str(sum(r.get("requests", 0) for r in rows)),
            str(sum(r.get("failed", 0) for r in rows)),
            f"{np.median([r['wall_s'] for r in rows]):.2f}" if rows else "–",
        )
    Console(stderr=True).print(t)
