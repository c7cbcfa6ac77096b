"""`seater-bench trees ...`: build, inspect and compare identifier trees."""

import typer

from bench.cli import app

trees_app = typer.Typer(help="Build and compare identifier trees.", no_args_is_help=True)
app.add_typer(trees_app, name="trees")
