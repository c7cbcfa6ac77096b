"""Tree quality against a brute-force computation, node by node."""

import numpy as np
import pytest

from seater.errors import DataError
from seater.trees import BUILDERS
from seater.trees.quality import gini, off_nearest, tree_quality
from seater.trees.tree import Tree


def brute_force_costs(tree: Tree, x: np.ndarray) -> list[float]:
    """For each level l >= 1: mean over items of the squared distance to their level-l node's mean."""
    out = []
    for level in range(1, tree.depth):
        total = 0.0
        for node in np.flatnonzero(tree.node_level == level):
            rows = tree.items_under(int(node)) - 1
            mu = x[rows].astype(np.float64).mean(0)
            total += sum(float(((x[i] - mu) ** 2).sum()) for i in rows)
        out.append(total / tree.n_items)
    return out


def test_hand_computed_small_tree():
    # items 1,2 under node a (points 0 and 2 on a line), items 3,4 under b (10, 14), item 5 alone
    x = np.array([[0.0], [2.0], [10.0], [14.0], [100.0]], np.float32)
    tree = Tree(np.array([[0, 0], [0, 1], [1, 0], [1, 1], [2, -1]]), k=3)
    q = tree_quality(tree, x)
    # level 1: a has mean 1 -> 1 + 1; b has mean 12 -> 4 + 4; item 5 is a leaf -> 0; / 5 items
    assert q["cost_per_level"] == pytest.approx([10.0 / 5])
    assert q["total_cost"] == pytest.approx(2.0)
    assert q["root_cost"] == pytest.approx(float(((x - x.mean()) ** 2).sum() / 5))
    assert (q["depth"], q["n_nodes"], q["balanced"]) == (2, 3, True)
    assert q["leaf_sizes"] == {"min": 1, "max": 2, "mean": pytest.approx(5 / 3)}


@pytest.mark.parametrize("name", ["random", "greedy", "kmeans"])
def test_matches_brute_force_on_built_trees(name):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(700, 5)).astype(np.float32)
    tree = BUILDERS.get(name).factory(x, 4, seed=1)
    q = tree_quality(tree, x)
    assert q["cost_per_level"] == pytest.approx(brute_force_costs(tree, x), rel=1e-6)
    assert q["n_nodes"] == tree.n_nodes and q["balanced"] == tree.is_balanced()


def test_better_tree_has_lower_cost():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2000, 8)).astype(np.float32)
    good = tree_quality(BUILDERS.get("greedy").factory(x, 8), x)["total_cost"]
    bad = tree_quality(BUILDERS.get("random").factory(x, 8), x)["total_cost"]
    assert good < 0.8 * bad  # observed about 0.55


def test_gini():
    assert gini(np.array([5, 5, 5])) == pytest.approx(0.0)
    assert gini(np.array([0, 0, 0, 10])) == pytest.approx(0.75)  # (n - 1) / n for one holder
    assert gini(np.array([1, 3])) == pytest.approx(0.25)  # mean abs difference 2 / (2 * 2 * mean 2)


def test_shape_mismatch_is_an_error():
    tree = Tree(np.array([[0], [1]]), k=2)
    with pytest.raises(DataError, match="do not match"):
        tree_quality(tree, np.zeros((3, 2)))
    with pytest.raises(DataError, match="do not match"):
        off_nearest(tree, np.zeros((3, 2)))


def brute_force_off(tree: Tree, x: np.ndarray) -> list[float]:
    """Per level: share of split items with a sibling centroid strictly nearer than their own, node by node."""
    n = tree.n_items
    cent = {}
    for node in np.flatnonzero(tree.node_level > 0):
        cent[int(node)] = x[tree.items_under(int(node)) - 1].astype(np.float64).mean(0)
    out = []
    for level in range(1, tree.depth):
        off = total = 0
        for i in np.flatnonzero(tree.item_path[:, level] >= 0):
            parent, own = tree.item_path[i, level - 1], tree.item_path[i, level]
            sibs = [int(t) - n - 1 for t in tree.children[parent] if t > n]
            d = {s: float(((x[i] - cent[s]) ** 2).sum()) for s in sibs}
            off += any(d[s] < d[own] for s in sibs)
            total += 1
        out.append(off / total)
    return out


def test_off_nearest_hand_computed():
    # points 0, 1, 9, 10; the split puts {0, 9} in node a (mean 4.5) and {1, 10} in b (mean 5.5):
    # 1 is nearer a's centroid, 9 nearer b's -> 2 of 4 items off
    x = np.array([[0.0], [1.0], [9.0], [10.0]], np.float32)
    tree = Tree(np.array([[0, 0], [1, 0], [0, 1], [1, 1]]), k=2)
    assert off_nearest(tree, x) == {"off_nearest": 0.5, "off_nearest_per_level": [0.5]}
    good = Tree(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), k=2)
    assert off_nearest(good, x)["off_nearest"] == 0.0


@pytest.mark.parametrize("name", ["random", "greedy", "kmeans", "balanced"])
def test_off_nearest_matches_brute_force(name):
    """kmeans trees are unbalanced: leaf items sit beside internal siblings and are left out."""
    x = np.random.default_rng(4).normal(size=(600, 5)).astype(np.float32)
    tree = BUILDERS.get(name).factory(x, 4, seed=1)
    ref = brute_force_off(tree, x)
    got = off_nearest(tree, x, chunk=97)  # small chunks: several per level
    assert got["off_nearest_per_level"] == pytest.approx(ref, abs=1e-12)
    counts = [(tree.item_path[:, level] >= 0).sum() for level in range(1, tree.depth)]
    assert got["off_nearest"] == pytest.approx(np.dot(ref, counts) / sum(counts))
    if name == "random":
        assert got["off_nearest"] > 0.5
    if name == "balanced":
        assert got["off_nearest"] < 0.1


def test_level_cost_equals_a_direct_sum_with_gaps_and_unplaced_items():
    """Groups with scattered ids and items outside any group (-1), against per-group numpy means."""
    from seater.trees.quality import _level_cost

    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 7)).astype(np.float32)
    groups = rng.choice([-1, 3, 40, 41, 999], size=500)
    ref = sum(((x[groups == g] - x[groups == g].mean(0)) ** 2).sum() for g in (3, 40, 41, 999))
    for chunk in (1 << 20, 64):  # one chunk; many chunks
        assert abs(_level_cost(x, groups, chunk=chunk) - ref) <= 1e-9 * ref


def test_level_cost_keeps_its_precision_under_a_common_offset():
    """sum ||x||^2 - ||sum x||^2 / n cancels: identical items cost -3e-8 and an offset of 1e4 against a
    spread of 1e-2 put the root cost 1.6e-4 off; the items' mean is taken out first."""
    from seater.trees.quality import tree_quality
    from seater.trees.tree import Tree

    rng = np.random.default_rng(0)
    codes = np.stack([np.arange(4000) // 250, np.arange(4000) % 250 // 16, np.arange(4000) % 16], 1)
    tree = Tree(codes, 16)
    assert tree_quality(tree, np.full((4000, 8), 1234.567, np.float32))["total_cost"] == 0.0
    x = (rng.normal(size=(4000, 8)) * 1e-2 + 1e4).astype(np.float32)
    xd = x.astype(np.float64)
    exact = ((xd - xd.mean(0)) ** 2).sum() / len(x)
    assert tree_quality(tree, x)["root_cost"] == pytest.approx(exact, rel=1e-9)
