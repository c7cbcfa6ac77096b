"""Level-by-level (breadth-first) recursion shared by the recursive tree builders.

Every recursive builder (constrained, greedy, hybrid, kmeans, random) is one function
``split(x_node (n, d) float32, k, rng, **params) -> labels (n,) in [0, k)`` (optionally
``(labels, notes)``) plus this driver, which

* walks the tree one level at a time and records the wall seconds of each level;
* gives every node its own RNG, seeded from ``(seed, node path)`` with
  `numpy.random.SeedSequence`, so a node's split does not depend on the order nodes are
  processed in or on how many worker processes share the work;
* stops at nodes with ``n <= k`` items: those items become the node's children, slots
  ``0 .. n-1`` in item order (no split function call, no randomness);
* turns a child group of one item into a leaf directly (its identifier ends there);
* shows a progress bar of each level's splits on an interactive terminal (a constrained build
  of a large catalog runs for an hour);
* optionally checks that every split is balanced (sizes ``n // k`` or ``n // k + 1``) and
  raises `TreeBuildError` naming the node otherwise: a builder must never return a silently
  wrong tree.

``workers > 1`` runs the splits of one level in a `spawn` process pool (a fork would copy
faiss/OpenMP thread state). Each task gets the node's rows and its seed, so the result is
identical for any worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from seater.errors import TreeBuildError
from seater.trees.checks import check_int, check_seconds
from seater.trees.tree import Tree

SplitFn = Callable[..., Any]

# Below this many items a node's split is run in the parent even when a pool exists:
# shipping the rows to a worker costs more than the split.
_MIN_ITEMS_FOR_POOL = 512


def node_rng(seed: int, path: Sequence[int]) -> np.random.Generator:
    """Generator for the node at `path` (child slots from the root); independent of visit order."""
    ss = np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(int(p) for p in path))
    return np.random.default_rng(ss)


def balanced_sizes(n: int, k: int) -> tuple[int, int]:
    """(q, r) with n = q*k + r: r groups of q + 1 items, k - r groups of q items."""
    return n // k, n % k


def check_balanced_labels(labels: np.ndarray, n: int, k: int) -> str | None:
    """None when `labels` split n items into k groups of floor(n/k)/floor(n/k)+1, else why not."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        return f"split returned {labels.shape} labels for {n} items"
    if n and (labels.min() < 0 or labels.max() >= k):
        return f"labels outside [0, {k})"
    sizes = np.bincount(labels, minlength=k)
    q = n // k
    if not np.isin(sizes, (q, q + 1)).all():
        return f"group sizes {sorted(sizes.tolist())} are not all {q} or {q + 1}"
    return None


def _run_split(split: SplitFn, x: np.ndarray, k: int, seed: int, path: tuple[int, ...], params: dict) -> tuple[np.ndarray, list[str]]:
    out = split(x, k, node_rng(seed, path), **params)
    if isinstance(out, tuple):
        labels, notes = out
    else:
        labels, notes = out, []
    return np.asarray(labels, dtype=np.int64), list(notes)


