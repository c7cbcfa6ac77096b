"""`seater-bench` command line. Each sub-command group lives in its own module.

Errors derived from `SeaterError`, and OS errors on the paths given (a folder where a file should
go, a missing permission), are printed as one line (no traceback) and exit with code 2.
"""

from __future__ import annotations

import os
import sys
import time

import typer

from bench.provenance import MachineLoad
from seater.errors import ConfigError, SeaterError

app = typer.Typer(help="seater-bench: identifier trees and generative retrievers under one harness.", no_args_is_help=True)


def _integer(text: str) -> int:
    """``20000`` or ``2e4`` as an int; ``1.5``, ``1e400`` or ``x`` raise ValueError."""
    try:
        return int(text)
    except ValueError:
        value = float(text)
        if not value.is_integer():  # also inf and nan
            raise ValueError(text) from None
        return int(value)


def int_list(text: str, name: str, minimum: int = 0) -> tuple[int, ...]:
    """A comma-separated option such as ``--sizes 20000,361245`` (or ``2e4``) as a tuple of ints >= minimum."""
    try:
        vals = tuple(_integer(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{name} must be a comma-separated list of integers, got {text!r}") from None
    if not vals or min(vals) < minimum:
        raise ConfigError(f"--{name} must list integers >= {minimum}, got {text!r}")
    if len(set(vals)) < len(vals):  # a repeated size or seed would be one more row of the same thing
        raise ConfigError(f"--{name} lists a value twice: {text!r}")
    return vals


def output_path(path, option: str, folder: bool = False):
    """`path` checked before any work: a file option must not name a folder, a folder option not a
    file, and no parent may be a file. Otherwise the error would only come at the end, after a long
    build, as a bare "File exists". Returns `path`; None passes through."""
    if path is None:
        return None
    from pathlib import Path

    p = Path(path)
    if p.exists() and p.is_dir() != folder:
        raise ConfigError(f"{option} {p}: " + ("is a file, expected a folder" if folder else "is a folder, expected a file path"))
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {p}: {parent} is a file, not a folder")
            break
    return path


def fits_in_memory(nbytes: int, what: str) -> None:
    """One error before any work when `what` alone needs more than this machine's memory, instead of a
    MemoryError traceback after the smaller sizes ran."""
    try:
        page, pages = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    total = page * pages
    if page > 0 and pages > 0 and nbytes > total:  # sysconf answers -1 for "unknown"
        raise ConfigError(f"{what} need {nbytes / 2**30:,.1f} GiB, more than this machine's {total / 2**30:,.1f} GiB of memory")


def markdown_out(out, option: str = "--out") -> None:
    """A benchmark's --out: its markdown file (the JSON goes beside it, so it cannot be a .json path), or
    a folder for the default file names (anything but a .md path is a folder, ``results/2024.06`` too)."""
    from pathlib import Path

    out = Path(out)
    if out.suffix in (".json", ".csv", ".txt", ".png", ".html"):
        raise ConfigError(f"{option} {out}: give a .md path (the JSON is written beside it) or a folder")
    output_path(out, option, folder=out.suffix != ".md")


def measure(run, write) -> None:
    """Run a benchmark and write its files after every row it reports, then once more at the end.

    `run(on_rows)` calls `on_rows(result so far)`; `write(result, info)` writes the files and returns
    their paths. A run that dies or is killed mid-way (a crash, the time limit of a lent GPU) keeps
    what it measured, its header marked incomplete; every header names the machine's load so far."""
    from bench.provenance import provenance, record_load

    info, load = provenance(), MachineLoad()
    result = run(lambda partial: write(partial, {**info, "machine_load": load.summary(), "incomplete": True}))
    record_load(info, load)
    for path in write(result, info):
        typer.echo(f"wrote {path}")


def _register() -> None:
    # Each module adds its commands/groups to `app`; imports stay light (heavy ones inside commands).
    from bench.cli import data, experiments, speed, speed_epoch, speed_retrieval, speed_trees, trees  # noqa: F401


def openmp_wait_policy(load: MachineLoad | None = None, sample_s: float = 0.1) -> str | None:
    """Let OpenMP threads wait passively when other processes hold the cores as the command starts.

    torch's GNU OpenMP threads spin ~300,000 times at every barrier before they sleep. On an idle
    2-core machine that pays (20K-item `balanced` build 0.67 s, passive 1.42 s: results/trees/
    omp_wait_idle.md), but when other work holds a core the spinning thread waits for a descheduled
    one: the same build took 18.7 s instead of 1.6 s (omp_wait_load1.md), up to 75x slower beside
    training jobs. So: passive on a busy machine (as `MachineLoad` defines it, measured over at
    least `sample_s` since `load` started; `main` starts it before registering the commands, whose
    imports then fill most of the window instead of a sleep), the library default otherwise, and
    never over a choice the user made. Must run before torch is imported (OpenMP reads the
    variable once); child processes inherit it. Returns the policy set, or None."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ or "torch" in sys.modules:
        return None
    load = load or MachineLoad()
    time.sleep(max(0.0, sample_s - load.elapsed()))
    summary = load.summary()
    if not summary or not summary["busy"]:
        return None
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    print(f"note: other processes hold {summary['other_cores'] + summary['steal_cores']:.1f} of {summary['cores']} cores, "
          "so OpenMP threads wait passively (OMP_WAIT_POLICY=PASSIVE; set it yourself to choose)", file=sys.stderr)
    return "PASSIVE"


# the commands that compute with torch (cells, tree builds, timings): the others (tables, imports, listings)
# need neither the wait policy nor its sample of the machine nor its note
TORCH_COMMANDS = ("run", "speed", "trees")


def main() -> None:
    load = MachineLoad()
    _register()
    if len(sys.argv) > 1 and sys.argv[1] in TORCH_COMMANDS:
        openmp_wait_policy(load)
    try:
        app()
    except SeaterError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a path the user gave: a folder where a file goes, no permission, no room
        print(f"error: {e.filename}: {e.strerror}" if e.filename else f"error: {e}", file=sys.stderr)
        sys.exit(2)
