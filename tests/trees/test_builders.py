"""Contract tests run against every registered balanced builder, plus builder-specific checks."""

from __future__ import annotations

import numpy as np
import pytest

from seater.errors import ConfigError, DataError, SeaterError, TreeBuildError
from seater.trees import BUILDERS
from seater.trees.greedy import greedy_balanced_assignment

K = 16
UNBALANCED = {"kmeans", "rqvae"}  # by design not balanced (rqvae: learned semantic IDs)
BALANCED = [name for name in BUILDERS.names() if name not in UNBALANCED]
SLOW = {"constrained", "hybrid"}  # hybrid below its threshold is constrained


def clustered(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    """Stand-in Gaussian mixture (tests must not depend on the synthetic-data module)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, size=(max(2, n // 50), d))
    return (centers[rng.integers(0, len(centers), n)] + rng.normal(size=(n, d))).astype(np.float32)


def build(name, x, k=K, seed=0, **params):
    return BUILDERS.get(name).factory(x, k, seed=seed, **params)


def sizes_for(name):
    return [1, K - 1, K, K + 1, 200] if name in SLOW else [1, K - 1, K, K + 1, 1000, 20000]


@pytest.mark.parametrize(
    "name, n",
    [pytest.param(b, n, marks=[pytest.mark.slow] if n >= 20000 else []) for b in BALANCED for n in sizes_for(b)],
)
def test_balanced_builders_validate(name, n):
    x = clustered(n)
    tree = build(name, x)
    tree.validate()
    assert tree.n_items == n and tree.build_info["builder"] == name
    assert len(tree.build_info["level_seconds"]) >= 1 and tree.build_info["seconds"] >= 0
    assert tree.depth == (1 if n <= K else int(np.ceil(np.log(n) / np.log(K) - 1e-9)))


@pytest.mark.parametrize("name", BALANCED)
def test_duplicated_and_identical_embeddings(name):
    rng = np.random.default_rng(1)
    dup = np.repeat(rng.normal(size=(5, 8)).astype(np.float32), 60, axis=0)  # 300 rows, 5 distinct
    build(name, dup).validate()
    build(name, np.ones((100, 8), np.float32)).validate()


@pytest.mark.parametrize("name", BALANCED + ["kmeans"])
@pytest.mark.parametrize(
    "x, k, error, match",
    [
        (np.array([[0.0, np.nan]] * 20), K, DataError, "NaN"),
        (np.zeros((20, 4)), 1, ConfigError, "k must be"),
        (np.zeros((0, 4)), K, DataError, "empty"),
        (np.zeros(20), K, DataError, "2-D"),
        (np.full((20, 4), 1e300), K, DataError, "beyond float32's range"),
    ],
)
def test_bad_input_is_a_clear_error(name, x, k, error, match):
    with pytest.raises(error, match=match):
        build(name, x, k=k)


@pytest.mark.parametrize("name", BALANCED + ["kmeans"])
def test_unknown_parameter_is_rejected(name):
    with pytest.raises(ConfigError, match="unknown parameter"):
        build(name, clustered(40), nonsense=1)


@pytest.mark.parametrize("name", BALANCED + ["kmeans"])
def test_a_negative_seed_is_rejected(name):
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        build(name, clustered(40), seed=-1)


@pytest.mark.parametrize("name,params,match", [
    ("constrained", {"time_limit": "abc"}, "time_limit must be a number of seconds > 0"),
    ("hybrid", {"time_limit": -1}, "time_limit must be a number of seconds > 0"),
    ("constrained", {"max_items": "abc"}, "constrained max_items must be an integer >= 1"),
    ("greedy", {"niter": -1}, "greedy niter must be an integer >= 1"),
    ("hybrid", {"niter": -5}, "hybrid niter must be an integer >= 1"),
    ("hybrid", {"max_iter": 0}, "hybrid max_iter must be an integer >= 1"),
    ("kmeans", {"niter": 0}, "kmeans niter must be an integer >= 1"),
])
def test_parameter_values_without_a_typed_default_are_checked(name, params, match):
    """Parameters whose default is None (any kind passes the registry) or whose range the registry does not know."""
    with pytest.raises(ConfigError, match=match):
        build(name, clustered(40), **params)


@pytest.mark.parametrize("name", BALANCED + ["kmeans"])
def test_parameter_of_the_wrong_kind_is_rejected(name):
    ints = [key for key, v in BUILDERS.get(name).defaults.items() if type(v) is int]
    if not ints:
        pytest.skip(f"{name} has no integer parameter")
    with pytest.raises(ConfigError, match=f"parameter {ints[0]} of tree builder '{name}' must be an integer"):
        build(name, clustered(40), **{ints[0]: "abc"})


@pytest.mark.parametrize("name", BALANCED + ["kmeans"])
def test_deterministic_by_seed(name):
    x = clustered(150 if name in SLOW else 2000, seed=3)
    a, b = build(name, x, seed=7), build(name, x, seed=7)
    assert np.array_equal(a.codes, b.codes)


@pytest.mark.slow  # spawns worker processes (each imports torch): minutes on the shared 2-core box
@pytest.mark.parametrize("name", ["greedy", "random"])
def test_workers_do_not_change_the_tree(name):
    x = clustered(12000, seed=4)  # level-1 nodes of 750 items go to the pool
    a = build(name, x, seed=5, workers=1)
    b = build(name, x, seed=5, workers=2)
    assert np.array_equal(a.codes, b.codes)


def test_kmeans_tree_is_unbalanced_and_valid():
    x = clustered(2000, seed=6)
    tree = build("kmeans", x)
    tree.validate(balanced=False)
    assert not tree.is_balanced()  # clusters of a mixture differ in size


def test_kmeans_identical_points_fall_back_to_chunks():
    tree = build("kmeans", np.zeros((100, 4), np.float32))
    tree.validate()  # the fallback cuts balanced chunks
    assert any("no progress" in note for note in tree.build_info["notes"])


def test_constrained_library_failure_falls_back(monkeypatch):
    import k_means_constrained

    class Broken:
        def __init__(self, **kw):
            pass

        def fit_predict(self, x):  # what the library raises: a bare Exception (was faked as a ValueError)
            raise Exception("There was an issue with the min cost flow input.")

    monkeypatch.setattr(k_means_constrained, "KMeansConstrained", Broken)
    tree = build("constrained", clustered(100))
    tree.validate()
    notes = " ".join(tree.build_info["notes"])
    assert "min cost flow" in notes and "fell back" in notes


@pytest.mark.parametrize("name", ["greedy", "kmeans", "constrained"])
def test_identical_huge_points_build_without_overflow(name):
    """All points equal at 1e20: squares overflowed (nan costs, RuntimeWarnings); they go to the origin."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        build(name, np.full((50, 4), 1e20, np.float32)).validate()


@pytest.mark.parametrize("name", ["greedy", "kmeans", "constrained"])
@pytest.mark.parametrize("scale,offset", [(1e6, 0.0), (1e-4, 0.0), (1e-25, 0.0), (1e20, 0.0), (1.0, 1e4)])
def test_trees_do_not_depend_on_the_scale_or_offset_of_the_embeddings(name, scale, offset):
    """Exact in exact arithmetic, not in float32 or in k-means-constrained's int32 costs: at x 1e6 its
    costs overflowed (3.8x the cost), at x 1e-4 they rounded away (2.8x), an offset of 1e4 cancelled
    Faiss's distances (greedy 2.2x), and |x| ~ 1e20 aborted the process inside Faiss. The nodes are
    conditioned outside a safe band (`kmeans.conditioned`): the same clustering, cost ratio 1."""
    from seater.trees.quality import tree_quality

    x = clustered(300)
    ref = build(name, x)
    tree = build(name, (x.astype(np.float64) * scale + offset).astype(np.float32))
    tree.validate(balanced=name != "kmeans")
    assert tree_quality(tree, x)["total_cost"] == pytest.approx(tree_quality(ref, x)["total_cost"], rel=0.02)


def test_constrained_wrong_sizes_fall_back(monkeypatch):
    import k_means_constrained

    class Lopsided:  # a silently wrong library result: everything in cluster 0
        def __init__(self, n_clusters, **kw):
            self.k = n_clusters

        def fit_predict(self, x):
            self.cluster_centers_ = np.zeros((self.k, x.shape[1]))
            return np.zeros(len(x), dtype=int)

    monkeypatch.setattr(k_means_constrained, "KMeansConstrained", Lopsided)
    tree = build("constrained", clustered(100))
    tree.validate()
    assert any("group sizes" in note for note in tree.build_info["notes"])


def test_constrained_guards():
    with pytest.raises(TreeBuildError, match="max_items"):
        build("constrained", clustered(100), max_items=50)
    with pytest.raises(ConfigError, match="n_init"):
        build("constrained", clustered(100), n_init=0)


def test_hybrid_threshold_switches_method():
    x = clustered(300, seed=8)
    # threshold above n: all constrained; threshold 0: all greedy (identical to the greedy builder)
    assert np.array_equal(build("hybrid", x, threshold=0).codes, build("greedy", x).codes)
    build("hybrid", x, threshold=10_000).validate()
    with pytest.raises(ConfigError, match="threshold"):
        build("hybrid", x, threshold=-1)


@pytest.mark.parametrize("name", ["greedy", "hybrid"])
def test_exact_repair_never_costs_more(name):
    pytest.importorskip("seater.trees.assignment")
    from seater.trees.quality import tree_quality

    x = clustered(1500, seed=9)
    plain = build(name, x, threshold=0) if name == "hybrid" else build(name, x)
    repaired = build(name, x, exact_repair=True, **({"threshold": 0} if name == "hybrid" else {}))
    repaired.validate()
    # the root split uses the same centroids, so its level cost can only go down
    assert tree_quality(repaired, x)["cost_per_level"][0] <= tree_quality(plain, x)["cost_per_level"][0] + 1e-6


def reference_global_greedy(cost: np.ndarray) -> np.ndarray:
    """Independent reference: walk all (item, centroid) pairs by (distance, centroid, item)."""
    n, k = cost.shape
    q, r = divmod(n, k)
    labels = np.full(n, -1)
    size = np.zeros(k, int)
    big = 0  # groups that took q + 1
    pairs = sorted((cost[i, j], j, i) for i in range(n) for j in range(k))
    for _, j, i in pairs:
        if labels[i] >= 0:
            continue
        cap = q + 1 if big < r else q
        if size[j] < cap:
            labels[i] = j
            size[j] += 1
            big += size[j] == q + 1
    return labels


@pytest.mark.parametrize("n, k, seed", [(n, k, s) for n in (5, 17, 33, 64, 101) for k in (2, 3, 16) for s in range(3)])
def test_greedy_assignment_matches_sequential_reference(n, k, seed):
    rng = np.random.default_rng(seed)
    cost = rng.random((n, k))
    assert np.array_equal(greedy_balanced_assignment(cost), reference_global_greedy(cost))


def test_greedy_assignment_sizes_with_ties():
    for n in range(1, 70):
        labels = greedy_balanced_assignment(np.zeros((n, 4)))
        sizes = np.bincount(labels, minlength=4)
        assert sorted(sizes.tolist()) == sorted([n // 4 + 1] * (n % 4) + [n // 4] * (4 - n % 4))


def test_errors_are_seater_errors():
    assert issubclass(DataError, SeaterError) and issubclass(TreeBuildError, SeaterError)


def test_greedy_refine_iters_fixes_centroids_fitted_to_unequal_clusters():
    from seater.errors import ConfigError
    from seater.trees.quality import tree_quality

    rng = np.random.default_rng(0)  # 55 Gaussian clusters of very unequal sizes
    sizes = rng.multinomial(3000, rng.dirichlet(np.ones(55)))
    x = (np.repeat(rng.normal(0, 1, size=(55, 16)), sizes, axis=0) + 0.3 * rng.normal(size=(3000, 16))).astype(np.float32)
    build = BUILDERS.get("greedy").factory
    plain = build(x, 8, seed=0).validate(balanced=True)
    refined = build(x, 8, seed=0, refine_iters=10).validate(balanced=True)
    assert tree_quality(refined, x)["total_cost"] < 0.95 * tree_quality(plain, x)["total_cost"]
    BUILDERS.get("hybrid").factory(x, 8, seed=0, refine_iters=2, threshold=500).validate(balanced=True)
    with pytest.raises(ConfigError, match="refine_iters"):
        build(x, 8, refine_iters=-1)


def test_recursive_builds_show_their_splits_on_a_terminal_only(monkeypatch):
    import io
    import sys

    from seater.trees.recursive import build_recursive
    from seater.trees.random_tree import random_split

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    for stream, shown in ((io.StringIO(), False), (Terminal(), True)):
        monkeypatch.setattr(sys, "stderr", stream)
        build_recursive(x, 4, random_split, builder="random")
        assert ("random level 0" in stream.getvalue()) == shown
