"""`seater-bench speed ...` commands (trees)."""

from bench.cli.speed import speed_app  # noqa: F401
