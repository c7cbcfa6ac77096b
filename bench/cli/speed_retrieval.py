"""`seater-bench speed retrieval ...`: SEATER beam search and training vs exact top-K."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli import fits_in_memory, int_list, measure, output_path
from bench.cli.speed import speed_app
from seater.errors import ConfigError


@speed_app.command("retrieval")
def retrieval(
    sizes: str = typer.Option("12101,361000,1000000", help="catalog sizes (comma-separated)"),
    k: int = typer.Option(16, min=2, help="branching factor of the synthetic balanced trees"),
    beam: int = typer.Option(50, min=1, help="beam width of the catalog-size curve"),
    topk: int = typer.Option(50, min=1, help="items returned per user"),
    beams: str = typer.Option("10,20,50,100", help="beam widths of the beam curve (at the first size)"),
    users: int = typer.Option(512, min=1, help="users timed per size up to 100K items"),
    users_large: int = typer.Option(128, min=1, help="users timed per size above 100K items"),
    batch: int = typer.Option(256, min=1, help="users per beam-search / top-K call"),
    train_batch: int = typer.Option(256, min=1, help="training batch size"),
    train_steps: int = typer.Option(10, min=1, help="timed training steps"),
    repeats: int = typer.Option(3, min=1, help="timed runs of every measurement after a warm-up (the median is reported)"),
    device: str = typer.Option("cpu", help="cpu, cuda or auto"),
    threads: int = typer.Option(1, min=1, help="torch CPU threads"),
    attention: str = typer.Option("default", help="attention kernels, comma-separated: default (what a run uses: decoding math on CUDA, torch's choice on CPU), auto (torch's choice) and/or math (plain matmuls + softmax); the first is used throughout, the others are timed beside it"),
    compile: str = typer.Option("", help="torch.compile modes, comma-separated (default, reduce-overhead = + CUDA graphs, max-autotune, ...): for each, also time training with the loss compiled (first size; the compile is timed apart)"),
    out: Path = typer.Option(Path("results/seater"), help="output folder (markdown, JSON, PNG)"),
    note: list[str] = typer.Option([], help="free-text note(s) written into the markdown"),
) -> None:
    """Beam-search users/s (vs catalog size and beam width), exact inner-product top-K users/s, training samples/s."""
    from bench.speed.retrieval import RetrievalSpeedConfig, run_retrieval_speed, write_results
    from seater.device import resolve_device

    if out.suffix in (".md", ".json", ".png"):
        raise ConfigError(f"--out {out}: a folder (speed_retrieval.md, .json and .png are written in it)")
    output_path(out, "--out", folder=True)
    size_list = int_list(sizes, "sizes", minimum=1)
    fits_in_memory(max(size_list) * RetrievalSpeedConfig.d_model * 4, f"--sizes {max(size_list):,} items' d = {RetrievalSpeedConfig.d_model} tables")
    if beam < topk:
        raise ConfigError(f"--beam {beam} is below --topk {topk}: a beam of W returns W items, so the size curve would not be top-{topk}")
    if min(size_list) < topk:  # the rows would be labelled top-K over padded lists
        raise ConfigError(f"--sizes {min(size_list):,}: a catalog below --topk {topk} items")
    beam_list = int_list(beams, "beams", minimum=1)
    if max(beam_list) > size_list[0]:  # nothing pruned: not a point of the beam curve
        raise ConfigError(f"--beams {max(beam_list)}: wider than the first size's catalog ({size_list[0]:,} items)")
    if beam > min(size_list):
        raise ConfigError(f"--beam {beam}: wider than the catalog of --sizes {min(size_list):,}")
    dev = resolve_device(device)
    cfg = RetrievalSpeedConfig(
        sizes=size_list, k=k, beam=beam, topk=topk, beams=beam_list, users=users, users_large=users_large,
        batch=batch, train_batch=train_batch, train_steps=train_steps, repeats=repeats, device=str(dev), threads=threads, notes=list(note),
        attentions=_attentions(attention), compile=_compile_modes(compile),
    )
    measure(lambda on_rows: run_retrieval_speed(cfg, log=typer.echo, on_rows=on_rows),
            lambda result, info: write_results(result, out, info, png=not info.get("incomplete")))


def _attentions(text: str) -> tuple[str, ...]:
    names = tuple(a.strip() for a in text.split(",") if a.strip())
    bad = [a for a in names if a not in ("default", "math", "auto")]
    if not names or bad or len(set(names)) < len(names):
        raise typer.BadParameter(f"--attention takes default, auto and/or math, comma-separated, each once; got {text!r}")
    return names


def _compile_modes(text: str) -> tuple[str, ...]:
    from bench.speed.retrieval import COMPILE_MODES

    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in modes if m not in COMPILE_MODES]
    if bad or len(set(modes)) < len(modes) or (text.strip() and not modes):
        raise typer.BadParameter(f"--compile takes {', '.join(COMPILE_MODES)}, comma-separated, each once; got {text!r}")
    return modes
