"""`seater-bench speed epoch ...`: training epochs of retrievers on a real dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bench.cli import markdown_out, measure
from bench.cli.speed import log_line, speed_app


@speed_app.command("epoch")
def epoch(
    data: Path = typer.Option(..., help="dataset path (e.g. ../shared/data/amazon-beauty)"),
    data_format: str = typer.Option("auto", "--format", help="auto, s3rec, comirec, lightgcn or yambda"),
    retrievers: str = typer.Option("seater,sasrec", help="comma-separated retrievers that train in epochs; NAME@LABEL is a variant row (seater,seater@norank)"),
    param: Optional[list[str]] = typer.Option(None, help="retriever:key=value override (repeatable), e.g. seater@norank:use_rank=false"),
    epochs: int = typer.Option(2, min=1, help="epochs per retriever"),
    k: int = typer.Option(16, min=2, help="branching factor of the tree given to retrievers that need one"),
    device: str = typer.Option("cpu", help="cpu, cuda or auto"),
    threads: int = typer.Option(1, min=1, help="torch CPU threads"),
    seed: int = typer.Option(0, min=0),
    out: Path = typer.Option(Path("results/seater/speed_epoch.md"), help="markdown path (JSON beside it), or a folder"),
    note: list[str] = typer.Option([], help="free-text note(s) written into the markdown"),
) -> None:
    """Epoch time, training samples/s and the share of each epoch spent making batches, per retriever."""
    from bench.cli.trees import parse_named_params
    from bench.speed.epoch import EpochSpeedConfig, run_epoch_speed, write_results
    from seater.device import resolve_device
    from seater.errors import ConfigError

    markdown_out(out)
    names = tuple(r.strip() for r in retrievers.split(","))
    if not all(names) or len(set(names)) < len(names):
        raise ConfigError(f"--retrievers must be distinct comma-separated names, got {retrievers!r}")
    cfg = EpochSpeedConfig(data=str(data), retrievers=names, params=parse_named_params(param, "retriever"), epochs=epochs, k=k, data_format=data_format,
                           device=str(resolve_device(device)), threads=threads, seed=seed, notes=list(note))
    measure(lambda on_rows: run_epoch_speed(cfg, log=log_line, on_rows=on_rows), lambda result, info: write_results(result, out, info))
