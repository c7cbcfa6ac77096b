"""`seater-bench data ...`: dataset statistics and synthetic data."""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli import app, output_path
from seater.errors import ConfigError

data_app = typer.Typer(help="Inspect datasets and generate synthetic ones.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("stats")
def stats(
    path: Path = typer.Argument(..., help="Dataset directory or file."),
    format: str = typer.Option("auto", "--format", "-f", help="auto, s3rec, comirec, lightgcn or yambda."),
) -> None:
    """Print users, items, interactions, density and sequence lengths of a dataset."""
    import numpy as np

    from seater.data.loaders import load_dataset

    inter = load_dataset(path, format=format)
    lengths = inter.lengths()
    n_attr = None
    if inter.item_attributes is not None:
        n_attr = len({int(a) for attrs in inter.item_attributes for a in np.asarray(attrs).tolist()})
    rows = [
        ("dataset", inter.name),
        ("users", f"{inter.n_users}"),
        ("items", f"{inter.n_items}"),
        ("interactions", f"{inter.n_interactions}"),
        ("density", f"{inter.n_interactions / (inter.n_users * inter.n_items):.6f}"),
        ("length mean", f"{lengths.mean():.2f}"),
        ("length median", f"{np.median(lengths):g}"),
        ("length min/max", f"{lengths.min()} / {lengths.max()}"),
    ]
    if n_attr is not None:
        rows.append(("attributes", f"{n_attr}"))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        typer.echo(f"{key:<{width}}  {value}")


@data_app.command("synth")
def synth(
    users: int = typer.Option(..., "--users", min=1, help="Number of users."),
    items: int = typer.Option(..., "--items", min=1, help="Number of items."),
    out: Path = typer.Option(..., "--out", help="Output directory: sequences.txt + item2attributes.json (S3-Rec format), item_cluster.npy, item_latent.npy."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed; the same seed gives the same files."),
    clusters: int | None = typer.Option(None, "--clusters", min=1, help="Latent item clusters, at most --items (default: round(sqrt(items)))."),
    mean_length: float = typer.Option(12.0, "--mean-length", help="Mean sequence length (>= 3)."),
    force: bool = typer.Option(False, "--force", help="Overwrite a dataset already in --out."),
) -> None:
    """Write a synthetic dataset with planted cluster and sequential structure."""
    import numpy as np

    from seater.data.loaders import write_s3rec
    from seater.data.synthetic import make_synthetic

    output_path(out, "--out", folder=True)
    if (out / "sequences.txt").exists() and not force:  # a typo must not overwrite real data
        raise ConfigError(f"--out {out}: already holds a dataset (sequences.txt); pass --force to overwrite it")
    if clusters is not None and clusters > items:
        raise ConfigError(f"--clusters {clusters}: at most --items ({items})")
    inter = make_synthetic(users, items, n_clusters=clusters, mean_length=mean_length, seed=seed, name=out.name)
    write_s3rec(inter, out)
    # loading renumbers the items that occur 1..n in id order, so the per-item arrays keep only
    # their rows (row i = item i+1 of the loaded dataset); an item never drawn has no row
    used = np.unique(np.concatenate(inter.sequences)) - 1
    np.save(out / "item_cluster.npy", inter.extra["item_cluster"][used])
    np.save(out / "item_latent.npy", inter.extra["item_latent"][used])
    unused = f" ({inter.n_items - len(used)} of the {inter.n_items} items never drawn, left out)" if len(used) < inter.n_items else ""
    typer.echo(f"wrote {inter.n_users} users, {len(used)} items, {inter.n_interactions} interactions to {out}{unused}")
