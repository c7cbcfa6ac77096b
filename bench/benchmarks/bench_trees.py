"""Build time, peak memory and clustering cost of the baseline tree builders (d = 64, k = 16).

constrained only at 2K (it takes many minutes at 20K on 2 cores); greedy also at 200K. hybrid
stays at 2K/20K: at 200K it runs constrained k-means on 256 nodes of ~780 items, beyond
asv's 10-minute timeout on the 2-core CI machine.
"""

from .common import builder, embeddings

K = 16


class _TreeBench:
    name = ""
    params = [2_000, 20_000]
    param_names = ["n_items"]
    timeout = 600

    def setup(self, n_items):
        self.build = builder(self.name)
        self.x = embeddings(n_items)

    def time_build(self, n_items):
        self.build(self.x, K, seed=0)

    def peakmem_build(self, n_items):
        self.build(self.x, K, seed=0)

    def track_cost(self, n_items):
        from seater.trees.quality import tree_quality

        return tree_quality(self.build(self.x, K, seed=0), self.x)["total_cost"]

    track_cost.unit = "mean sq. distance"


class Constrained(_TreeBench):
    name = "constrained"
    params = [2_000]


class Greedy(_TreeBench):
    name = "greedy"
    params = [2_000, 20_000, 200_000]


class Hybrid(_TreeBench):
    name = "hybrid"


class KMeans(_TreeBench):
    name = "kmeans"


class Random(_TreeBench):
    name = "random"


class Quality:
    """tree_quality itself on a random balanced tree."""

    params = [20_000, 200_000]
    param_names = ["n_items"]

    def setup(self, n_items):
        self.x = embeddings(n_items)
        self.tree = builder("random")(self.x, K, seed=0)

    def time_tree_quality(self, n_items):
        from seater.trees.quality import tree_quality

        tree_quality(self.tree, self.x)


class GreedyAssignment:
    """The vectorised global-greedy capacity assignment on one node's cost matrix."""

    params = [20_000, 200_000]
    param_names = ["n_items"]

    def setup(self, n_items):
        import numpy as np

        try:
            from seater.trees.greedy import greedy_balanced_assignment
        except ImportError as e:
            raise NotImplementedError(str(e)) from e
        self.assign = greedy_balanced_assignment
        self.cost = np.random.default_rng(0).random((n_items, K)).astype(np.float32)

    def time_greedy_assignment(self, n_items):
        self.assign(self.cost)
