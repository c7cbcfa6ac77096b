"""`seater-bench speed ...`: speed benchmarks that write tables to results/ (trees, beam search, training)."""

import typer

from bench.cli import app

speed_app = typer.Typer(help="Speed benchmarks; each writes its table to results/.", no_args_is_help=True)
app.add_typer(speed_app, name="speed")
