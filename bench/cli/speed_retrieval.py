"""`seater-bench speed ...` commands (retrieval)."""

from bench.cli.speed import speed_app  # noqa: F401
