"""Executors: where cells run. The interface is one method, so a Ray executor can follow.

``submit(cells, context, on_result) -> rows``: run every cell, call ``on_result(row)`` as soon as
each one ends (the runner records it there), return the rows. A row's ``status`` is FINISHED
or FAILED; an executor never raises because a cell failed.

`LocalExecutor` runs each cell in a fresh Python process
(``python -m bench.runner CELL.json RESULT.json``), so a crash, an ``os._exit`` or the OOM
killer ends that cell only: the parent then records it FAILED with the exit status and the
last lines of the cell's log (``<run dir>/logs/<cell id>.log``). With ``workers > 1`` it keeps
that many cells running at once (a CPU grid on a many-core machine); rows are still recorded
by the calling thread, one at a time, in the order cells end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from bench.config import Cell
from bench.provenance import REPO_ROOT

OnResult = Callable[[dict[str, Any]], None]


@dataclass
class CellContext:
    """What every cell of a run shares."""

    run_dir: Path
    cache_dir: Path
    provenance: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    def submit(self, cells: Sequence[Cell], context: CellContext, on_result: OnResult | None = None) -> list[dict[str, Any]]: ...


ATTEMPT = "=== attempt started"  # the line that opens each attempt's part of a cell's log


def _tail(path: Path, n: int = 8) -> str:
    """The last lines of the latest attempt in a cell's log (earlier attempts' output is kept above it)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    if ATTEMPT in text:  # from the latest attempt's header line on, without it
        text = text.rpartition(ATTEMPT)[2].partition("\n")[2]
    lines = [ln for ln in text.replace("\r", "\n").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def _die_with_parent() -> None:
    """In the cell process (Linux): get SIGKILL when the grid process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _raise_on_sigterm():
    """Turn SIGTERM of the grid into an exception so the running cell is killed with it."""
    import threading as _t

    if _t.current_thread() is not _t.main_thread():
        return None

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers and `taskset` narrow), not
    all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


class LocalExecutor:
    """One subprocess per cell, `workers` of them at a time.

    timeout_s: a cell running longer is killed and recorded FAILED (None = no limit).
    show_output: forward the cell's output (its progress bars) to this process's stderr; only
        with one worker (the bars of parallel cells would interleave: read their logs instead).
    progress: a tqdm bar over the grid.
    workers: cells run at once. Each then gets ``usable_cores() // min(workers, cells)`` CPU threads
        (through OMP_NUM_THREADS / MKL_NUM_THREADS, unless those are set already), so parallel
        cells do not oversubscribe the cores, and a grid of fewer cells than workers still uses
        them all. Timings depend on it, and results only as a thread count does: floating-point
        sums in another order (measured: SASRec item embeddings differing by 6e-8, the same test
        metrics); each row records its cell's ``torch_threads``.
    """

    def __init__(self, timeout_s: float | None = None, show_output: bool = True, progress: bool = True, workers: int = 1):
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            from seater.errors import ConfigError

            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        self.timeout_s = timeout_s
        self.workers = workers
        self.show_output = show_output and workers == 1
        self.progress = progress
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False  # set when the grid is interrupted: a cell starting now is killed at once
        self._at_once = workers  # cells that run side by side in the grid being submitted

    def submit(self, cells: Sequence[Cell], context: CellContext, on_result: OnResult | None = None) -> list[dict[str, Any]]:
        from tqdm.auto import tqdm

        rows = []
        bar = tqdm(total=len(cells), desc="grid", unit="cell", disable=not self.progress, position=0)
        n_failed = 0
        previous = _raise_on_sigterm()
        self._stopping = False
        self._at_once = max(1, min(self.workers, len(cells)))
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cell")
        pending: dict[Any, tuple[int, Cell]] = {}
        try:
            if self.workers > 1:
                bar.write(f"{len(cells)} cells, {self._at_once} at a time; their output: {context.run_dir / 'logs'}/<cell id>.log")
            pending = {pool.submit(self.run_one, cell, context): (i, cell) for i, cell in enumerate(cells)}
            while pending:
                bar.set_postfix_str(min(pending.values(), key=lambda p: p[0])[1].name[-60:])
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: pending[f][0]):
                    pending.pop(fut)
                    row = fut.result()
                    n_failed += row["status"] != "FINISHED"
                    if on_result is not None:
                        on_result(row)
                    rows.append(row)
                    bar.update(1)
                    if self.workers > 1:
                        bar.write(f"{row['status']} {row['name']}")
                if n_failed:
                    bar.set_description(f"grid ({n_failed} failed)")
        except BaseException:  # Ctrl-C / kill of the grid: take the running cells down with it
            for fut in pending:
                fut.cancel()
            self._kill_all()
            raise
        finally:
            pool.shutdown(wait=True)
            bar.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        return rows

    def _kill_all(self) -> None:
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _cell_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("TQDM_MININTERVAL", "2")  # progress bars end up in log files: a line every 2 s at most
        if self._at_once > 1:
            threads = str(max(1, usable_cores() // self._at_once))
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                env.setdefault(var, threads)
        return env

    def run_one(self, cell: Cell, context: CellContext) -> dict[str, Any]:
        from bench.runner import make_row

        work = context.run_dir / "cells"
        logs = context.run_dir / "logs"
        work.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        spec_path, result_path, log_path = work / f"{cell.id}.json", work / f"{cell.id}.result.json", logs / f"{cell.id}.log"
        result_path.unlink(missing_ok=True)
        spec_path.write_text(json.dumps({
            "cell": cell.to_json(), "run_dir": str(context.run_dir), "cache_dir": str(context.cache_dir),
            "provenance": context.provenance, "progress": True,  # the log file gets it even when not forwarded
        }))
        env = self._cell_env()
        started = time.time()
        with open(log_path, "ab") as log:  # appended: an earlier attempt's traceback stays (its row points here)
            log.write(f"{ATTEMPT} {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            proc = subprocess.Popen([sys.executable, "-m", "bench.runner", str(spec_path), str(result_path)],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                    preexec_fn=_die_with_parent)
            with self._lock:
                self._procs.add(proc)
                if self._stopping:
                    os.killpg(proc.pid, signal.SIGKILL)
            pump = threading.Thread(target=self._pump, args=(proc.stdout, log), daemon=True)
            pump.start()
            timed_out = False
            try:
                code = proc.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
            except BaseException:  # Ctrl-C / kill of the grid: take the cell down with it
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise
            finally:
                with self._lock:
                    self._procs.discard(proc)
            pump.join(timeout=10)
        if result_path.is_file() and not timed_out:
            return json.loads(result_path.read_text())
        if timed_out:
            why = f"cell timed out after {self.timeout_s:g} s and was killed"
        elif code < 0:
            why = f"cell process killed by signal {signal.Signals(-code).name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
        else:
            why = f"cell process exited with code {code} without a result"
        tail = _tail(log_path)
        return make_row(cell, "FAILED", started, time.time(), context.provenance, None,
                        why + (f"; log {log_path}: {tail}" if tail else ""))

    def _pump(self, stream, log) -> None:
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            log.write(chunk)
            log.flush()
            if self.show_output:
                sys.stderr.buffer.write(chunk) if hasattr(sys.stderr, "buffer") else sys.stderr.write(chunk.decode(errors="replace"))
                sys.stderr.flush()
