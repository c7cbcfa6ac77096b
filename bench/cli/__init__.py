"""`seater-bench` command line. Each sub-command group lives in its own module.

Errors derived from `SeaterError` are printed as one line (no traceback) and exit with code 2.
"""

from __future__ import annotations

import sys

import typer

from seater.errors import ConfigError, SeaterError

app = typer.Typer(help="seater-bench: identifier trees and generative retrievers under one harness.", no_args_is_help=True)


def int_list(text: str, name: str, minimum: int = 0) -> tuple[int, ...]:
    """A comma-separated option such as ``--sizes 20000,361245`` as a tuple of ints >= minimum."""
    try:
        vals = tuple(int(float(v)) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{name} must be a comma-separated list of integers, got {text!r}") from None
    if not vals or min(vals) < minimum:
        raise ConfigError(f"--{name} must list integers >= {minimum}, got {text!r}")
    return vals


def _register() -> None:
    # Each module adds its commands/groups to `app`; imports stay light (heavy ones inside commands).
    from bench.cli import data, experiments, speed, speed_retrieval, speed_trees, trees  # noqa: F401


def main() -> None:
    _register()
    try:
        app()
    except SeaterError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
