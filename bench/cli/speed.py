"""`seater-bench speed ...`: speed benchmarks that write tables to results/ (trees, beam search, training)."""

import sys

import typer

from bench.cli import app

speed_app = typer.Typer(help="Speed benchmarks; each writes its table to results/.", no_args_is_help=True)
app.add_typer(speed_app, name="speed")


def int_list(text: str, name: str, minimum: int = 0) -> tuple[int, ...]:
    """A comma-separated option such as ``--sizes 20000,361245`` as a tuple of ints >= minimum."""
    from seater.errors import ConfigError

    try:
        vals = tuple(int(float(v)) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{name} must be a comma-separated list of integers, got {text!r}") from None
    if not vals or min(vals) < minimum:
        raise ConfigError(f"--{name} must list integers >= {minimum}, got {text!r}")
    return vals


def log_line(text: str) -> None:
    """Echo and flush, so progress shows in a log file while a long benchmark runs."""
    typer.echo(text)
    sys.stdout.flush()
