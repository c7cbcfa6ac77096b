"""`greedy` and `hybrid`: the fast builders of the reproduction study.

`greedy`: at every node, Faiss k-means centroids (`niter` iterations, GPU when faiss has
one), then a capacity-limited nearest-centroid assignment with capacities
``n = q*k + r``: r clusters get q + 1 items, the others q.

Processing order. The study leaves the order in which items claim centroids open. We use
the *global* greedy order: all (item, centroid) pairs by increasing squared distance (ties:
lower centroid, then lower item index), an item taking the first pair whose centroid still
has room. Why: it does not depend on the arbitrary item numbering (a per-item order would),
it gives the closest items their first choice so the items pushed to a second choice are
the ones far from every centroid anyway, and it is deterministic.

It is computed without a loop over items, in at most about k rounds
(`greedy_balanced_assignment`): every unassigned item proposes to its nearest open
centroid; among centroids with more proposers than room, the one whose room runs out at
the smallest distance t* closes, taking its nearest proposers; every other proposal closer
than t* is accepted (it precedes the closing in the global order and cannot be displaced);
the rest propose again. Which r centroids get q + 1 is decided the same way: the first r
to fill do.

`hybrid`: greedy while a node holds more than `threshold` items (default 2000),
constrained k-means (`seater.trees.constrained`) at and below it.

``refine_iters`` > 0 (off by default: the study's greedy has none): that many Lloyd rounds after
the first assignment, centroids re-estimated as the means of the balanced groups and the greedy
assignment rerun (stops early when labels repeat). Faiss's centroids are fitted to unbalanced
clusters; on planted clusters of unequal sizes the rounds move them to where the balanced
groups are.

``exact_repair=True`` replaces greedy's labels by the optimal balanced assignment for the same
centroids (`seater.trees.assignment.balanced_assignment`). It is solved from prices rather than
by repairing greedy's labels: the optimum is the same, but the repair cancels one negative cycle
per round, and from greedy's labels at 20K items that took 20-24 s instead of 0.35 s.

Why the options exist (20K synthetic items, d = 64, k = 16, seed 0; results/trees/README.md):
greedy's total cost is 1.35x constrained k-means', and even the optimal balanced assignment to
Faiss's centroids is 1.29x, so no processing order can bring the study's greedy close on these
unequal planted clusters: the centroids are the problem, which ``refine_iters`` addresses.
For retrieval it is the other way round: SEATER on Amazon Beauty (3 seeds, results/seater/README.md,
"Can greedy's loss be fixed cheaply?") lost 9% NDCG@10 on greedy trees against balanced ones and
nothing measurable with ``exact_repair`` alone (same Faiss centroids).
"""

from __future__ import annotations

import numpy as np

from seater.errors import TreeBuildError
from seater.trees import BUILDERS
from seater.trees.assignment import balanced_assignment
from seater.trees.checks import check_embeddings, check_int, check_seconds
from seater.trees.constrained import constrained_split
from seater.trees.kmeans import FLOAT32_BAND, conditioned, faiss_centroids, seed_from, sq_distances
from seater.trees.recursive import build_recursive
from seater.trees.tree import Tree


def greedy_balanced_assignment(cost: np.ndarray) -> np.ndarray:
    """Global-greedy balanced labels for a cost matrix ``(n, k)`` (squared distances).

    Returns int64 ``(n,)`` in ``[0, k)`` with group sizes ``n // k`` or ``n // k + 1``
    (exactly ``n % k`` groups of the larger size).
    """
    cost = np.asarray(cost)
    n, k = cost.shape
    q, r = divmod(n, k)
    labels = np.full(n, -1, dtype=np.int64)
    size = np.zeros(k, dtype=np.int64)
    open_ = np.ones(k, dtype=bool)
    cap_level = q + 1 if r > 0 else q
    n_full = 0  # centroids that reached q + 1
    if cap_level == 0:
        open_[:] = False
    unassigned = np.arange(n, dtype=np.int64)
    while unassigned.size:
        if not open_.any():
            raise TreeBuildError("greedy assignment ran out of capacity (internal error)")
        sub = np.where(open_[None, :], cost[unassigned], np.inf)
        choice = sub.argmin(1)
        d = sub[np.arange(unassigned.size), choice]
        counts = np.bincount(choice, minlength=k)
        room = cap_level - size
        # a centroid "fills" when its room runs out; in the q + 1 phase filling uses up one of
        # the r larger groups, so reaching the room exactly counts as an event too
        over = open_ & ((counts >= room) if cap_level > q else (counts > room))
        if not over.any():
            labels[unassigned] = choice
            break
        order = np.lexsort((unassigned, d, choice))  # by centroid, then distance, then item
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        rank = np.empty(unassigned.size, dtype=np.int64)
        rank[order] = np.arange(unassigned.size) - starts[choice[order]]
        over_j = np.flatnonzero(over)
        t = d[order[starts[over_j] + room[over_j] - 1]]  # distance at which each fills up
        jstar = int(over_j[np.argmin(t)])
        tstar = t.min()
        accept = np.where(choice == jstar, rank < room[jstar], d < tstar)
        labels[unassigned[accept]] = choice[accept]
        size += np.bincount(choice[accept], minlength=k)
        open_[jstar] = False
        if cap_level == q + 1:
            n_full += 1
            if n_full == r:
                cap_level = q
        open_ &= size < cap_level  # in the q phase others can reach q without overflowing
        unassigned = unassigned[~accept]
    return labels


