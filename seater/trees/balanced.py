"""`balanced`: exactly balanced k-ary tree by balanced k-means with an exact assignment step.

Every node with n > k items is split into k children of floor(n/k) / floor(n/k)+1 items;
the split is balanced k-means whose assignment step is optimal for the current centroids
(`seater.trees.assignment`), so the objective (sum of squared distances) never increases.
A node with n <= k items ends the recursion (its items take slots 0..n-1).

Whole levels run at once: the nodes of a level hold floor(N/k^l) or that +1 items, so the level
is a padded ``(nodes, max_size, d)`` tensor with at most one padding row per node, centroids are
``(nodes, k, d)`` and every item is only compared with its own node's k centroids. The same code
runs on CPU and CUDA (``device``).
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import torch

from seater.device import resolve_device
from seater.errors import ConfigError, TreeBuildError
from seater.trees import BUILDERS
from seater.trees.assignment import balanced_assignment_batched
from seater.trees.checks import check_embeddings
from seater.trees.tree import Tree

DEFAULTS = {
    "max_iter": 10,  # balanced k-means iterations per level (fixed budget)
    "n_init": 1,  # seedings per node (best kept); k-means-constrained's default is 10
    "tol": 1e-4,  # early stop: relative objective improvement of a level below this
    # entropic Newton steps per assignment (eps from 2 to 1e-5 times the cost spread); always a cold
    # start: the last certificate's prices are stale once centroids move, and warm starts (tried)
    # left large infeasibilities that took the repair thousands of rounds
    # (30: at 20 some nodes still ended hundreds of items off and the repair took ~200 rounds);
    # a node stops as soon as its hard sizes are feasible, so most need far fewer
    "newton_steps": 30,
    # > 0: from the 2nd iteration on, warm_steps Newton steps from the node's last exact dual prices
    # (eps from warm_eps x the cost spread), cold schedule for nodes still infeasible. Off: measured
    # at 100K items it fell back to the cold schedule for most nodes and made the build slower
    "warm_steps": 0,
    "warm_eps": 0.05,
    "median_split": True,  # k = 2: exact assignment by a sort instead of prices + repair
    "device": "cpu",  # "cpu", "cuda" or "auto" (cuda when available)
    "threads": 0,  # torch CPU threads during the build; 0 leaves torch's setting
    "chunk": 1 << 22,  # items x k entries per batched matmul chunk (bounds temporaries)
}


@contextmanager
def _threads(n: int):
    if n <= 0:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _costs(xl: torch.Tensor, cent: torch.Tensor, chunk: int) -> torch.Tensor:
    """``||c||^2 - 2 x.c`` ``(G, M, k)``: the squared distance minus ||x||^2 (a per-item constant)."""
    g, m, _ = xl.shape
    k = cent.shape[1]
    out = torch.empty((g, m, k), dtype=xl.dtype, device=xl.device)
    step = max(1, chunk // max(m * k, 1))
    cn = (cent * cent).sum(-1)
    for s in range(0, g, step):
        e = min(g, s + step)
        out[s:e] = torch.baddbmm(cn[s:e, None, :], xl[s:e], cent[s:e].transpose(1, 2), alpha=-2.0)
    return out


def _kmeanspp(xl: torch.Tensor, mask: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Batched greedy k-means++ seeding: ``(G, k, d)`` centroids, each drawn among the node's own items."""
    g, m, d = xl.shape
    rows = torch.arange(g, device=xl.device)
    fmask = mask.to(xl.dtype)
    cent = torch.empty((g, k, d), dtype=xl.dtype, device=xl.device)
    idx = torch.multinomial(fmask, 1, generator=gen).squeeze(1)
    cent[:, 0] = xl[rows, idx]
    dist = ((xl - cent[:, :1]) ** 2).sum(-1) * fmask
    xn = (xl * xl).sum(-1)
    trials = 2 + int(np.log(k))  # as scikit-learn's greedy k-means++
    for j in range(1, k):
        tot = dist.sum(1, keepdim=True)
        # all remaining points coincide with a centroid (duplicates): fall back to uniform
        w = torch.where(tot > 0, dist, fmask)
        cand = torch.multinomial(w, trials, replacement=True, generator=gen)  # (G, L)
        cx = xl[rows[:, None], cand]  # (G, L, d)
        # squared distances of every item to every candidate: ||x||^2 - 2 x.c + ||c||^2
        dc = (xn[:, None, :] - 2 * (cx @ xl.transpose(1, 2)) + (cx * cx).sum(-1)[..., None]).clamp_min(0)
        newd = torch.minimum(dist[:, None, :], dc * fmask[:, None, :])
        best = newd.sum(-1).argmin(1)  # greedy k-means++: keep the candidate that lowers the potential most
        cent[:, j] = cx[rows, best]
        dist = newd[rows, best]
    return cent


