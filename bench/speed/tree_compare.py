"""Compare tree builders on one embedding matrix: build time, peak memory, clustering cost.

A builder may be named twice as variants, ``NAME@LABEL`` (e.g. ``greedy,greedy@refined`` with
``--param greedy@refined:refine_iters=10``), so one command's table holds a builder at its
defaults and with options. Each (builder, params, seed) runs in a fresh `spawn`ed process, so its peak memory is its
own (``peak_mb`` = peak resident memory during the build minus the resident memory just
before it, data and libraries already loaded: a build on the first 4 * k items runs untimed first,
since builders import their libraries on first use) and no builder warms caches for the next.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from bench.speed.trees import cost_ratio
from seater.errors import ConfigError


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return 0.0


def _run_one(x_path: str, builder: str, params: dict[str, Any], k: int, seed: int) -> dict[str, Any]:
    from bench.registry import builders
    from seater.trees.quality import off_nearest, tree_quality

    x = np.load(x_path, allow_pickle=False)  # the temporary file compare() wrote
    entry = builders().get(builder.partition("@")[0])  # every registered builder, rqvae included
    try:  # a tiny build first: builders import their libraries (k-means-constrained 0.28 s, faiss 0.09 s) on first use
        entry.factory(x[: min(len(x), 4 * k)], k, seed=seed, **params)
    except Exception:  # noqa: BLE001 - the real build below reports whatever is wrong
        pass
    before = _rss_mb()
    t0 = time.perf_counter()
    tree = entry.factory(x, k, seed=seed, **params)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    q = tree_quality(tree, x)
    tree.validate(balanced=entry.name not in ("kmeans", "rqvae"))  # their trees are not balanced by design
    return {
        "builder": builder,
        "params": params,
        "seed": seed,
        "seconds": seconds,
        "level_seconds": tree.build_info.get("level_seconds", []),
        "peak_mb": max(0.0, peak - before),
        "notes": tree.build_info.get("notes", []),
        **{key: q[key] for key in ("total_cost", "cost_per_level", "root_cost", "depth", "n_nodes", "balanced", "gini")},
        "off_nearest": off_nearest(tree, x)["off_nearest"],
    }


def plan_runs(
    builders: list[str], n_items: int, threshold_sweep: list[int] | None, max_constrained: int | None, params: dict[str, dict] | None = None
) -> tuple[list[tuple[str, dict]], list[dict]]:
    """(builder, params overrides) to run, and the rows skipped with their reason."""
    from bench.registry import builders as registered

    reg = registered()
    runs: list[tuple[str, dict]] = []
    skipped: list[dict] = []
    params = params or {}
    reg.check_variants(builders, params, "builders")
    for name in builders:
        builder = name.partition("@")[0]
        base = dict(params.get(name, {}))
        if builder == "constrained" and max_constrained is not None and n_items > max_constrained:
            reason = f"skipped: {n_items} items > --max-constrained {max_constrained} (constrained k-means would take hours on this machine)"
            skipped.append({"builder": name, "params": base, "skipped": reason})
            continue
        if builder == "hybrid" and threshold_sweep:
            if "threshold" in base:
                raise ConfigError(f"--threshold-sweep would replace the threshold {name} is given by --param; "
                                  "sweep a plain hybrid, or leave the sweep out")
            runs.extend((name, {**base, "threshold": t}) for t in threshold_sweep)
        else:
            runs.append((name, base))
    return runs, skipped


def compare(
    x: np.ndarray,
    k: int,
    builders: list[str],
    seeds: list[int] = (0,),
    threshold_sweep: list[int] | None = None,
    max_constrained: int | None = None,
    params: dict[str, dict] | None = None,
    log=print,
    on_rows=None,
) -> dict[str, Any]:
    """Run every planned build for every seed; return ``{"rows": [...], "skipped": [...]}``.
    `on_rows(result so far)` after each build."""
    if not builders:
        raise ConfigError("no builders given")
    runs, skipped = plan_runs(builders, x.shape[0], threshold_sweep, max_constrained, params)
    for s in skipped:
        log(f"{s['builder']}: {s['skipped']}")
    rows: list[dict[str, Any]] = []
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        x_path = str(Path(tmp) / "x.npy")
        np.save(x_path, np.ascontiguousarray(x, dtype=np.float32))
        for seed in seeds:
            for name, p in runs:
                log(f"building {name} {p or ''} seed={seed} ...")
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                    row = pool.submit(_run_one, x_path, name, p, k, seed).result()
                log(f"  {row['seconds']:.2f} s, total cost {row['total_cost']:.4f}")
                rows.append(row)
                if on_rows is not None:
                    on_rows(_result(x, k, seeds, rows, skipped))
    return _result(x, k, seeds, rows, skipped)


def _result(x: np.ndarray, k: int, seeds, rows: list[dict[str, Any]], skipped: list[dict]) -> dict[str, Any]:
    """The rows so far, each with its cost over the best of them."""
    best = min((r["total_cost"] for r in rows), default=0.0)
    rows = [{**r, "cost_ratio": cost_ratio(r["total_cost"], best)} for r in rows]
    return {"n_items": int(x.shape[0]), "dim": int(x.shape[1]), "k": k, "seeds": list(seeds), "rows": rows, "skipped": skipped}


def _fmt_params(p: dict) -> str:
    return ",".join(f"{a}={b}" for a, b in sorted(p.items())) or "defaults"


def _ratio(x: float) -> str:
    return "∞" if math.isinf(x) else f"{x:.4f}"  # inf: this tree costs > 0 where the best costs 0


def table(result: dict[str, Any]) -> str:
    """Markdown table of the rows (skipped builders listed after it)."""
    head = "| builder | params | seed | build s | total cost | cost / best | off nearest | depth | balanced | peak MB | notes |\n"
    head += "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|\n"
    lines = [
        f"| {r['builder']} | {_fmt_params(r['params'])} | {r['seed']} | {r['seconds']:.2f} | {r['total_cost']:.4f} | "
        f"{_ratio(r['cost_ratio'])} | {r['off_nearest']:.2%} | {r['depth']} | {'yes' if r['balanced'] else 'no'} | {r['peak_mb']:.0f} | {len(r['notes'])} |"
        for r in result["rows"]
    ]
    text = head + "\n".join(lines) + "\n"
    for s in result["skipped"]:
        text += f"\n- {s['builder']}: {s['skipped']}"
    return text + ("\n" if result["skipped"] else "")


def write_outputs(result: dict[str, Any], json_path: str | None, markdown_path: str | None, data: str, info: dict[str, Any]) -> list[Path]:
    """JSON and / or markdown of `result` with the provenance `info`; returns the paths written."""
    from bench.provenance import markdown_header

    result = {**result, "provenance": info, "data": data}
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=1, default=float) + "\n")
    if markdown_path:
        Path(markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(markdown_path).write_text(
            f"# Tree builders: {result['n_items']} items, d={result['dim']}, k={result['k']}\n\n"
            + markdown_header(info, data) + "\n" + table(result)
            + "\nCost = sum over levels of the mean squared distance of items to their node's centroid "
            "(`seater.trees.quality`); off nearest = share of items, over all splits, nearer to a sibling's centroid "
            "than to their own child's (`seater.trees.quality.off_nearest`); peak MB = peak RSS growth during the build (fresh process per row).\n"
        )
    return [Path(q) for q in (json_path, markdown_path) if q]
