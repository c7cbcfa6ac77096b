"""Most-popular items: the floor every learned retriever must clear."""

from __future__ import annotations

import numpy as np

from seater.data.types import Split
from seater.errors import ConfigError, DataError
from seater.retriever import RETRIEVERS, Retriever, check_histories, check_topk
from seater.tracking import Tracker
from seater.trees.tree import Tree


@RETRIEVERS.register("popular", defaults={})
class MostPopular(Retriever):
    """Recommends the items most frequent in the training sequences, the same list for everyone."""

    def __init__(self, device: str = "auto", seed: int = 0):
        super().__init__(device=device, seed=seed)

    def fit(self, split: Split, tree: Tree | None = None, tracker: Tracker | None = None) -> "MostPopular":
        if len(split.train_sequences) == 0:
            raise DataError(f"{split.dataset}: no training sequences to count item popularity on")
        counts = np.bincount(np.concatenate(split.train_sequences), minlength=split.n_items + 1).astype(np.float64)
        counts[0] = -1  # never recommend padding
        # ties broken by item id so the ranking is deterministic
        self.ranking_ = np.lexsort((np.arange(len(counts)), -counts))
        self.ranking_ = self.ranking_[self.ranking_ != 0]
        self.n_items_ = split.n_items
        return self

    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        k = check_topk(k, "popular.recommend")
        if not hasattr(self, "ranking_"):
            raise ConfigError("popular: call fit() before recommend()")
        histories = check_histories(histories, self.n_items_, "popular.recommend")  # unused, but the contract is shared
        top = np.zeros(k, dtype=np.int64)
        n = min(k, len(self.ranking_))
        top[:n] = self.ranking_[:n]
        return np.tile(top, (len(histories), 1))
