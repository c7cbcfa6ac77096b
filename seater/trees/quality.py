"""Tree quality without training: how well each level's nodes cluster the item embeddings.

Definitions (``N`` items, embeddings ``x``; level l = nodes whose identifier prefix has l codes):

* ``cost[l]`` for l = 1 .. depth - 1: ``(1/N) * sum_i ||x_i - mean(node_l(i))||^2`` where
  ``node_l(i)`` is the internal node holding item i at level l, i.e. the cluster the split of
  its level-(l-1) ancestor put it in. An item whose identifier ends at or before level l (it
  is a leaf there) is its own cluster and adds 0. Leaves (level = depth) always add 0.
* ``total_cost = sum_l cost[l]``: lower is better; it compares trees on the same embeddings.
* ``root_cost``: ``(1/N) * sum_i ||x_i - mean(x)||^2`` (level 0), the scale to compare against.
* ``balanced``: `Tree.is_balanced`; ``gini`` of internal-node sizes within each level
  (averaged over levels, weighted by items; 0 = all equal), ``leaf_sizes`` (min/max/mean
  number of items per parent of leaves) for unbalanced trees.

Vectorised with one sort per level and `np.add.reduceat`: about a second for 1M x 64.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from seater.errors import DataError
from seater.trees.tree import Tree


def _level_cost(x: np.ndarray, groups: np.ndarray, device: str = "cpu", chunk: int = 1 << 20) -> float:
    """Sum over items with ``groups >= 0`` of the squared distance to their group mean.

    Per-group sums by ``index_add_`` in float64 over chunks of items, on `device` (no sort, no
    float64 copy of all of x): at 10M x 64 items a sorted float64 copy (5 GB per level) made
    this the slow part of a benchmark.
    """
    rows = np.flatnonzero(groups >= 0)
    if rows.size == 0:
        return 0.0
    _, g = np.unique(groups[rows], return_inverse=True)
    g = torch.from_numpy(g.reshape(-1)).to(device)
    sums = torch.zeros((int(g.max()) + 1, x.shape[1]), dtype=torch.float64, device=device)
    square = 0.0  # sum of ||x||^2
    for s in range(0, rows.size, chunk):
        xs = torch.from_numpy(x[rows[s : s + chunk]]).to(device, torch.float64)
        sums.index_add_(0, g[s : s + chunk], xs)
        square += float((xs * xs).sum())
    counts = torch.bincount(g).to(torch.float64)
    # sum ||x - mu||^2 = sum ||x||^2 - ||sum x||^2 / n, per group
    return square - float(((sums * sums).sum(1) / counts).sum())


def gini(sizes: np.ndarray) -> float:
    """Gini coefficient of non-negative sizes (0 = all equal, -> 1 = one holds everything)."""
    s = np.sort(np.asarray(sizes, dtype=np.float64))
    n = s.size
    if n == 0 or s.sum() == 0:
        return 0.0
    return float((2.0 * (np.arange(1, n + 1) * s).sum() / (n * s.sum())) - (n + 1.0) / n)


def tree_quality(tree: Tree, embeddings: np.ndarray, device: str = "cpu") -> dict[str, Any]:
    """Clustering cost per level and in total, balance and shape of `tree` on `embeddings`.

    `device` ("cpu" or "cuda") is where the per-node sums run; only the last bits of the costs
    depend on it.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != tree.n_items:
        raise DataError(f"embeddings of shape {x.shape} do not match a tree of {tree.n_items} items")
    n = tree.n_items
    per_level = [_level_cost(x, tree.item_path[:, level], device) / n for level in range(1, tree.depth)]
    root_cost = _level_cost(x, np.zeros(n, dtype=np.int64), device) / n
    # Gini of internal-node sizes per level (excluding the root), item-weighted mean over levels
    ginis, weights = [], []
    for level in range(1, tree.depth):
        sizes = tree.node_size[tree.node_level == level]
        if sizes.size:
            ginis.append(gini(sizes))
            weights.append(sizes.sum())
    # leaf groups: items per parent of leaves
    leaf_parent = tree.item_path[np.arange(n), tree.lengths - 1]
    leaf_sizes = np.bincount(leaf_parent, minlength=tree.n_nodes)
    leaf_sizes = leaf_sizes[leaf_sizes > 0]
    return {
        "n_items": n,
        "k": tree.k,
        "depth": tree.depth,
        "n_nodes": int(tree.n_nodes),
        "balanced": bool(tree.is_balanced()),
        "root_cost": root_cost,
        "cost_per_level": per_level,
        "total_cost": float(sum(per_level)),
        "gini": float(np.average(ginis, weights=weights)) if ginis else 0.0,
        "leaf_sizes": {"min": int(leaf_sizes.min()), "max": int(leaf_sizes.max()), "mean": float(leaf_sizes.mean())},
    }
