"""Top-level harness commands: ``run``, ``list``, ``import``, ``leaderboard``, ``compare``.

Heavy imports (torch, MLflow, matplotlib) happen inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from bench.cli import app, output_path
from bench.paired import DEFAULT_METRICS


@app.command("list")
def list_components(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List registered tree builders and retrievers with their default parameters."""
    from bench.registry import describe, missing_modules

    info = describe()
    if as_json:
        typer.echo(json.dumps(info, indent=1, default=str))
        return
    for kind in ("builders", "retrievers"):
        typer.echo(f"{kind}:")
        for e in info[kind]:
            extra = " (needs a tree)" if e.get("needs_tree") else ""
            typer.echo(f"  {e['name']}{extra}: {e['doc']}")
            defaults = ", ".join(f"{k}={v!r}" for k, v in e["defaults"].items())
            typer.echo(f"      defaults: {defaults or '(none)'}")
    missing = missing_modules()
    if missing:
        typer.echo(f"not present in this checkout (skipped): {', '.join(missing)}")


@app.command("run")
def run(
    suite: str = typer.Argument(..., help="Suite TOML file, or the name of one under bench/suites/."),
    run_dir: Optional[Path] = typer.Option(None, help="Where results.jsonl, mlflow.db and logs go \\[default: runs/<suite>]."),
    cache_dir: Path = typer.Option(Path("cache"), help="Cache of item embeddings and trees."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI \\[default: sqlite under the run folder]; 'none' = JSON lines only."),
    results_dir: Path = typer.Option(Path("results"), help="Leaderboards are written to <results-dir>/<suite>/."),
    timeout: Optional[float] = typer.Option(None, help="Kill and record as FAILED a cell running longer than this (seconds; with --workers, time spent waiting for embeddings or a tree another cell is computing counts too)."),
    device: Optional[str] = typer.Option(None, help="Override the suite's device (auto, cpu, cuda)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not forward the cells' own output."),
    workers: int = typer.Option(1, help="Cells run at once, each on usable cores // workers threads (all of them when the grid has one cell; output then only in the cells' logs)."),
    retry_failed: bool = typer.Option(True, help="Rerun cells recorded as FAILED (finished cells are always skipped)."),
    leaderboard: bool = typer.Option(True, help="Write and print the leaderboard at the end."),
    reuse: list[Path] = typer.Option([], help="Another run folder whose finished cells of this suite are copied in, not rerun (repeatable)."),
    only: list[str] = typer.Option([], help="Run only the cells whose name matches this glob, e.g. 'beauty/seater/balanced*' or '*/s0' (repeatable; names as --dry-run lists them)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the cells (their status in the run folder: FINISHED / FAILED / STALE (input files changed since) / TO RUN; id; name) and run nothing."),
) -> None:
    """Run every cell of a suite that has not finished yet, then print its leaderboard."""
    import dataclasses

    from bench.config import load_suite
    from bench.executor import LocalExecutor
    from bench.runner import cell_status, default_run_dir, reuse_file, run_suite, select_cells

    if timeout is not None and not timeout > 0:
        from seater.errors import ConfigError

        raise ConfigError(f"--timeout must be a number of seconds > 0, got {timeout}")
    s = load_suite(suite)
    if device is not None:
        from seater.device import check_device_name

        s = dataclasses.replace(s, device=check_device_name(device))
    every = s.cells()
    cells = select_cells(every, only)
    picked = f" (--only: {len(cells)} of {len(every)})" if only else ""
    typer.echo(f"suite {s.name}: {len(cells)} cells{picked} ({s.path})", err=True)
    executor = LocalExecutor(timeout_s=timeout, show_output=not quiet, workers=workers)  # checks --workers
    if dry_run:
        for src in reuse:
            reuse_file(src)
        status = cell_status(cells, run_dir if run_dir is not None else default_run_dir(s))
        for c in cells:
            typer.echo(f"{status[c.id]:<9} {c.id}  {c.name}")
        return
    for path, option in ((run_dir, "--run-dir"), (cache_dir, "--cache-dir"), (results_dir, "--results-dir")):
        output_path(path, option, folder=True)  # a file there would fail the grid at its first cell, or its end
    if s.device.startswith("cuda"):
        from seater.device import resolve_device

        resolve_device(s.device)  # no CUDA here: one error now, not one FAILED row per model cell
    try:
        summary = run_suite(s, run_dir=run_dir, cache_dir=cache_dir, tracking_uri=tracking_uri, executor=executor,
                            retry_failed=retry_failed, reuse=reuse, only=only)
    except (KeyboardInterrupt, SystemExit) as e:  # Ctrl-C, or SIGTERM (the executor raises SystemExit(143))
        if isinstance(e, KeyboardInterrupt) or e.code == 143:
            typer.echo(f"\ninterrupted: the rows of finished cells are in {(run_dir or default_run_dir(s)) / 'results.jsonl'}; "
                       "run the same command again to finish the rest (training resumes from its last epoch)", err=True)
        raise
    reused = f" ({len(summary.reused)} copied from --reuse)" if summary.reused else ""
    typer.echo(f"ran {len(summary.ran)} cells ({len(summary.failed)} failed), skipped {len(summary.skipped)} finished{reused}; "
               f"results: {summary.runfile}", err=True)
    for r in summary.failed:
        typer.echo(f"  FAILED {r['name']}: {r['error']}", err=True)
    if summary.tracking_uri:
        typer.echo(f"MLflow: {summary.tracking_uri} (experiment {s.name!r}); view with "
                   f"`mlflow ui --backend-store-uri {summary.tracking_uri}`", err=True)
    if summary.tracking_errors:  # each was warned as it happened
        typer.echo(f"MLflow missed rows of this run ({len(summary.tracking_errors)} error(s) above); every row is in "
                   f"{summary.runfile}: push them with `seater-bench import {summary.runfile}"
                   + (f" --tracking-uri {tracking_uri}`" if tracking_uri else "`"), err=True)
    if leaderboard:
        from bench.leaderboard import terminal_view, write_leaderboard

        out = write_leaderboard(summary.runfile, results_dir=results_dir, suite=summary.suite)
        typer.echo(terminal_view(out.markdown_path.read_text()))
        typer.echo(f"leaderboard: {out.markdown_path}", err=True)
    if summary.failed:
        raise typer.Exit(1)


@app.command("import")
def import_cmd(
    runfile: Path = typer.Argument(..., help="A results.jsonl written by `seater-bench run`, or its run folder."),
    tracking_uri: Optional[str] = typer.Option(None, help="MLflow tracking URI \\[default: sqlite beside the file]."),
    experiment: Optional[str] = typer.Option(None, help="Experiment name \\[default: the rows' suite]."),
) -> None:
    """Push the rows of a results file into MLflow (rows already there are skipped)."""
    from bench.tracking import import_runfile

    pushed, skipped = import_runfile(runfile, tracking_uri, experiment)
    typer.echo(f"pushed {pushed} runs, {skipped} already present")


@app.command("leaderboard")
def leaderboard_cmd(
    suite_or_runfile: list[str] = typer.Argument(
        ..., help="A results.jsonl, a run folder, a suite TOML or a suite name; several = one merged table (needs --name)."),
    results_dir: Path = typer.Option(Path("results"), help="Write to <results-dir>/<suite>/."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where `run` put the run folders (used with a suite name)."),
    name: Optional[str] = typer.Option(None, help="Folder name under --results-dir \\[default: the rows' suite]."),
    against: Optional[str] = typer.Option(
        None, help="Glob over row labels naming each dataset's reference row (e.g. '*balanced*'): p-values and "
                   "the change of the primary metric against it instead of the best row."),
) -> None:
    """Aggregate a run over seeds into results/<suite>/leaderboard.md, .csv and plots.

    Several runs give one table (cells they share count once): e.g. a loss ablation and a k sweep
    run as separate suites, compared in one table with p-values against one best row (or the
    --against row).
    """
    from bench.leaderboard import find_runfile, write_leaderboard
    from seater.errors import ConfigError

    if len(suite_or_runfile) > 1 and not name:
        raise ConfigError("several runs make one merged table: name its folder with --name")
    if name is not None and (not name.strip(". ") or "/" in name or "\\" in name):
        raise ConfigError(f"--name is a folder name under --results-dir (no '/'), got {name!r}")
    runfiles = [find_runfile(x, runs_dir) for x in suite_or_runfile]
    out = write_leaderboard(runfiles, results_dir=results_dir, suite=name, against=against)
    typer.echo(out.markdown_path.read_text())
    for p in out.files:
        typer.echo(f"wrote {p}", err=True)


@app.command("compare")
def compare_cmd(
    run_a: str = typer.Argument(..., help="Run A: a results.jsonl, a run folder, a suite TOML or a suite name."),
    run_b: str = typer.Argument(..., help="Run B, the same forms."),
    match: str = typer.Option("cell", help="Pair cells by 'cell' (same dataset / retriever / tree name and seed) or by 'seed' "
                                          "(dataset and seed alone: each cell of one run against the other run's one cell, e.g. SEATER trees vs SASRec)."),
    metrics: Optional[str] = typer.Option(None, help=f"Comma-separated test metrics, as in the per-user files \\[default: {','.join(DEFAULT_METRICS)} at the cut-offs both runs have]."),
    runs_dir: Path = typer.Option(Path("runs"), help="Where `run` put the run folders (used with a suite name)."),
    out: Optional[Path] = typer.Option(None, help="Also write the table, with its provenance, to this markdown file."),
) -> None:
    """Run A against run B, cell by cell: means over users and seeds, change, paired t-test p over users.

    Cells pair within each seed, and their test users must be the same. The leaderboard's p only
    compares rows of one table with its best row; this asks whether one change (embeddings, a
    later commit, another retriever) moved the same cells.
    """
    from bench.cli import output_path
    from bench.leaderboard import find_runfile
    from bench.paired import compare_runs, markdown_table
    from bench.provenance import markdown_header, provenance, shown_path

    output_path(out, "--out")
    a, b = find_runfile(run_a, runs_dir), find_runfile(run_b, runs_dir)
    rows = compare_runs(a, b, None if metrics is None else [m.strip() for m in metrics.split(",") if m.strip()], match)
    table = markdown_table(rows)
    typer.echo(f"A = {a}\nB = {b}\n" + "\n".join(table))
    if out is not None:
        head = ["# Paired comparison", "", markdown_header(provenance()).rstrip("\n"), f"- A: `{shown_path(a)}`", f"- B: `{shown_path(b)}`",
                f"- cells paired by {match}, users matched per seed; p = two-sided paired t-test over the users, each user's values averaged over "
                "the seeds (* p < 0.05), which leaves out training noise: `per seed` shows whether the sign holds from one training run to the next", ""]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(head + table) + "\n")
        typer.echo(f"wrote {out}", err=True)
