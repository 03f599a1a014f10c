"""The ``llmrca`` command.  It holds no logic of its own: every command calls
the same function the Python API offers."""

from __future__ import annotations

import json

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
