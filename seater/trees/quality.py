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

`off_nearest` (separate: it costs a distance to every sibling centroid) is the share of items
whose own child's centroid is not the nearest among their node's children's centroids, over
every split: the cost says how tight the clusters are, this says how many items a split put
on the wrong side of a boundary (on Amazon Beauty, greedy trees 11-12% against 2-3% for
`balanced`, and SEATER with a random token init lost 9% NDCG@10 on them: results/seater/README.md).

Vectorised with per-node sums (`index_add_`) over chunks of items: about a second for 1M x 64.
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
    # the items' mean first: the formula below cancels ||x||^2 terms, and an offset common to all items
    # (1e4 against a spread of 1e-2) cost 1.6e-4 of the root's cost; identical items came out at -3e-8
    shift = torch.zeros(x.shape[1], dtype=torch.float64, device=device)
    for s in range(0, rows.size, chunk):
        shift += torch.from_numpy(x[rows[s : s + chunk]]).to(device, torch.float64).sum(0)
    shift /= rows.size
    sums = torch.zeros((int(g.max()) + 1, x.shape[1]), dtype=torch.float64, device=device)
    square = 0.0  # sum of ||x||^2
    for s in range(0, rows.size, chunk):
        xs = torch.from_numpy(x[rows[s : s + chunk]]).to(device, torch.float64) - shift
        sums.index_add_(0, g[s : s + chunk], xs)
        square += float((xs * xs).sum())
    counts = torch.bincount(g).to(torch.float64)
    # sum ||x - mu||^2 = sum ||x||^2 - ||sum x||^2 / n, per group
    return max(0.0, square - float(((sums * sums).sum(1) / counts).sum()))


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


def off_nearest(tree: Tree, embeddings: np.ndarray, device: str = "cpu", chunk: int = 1 << 22) -> dict[str, Any]:
    """Share of items sitting nearer to a sibling's centroid than to their own child's.

    For each level l = 1 .. depth - 1 and each item split there (its identifier goes past level
    l), the centroids are the means of the items under the level-l children of its level-(l-1)
    node (children that are leaf items have none and are left out); the item is *off* when some
    sibling centroid is strictly nearer than its own. Returns ``{"off_nearest": off / splits
    over all levels, "off_nearest_per_level": [...]}``. Centroids are float64 sums; the
    distances ``||c||^2 - 2 x.c`` are float32 batched products (5x faster than float64
    differences: 5.4 s for 361K x 64 items, k = 16, on one shared core), so near-ties may fall
    either way.
    `chunk` bounds the gathered ``(items, k, d)`` centroid block in elements.
    """
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != tree.n_items:
        raise DataError(f"embeddings of shape {x.shape} do not match a tree of {tree.n_items} items")
    n_items, d = x.shape
    # children as node ids, -1 where the slot is empty or holds a leaf item
    kids = torch.from_numpy(np.where(tree.children > n_items, tree.children - n_items - 1, -1)).to(device)
    per_level, total_off, total_rows = [], 0, 0
    step = max(1, chunk // (tree.k * d))
    for level in range(1, tree.depth):
        rows = np.flatnonzero(tree.item_path[:, level] >= 0)
        node = torch.from_numpy(tree.item_path[rows, level]).to(device)
        parent = torch.from_numpy(tree.item_path[rows, level - 1]).to(device)
        sums = torch.zeros((tree.n_nodes, d), dtype=torch.float64, device=device)
        for s in range(0, rows.size, step):
            sums.index_add_(0, node[s : s + step], torch.from_numpy(x[rows[s : s + step]]).to(device, torch.float64))
        cent = sums / torch.bincount(node, minlength=tree.n_nodes).clamp_min(1)[:, None]
        cent_sq, cent = cent.square().sum(1).float(), cent.float()
        off = 0
        for s in range(0, rows.size, step):
            xs = torch.from_numpy(x[rows[s : s + step]]).to(device, torch.float32)
            slots = kids[parent[s : s + step]]  # (c, k) sibling node ids, -1 = none
            sib = slots.clamp_min(0)
            block = cent.index_select(0, sib.reshape(-1)).view(*sib.shape, d)  # (c, k, d)
            dist = torch.baddbmm(cent_sq[sib][:, :, None], block, xs[:, :, None], alpha=-2.0).squeeze(-1)
            dist = dist.masked_fill_(slots < 0, float("inf"))
            # the own distance taken from the same block, so that it compares bit for bit
            own = dist.gather(1, (sib == node[s : s + step, None]).to(torch.uint8).argmax(1, keepdim=True))
            off += int((dist < own).any(1).sum())
        per_level.append(off / max(rows.size, 1))
        total_off, total_rows = total_off + off, total_rows + rows.size
    return {"off_nearest": total_off / max(total_rows, 1), "off_nearest_per_level": per_level}