def _group_means(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels, minlength=k)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(x[order].astype(np.float64), starts, axis=0) / counts[:, None]


def greedy_split(
    x: np.ndarray, k: int, rng: np.random.Generator, niter: int = 20, exact_repair: bool = False, refine_iters: int = 0,
) -> np.ndarray:
    x = conditioned(x, *FLOAT32_BAND)
    cost = sq_distances(x, faiss_centroids(x, k, seed_from(rng), niter))
    labels = greedy_balanced_assignment(cost)
    for _ in range(refine_iters):  # Lloyd rounds on the balanced groups: Faiss's centroids serve unbalanced clusters
        cost = sq_distances(x, _group_means(x, labels, k).astype(np.float32))
        new = greedy_balanced_assignment(cost)
        if np.array_equal(new, labels):
            break
        labels = new
    return balanced_assignment(cost) if exact_repair else labels  # solved in float64


def hybrid_split(
    x: np.ndarray, k: int, rng: np.random.Generator, threshold: int = 2000, niter: int = 20,
    exact_repair: bool = False, n_init: int = 10, max_iter: int = 300, refine_iters: int = 0,
):
    if x.shape[0] > threshold:
        return greedy_split(x, k, rng, niter=niter, exact_repair=exact_repair, refine_iters=refine_iters)
    return constrained_split(x, k, rng, n_init=n_init, max_iter=max_iter)


def _check_bool(name: str, value) -> None:
    from seater.errors import ConfigError

    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def _check_common(builder: str, p: dict) -> None:
    _check_bool("exact_repair", p["exact_repair"])
    check_int(f"{builder} refine_iters", p["refine_iters"], 0)
    check_int(f"{builder} niter", p["niter"], 1)
    check_int(f"{builder} workers", p["workers"], 1)


def check_greedy(p: dict) -> None:
    """Range checks of greedy's parameters (complete, as from `BUILDERS.params`)."""
    _check_common("greedy", p)


def check_hybrid(p: dict) -> None:
    """Range checks of hybrid's parameters (complete, as from `BUILDERS.params`)."""
    _check_common("hybrid", p)
    for key, least in (("threshold", 0), ("n_init", 1), ("max_iter", 1)):
        check_int(f"hybrid {key}", p[key], least)
    check_seconds("hybrid time_limit", p["time_limit"])


@BUILDERS.register(
    "greedy", defaults={"niter": 20, "exact_repair": False, "refine_iters": 0, "workers": 1}, check=check_greedy
)
def build_greedy(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Faiss k-means centroids + global-greedy capacity-limited assignment, recursively."""
    x = check_embeddings(embeddings, k)
    p = BUILDERS.params("greedy", params)
    check_greedy(p)
    return build_recursive(
        x, k, greedy_split, seed=seed,
        params={"niter": p["niter"], "exact_repair": p["exact_repair"], "refine_iters": int(p["refine_iters"])},
        workers=p["workers"], builder="greedy", build_params=p,
    )


@BUILDERS.register(
    "hybrid",
    defaults={"threshold": 2000, "niter": 20, "exact_repair": False, "refine_iters": 0, "n_init": 10, "max_iter": 300,
              "workers": 1, "time_limit": None},
    check=check_hybrid,
)
def build_hybrid(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Greedy while a node holds more than `threshold` items, constrained k-means below."""
    x = check_embeddings(embeddings, k)
    p = BUILDERS.params("hybrid", params)
    check_hybrid(p)
    split_params = {k_: p[k_] for k_ in ("threshold", "niter", "exact_repair", "refine_iters", "n_init", "max_iter")}
    return build_recursive(
        x, k, hybrid_split, seed=seed, params=split_params, workers=p["workers"],
        time_limit=p["time_limit"], builder="hybrid", build_params=p,
    )
