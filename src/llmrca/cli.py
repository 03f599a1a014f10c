"""The ``llmrca`` command.  It holds no logic of its own: every command calls
the same function the Python API offers."""

from __future__ import annotations

import json
from typing import Annotated

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
) -> None:
    """Open-loop streaming load against an OpenAI-compatible server; prints TTFT/ITL/E2E."""
    import time as _time

    from rich.progress import Progress

    from llmrca.load import LoadRunner, RemoteTargetRefused

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
        )
    except (RemoteTargetRefused, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    total = len(runner.schedule)
    runner.start()
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("requests finished", total=total)
            while runner.running:
                bar.update(task, completed=runner.n_finished)
                _time.sleep(0.2)
        report = runner.wait()
    except KeyboardInterrupt:
        report = runner.stop()
    except RuntimeError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    if out:
        report.to_csv(out)
    if as_json:
        typer.echo(json.dumps({"config": report.config, "summary": report.summary}, indent=2, default=str))
    else:
        typer.echo(report.format())
        if out:
            typer.echo(f"records: {out}")


# --- collection (docs/collect.md) -----------------------------------------------
@app.command("collect")
def collect_cmd(
    prom: str = typer.Argument(..., help="Prometheus URL, e.g. http://127.0.0.1:9090."),
    components: str = typer.Option(..., "--components", help="YAML file: component name -> PromQL label selector."),
    start: float = typer.Option(..., "--start", help="Window start, epoch s."),
    end: float = typer.Option(..., "--end", help="Window end, epoch s."),
    inject: float = typer.Option(..., "--inject", help="Injection time, epoch s."),
    fault_type: str | None = typer.Option(None, "--fault-type", help="cpu | memory | network | gpu (ground truth, optional)."),
    target: str | None = typer.Option(None, "--target", help="Faulty component (ground truth, optional)."),
    fault_end: float | None = typer.Option(None, "--fault-end", help="Fault end, epoch s."),
    step: float = typer.Option(5.0, "--step", help="Resolution, s."),
    scrape_interval: float = typer.Option(
        15.0, "--scrape-interval", help="Prometheus scrape interval, s (sets the rate window)."
    ),
    logs: Annotated[list[str] | None, typer.Option("--log", help="component=path of a log file (repeatable).")] = None,
    spans: Annotated[list[str] | None, typer.Option("--spans", help="Span JSON-lines file (repeatable).")] = None,
    out: str = typer.Option(..., "--out", help="Case folder to write (data.csv, data_extended.csv, case.json, ...)."),
) -> None:
    """Collect one Case from a Prometheus (plus log and span files) and write it."""
    from pathlib import Path

    import yaml

    from llmrca.collect import CollectionError, PrometheusError, collect_case
    from llmrca.dataset.io import write_case
    from llmrca.model import CaseValidationError, FaultRecord, normalize_fault_type

    comps = yaml.safe_load(Path(components).read_text())
    if not isinstance(comps, dict) or not comps:
        console.print(
            f"[red]error:[/red] {components} must map component names to label selectors, e.g. ray-worker-1: 'pod=\"ray-worker-1\"'"
        )
        raise typer.Exit(2)
    if (fault_type is None) != (target is None):
        console.print("[red]error:[/red] give both --fault-type and --target, or neither")
        raise typer.Exit(2)
    fault = FaultRecord(normalize_fault_type(fault_type), target, start=inject, end=fault_end) if fault_type and target else None
    log_files: dict[str, list[str]] = {}
    for item in logs or ():
        comp, sep, path = item.partition("=")
        if not sep:
            console.print(f"[red]error:[/red] --log {item!r} must be component=path")
            raise typer.Exit(2)
        log_files.setdefault(comp, []).append(path)
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
        )
    except (CollectionError, PrometheusError, CaseValidationError, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from None
    write_case(case, out)
    info = case.meta["collection"]
    typer.echo(
        f"wrote {out}: {len(case.metrics)} rows, {case.metrics.shape[1] - 1} basic and "
        f"{case.metric_sets.get('extended', case.metrics).shape[1] - 1} extended columns, "
        f"{len(info['dropped'])} dropped (no data), missing components: {info['missing_components'] or 'none'}"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
