"""`seater-bench trees ...`: build, inspect and compare identifier trees."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from bench.cli import app, int_list, measure, output_path
from seater.errors import ConfigError

trees_app = typer.Typer(help="Build, inspect and compare identifier trees.", no_args_is_help=True)
app.add_typer(trees_app, name="trees")


def parse_params(items: list[str] | None) -> dict:
    """``key=value`` strings -> dict; values read as JSON (2000, true, null, 0.5), else as text."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--param {item!r}: expected key=value")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--param {item!r}: the parameter name before = is empty")
        if key in out:
            raise ConfigError(f"--param {key} is given twice")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = {"True": True, "False": False, "None": None}.get(value, value)
    return out


def parse_named_params(items: list[str] | None, kind: str) -> dict[str, dict]:
    """``NAME:key=value`` strings (NAME may be a ``name@label`` variant) -> {NAME: {key: value}}."""
    out: dict[str, dict] = {}
    for item in items or []:
        name, _, rest = item.partition(":")
        if not rest:
            raise ConfigError(f"--param {item!r}: expected {kind}:key=value")
        new = parse_params([rest])
        if new.keys() & out.get(name, {}).keys():
            raise ConfigError(f"--param {name}:{next(iter(new))} is given twice")
        out.setdefault(name, {}).update(new)
    return out


def _device_params(names: list[str], params: dict[str, dict], device: str | None) -> tuple[dict[str, dict], list[str]]:
    """Apply ``--device`` to every builder among `names` that has a ``device`` parameter.

    Returns the per-builder params and the builders that run on CPU whatever the device (the
    caller decides whether that is an error). A ``device`` also given by ``--param`` is an error.
    """
    from bench.registry import builders
    from seater.device import check_device_name, resolve_device

    if device is None:
        return params, []
    check_device_name(device)
    out, cpu_only = {name: dict(p) for name, p in params.items()}, []
    for label in names:
        if "device" not in builders().get(label.partition("@")[0]).defaults:
            cpu_only.append(label)
        elif "device" in out.get(label, {}):
            raise ConfigError(f"the device of {label!r} is given twice: by --device and by --param")
        else:
            out.setdefault(label, {})["device"] = device
    if len(cpu_only) < len(names):
        resolve_device(device)  # a missing GPU fails here, before any build
    return out, cpu_only


def _summary(q: dict, seconds: float) -> str:
    """`q`: `tree_quality` and `off_nearest` of one tree, merged."""
    flat = "none: k >= items, every item hangs off the root"
    levels = ", ".join(f"{c:.4f}" for c in q["cost_per_level"]) or flat
    off_levels = ", ".join(f"{c:.2%}" for c in q["off_nearest_per_level"]) or flat
    return (
        f"{q['n_items']} items, k={q['k']}, depth {q['depth']}, {q['n_nodes']} nodes, balanced: {'yes' if q['balanced'] else 'no'}\n"
        f"total cost {q['total_cost']:.4f} (per level: {levels}; root variance {q['root_cost']:.4f}), gini {q['gini']:.3f}\n"
        f"items off their nearest centroid {q['off_nearest']:.2%} (per level: {off_levels})\n"
        + ("build time not recorded" if math.isnan(seconds) else f"build {seconds:.2f} s")
    )


@trees_app.command("build")
def build(
    embeddings: Path = typer.Option(..., help=".npy float matrix (n_items, d); row i = item i+1"),
    builder: str = typer.Option(..., help="registered builder name"),
    k: int = typer.Option(16, min=2, help="branching factor"),
    seed: int = typer.Option(0, min=0),
    param: Optional[list[str]] = typer.Option(None, help="builder parameter key=value (repeatable)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto, for builders with a device parameter (balanced, rqvae)"),
    out: Path = typer.Option(..., help="output tree .npz"),
) -> None:
    """Build one tree, save it, print its quality."""
    from bench.registry import builders
    from seater.trees.checks import load_embeddings
    from seater.trees.quality import off_nearest, tree_quality

    output_path(out, "--out")
    entry = builders().get(builder)  # every registered builder, rqvae included
    by_name, cpu_only = _device_params([builder], {builder: parse_params(param)}, device)
    if cpu_only and device not in ("cpu", "auto"):
        with_device = ", ".join(e.name for e in builders() if "device" in e.defaults)
        raise ConfigError(f"tree builder {builder!r} runs on CPU only; --device applies to: {with_device}")
    params = by_name[builder]
    builders().params(builder, params)
    x = load_embeddings(embeddings)
    tree = entry.factory(x, k, seed=seed, **params)
    tree.save(out)
    typer.echo(_summary({**tree_quality(tree, x), **off_nearest(tree, x)}, tree.build_seconds()))
    for note in tree.build_info.get("notes", [])[:10]:
        typer.echo(f"note: {note}")
    typer.echo(f"saved {out}")


