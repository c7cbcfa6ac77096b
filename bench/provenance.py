"""Who/what/where made a result: command, commit, hardware, library versions.

Every file written under results/ starts with this block, so any figure can be traced and rerun.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import subprocess
import sys
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
    return info


def markdown_header(info: dict[str, Any], data: str | None = None) -> str:
    """A block to put at the top of a results markdown file."""
    lines = [f"- command: `{info['command']}`", f"- commit: `{info['commit']}`", f"- hardware: {info['hardware']}"]
    if data:
        lines.append(f"- data: {data}")
    lines.append(f"- date: {info['date']}; python {info['python']}" + (f", torch {info['torch']}" if "torch" in info else ""))
    return "\n".join(lines) + "\n"


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
