"""Test-only components loaded through SEATER_BENCH_EXTRA_MODULES (into the cells too).

`crash` fails in the way named by its `mode`: "raise" (an exception), "exit" (os._exit, as a
segfault or the OOM killer would end the process), "sleep" (hangs for 10 minutes). `tree_popular` needs a tree and checks the
tree it gets covers the catalogue, then answers like most-popular, so the tree step of the
harness is exercised without a model. `split_tree` is a deterministic balanced builder
(items in id order, cut into k nearly equal groups, recursively).
"""

from __future__ import annotations

import os
import time

import numpy as np

from baselines.popular import MostPopular
from seater.retriever import RETRIEVERS, Retriever
from seater.trees import BUILDERS
from seater.trees.tree import Tree


@RETRIEVERS.register("crash", defaults={"mode": "raise"})
class Crash(Retriever):
    """Fails on purpose (tests of the harness)."""

    def __init__(self, mode: str = "raise", device: str = "auto", seed: int = 0):
        super().__init__(mode=mode, device=device, seed=seed)

    def fit(self, split, tree=None, tracker=None):
        if self.params["mode"] == "exit":
            os._exit(3)
        if self.params["mode"] == "sleep":  # a long cell, for kill-the-grid tests
            time.sleep(600)
        raise RuntimeError("planned failure in fit")

    def recommend(self, histories, k):  # pragma: no cover
        return np.zeros((len(histories), k), dtype=np.int64)


@RETRIEVERS.register("tree_popular", defaults={"epochs": 2})
class TreePopular(MostPopular):
    """Most-popular that insists on a tree and logs a fake training curve."""

    needs_tree = True

    def __init__(self, epochs: int = 2, device: str = "auto", seed: int = 0):
        super().__init__(device=device, seed=seed)
        self.epochs = epochs

    def fit(self, split, tree=None, tracker=None):
        assert tree is not None and tree.n_items == split.n_items
        for e in range(self.epochs):
            if tracker is not None:
                tracker.log_metrics({"train/loss": 1.0 / (e + 1)}, step=e)
        return super().fit(split)

    def recommend_exact(self, histories, k):
        """As a generative retriever's exhaustive scoring would: here the same ranking as `recommend`."""
        return self.recommend(histories, k)


def _split_codes(n: int, k: int) -> np.ndarray:
    if n <= k:
        return np.arange(n)[:, None]
    sizes = np.full(k, n // k) + (np.arange(k) < n % k)
    rows = []
    for slot, size in enumerate(sizes):
        sub = _split_codes(int(size), k)
        rows.append(np.hstack([np.full((len(sub), 1), slot), sub]))
    depth = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, depth - r.shape[1])), constant_values=-1) for r in rows])


@BUILDERS.register("split_tree", defaults={"reverse": False})
def split_tree(embeddings, k, seed=0, reverse=False):
    """Balanced tree over items in id order (deterministic, no clustering)."""
    codes = _split_codes(len(embeddings), k)
    if reverse:
        codes = codes[::-1].copy()
    return Tree(codes, k, {"builder": "split_tree", "params": {"reverse": reverse}, "seconds": 0.0})