def build_recursive(
    x: np.ndarray,
    k: int,
    split: SplitFn,
    *,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    balanced: bool = True,
    workers: int = 1,
    time_limit: float | None = None,
    builder: str = "",
    build_params: dict[str, Any] | None = None,
) -> Tree:
    """Build a tree by splitting every node with more than k items with `split`.

    Parameters
    ----------
    x : float32 ``(n_items, d)``, already checked (`check_embeddings`).
    split : module-level function (picklable for the pool): ``split(x_node, k, rng, **params)``.
    balanced : raise `TreeBuildError` when a split is not balanced.
    workers : processes for the splits of one level (1 = in this process).
    time_limit : seconds; checked between nodes, raising `TreeBuildError` once exceeded
        (a guard against builders that would run for hours, not a preemptive timeout).

    Returns the `Tree` with ``build_info`` = builder, params, seed, level_seconds, seconds,
    n_splits and the split notes (fallbacks taken), each prefixed by its node path.
    """
    workers = check_int("workers", workers, 1)
    seed = check_int("seed", seed, 0)
    time_limit = check_seconds("time_limit", time_limit)
    params = dict(params or {})
    n = x.shape[0]
    t_start = time.perf_counter()
    codes = np.full((n, 4), -1, dtype=np.int64)
    # frontier: (path of the node, item indices (sorted ascending)) for nodes still to place
    frontier: list[tuple[tuple[int, ...], np.ndarray]] = [((), np.arange(n, dtype=np.int64))]
    level_seconds: list[float] = []
    notes: list[str] = []
    n_splits = 0
    pool = None
    ctx = mp.get_context("spawn")
    try:
        level = 0
        while frontier:
            t_level = time.perf_counter()
            if level >= codes.shape[1]:
                codes = np.concatenate([codes, np.full_like(codes, -1)], axis=1)
            # nodes with <= k items: their items are the children, slots 0..n-1
            to_split = []
            for path, idx in frontier:
                if len(idx) <= k:
                    codes[idx, level] = np.arange(len(idx))
                else:
                    to_split.append((path, idx))
            results: list[tuple[np.ndarray, list[str]]] = [None] * len(to_split)  # type: ignore[list-item]
            futures = {}
            if workers > 1 and sum(len(i) >= _MIN_ITEMS_FOR_POOL for _, i in to_split) > 1:
                if pool is None:
                    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
                for j, (path, idx) in enumerate(to_split):
                    if len(idx) >= _MIN_ITEMS_FOR_POOL:
                        futures[j] = pool.submit(_run_split, split, x[idx], k, seed, path, params)
            # disable=None: drawn only when stderr is a terminal (not in tests, logs or cells' pipes)
            with tqdm(total=len(to_split), desc=f"{builder or 'tree'} level {level}", unit="split", disable=None, leave=False) as bar:
                for j, (path, idx) in enumerate(to_split):
                    if j not in futures:
                        results[j] = _run_split(split, x[idx], k, seed, path, params)
                        _check_time(t_start, time_limit, builder, level)
                        bar.update()
                for j, fut in futures.items():
                    results[j] = fut.result()
                    _check_time(t_start, time_limit, builder, level)
                    bar.update()
            next_frontier: list[tuple[tuple[int, ...], np.ndarray]] = []
            for (path, idx), (labels, node_notes) in zip(to_split, results):
                n_splits += 1
                where = "/".join(map(str, path)) or "root"
                notes.extend(f"node {where} ({len(idx)} items): {msg}" for msg in node_notes)
                if balanced:
                    why = check_balanced_labels(labels, len(idx), k)
                    if why:
                        raise TreeBuildError(f"{builder or 'builder'}: unbalanced split at node {where} ({len(idx)} items): {why}")
                elif labels.shape != idx.shape or labels.min() < 0 or labels.max() >= k:
                    raise TreeBuildError(f"{builder or 'builder'}: invalid labels at node {where}")
                codes[idx, level] = labels
                sizes = np.bincount(labels, minlength=k)
                if (sizes == len(idx)).any():
                    raise TreeBuildError(f"{builder or 'builder'}: split at node {where} put all {len(idx)} items in one group")
                order = np.argsort(labels, kind="stable")
                bounds = np.concatenate([[0], np.cumsum(sizes)])
                for slot in np.flatnonzero(sizes > 1):
                    next_frontier.append((path + (int(slot),), idx[order[bounds[slot] : bounds[slot + 1]]]))
            frontier = next_frontier
            level_seconds.append(time.perf_counter() - t_level)
            level += 1
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    codes = codes[:, : max(1, level)]
    info = {
        "builder": builder,
        "params": dict(build_params if build_params is not None else params),
        "seed": int(seed),
        "level_seconds": [round(s, 6) for s in level_seconds],
        "seconds": 0.0,
        "n_splits": n_splits,
        "notes": notes,
    }
    tree = Tree(codes, k, info)
    tree.build_info["seconds"] = time.perf_counter() - t_start  # includes indexing the tree
    return tree


def _check_time(t_start: float, time_limit: float | None, builder: str, level: int) -> None:
    if time_limit is not None and time.perf_counter() - t_start > time_limit:
        raise TreeBuildError(
            f"{builder or 'builder'}: time_limit={time_limit} s exceeded at level {level}; "
            "raise time_limit, or use a faster builder (greedy, hybrid, balanced) for this size"
        )
