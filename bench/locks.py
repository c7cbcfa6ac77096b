"""File locks of the harness: one grid (or import) per run folder, one cell computing a cache entry.

Both are `fcntl.flock` locks, which go with the process: a killed grid never leaves one behind.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from seater.errors import ConfigError


@contextmanager
def cache_lock(path: Path):
    """Hold an exclusive lock on ``<path>.lock`` while one cell computes or reads `path`: parallel
    cells that need the same embeddings or tree then compute them once and the others wait.
    No-op where fcntl is missing (Windows): the atomic writes keep the cache correct anyway."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for {path.name}: another cell is computing it", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def run_lock(run_dir: Path, command: str = "run"):
    """Hold ``<run dir>/.lock`` while a grid runs there (or `import` pushes its rows): a second `run`
    on the same folder (launched twice by mistake) would run the same cells at once, sharing their
    checkpoints and progress files, and an `import` beside a grid would push the rows it is pushing."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield
        return
    with open(run_dir / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ConfigError(f"{run_dir} is in use by another seater-bench command ({holder}): wait for it to end"
                              + (", or give this one another --run-dir" if command == "run" else "")) from None
        except OSError as e:  # a file system without locks (some network mounts): run unguarded, as before
            unlockable = e.strerror
        else:
            unlockable = None
        if unlockable is not None:  # the grid runs outside the handler: its own errors are not chained to this one
            warnings.warn(f"cannot lock {run_dir} ({unlockable}): nothing stops a second command on this folder")
            yield
            return
        fh.seek(0)
        fh.truncate()
        fh.write(f"`{command}`, pid {os.getpid()} on {socket.gethostname()}")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
