"""Probe: rank the root's seedings after plain Lloyd iterations instead of near-balanced ones?

The root trial (16 k-means++ seedings on a 4,096-item sample, 6 iterations, the best 2 go on) is the
largest single piece of a 20K-item build (~0.33 of 1.2 s on one thread). Its iterations use
`approx_balanced_labels` (10 Newton steps, no repair). Plain nearest-centroid labels would cost ~3
operators per iteration instead; this swaps them in (monkeypatched, nothing in the builder changes) and
reports total cost and build seconds against the defaults on the synthetic data of `trees-quality`
(the seed drives the data and the builder), 2 threads, builds alternating.
Run: python results/trees/lloyd_trial_probe.py --seeds 0-11 --out results/trees/lloyd_trial_probe.md
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

import seater.trees.balanced as balanced
from bench.provenance import probe_header, write_markdown
from bench.speed.trees import synthetic
from seater.trees.quality import tree_quality


def lloyd_labels(cost, mask, steps=10, eps_end=1e-2, dtype=None):
    """Nearest-centroid labels (zero prices), the signature of `approx_balanced_labels`."""
    labels = cost.argmin(2).masked_fill_(~mask, 0)
    return labels, torch.zeros(cost.shape[0], cost.shape[2], dtype=dtype or cost.dtype, device=cost.device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5000,20000")
    ap.add_argument("--seeds", default="0-11", help="a range lo-hi")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    trials = {"near-balanced (default)": balanced.approx_balanced_labels, "Lloyd": lloyd_labels}
    lines = ["# balanced: root trial by Lloyd iterations vs near-balanced ones", ""]
    lines += probe_header("results/trees/lloyd_trial_probe.py", sys.argv[1:])
    lines += [f"- data: synthetic clustered embeddings (d = 64), k = 16, seeds {args.seeds}; total cost = `tree_quality` total_cost", ""]
    lines += ["| items | root trial | mean total cost | mean ratio | median ratio | worse / better seeds | mean build s |",
              "|---:|---|---:|---:|---:|---:|---:|"]
    for n in (int(v) for v in args.sizes.split(",")):
        costs, secs = np.zeros((len(trials), len(seeds))), np.zeros((len(trials), len(seeds)))
        for j, seed in enumerate(seeds):
            x = synthetic(n, 64, seed)
            for i, fn in enumerate(trials.values()):
                balanced.approx_balanced_labels = fn
                t0 = time.perf_counter()
                tree = balanced.build(x, 16, seed=seed)
                secs[i, j] = time.perf_counter() - t0
                costs[i, j] = tree_quality(tree, x)["total_cost"]
        for i, name in enumerate(trials):
            r = costs[i] / costs[0]
            row = (f"| {n:,} | {name} | {costs[i].mean():.4f} | {r.mean():.4f} | {np.median(r):.4f} | "
                   f"{int((r > 1 + 1e-9).sum())} / {int((r < 1 - 1e-9).sum())} | {secs[i].mean():.3f} |")
            print(row, flush=True)
            lines.append(row)
    balanced.approx_balanced_labels = trials["near-balanced (default)"]
    write_markdown(lines, args.out)


if __name__ == "__main__":
    main()