@trees_app.command("quality")
def quality(
    embeddings: Path = typer.Option(..., help=".npy float matrix (n_items, d) the tree is judged on; row i = item i+1"),
    tree: Path = typer.Option(..., help="tree .npz (from `trees build`, the harness's cache/trees or Tree.save)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures here"),
) -> None:
    """Print the quality of a saved tree: clustering cost per level, balance, items off their nearest centroid."""
    from seater.trees.checks import check_embeddings, load_embeddings
    from seater.trees.quality import off_nearest, tree_quality
    from seater.trees.tree import Tree

    output_path(json_out, "--json")
    t = Tree.load(tree)
    x = check_embeddings(load_embeddings(embeddings), t.k)
    q = {**tree_quality(t, x), **off_nearest(t, x)}
    typer.echo(_summary(q, t.build_seconds()))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"tree": str(tree), "embeddings": str(embeddings), **q}, indent=1) + "\n")


@trees_app.command("compare")
def compare(
    embeddings: Optional[Path] = typer.Option(None, help=".npy embeddings (or use --synthetic)"),
    synthetic: Optional[int] = typer.Option(None, help="use N seeded synthetic clustered embeddings"),
    dim: int = typer.Option(64, help="dimension of --synthetic embeddings"),
    data_seed: int = typer.Option(0, help="seed of --synthetic embeddings"),
    k: int = typer.Option(16, min=2, help="branching factor"),
    builders: str = typer.Option("constrained,greedy,hybrid", help="comma-separated builder names"),
    threshold_sweep: Optional[str] = typer.Option(None, help="hybrid thresholds, e.g. 100,1000,2000,50000"),
    seeds: str = typer.Option("0", help="comma-separated build seeds"),
    max_constrained: Optional[int] = typer.Option(None, min=1, help="skip constrained above this many items"),
    param: Optional[list[str]] = typer.Option(None, help="builder:key=value for one builder (repeatable)"),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or auto, for the builders with a device parameter (balanced, rqvae); the others run on CPU"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="write the rows as JSON"),
    markdown: Optional[Path] = typer.Option(None, help="write a markdown table with provenance"),
) -> None:
    """Build each builder on the same embeddings; print and save time, memory and cost."""
    from bench.speed.tree_compare import compare as run_compare
    from bench.speed.tree_compare import table, write_outputs

    if (embeddings is None) == (synthetic is None):
        raise ConfigError("give exactly one of --embeddings or --synthetic")
    output_path(json_out, "--json")
    output_path(markdown, "--markdown")
    if json_out is not None and markdown is not None and json_out.resolve() == markdown.resolve():
        raise ConfigError(f"--json and --markdown both name {json_out}: the markdown would overwrite the JSON")
    names = [b.strip() for b in builders.split(",")]
    if not all(names):
        raise ConfigError(f"--builders must be comma-separated builder names with none empty, got {builders!r}")
    seed_list = list(int_list(seeds, "seeds"))
    thresholds = list(int_list(threshold_sweep, "threshold-sweep")) if threshold_sweep else None
    if thresholds and not any(n.partition("@")[0] == "hybrid" for n in names):
        raise ConfigError("--threshold-sweep sweeps the hybrid builder's threshold: add hybrid to --builders")
    if synthetic is not None:
        from seater.data.synthetic import synthetic_embeddings

        x = synthetic_embeddings(synthetic, dim, seed=data_seed)
        data = f"synthetic_embeddings({synthetic}, dim={dim}, seed={data_seed})"
    else:
        from seater.trees.checks import check_embeddings, load_embeddings

        x = check_embeddings(load_embeddings(embeddings), k)  # here, not in each build's process
        data = str(embeddings)
    per_builder, cpu_only = _device_params(names, parse_named_params(param, "builder"), device)
    if cpu_only and device not in (None, "cpu", "auto"):
        typer.echo(f"on CPU whatever --device: {', '.join(cpu_only)}")
    def run(on_rows):
        result = run_compare(x, k, names, seeds=seed_list, threshold_sweep=thresholds, max_constrained=max_constrained,
                             params=per_builder, log=typer.echo, on_rows=on_rows)
        typer.echo(table(result))
        return result

    measure(run, lambda result, info: write_outputs(result, str(json_out) if json_out else None,
                                                    str(markdown) if markdown else None, data, info))
