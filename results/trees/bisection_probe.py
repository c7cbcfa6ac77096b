"""Probe: one node's split seeded by bisection vs k-means++ (1 and 10 seedings) vs k-means-constrained.

For the 16 children of the root of a `balanced` tree on synthetic data (d = 64, k = 16; 1,250 items
each at 20K), each child is split once into k clusters: balanced k-means (`_restarts`, the builder's
seeding and exact iterations, max_iter 30) from bisection seeds, from one k-means++ seeding and the
best of ten, and KMeansConstrained (n_init 10, the `constrained` builder's split). The sums of squared
distances are summed over the 16 children. `--root` also splits the whole catalog from bisection seeds,
against the builder's own root (k-means++ restarts on a sample).
Run: python results/trees/bisection_probe.py --n 20000 --seed 0 --root --out results/trees/bisection_probe.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.provenance import probe_header
from bench.speed.trees import synthetic
from seater.trees.balanced import DEFAULTS, _centre, _restarts, build


def _sse(x: np.ndarray, labels: np.ndarray) -> float:
    x = x.astype(np.float64)
    return float(sum(((x[labels == j] - x[labels == j].mean(0)) ** 2).sum() for j in np.unique(labels)))


def _split(x: np.ndarray, k: int, seed: int, seeding: str, restarts: int = 1) -> np.ndarray:
    """Labels of one balanced k-means split of `x` from the given seeding (best of `restarts`)."""
    mask = torch.ones((1, len(x)), dtype=torch.bool)
    xc = _centre(torch.from_numpy(x)[None], mask)
    gen = torch.Generator().manual_seed(seed)
    labels, _, _ = _restarts(xc, mask, k, gen, dict(DEFAULTS), 30, restarts, bisect=seeding == "bisection")
    return labels[0].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--root", action="store_true", help="also split the whole catalog from bisection seeds")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from k_means_constrained import KMeansConstrained

    torch.set_num_threads(args.threads)
    k = args.k
    x = synthetic(args.n, 64, args.seed)
    tree = build(x, k, seed=args.seed, threads=args.threads)
    root = tree.codes[:, 0]
    lines = ["# one node's split: bisection seeds vs k-means++ vs k-means-constrained", ""]
    lines += probe_header("results/trees/bisection_probe.py", sys.argv[1:])
    lines += [f"- data: synthetic clustered embeddings, {args.n:,} items, d = 64, seed {args.seed}; k = {k}; "
              "sum of squared distances of each root child's split, summed over the children", ""]
    cols = ["bisection", "k-means++ x1", "k-means++ best of 10", "constrained (n_init 10)"]
    totals = dict.fromkeys(cols, 0.0)
    lines += ["| child | items | " + " | ".join(cols) + " |", "|---:|---:|" + "---:|" * len(cols)]
    for c in range(k):
        xn = np.ascontiguousarray(x[root == c])
        q = len(xn) // k
        row = {
            cols[0]: _sse(xn, _split(xn, k, args.seed, "bisection")),
            cols[1]: _sse(xn, _split(xn, k, args.seed, "kmeans++")),
            cols[2]: _sse(xn, _split(xn, k, args.seed, "kmeans++", restarts=10)),
            cols[3]: _sse(xn, KMeansConstrained(n_clusters=k, size_min=q, size_max=q + 1, random_state=args.seed, n_init=10)
                          .fit(xn.astype(np.float64)).labels_),
        }
        for key in cols:
            totals[key] += row[key]
        lines.append(f"| {c} | {len(xn):,} | " + " | ".join(f"{row[key]:,.1f}" for key in cols) + " |")
        print(lines[-1], flush=True)
    lines.append("| **sum** | | " + " | ".join(f"**{totals[key]:,.1f}**" for key in cols) + " |")
    if args.root:
        t0 = time.perf_counter()
        bis = _sse(x, _split(x, k, args.seed, "bisection")) / len(x)
        lines += ["", f"Root split, cost per item: builder's root (k-means++ restarts on a sample) {_sse(x, root) / len(x):.4f}, "
                  f"from bisection seeds {bis:.4f} ({time.perf_counter() - t0:.1f} s)"]
    print("\n".join(lines[-3:]))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
