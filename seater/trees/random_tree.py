"""`random`: a balanced tree with random groups, the no-information baseline of the ablations.

Each node's items are permuted with the node's RNG and cut into k groups of
``n // k`` / ``n // k + 1`` items (the first ``n % k`` groups get the extra item).
"""

from __future__ import annotations

import numpy as np

from seater.trees import BUILDERS
from seater.trees.checks import check_embeddings, check_int
from seater.trees.recursive import build_recursive
from seater.trees.tree import Tree


def random_split(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    q, r = divmod(n, k)
    labels = np.empty(n, dtype=np.int64)
    labels[rng.permutation(n)] = np.repeat(np.arange(k), [q + 1] * r + [q] * (k - r))
    return labels


def check_params(p: dict) -> None:
    """Range checks of the builder's parameters (complete, as from `BUILDERS.params`)."""
    check_int("random workers", p["workers"], 1)


@BUILDERS.register("random", defaults={"workers": 1}, check=check_params)
def build_random(embeddings: np.ndarray, k: int, seed: int = 0, **params) -> Tree:
    """Balanced tree with random groups (ablation baseline)."""
    x = check_embeddings(embeddings, k)
    p = BUILDERS.params("random", params)
    check_params(p)
    return build_recursive(x, k, random_split, seed=seed, workers=p["workers"], builder="random", build_params=p)
