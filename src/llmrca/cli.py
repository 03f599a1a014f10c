"""The ``llmrca`` command.  It holds no logic of its own: every command calls
the same function the Python API offers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Root-cause analysis for LLM inference deployments.")
console = Console(stderr=True)


@app.command("methods")
def methods_cmd(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List every RCA method, whether it can run here, and what to install if not."""
    from llmrca.methods.registry import list_methods

    rows = list_methods()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    t = Table(title="RCA methods")
    for col in ("name", "family", "available", "install"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["name"], r["family"], "yes" if r["available"] else "no", r["reason"])
    Console().print(t)


@app.command("campaign")
def campaign_cmd(
    backend: str = typer.Option("sim", "--backend", help="Testbed backend: sim (local and k8s plug in later)."),
    profile: str = typer.Option("quick", "--profile", help="quick (12 cases) or paper (120 cases)."),
    seed: int = typer.Option(0, "--seed", help="Campaign seed; every case's seed derives from it."),
    out: str = typer.Option(..., "--out", help="Dataset folder to create (must be new or empty)."),
    workers: int | None = typer.Option(None, "--workers", help="Ray worker pods (the head hosts one more replica)."),
    qps: float | None = typer.Option(None, "--qps", help="Offered load, queries per second."),
    sets: list[str] = typer.Option([], "--set", help="fault.<type>.<param>=V or sim.<option>=V, e.g. fault.cpu.workers=8."),  # noqa: B008
    scrape_interval: float | None = typer.Option(None, "--scrape-interval", help="Seconds between scrapes (default 5)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar or summary."),
) -> None:
    """Run the paper's protocol (fault types x workers x repetitions) and write a dataset."""
    from llmrca.campaign import run_campaign, split_overrides
    from llmrca.config import ConfigError, parse_overrides

    try:
        fault_params, sim_params = split_overrides(parse_overrides(sets))
        path = run_campaign(
            backend=backend, profile=profile, seed=seed, out=out, workers=workers, qps=qps,
            fault_params=fault_params, scrape_interval_s=scrape_interval, progress=not quiet, sim_params=sim_params,
        )
    except (ConfigError, FileExistsError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    typer.echo(str(path))


# -- evaluation, ranking, reports, datasets (spine) ------------------------------

_USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError, KeyError, NotADirectoryError, ImportError)


def _fail(e: BaseException) -> NoReturn:
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _split_methods(methods: str) -> list[str]:
    return [m.strip() for m in methods.split(",") if m.strip()]


