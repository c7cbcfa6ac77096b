"""`seater-bench speed ...`: speed benchmarks that write tables to results/ (trees, beam search, training)."""

import sys

import typer

from bench.cli import app

speed_app = typer.Typer(help="Speed benchmarks; each writes its table to results/.", no_args_is_help=True)
app.add_typer(speed_app, name="speed")


def log_line(text: str) -> None:
    """Echo and flush, so progress shows in a log file while a long benchmark runs."""
    typer.echo(text)
    sys.stdout.flush()
