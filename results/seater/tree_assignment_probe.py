"""How far from their nearest centroid do a tree's items sit? (Why SEATER loses on greedy trees.)

For every split of a tree, the centroids of a node's children are the means of their items; an
item is "off" when some sibling's centroid is nearer than its own child's. Reported per tree (and
per level with --levels): the share of items off and the share whose own centroid ranks 3rd or
worse among the k siblings (squared distances). Usage:

    python results/seater/tree_assignment_probe.py --embeddings E.npy --trees name=T.npz,name=T.npz [--out F.md]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from bench.provenance import probe_header, write_markdown
from seater.trees.tree import Tree


def own_rank(x: np.ndarray, child: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Rank (0 = nearest) of each item's own child centroid among its node's children's centroids."""
    kids, inv = np.unique(child, return_inverse=True)
    sums = np.zeros((kids.size, x.shape[1]))
    np.add.at(sums, inv, x)
    cent = sums / np.bincount(inv)[:, None]
    kid_parent = np.zeros(kids.size, dtype=np.int64)
    kid_parent[inv] = parent
    rank = np.zeros(x.shape[0], dtype=np.int64)
    for p in np.unique(parent):
        rows = np.flatnonzero(parent == p)
        sib = np.flatnonzero(kid_parent == p)
        d = ((x[rows, None, :] - cent[None, sib, :]) ** 2).sum(-1)
        own = d[np.arange(rows.size), np.searchsorted(sib, inv[rows])]
        rank[rows] = (d < own[:, None]).sum(1)
    return rank


def tree_stats(x: np.ndarray, tree: Tree) -> list[tuple[int, int, int, int]]:
    """Per level: (level, items split there, items off their nearest centroid, own centroid 3rd or worse)."""
    out = []
    for level in range(1, tree.depth):
        rows = np.flatnonzero(tree.item_path[:, level] >= 0)
        rank = own_rank(x[rows].astype(np.float64), tree.item_path[rows, level], tree.item_path[rows, level - 1])
        out.append((level, rows.size, int((rank > 0).sum()), int((rank >= 2).sum())))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embeddings", required=True, help=".npy item table the trees were built from")
    ap.add_argument("--trees", required=True, help="comma-separated name=path.npz")
    ap.add_argument("--levels", action="store_true", help="one row per level as well")
    ap.add_argument("--out", help="markdown file (default: stdout)")
    a = ap.parse_args()
    x = np.load(a.embeddings, allow_pickle=False)
    lines = [f"# Items off their nearest centroid: {a.embeddings}", ""]
    lines += probe_header("results/seater/tree_assignment_probe.py", sys.argv[1:]) + [""]
    lines += ["| tree | level | items off nearest | own centroid 3rd or worse |", "|---|---|---:|---:|"]
    for spec in a.trees.split(","):
        name, path = spec.split("=", 1)
        stats = tree_stats(x, Tree.load(path))
        n, off, far = (sum(s[i] for s in stats) for i in (1, 2, 3))
        lines.append(f"| {name} | all | {off / n:.2%} | {far / n:.2%} |")
        if a.levels:
            lines += [f"| {name} | {lev} | {o / m:.2%} | {f / m:.2%} |" for lev, m, o, f in stats]
    write_markdown(lines, a.out)


if __name__ == "__main__":
    main()