def _centroids(xl: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """Cluster means ``(G, k, d)`` by a one-hot matmul (deterministic on GPU, unlike atomics)."""
    onehot = torch.nn.functional.one_hot(labels, k).to(xl.dtype) * mask[..., None].to(xl.dtype)
    sums = onehot.transpose(1, 2) @ xl
    cnt = onehot.sum(1)
    return sums / cnt.clamp_min(1)[..., None]


def _node_objective(xl, cent, labels, mask) -> torch.Tensor:
    """Per-node sum of squared distances to the assigned centroids, from differences (no cancellation)."""
    g, m, d = xl.shape
    k = cent.shape[1]
    flat = (labels + torch.arange(g, device=xl.device)[:, None] * k).reshape(-1)
    c = cent.reshape(g * k, d).index_select(0, flat).view(g, m, d)  # much faster than gather on CPU
    return (c.sub_(xl).square_().sum(-1) * mask).sum(1, dtype=torch.float64)


def balanced_kmeans_restarts(xl, mask, k, gen, params) -> tuple[torch.Tensor, list[float]]:
    """`n_init` seedings per node, run side by side as extra nodes; each node keeps its best."""
    r = int(params["n_init"])
    if r == 1:
        labels, hist, _ = balanced_kmeans_level(xl, mask, k, gen, params)
        return labels, hist
    g = xl.shape[0]
    labels, hist, per_node = balanced_kmeans_level(xl.repeat(r, 1, 1), mask.repeat(r, 1), k, gen, params)
    best = per_node.view(r, g).argmin(0)
    pick = best * g + torch.arange(g, device=xl.device)
    return labels[pick], hist


def balanced_kmeans_level(xl, mask, k, gen, params):
    """Balanced k-means on every node of a level.

    Returns labels ``(G, M)``, the level objective per iteration and the final per-node objective.
    A node leaves the loop once it has converged (labels unchanged, or its own objective improved
    by at most ``tol`` relative); the others go on, so late iterations only touch the nodes that
    still move.
    """
    # centre each node: distances are translation invariant and float32 costs ||c||^2 - 2x.c
    # lose far less precision around the node's own mean than around the origin
    fm = mask[..., None].to(xl.dtype)
    xl = (xl - (xl * fm).sum(1, keepdim=True) / fm.sum(1, keepdim=True)) * fm
    cent = _kmeanspp(xl, mask, k, gen)
    g = xl.shape[0]
    dev = xl.device
    labels = torch.zeros(mask.shape, dtype=torch.long, device=dev)
    node_obj = torch.zeros(g, dtype=torch.float64, device=dev)
    prices = torch.zeros((g, k), dtype=xl.dtype, device=dev)
    active = torch.arange(g, device=dev)
    history: list[float] = []
    for it in range(params["max_iter"]):
        whole = active.numel() == g
        xa, ma, ca = (xl, mask, cent) if whole else (xl[active], mask[active], cent[active])
        cost = _costs(xa, ca, params["chunk"])
        warm = it > 0 and int(params["warm_steps"]) > 0
        lab_a, pr_a, _ = balanced_assignment_batched(
            cost,
            ma,
            prices=prices[active] if warm else None,
            newton_steps=params["newton_steps"],
            median_split=params["median_split"],
            warm_steps=int(params["warm_steps"]),
            warm_eps=float(params["warm_eps"]),
        )
        del cost
        obj_a = _node_objective(xa, ca, lab_a, ma)
        if it > 0:
            prev = node_obj[active]
            changed = (lab_a != labels[active]).any(1)
            stalled = prev - obj_a <= params["tol"] * prev.abs()
            done = ~changed | stalled
        else:
            done = torch.zeros(active.numel(), dtype=torch.bool, device=dev)
        labels[active] = lab_a
        node_obj[active] = obj_a
        prices[active] = pr_a.to(prices.dtype)
        obj = float(node_obj.sum())
        if history and obj > history[-1] + 1e-5 * abs(history[-1]) + 1e-6:
            raise TreeBuildError(f"balanced k-means objective increased from {history[-1]:.6g} to {obj:.6g} (iteration {it})")
        history.append(obj)
        active = active[~done]
        if active.numel() == 0:
            break
        if it + 1 < params["max_iter"]:
            cent[active] = _centroids(xl[active] if active.numel() < g else xl, labels[active], mask[active], k)
    return labels, history, node_obj


@BUILDERS.register("balanced", defaults=DEFAULTS)
def build(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Exactly balanced tree: level-batched balanced k-means with an exact, certified assignment step."""
    x = check_embeddings(embeddings, k)
    params = BUILDERS.params("balanced", params)
    for key in ("max_iter", "n_init", "newton_steps", "warm_steps", "chunk"):
        if int(params[key]) < (1 if key in ("max_iter", "n_init", "chunk") else 0):
            raise ConfigError(f"balanced builder parameter {key} must be a positive integer, got {params[key]!r}")
    dev = resolve_device(params["device"])
    t_start = time.perf_counter()
    with _threads(int(params["threads"])):
        codes, level_seconds, objectives = _build(x, int(k), int(seed), dev, params)
    info = {
        "builder": "balanced",
        "params": {**params, "seed": int(seed)},
        "level_seconds": level_seconds,
        "seconds": time.perf_counter() - t_start,
        "device": str(dev),
        "level_objective": objectives,
    }
    return Tree(codes, k, info)


def _build(x: np.ndarray, k: int, seed: int, dev: torch.device, params: dict):
    n, _ = x.shape
    depth = 1
    while k**depth < n:
        depth += 1
    codes = np.full((n, depth), -1, dtype=np.int64)
    xt = torch.from_numpy(x).to(dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(seed)
    order = torch.arange(n, device=dev)  # items grouped by node, nodes contiguous
    sizes = torch.tensor([n], device=dev)
    level_seconds: list[float] = []
    objectives: list[list[float]] = []
    codes_t = torch.full((n, depth), -1, dtype=torch.long, device=dev)
    for level in range(depth):
        t0 = time.perf_counter()
        starts = torch.cumsum(sizes, 0) - sizes
        m = int(sizes.max())
        pos = torch.arange(m, device=dev)
        # leaves: nodes with <= k items give their items slots 0..n-1
        leaf = sizes <= k
        if bool(leaf.any()):
            ls, lz = starts[leaf], sizes[leaf]
            lm = pos[None, : int(lz.max())] < lz[:, None]
            items = order[(ls[:, None] + pos[None, : lm.shape[1]])[lm]]
            codes_t[items, level] = pos[None, : lm.shape[1]].expand_as(lm)[lm]
        split = ~leaf
        if not bool(split.any()):
            level_seconds.append(time.perf_counter() - t0)
            break
        ss, sz = starts[split], sizes[split]
        m = int(sz.max())
        mask = pos[None, :m] < sz[:, None]
        idx = (ss[:, None] + pos[None, :m]).clamp_max(n - 1)
        items = order[idx]
        xl = xt[items] * mask[..., None]
        labels, hist = balanced_kmeans_restarts(xl, mask, k, gen, params)
        objectives.append(hist)
        g = sz.numel()
        codes_t[items[mask], level] = labels[mask]
        key = torch.arange(g, device=dev)[:, None] * k + labels
        key = torch.where(mask, key, g * k)
        perm = torch.argsort(key.reshape(-1), stable=True)[: int(mask.sum())]
        order = items.reshape(-1)[perm]
        sizes = torch.bincount(key.reshape(-1), minlength=g * k + 1)[: g * k]
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        level_seconds.append(time.perf_counter() - t0)
    codes[:] = codes_t.cpu().numpy()
    # drop all-padding trailing columns (only when every item ended early)
    used = (codes >= 0).any(axis=0)
    return codes[:, : max(1, int(used.sum()))], level_seconds, objectives
