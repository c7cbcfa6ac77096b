"""Killing the grid process mid-cell takes the cell process down with it, and the rerun
submits only the cells without a FINISHED row."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.config import load_suite
from bench.runner import run_suite
from bench.tracking import read_rows

SUITE = """
[suite]
name = "killme"
ks = [10]

[[datasets]]
name = "synth"
source = "synthetic"
synthetic = { n_users = 40, n_items = 25 }

[[retrievers]]
name = "popular"

[[retrievers]]
name = "crash"
params = { mode = "sleep" }
"""


class RecordingExecutor:
    """Runs nothing; remembers what the runner asked it to run."""

    def __init__(self):
        self.submitted: list[str] = []

    def submit(self, cells, context, on_result=None):
        self.submitted += [c.name for c in cells]
        return []


def _wait(pred, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.3)
    return False


def test_sigterm_mid_grid_then_resume(tmp_path):
    path = tmp_path / "killme.toml"
    path.write_text(SUITE)
    run_dir = tmp_path / "run"
    code = (f"from bench.config import load_suite; from bench.runner import run_suite; "
            f"run_suite(load_suite({str(path)!r}), run_dir={str(run_dir)!r}, cache_dir={str(tmp_path / 'c')!r}, "
            f"tracking_uri='none', progress=False, show_output=False)")
    grid = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        runfile = run_dir / "results.jsonl"
        sleeper_spec = lambda: [p for p in (run_dir / "cells").glob("*.json") if not p.name.endswith("result.json")]  # noqa: E731
        assert _wait(lambda: runfile.is_file() and len(sleeper_spec()) == 2, 240), "first cell never finished"
        # the sleeping cell's process is running now: find it, then kill the grid
        assert _wait(lambda: _cell_pids(run_dir), 120)
        (cell_pid,) = _cell_pids(run_dir)
        os.kill(grid.pid, signal.SIGTERM)
        grid.wait(timeout=60)
        assert _wait(lambda: not _alive(cell_pid), 30), "the cell process outlived the grid"
    finally:
        if grid.poll() is None:
            os.killpg(grid.pid, signal.SIGKILL)
            grid.wait(timeout=30)
    assert [r["name"] for r in read_rows(run_dir / "results.jsonl")] == ["synth/popular/s0"]

    ex = RecordingExecutor()
    s = run_suite(load_suite(path), run_dir=run_dir, cache_dir=tmp_path / "c", tracking_uri="none", executor=ex)
    assert ex.submitted == ["synth/crash/s0"] and len(s.skipped) == 1


def _cell_pids(run_dir: Path) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"bench.runner" in cmd and any(str(run_dir).encode() in c for c in cmd):
                out.append(int(p.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
