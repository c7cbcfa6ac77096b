"""Who/what/where made a result: command, commit, hardware, library versions, and what else held the machine.

Every file written under results/ starts with this block, so any figure can be traced and rerun.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> str:
    """One line: GPU name if CUDA is used, else CPU model and core count."""
    text = f"{cpu_model()} ({os.cpu_count()} cores)"
    try:
        import torch

        if torch.cuda.is_available():
            text = f"{torch.cuda.get_device_name(0)} + {text}"
    except ImportError:
        pass
    return text


def provenance(command: str | None = None) -> dict[str, Any]:
    """Commit (with a `-dirty` mark when the tree has uncommitted changes), hardware and versions.

    $SEATER_BENCH_COMMIT, when set, wins: the copy of the tree on a lent GPU machine has no
    git history, or one that does not match the files sent (seen: a stale HEAD marked dirty).
    """
    commit = os.environ.get("SEATER_BENCH_COMMIT", "")
    if not commit:
        commit = _git("rev-parse", "--short=10", "HEAD") or "unknown"
        if _git("status", "--porcelain", "--untracked-files=no"):
            commit += "-dirty"
    info: dict[str, Any] = {
        "command": command if command is not None else " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]]),
        "commit": commit,
        "hardware": hardware(),
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
    except ImportError:
        pass
    if os.environ.get("OMP_WAIT_POLICY"):  # set by the user or by the CLI on a busy machine: it changes timings
        info["omp_wait_policy"] = os.environ["OMP_WAIT_POLICY"]
    if os.environ.get(PATCH_ENV):  # a diagnostic patch loaded at start-up: its rows are not the code's own
        info["patch"] = os.environ[PATCH_ENV]
    info["libraries"] = library_versions()
    return info


# set by a start-up patch (e.g. results/baselines/scripts/torch_dropout/sitecustomize.py) to its name
PATCH_ENV = "SEATER_BENCH_PATCH"


# the libraries whose versions move the numbers: the tree builders' (faiss, k-means-constrained and its
# OR-Tools solver) and numpy; torch has its own field
LIBRARIES = ("numpy", "faiss-cpu", "faiss-gpu", "k-means-constrained", "ortools", "scipy")


def library_versions() -> dict[str, str]:
    """Installed versions of `LIBRARIES` (from package metadata: nothing is imported); absent ones left out."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def markdown_header(info: dict[str, Any], data: str | None = None) -> str:
    """A block to put at the top of a results markdown file."""
    lines = [f"- command: `{info['command']}`", f"- commit: `{info['commit']}`", f"- hardware: {info['hardware']}"]
    if data:
        lines.append(f"- data: {data}")
    lines.append(f"- date: {info['date']}; python {info['python']}" + (f", torch {info['torch']}" if "torch" in info else ""))
    if info.get("libraries"):
        lines.append("- libraries: " + ", ".join(f"{name} {v}" for name, v in info["libraries"].items()))
    if info.get("machine_load"):
        lines.append(f"- other work on the machine: {load_text(info['machine_load'])}")
    if info.get("omp_wait_policy"):
        lines.append(f"- OMP_WAIT_POLICY={info['omp_wait_policy']}")
    if info.get("patch"):
        lines.append(f"- **patched**: {info['patch']} (a start-up patch changed the code this ran)")
    if info.get("incomplete"):
        lines.append("- **incomplete**: written while the run went on; it stopped, or is still going, after the rows below")
    return "\n".join(lines) + "\n"


BUSY_SHARE = 0.25  # other work on more than this share of the cores makes a timing "busy"


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy, steal) CPU seconds of the whole machine since boot, from /proc/stat (None elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in (fields[1:] + ["0"] * 8)[:8])
    except (OSError, ValueError, IndexError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / hz, steal / hz


def _own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class MachineLoad:
    """What the rest of the machine did while a benchmark ran: the CPU time of every other process
    (all CPU time minus this process and its children) and the hypervisor's steal, each as cores
    busy on average. Figures taken on a shared or stolen-from machine then say so in their header,
    instead of a later note guessing at "a slow hour". Start it before the timed work."""

    def __init__(self) -> None:
        self._start = (time.perf_counter(), _cpu_seconds(), _own_cpu_seconds())

    def elapsed(self) -> float:
        """Seconds since this started."""
        return time.perf_counter() - self._start[0]

    def summary(self) -> dict[str, Any] | None:
        """{"seconds", "cores", "other_cores", "steal_cores", "busy"}; None off Linux or under 0.1 s (10 ms clock ticks)."""
        t0, c0, own0 = self._start
        t1, c1, own1 = time.perf_counter(), _cpu_seconds(), _own_cpu_seconds()
        wall = t1 - t0
        if c0 is None or c1 is None or wall < 0.1:
            return None
        cores = os.cpu_count() or 1
        # clamped to [0, cores]: over short spans the 10 ms ticks can overshoot either way
        other = min(max(0.0, (c1[0] - c0[0]) - (own1 - own0)) / wall, cores)
        steal = min(max(0.0, c1[1] - c0[1]) / wall, cores)
        return {"seconds": round(wall, 1), "cores": cores, "other_cores": round(other, 2), "steal_cores": round(steal, 2),
                "busy": other + steal > BUSY_SHARE * cores}


def load_text(load: dict[str, Any]) -> str:
    """One line for a header: cores used by other processes and stolen, and whether that was busy."""
    text = (f"{load['other_cores']:.2f} of {load['cores']} cores used by other processes and {load['steal_cores']:.2f} "
            f"stolen by the hypervisor, on average over the {load['seconds']:.0f} s run")
    return text + (" (busy: times are slower than on an idle machine)" if load["busy"] else "")


def record_load(info: dict[str, Any], load: MachineLoad) -> None:
    """Put `load`'s summary into `info` (so the header and JSON carry it) and warn on stderr when busy."""
    info["machine_load"] = load.summary()
    if info["machine_load"] and info["machine_load"]["busy"]:
        print(f"warning: {load_text(info['machine_load'])}", file=sys.stderr)


def shown_path(path: Path) -> str:
    """`path` relative to the working directory when it lies under it, so a results file does not
    carry the absolute path of the machine (or temporary clone) that wrote it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def probe_header(script: str, argv: list[str]) -> list[str]:
    """Provenance lines for a probe script's markdown (`results/*/*_probe.py`): the command as one
    can paste it again (JSON arguments quoted), commit, hardware and date."""
    info = provenance(f"python {script} " + " ".join(f"'{a}'" if "{" in a else a for a in argv))
    return [f"- {key}: `{info[key]}`" for key in ("command", "commit", "hardware", "date")]


def write_markdown(lines: list[str], out: str | None) -> None:
    """`lines` to the file `out` (and say so), or to stdout when there is none."""
    text = "\n".join(lines) + "\n"
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}")
    else:
        print(text, end="")
