"""Harness tests: make the test-only components of `_bench_plugins` visible to cells too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def bench_plugins(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p))
    monkeypatch.setenv("SEATER_BENCH_EXTRA_MODULES", "_bench_plugins")
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("TQDM_DISABLE", "1")


def write_suite(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
