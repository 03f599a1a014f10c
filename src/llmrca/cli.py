"""The ``llmrca`` command.  It holds no logic of its own: every command calls
the same function the Python API offers."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from llmrca.model import ALL_FAULT_TYPES

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Root-cause analysis for LLM inference deployments.")
# Terminal markup is off everywhere: names, paths, hints (``llmrca[torch]``) and
# messages come from data and must print literally.  Styling uses Text objects.
# Messages are not wrapped by rich (soft_wrap): a terminal wraps them at its own width, and piped or
# redirected stderr keeps each message on one line instead of breaking it at rich's default 80 columns.
console = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def _stdout() -> Console:
    """A console on the current stdout (created per call, so test runners capture it), markup off.

    Piped or redirected output (no terminal, no ``COLUMNS``) gets 200 columns instead of rich's 80, so that
    tables written to a file or read by ``grep`` keep their headers and names whole."""
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(markup=False, highlight=False, width=200 if wide else None)


def _error_text(msg: object) -> Text:
    return Text.assemble(("error: ", "bold red"), str(msg))


def _version_cb(value: bool) -> None:
    if value:
        from llmrca import __version__

        typer.echo(f"llmrca {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_version_cb, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Root-cause analysis for LLM inference deployments."""


@app.command("methods")
def methods_cmd(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List every RCA method, whether it can run here, and what to install if not."""
    from llmrca.errors import unavailable_reason
    from llmrca.methods.registry import REGISTRY, list_methods
    from llmrca.reproduce import reference_modes

    rows = list_methods()
    refs = reference_modes([r["name"] for r in rows if r["available"]])
    for r in rows:  # one install hint for the whole project (the torch extra: CPU build first)
        e = REGISTRY[r["name"]]
        if not r["available"]:
            r["reason"] = unavailable_reason(e.requires, e.extra) or r["reason"]
        r["abstain_option"] = _abstain_option(r["name"]) if r["available"] else None
        r["reference_mode"] = refs.get(r["name"])  # what reproduce --as-paper sets (None: no reference mode)
    if as_json:
        typer.echo(_json_text(rows, indent=2))
        return
    out = _stdout()
    cells = {
        "name": lambda r: r["name"], "paper name": lambda r: r["paper_name"], "family": lambda r: r["family"],
        "source": lambda r: r["source"], "needs": lambda r: ", ".join(r["needs"]), "extra": lambda r: r["extra"] or "-",
        "available": lambda r: "yes" if r["available"] else "no", "install": lambda r: r["reason"],
    }  # fmt: skip
    wide = out.width >= 150  # every column readable; a narrower terminal gets the four that fit and a note
    cols = list(cells) if wide else ["name", "paper name", "family", "available"]
    t = Table(title="RCA methods")
    for col in cols:
        t.add_column(col, no_wrap=col in ("name", "paper name"), min_width=18 if col == "name" else None)  # names are copied into --methods
    for r in rows:
        t.add_row(*(cells[c](r) for c in cols))
    out.print(t)
    if not wide:
        for r in rows:
            if not r["available"]:
                out.print(Text(f"{r['name']}: {r['reason']}"), soft_wrap=True)
        out.print(Text(f"(source, needs, extra and install are left out: this terminal is {out.width} columns wide; "
                       "150 columns or `llmrca methods --json` show them)"), soft_wrap=True)
    can = [f"{r['name']} ({_abstain_cell(r['name'], r['abstain_option'])})" for r in rows if r["abstain_option"]]
    _stdout().print(
        Text("can abstain (answer \"no root cause\": right on a healthy case, a miss on a faulty one): "
             + (", ".join(can) or "none") + "; set the option with evaluate/reproduce --set METHOD.OPTION=VALUE"),
        soft_wrap=True,
    )
    ref_rows = [f"{r['name']} ({r['reference_mode']})" for r in rows if r["reference_mode"]]
    none = [r["name"] for r in rows if r["available"] and not r["reference_mode"]]
    _stdout().print(
        Text("reference mode (what reproduce --as-paper sets; reference_mode=...): " + (", ".join(ref_rows) or "none")
             + "; none: " + (", ".join(none) or "-")
             + ". In their reference mode microrca, microscope and monitorrank rank only the components their anomalous"
               " edges reach and causalai only the metrics its test links to time, naming none when nothing is found"
               " (as the paper's code did): a miss on a faulty case, an abstention on a healthy one. microcause's"
               " reference walks from the injected component's own latency (the paper's harness SLI), which evaluate"
               " passes on a labelled case; with rank, name it with --sli"),
        soft_wrap=True,
    )


def _abstain_option(method: str) -> str | None:
    """The config option (``abstain_below``...) through which ``method`` may answer "no root cause", or None."""
    import dataclasses

    from llmrca.methods.registry import method_class

    try:
        cls = method_class(method)
        return next((f.name for f in dataclasses.fields(cls.config_cls) if f.name.startswith("abstain")), None)
    except Exception:  # an unimportable method shows '-'
        return None


def _abstain_cell(method: str, option: str | None) -> str:
    if option is None:
        return "-"
    from llmrca.methods.registry import method_class

    default = getattr(method_class(method).config_cls(), option, None)
    return f"{option}, on: {default}" if default is not None else f"{option}, off by default"


# -- evaluation, ranking, reports, datasets (spine) ------------------------------

_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError, NotADirectoryError, ImportError)


def _inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Is ``path`` ``folder`` or inside it (compared as absolute paths)?"""
    p, f = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return p == f or f in p.parents


def _write_failed(e: OSError, what: str) -> NoReturn:
    """One ``error:`` line for an output that cannot be written (permissions, a read-only or missing place, a full
    disk): names ``what`` (``--out results``) and the file, exit 2."""
    target = f" {e.filename}" if e.filename else ""
    _fail(OSError(f"{what}: cannot write{target} ({e.strerror or e}); choose another place, or fix its permissions"))


def _folder(value: str) -> str:
    """An output folder option's text; an empty one is refused (as '.' it would write into the current folder)."""
    if not str(value).strip():
        raise typer.BadParameter("an empty path names no folder; give the output folder (e.g. --out results)")
    return str(value)


def _folder_path(value: str) -> Path:
    """:func:`_folder` as a Path."""
    return Path(_folder(value))


def _fail(e: BaseException) -> NoReturn:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    console.print(_error_text(msg), soft_wrap=True)
    raise typer.Exit(2)


def _usage_error(msg: str) -> NoReturn:
    """Print one ``error:`` line about a user-supplied file or option and exit 2."""
    console.print(_error_text(msg), soft_wrap=True)
    raise typer.Exit(2)


def _check_component(option: str, item: str, comp: str) -> None:
    from llmrca.names import component_name_problem

    why = component_name_problem(comp)
    if why:
        _usage_error(f"{option} {item!r}: component name {why}")


def _check_readable_file(option: str, path: str, what: str) -> None:
    """Exit 2 unless ``path`` is an existing regular file this process can open for reading."""
    p = Path(path)
    if not p.exists():
        _usage_error(f"{option}: {what} {path} does not exist; fix the path")
    if not p.is_file():
        _usage_error(f"{option}: {what} {path} is not a regular file; give the path of a file")
    try:
        with p.open("rb"):
            pass
    except OSError as e:
        _usage_error(f"{option}: cannot read {what} {path} ({e.strerror or e}); check its permissions")


def _check_writable_file(option: str, path: str) -> None:
    """Exit 2 unless ``path`` can be created or overwritten (its folder exists and is writable, it is no folder)."""
    import os

    p = Path(path)
    if p.is_dir():
        _usage_error(f"{option}: {path} is a folder; give a file path")
    parent = p.parent
    if not parent.is_dir():
        _usage_error(f"{option}: folder {parent} of {path} does not exist; create it or give another path")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        _usage_error(f"{option}: cannot write {path} (permission denied); give a path you can write to")


_SELECTOR_HINT = "quote each selector in the YAML, e.g. ray-worker-1: 'pod=~\"ray-worker-1.*\"'"


def _read_components(path: str) -> dict[str, str]:
    """Read ``--components``: a YAML mapping of component name -> non-empty PromQL label selector (a string).

    Exits 2 with one line (file, what is wrong, how to fix it) on a missing or
    unreadable file, YAML syntax errors, a value that is not a string (an
    unquoted ``{pod=~"x"}`` parses as a YAML mapping) and invalid component names.
    """
    import yaml

    from llmrca.names import component_name_problem, shown

    _check_readable_file("--components", path, "components file")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        _usage_error(f"--components: cannot read {path} as UTF-8 text ({e}); give a YAML file")
    try:
        comps = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        _usage_error(f"--components: {path}{where} is not valid YAML ({problem}); {_SELECTOR_HINT}")
    if not isinstance(comps, dict) or not comps:
        got = "empty" if not comps else f"a {type(comps).__name__}"
        _usage_error(f"--components: {path} must map component names to label selectors (it is {got}); {_SELECTOR_HINT}")
    out: dict[str, str] = {}
    for name, sel in comps.items():
        why = component_name_problem(name)
        if why:
            _usage_error(f"--components: {path}: component name {why}")
        if isinstance(sel, dict):
            _usage_error(
                f"--components: {path}: the selector of {name!r} was read as a YAML mapping ({shown(sel)}), "
                f"not a string; {_SELECTOR_HINT}"
            )
        if not isinstance(sel, str) or not sel.strip():
            _usage_error(
                f"--components: {path}: the selector of {name!r} is {shown(sel)}, not a non-empty string; {_SELECTOR_HINT}"
            )
        out[name] = sel.strip()
    return out


def _parse_sets(sets: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """``--set key=value`` items -> dict, raising ConfigError (never a YAML traceback) on a bad value."""
    import yaml

    from llmrca.config import ConfigError, parse_overrides

    try:
        return parse_overrides(sets)
    except yaml.YAMLError as e:
        bad = []
        for item in sets or []:
            try:
                yaml.safe_load(item.partition("=")[2])
            except yaml.YAMLError:
                bad.append(item)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(
            f"{option} {bad[0] if bad else ''!r}: the value is not valid YAML ({problem}); quote it, e.g. {option} 'key=\"text\"'"
        ) from None


def _parse_method_sets(items: list[str] | None, option: str = "--set") -> dict[str, dict[str, Any]]:
    """``--set METHOD.option=VALUE`` items -> ``{method: {option: value}}`` (values read as YAML).

    Raises ConfigError for an item without ``METHOD.`` or ``=``; unknown methods and options are
    refused by the evaluator before any run (:func:`llmrca.evaluate.runner.full_config`).
    """
    from llmrca.config import ConfigError

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        method, dot, opt = key.strip().partition(".")
        if not sep or not dot or not method.strip() or not opt.strip():
            k, colon, v = item.partition(":")
            hint = f"; did you mean '{k.strip()}={v.strip()}'?" if colon and not sep and "." in k else ""
            raise ConfigError(f"{option} {item!r} is not METHOD.option=VALUE{hint}; e.g. {option} nsigma.abstain_below=3")
        out.setdefault(method.strip(), {}).update(_parse_sets([f"{opt.strip()}={raw}"], option))
    return out


def _finite(obj: Any) -> Any:
    """``obj`` with every float that is not finite (inf, NaN) as None, recursively (dicts, lists, tuples)."""
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _json_text(obj: Any, **kwargs: Any) -> str:
    """JSON for stdout that a strict parser reads: a value that is not finite (JSON has no Infinity or NaN) is null."""
    return json.dumps(_finite(obj), allow_nan=False, **kwargs)


def _split_methods(methods: str) -> list[str]:
    return [m.strip() for m in methods.split(",") if m.strip()]


@app.command("evaluate")
def evaluate_cmd(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (cases as <component>_<fault>/<rep>/).")],
    methods: Annotated[str, typer.Option("--methods", "-m", help="Comma-separated method names, or 'all'.")] = "all",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (or Ray tasks) in parallel.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per (method, case) run before it is killed.")] = 300.0,
    out: Annotated[Path, typer.Option("--out", "-o", parser=_folder_path, help="Output folder (default results/eval: the evaluation part of a reproduce folder).")] = Path("results/eval"),
    metric_set: Annotated[str | None, typer.Option("--metric-set", help="Force one metric set for every method: basic or extended.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="process (this machine) or ray (a Ray cluster).")] = "process",
    random_on_failure: Annotated[bool, typer.Option("--random-on-failure", help="Score failed/timed-out runs on a seeded random ranking, as the paper did (counted).")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Start over instead of skipping runs already in results.jsonl.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Move earlier outputs in --out to --out/previous/<time>/ and start over (e.g. another dataset's results).")] = False,
    retry: Annotated[str | None, typer.Option("--retry", help="Re-run stored runs with these statuses: any of failed,timeout,invalid_case,unavailable.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    sli: Annotated[str | None, typer.Option("--sli", help="Service-level-indicator column for the methods that read one, the graph and causal families (default: the entry's latency; MicroCause's reference mode: the injected component's latency, as the paper's harness). Reported as a non-default option.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="A method option METHOD.option=VALUE, e.g. nsigma.abstain_below=3, or microrca.reference_mode=rcaeval for the implementation the paper ran (`llmrca methods` lists them; repeatable; reported as non-default).")] = None,
) -> None:
    """Evaluate RCA methods on a dataset: AC@k, Avg@k, Table 1, misattribution."""
    from llmrca.evaluate import run_evaluation

    try:
        res = run_evaluation(
            dataset,
            _split_methods(methods),
            out,
            jobs=jobs,
            timeout_s=timeout,
            metric_set=metric_set,
            engine=engine,
            random_on_failure=random_on_failure,
            resume=not no_resume,
            fresh=fresh,
            retry=retry,
            progress=not quiet,
            sli=sli,
            method_configs=_parse_method_sets(set_) or None,
        )
    except _USER_ERRORS as e:
        _fail(e)
    except KeyboardInterrupt:
        _interrupted(Path(out))
    for note in res.notes:
        console.print(Text.assemble(("note: ", "yellow"), str(note)), soft_wrap=True)
    _print_summary(res.summary, res.status, res.counts, res.out, res.new_runs, res.skipped_runs, results=res.results, dataset=dataset)
    from llmrca.evaluate.results import STATUSES

    st = res.status
    if not st.empty and int(st["invalid_case"].sum()) and not int(st[list(STATUSES)].to_numpy().sum()):
        # nothing was evaluated: every run is on an invalid case (a script must not read this as a result)
        console.print(_error_text(f"every case of {dataset} is invalid, so no method was evaluated; "
                                  f"`llmrca dataset validate {dataset}` lists why"), soft_wrap=True)
        raise typer.Exit(1)
    if not st.empty and int(st["unavailable"].sum()) and not int(st[["ok", "failed", "timeout"]].to_numpy().sum()):
        # nothing was scored: every method lacked its input on every readable case (the notes above say why)
        console.print(_error_text(f"no run could be scored: every run of {', '.join(st['method'].astype(str))} on {dataset} was "
                                  "unavailable (the case lacks the method's input; the notes above say which)"), soft_wrap=True)
        raise typer.Exit(1)
    typer.echo(f"REPORT.md and REPORT.html: llmrca report {out}")


def _print_invalid_cases(results: Any, dataset: Path, shown: int = 3) -> None:
    """Why the first ``shown`` invalid cases were skipped (the reader's first problem of each), and where to read all."""
    if results.empty or "error_kind" not in results:
        return
    bad = results[results["error_kind"] == "invalid_case"].drop_duplicates("case")
    if bad.empty:
        return
    for r in bad.head(shown).itertuples():
        why = re.sub(r"^invalid case .*?: ", "", str(r.error or ""), count=1)  # the case is named at the line's start
        typer.echo(f"  {r.case}: {why if len(why) <= 300 else why[:299] + '…'}")
    more = f"… and {len(bad) - shown} more; " if len(bad) > shown else ""
    typer.echo(f"  {more}every problem of every case: llmrca dataset validate {dataset}")


def _print_summary(summary: Any, status: Any, counts: dict[str, int], out: Path, new: int, skipped: int, *, ran: bool = True,
                   results: Any = None, dataset: Path | None = None) -> None:
    """Print the best-methods table and the run counts; ``ran=False`` (``report``: nothing run) says the runs were read."""
    from llmrca.model import NO_FAULT

    healthy = summary[summary["fault"] == NO_FAULT].set_index("method") if "fault" in summary else summary.iloc[0:0]
    overall = summary[summary["fault"] == "all"].sort_values(["ac@1", "avg@5"], ascending=False)

    def fa(method: str) -> tuple[str, str]:
        if method not in healthy.index:
            return "–", "0"
        r = healthy.loc[method]
        return ("–" if r["false_alarm"] != r["false_alarm"] else f"{r['false_alarm']:.2f}"), str(int(r["n"]))

    if len(overall) or healthy.empty:
        t = Table(title="Best methods (all faults" + (", false alarms on the healthy cases)" if len(healthy) else ")"))
        cols = ["method", "n", "AC@1", "AC@3", "Avg@5"] + (["False alarm", "healthy n"] if len(healthy) else [])
        for col in cols:
            t.add_column(col, justify="right" if col != "method" else "left")
        for _, r in overall.head(5).iterrows():
            extra = list(fa(str(r["method"]))) if len(healthy) else []
            t.add_row(str(r["method"]), str(int(r["n"])), f"{r['ac@1']:.2f}", f"{r['ac@3']:.2f}", f"{r['avg@5']:.2f}", *extra)
    else:  # healthy cases only: nothing to rank, the false-alarm rate is the score (lower is better)
        t = Table(title="False alarms", caption="healthy cases only (nothing to rank): share where the method named a root cause, lower is better")
        for col in ("method", "False alarm", "healthy n"):
            t.add_column(col, justify="right" if col != "method" else "left")
        order = healthy.assign(_fa=healthy["false_alarm"].fillna(2.0)).sort_values("_fa", kind="stable")
        for m in order.index[:10]:
            t.add_row(str(m), *fa(str(m)))
    _stdout().print(t)
    line = ", ".join(f"{k} {v}" for k, v in counts.items())
    typer.echo(f"runs: {line} ({new} run now, {skipped} resumed from results.jsonl)" if ran
               else f"runs: {line} ({skipped} read from results.jsonl)")
    if not status.empty and int(status["fallbacks"].sum()):
        typer.echo("random-on-failure fallbacks: " + ", ".join(f"{r.method} {int(r.fallbacks)}" for r in status.itertuples() if r.fallbacks))
    if not status.empty and int(status["invalid_case"].sum()):
        typer.echo(f"invalid cases skipped: {int(status['invalid_case'].max())} (see results.jsonl, error_kind=invalid_case)")
        if results is not None and dataset is not None:
            _print_invalid_cases(results, dataset)
    typer.echo(f"outputs: {out}/ (summary.csv, table1.md/.csv/.tex, misattribution.png, results.jsonl, run.json)")


def _rank_json_failure(case_dir: Path, method: str, e: BaseException, *, method_failed: bool = False) -> None:
    """Print ``rank --json``'s answer when no ranking was made: ``status`` "failed" and ``error_kind`` in the
    evaluator's words (``invalid_case`` for a case that cannot be read, ``usage`` for a bad option or path, the
    exception's name when the method itself failed), ``error``, and the case's ``problems`` one by one."""
    from llmrca.errors import MethodUnavailable, MissingDependency
    from llmrca.evaluate.results import INVALID_CASE
    from llmrca.model import CaseValidationError

    status = "failed"
    if method_failed:
        kind, msg = type(e).__name__, f"{type(e).__name__}: {e}"
    elif isinstance(e, MethodUnavailable | MissingDependency):  # as the evaluator records it: the case lacks the input
        status, kind, msg = "unavailable", type(e).__name__, str(e)
    else:
        kind = INVALID_CASE if isinstance(e, CaseValidationError) and os.path.lexists(case_dir) else "usage"
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    problems = list(e.problems) if isinstance(e, CaseValidationError) else []
    where = case_dir.resolve()
    name = f"{where.parent.name}/{where.name}"  # as a ranking names it
    typer.echo(_json_text({"case": name, "method": method, "status": status, "error_kind": kind, "error": msg,
                           "problems": problems, "case_warnings": _case_warnings(case_dir) if kind != INVALID_CASE else []},
                          indent=2, default=str))


def _case_warnings(case_dir: Path) -> list[str]:
    """What the reader warns about the case at ``case_dir`` (a copy not read, logs not used, ...), [] when it
    cannot be read: said with a failure, where such a warning may be the reason (traces that could not be used)."""
    from llmrca.dataset.io import read_case, warning_lines

    try:
        return warning_lines(read_case(case_dir, validate=False).meta.get("normalised"))
    except Exception:  # the failure itself is what is reported
        return []


def _log_options(logs: list[str]) -> dict[str, str]:
    """``--log COMPONENT=PATH`` (repeatable) of watch and audit: each an existing readable file (a usage error otherwise)."""
    log_files: dict[str, str] = {}
    for x in logs:
        name, eq, path = x.partition("=")
        if not eq or not name.strip() or not path.strip():
            _usage_error(f"--log {x!r}: use COMPONENT=PATH")
        _check_component("--log", x, name.strip())
        _check_readable_file("--log", path.strip(), "log file")
        log_files[name.strip()] = path.strip()
    return log_files


def _gpu_options(gpus: list[str] | None, gpu_join: str | None) -> dict[str, str]:
    """``--gpu component=selector`` (repeatable) as a mapping, and ``--gpu-join`` checked; a malformed one is a usage error."""
    gpu_selectors: dict[str, str] = {}
    for item in gpus or ():
        comp, sep, sel = item.partition("=")
        if not sep or not comp.strip() or not sel.strip():
            _usage_error(f"--gpu {item!r} must be component=selector, e.g. ray-worker-1='UUID=\"GPU-...\"'")
        _check_component("--gpu", item, comp.strip())
        gpu_selectors[comp.strip()] = sel.strip()
    if gpu_join is not None:
        from llmrca.collect import GpuJoin

        try:
            GpuJoin.parse(gpu_join)
        except ValueError as e:
            _usage_error(f"--gpu-join: {e}")
    return gpu_selectors


_GPU_HELP = "component=selector of its GPUs in the DCGM series, e.g. ray-worker-1='Hostname=\"n1\",gpu=\"0\"' (repeatable)."
_GPU_JOIN_HELP = "Map components to GPUs via SERIES:LABEL=DCGM_LABEL, e.g. kube_pod_info:node=Hostname (DCGM series without pod labels)."


@app.command("rank")
def rank_cmd(
    case_dir: Annotated[Path, typer.Argument(help="One case folder (data.csv, inject_time.txt, ...).")],
    method: Annotated[str, typer.Option("--method", "-m", help="Method name (see `llmrca methods`).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config override key=value, or METHOD.key=value as evaluate takes it (repeatable).")] = None,
    metric_set: Annotated[str | None, typer.Option("--metric-set", help="basic or extended (default: the method's own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    sli: Annotated[str | None, typer.Option("--sli", help="Service-level-indicator column for the methods that read one, the graph and causal families (default: the entry's latency; MicroCause's reference mode needs it: the paper's harness used the injected component's latency).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress spinner.")] = False,
) -> None:
    """Rank one case's components with one method, and explain the answer (the method never sees the ground truth)."""
    from llmrca.config import ConfigError
    from llmrca.errors import LlmrcaError
    from llmrca.evaluate.single import rank_case
    from llmrca.model import CaseValidationError
    from llmrca.report.explain import explanation_lines

    # evaluate's form METHOD.key=value is taken too when it names this method; another method's option is refused
    sets = []
    for x in set_ or []:
        key = x.split("=", 1)[0].strip()
        owner = key.partition(".")[0] if "." in key else None
        if "=" not in x or not key or key.startswith(".") or key.endswith("."):  # named as typed (the METHOD. prefix is taken off below)
            k, colon, v = x.partition(":")
            hint = f"; did you mean '{k.strip()}={v.strip()}'?" if colon and k.strip() else ""
            err = ConfigError(f"--set {x!r} is not key=value (or {method}.key=value){hint}")
            if as_json:
                _rank_json_failure(case_dir, method, err)
            _fail(err)
        if owner is not None and owner != method:
            err = ValueError(f"--set {x}: an option of {owner}; rank runs only --method {method} (its options: key=value "
                             f"or {method}.key=value)")
            if as_json:
                _rank_json_failure(case_dir, method, err)
            _fail(err)
        sets.append(x.replace(f"{method}.", "", 1) if owner == method else x)
    try:
        with _spinner(f"{method} ranking {case_dir}", quiet):
            outcome = rank_case(case_dir, method, _parse_sets(sets), metric_set=metric_set, sli=sli)
    except (*_USER_ERRORS, LlmrcaError) as e:
        if as_json:  # a script reading stdout gets the reason too (the error line still goes to stderr)
            _rank_json_failure(case_dir, method, e)
        elif not isinstance(e, CaseValidationError):  # the case's warnings may say why (traces that could not be used)
            for w in _case_warnings(case_dir):
                console.print(Text.assemble(("warning: ", "yellow"), w), soft_wrap=True)
        _fail(e)
    except Exception as e:  # the method itself failed on this case (the evaluator records such a run as failed)
        from llmrca.evaluate.single import MethodFailed

        e = e.original if isinstance(e, MethodFailed) else e  # type: ignore[assignment]
        if as_json:
            _rank_json_failure(case_dir, method, e, method_failed=True)
        console.print(_error_text(f"{method} failed on {case_dir}: {type(e).__name__}: {e}"), soft_wrap=True)
        raise typer.Exit(1) from None
    from llmrca.evaluate.task import sli_ignored

    ignored = sli_ignored([method], sli)
    if ignored is not None:
        console.print(Text.assemble(("note: ", "yellow"), ignored), soft_wrap=True)
    from llmrca.dataset.io import is_warning_note

    read_notes = [str(n) for n in (outcome.case.meta or {}).get("normalised") or []]
    for n in dict.fromkeys(n for n in read_notes if is_warning_note(n)):
        console.print(Text.assemble(("warning: ", "yellow"), n.removeprefix("warning: ")), soft_wrap=True)
    repairs = [n for n in read_notes if not is_warning_note(n)]
    if repairs:  # what the reader changed to read this case (dataset validate lists the same)
        console.print(Text.assemble(("note: ", "yellow"), f"{case_dir} was read with {len(repairs)} repair(s): {repairs[0]}"
                                    + (f" (and {len(repairs) - 1} more: `llmrca dataset validate {case_dir}` lists them)" if len(repairs) > 1 else "")),
                      soft_wrap=True)
    if outcome.warnings:  # one line instead of the library's own, which can run to hundreds
        said = "; ".join(f"{k} ×{v['n']} (most often: {next(iter(v['messages']))})" for k, v in outcome.warnings.items())
        console.print(Text(f"note: {method} raised library warnings: {said}" + ("" if as_json else "; all of them in --json"), style="yellow"), soft_wrap=True)
    if as_json:
        typer.echo(_json_text(outcome.to_dict(), indent=2, default=str))
        return
    folder = f"{case_dir.resolve().parent.name}/{case_dir.resolve().name}"  # as a dataset names its cases
    given = str(outcome.case.name or "")
    # the case's own name when it tells more than the folder (not the folder again, nor a placeholder such as 'case')
    named = folder if given in ("", "case", folder, case_dir.resolve().name) else f"{folder} (case {given})"
    from llmrca.methods.registry import REGISTRY

    read = "traces" if method in REGISTRY and REGISTRY[method].family == "trace" else f"{outcome.metric_set} metrics"  # what it ranked from
    t = Table(title=f"{method} on {named} ({read}, {outcome.duration_s:.2f} s)")
    for col in ("rank", "component", "score", "top metric"):
        t.add_column(col)
    best_metric: dict[str, str] = {}
    for m, _ in outcome.ranking.metrics or []:
        best_metric.setdefault(m.partition("_")[0], m)
    truth = outcome.case.root_causes
    from llmrca.evaluate.metrics import _same

    sc_all = list(outcome.ranking.scores)
    for i, (c, sc) in enumerate(zip(outcome.ranking.components, sc_all, strict=True), 1):
        tied = (i > 1 and _same(sc_all[i - 2], sc)) or (i < len(sc_all) and _same(sc_all[i], sc))
        t.add_row(str(i), Text.assemble((c, "bold"), " (root cause)") if c in truth else c, f"{sc:.4g}" + (" (tie)" if tied else ""),
                  best_metric.get(c, ""))
    _stdout().print(t)
    for root, pos in outcome.truth_positions().items():
        typer.echo(f"true root cause {root}: " + (f"ranked #{pos} of {len(outcome.ranking.components)}" if pos else "not in the ranking"))
    if outcome.ranking.abstained:
        conf = outcome.ranking.confidence
        why = (outcome.ranking.explanation or {}).get("named_nothing_because")
        typer.echo("answer: no root cause (the method abstained" + (f", confidence {conf:.3g}" if conf is not None else "")
                   + (f": {why})" if why else ")"))
    typer.echo(f"verdict: {outcome.verdict()}")
    lines = explanation_lines(outcome.ranking.explanation)
    typer.echo("explanation:" if lines else f"explanation: {method} gives none beyond the scores above")
    for line in lines:
        typer.echo(f"  {line}")


def _spinner(label: str, quiet: bool = False) -> Any:
    """A spinner with elapsed time on stderr while a slow step runs (nothing if ``quiet``)."""
    from llmrca.progress import spinner

    return spinner(label, enabled=not quiet)


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Argument(help="A reproduce folder (holds eval/results.jsonl) or an evaluation folder (holds results.jsonl).")],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only where the report was written.")] = False,
) -> None:
    """Regenerate summary.csv, Table 1, the figures, REPORT.md and REPORT.html from results.jsonl."""
    from llmrca.report.document import write_documents

    try:
        doc = write_documents(out)
    except PermissionError as e:  # the results were read; the report files cannot be written there
        _write_failed(e, f"the report into {out}")
    except _USER_ERRORS as e:
        _fail(e)
    if quiet:
        typer.echo(f"report: {doc.markdown} and {doc.html}")
        return
    rep = doc.report
    for n in rep.notes:
        console.print(Text.assemble(("note: ", "yellow"), n), soft_wrap=True)
    counts = {s: int(rep.status[s].sum()) for s in ("ok", "failed", "timeout", "unavailable")} if not rep.status.empty else {}
    _print_summary(rep.summary, rep.status, counts, rep.out, 0, len(rep.results), ran=False)
    typer.echo(f"report: {doc.markdown} and {doc.html}")


@app.command("fidelity")
def fidelity_cmd(
    path: Annotated[Path, typer.Argument(help="An evaluation folder, a reproduce folder, or a summary.csv.")],
    boot: Annotated[int, typer.Option("--boot", help="Bootstrap resamples of the cases for the 95 % interval (0: none).")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Agreement with the paper: Spearman's ρ between this evaluation's Table 1 and the paper's, per fault and overall."""
    from llmrca.report.fidelity import fidelity_of

    if boot < 0:
        _fail(ValueError(f"--boot must be >= 0, got {boot}"))
    try:
        fid = fidelity_of(path, n_boot=boot, seed=seed)
    except _USER_ERRORS as e:
        _fail(e)
    problem = fid.problem()
    if problem is not None:  # refused first, alone: warnings about numbers not shown would only confuse
        if as_json:  # the answer on stdout says why too (rho all null), exit 2 as without --json; the warnings on stderr
            for w in fid.warnings():
                console.print(Text(w, style="yellow"), soft_wrap=True)
            typer.echo(_json_text({"status": "failed", "error_kind": "usage", "error": problem, **fid.to_dict()}, indent=2))
        _fail(ValueError(problem))
    for w in fid.warnings():  # they say what was run (e.g. non-default options)
        console.print(Text(w, style="yellow"), soft_wrap=True)
    if as_json:
        typer.echo(_json_text(fid.to_dict(), indent=2))
        return
    typer.echo(f"Agreement with the paper's Table 1: Spearman's ρ between these runs' per-(method, fault) AC@1 / Avg@5 and "
               f"the paper's ({len(fid.methods)} methods; left out: {', '.join(fid.left_out.get('data_blind', [])) or 'none'}):")
    if fid.other_faults:
        typer.echo(f"  fault types not compared (the paper's Table 1 has no column for them): {', '.join(fid.other_faults)}")
    modes = ", ".join(f"{m} {v}" for m, v in fid.reference_modes.items())
    if not fid.mode_recorded:
        typer.echo("  mode: not recorded (a summary without the results.jsonl of its runs; no interval either)")
    elif fid.reference_modes and fid.random_on_failure:
        typer.echo(f"  mode: as the paper ran them (reference modes: {modes}; the other methods as published; failed runs scored as random)")
    elif fid.reference_modes:
        typer.echo(f"  mode: reference modes for {modes}, the other methods as published; failed runs count as misses "
                   "(the paper scored them on a random ranking: `reproduce --as-paper` does both)")
    else:
        typer.echo("  mode: every method as published (default; `reproduce --as-paper` runs the reference modes)"
                   + ("; failed runs scored as random" if fid.random_on_failure else ""))
    for line in fid.lines():
        typer.echo("  " + line)
    if fid.n_boot and fid.table["lo"].notna().any():
        typer.echo(f"  [lo, hi]: 95 % interval of {fid.n_boot} bootstrap resamples of the cases; it usually leans below the estimate "
                   "(a resample repeats some cases and drops others: noisier cells, smaller ρ) and, with few cases, need not hold it "
                   "in its middle, so read it as the spread")
    if fid.mostly_random:
        typer.echo("  scored mostly on the random ranking (at least half of their runs failed): " + ", ".join(fid.mostly_random)
                   + "; their cells measure the fallback, not the method")
    if (fid.table["rho"].isna() & (fid.table["n"] > 0)).any():  # a scope without cases says "not computed" itself
        from llmrca.report.fidelity import NAN_NOTE

        typer.echo("  " + NAN_NOTE)
    if fid.left_out.get("not_run"):
        typer.echo("  not evaluated here: " + ", ".join(fid.left_out["not_run"]))
    if fid.left_out.get("not_in_paper"):
        typer.echo("  not compared (no row in the paper's Table 1): " + ", ".join(fid.left_out["not_in_paper"]))


class _CaseProgress:
    """A progress bar (stderr) fed by ``on_case(done, total)`` callbacks."""

    def __init__(self, label: str) -> None:
        from llmrca.progress import progress_bar

        self._cm = progress_bar(label, None)
        self._bar: Any = None

    def __enter__(self) -> _CaseProgress:
        self._bar = self._cm.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        self._bar.update(completed=done, total=total)


dataset_app = typer.Typer(no_args_is_help=True, help="Check and import datasets.")
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("validate")
def dataset_validate_cmd(
    path: Annotated[Path, typer.Argument(help="Dataset folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check every case; list the problems of each bad one (exit code 1 if any, also when the folder holds no case;
    2 when the path does not exist or is no folder)."""
    from llmrca.dataset.validate import validate_dataset

    try:
        with _CaseProgress("validating") as bar:
            check = validate_dataset(path, on_case=bar)
    except _USER_ERRORS as e:
        if as_json:
            typer.echo(_json_text({"status": "failed", "error": str(e)}, indent=2))
        _fail(e)
    if as_json:
        typer.echo(_json_text(check.to_dict(), indent=2))
        raise typer.Exit(0 if check.ok else 1)
    for cid, notes in check.notes.items():
        typer.echo(f"{cid}: repaired")
        for n in notes:
            typer.echo(f"  * {n}")
    for cid, warns in check.warnings.items():
        for w in warns:
            typer.echo(f"{cid}: warning: {w}")
    for cid, probs in check.problems.items():
        typer.echo(f"{cid}:")
        for p in probs:
            typer.echo(f"  - {p}")
    if check.recorded:
        typer.echo(f"{len(check.recorded)} case(s) were repaired when imported (listed in each case.json 'normalised')")
    typer.echo(f"{len(check.valid)} valid case(s), {len(check.problems)} with problems")
    raise typer.Exit(0 if check.ok else 1)


def _metrics_header(case_dir: Path) -> tuple[Path | None, list[str]]:
    """The plain metrics CSV of a case folder (``data.csv`` or RCAEval's ``simple_metrics.csv`` / ``metrics.csv``)
    and its column names, read from its first line only; ``(None, [])`` when there is none or it cannot be read."""
    import csv

    from llmrca.dataset.safe_io import open_regular

    for name in ("data.csv", "simple_metrics.csv", "metrics.csv"):
        f = case_dir / name
        if f.is_file():
            try:  # the dataset layer's guarded reader: a regular file inside the case, a bounded line
                with open_regular(f, "metric file", root=case_dir) as fh:
                    head = fh.readline(1 << 20).decode("utf-8", "replace").removeprefix("\ufeff")
            except Exception:  # any reading problem is validate's to report; there is then no header to show
                return None, []
            sep = ";" if head.count(";") > head.count(",") else ","
            return f, [c.strip() for c in next(csv.reader([head], delimiter=sep), [])]
    return None, []


@dataset_app.command("describe")
def dataset_describe_cmd(
    path: Annotated[Path, typer.Argument(help="A case folder or a dataset folder (its first case is read unless --cases says more).")],
    cases: Annotated[int, typer.Option("--cases", help="How many cases to read (the union of their columns).")] = 1,
    metric_set: Annotated[str | None, typer.Option("--metric-set", help="basic or extended (default: every set the case has).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What each column means: its kind and unit per the metric vocabulary, and the columns no kind matches."""
    from llmrca.dataset.io import Dataset
    from llmrca.model import CaseValidationError
    from llmrca.telemetry.vocabulary import KINDS, describe

    skipped: list[str] = []  # cases that could not be read ("<case>: <first problem>"): described without them, said
    fallback = ""  # when none could be: whose header is described
    try:
        ds = Dataset(path)
        every = ds.case_dirs()
        if not every:
            from llmrca.dataset.validate import nothing_readable

            raise FileNotFoundError(f"{nothing_readable(path)}; pass a case folder or a dataset folder (see docs/dataset.md)")
        cols: dict[str, None] = {}
        dirs: list[Path] = []
        for d in every:
            if len(dirs) >= max(1, cases) or len(skipped) >= 20:
                break
            try:
                case = ds.load(d)
            except CaseValidationError as e:  # another case may be fine; its problems are validate's to list
                skipped.append(f"{ds.case_id(d)}: {e.problems[0] if e.problems else e}")
                continue
            dirs.append(d)
            sets = [metric_set] if metric_set else list(case.metric_sets)
            for name in sets:
                cols.update(dict.fromkeys(str(c) for c in case.with_metric_set(name).metrics.columns))
        if not dirs:  # no case readable: the header of the first one still says how its columns are read
            from llmrca.names import series_columns

            header_file, header = _metrics_header(every[0])
            renames, _ = series_columns(header)  # named as reading the case would name them
            cols = dict.fromkeys(renames.get(c, c) for c in header)
            if not cols:
                raise CaseValidationError([f"no case could be read ({skipped[0]}); `llmrca dataset validate {path}` lists why"])
            fallback = f"no case could be read: the columns are those of {header_file}'s header"
    except (*_USER_ERRORS, CaseValidationError) as e:
        if as_json:
            typer.echo(_json_text({"status": "failed", "error": str(e)}, indent=2))
        _fail(e)
    desc = describe(cols)
    for n in [*(f"not described: {n}" for n in skipped), *([fallback] if fallback else [])]:
        console.print(Text.assemble(("note: ", "yellow"), n), soft_wrap=True)
    if as_json:
        typer.echo(_json_text({**desc.to_dict(), "skipped": [*skipped, *([fallback] if fallback else [])]}, indent=2))
        return
    t = Table(title=Text(f"metric vocabulary: {len(cols) - ('time' in cols)} columns of {len(dirs)} case(s) under {path}"))
    for col in ("kind", "unit", "group", "columns", "e.g."):
        t.add_column(col)
    for kind, members in desc.kinds.items():
        k = KINDS[kind]
        t.add_row(kind, k.unit, k.group, str(len(members)), Text(members[0].partition("_")[2]))
    _stdout().print(t)
    shares = sorted({c.metric for c in desc.columns if c.kind and c.unit in ("fraction", "%") and KINDS[c.kind].unit == "1/s"})
    units = sorted({(c.metric, c.unit, c.factor) for c in desc.columns if c.kind and c.factor != 1.0 and c.metric not in shares})
    for metric, unit, f in units:
        typer.echo(f"unit: {metric} is read in {unit} (x{f:g} to the kind's unit)")
    for metric in shares:  # a share of requests kept as a share: its level is not per second, its changes still count
        typer.echo(f"unit: {metric} is a share of requests (0..1), not per second; read as such beside the per-second rates")
    counters = sorted({c.metric for c in desc.columns if c.counter})
    for metric in counters:
        typer.echo(f"counter: {metric} is cumulative; llm-rca reads it as its per-second rate (counter resets handled as rate() does)")
    if counters:  # the baselines take every column as it is (as RCAEval's code does): said, not hidden behind the line above
        typer.echo("counter: the paper's baselines read every column as it is: a cumulative counter rises all the time and its "
                   "reset looks like an anomaly to them; export rates (PromQL rate()) for a fair comparison")
    typer.echo(f"components: {len(desc.components)}; mapped columns: {sum(len(v) for v in desc.kinds.values())}; unmapped: {len(desc.unmapped)}")
    if metric_set in (None, "basic") and _artifact_basic_set(ds, path):
        typer.echo("note: this simulated dataset's basic set (data.csv) holds the paper exporter's queries, so three of its "
                   "columns are not in the units above: mem = rate(container_memory_working_set_bytes[1m]) / 1000 (kB/s; a "
                   "fall of the working set reads as a counter reset, which adds the whole set: about set / 30 s / 1000), "
                   "net-tx = (rate(container_network_transmit_packets_total[1m]) / 1000)² ((thousand packets/s)²), "
                   "latency-90 = the sum of the p90 of every mesh edge the component is on, each counted twice (as source "
                   "and as destination; s); cpu is cores as above (a rate over Prometheus' 30-s scrapes). The extended set "
                   "(data_extended.csv) reads them directly (docs/simulator.md)")
    if desc.unmapped:
        typer.echo("unmapped (methods still use them as plain series; llm-rca, the SLI choice and heal do not): " + ", ".join(desc.unmapped[:40]) + (" ..." if len(desc.unmapped) > 40 else ""))


def _artifact_basic_set(ds: Any, path: Path) -> bool:
    """Whether the simulated dataset at ``path`` (or the one its case folder belongs to) has the artifact's basic set."""
    from llmrca.campaign import campaign_manifest

    manifest = ds.manifest or next((m for p in (path, *path.parents[:2]) if (m := campaign_manifest(p))), {})
    sim = (manifest.get("parameters") or {}).get("sim") or {}
    return manifest.get("backend") == "sim" and sim.get("basic_queries", "artifact") == "artifact"


@dataset_app.command("import")
def dataset_import_cmd(
    src: Annotated[Path, typer.Argument(help="A plain RCAEval / rca-llm tree (<component>_<fault>/<rep>/data.csv).")],
    dst: Annotated[Path, typer.Argument(help="Empty destination folder.")],
) -> None:
    """Copy a tree adding case.json (truth from folder names) and dataset.json."""
    from llmrca.dataset.validate import import_tree

    try:
        with _CaseProgress("importing") as bar:
            rep = import_tree(src, dst, on_case=bar)
    except _USER_ERRORS as e:
        _fail(e)
    from llmrca.dataset.io import is_warning_note

    for cid, notes in rep.notes.items():
        for n in notes:
            if is_warning_note(n):
                typer.echo(f"{cid}: {n}")
        repairs = [n for n in notes if not is_warning_note(n)]
        if repairs:
            typer.echo(f"{cid}: repaired (recorded in case.json 'normalised')")
        for n in repairs:
            typer.echo(f"  * {n}")
    for cid, kept in rep.kept.items():
        for n in kept:
            typer.echo(f"{cid}: {n}")
    for cid, probs in rep.problems.items():
        typer.echo(f"skipped {cid}: " + "; ".join(probs))
    typer.echo(f"imported {len(rep.imported)} case(s) into {rep.dst}; skipped {len(rep.problems)}")
    raise typer.Exit(0 if rep.ok else 1)

@app.command("campaign")
def campaign_cmd(
    backend: str = typer.Option("sim", "--backend", help="Testbed backend: sim (simulated stack), local (real processes; needs root) or k8s (a cluster; docs/k8s.md)."),
    profile: str = typer.Option("quick", "--profile", help="quick (12 cases), paper (120 cases), extended (every fault type on every component it applies to, plus healthy cases; 161 cases), local (12 cases, local testbed) or local-extended (every fault type on 2 workers plus 2 healthy cases; 22 cases, local testbed)."),
    seed: int = typer.Option(0, "--seed", help="Campaign seed; every case's seed derives from it."),
    out: str = typer.Option(..., "--out", parser=_folder, help="Dataset folder to create (must be new or empty)."),
    workers: int | None = typer.Option(None, "--workers", help="Ray worker pods (the head hosts one more replica)."),
    qps: float | None = typer.Option(None, "--qps", help="Offered load, queries per second."),
    sets: list[str] = typer.Option([], "--set", help="fault.<type>.<param>=V or sim.<option>=V, e.g. fault.cpu.workers=8."),  # noqa: B008
    scrape_interval: float | None = typer.Option(None, "--scrape-interval", help="Seconds between scrapes (default 5)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    resume: bool = typer.Option(False, "--resume", help="Finish the campaign already in --out (same backend, profile, seed; --healthy, if given, must match: default the number it was started with)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="k8s: allow a non-loopback gateway URL (k8s.gateway_url)."),
    healthy: int | None = typer.Option(None, "--healthy", min=0, help="Healthy cases (nothing injected, ground truth 'no root cause', folder healthy/<n>) after the faulty ones; default: the profile's."),
    cases_per_fault: int | None = typer.Option(None, "--cases-per-fault", min=1, help="Cases per fault type (targets in turn) instead of the profile's targets x repetitions; on --resume default the number it was started with."),
    faults: str | None = typer.Option(None, "--faults", help="Only these fault types of the profile, comma-separated (e.g. kv-cache,gpu-error); no healthy case unless --healthy."),
    targets: str | None = typer.Option(None, "--targets", help="Only these components, comma-separated (e.g. ray-worker-1,nginx-gateway); no healthy case unless --healthy. With --faults, a fault that does not apply to a target (a GPU fault on the gateway) skips that pair, with a note; refused only if no pair applies."),
) -> None:
    """Run the paper's protocol (fault types x workers x repetitions) and write a dataset."""
    import signal

    from llmrca.campaign import run_campaign, split_overrides
    from llmrca.config import ConfigError
    from llmrca.errors import LlmrcaError

    terminated: list[int] = []

    def _terminated(*_: object) -> None:  # `timeout`, `kill`: stop as on Ctrl-C (the testbed and its faults are removed)
        terminated.append(143)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread (an embedding caller): SIGTERM keeps its handler
        previous = None
    try:
        fault_params, sim_params = split_overrides(_parse_sets(sets), backend)
        if allow_remote:
            if backend != "k8s":
                raise ConfigError("--allow-remote applies to --backend k8s (the gateway URL given with --set k8s.gateway_url)")
            sim_params["allow_remote"] = True
        path = run_campaign(
            backend=backend, profile=profile, seed=seed, out=out, workers=workers, qps=qps,
            fault_params=fault_params, scrape_interval_s=scrape_interval, progress=not quiet, sim_params=sim_params, resume=resume,
            healthy=healthy,
            cases_per_fault=cases_per_fault,
            faults=faults.split(",") if faults is not None else None,
            targets=targets.split(",") if targets is not None else None,
            on_note=lambda n: console.print(Text.assemble(("note: ", "yellow"), str(n)), soft_wrap=True),
        )
    except (*_USER_ERRORS, ConfigError, RuntimeError, LlmrcaError) as e:  # TestbedError: a leftover testbed
        _fail(e)
    except KeyboardInterrupt:
        from llmrca.campaign import campaign_manifest

        done = len(campaign_manifest(Path(out)).get("cases") or [])
        console.print(f"{'terminated' if terminated else 'interrupted'}: {done} finished case(s) are in {out}; the same command "
                      "with --resume finishes the campaign (it keeps the settings it was started with)")
        raise typer.Exit(terminated[0] if terminated else 130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    typer.echo(str(path))


# --- local testbed and faults (docs/local-testbed.md) ------------------------------
testbed_app = typer.Typer(no_args_is_help=True, help="The local testbed: real processes, cgroups, nginx and Prometheus on this machine.")
app.add_typer(testbed_app, name="testbed")


@testbed_app.command("up")
def testbed_up_cmd(
    workers: int = typer.Option(3, "--workers", help="Ray worker pods (the head hosts one more replica)."),
    run_dir: str = typer.Option("/tmp/llmrca-testbed", "--run-dir", help="Where state, logs and Prometheus data live."),
    sets: list[str] = typer.Option([], "--set", help="Testbed option key=value, e.g. serving_cpu=0.5."),  # noqa: B008
) -> None:
    """Start every pod, nginx and Prometheus, and wait until all are healthy."""
    from llmrca.config import ConfigError
    from llmrca.testbed.local.stack import LocalTestbed, LocalTestbedConfig, Terminated, TestbedError

    try:
        cfg = LocalTestbedConfig.from_dict({**_parse_sets(sets), "workers": workers, "run_dir": run_dir})
        tb = LocalTestbed.up(cfg, progress=lambda m: console.print(Text.assemble(("testbed ", "cyan"), str(m))))
    except (ConfigError, TestbedError) as e:
        console.print(_error_text(f"{e}"))
        raise typer.Exit(1) from None
    except KeyboardInterrupt as e:  # cleaned up by `up`; the exit code says which signal ended the start (143 / 130)
        raise typer.Exit(143 if isinstance(e, Terminated) else 130) from None
    typer.echo(f"gateway    {tb.state.gateway_url}/v1/chat/completions")
    typer.echo(f"prometheus {tb.state.prometheus_url}")
    typer.echo(f"state      {tb.state.path}")


@testbed_app.command("status")
def testbed_status_cmd(
    run_dir: str = typer.Option("/tmp/llmrca-testbed", "--run-dir"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Health of every pod (probed through its sidecar), its processes and its cgroup figures."""
    from llmrca.testbed.local.stack import LocalTestbed, TestbedError

    try:
        tb = LocalTestbed.attach(run_dir)
        rows = tb.status()
        faults = tb.faults()
    except TestbedError as e:
        console.print(_error_text(f"{e}"))
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(_json_text({**rows, "faults": faults} if faults else rows, indent=2))
    else:
        t = Table(title=f"local testbed ({run_dir})")
        for col in ("pod", "role", "healthy", "processes", "memory MiB", "limit MiB", "cpu quota", "OOM kills"):
            t.add_column(col)
        for pod, r in rows.items():
            t.add_row(pod, r["role"], "yes" if r.get("healthy") else Text("NO", style="red"), str(r.get("processes", "")), str(r.get("memory_mib", "")),
                      str(r.get("memory_limit_mib", "")), str(r.get("cpu_quota", "")), str(r.get("oom_kills", "")))
        _stdout().print(t)
        for f in faults:  # a pod can be healthy with a fault on it (a killed injector's stressor, an unexpired control file)
            typer.echo(f"fault: {f}")
    if not all(r.get("healthy") for r in rows.values()):
        raise typer.Exit(3)


@testbed_app.command("down")
def testbed_down_cmd(
    run_dir: str = typer.Option("/tmp/llmrca-testbed", "--run-dir"),
    all_runs: bool = typer.Option(False, "--all", help="Also remove cgroups of every llmrca run left behind by a crash."),
) -> None:
    """Stop every process and remove every cgroup and file of the run (also after a crash)."""
    from llmrca.testbed.local import cgroups as cgr
    from llmrca.testbed.local.stack import State, down, live_run_dir

    had_state = State.load(run_dir) is not None
    counts = down(run_dir, all_runs=all_runs)
    typer.echo(", ".join(f"{k}: {v}" for k, v in counts.items()))
    if counts.get("live_runs_left"):
        dirs = sorted({str(d) for r in cgr.list_runs() if (d := live_run_dir(r)) is not None})
        typer.echo(f"left running: {counts['live_runs_left']} other testbed(s) whose state and processes are alive ({', '.join(dirs)}); "
                   "stop each with `llmrca testbed down --run-dir DIR`")
    if not had_state and not any(v for k, v in counts.items() if k != "live_runs_left"):
        typer.echo(f"note: no testbed found in {run_dir} (no state.json there, nothing of its run left); nothing was removed — "
                   "check --run-dir")


@app.command("inject")
def inject_cmd(
    fault: str = typer.Argument(..., help="cpu | memory | network | gpu | kv-cache | gpu-thermal | gpu-error | model-load | packet-loss | noisy-neighbour"),
    target: str = typer.Option(..., "--target", help="Pod to inject into, e.g. ray-worker-1."),
    duration: float = typer.Option(30.0, "--duration", help="Seconds the fault stays on (Ctrl-C removes it early)."),
    sets: list[str] = typer.Option([], "--set", help="Fault parameter key=value, e.g. latency_ms=500."),  # noqa: B008
    run_dir: str = typer.Option("/tmp/llmrca-testbed", "--run-dir"),
    backend: str = typer.Option("local", "--backend", help="Testbed backend (local)."),
) -> None:
    """Inject a real fault into a running testbed, then print what it achieved."""
    import signal
    import time as _time

    from llmrca.config import ConfigError
    from llmrca.faults import FaultError, inject
    from llmrca.model import FaultSpec
    from llmrca.testbed.local.stack import LocalTestbed, TestbedError, registered_injector

    stopped_by: list[int] = []  # the signal that ended the fault early: the exit code says it (130 / 143)

    def _terminated(*_: object) -> None:
        stopped_by.append(143)
        raise KeyboardInterrupt  # `llmrca testbed down` (SIGTERM) stops the fault as Ctrl-C does

    if not (math.isfinite(duration) and duration > 0):
        console.print(_error_text(f"--duration must be a positive number of seconds, got {duration:g}"))
        raise typer.Exit(2)
    try:
        tb = LocalTestbed.attach(run_dir)
        spec = FaultSpec(type=fault, target=target, params=_parse_sets(sets), duration_s=duration)
        signal.signal(signal.SIGTERM, _terminated)
        from llmrca.faults.local import EXPIRY_MARGIN_S

        until = _time.time() + duration + EXPIRY_MARGIN_S + 15.0  # its control files' expiry, after the (<= 15 s) probes before it
        active = None
        try:
            with registered_injector(run_dir, until), inject(spec, backend=backend, testbed=tb) as active:
                try:  # an interrupt while the line below is written counts as one during the wait
                    console.print(Text.assemble((fault, "yellow"), f" on {target} for {duration:g} s (Ctrl-C to stop early)"))
                    _time.sleep(duration)
                except KeyboardInterrupt:
                    console.print("interrupted: removing the fault")
                    stopped_by.append(130)
        except KeyboardInterrupt:  # while the fault was put in, or measured and removed: it is gone either way
            if not stopped_by:
                stopped_by.append(130)
            if active is None:
                console.print("interrupted before the fault was in place: nothing is left of it")
                raise typer.Exit(stopped_by[0]) from None
            console.print("interrupted while the fault was being removed: it is removed")
    except (ConfigError, FaultError, TestbedError) as e:
        console.print(_error_text(f"{e}"))
        raise typer.Exit(1) from None
    typer.echo(_json_text(active.record.to_dict(), indent=2))
    sys.stdout.flush()
    if stopped_by:  # the fault ran shorter than asked: 143 after SIGTERM (`testbed down`), 130 after Ctrl-C
        raise typer.Exit(stopped_by[0])



def _interrupted(eval_dir: Path, rerun: str = "the same command resumes from there") -> NoReturn:
    """Ctrl-C during an evaluation: say what is kept and how to go on; exit 130."""
    try:
        with open(eval_dir / "results.jsonl", "rb") as fh:
            kept = sum(1 for line in fh if line.strip())
    except OSError:
        kept = 0
    console.print(f"interrupted: {kept} finished run(s) are kept in {eval_dir / 'results.jsonl'} (runs in progress are "
                  f"lost); {rerun}", soft_wrap=True)
    raise typer.Exit(130)


@app.command("reproduce")
def reproduce_cmd(
    backend: str = typer.Option("sim", "--backend", help="Testbed backend: sim (default) or local."),
    profile: str = typer.Option("quick", "--profile", help="Campaign profile: quick, paper or extended (sim), local or local-extended (local testbed); see docs/campaign.md."),
    seed: int = typer.Option(0, "--seed", help="Campaign seed."),
    out: str = typer.Option("results", "--out", "-o", parser=_folder, help="Output folder (dataset/, eval/, REPORT.md)."),
    methods: str = typer.Option("all", "--methods", "-m", help="Comma-separated method names, or 'all' available."),
    jobs: int = typer.Option(2, "--jobs", "-j", help="Worker processes for the evaluation."),
    timeout: float = typer.Option(300.0, "--timeout", help="Seconds per (method, case) run."),
    metric_set: str | None = typer.Option(None, "--metric-set", help="Force basic or extended for every method."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars; print only where the report was written."),
    as_paper: bool = typer.Option(False, "--as-paper", help="Reference mode for every method that has one, and a failed run scores as random (the paper's rule)."),
    set_: list[str] | None = typer.Option(None, "--set", help="A method option METHOD.option=VALUE (e.g. nsigma.abstain_below=3), or a campaign option sim.KEY=VALUE / fault.TYPE.KEY=VALUE (e.g. sim.ingress=head); repeatable; reported as non-default."),  # noqa: B008
    healthy: int | None = typer.Option(None, "--healthy", min=0, help="Healthy cases (nothing injected) in the campaign, scored as a false-alarm rate; default: the profile's."),
    retry: str | None = typer.Option(None, "--retry", help="On a rerun into the same --out, re-run stored runs with these statuses: any of failed,timeout,invalid_case,unavailable (otherwise they are reused)."),
) -> None:
    """Run the whole experiment: campaign -> every available method -> Table 1, figures, REPORT.md and REPORT.html."""
    from llmrca.campaign import split_overrides
    from llmrca.reproduce import reproduce

    chosen = None if methods.strip() == "all" else _split_methods(methods)
    try:
        # sim.* / fault.* / local.* / k8s.* go to the campaign (as `llmrca campaign --set`), the rest to the methods
        campaign_sets = [x for x in set_ or [] if x.partition(".")[0].strip() in ("sim", "fault", "local", "k8s")]
        fault_params, sim_params = split_overrides(_parse_sets(campaign_sets), backend)
        options = {"healthy": healthy, "fault_params": fault_params, "sim_params": sim_params}
        report = reproduce(
            backend=backend, profile=profile, seed=seed, out=out, methods=chosen, jobs=jobs,
            timeout_s=timeout, metric_set=metric_set, progress=not quiet, as_paper=as_paper,
            method_configs=_parse_method_sets([x for x in set_ or [] if x not in campaign_sets]) or None,
            campaign_options={k: v for k, v in options.items() if v not in (None, {})} or None,
            retry=retry, on_note=lambda n: console.print(Text.assemble(("note: ", "yellow"), str(n)), soft_wrap=True),
        )
    except OSError as e:
        if e.filename is not None and _inside(e.filename, out) and not isinstance(e, NotADirectoryError | FileExistsError):
            _write_failed(e, f"--out {out}")
        if isinstance(e, _USER_ERRORS):
            _fail(e)
        raise
    except _USER_ERRORS as e:
        _fail(e)
    except KeyboardInterrupt:
        from llmrca.campaign import campaign_manifest
        from llmrca.report.document import EVAL_DIR

        if not (Path(out) / EVAL_DIR / "results.jsonl").exists():  # still in the campaign
            done = len(campaign_manifest(Path(out) / "dataset").get("cases") or [])
            console.print(f"interrupted during the campaign: {done} finished case(s) are kept in {Path(out) / 'dataset'}; "
                          "the same command finishes the campaign (with the settings it was started with), then evaluates",
                          soft_wrap=True)
            raise typer.Exit(130) from None
        _interrupted(Path(out) / EVAL_DIR, rerun="the same command resumes: it runs the runs not done yet")
    if quiet:  # as `report -q`: only where the reports are
        typer.echo(f"report: {report} and {report.with_suffix('.html')}")
        return
    typer.echo(report.read_text())
    console.print(f"report: {report}")

# --- load generator (docs/load.md) --------------------------------------------
@app.command("load")
def load_cmd(
    url: str = typer.Argument(..., help="Server base URL (http://127.0.0.1:8000) or its /v1/chat/completions endpoint."),
    qps: float = typer.Option(..., "--qps", help="Arrival rate, requests per second (open loop)."),
    duration: float = typer.Option(..., "--duration", help="Send arrivals for this many seconds."),
    max_requests: int | None = typer.Option(None, "--max-requests", help="Stop after this many arrivals."),
    poisson: bool = typer.Option(False, "--poisson", help="Poisson arrivals (default: constant spacing)."),
    prompt_tokens: int = typer.Option(512, "--prompt-tokens", help="Prompt length target (tokens)."),
    output_tokens: int = typer.Option(256, "--output-tokens", help="Output length target (max_tokens, ignore_eos)."),
    length_spread: float = typer.Option(0.0, "--length-spread", help="Lengths uniform in target*(1±spread)."),
    concurrency: int = typer.Option(500, "--concurrency", help="Most requests in flight; arrivals beyond are dropped."),
    seed: int = typer.Option(0, "--seed", help="Seed of the schedule and prompts."),
    model: str | None = typer.Option(None, "--model", help="Model name (default: first of /v1/models)."),
    timeout: float = typer.Option(120.0, "--timeout", help="Per-request timeout, s; also the drain time after the last arrival."),
    out: str | None = typer.Option(None, "--out", help="Write per-request records to this CSV."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback target."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ignore_eos: bool = typer.Option(True, "--ignore-eos/--no-ignore-eos",
                                    help="Send vLLM's ignore_eos (always generate --output-tokens); --no-ignore-eos for servers that reject it."),
) -> None:
    """Open-loop streaming load against an OpenAI-compatible server; prints TTFT/ITL/E2E.  Exit 0 when a request
    succeeded, 1 when none did (or the run failed), 2 for bad options, 130 when interrupted (the summary is printed)."""
    import time as _time

    from llmrca.load import LoadRunner, RemoteTargetRefused
    from llmrca.progress import progress_bar

    if out:
        _check_writable_file("--out", out)
    try:
        runner = LoadRunner(
            url,
            qps=qps,
            duration_s=duration,
            max_requests=max_requests,
            arrival="poisson" if poisson else "constant",
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            length_spread=length_spread,
            concurrency=concurrency,
            seed=seed,
            model=model,
            timeout_s=timeout,
            allow_remote=allow_remote,
            ignore_eos=ignore_eos,
        )
    except (RemoteTargetRefused, ValueError) as e:
        console.print(_error_text(f"{e}"))
        raise typer.Exit(2) from None
    total = len(runner.schedule)
    runner.start()
    interrupted = False
    try:
        with progress_bar("requests finished", total) as bar:
            while runner.running:
                bar.update(completed=runner.n_finished)
                _time.sleep(0.2)
        report = runner.wait()
    except KeyboardInterrupt:
        interrupted = True
        try:
            report = runner.stop()
        except RuntimeError as e:
            console.print(_error_text(f"{e}"))
            raise typer.Exit(130) from None
    except RuntimeError as e:
        console.print(_error_text(f"{e}"))
        raise typer.Exit(1) from None
    if out:
        try:
            report.to_csv(out)
        except OSError as e:
            _usage_error(f"--out: cannot write {out} ({e.strerror or e}); give a file path in a folder you can write to")
    if as_json:
        typer.echo(_json_text({"config": report.config, "summary": report.summary}, indent=2, default=str))
    else:
        typer.echo(report.format())
        if out:
            typer.echo(f"records: {out}")
    sm = report.summary
    if interrupted:
        console.print(Text(f"interrupted: {sm['n_sent']} of {sm['n_scheduled']} request(s) sent; the summary covers them"), soft_wrap=True)
        raise typer.Exit(130)
    if sm["n_sent"] and not sm["n_ok"]:  # a script must not read a run where everything failed as a success
        kinds = ", ".join(f"{k} {v}" for k, v in sm["errors_by_kind"].items())
        console.print(_error_text(f"no request succeeded ({sm['n_sent']} sent: {kinds or 'none finished'})"))
        raise typer.Exit(1)


# --- collection (docs/collect.md) -----------------------------------------------
@app.command("collect")
def collect_cmd(
    prom: str = typer.Argument(..., help="Prometheus URL, e.g. http://127.0.0.1:9090."),
    components: str = typer.Option(..., "--components", help="YAML file: component name -> PromQL label selector."),
    start: float = typer.Option(..., "--start", help="Window start, epoch s."),
    end: float = typer.Option(..., "--end", help="Window end, epoch s."),
    inject: float = typer.Option(..., "--inject", help="Injection time, epoch s."),
    fault_type: str | None = typer.Option(None, "--fault-type", help="cpu | memory | network | gpu, or another known type (ground truth, optional; an unknown one is kept, with a warning)."),
    target: str | None = typer.Option(None, "--target", help="Faulty component (ground truth, optional)."),
    fault_end: float | None = typer.Option(None, "--fault-end", help="Fault end, epoch s."),
    step: float = typer.Option(5.0, "--step", help="Resolution, s."),
    scrape_interval: float = typer.Option(
        15.0, "--scrape-interval", help="Prometheus scrape interval, s (sets the rate window)."
    ),
    logs: Annotated[list[str] | None, typer.Option("--log", help="component=path of a log file (repeatable).")] = None,
    spans: Annotated[list[str] | None, typer.Option("--spans", help="Span JSON-lines file (repeatable).")] = None,
    out: str = typer.Option(..., "--out", parser=_folder, help="Case folder to write (data.csv, data_extended.csv, case.json, ...)."),
    gpus: Annotated[
        list[str] | None,
        typer.Option("--gpu", help="component=selector of its GPUs in the DCGM series, e.g. ray-worker-1='Hostname=\"n1\",gpu=\"0\"' (repeatable)."),
    ] = None,
    gpu_join: Annotated[
        str | None,
        typer.Option("--gpu-join", help="Map components to GPUs via SERIES:LABEL=DCGM_LABEL, e.g. kube_pod_info:node=Hostname."),
    ] = None,
) -> None:
    """Collect one Case from a Prometheus (plus log and span files) and write it."""
    from llmrca.collect import CollectionError, PrometheusError, collect_case
    from llmrca.dataset.io import write_case
    from llmrca.model import FAULT_ALIASES, CaseValidationError, FaultRecord, normalize_fault_type

    comps = _read_components(components)
    if Path(out).exists() and not Path(out).is_dir():
        _usage_error(f"--out: {out} is a file, not a folder; give a new or existing folder for the case")
    if (fault_type is None) != (target is None):
        console.print(_error_text("give both --fault-type and --target, or neither"))
        raise typer.Exit(2)
    from llmrca.report.explain import epoch_text as _epoch

    if not start < end:
        _usage_error(f"--start {_epoch(start)} must be before --end {_epoch(end)} (epoch seconds)")
    if not start < inject < end:
        _usage_error(f"--inject {_epoch(inject)} must lie inside the window --start {_epoch(start)} .. --end {_epoch(end)} (epoch seconds; "
                     "the methods compare the data before it with the data after it)")
    from llmrca.model import MIN_NORMAL_ROWS

    if step > 0 and start + MIN_NORMAL_ROWS * step > inject + 1e-9:
        _usage_error(f"--inject {_epoch(inject)} leaves fewer than {MIN_NORMAL_ROWS} points of --step {step:g} s after --start "
                     f"{_epoch(start)}; the methods need at least {MIN_NORMAL_ROWS} before the injection: start the window earlier")
    if fault_end is not None and not inject < fault_end:
        _usage_error(f"--fault-end {_epoch(fault_end)} must be after --inject {_epoch(inject)}")
    if target is not None and target not in comps:
        _usage_error(f"--target {target}: not one of the components in {components} ({', '.join(map(str, comps))})")
    import time as _time

    if end > _time.time() + 60:  # Prometheus has nothing there yet: the rows would be empty
        _usage_error(f"--end {_epoch(end)} is in the future ({end - _time.time():.0f} s from now); give a window that has passed")
    fault = FaultRecord(normalize_fault_type(fault_type), target, start=inject, end=fault_end) if fault_type and target else None
    if fault is not None and fault.type not in set(FAULT_ALIASES.values()):  # kept (a label of the user's), but said
        console.print(Text.assemble(("warning: ", "yellow"), f"--fault-type {fault_type!r} is not a fault type llmrca knows "
                                    f"({', '.join(sorted(set(FAULT_ALIASES.values())))}); it is kept as a type of its own "
                                    "(its own column in Table 1)"), soft_wrap=True)
    log_files: dict[str, list[str]] = {}
    for item in logs or ():
        comp, sep, path = item.partition("=")
        comp, path = comp.strip(), path.strip()
        if not sep or not comp or not path:
            _usage_error(f"--log {item!r} must be component=path, e.g. --log ray-worker-1=/var/log/worker1.log")
        _check_component("--log", item, comp)
        _check_readable_file("--log", path, "log file")
        log_files.setdefault(comp, []).append(path)
    for path in spans or ():
        _check_readable_file("--spans", path, "span file")
    gpu_selectors = _gpu_options(gpus, gpu_join)
    if spans:
        from llmrca.collect import read_span_files

        try:  # malformed span lines are the user's input: report them before querying Prometheus
            read_span_files(spans, start, end)
        except (OSError, ValueError, TypeError) as e:
            _usage_error(f"--spans: {e}")
    try:
        case = collect_case(
            prom,
            {str(k): str(v) for k, v in comps.items()},
            start,
            end,
            inject,
            fault,
            None,
            step_s=step,
            log_files=log_files or None,
            span_files=spans or None,
            scrape_interval_s=scrape_interval,
            gpu_selectors=gpu_selectors or None,
            gpu_join=gpu_join,
        )
    except (CollectionError, PrometheusError, CaseValidationError, ValueError) as e:
        console.print(_error_text(f"{e}"))
        raise typer.Exit(1) from None
    try:
        write_case(case, out)
    except OSError as e:
        _usage_error(f"--out {out}: cannot write the case ({e.strerror or e}); give a folder you can write to")
    info = case.meta["collection"]
    typer.echo(
        f"wrote {out}: {len(case.metrics)} rows, {case.metrics.shape[1] - 1} basic and "
        f"{case.metric_sets.get('extended', case.metrics).shape[1] - 1} extended columns, "
        f"{len(info['dropped'])} dropped (no data), missing components: {info['missing_components'] or 'none'}"
    )
    inferred = info.get("roles_inferred") or {}
    if inferred:  # components not named as the paper's pods: what their series show them to be
        console.print(Text.assemble(("note: ", "yellow"), "roles read from the components' series (their names give none): "
                                    + ", ".join(f"{c} {'/'.join(r)}" for c, r in inferred.items())), soft_wrap=True)
    for i, why in enumerate(info["gpu"]["unmapped"].values()):
        # the DCGM series Prometheus holds are the same for every component: listed once
        short = why if i == 0 or ". Prometheus holds " not in why else why.split(". Prometheus holds ", 1)[0] + " (the DCGM series: as above)"
        console.print(Text.assemble(("warning: ", "yellow"), f"no GPU columns: {short}"), soft_wrap=True)
    for comp, pods in (info.get("several_pods") or {}).items():
        console.print(Text.assemble(("warning: ", "yellow"), f"the selector of {comp} matches {len(pods)} pods ({', '.join(pods[:4])}"
                                    f"{' …' if len(pods) > 4 else ''}): its columns sum their CPU and memory and average their GPU "
                                    "series; give one pod's selector per component to see each"), soft_wrap=True)
    mapped = info.get("mappings") or {}
    if mapped:  # other exporters' names or label names (docs/collect.md, "Other exporters' names")
        kinds = sorted({f"{a} -> {b}" for m in mapped.values() for a, b in {**m["series"], **m["labels"]}.items()})
        typer.echo(f"{len(mapped)} columns read from other names (case.json collection.mappings): {', '.join(kinds)}")
    if fault is None:  # said, so that `dataset validate` refusing the case later is no surprise
        console.print(Text.assemble(("note: ", "yellow"), "no --fault-type/--target: the case has no ground truth; `llmrca rank` "
                                    "ranks it, but `evaluate` and `dataset validate` need one (collect again with both, or add "
                                    "fault and root_causes to its case.json; docs/dataset.md)"), soft_wrap=True)


# --- Kubernetes (docs/k8s.md) -------------------------------------------------------
k8s_app = typer.Typer(no_args_is_help=True, help="The paper's stack on Kubernetes: render it, check it, sweep what llmrca left.")
app.add_typer(k8s_app, name="k8s")


def _k8s_config(profile: str, sets: list[str]) -> Any:
    from llmrca.testbed.k8s.config import profile_config

    return profile_config(profile, _parse_sets(sets))


@k8s_app.command("render")
def k8s_render_cmd(
    out: str = typer.Option(..., "--out", "-o", parser=_folder, help="Folder for the manifests and kustomization.yaml."),
    profile: str = typer.Option("paper", "--profile", help="paper (1 head + 3 GPU workers, 8 CPU / 16 GiB each) or small."),
    sets: list[str] = typer.Option([], "--set", help="Setting key=value, e.g. model=Qwen/Qwen2.5-7B-Instruct, workers=1."),  # noqa: B008
    validate: bool = typer.Option(False, "--validate", help="Also validate every object (needs kubernetes-validate and the CRD schemas)."),
) -> None:
    """Write the whole stack as plain manifests (apply with kubectl apply -k OUT)."""
    from llmrca.config import ConfigError
    from llmrca.testbed.k8s.render import render_stack, rendered_manifests, write_manifests
    from llmrca.testbed.k8s.schema import SchemaError

    if Path(out).exists() and not Path(out).is_dir():
        _usage_error(f"--out {out} is a file; give a folder for the manifests (a new one, or one to overwrite)")
    try:
        cfg = _k8s_config(profile, sets)
        objs = render_stack(cfg)
        if validate:
            from llmrca.testbed.k8s.schema import validate_object

            bad = [p for o in objs for p in validate_object(o)]
            if bad:
                raise ConfigError("rendered objects do not validate: " + "; ".join(bad[:10]))
        before = rendered_manifests(out)
        paths = write_manifests(objs, out, cfg)
    except (ConfigError, ImportError, OSError, SchemaError) as e:  # SchemaError: no CRD schemas to validate against
        _fail(e)
    removed = sorted(p.name for p in before - set(paths))
    foreign = sorted(p.name for p in Path(out).iterdir() if p.suffix in (".yaml", ".yml", ".json") and p not in paths)
    typer.echo(f"wrote {len(objs)} objects to {out} ({', '.join(p.name for p in paths)}); apply with: kubectl apply -k {out}"
               + ("; every object validated against its schema" if validate else "")
               + (f"; removed what an earlier render left there and this one does not write: {', '.join(removed)}" if removed else ""))
    if foreign:
        typer.echo(f"note: {out} also holds {', '.join(foreign)}, which llmrca did not write; kubectl apply -k applies only "
                   "what kustomization.yaml lists, so they are not part of the stack", err=True)


def _k8s_api(kubeconfig: str | None, context: str | None) -> Any:
    from llmrca.testbed.k8s.api import KubeApi

    return KubeApi(kubeconfig, context)


@k8s_app.command("status")
def k8s_status_cmd(
    profile: str = typer.Option("paper", "--profile"),
    sets: list[str] = typer.Option([], "--set", help="Settings as given to render (namespace, name, workers)."),  # noqa: B008
    kubeconfig: str | None = typer.Option(None, "--kubeconfig"),
    context: str | None = typer.Option(None, "--context"),
) -> None:
    """Whether the stack is ready, and each component's pod."""
    from llmrca.config import ConfigError
    from llmrca.testbed.k8s.stack import K8sStack

    try:
        cfg = _k8s_config(profile, sets)  # a bad profile or setting is said before the cluster is asked
        st = K8sStack(_k8s_api(kubeconfig, context), cfg)
        r = st.readiness()
        pods = {c: p["metadata"]["name"] for c, p in st.component_pods().items()}
    except (ConfigError, ImportError, RuntimeError) as e:
        _fail(e)
    typer.echo(_json_text({**r, "pods": pods}, indent=2))
    if not r["ready"]:
        raise typer.Exit(3)


@k8s_app.command("down")
def k8s_down_cmd(
    profile: str = typer.Option("paper", "--profile"),
    sets: list[str] = typer.Option([], "--set", help="Settings as given to render (namespace, name)."),  # noqa: B008
    stack: bool = typer.Option(False, "--stack", help="Also delete the rendered stack (RayService, gateway, monitors, RBAC, namespace)."),
    kubeconfig: str | None = typer.Option(None, "--kubeconfig"),
    context: str | None = typer.Option(None, "--context"),
) -> None:
    """Delete every fault object llmrca left (by label), and with --stack the stack itself."""
    from llmrca.config import ConfigError
    from llmrca.testbed.k8s.stack import down

    try:
        cfg = _k8s_config(profile, sets)  # a bad profile or setting is said before the cluster is asked
        res = down(_k8s_api(kubeconfig, context), cfg, stack_too=stack)
    except (ConfigError, ImportError, RuntimeError) as e:
        _fail(e)
    typer.echo(f"faults deleted: {len(res['faults'])} ({', '.join(res['faults']) or 'none'}); stack objects deleted: {len(res['stack'])}")


@app.command("heal")
def heal_cmd(
    fault: str = typer.Option(..., "--fault", help="Fault type to inject: " + ", ".join(ALL_FAULT_TYPES) + " (the action follows the type the method decides; docs/heal.md)."),
    target: str = typer.Option("ray-worker-1", "--target", help="Replica to inject it into."),
    backend: str = typer.Option("sim", "--backend", help="Only sim for now (the action is replayed on the same seeded world)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated world."),
    method: str = typer.Option("llm-rca", "--method", "-m", help="RCA method that localizes the culprit."),
    signals: str | None = typer.Option(None, "--signals", help="Comma-separated alert signals (column, max:<kind>, entry:<kind>); default max:itl_mean,entry:gateway_5xx_rate,max:ttft_p90. Packet loss is seen reliably only with max:latency_mean."),
    execute: bool = typer.Option(False, "--execute", help="Carry the action out (default: dry run, decision logged only)."),
    sets: list[str] = typer.Option([], "--set", help="fault.<type>.<param>=V or sim.<option>=V."),  # noqa: B008
    out: str = typer.Option("heal-out", "--out", "-o", parser=_folder, help="Folder for audit.jsonl, heal.json, heal.png."),
) -> None:
    """Watch a fault with the heal loop: alert -> localize -> remediate (dry run unless --execute)."""
    from llmrca.campaign import split_overrides
    from llmrca.config import ConfigError
    from llmrca.heal import HealConfig, heal_sim

    if backend != "sim":
        _fail(ValueError(f"heal supports --backend sim; got {backend!r}"))
    if seed < 0:
        _usage_error(f"--seed {seed}: the seed of the simulated world must be >= 0")
    if Path(out).exists() and not Path(out).is_dir():
        _usage_error(f"--out {out} is a file; give a folder for audit.jsonl, heal.json and heal.png")
    from llmrca.model import normalize_fault_type

    fault = normalize_fault_type(fault)  # CPU and cpu are one fault type (recorded as such in heal.json)
    try:
        fault_params, sim_params = split_overrides(_parse_sets(sets))
        other = sorted(t for t in fault_params if normalize_fault_type(t) != normalize_fault_type(fault))
        if other:
            raise ConfigError("; ".join(f"fault.{t}.* given but heal injects {fault}" for t in other) + f" (use fault.{fault}.<param>=V)")
        fault_params = {fault: {k: v for ps in fault_params.values() for k, v in ps.items()}} if fault_params else {}
        cfg = HealConfig(method=method, execute=execute)
        if signals:
            cfg = cfg.replace(signals=signals)
        with _spinner(f"heal: {fault} on {target}, simulated and watched by {method}"):
            rep = heal_sim(
                fault, target, seed=seed, config=cfg, fault_params=(fault_params or {}).get(fault), sim_params=sim_params, out=out
            )
    except (ConfigError, *_USER_ERRORS) as e:
        _fail(e)
    typer.echo(rep.summary())
    console.print(f"audit log: {out}/audit.jsonl, figure: {out}/heal.png")


@app.command("watch")
def watch_cmd(
    prom_url: str = typer.Argument(..., help="Prometheus base URL, e.g. http://127.0.0.1:9090 (default: the local testbed's)."),
    components: list[str] = typer.Option([], "--component", "-c", help="NAME=SELECTOR, e.g. ray-worker-1='pod=\"ray-worker-1\"' (repeatable; default: the local testbed's pods)."),  # noqa: B008
    run_dir: str = typer.Option("/tmp/llmrca-testbed", "--run-dir", help="Local testbed whose pods, logs and topology are the defaults."),
    method: str = typer.Option("llm-rca", "--method", "-m", help="RCA method that localizes (any registered method)."),
    signals: str | None = typer.Option(None, "--signals", help="Alert signals: entry:<kind>, max:<kind>, each:<kind>, comma-separated."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between evaluations."),
    for_s: float = typer.Option(15.0, "--for", help="Seconds a signal must stay out of its band before the alert fires."),
    execute: bool = typer.Option(False, "--execute", help="Carry actions out (default: dry run, decisions logged only)."),
    allow: list[str] = typer.Option([], "--allow", help="Component that may be acted on (repeatable; default: any model replica)."),  # noqa: B008
    backend: str | None = typer.Option(None, "--backend", help="Actuator backend: local, k8s, ... (default: local when the testbed runs, else none)."),
    min_action_interval: float = typer.Option(300.0, "--min-action-interval", help="Rate limit: seconds between two actions on one component."),
    max_actions: int = typer.Option(3, "--max-actions", help="Rate limit: actions per hour across components."),
    duration: float = typer.Option(0.0, "--duration", help="Stop after this many seconds (0: until Ctrl-C / SIGTERM)."),
    max_incidents: int = typer.Option(0, "--max-incidents", help="Stop after this many incidents (0: no bound)."),
    scrape_interval: float | None = typer.Option(None, "--scrape-interval", help="Scrape interval of this Prometheus, s (default: the local testbed's, else 15); the SLO signals' rate window is at least 4 scrapes."),
    gpus: list[str] = typer.Option([], "--gpu", help=_GPU_HELP),  # noqa: B008
    gpu_join: str | None = typer.Option(None, "--gpu-join", help=_GPU_JOIN_HELP),
    logs: list[str] = typer.Option([], "--log", help="COMPONENT=PATH of a log file the localizer reads (repeatable; default: the local testbed's)."),  # noqa: B008
    sets: list[str] = typer.Option([], "--set", help="Other WatchConfig option key=value (e.g. rel=0.2, cooldown_s=120)."),  # noqa: B008
    out: str = typer.Option("watch-out", "--out", "-o", parser=_folder, help="Folder for audit.jsonl, watch.json, watch.png."),
) -> None:
    """Watch a live Prometheus: alert on SLO signals, localize, decide, act (dry run unless --execute), audit every step."""
    from llmrca.config import ConfigError, parse_overrides
    from llmrca.heal.watch import WatchConfig, local_defaults, watch
    from llmrca.testbed.local.stack import TestbedError

    try:
        defaults: dict[str, Any] = {}
        try:
            defaults = local_defaults(run_dir)
        except TestbedError:
            if not components:
                raise ValueError(
                    f"no --component given and no local testbed runs in {run_dir}; give --component NAME=SELECTOR for every component"
                ) from None
        comps: dict[str, str] = dict(defaults.get("components", {}))
        if components:
            comps = {}
            for c in components:
                name, eq, sel = c.partition("=")
                if not eq or not name.strip() or not sel.strip():
                    raise ValueError(f"--component {c!r}: use NAME=SELECTOR, e.g. ray-worker-1='pod=\"ray-worker-1\"'")
                comps[name.strip()] = sel.strip()
        given = parse_overrides(sets) if sets else {}
        scrape = scrape_interval if scrape_interval is not None else float(defaults.get("scrape_interval_s", 15.0))
        opts: dict[str, Any] = {"method": method, "interval_s": interval, "for_s": for_s, "execute": execute, "duration_s": duration,
                                "max_incidents": max_incidents, "scrape_interval_s": scrape}
        if signals:
            opts["signals"] = signals
        if "rate_window_s" not in given:  # every rate() of the SLO signals sees at least 4 scrapes
            opts["rate_window_s"] = max(WatchConfig().rate_window_s, 4 * scrape) if scrape > 0 else WatchConfig().rate_window_s
        try:
            cfg = WatchConfig.from_dict({**opts, **given})
        except ConfigError as e:  # named by the flag the user typed (the option's name after it)
            msg = str(e)
            for key, flag in (("interval_s", "--interval"), ("for_s", "--for"), ("duration_s", "--duration"),
                              ("max_incidents", "--max-incidents"), ("scrape_interval_s", "--scrape-interval")):
                if key not in given:
                    msg = msg.replace(f"option {key!r}", f"{flag} ({key})")
            raise ConfigError(msg) from None
        be = backend if backend is not None else ("local" if defaults else None)
        be = None if be == "none" else be
        if be == "local" and execute and not defaults:
            raise ValueError(f"--backend local --execute acts on a local testbed and none runs in {run_dir}; start one "
                             "(llmrca testbed up), give its --run-dir, or choose another --backend")
        rep = watch(
            prom_url, comps, cfg, backend=be, allow=list(allow) or None, actuator_options={"run_dir": run_dir} if be == "local" else None,
            min_action_interval_s=min_action_interval, max_actions=max_actions, out=out,
            log_files=_log_options(logs) or (defaults.get("log_files") if not components else None), topology=defaults.get("topology") if not components else None,
            say=lambda m: console.print(m, soft_wrap=True), gpu_selectors=_gpu_options(gpus, gpu_join) or None, gpu_join=gpu_join,
        )
    except (ConfigError, *_USER_ERRORS) as e:
        _fail(e)
    typer.echo(f"{len(rep.incidents)} incident(s), {rep.evaluations} evaluations, {len(rep.outages)} Prometheus outage(s); stopped by {rep.stopped_by}")
    console.print(f"audit log: {out}/audit.jsonl, figure: {out}/watch.png")


@app.command("audit")
def audit_cmd(
    prom_url: str = typer.Argument(..., help="Prometheus base URL."),
    components: list[str] = typer.Option([], "--component", "-c", help="NAME=SELECTOR (repeatable; default: the local testbed's pods, else every pod label)."),  # noqa: B008
    run_dir: str = typer.Option("/tmp/llmrca-testbed", "--run-dir", help="Local testbed whose pods are the default components."),
    window: float = typer.Option(600.0, "--window", help="Seconds of history to look at."),
    scrape_interval: float = typer.Option(15.0, "--scrape-interval", help="Scrape interval of this Prometheus, s (rate windows)."),
    logs: list[str] = typer.Option([], "--log", help="COMPONENT=PATH of a log file the loop can read (repeatable)."),  # noqa: B008
    gpus: list[str] = typer.Option([], "--gpu", help=_GPU_HELP),  # noqa: B008
    gpu_join: str | None = typer.Option(None, "--gpu-join", help=_GPU_JOIN_HELP),
    namespace: str | None = typer.Option(None, "--namespace", "-n", help="Without --component: only this namespace's pods."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Which signals of the vocabulary this Prometheus has, so which faults llmrca can diagnose here, and how to close the gaps.

    Exit code 0: the minimum set is present; 1: it is not; 2: bad input / Prometheus unreachable."""
    from llmrca.collect.prom import PrometheusError
    from llmrca.heal.audit import audit, render

    try:
        comps: dict[str, str] = {}
        for c in components:
            name, eq, sel = c.partition("=")
            if not eq or not name.strip() or not sel.strip():
                raise ValueError(f"--component {c!r}: use NAME=SELECTOR")
            comps[name.strip()] = sel.strip()
        log_files = _log_options(logs)
        if window <= 0 or scrape_interval <= 0:
            raise ValueError(f"--window and --scrape-interval must be > 0 seconds, got {window:g} and {scrape_interval:g}")
        rep = audit(prom_url, comps or None, window_s=window, scrape_interval_s=scrape_interval, run_dir=run_dir, log_files=log_files,
                    gpu_selectors=_gpu_options(gpus, gpu_join) or None, gpu_join=gpu_join, namespace=namespace)
    except PrometheusError as e:
        _fail(ValueError(str(e)))
    except _USER_ERRORS as e:
        _fail(e)
    if as_json:
        typer.echo(_json_text(rep.to_dict(), indent=2))
    else:
        typer.echo(render(rep))
    raise typer.Exit(0 if rep.minimum_ok else 1)


def main() -> None:
    """The ``llmrca`` command.  With ``--json``, a usage error found before the command runs (an unknown option, a
    missing argument) is answered on stdout as JSON too (``status`` "failed", ``error_kind`` "usage"), as the
    command's own failures are, so that a script reading stdout always gets an object; the message still goes to
    stderr and the exit status stays 2.  A FutureWarning (an old option spelling, still taken) is one
    ``warning:`` line on stderr, without Python's file and line."""
    import warnings

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, FutureWarning):
            print(f"warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    if "--json" not in sys.argv[1:]:
        app()
        return

    def is_a(e: BaseException, name: str) -> bool:  # click's classes (typer may carry its own copy of click)
        return any(c.__name__ == name for c in type(e).__mro__)

    try:
        rv = app(standalone_mode=False)
    except Exception as e:
        if is_a(e, "UsageError"):
            e.show()  # type: ignore[attr-defined]
            typer.echo(_json_text({"status": "failed", "error_kind": "usage", "error": e.format_message()}, indent=2))  # type: ignore[attr-defined]
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        if is_a(e, "Abort"):
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        raise
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
