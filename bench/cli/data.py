"""`seater-bench data ...`: dataset statistics and synthetic data."""

import typer

from bench.cli import app

data_app = typer.Typer(help="Inspect datasets and generate synthetic ones.", no_args_is_help=True)
app.add_typer(data_app, name="data")
