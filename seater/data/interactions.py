"""`Interactions`: per-user chronological item sequences with items numbered 1..n_items (0 = padding)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seater.errors import DataError


@dataclass
class Interactions:
    """A dataset after loading and id remapping.

    sequences: one int64 array per user, items in time order, ids in 1..n_items.
    n_items: number of distinct items; 0 is reserved for padding.
    user_ids: original user id of each row (length = number of users).
    item_ids: original item id of every internal id; ``item_ids[0]`` is the padding slot
        (``-1`` or ``""``), so ``item_ids[i]`` maps internal id ``i`` back.
    item_attributes: optional, one int64 array of attribute ids per internal item id
        (index 0 = padding, empty), attribute ids numbered from 1.
    name: a short label used in logs and cache keys.
    """

    sequences: list[np.ndarray]
    n_items: int
    user_ids: np.ndarray
    item_ids: np.ndarray
    item_attributes: list[np.ndarray] | None = None
    name: str = "dataset"
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.sequences) == 0:
            raise DataError(f"{self.name}: the dataset has no users")
        if self.n_items < 1:
            raise DataError(f"{self.name}: the dataset has no items")
        if len(self.user_ids) != len(self.sequences):
            raise DataError(f"{self.name}: {len(self.user_ids)} user ids for {len(self.sequences)} sequences")
        if len(self.item_ids) != self.n_items + 1:
            raise DataError(f"{self.name}: item_ids must have n_items + 1 entries (slot 0 = padding)")
        # an id outside 1..n_items (0 is padding) can never be recommended, and a 0 truth made the
        # user's metrics nan, silently leaving the averages: one error here instead
        filled = [np.asarray(q) for q in self.sequences if len(q)]  # an empty row's dtype (float for []) says nothing
        flat = np.concatenate(filled) if filled else np.zeros(0, np.int64)
        if flat.size and not np.issubdtype(flat.dtype, np.integer):
            raise DataError(f"{self.name}: sequences must hold integer item ids, got {flat.dtype}")
        if flat.size and (int(flat.min()) < 1 or int(flat.max()) > self.n_items):
            bad = int(flat.min()) if int(flat.min()) < 1 else int(flat.max())
            raise DataError(f"{self.name}: item id {bad} in the sequences is outside 1..{self.n_items} (0 is padding)")

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(s) for s in self.sequences), dtype=np.int64, count=self.n_users)
