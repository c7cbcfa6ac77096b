"""`balanced`: exactly balanced k-ary tree by balanced k-means with an exact assignment step.

Every node with n > k items is split into k children of floor(n/k) / floor(n/k)+1 items;
the split is balanced k-means whose assignment step is optimal for the current centroids
(`seater.trees.assignment`), so the objective (sum of squared distances) never increases.
A node with n <= k items ends the recursion (its items take slots 0..n-1). Large nodes are
seeded from a uniform sample of their items (`balanced_kmeans_restarts`), so most iterations
run on a few thousand items instead of all of them. The root is seeded by k-means++ restarts
(the best two go on after a short trial of near-balanced iterations), the nodes below it by
recursive balanced bisection (`seater.trees.bisection`).

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

from seater.device import check_device_name, resolve_device
from seater.errors import ConfigError, TreeBuildError
from seater.trees import BUILDERS
from seater.trees.assignment import approx_balanced_labels, balanced_assignment_batched
from seater.trees.bisection import bisection_seeds
from seater.trees.checks import check_embeddings, check_int
from seater.trees.swaps import swap_refine
from seater.trees.tree import Tree

# Defaults: median total cost below constrained k-means' on synthetic mixtures (0.9979 at 5K,
# 0.9991 at 20K items, seeds 0-11) and on real item embeddings (Beauty co-occurrence SVD 0.9875 /
# 0.9849 at 5K / 12,101 items, Beauty SASRec 0.9943 / 0.9966): results/trees/README.md, sections
# "Root restarts kept by their trial objective, faster price schedule" and "Root trial on
# near-balanced assignments". The root split decides most of it (its local optima spread ~10% at
# 5K), hence the 16 root seedings of which the best 2 go on after a 6-iteration trial.
DEFAULTS = {
    "max_iter": 10,  # exact balanced k-means iterations per level (fixed budget)
    "n_init": 1,  # seedings per node (best kept); k-means-constrained's default is 10
    # seedings of the root: its split carries most of the tree's cost (28 of 41 at 20K items) and
    # is one node, so restarts there are cheap (on its sample when it has one; pruned to
    # keep_best after trial_iter iterations, below)
    "root_n_init": 16,
    # below the root, the first seeding of each node is a recursive balanced bisection
    # (`seater.trees.bisection`; nodes of at least BISECT_MIN_ITEMS items per cluster), the other
    # n_init - 1 are k-means++. At the root, k-means++ restarts on a sample found better splits
    "bisect": True,
    "tol": 1e-4,  # early stop: relative objective improvement of a node below this
    # nodes of more than sample * k items: seeding by balanced k-means on a uniform sample of
    # sample * k items (Faiss's k-means trains on at most 256 points per centroid), at most
    # sample_iter iterations; 0 = always seed by k-means++ on all items
    "sample": 256,
    "sample_iter": 20,
    # nodes with more seedings than keep_best (the root): all run trial_iter iterations, then only
    # each node's keep_best lowest go on; 0 = all go on. 16 seedings pruned to 2 after 6 cost
    # about what 8 run to the end did (20K items) and found better roots on 12 synthetic seeds
    "keep_best": 2,
    "trial_iter": 6,
    # > 0: the trial's assignments are approximate (`approx_balanced_labels`: trial_steps Newton
    # steps to trial_eps x the cost spread, no repair), as they only rank the seedings; the kept
    # ones go on with exact steps. 20K-item builds ~10% faster, 5K ~15%; 12-seed mean totals 30.1931 /
    # 41.0605 at 5K / 20K against 30.2615 / 41.0169 with exact trial steps (results/trees/README.md,
    # section "Root trial on near-balanced assignments"). 0 = exact trial
    "trial_eps": 1e-2,
    "trial_steps": 10,
    # early-stop tolerance of the exact iterations that follow a sample seeding: they start near
    # a local optimum and then gain ~0.02% per iteration (measured at 361K items)
    "refine_tol": 1e-3,
    # entropic Newton steps per assignment (eps from 2 to 1e-5 times the cost spread); always a cold
    # start: the last certificate's prices are stale once centroids move, and warm starts (tried)
    # left large infeasibilities that took the repair thousands of rounds
    # (30: at 20 some nodes still ended hundreds of items off and the repair took ~200 rounds;
    # at 15 the 20K build took 7x longer); a node stops as soon as its hard sizes are feasible
    # (measured at 20K items: ~25 steps on average)
    "newton_steps": 30,
    # cold prices first try a faster schedule of newton_fast steps (+ newton_hold at its smallest
    # eps); only nodes still infeasible then run the newton_steps one (`assignment._cold_prices`).
    # Newton work per build -18 to -26% (5K and 20K items, seeds 0-2; one 5K seed unchanged),
    # build time ~-10% (results/trees/README.md). 0 = off
    "newton_fast": 22,
    "newton_hold": 4,
    # > 0: from the 2nd iteration on, warm_steps Newton steps from the node's last exact dual prices
    # (eps from warm_eps x the cost spread), cold schedule for nodes still infeasible. Off: measured
    # at 100K items it fell back to the cold schedule for most nodes and made the build slower
    "warm_steps": 0,
    "warm_eps": 0.05,
    # "on": the Newton loop drops items whose cluster can no longer change (exact,
    # `entropic_prices`); "auto" = on for CPU builds with k >= 32, where the k x k Newton matrix
    # dominates. 20K items, 2 CPU cores (results/trees/large_k/): k = 64 25.1 -> 18.5 s (Gaussian
    # data) and 23.0 -> 20.6 s (synthetic), k = 32 3.87 -> 3.67 s; within noise at k = 8 / 16 and at
    # 361,245 items, k = 16. Off on a GPU: its build is bound by operator launches, and this adds ~10
    # per checked Newton step
    "freeze": "auto",
    # levels whose items x largest node size is at most swap_work: after balanced k-means, exact
    # pairwise exchanges between clusters (`seater.trees.swaps`), at most swap_passes passes.
    # k-means' fixed points on small nodes are weak (Beauty SASRec, 12,101 items: total cost
    # -1.2%); a pass costs O(items x node size), so the default refines the levels of catalogs up
    # to ~20K items and leaves larger levels alone (refining every level of <= 1,024-item nodes
    # took a 361K build from 28.4 s to 30.6 s and a 1M build from 87.5 s to 134.7 s).
    # 0 = off
    "swap_work": 1 << 24,
    "swap_passes": 20,
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


def _costs(xl: torch.Tensor, cent: torch.Tensor, chunk: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``||c||^2 - 2 x.c`` ``(G, M, k)``: the squared distance minus ||x||^2 (a per-item constant)."""
    g, m, _ = xl.shape
    k = cent.shape[1]
    dtype = dtype or xl.dtype
    out = torch.empty((g, m, k), dtype=dtype, device=xl.device)
    step = max(1, chunk // max(m * k, 1))
    cent = cent.to(dtype)
    cn = (cent * cent).sum(-1)
    for s in range(0, g, step):
        e = min(g, s + step)
        out[s:e] = torch.baddbmm(cn[s:e, None, :], xl[s:e].to(dtype), cent[s:e].transpose(1, 2), alpha=-2.0)
    return out


# a level's costs are float64 when some node's farthest item lies more than this many times its
# median squared distance from the node's centre (float32 costs otherwise)
FAR_RATIO = 1024.0


def _cost_dtype(xl: torch.Tensor, mask: torch.Tensor) -> torch.dtype:
    """float64 for levels with far items, the input's dtype otherwise.

    Cost entries are of the size of ``||x||^2`` (from the node's centre) while the assignment is
    decided by their differences, which float32 resolves to ~1e-7 of the entries. Items 1e4 away
    from a bulk of unit spread put entries of ~4e8 into their node: the repair then could not see a
    cycle worth 5,690 (3,000 items, k = 40) and the builder's objective check failed. With every
    item within FAR_RATIO (2^10) times the median squared radius, float32 keeps the bulk's
    differences to ~1e-4 of its scale; beyond that the level pays for float64 costs and repair
    (the Newton prices stay float32: they only start the repair).
    """
    if xl.dtype == torch.float64:
        return xl.dtype
    r2 = (xl * xl).sum(-1).masked_fill(~mask, float("nan"))
    far = r2.nan_to_num(0.0).amax(1)
    typical = r2.nanmedian(1).values
    return torch.float64 if bool((far > FAR_RATIO * typical).any()) else xl.dtype


def _kmeanspp(xl: torch.Tensor, mask: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Batched greedy k-means++ seeding: ``(G, k, d)`` centroids, each drawn among the node's own items."""
    g, m, d = xl.shape
    rows = torch.arange(g, device=xl.device)
    fmask = mask.to(xl.dtype)
    cent = torch.empty((g, k, d), dtype=xl.dtype, device=xl.device)
    idx = torch.multinomial(fmask, 1, generator=gen).squeeze(1)
    cent[:, 0] = xl[rows, idx]
    dist = (xl - cent[:, :1]).square_().sum(-1) * fmask
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
    """Cluster means ``(G, k, d)``.

    CPU: one ``index_add_`` over the items (sequential, so deterministic; ~3x faster than the
    one-hot matmul at 361K items). CUDA: a one-hot matmul, because float atomics in
    ``index_add_`` would make the sums depend on thread timing.
    """
    g, m, d = xl.shape
    fm = mask.to(xl.dtype)
    if xl.device.type != "cuda":
        slot = (labels + torch.arange(g, device=xl.device)[:, None] * k).reshape(-1)
        src = xl if bool(mask.all()) else xl * fm[..., None]
        sums = torch.zeros((g * k, d), dtype=xl.dtype, device=xl.device).index_add_(0, slot, src.reshape(-1, d))
        cnt = torch.zeros(g * k, dtype=xl.dtype, device=xl.device).index_add_(0, slot, fm.reshape(-1))
        return (sums / cnt.clamp_min(1)[:, None]).view(g, k, d)
    onehot = torch.nn.functional.one_hot(labels, k).to(xl.dtype) * fm[..., None]
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


def _centre(xl: torch.Tensor, mask: torch.Tensor, probe: int = 63) -> torch.Tensor:
    """Each node translated so that its bulk sits at the origin (padding rows stay zero).

    Distances are translation invariant, but float32 costs ``||c||^2 - 2x.c`` resolve
    differences only to a few ulps of their magnitude, i.e. of the squared distance from the
    origin. The centre is the coordinate-wise median of `probe` evenly spaced items of the node:
    a far outlier group drags a mean away from the other items (7 points at 1e4 among 190 near 0
    put the mean ~1e3 away, and the costs of the 190 could no longer tell their clusters apart),
    not a median; a sample keeps it cheap (a full median took ~1 s per level at 361K items).
    """
    g, m, d = xl.shape
    n = mask.sum(1)
    rows = torch.arange(probe, device=xl.device)[None, :] * n[:, None] // probe
    centre = xl.gather(1, rows[..., None].expand(-1, -1, d)).median(dim=1, keepdim=True).values
    out = xl - centre
    return out if bool(mask.all()) else out.mul_(mask[..., None].to(xl.dtype))


def _sample_rows(mask: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """``(G, size)`` positions of distinct real items per node, drawn uniformly (every node holds more than `size`)."""
    u = torch.rand(mask.shape, generator=gen, device=mask.device)
    u = u.masked_fill(~mask, 2.0)  # padding sorts last, never drawn
    return u.topk(size, dim=1, largest=False).indices.sort(dim=1).values


def _restarts(xl, mask, k, gen, params, max_iter, r, bisect=False):
    """`r` seedings per node (k-means++, the first by bisection if `bisect`), run side by side as
    extra nodes; each node keeps its best.

    With more than ``keep_best`` seedings, all of them run ``trial_iter`` iterations, then only
    the ``keep_best`` lowest of each node go on (to ``max_iter`` in all): a split's objective after
    a few iterations already ranks its basin, so most of the budget goes to the promising ones.
    Returns labels, objective history (of the seedings that went on) and the kept centroids ``(G, k, d)``.
    """
    g = xl.shape[0]
    cent = None
    if bisect:
        cent = bisection_seeds(xl, mask, k, gen)
        if r > 1:
            cent = torch.cat([cent, _kmeanspp(xl.repeat(r - 1, 1, 1), mask.repeat(r - 1, 1), k, gen)])
    cost_dtype = _cost_dtype(xl, mask)  # once, not on the r copies
    xr, mr = (xl.repeat(r, 1, 1), mask.repeat(r, 1)) if r > 1 else (xl, mask)  # seeding j of node i: row j * G + i
    keep, trial = int(params["keep_best"]), int(params["trial_iter"])
    if r > keep > 0 and trial < max_iter:
        labels, _, per_node, cent = balanced_kmeans_level(
            xr, mr, k, gen, params, cent=cent, max_iter=trial, cost_dtype=cost_dtype, approx=float(params["trial_eps"]) > 0
        )
        best = per_node.view(r, g).argsort(0)[:keep]  # (keep, G): each node's best seedings so far
        pick = (best * g + torch.arange(g, device=xl.device)).reshape(-1)
        r, max_iter = keep, max_iter - trial
        xr, mr = xr[: r * g], mr[: r * g]  # the first `keep` copies (views)
        cent = _centroids(xr, labels[pick], mr, k)
    labels, hist, per_node, cent = balanced_kmeans_level(xr, mr, k, gen, params, cent=cent, max_iter=max_iter, cost_dtype=cost_dtype)
    if r == 1:
        return labels, hist, cent
    pick = per_node.view(r, g).argmin(0) * g + torch.arange(g, device=xl.device)
    return labels[pick], hist, cent[pick]


# bisection seeds only for nodes of at least this many items per cluster. They pay on big nodes
# (19.5 and 78 items per cluster at 5K / 20K items, level 2) but not on small ones: with no
# threshold, level 3 of the 5K trees (~1.2 items per cluster) rose from 0.579 to 0.612 (mean over
# seeds 0-5, an earlier version of the seeds) and at ~4.9 (20K, level 3) it stayed at 3.73, while
# seeding the (4,096 nodes x 88 items) level of a 361,245-item build took ~2 s on 2 CPU threads
BISECT_MIN_ITEMS = 16


def balanced_kmeans_restarts(xl, mask, k, gen, params, n_init: int, bisect: bool = False) -> tuple[torch.Tensor, list[float]]:
    """Balanced k-means on every node of a level: seeding (`n_init` restarts), then exact iterations.

    Nodes of more than ``sample * k`` items are seeded the way Faiss trains k-means: balanced
    k-means (the restarts) on a uniform sample of ``sample * k`` of their items for up to
    ``sample_iter`` iterations, then up to ``max_iter`` exact iterations on all items from those
    centroids (early stop at ``refine_tol``). Most of the centroid movement then happens on the
    cheap sample; measured at 20K items it also found better optima than k-means++ on all items.
    """
    xl = _centre(xl, mask)
    smallest = int(mask.sum(1).min())
    bisect = bisect and smallest >= BISECT_MIN_ITEMS * k
    size = int(params["sample"]) * k
    if size <= 0 or smallest <= size:
        labels, hist, _ = _restarts(xl, mask, k, gen, params, int(params["max_iter"]), n_init, bisect)
        return labels, hist
    rows = _sample_rows(mask, size, gen)
    xs = xl.gather(1, rows[..., None].expand(-1, -1, xl.shape[2]))
    ones = torch.ones(rows.shape, dtype=torch.bool, device=xl.device)
    _, _, cent = _restarts(xs, ones, k, gen, params, int(params["sample_iter"]), n_init, bisect)
    labels, hist, _, _ = balanced_kmeans_level(xl, mask, k, gen, params, cent=cent, tol=float(params["refine_tol"]))
    return labels, hist


def balanced_kmeans_level(xl, mask, k, gen, params, cent=None, max_iter=None, tol=None, cost_dtype=None, approx=False):
    """Balanced k-means on every node of a level, from `cent` (``(G, k, d)``) or a k-means++ seeding.

    Returns labels ``(G, M)``, the level objective per iteration, the final per-node objective
    and the centroids the final labels were assigned to. A node leaves the loop once it has converged (labels
    unchanged, or its own objective improved by at most ``tol`` relative); the others go on, so
    late iterations only touch the nodes that still move. ``cost_dtype``: of the cost matrices
    (default: decided from `xl` by `_cost_dtype`). ``approx``: near-balanced assignments
    (`approx_balanced_labels` with ``trial_steps`` / ``trial_eps``) instead of exact ones, for the
    root trial; the objective may then rise between iterations.
    """
    max_iter = int(params["max_iter"]) if max_iter is None else max_iter
    tol = float(params["tol"]) if tol is None else tol
    cent = _kmeanspp(xl, mask, k, gen) if cent is None else cent.clone()
    cost_dtype = _cost_dtype(xl, mask) if cost_dtype is None else cost_dtype
    g = xl.shape[0]
    dev = xl.device
    freeze = _freeze(params["freeze"], dev, k)
    labels = torch.zeros(mask.shape, dtype=torch.long, device=dev)
    node_obj = torch.zeros(g, dtype=torch.float64, device=dev)
    prices = torch.zeros((g, k), dtype=xl.dtype, device=dev)
    active = torch.arange(g, device=dev)
    history: list[float] = []
    for it in range(max_iter):
        whole = active.numel() == g
        xa, ma, ca = (xl, mask, cent) if whole else (xl[active], mask[active], cent[active])
        cost = _costs(xa, ca, params["chunk"], cost_dtype)
        warm = it > 0 and int(params["warm_steps"]) > 0
        if approx and not (k == 2 and params["median_split"]):  # k = 2: the exact median split is cheaper
            lab_a, pr_a = approx_balanced_labels(cost, ma, int(params["trial_steps"]), float(params["trial_eps"]), dtype=xl.dtype)
        else:
            lab_a, pr_a, _ = balanced_assignment_batched(
                cost,
                ma,
                prices=prices[active] if warm else None,
                newton_steps=params["newton_steps"],
                fast_steps=int(params["newton_fast"]),
                hold_steps=int(params["newton_hold"]),
                median_split=params["median_split"],
                warm_steps=int(params["warm_steps"]),
                warm_eps=float(params["warm_eps"]),
                freeze=freeze,
                price_dtype=xl.dtype,
            )
        del cost
        obj_a = _node_objective(xa, ca, lab_a, ma)
        if it > 0:
            prev = node_obj[active]
            changed = (lab_a != labels[active]).any(1)
            stalled = prev - obj_a <= tol * prev.abs()
            done = ~changed | stalled
        else:
            done = torch.zeros(active.numel(), dtype=torch.bool, device=dev)
        labels[active] = lab_a
        node_obj[active] = obj_a
        prices[active] = pr_a.to(prices.dtype)
        obj = float(node_obj.sum())
        # every step is optimal, so the objective never increases beyond rounding: per-item float32
        # distances and float32 centroids let it rise by up to ~5e-8 relative (audit: 198 of 9,682
        # steps on 310-point data, none above 1e-15 when summed in float64), hence 1e-5
        if not approx and history and obj > history[-1] + 1e-5 * abs(history[-1]) + 1e-6:
            raise TreeBuildError(f"balanced k-means objective increased from {history[-1]:.6g} to {obj:.6g} (iteration {it})")
        history.append(obj)
        active = active[~done]
        if active.numel() == 0:
            break
        if it + 1 < max_iter:
            cent[active] = _centroids(xl[active] if active.numel() < g else xl, labels[active], mask[active], k)
    return labels, history, node_obj, cent


def _freeze(value: str, dev: torch.device, k: int) -> bool:
    return value == "on" or (value == "auto" and dev.type == "cpu" and k >= 32)


def _unit_scale(x: np.ndarray) -> np.ndarray:
    """`x` times the power of two that puts its largest |entry| in [0.5, 1).

    Exact (a power of two only shifts exponents), and k-means does not depend on the scale, but
    float32 does: squared distances of embeddings around 1e18 overflowed (a build returned
    unbalanced children) and those around 1e-20 fell into slow denormals.
    """
    top = float(np.abs(x).max())
    if top == 0.0:
        return x
    return np.ldexp(x, -int(np.frexp(top)[1])).astype(np.float32, copy=False)


def check_params(params: dict) -> None:
    """Range checks of the builder's parameters (complete, as from `BUILDERS.params`)."""
    positive = ("max_iter", "n_init", "root_n_init", "chunk", "sample_iter", "trial_iter", "trial_steps")
    for key in (*positive, "newton_steps", "newton_fast", "newton_hold", "warm_steps", "sample", "swap_work",
                "swap_passes", "keep_best", "threads"):
        check_int(f"balanced builder parameter {key}", params[key], 1 if key in positive else 0)
    if params["sample"] == 1:  # a sample of k items splits into k singletons: nothing to seed from
        raise ConfigError("balanced builder parameter sample must be 0 (no sampling) or >= 2, got 1")
    if not 0.0 <= float(params["trial_eps"]) < 1.0:
        raise ConfigError(f"balanced builder parameter trial_eps must be in [0, 1) (0 = exact trial), got {params['trial_eps']!r}")
    if not float(params["warm_eps"]) > 0:
        raise ConfigError(f"balanced builder parameter warm_eps must be > 0, got {params['warm_eps']!r}")
    if not float(params["tol"]) >= 0 or not float(params["refine_tol"]) >= 0:
        raise ConfigError(f"balanced builder parameters tol and refine_tol must be >= 0, got {params['tol']!r}, {params['refine_tol']!r}")
    if params["freeze"] not in ("auto", "on", "off"):
        raise ConfigError(f"balanced builder parameter freeze must be 'auto', 'on' or 'off', got {params['freeze']!r}")
    check_device_name(params["device"])


@BUILDERS.register("balanced", defaults=DEFAULTS, check=check_params)
def build(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Exactly balanced tree: level-batched balanced k-means with an exact, certified assignment step."""
    x = _unit_scale(check_embeddings(embeddings, k))
    seed = check_int("seed", seed, 0)
    params = BUILDERS.params("balanced", params)
    check_params(params)
    dev = resolve_device(params["device"])
    t_start = time.perf_counter()
    # inference mode: no autograd bookkeeping on any of the build's ~46K small operators (~5% of a
    # 20K-item CPU build)
    with _threads(int(params["threads"])), torch.inference_mode():
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
        n_init = int(params["root_n_init"] if level == 0 else params["n_init"])
        labels, hist = balanced_kmeans_restarts(xl, mask, k, gen, params, n_init, bool(params["bisect"]) and level > 0)
        if int(mask.sum()) * m <= int(params["swap_work"]) and int(params["swap_passes"]) > 0:
            labels, gain = swap_refine(xl, mask, labels, k, int(params["swap_passes"]), int(params["chunk"]))
            hist = hist + [hist[-1] - float(gain.sum())]
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
