"""`seater-bench` command line. Each sub-command group lives in its own module.

Errors derived from `SeaterError` are printed as one line (no traceback) and exit with code 2.
"""

from __future__ import annotations

import sys

import typer

from seater.errors import SeaterError

app = typer.Typer(help="seater-bench: identifier trees and generative retrievers under one harness.", no_args_is_help=True)


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
