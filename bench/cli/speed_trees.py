"""`seater-bench speed trees ...`: build speed and quality of the `balanced` builder vs `constrained`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from bench.cli import fits_in_memory, int_list, markdown_out, measure
from bench.cli.speed import log_line, speed_app
from seater.errors import ConfigError


def _balanced_params(items: list[str] | None, own: tuple[str, ...]) -> dict:
    """`--param key=value` items as balanced builder parameters; unknown keys fail here, before any build.

    `own`: parameters the command sets from its own options (`--device`, `--threads`, ...), which
    would silently win over a `--param` of the same name: those are rejected instead.
    """
    from bench.cli.trees import parse_params
    from seater.trees import BUILDERS

    params = parse_params(items)
    for key in own:
        if key in params:
            raise ConfigError(f"--param {key}=...: use --{key.replace('_', '-')} instead (this command sets {key} from that option)")
    BUILDERS.params("balanced", params)
    return params


@speed_app.command("trees")
def trees(
    sizes: str = typer.Option("20000,361245,1000000", help="catalog sizes (comma-separated)"),
    k: int = typer.Option(16, min=2, help="branching factor"),
    dim: int = typer.Option(64, help="embedding dimension of the synthetic clustered embeddings"),
    seed: int = typer.Option(0, min=0, help="seed of the data and the builders"),
    repeats: int = typer.Option(3, min=1, help="timed builds per size (best and median reported)"),
    compare_constrained_at: int = typer.Option(20000, help="size at which constrained runs on the same data (0 = never)"),
    constrained_repeats: int = typer.Option(1, min=1, help="timed constrained builds (best reported; ~1 min each at 20K items on 2 cores)"),
    max_iter: int = typer.Option(10, help="balanced k-means iterations per level"),
    device: str = typer.Option("cpu", help="cpu, cuda or auto"),
    threads: int = typer.Option(0, help="torch CPU threads during balanced builds (0 = torch's setting)"),
    param: Optional[list[str]] = typer.Option(None, help="balanced builder parameter key=value (repeatable)"),
    out: Path = typer.Option(Path("results/trees/balanced_speed.md"), help="markdown path (JSON beside it), or a folder"),
    note: list[str] = typer.Option([], help="free-text note(s) written into the markdown"),
) -> None:
    """Build seconds of `balanced` per size (and `constrained` at one size, same data, same run)."""
    from bench.speed.trees import TreeSpeedConfig, run_tree_speed, write_results
    from seater.device import resolve_device

    markdown_out(out)
    params = _balanced_params(param, own=("device", "threads", "max_iter"))
    size_list = int_list(sizes, "sizes", minimum=1)
    if compare_constrained_at and compare_constrained_at not in size_list:
        raise ConfigError(f"--compare-constrained-at {compare_constrained_at} is not one of --sizes {sizes} (0 = no constrained build)")
    fits_in_memory(max(size_list) * dim * 4, f"--sizes {max(size_list):,} x --dim {dim} float32 embeddings")
    cfg = TreeSpeedConfig(
        sizes=size_list, k=k, dim=dim, seed=seed, repeats=repeats, compare_constrained_at=compare_constrained_at,
        constrained_repeats=constrained_repeats, device=str(resolve_device(device)), threads=threads, max_iter=max_iter,
        params=params, notes=list(note),
    )
    measure(lambda on_rows: run_tree_speed(cfg, log=log_line, on_rows=on_rows), lambda result, info: write_results(result, out, info, "speed"))


@speed_app.command("trees-quality")
def trees_quality(
    sizes: str = typer.Option("5000,20000", help="catalog sizes (real data: random item subsamples; larger = all items)"),
    seeds: str = typer.Option("0,1,2", help="seeds (data draw/subsample and both builders)"),
    data: str = typer.Option("synthetic,beauty", help="synthetic, beauty (co-occurrence SVD of amazon-beauty) and/or paths to .npy item embeddings"),
    k: int = typer.Option(16, min=2, help="branching factor"),
    dim: int = typer.Option(64, help="embedding dimension"),
    beauty_path: Path = typer.Option(Path("../shared/data/amazon-beauty"), help="folder with sequences.txt"),
    threads: int = typer.Option(0, help="torch CPU threads during balanced builds (0 = torch's setting)"),
    param: Optional[list[str]] = typer.Option(None, help="balanced builder parameter key=value (repeatable)"),
    reuse_constrained: Optional[Path] = typer.Option(
        None, help="JSON of an earlier trees-quality run: reuse its constrained costs for the same data, size and seed"),
    out: Path = typer.Option(Path("results/trees/balanced_quality.md"), help="markdown path (JSON beside it), or a folder"),
    note: list[str] = typer.Option([], help="free-text note(s) written into the markdown"),
) -> None:
    """Total clustering cost of `balanced` / `constrained` on the same embeddings, median over seeds."""
    from bench.speed.trees import TreeQualityConfig, run_tree_quality, write_results

    markdown_out(out)
    params = _balanced_params(param, own=("threads",))
    datasets = tuple(d.strip() for d in data.split(",") if d.strip())
    if not datasets:
        raise ConfigError(f"--data must name at least one of synthetic, beauty or an .npy path, got {data!r}")
    cfg = TreeQualityConfig(
        sizes=int_list(sizes, "sizes", minimum=1), seeds=int_list(seeds, "seeds"), data=datasets,
        k=k, dim=dim, beauty_path=str(beauty_path), threads=threads, params=params,
        reuse_constrained=str(reuse_constrained) if reuse_constrained else None, notes=list(note),
    )
    measure(lambda on_rows: run_tree_quality(cfg, log=log_line, on_rows=on_rows), lambda result, info: write_results(result, out, info, "quality"))
