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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
