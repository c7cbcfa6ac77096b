"""Top-level harness commands: run, list, import, leaderboard."""

from bench.cli import app  # noqa: F401
