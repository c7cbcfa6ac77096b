"""Test-only components loaded through SEATER_BENCH_EXTRA_MODULES (into the cells too).

`crash` fails in the way named by its `mode`: "raise" (an exception), "exit" (os._exit, as a
segfault or the OOM killer would end the process), "sleep" (hangs for 10 minutes). `rendezvous`
answers like `tree_popular` once `n` cells have checked in under `folder` (proof that they ran at
once; it gives up after a minute). `die_once` dies the
first time it trains and resumes from the checkpoint folder the harness gives it the second
time. `tree_popular` needs a tree and checks the
tree it gets covers the catalogue, then answers like most-popular, so the tree step of the
harness is exercised without a model. `split_tree` is a deterministic balanced builder
(items in id order, cut into k nearly equal groups, recursively; `delay` makes it slow).
"""

from __future__ import annotations

import os
import time

import numpy as np

from baselines.popular import MostPopular
from seater.errors import DataError
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
        if self.params["mode"] == "data_error":  # a user error: one line on the console, no traceback
            raise DataError("planned bad input")
        raise RuntimeError("planned failure in fit")

    def recommend(self, histories, k):  # pragma: no cover
        return np.zeros((len(histories), k), dtype=np.int64)


@RETRIEVERS.register("die_once", defaults={"checkpoint_dir": None, "progress": False})
class DieOnce(MostPopular):
    """Most-popular whose first fit leaves a 'checkpoint' and dies (os._exit); the next resumes."""

    def __init__(self, checkpoint_dir=None, progress=False, device: str = "auto", seed: int = 0):
        super().__init__(device=device, seed=seed)
        self.checkpoint_dir = checkpoint_dir

    def fit(self, split, tree=None, tracker=None):
        marker = os.path.join(self.checkpoint_dir, "last.pt")
        if not os.path.exists(marker):
            os.makedirs(self.checkpoint_dir, exist_ok=True)
            open(marker, "w").close()
            os._exit(3)
        self.fit_info_ = {"resumed": 1}
        return super().fit(split)


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
                tracker.log_metrics({"train/loss": 1.0 / (e + 1), "time/epoch_s": 0.5 * (e + 1)}, step=e)
        return super().fit(split)

    def recommend_exact(self, histories, k):
        """As a generative retriever's exhaustive scoring would: here the same ranking as `recommend`."""
        return self.recommend(histories, k)


@RETRIEVERS.register("emb_popular", defaults={"epochs": 2, "scale": 1.0}, added=("scale",))
class EmbPopular(TreePopular):
    """tree_popular that is handed the tree's item embeddings and reports their shape and sum."""

    uses_item_embeddings = True

    def __init__(self, epochs: int = 2, scale: float = 1.0, device: str = "auto", seed: int = 0):
        super().__init__(epochs=epochs, device=device, seed=seed)

    def fit(self, split, tree=None, tracker=None, item_embeddings=None):
        super().fit(split, tree, tracker)
        x = item_embeddings
        self.fit_info_ = {"emb_rows": float(x.shape[0]), "emb_cols": float(x.shape[1]), "emb_sum": float(x.sum())}
        return self


@RETRIEVERS.register("rendezvous", defaults={"folder": "", "n": 2, "tag": ""})
class Rendezvous(TreePopular):
    """tree_popular that first waits for `n` cells to check in (tests of parallel workers); `tag`
    only tells cells apart."""

    def __init__(self, folder: str = "", n: int = 2, tag: str = "", device: str = "auto", seed: int = 0):
        super().__init__(device=device, seed=seed)
        self.folder, self.n = folder, n

    def fit(self, split, tree=None, tracker=None):
        os.makedirs(self.folder, exist_ok=True)
        open(os.path.join(self.folder, f"{os.getpid()}"), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(self.folder)) < self.n:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(os.listdir(self.folder))} of {self.n} cells ran at once")
            time.sleep(0.05)
        return super().fit(split, tree, tracker)


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


@BUILDERS.register("split_tree", defaults={"reverse": False, "delay": 0.0})
def split_tree(embeddings, k, seed=0, reverse=False, delay=0.0):
    """Balanced tree over items in id order (deterministic, no clustering); `delay` seconds of
    sleep stand for a slow build."""
    time.sleep(delay)
    codes = _split_codes(len(embeddings), k)
    if reverse:
        codes = codes[::-1].copy()
    return Tree(codes, k, {"builder": "split_tree", "params": {"reverse": reverse}, "seconds": 0.0})


@RETRIEVERS.register("beam_popular", defaults={"beam_size": 20})
class BeamPopular(TreePopular):
    """tree_popular with a beam width, as SEATER and TIGER have: below width 20 it answers with the
    least popular items instead, so a `beam_sweep` has a quality change to record."""

    def __init__(self, beam_size: int = 20, device: str = "auto", seed: int = 0):
        super().__init__(device=device, seed=seed)
        self.beam_size = beam_size

    def recommend(self, histories, k):
        top = super().recommend(histories, k)
        if self.beam_size >= 20:
            return top
        return np.broadcast_to(self.ranking_[::-1][:k], top.shape).copy()
