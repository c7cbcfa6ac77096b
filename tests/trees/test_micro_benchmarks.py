"""pytest-benchmark micro-benchmarks of the hot inner steps (CI: --benchmark-disable runs each once).

Each asserts on its result, never on time; real timings come from asv or `seater-bench trees compare`.
"""

import numpy as np
import pytest

from seater.trees import BUILDERS
from seater.trees.greedy import greedy_balanced_assignment
from seater.trees.kmeans import sq_distances
from seater.trees.quality import tree_quality

pytestmark = pytest.mark.benchmark


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(20_000, 64)).astype(np.float32)


def test_greedy_assignment_20k(benchmark, x):
    cost = sq_distances(x, x[:16])
    labels = benchmark(greedy_balanced_assignment, cost)
    assert sorted(np.bincount(labels, minlength=16).tolist()) == [1250] * 16


def test_sq_distances_20k(benchmark, x):
    c = x[:16]
    d = benchmark(sq_distances, x, c)
    assert d.shape == (20_000, 16) and np.allclose(d[:16].diagonal(), 0, atol=1e-3)


def test_tree_quality_20k(benchmark, x):
    tree = BUILDERS.get("random").factory(x, 16, seed=0)
    q = benchmark(tree_quality, tree, x)
    assert q["balanced"] and q["depth"] == 4 and 0 < q["total_cost"] < 4 * q["root_cost"]


def test_swap_refine_256_nodes_of_78(benchmark, x):
    """One level of a 20K-item tree: 256 nodes of 78 items, k = 16, 20 exchange passes."""
    import torch

    from seater.trees.swaps import swap_refine

    xl = torch.from_numpy(x[: 256 * 78]).view(256, 78, 64)
    mask = torch.ones(256, 78, dtype=torch.bool)
    labels = (torch.arange(78) % 16).expand(256, -1).contiguous()
    new, gain = benchmark(swap_refine, xl, mask, labels, 16, 20)
    assert bool((gain > 0).all()) and torch.equal(new.sort(1).values, labels.sort(1).values)
