"""What a protocol returns: training samples and evaluation sets, as padded numpy arrays.

Histories are int64 matrices ``[rows, max_history]`` *left*-padded with 0, so the most
recent item is always in the last column. Every model consumes this one layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TrainSamples:
    """(history -> next item) pairs from training users.

    histories: int64 ``[S, L]`` left-padded; targets: int64 ``[S]``; users: int64 ``[S]`` row
    index of the user in `Interactions.sequences`.
    """

    histories: np.ndarray
    targets: np.ndarray
    users: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class EvalSet:
    """Users to evaluate: a history each and a ragged ground-truth set each.

    users: int64 ``[U]``; histories: int64 ``[U, L]`` left-padded; truth: U int64 arrays.
    """

    users: np.ndarray
    histories: np.ndarray
    truth: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Split:
    """One protocol applied to one dataset.

    train_sequences: the full training sequences (one int64 array per training user, in time
        order, untruncated) for models that train on every position at once (SASRec, BERT4Rec).
    train: the same data as explicit (last `max_history` items -> next item) samples.
    valid / test: evaluation users.
    n_dropped_users: users removed because their sequence was too short for the protocol.
    """

    protocol: str
    n_items: int
    max_history: int
    seed: int
    train_sequences: list[np.ndarray]
    train: TrainSamples
    valid: EvalSet
    test: EvalSet
    n_dropped_users: int = 0
    dataset: str = "dataset"
