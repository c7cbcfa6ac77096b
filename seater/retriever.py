"""The retriever contract and the registry every retriever registers into.

A retriever is constructed from keyword parameters only (its registered defaults updated by
the config), is trained by `fit`, and answers `recommend`. Histories are int64 matrices
``[B, L]`` left-padded with 0 (most recent item last), as built by `seater.data.splits`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from seater.data.types import Split
from seater.errors import DataError
from seater.registry import Registry
from seater.tracking import Tracker
from seater.trees.checks import check_int
from seater.trees.tree import Tree

RETRIEVERS: Registry = Registry("retriever")


def check_topk(k: int, who: str) -> int:
    """`k` of ``recommend(histories, k)``: an integer >= 1."""
    return check_int(f"{who}: k (items per user)", k, 1)


def check_histories(histories: np.ndarray, n_items: int, who: str) -> np.ndarray:
    """Histories as int64 ``(B, L)``; one clear error for a wrong shape, non-integer entries or ids outside 0..n_items."""
    try:
        raw = np.asarray(histories)
    except ValueError:  # rows of different lengths
        raise DataError(f"{who}: histories must be a 2-D array (B, L) of left-padded rows, got rows of different lengths") from None
    if raw.size and not np.issubdtype(raw.dtype, np.integer):  # a float 3.5 would silently become item 3
        raise DataError(f"{who}: histories must hold integer item ids, got dtype {raw.dtype}")
    h = raw.astype(np.int64, copy=False)
    if h.ndim != 2:
        raise DataError(f"{who}: histories must be a 2-D array (B, L), got shape {h.shape}")
    if h.size and (h.min() < 0 or h.max() > n_items):
        raise DataError(f"{who}: histories hold item ids outside 0..{n_items}")
    if h.shape[1] > 1:  # models read the last column as the latest item: a right-padded row reads padding
        late = ((h[:, 1:] == 0) & (h[:, :-1] > 0)).any(1)
        if late.any():
            raise DataError(f"{who}: histories must be left-padded (0s before the items); row {int(np.argmax(late))} has a 0 after an item")
    return h


class Retriever(ABC):
    """Base class: `fit(split, tree, tracker) -> self`, `recommend(histories, k) -> [B, k]` item ids.

    needs_tree: the harness must build a `Tree` (from item embeddings) and pass it to `fit`.
    uses_item_embeddings: the harness also passes those embeddings, ``fit(..., item_embeddings=x)``
    (``(n_items, d)`` float32, row i = item i+1); only retrievers that set it get the keyword.
    The fitted state lives in attributes ending in ``_``; `fit_info_` is a dict of numbers
    worth logging (epochs run, best epoch, train seconds, samples/s ...).
    """

    needs_tree: ClassVar[bool] = False
    uses_item_embeddings: ClassVar[bool] = False

    def __init__(self, **params: Any):
        self.params = params
        self.fit_info_: dict[str, float] = {}

    @abstractmethod
    def fit(self, split: Split, tree: Tree | None = None, tracker: Tracker | None = None) -> "Retriever": ...

    @abstractmethod
    def recommend(self, histories: np.ndarray, k: int) -> np.ndarray:
        """Top-`k` item ids (1..n_items) per row, best first; 0 where fewer than k could be produced."""


class EmbeddingModel(Retriever):
    """A retriever that can also export its item table (dual encoders)."""

    @abstractmethod
    def item_embeddings(self) -> np.ndarray:
        """float32 ``(n_items, d)``; row ``i`` is item ``i + 1`` (the padding row is dropped)."""