@app.command("evaluate")
def evaluate_cmd(
    dataset: Annotated[Path, typer.Argument(help="Dataset folder (cases as <component>_<fault>/<rep>/).")],
    methods: Annotated[str, typer.Option("--methods", "-m", help="Comma-separated method names, or 'all'.")] = "all",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (or Ray tasks) in parallel.")] = 2,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per (method, case) run before it is killed.")] = 300.0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("results"),
    metric_set: Annotated[str | None, typer.Option("--metric-set", help="Force one metric set for every method: basic or extended.")] = None,
    engine: Annotated[str, typer.Option("--engine", help="process (this machine) or ray (a Ray cluster).")] = "process",
    random_on_failure: Annotated[bool, typer.Option("--random-on-failure", help="Score failed/timed-out runs on a seeded random ranking, as the paper did (counted).")] = False,
    no_resume: Annotated[bool, typer.Option("--no-resume", help="Start over instead of skipping runs already in results.jsonl.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
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
            progress=not quiet,
        )
    except _USER_ERRORS as e:
        _fail(e)
    _print_summary(res.summary, res.status, res.counts, res.out, res.new_runs, res.skipped_runs)


def _print_summary(summary: Any, status: Any, counts: dict[str, int], out: Path, new: int, skipped: int) -> None:
    overall = summary[summary["fault"] == "all"].sort_values(["ac@1", "avg@5"], ascending=False)
    t = Table(title="Best methods (all faults)")
    for col in ("method", "n", "AC@1", "AC@3", "Avg@5"):
        t.add_column(col, justify="right" if col != "method" else "left")
    for _, r in overall.head(5).iterrows():
        t.add_row(str(r["method"]), str(int(r["n"])), f"{r['ac@1']:.2f}", f"{r['ac@3']:.2f}", f"{r['avg@5']:.2f}")
    Console().print(t)
    line = ", ".join(f"{k} {v}" for k, v in counts.items())
    typer.echo(f"runs: {line} ({new} run now, {skipped} resumed from results.jsonl)")
    if not status.empty and int(status["fallbacks"].sum()):
        typer.echo("random-on-failure fallbacks: " + ", ".join(f"{r.method} {int(r.fallbacks)}" for r in status.itertuples() if r.fallbacks))
    if not status.empty and int(status["invalid_case"].sum()):
        typer.echo(f"invalid cases skipped: {int(status['invalid_case'].max())} (see results.jsonl, error_kind=invalid_case)")
    typer.echo(f"outputs: {out}/ (summary.csv, table1.md/.csv/.tex, misattribution.png, results.jsonl, run.json)")


@app.command("rank")
def rank_cmd(
    case_dir: Annotated[Path, typer.Argument(help="One case folder (data.csv, inject_time.txt, ...).")],
    method: Annotated[str, typer.Option("--method", "-m", help="Method name (see `llmrca methods`).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Config override key=value (repeatable).")] = None,
    metric_set: Annotated[str | None, typer.Option("--metric-set", help="basic or extended (default: the method's own).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Rank one case's components with one method (the method never sees the ground truth)."""
    from llmrca.config import parse_overrides
    from llmrca.errors import LlmrcaError
    from llmrca.evaluate.single import rank_case

    try:
        outcome = rank_case(case_dir, method, parse_overrides(set_), metric_set=metric_set)
    except (*_USER_ERRORS, LlmrcaError) as e:
        _fail(e)
    if as_json:
        typer.echo(json.dumps(outcome.to_dict(), indent=2, default=str))
        return
    t = Table(title=f"{method} on {outcome.case.name} ({outcome.metric_set} metrics, {outcome.duration_s:.2f} s)")
    for col in ("rank", "component", "score", "top metric"):
        t.add_column(col)
    best_metric: dict[str, str] = {}
    for m, _ in outcome.ranking.metrics or []:
        best_metric.setdefault(m.partition("_")[0], m)
    truth = outcome.case.root_causes
    for i, (c, sc) in enumerate(zip(outcome.ranking.components, outcome.ranking.scores, strict=True), 1):
        t.add_row(str(i), f"[bold]{c}[/] (root cause)" if c in truth else c, f"{sc:.4g}", best_metric.get(c, ""))
    Console().print(t)
    for root, pos in outcome.truth_positions().items():
        typer.echo(f"true root cause {root}: " + (f"ranked #{pos} of {len(outcome.ranking.components)}" if pos else "not in the ranking"))


@app.command("report")
def report_cmd(out: Annotated[Path, typer.Argument(help="An evaluation's output folder (holds results.jsonl).")]) -> None:
    """Regenerate summary.csv, Table 1 and the figures from results.jsonl."""
    from llmrca.report import write_report

    try:
        rep = write_report(out)
    except _USER_ERRORS as e:
        _fail(e)
    counts = {s: int(rep.status[s].sum()) for s in ("ok", "failed", "timeout", "unavailable")} if not rep.status.empty else {}
    _print_summary(rep.summary, rep.status, counts, rep.out, 0, len(rep.results))


class _CaseProgress:
    """A rich progress bar fed by ``on_case(done, total)`` callbacks (stderr)."""

    def __init__(self, label: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=True)
        self._task: Any = None

    def __enter__(self) -> _CaseProgress:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def __call__(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._bar.add_task("", total=total)
        self._bar.update(self._task, completed=done)


dataset_app = typer.Typer(no_args_is_help=True, help="Check and import datasets.")
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("validate")
def dataset_validate_cmd(path: Annotated[Path, typer.Argument(help="Dataset folder.")]) -> None:
    """Check every case; list the problems of each bad one (exit code 1 if any)."""
    from llmrca.dataset.validate import validate_dataset

    try:
        with _CaseProgress("validating") as bar:
            check = validate_dataset(path, on_case=bar)
    except _USER_ERRORS as e:
        _fail(e)
    for cid, probs in check.problems.items():
        typer.echo(f"{cid}:")
        for p in probs:
            typer.echo(f"  - {p}")
    typer.echo(f"{len(check.valid)} valid case(s), {len(check.problems)} with problems")
    raise typer.Exit(0 if check.ok else 1)


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
    for cid, probs in rep.problems.items():
        typer.echo(f"skipped {cid}: " + "; ".join(probs))
    typer.echo(f"imported {len(rep.imported)} case(s) into {rep.dst}; skipped {len(rep.problems)}")
    raise typer.Exit(0 if not rep.problems else 1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
