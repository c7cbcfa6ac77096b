"""Probe: at which tree level does `balanced` lose to constrained k-means?

`trees-quality` compares total costs only. This prints the cost of every level (mean squared distance
of the items to their level-l node's centroid, `seater.trees.quality`) for constrained k-means and for
`balanced` under each parameter set of --variants, on the synthetic data of `trees-quality` (the seed
drives the data and both builders, as there). Constrained trees are cached as .npy codes in --cache.
Run: python results/trees/level_cost_probe.py --sizes 5000,20000 --seeds 0,1,2 \
    --variants '[{}, {"n_init": 3}, {"root_n_init": 32}]' --out results/trees/level_cost_probe.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.provenance import probe_header
from bench.speed.trees import _builders, synthetic
from seater.trees.quality import tree_quality
from seater.trees.tree import Tree


def _levels(tree: Tree, x: np.ndarray) -> list[float]:
    return [float(c) for c in tree_quality(tree, x)["cost_per_level"]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,20000")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="[{}]", help="JSON list of balanced parameter dicts")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="cache/level_cost_probe")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    builders = _builders()
    variants = json.loads(args.variants)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    lines = ["# balanced vs constrained k-means, cost per tree level", ""]
    lines += probe_header("results/trees/level_cost_probe.py", sys.argv[1:])
    lines += ["- data: synthetic clustered embeddings (d = 64), k = 16; cost = mean squared distance to the level's node centroid", ""]
    lines += ["| items | seed | builder | params | s | cost per level | total | ratio |", "|---:|---:|---|---|---:|---|---:|---:|"]
    seen: dict[tuple[int, str, str], list[tuple[list[float], float]]] = {}
    for n in (int(v) for v in args.sizes.split(",")):
        for seed in (int(v) for v in args.seeds.split(",")):
            x = synthetic(n, 64, seed)
            path = cache / f"constrained_{n}_{seed}.npy"
            if not path.exists():
                np.save(path, builders.get("constrained").factory(x, 16, seed=seed).codes)
            ref = _levels(Tree(np.load(path, allow_pickle=False), 16), x)
            rows = [("constrained", "", float("nan"), ref)]
            for params in variants:
                t0 = time.perf_counter()
                tree = builders.get("balanced").factory(x, 16, seed=seed, **params)
                rows.append(("balanced", json.dumps(params), time.perf_counter() - t0, _levels(tree, x)))
            for name, params, secs, levels in rows:
                cell = " / ".join(f"{c:.4f}" for c in levels)
                line = f"| {n:,} | {seed} | {name} | {params} | {secs:.2f} | {cell} | {sum(levels):.4f} | {sum(levels) / sum(ref):.4f} |"
                lines.append(line.replace("| nan |", "| – |"))
                print(lines[-1], flush=True)
                seen.setdefault((n, name, params), []).append((levels, sum(levels) / sum(ref)))
    lines += ["", "Mean cost per level over the seeds, median ratio:", ""]
    lines += ["| items | builder | params | mean cost per level | mean total | median ratio |", "|---:|---|---|---|---:|---:|"]
    for (n, name, params), got in seen.items():
        mean = np.mean([levels for levels, _ in got], axis=0)
        cell = " / ".join(f"{c:.4f}" for c in mean)
        lines.append(f"| {n:,} | {name} | {params} | {cell} | {mean.sum():.4f} | {np.median([r for _, r in got]):.4f} |")
    print("\n".join(lines[-len(seen) - 2 :]))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
