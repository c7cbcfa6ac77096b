"""Probe: how widely do the local optima of the root split spread, and does a seeding sample predict them?

For each seed: `--restarts` k-means++ seedings of the root (all items, synthetic data as `trees-quality`),
each run as balanced k-means on a uniform sample of S items (S in --samples) for --sample-iter exact
iterations, then up to 10 exact iterations on all items (the `balanced` builder's root, without its
best-of-8). Prints the spread of the final root costs (sum of squared distances to the 16 centroids per
item) and the Spearman correlation between each restart's cost on its sample and its final cost.
Run: python results/trees/root_restarts_probe.py --n 5000 --seeds 2,4 --out results/trees/root_restarts_probe.md
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import seater.trees.balanced as B
from bench.provenance import provenance
from seater.data.synthetic import synthetic_embeddings


def probe(n: int, seed: int, restarts: int, sample: int, sample_iter: int) -> dict:
    x = torch.from_numpy(synthetic_embeddings(n, 64, seed=seed))
    x = x - x.mean(0)
    params = {**B.DEFAULTS, "tol": 1e-6}
    gen = torch.Generator().manual_seed(seed)
    ones = torch.ones(1, n, dtype=torch.bool)
    rows = B._sample_rows(ones, sample, gen)[0] if sample < n else torch.arange(n)
    s = len(rows)
    xs = x[rows][None].repeat(restarts, 1, 1)
    _, _, s_obj, cent = B.balanced_kmeans_level(xs, torch.ones(restarts, s, dtype=torch.bool), 16, gen, params, max_iter=sample_iter)
    _, _, f_obj, _ = B.balanced_kmeans_level(x[None].repeat(restarts, 1, 1), ones.repeat(restarts, 1), 16, gen,
                                             {**params, "tol": 1e-3}, cent=cent, max_iter=10)
    sc, fc = (s_obj / s).numpy(), (f_obj / n).numpy()
    rank = lambda v: np.argsort(np.argsort(v))  # noqa: E731
    return {"min": fc.min(), "q25": np.quantile(fc, 0.25), "median": np.median(fc), "max": fc.max(),
            "top1_by_sample": fc[np.argmin(sc)], "spearman": float(np.corrcoef(rank(sc), rank(fc))[0, 1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seeds", default="2,4")
    ap.add_argument("--restarts", type=int, default=64)
    ap.add_argument("--samples", default="512,4096")
    ap.add_argument("--sample-iter", type=int, default=30)
    ap.add_argument("--constrained", action="store_true", help="also build the constrained tree and print its root cost")
    ap.add_argument("--out", default="results/trees/root_restarts_probe.md")
    a = ap.parse_args()
    torch.set_num_threads(1)
    info = provenance()
    lines = ["# Root split: spread of local optima over restarts", "",
             f"- command: `{info['command']}`", f"- commit: `{info['commit']}`", f"- hardware: {info['hardware']}",
             f"- date: {info['date']}; torch {info['torch']}, 1 thread",
             f"- data: synthetic_embeddings({a.n}, 64, seed); k = 16; {a.restarts} restarts; root cost per item", "",
             "| seed | sample | min | q25 | median | max | final cost of the best-on-sample restart | Spearman (sample vs final) | s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for seed in (int(v) for v in a.seeds.split(",")):
        if a.constrained:
            from bench.registry import builders
            from seater.trees.quality import tree_quality

            x = synthetic_embeddings(a.n, 64, seed=seed)
            root = tree_quality(builders().get("constrained").factory(x, 16, seed=seed), x)["cost_per_level"][0]
            lines.append(f"| {seed} | constrained (10 inits, all items) | {root:.4f} | | | | | | |")
            print(lines[-1], flush=True)
        for sample in (int(v) for v in a.samples.split(",")):
            t = time.perf_counter()
            r = probe(a.n, seed, a.restarts, sample, a.sample_iter)
            lines.append(f"| {seed} | {sample} | {r['min']:.4f} | {r['q25']:.4f} | {r['median']:.4f} | {r['max']:.4f} | "
                         f"{r['top1_by_sample']:.4f} | {r['spearman']:.2f} | {time.perf_counter() - t:.1f} |")
            print(lines[-1], flush=True)
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", a.out)


if __name__ == "__main__":
    main()
